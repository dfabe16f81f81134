use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::container::Container;

/// runc's `update` flags. With --resources the single-value flags are
/// refused rather than ignored (runc ignores them).
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// A JSON OCI LinuxResources object, from FILE or from stdin with '-'
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Block IO weight, 10 to 1000
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (µs)
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (µs) per period; -1 for none
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst (µs)
    #[arg(long)]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (µs)
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (µs) per period
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// 1 to make the cgroup SCHED_IDLE, 0 for the default
    #[arg(long)]
    pub cpu_idle: Option<i64>,
    /// Kernel memory limit (obsolete: the kernel dropped it)
    #[arg(long, hide = true, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP memory limit (obsolete)
    #[arg(long, hide = true, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit: 512k, 100m, 1g); -1 for none
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit)
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids; -1 for none
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

pub fn run(root: &Path, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema, --mem-bw-schema: Intel RDT is not supported");
    }
    let changes = match &args.resources {
        Some(source) => {
            if from_flags(args)? != LinuxResources::default() {
                bail!("update: give either --resources or single-value flags, not both");
            }
            read_resources(source)?
        }
        None => from_flags(args)?,
    };
    let (mut container, _lock) = Container::load_locked(root, &args.id)?;
    container.update(&changes)?;
    Ok(ExitCode::SUCCESS)
}

fn read_resources(source: &str) -> anyhow::Result<LinuxResources> {
    let mut text = Vec::new();
    let shown = if source == "-" { "stdin" } else { source };
    let read = if source == "-" {
        std::io::stdin().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::read(source).map(|t| text = t)
    };
    read.map_err(|e| anyhow!("read resources from {shown}: {}", crate::sys::reason(&e)))?;
    let mut raw: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| anyhow!("resources from {shown}: {e}"))?;
    go_key_case(&mut raw, false);
    let resources: LinuxResources = serde_path_to_error::deserialize(raw.clone())
        .map_err(|e| anyhow!("resources from {shown}: {}: {}", e.path(), e.inner()))?;
    // What the spec's types dropped is an unknown field.
    let dropped = crate::cgroups::dropped_fields(&raw, &resources);
    if !dropped.is_empty() {
        bail!(
            "resources from {shown}: unknown field {}",
            dropped.join(", ")
        );
    }
    Ok(resources)
}

/// Every field name of LinuxResources and the types in it.
const RESOURCE_KEYS: &[&str] = &[
    "devices",
    "allow",
    "type",
    "major",
    "minor",
    "access",
    "memory",
    "limit",
    "reservation",
    "swap",
    "kernel",
    "kernelTCP",
    "swappiness",
    "disableOOMKiller",
    "useHierarchy",
    "checkBeforeUpdate",
    "cpu",
    "shares",
    "quota",
    "idle",
    "burst",
    "period",
    "realtimeRuntime",
    "realtimePeriod",
    "cpus",
    "mems",
    "pids",
    "blockIO",
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
    "rate",
    "hugepageLimits",
    "pageSize",
    "network",
    "classID",
    "priorities",
    "name",
    "priority",
    "rdma",
    "hcaHandles",
    "hcaObjects",
    "unified",
];

/// Renames object keys that match a field name but for case to that name,
/// as Go's JSON decoder (runc's) matches them: `"Memory": {"Limit": 1}`.
/// The keys of the two maps are left alone: unified's file names, and
/// rdma's device names (whose values are structs again).
fn go_key_case(value: &mut serde_json::Value, map_keys: bool) {
    let serde_json::Value::Object(obj) = value else {
        if let serde_json::Value::Array(items) = value {
            items.iter_mut().for_each(|v| go_key_case(v, false));
        }
        return;
    };
    let entries = std::mem::take(obj);
    for (key, mut v) in entries {
        let name = match RESOURCE_KEYS.iter().find(|k| k.eq_ignore_ascii_case(&key)) {
            Some(known) if !map_keys && !obj.contains_key(*known) => known.to_string(),
            _ => key,
        };
        match name.as_str() {
            "unified" if !map_keys => {}
            "rdma" if !map_keys => go_key_case(&mut v, true),
            _ => go_key_case(&mut v, false),
        }
        obj.insert(name, v);
    }
}

/// runc's units.RAMInBytes: a number with an optional binary unit
/// (k, m, g, t, p; "b", "kb", "kib" alike), or -1.
fn bytes(flag: &str, text: &str) -> anyhow::Result<i64> {
    let invalid = || anyhow!("--{flag}: invalid size {text:?}");
    if text == "-1" {
        return Ok(-1);
    }
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(invalid()),
    };
    Ok((number * scale) as i64)
}

#[allow(deprecated)] // kernel memory: obsolete, still passed on (and warned about)
fn from_flags(args: &UpdateArgs) -> anyhow::Result<LinuxResources> {
    let mem = |flag, v: &Option<String>| v.as_deref().map(|t| bytes(flag, t)).transpose();
    let mut memory = LinuxMemory::default();
    memory.set_limit(mem("memory", &args.memory)?);
    memory.set_reservation(mem("memory-reservation", &args.memory_reservation)?);
    memory.set_swap(mem("memory-swap", &args.memory_swap)?);
    memory.set_kernel(mem("kernel-memory", &args.kernel_memory)?);
    memory.set_kernel_tcp(mem("kernel-memory-tcp", &args.kernel_memory_tcp)?);
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(args.cpu_share);
    cpu.set_quota(args.cpu_quota);
    cpu.set_burst(args.cpu_burst);
    cpu.set_period(args.cpu_period);
    cpu.set_realtime_period(args.cpu_rt_period);
    cpu.set_realtime_runtime(args.cpu_rt_runtime);
    cpu.set_cpus(args.cpuset_cpus.clone());
    cpu.set_mems(args.cpuset_mems.clone());
    cpu.set_idle(args.cpu_idle);
    let mut r = LinuxResources::default();
    if memory != LinuxMemory::default() {
        r.set_memory(Some(memory));
    }
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    // 0 means "leave it", as in runc.
    if let Some(weight) = args.blkio_weight.filter(|&w| w != 0) {
        let mut blkio = LinuxBlockIo::default();
        blkio.set_weight(Some(weight));
        r.set_block_io(Some(blkio));
    }
    if let Some(limit) = args.pids_limit.filter(|&l| l != 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::{bytes, go_key_case};

    #[test]
    fn keys_in_any_case_as_go_reads_them() {
        let mut v = serde_json::json!({
            "Memory": {"LIMIT": 1, "kernelTcp": 2},
            "CPU": {"Shares": 3},
            "BlockIo": {"ThrottleReadIopsDevice": [{"Major": 8, "Minor": 0, "Rate": 9}]},
            "Unified": {"Memory.High": "5"},
            "RDMA": {"MLX5_0": {"HcaHandles": 1}}
        });
        go_key_case(&mut v, false);
        assert_eq!(
            v,
            serde_json::json!({
                "memory": {"limit": 1, "kernelTCP": 2},
                "cpu": {"shares": 3},
                "blockIO": {"throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 9}]},
                "unified": {"Memory.High": "5"},
                "rdma": {"MLX5_0": {"hcaHandles": 1}}
            })
        );
    }

    #[test]
    fn sizes_as_runc_reads_them() {
        assert_eq!(bytes("memory", "1024").unwrap(), 1024);
        assert_eq!(bytes("memory", "100m").unwrap(), 100 << 20);
        assert_eq!(bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("memory", "512KiB").unwrap(), 512 << 10);
        assert_eq!(bytes("memory", "1.5k").unwrap(), 1536);
        assert_eq!(bytes("memory", "-1").unwrap(), -1);
        assert!(bytes("memory", "12x").is_err());
        assert!(bytes("memory", "m").is_err());
    }
}
