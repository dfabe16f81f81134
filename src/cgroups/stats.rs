//! The statistics `events` prints, in runc's JSON shape (runc's
//! types/events.go): the same names, and the same fields left out when
//! zero, so tools that read runc's output read carte's.
//!
//! Memory usage, pids, blkio and hugetlb come from cgroups-rs; CPU time,
//! the kernel TCP entry and the raw memory.stat are read here, as
//! cgroups-rs gives CPU time in ticks, no v2 CPU time, and no kmem.tcp.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cgroups_rs::manager::Manager;
use serde::Serialize;

use super::fs::Fs;
use super::{controller_dir, is_unified};

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: serde_json::Map<String, serde_json::Value>,
    /// Always null: carte does not look into the container's network.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn file(path: &str, ctrl: &str, name: &str) -> Option<String> {
    let f: PathBuf = controller_dir(path, ctrl)?.join(name);
    std::fs::read_to_string(f).ok()
}

fn number(path: &str, ctrl: &str, name: &str) -> u64 {
    file(path, ctrl, name)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// "key value" lines (cpu.stat, memory.stat, cpuacct.stat).
pub(super) fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// "0-2,5" as [0, 1, 2, 5].
fn list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn limit(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

pub(super) fn collect(cg: &Fs) -> Stats {
    let path = cg.path.as_str();
    // Without a manager (no /proc/self/mountinfo), what the files give.
    let s = cg.manager().map(|m| m.stats()).unwrap_or_default();
    let mut stats = Stats {
        cpu: cpu(path),
        ..Default::default()
    };
    let cpuset = if is_unified() {
        "cpuset.cpus.effective"
    } else {
        "cpuset.effective_cpus"
    };
    let mems = if is_unified() {
        "cpuset.mems.effective"
    } else {
        "cpuset.effective_mems"
    };
    stats.cpuset.cpus = list(&file(path, "cpuset", cpuset).unwrap_or_default());
    stats.cpuset.mems = list(&file(path, "cpuset", mems).unwrap_or_default());

    let entry = |m: &Option<cgroups_rs::stats::MemoryStats>| {
        m.as_ref()
            .map(|m| MemoryEntry {
                limit: limit(m.limit),
                usage: m.usage,
                max: m.max_usage,
                failcnt: m.fail_cnt,
            })
            .unwrap_or_default()
    };
    stats.memory.usage = entry(&s.memory.memory);
    stats.memory.swap = entry(&s.memory.memory_swap);
    stats.memory.kernel = entry(&s.memory.kernel_memory);
    if !is_unified() {
        let tcp = |n: &str| number(path, "memory", &format!("memory.kmem.tcp.{n}"));
        stats.memory.kernel_tcp = MemoryEntry {
            limit: tcp("limit_in_bytes"),
            usage: tcp("usage_in_bytes"),
            max: tcp("max_usage_in_bytes"),
            failcnt: tcp("failcnt"),
        };
    }
    stats.memory.raw = keyed(&file(path, "memory", "memory.stat").unwrap_or_default());
    stats.memory.cache = stats
        .memory
        .raw
        .get(if is_unified() { "file" } else { "cache" })
        .copied()
        .unwrap_or(0);

    stats.pids = Pids {
        current: s.pids.current,
        limit: limit(s.pids.limit),
    };
    let entries = |list: &[cgroups_rs::stats::BlkioStat]| {
        list.iter()
            .map(|e| BlkioEntry {
                major: e.major,
                minor: e.minor,
                op: capitalized(&e.op),
                value: e.value,
            })
            .collect()
    };
    stats.blkio.io_service_bytes_recursive = entries(&s.blkio.io_service_bytes_recursive);
    stats.blkio.io_serviced_recursive = entries(&s.blkio.io_serviced_recursive);
    stats.hugetlb = s
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                Hugetlb {
                    usage: h.usage,
                    max: h.max_usage,
                    failcnt: h.fail_cnt,
                },
            )
        })
        .collect();
    stats
}

/// runc names blkio operations as the kernel's v1 files do: "Read", "Total".
fn capitalized(op: &str) -> String {
    let mut chars = op.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn cpu(path: &str) -> Cpu {
    let mut cpu = Cpu::default();
    if is_unified() {
        let stat = keyed(&file(path, "cpu", "cpu.stat").unwrap_or_default());
        let ns = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
        cpu.usage.total = ns("usage_usec");
        cpu.usage.user = ns("user_usec");
        cpu.usage.kernel = ns("system_usec");
        cpu.throttling.periods = stat.get("nr_periods").copied().unwrap_or(0);
        cpu.throttling.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        cpu.throttling.throttled_time = ns("throttled_usec");
        return cpu;
    }
    let acct = |n: &str| file(path, "cpuacct", &format!("cpuacct.{n}"));
    cpu.usage.total = acct("usage")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    cpu.usage.percpu = numbers(&acct("usage_percpu").unwrap_or_default());
    cpu.usage.percpu_kernel = numbers(&acct("usage_percpu_sys").unwrap_or_default());
    cpu.usage.percpu_user = numbers(&acct("usage_percpu_user").unwrap_or_default());
    cpu.usage.kernel = acct("usage_sys")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    cpu.usage.user = acct("usage_user")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let stat = keyed(&file(path, "cpu", "cpu.stat").unwrap_or_default());
    cpu.throttling.periods = stat.get("nr_periods").copied().unwrap_or(0);
    cpu.throttling.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
    cpu.throttling.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
    cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_are_left_out_as_runc_does() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert!(v["network_interfaces"].is_null());
        assert_eq!(v["memory"]["kernelTCP"]["failcnt"], 0);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(list("0-2,5\n"), [0, 1, 2, 5]);
        assert!(list("\n").is_empty());
    }
}
