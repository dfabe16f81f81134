//! linux.resources as the container sees them through a cgroup mount at
//! /sys/fs/cgroup (its own cgroup is the mount's root, with or without a
//! cgroup namespace).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::tap::Tap;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// "0-2,4" as a set of numbers.
fn cpu_list(s: &str) -> BTreeSet<u32> {
    let mut set = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    set.insert(n);
                }
            }
        }
    }
    set
}

pub fn check(c: &Value, t: &mut Tap) {
    let r = &c["linux"]["resources"];
    if !r.is_object() {
        return;
    }
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 && !Path::new("/sys/fs/cgroup/pids").exists() {
        t.skip("linux.resources", "no cgroup mount at /sys/fs/cgroup");
        return;
    }
    // v1 file, v2 file, v2 value from the config value.
    let file = |v1: &str, v2f: &str| {
        if v2 {
            format!("/sys/fs/cgroup/{v2f}")
        } else {
            format!("/sys/fs/cgroup/{v1}")
        }
    };
    let max = |n: i64| {
        if n < 0 {
            "max".to_string()
        } else {
            n.to_string()
        }
    };
    if let Some(limit) = r["memory"]["limit"].as_i64() {
        let got = read(&file("memory/memory.limit_in_bytes", "memory.max"));
        let want = if v2 {
            max(limit)
        } else if limit < 0 {
            // v1 shows "unlimited" as the largest page-aligned i64.
            "9223372036854771712".into()
        } else {
            limit.to_string()
        };
        t.eq("linux.resources.memory.limit", got, Some(want));
    }
    if let Some(res) = r["memory"]["reservation"].as_i64() {
        let got = read(&file("memory/memory.soft_limit_in_bytes", "memory.low"));
        t.eq(
            "linux.resources.memory.reservation",
            got,
            Some(res.to_string()),
        );
    }
    if let Some(pids) = r["pids"]["limit"].as_i64() {
        let want = if pids < 0 {
            "max".into()
        } else {
            pids.to_string()
        };
        t.eq(
            "linux.resources.pids.limit",
            read(&file("pids/pids.max", "pids.max")),
            Some(want),
        );
    }
    if let Some(shares) = r["cpu"]["shares"].as_u64() {
        let (got, want) = if v2 {
            // runc's conversion of shares [2, 262144] to weight [1, 10000].
            let w = if shares == 0 {
                100
            } else {
                1 + ((shares.max(2) - 2) * 9999) / 262142
            };
            (read("/sys/fs/cgroup/cpu.weight"), w.to_string())
        } else {
            (read("/sys/fs/cgroup/cpu/cpu.shares"), shares.to_string())
        };
        t.eq("linux.resources.cpu.shares", got, Some(want));
    }
    let quota = r["cpu"]["quota"].as_i64();
    let period = r["cpu"]["period"].as_u64();
    if quota.is_some() || period.is_some() {
        if v2 {
            let got = read("/sys/fs/cgroup/cpu.max");
            let want = format!(
                "{} {}",
                quota.map(max).unwrap_or_else(|| "max".into()),
                period.unwrap_or(100000)
            );
            t.eq("linux.resources.cpu.quota and period", got, Some(want));
        } else {
            if let Some(q) = quota {
                t.eq(
                    "linux.resources.cpu.quota",
                    read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                    Some(q.to_string()),
                );
            }
            if let Some(p) = period {
                t.eq(
                    "linux.resources.cpu.period",
                    read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
                    Some(p.to_string()),
                );
            }
        }
    }
    for (field, name) in [("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")] {
        if let Some(want) = r["cpu"][field].as_str().filter(|s| !s.is_empty()) {
            let got = read(&file(
                &format!("cpuset/{name}"),
                &format!("{name}.effective"),
            ))
            .map(|s| cpu_list(&s));
            t.eq(
                &format!("linux.resources.cpu.{field}"),
                got,
                Some(cpu_list(want)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_compare_as_sets() {
        assert_eq!(cpu_list("0-2,4"), cpu_list("0,1,2,4"));
        assert_eq!(cpu_list(" 3 ").len(), 1);
        assert!(cpu_list("").is_empty());
    }
}
