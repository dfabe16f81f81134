//! linux.resources onto a live cgroup, at create and at `update`.
//!
//! cgroups-rs writes what it handles faithfully: cpuset, cpu shares, quota
//! and period, the v1 memory limits (it orders limit and memsw writes),
//! pids, blkio throttles, v1 device rules and v1 network classes. The rest
//! is written here: fields cgroups-rs ignores (burst, idle, realtime order,
//! useHierarchy, disableOOMKiller=false, kernel memory, rdma, unified), the
//! ones it gets wrong on this kind of host (BFQ weights, hugetlb sizes it
//! skips, v2 memory, which it refuses below usage and whose swappiness it
//! writes to memory.swap.max).
//!
//! Every field is checked against the host before anything is written, so
//! a field the host cannot honour fails the whole call with its name and
//! the reason, never silently. Only the obsolete kernel memory limits are a
//! warning, as in runc, since the kernel itself dropped them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cgroups_rs::manager::Manager;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxPids,
    LinuxResources, LinuxThrottleDevice, LinuxWeightDeviceBuilder,
};

use super::fs::Fs;
use super::{controller_dir, is_unified, CgroupError};
use crate::logging;

/// What the kernel reads back from a v1 limit file that holds no limit.
const V1_UNLIMITED: i64 = 0x7FFF_FFFF_FFFF_F000;

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The container's cgroup as files: one directory per controller on v1,
/// one directory on v2.
struct Files<'a> {
    path: &'a str,
    v2: bool,
}

impl Files<'_> {
    fn dir(&self, ctrl: &str) -> Option<PathBuf> {
        controller_dir(self.path, ctrl).filter(|d| d.is_dir())
    }

    /// The file if the kernel offers it for this cgroup.
    fn file(&self, ctrl: &str, name: &str) -> Option<PathBuf> {
        self.dir(ctrl).map(|d| d.join(name)).filter(|f| f.exists())
    }

    fn has(&self, ctrl: &str, name: &str) -> bool {
        self.file(ctrl, name).is_some()
    }

    /// Whether `ctrl`'s files are cgroup v2's: on a v2 host, and on a
    /// hybrid host for a controller in its cgroup2 hierarchy.
    fn v2_for(&self, ctrl: &str) -> bool {
        self.v2
            || super::hybrid_unified()
                .is_some_and(|u| self.dir(ctrl).is_some_and(|d| d.starts_with(&u)))
    }

    fn read(&self, ctrl: &str, name: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.file(ctrl, name)?).ok()?;
        Some(text.trim().to_string())
    }

    fn write(&self, field: &str, ctrl: &str, name: &str, value: &str) -> Result<(), CgroupError> {
        let path = match self.dir(ctrl) {
            Some(dir) => dir.join(name),
            None => {
                return Err(unsupported(
                    field,
                    format!("no {ctrl} controller for cgroup {}", self.path),
                ))
            }
        };
        std::fs::write(&path, value).map_err(|source| CgroupError::Write {
            field: field.into(),
            path: path.display().to_string(),
            value: value.into(),
            source,
        })
    }
}

/// A pids limit of 0 (config-linux.md, PIDs: a valid limit): no new task
/// in the cgroup. Set after init is forked, or init could not be.
pub(super) fn no_new_tasks(path: &str) -> Result<(), CgroupError> {
    let files = Files {
        path,
        v2: is_unified(),
    };
    files.write("pids.limit", "pids", "pids.max", "0")
}

/// Checks every field against the host, then applies them, in runc's
/// order (cpuset and devices before memory and cpu; unified last, so its
/// raw values win).
pub(super) fn apply(cg: &mut Fs, r: &LinuxResources) -> Result<(), CgroupError> {
    let r = &without_zero_weights(r);
    let path = cg.path.clone();
    let files = Files {
        path: &path,
        v2: is_unified(),
    };
    enable_hybrid(&files, r)?;
    check(&files, r)?;
    if let Some(cpu) = r.cpu() {
        cpuset(cg, cpu)?;
    }
    if let Some(devices) = r.devices() {
        if files.v2 {
            let dir = controller_dir(&path, "devices").expect("v2 has one directory");
            super::devices_bpf::apply(&dir, devices)?;
        } else {
            devices_v1(&files, devices)?;
        }
    }
    if let Some(memory) = r.memory() {
        if files.v2 {
            memory_v2(&files, memory)?;
        } else {
            memory_v1(cg, &files, memory)?;
        }
    }
    if let Some(cpu) = r.cpu() {
        self::cpu(cg, &files, cpu)?;
    }
    if let Some(pids) = r.pids() {
        // 0 leaves the limit as it is here (runc's `update` sends 0 for
        // "unset"); at create it is a real limit, which `no_new_tasks`
        // sets once init is forked. A negative one lifts the limit.
        if pids.limit() != 0 {
            let mut only = LinuxResources::default();
            only.set_pids(Some(*pids));
            library(cg, "pids.limit", &only)?;
        }
    }
    if let Some(blkio) = r.block_io() {
        block_io(cg, &files, blkio)?;
    }
    for limit in r.hugepage_limits().iter().flatten() {
        let size = limit.page_size();
        let field = format!("hugepageLimits[{size}]");
        let value = limit.limit().to_string();
        if files.v2_for("hugetlb") {
            files.write(&field, "hugetlb", &format!("hugetlb.{size}.max"), &value)?;
            // Reservations too, where the kernel accounts them (5.7+), so a
            // mmap'd but untouched page can't slip past the limit.
            let rsvd = format!("hugetlb.{size}.rsvd.max");
            if files.has("hugetlb", &rsvd) {
                files.write(&field, "hugetlb", &rsvd, &value)?;
            }
        } else {
            let name = format!("hugetlb.{size}.limit_in_bytes");
            files.write(&field, "hugetlb", &name, &value)?;
        }
    }
    if let Some(network) = r.network() {
        let mut only = LinuxResources::default();
        only.set_network(Some(network.clone()));
        library(cg, "network", &only)?;
    }
    for (device, limit) in r.rdma().iter().flatten() {
        let mut value = device.clone();
        if let Some(h) = limit.hca_handles() {
            value.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            value.push_str(&format!(" hca_object={o}"));
        }
        if value != *device {
            files.write(&format!("rdma.{device}"), "rdma", "rdma.max", &value)?;
        }
    }
    for (key, value) in r.unified().iter().flatten() {
        let ctrl = key.split('.').next().unwrap_or_default();
        if ctrl == "cgroup" && !files.v2 {
            // cgroup.* of the hybrid host's cgroup2 cgroup.
            let dir = super::hybrid_unified()
                .map(|u| u.join(files.path.trim_start_matches('/')))
                .ok_or_else(|| unsupported(format!("unified.{key}"), "no cgroup2 hierarchy"))?;
            std::fs::write(dir.join(key), value).map_err(|source| CgroupError::Write {
                field: format!("unified.{key}"),
                path: dir.join(key).display().to_string(),
                value: value.clone(),
                source,
            })?;
            continue;
        }
        files.write(&format!("unified.{key}"), ctrl, key, value)?;
    }
    Ok(())
}

/// On a hybrid host, the controllers of the cgroup2 hierarchy that `r`
/// writes are enabled above the container's cgroup there first, so that
/// its files exist to be checked and written.
fn enable_hybrid(files: &Files, r: &LinuxResources) -> Result<(), CgroupError> {
    if files.v2 || super::hybrid_unified().is_none() {
        return Ok(());
    }
    let held = super::hybrid_controllers();
    let mut wanted: Vec<&str> = r
        .unified()
        .iter()
        .flatten()
        .filter_map(|(k, _)| k.split('.').next())
        .collect();
    if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()) {
        wanted.push("hugetlb");
    }
    for ctrl in wanted {
        if held.iter().any(|c| c == ctrl) && files.v2_for(ctrl) {
            super::hybrid_enable(files.path, ctrl)?;
        }
    }
    Ok(())
}

/// A block IO weight of 0 means "not set", as in runc: docker sends
/// `"weight": 0` for every container that asked for none.
fn without_zero_weights(r: &LinuxResources) -> LinuxResources {
    let mut r = r.clone();
    if let Some(mut b) = r.block_io().clone() {
        let set = |w: Option<u16>| w.filter(|w| *w != 0);
        b.set_weight(set(b.weight()));
        b.set_leaf_weight(set(b.leaf_weight()));
        if let Some(devices) = b.weight_device().clone() {
            let devices = devices
                .into_iter()
                .filter_map(|d| {
                    let mut kept = LinuxWeightDeviceBuilder::default()
                        .major(d.major())
                        .minor(d.minor());
                    if let Some(w) = set(d.weight()) {
                        kept = kept.weight(w);
                    }
                    if let Some(w) = set(d.leaf_weight()) {
                        kept = kept.leaf_weight(w);
                    }
                    kept.build()
                        .ok()
                        .filter(|d| d.weight().is_some() || d.leaf_weight().is_some())
                })
                .collect();
            b.set_weight_device(Some(devices));
        }
        r.set_block_io(Some(b));
    }
    r
}

/// Refuses, before any write, every field this host cannot honour.
fn check(files: &Files, r: &LinuxResources) -> Result<(), CgroupError> {
    let v2 = files.v2;
    if let Some(m) = r.memory() {
        if let Some(s) = m.swappiness() {
            if v2 {
                return Err(unsupported(
                    "memory.swappiness",
                    "cgroup v2 has no per-cgroup swappiness",
                ));
            }
            if s > 100 {
                return Err(unsupported(
                    "memory.swappiness",
                    format!("{s} is above 100"),
                ));
            }
        }
        if v2 && m.disable_oom_killer() == Some(true) {
            return Err(unsupported(
                "memory.disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer",
            ));
        }
        if v2 && m.use_hierarchy() == Some(false) {
            return Err(unsupported(
                "memory.useHierarchy",
                "cgroup v2 is always hierarchical",
            ));
        }
        if m.swap().is_some_and(|s| s != 0)
            && !v2
            && !files.has("memory", "memory.memsw.limit_in_bytes")
        {
            return Err(unsupported(
                "memory.swap",
                "this kernel does not account swap (no memory.memsw.limit_in_bytes; boot with swapaccount=1)",
            ));
        }
    }
    if let Some(c) = r.cpu() {
        let rt = c.realtime_runtime().is_some() || c.realtime_period().is_some();
        if rt && v2 {
            return Err(unsupported(
                "cpu.realtimeRuntime",
                "cgroup v2 has no realtime CPU limits",
            ));
        }
        if rt && !files.has("cpu", "cpu.rt_runtime_us") {
            return Err(unsupported(
                "cpu.realtimeRuntime",
                "this kernel has no cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED is off)",
            ));
        }
        let burst = if v2 {
            "cpu.max.burst"
        } else {
            "cpu.cfs_burst_us"
        };
        if c.burst().is_some() && !files.has("cpu", burst) {
            return Err(unsupported(
                "cpu.burst",
                format!("this kernel has no {burst} (Linux 5.14 or later)"),
            ));
        }
        if c.idle().is_some() && !files.has("cpu", "cpu.idle") {
            return Err(unsupported(
                "cpu.idle",
                "this kernel has no cpu.idle (Linux 5.15 or later)",
            ));
        }
    }
    if let Some(b) = r.block_io() {
        let leaf = b.leaf_weight().is_some()
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some());
        if leaf && (v2 || !files.has("blkio", "blkio.leaf_weight")) {
            return Err(unsupported(
                "blockIO.leafWeight",
                "this kernel has no blkio.leaf_weight (it was CFQ's; BFQ and cgroup v2 have no leaf weight)",
            ));
        }
        // Name the field that asked: the weight, or the first device weight.
        let asked = b
            .weight()
            .map(|_| "blockIO.weight".to_string())
            .or_else(|| {
                b.weight_device()
                    .iter()
                    .flatten()
                    .find(|d| d.weight().is_some())
                    .map(|d| format!("blockIO.weightDevice[{}:{}]", d.major(), d.minor()))
            });
        if let Some(field) = asked.filter(|_| weight_file(files, false).is_none()) {
            return Err(unsupported(
                field,
                "this kernel offers no I/O weight file (blkio.weight, blkio.bfq.weight, io.weight)",
            ));
        }
    }
    for limit in r.hugepage_limits().iter().flatten() {
        let size = limit.page_size();
        let field = format!("hugepageLimits[{size}]");
        if files.dir("hugetlb").is_none() {
            return Err(unsupported(field, "no hugetlb controller on this host"));
        }
        let name = if files.v2_for("hugetlb") {
            format!("hugetlb.{size}.max")
        } else {
            format!("hugetlb.{size}.limit_in_bytes")
        };
        if !files.has("hugetlb", &name) {
            return Err(unsupported(
                field,
                format!("this host has no {size} huge pages (no {name})"),
            ));
        }
    }
    if let Some(n) = r.network() {
        let wanted = [
            ("network.classID", "net_cls", n.class_id().is_some()),
            ("network.priorities", "net_prio", n.priorities().is_some()),
        ];
        for (field, ctrl, set) in wanted {
            if !set {
                continue;
            }
            if v2 {
                return Err(unsupported(
                    field,
                    format!("cgroup v2 has no {ctrl} controller"),
                ));
            }
            if files.dir(ctrl).is_none() {
                return Err(unsupported(
                    field,
                    format!("no {ctrl} hierarchy is mounted on this host"),
                ));
            }
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) && !files.has("rdma", "rdma.max") {
        return Err(unsupported("rdma", "no rdma controller on this host"));
    }
    for key in r.unified().iter().flatten().map(|(k, _)| k) {
        let field = format!("unified.{key}");
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(unsupported(field, "not a cgroup file name"));
        }
        let ctrl = key.split('.').next().unwrap_or_default();
        // A hybrid host: only what its cgroup2 hierarchy holds (runc's
        // hybrid rule); the rest is in v1 hierarchies.
        if !(v2 || ctrl == "cgroup" || files.v2_for(ctrl)) {
            let held = super::hybrid_controllers().join(" ");
            return Err(unsupported(
                field,
                if super::hybrid_unified().is_some() {
                    format!("this hybrid host's cgroup2 hierarchy holds only [{held}]: {ctrl} is in a v1 hierarchy")
                } else {
                    "this host has no cgroup2 hierarchy".to_string()
                },
            ));
        }
        if !files.has(ctrl, key) {
            return Err(unsupported(
                field,
                format!(
                    "no such file in cgroup {} (is the {ctrl} controller enabled for it?)",
                    files.path
                ),
            ));
        }
    }
    Ok(())
}

/// Runs one section through cgroups-rs, naming the section on failure.
/// The rules, in order, to devices.allow and devices.deny, after "a" to
/// devices.deny: an allow list, as runc makes (its rules start from
/// nothing allowed), so only what a rule allows is. Written here, not
/// through cgroups-rs, which writes a wildcard major or minor as 0
/// ("c 136:0" instead of "c 136:*": every pty but the first denied).
fn devices_v1(files: &Files, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    use std::io::Write;
    let Some(dir) = files.dir("devices") else {
        return Err(unsupported(
            "devices",
            format!("no devices controller for cgroup {}", files.path),
        ));
    };
    // One open of each file for every rule (the kernel takes one rule per
    // write, whatever the offset): a dozen rules at every create.
    let mut open: [Option<(PathBuf, std::fs::File)>; 2] = [None, None];
    let deny_all = dir.join("devices.deny");
    let file = (std::fs::OpenOptions::new().write(true).open(&deny_all))
        .and_then(|mut f| f.write_all(b"a").map(|()| f))
        .map_err(|source| CgroupError::Write {
            field: "devices".into(),
            path: deny_all.display().to_string(),
            value: "a".into(),
            source,
        })?;
    open[1] = Some((deny_all, file));
    for (i, rule) in rules.iter().enumerate() {
        let (slot, name) = if rule.allow() {
            (0, "devices.allow")
        } else {
            (1, "devices.deny")
        };
        let value = device_rule_v1(rule);
        let failed = |path: &Path, source| CgroupError::Write {
            field: format!("devices[{i}]"),
            path: path.display().to_string(),
            value: value.clone(),
            source,
        };
        if open[slot].is_none() {
            let path = dir.join(name);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| failed(&path, e))?;
            open[slot] = Some((path, file));
        }
        let (path, file) = open[slot].as_mut().expect("opened above");
        file.write_all(value.as_bytes())
            .map_err(|e| failed(path, e))?;
    }
    Ok(())
}

/// "c 136:* rwm": the v1 form of a rule; `a` always covers every number.
fn device_rule_v1(rule: &LinuxDeviceCgroup) -> String {
    let number = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => format!("a *:* {access}"),
        typ => format!(
            "{} {}:{} {access}",
            // The v1 files know only a, b and c; u is a char device.
            if typ == LinuxDeviceType::B { "b" } else { "c" },
            number(rule.major()),
            number(rule.minor())
        ),
    }
}

fn library(cg: &mut Fs, field: &'static str, r: &LinuxResources) -> Result<(), CgroupError> {
    cg.manager_mut()?.set(r).map_err(|e| CgroupError::Library {
        field,
        path: cg.path.clone(),
        reason: library_reason(&e),
    })
}

/// cgroups-rs' message with its OS cause in words ("device or resource
/// busy"), not the Debug form it prints by itself.
fn library_reason(e: &cgroups_rs::manager::Error) -> String {
    use std::error::Error;
    let mut source: Option<&dyn Error> = Some(e);
    let mut io = None;
    while let Some(s) = source {
        if let Some(err) = s.downcast_ref::<std::io::Error>() {
            io = Some(err);
        }
        source = s.source();
    }
    let what = match e {
        cgroups_rs::manager::Error::Cgroupfs(fs) => fs.kind().to_string(),
        other => other.to_string(),
    };
    match io {
        Some(io) => format!("{what}: {}", crate::sys::reason(io)),
        None => what,
    }
}

fn cpuset(cg: &mut Fs, c: &LinuxCpu) -> Result<(), CgroupError> {
    // An empty list means "unset" (runc's `update` sends "" for a flag not
    // given); written, it would leave the tasks no CPU.
    let cpus = c.cpus().clone().filter(|s| !s.is_empty());
    let mems = c.mems().clone().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let mut only = LinuxCpu::default();
    only.set_cpus(cpus);
    only.set_mems(mems);
    let mut r = LinuxResources::default();
    r.set_cpu(Some(only));
    library(cg, "cpu.cpus", &r)
}

fn cpu(cg: &mut Fs, files: &Files, c: &LinuxCpu) -> Result<(), CgroupError> {
    // Before the shares: an idle cgroup refuses a weight.
    if let Some(idle) = c.idle() {
        files.write("cpu.idle", "cpu", "cpu.idle", &idle.to_string())?;
    }
    let mut only = LinuxCpu::default();
    only.set_shares(c.shares().filter(|&s| s != 0));
    only.set_quota(c.quota());
    only.set_period(c.period());
    if only != LinuxCpu::default() {
        let mut r = LinuxResources::default();
        r.set_cpu(Some(only));
        library(cg, "cpu", &r)?;
    }
    // The kernel clamps shares to [2, 262144] without a word: say so, as runc does.
    if let Some(shares) = c.shares().filter(|&s| s != 0 && !files.v2) {
        let got = files.read("cpu", "cpu.shares").unwrap_or_default();
        if got != shares.to_string() {
            return Err(unsupported(
                "cpu.shares",
                format!("{shares} is out of the kernel's range 2..262144 (it set {got})"),
            ));
        }
    }
    // Period before runtime: a runtime is checked against the period in place.
    if let Some(period) = c.realtime_period() {
        files.write(
            "cpu.realtimePeriod",
            "cpu",
            "cpu.rt_period_us",
            &period.to_string(),
        )?;
    }
    if let Some(runtime) = c.realtime_runtime() {
        files.write(
            "cpu.realtimeRuntime",
            "cpu",
            "cpu.rt_runtime_us",
            &runtime.to_string(),
        )?;
    }
    // After the quota: the kernel checks the burst against it.
    if let Some(burst) = c.burst() {
        let name = if files.v2 {
            "cpu.max.burst"
        } else {
            "cpu.cfs_burst_us"
        };
        files.write("cpu.burst", "cpu", name, &burst.to_string())?;
    }
    Ok(())
}

/// checkBeforeUpdate: a new limit at or below what is in use is refused
/// instead of letting the kernel reclaim or OOM-kill to meet it.
fn check_usage(files: &Files, m: &LinuxMemory) -> Result<(), CgroupError> {
    let Some(limit) = m.limit().filter(|&l| l > 0) else {
        return Ok(());
    };
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let name = if files.v2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    let usage: i64 = files
        .read("memory", name)
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    if limit <= usage {
        return Err(unsupported(
            "memory.limit",
            format!("{limit} is not above the current usage {usage} (checkBeforeUpdate)"),
        ));
    }
    Ok(())
}

#[allow(deprecated)] // memory.kernel: obsolete in the spec, still read and reported
fn memory_v1(cg: &mut Fs, files: &Files, m: &LinuxMemory) -> Result<(), CgroupError> {
    check_usage(files, m)?;
    let mut only = LinuxMemory::default();
    only.set_limit(m.limit());
    only.set_swap(m.swap());
    only.set_reservation(m.reservation());
    only.set_swappiness(m.swappiness());
    only.set_disable_oom_killer(m.disable_oom_killer().filter(|&d| d));
    if only != LinuxMemory::default() {
        let mut r = LinuxResources::default();
        r.set_memory(Some(only));
        library(cg, "memory", &r)?;
    }
    // cgroups-rs only ever disables the OOM killer; `update` may turn it back on.
    if m.disable_oom_killer() == Some(false) {
        files.write(
            "memory.disableOOMKiller",
            "memory",
            "memory.oom_control",
            "0",
        )?;
    }
    if let Some(h) = m.use_hierarchy() {
        files.write(
            "memory.useHierarchy",
            "memory",
            "memory.use_hierarchy",
            if h { "1" } else { "0" },
        )?;
    }
    kernel_limit(
        files,
        "memory.kernel",
        "memory.kmem.limit_in_bytes",
        m.kernel(),
    )?;
    kernel_limit(
        files,
        "memory.kernelTCP",
        "memory.kmem.tcp.limit_in_bytes",
        m.kernel_tcp(),
    )?;
    Ok(())
}

/// A v1 kernel memory limit where the kernel still enforces it; a warning
/// where it is gone (v2, or kmem.limit_in_bytes, which Linux 6.1 turned
/// into a file that accepts and ignores writes).
fn kernel_limit(
    files: &Files,
    field: &str,
    name: &str,
    value: Option<i64>,
) -> Result<(), CgroupError> {
    let Some(value) = value else { return Ok(()) };
    if files.v2 {
        logging::warn(&format!(
            "linux.resources.{field}: ignored: cgroup v2 has no separate kernel memory limit (kernel memory is counted in memory.max)"
        ));
        return Ok(());
    }
    if !files.has("memory", name) {
        logging::warn(&format!(
            "linux.resources.{field}: ignored: this kernel has no {name} (kernel memory is counted in the memory limit)"
        ));
        return Ok(());
    }
    files.write(field, "memory", name, &value.to_string())?;
    let kept: i64 = files
        .read("memory", name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(V1_UNLIMITED);
    if value >= 0 && kept >= V1_UNLIMITED {
        logging::warn(&format!(
            "linux.resources.{field}: ignored: this kernel accepts but no longer enforces {name} (kernel memory is counted in the memory limit)"
        ));
    }
    Ok(())
}

#[allow(deprecated)]
fn memory_v2(files: &Files, m: &LinuxMemory) -> Result<(), CgroupError> {
    check_usage(files, m)?;
    let max = |v: i64| {
        if v < 0 {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    if let Some(limit) = m.limit() {
        files.write("memory.limit", "memory", "memory.max", &max(limit))?;
    }
    // The spec's swap is memory+swap; v2's memory.swap.max is swap alone.
    if let Some(swap) = m.swap().filter(|&s| s != 0) {
        let limit = match m.limit() {
            Some(l) => l,
            None => match files.read("memory", "memory.max").as_deref() {
                Some("max") | None => -1,
                Some(v) => v.parse().unwrap_or(-1),
            },
        };
        let swap_only = if swap < 0 {
            -1
        } else if limit < 0 {
            swap
        } else if swap < limit {
            return Err(unsupported(
                "memory.swap",
                format!("{swap} (memory+swap) is below the memory limit {limit}"),
            ));
        } else {
            swap - limit
        };
        files.write("memory.swap", "memory", "memory.swap.max", &max(swap_only))?;
    } else if m.limit() == Some(-1) && m.swap().is_none() {
        // runc: an unlimited memory with no swap given lifts the swap limit too.
        files.write("memory.swap", "memory", "memory.swap.max", "max")?;
    }
    if let Some(reservation) = m.reservation() {
        files.write(
            "memory.reservation",
            "memory",
            "memory.low",
            &max(reservation),
        )?;
    }
    kernel_limit(
        files,
        "memory.kernel",
        "memory.kmem.limit_in_bytes",
        m.kernel(),
    )?;
    kernel_limit(files, "memory.kernelTCP", "", m.kernel_tcp())?;
    Ok(())
}

/// The proportional weight file: BFQ's where the kernel has BFQ's, else
/// the generic one. Returns (name, v2 io.weight needs converting).
fn weight_file(files: &Files, device: bool) -> Option<(&'static str, bool)> {
    let candidates: &[(&str, &str, bool)] = if files.v2 {
        &[
            ("io.bfq.weight", "io.bfq.weight_device", false),
            ("io.weight", "io.weight", true),
        ]
    } else {
        &[
            ("blkio.weight", "blkio.weight_device", false),
            ("blkio.bfq.weight", "blkio.bfq.weight_device", false),
        ]
    };
    let ctrl = if files.v2 { "io" } else { "blkio" };
    candidates
        .iter()
        .find(|(whole, _, _)| files.has(ctrl, whole))
        .map(|&(whole, dev, convert)| (if device { dev } else { whole }, convert))
}

/// blkio weight [10, 1000] to v2 io.weight [1, 10000].
pub(super) fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

fn block_io(cg: &mut Fs, files: &Files, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let ctrl = if files.v2 { "io" } else { "blkio" };
    let convert = |w: u16, c: bool| if c { io_weight(w) } else { u64::from(w) };
    if let Some(w) = b.weight() {
        let (name, c) = weight_file(files, false).expect("checked");
        let value = if c {
            format!("default {}", io_weight(w))
        } else {
            convert(w, c).to_string()
        };
        files.write("blockIO.weight", ctrl, name, &value)?;
    }
    if let Some(w) = b.leaf_weight() {
        files.write(
            "blockIO.leafWeight",
            ctrl,
            "blkio.leaf_weight",
            &w.to_string(),
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(w) = d.weight() {
            let (name, c) = weight_file(files, true).expect("checked");
            let field = format!("blockIO.weightDevice[{dev}]");
            let value = format!("{dev} {}", convert(w, c));
            match files.write(&field, ctrl, name, &value) {
                // BFQ's per-device file takes only devices BFQ schedules.
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EOPNOTSUPP) && name.contains("bfq") =>
                {
                    return Err(unsupported(
                        field,
                        format!("device {dev} does not use the BFQ I/O scheduler, so {name} has no weight for it"),
                    ));
                }
                other => other?,
            }
        }
        if let Some(w) = d.leaf_weight() {
            let field = format!("blockIO.weightDevice[{dev}].leafWeight");
            files.write(
                &field,
                ctrl,
                "blkio.leaf_weight_device",
                &format!("{dev} {w}"),
            )?;
        }
    }
    let throttles = |l: &Option<Vec<LinuxThrottleDevice>>| l.clone().filter(|l| !l.is_empty());
    let mut only = LinuxBlockIo::default();
    only.set_throttle_read_bps_device(throttles(b.throttle_read_bps_device()));
    only.set_throttle_write_bps_device(throttles(b.throttle_write_bps_device()));
    only.set_throttle_read_iops_device(throttles(b.throttle_read_iops_device()));
    only.set_throttle_write_iops_device(throttles(b.throttle_write_iops_device()));
    if only != LinuxBlockIo::default() {
        let mut r = LinuxResources::default();
        r.set_block_io(Some(only));
        library(cg, "blockIO", &r)?;
    }
    Ok(())
}

/// Folds `changes` into `base`: what `update` records as the container's
/// resources. A field absent from `changes` keeps its value; device-keyed
/// lists are merged per device, maps per key.
#[allow(deprecated)]
pub fn merge(base: &mut LinuxResources, changes: &LinuxResources) {
    if let Some(c) = changes.memory() {
        let mut m = base.memory().unwrap_or_default();
        macro_rules! take {
            ($($get:ident $set:ident),*) => {$(
                if c.$get().is_some() { m.$set(c.$get()); }
            )*};
        }
        take!(limit set_limit, reservation set_reservation, swap set_swap,
              kernel set_kernel, kernel_tcp set_kernel_tcp, swappiness set_swappiness,
              disable_oom_killer set_disable_oom_killer, use_hierarchy set_use_hierarchy,
              check_before_update set_check_before_update);
        base.set_memory(Some(m));
    }
    if let Some(c) = changes.cpu() {
        let mut m = base.cpu().clone().unwrap_or_default();
        macro_rules! take {
            ($($get:ident $set:ident),*) => {$(
                if c.$get().is_some() { m.$set(c.$get()); }
            )*};
        }
        take!(shares set_shares, quota set_quota, burst set_burst, period set_period,
              realtime_runtime set_realtime_runtime, realtime_period set_realtime_period,
              idle set_idle);
        if let Some(cpus) = c.cpus().clone().filter(|s| !s.is_empty()) {
            m.set_cpus(Some(cpus));
        }
        if let Some(mems) = c.mems().clone().filter(|s| !s.is_empty()) {
            m.set_mems(Some(mems));
        }
        base.set_cpu(Some(m));
    }
    if let Some(p) = changes.pids().filter(|p| p.limit() != 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(p.limit());
        base.set_pids(Some(pids));
    }
    if let Some(c) = changes.block_io() {
        let mut b = base.block_io().clone().unwrap_or_default();
        if c.weight().is_some() {
            b.set_weight(c.weight());
        }
        if c.leaf_weight().is_some() {
            b.set_leaf_weight(c.leaf_weight());
        }
        let key = |d: &oci_spec::runtime::LinuxWeightDevice| (d.major(), d.minor());
        b.set_weight_device(merge_list(b.weight_device(), c.weight_device(), key));
        let key = |d: &LinuxThrottleDevice| (d.major(), d.minor());
        b.set_throttle_read_bps_device(merge_list(
            b.throttle_read_bps_device(),
            c.throttle_read_bps_device(),
            key,
        ));
        b.set_throttle_write_bps_device(merge_list(
            b.throttle_write_bps_device(),
            c.throttle_write_bps_device(),
            key,
        ));
        b.set_throttle_read_iops_device(merge_list(
            b.throttle_read_iops_device(),
            c.throttle_read_iops_device(),
            key,
        ));
        b.set_throttle_write_iops_device(merge_list(
            b.throttle_write_iops_device(),
            c.throttle_write_iops_device(),
            key,
        ));
        base.set_block_io(Some(b));
    }
    let limits = merge_list(base.hugepage_limits(), changes.hugepage_limits(), |l| {
        l.page_size().clone()
    });
    base.set_hugepage_limits(limits);
    if let Some(c) = changes.network() {
        let mut n = base.network().clone().unwrap_or_default();
        if c.class_id().is_some() {
            n.set_class_id(c.class_id());
        }
        n.set_priorities(merge_list(n.priorities(), c.priorities(), |p| {
            p.name().clone()
        }));
        base.set_network(Some(n));
    }
    base.set_rdma(merge_map(base.rdma(), changes.rdma()));
    base.set_unified(merge_map(base.unified(), changes.unified()));
}

/// The JSON paths of `input` that parsing into `parsed` dropped: keys the
/// spec does not know (a misspelt "throttleReadIopsDevice" would otherwise
/// vanish without a word). Null values count as absent.
pub fn dropped_fields(input: &serde_json::Value, parsed: &LinuxResources) -> Vec<String> {
    fn walk(input: &serde_json::Value, kept: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match (input, kept) {
            (serde_json::Value::Object(i), serde_json::Value::Object(k)) => {
                for (key, value) in i {
                    let path = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    match k.get(key) {
                        _ if value.is_null() => {}
                        Some(kv) => walk(value, kv, &path, out),
                        None => out.push(path),
                    }
                }
            }
            (serde_json::Value::Array(i), serde_json::Value::Array(k)) => {
                for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                    walk(iv, kv, &format!("{at}[{n}]"), out);
                }
            }
            _ => {}
        }
    }
    let kept = serde_json::to_value(parsed).unwrap_or_default();
    let mut out = Vec::new();
    walk(input, &kept, "", &mut out);
    out
}

/// `base` with each item of `changes` replacing the one with its key.
fn merge_list<T: Clone, K: PartialEq>(
    base: &Option<Vec<T>>,
    changes: &Option<Vec<T>>,
    key: impl Fn(&T) -> K,
) -> Option<Vec<T>> {
    let Some(changes) = changes else {
        return base.clone();
    };
    let mut out = base.clone().unwrap_or_default();
    for item in changes {
        match out.iter_mut().find(|o| key(o) == key(item)) {
            Some(o) => *o = item.clone(),
            None => out.push(item.clone()),
        }
    }
    Some(out)
}

fn merge_map<V: Clone>(
    base: &Option<HashMap<String, V>>,
    changes: &Option<HashMap<String, V>>,
) -> Option<HashMap<String, V>> {
    let Some(changes) = changes else {
        return base.clone();
    };
    let mut out = base.clone().unwrap_or_default();
    out.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn merge_keeps_what_an_update_leaves_out() {
        let mut base = res(serde_json::json!({
            "memory": {"limit": 100, "swap": 200},
            "cpu": {"shares": 512, "cpus": "0"},
            "pids": {"limit": 10},
            "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "unified": {"memory.high": "1000"}
        }));
        merge(
            &mut base,
            &res(serde_json::json!({
                "memory": {"limit": 150},
                "cpu": {"quota": 1000, "cpus": ""},
                "pids": {"limit": 0},
                "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 2},
                                                      {"major": 8, "minor": 16, "rate": 3}]},
                "unified": {"pids.max": "5"}
            })),
        );
        let m = base.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(150), Some(200)));
        let c = base.cpu().clone().unwrap();
        assert_eq!(c.shares(), Some(512));
        assert_eq!(c.quota(), Some(1000));
        assert_eq!(c.cpus().as_deref(), Some("0"));
        assert_eq!(base.pids().unwrap().limit(), 10);
        let t = base.block_io().clone().unwrap();
        let rates: Vec<u64> = t
            .throttle_read_bps_device()
            .iter()
            .flatten()
            .map(|d| d.rate())
            .collect();
        assert_eq!(rates, [2, 3]);
        assert_eq!(base.unified().as_ref().unwrap().len(), 2);
    }

    #[test]
    fn misspelt_fields_are_found() {
        let input = serde_json::json!({
            "memory": {"limit": 1, "kernel": null},
            "blockIO": {"throttleReadIopsDevice": [], "throttleReadIOPSDevice": [{"major": 1, "minor": 2, "rate": 3, "x": 1}]},
            "cpus": "0"
        });
        let parsed: LinuxResources = serde_json::from_value(input.clone()).unwrap();
        let mut dropped = dropped_fields(&input, &parsed);
        dropped.sort();
        assert_eq!(
            dropped,
            [
                "blockIO.throttleReadIOPSDevice[0].x",
                "blockIO.throttleReadIopsDevice",
                "cpus"
            ]
        );
    }

    #[test]
    fn zero_block_io_weights_mean_unset() {
        let r = res(serde_json::json!({"blockIO": {"weight": 0, "leafWeight": 0,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 0}, {"major": 8, "minor": 16, "weight": 300}]}}));
        let b = without_zero_weights(&r).block_io().clone().unwrap();
        assert_eq!(b.weight(), None);
        assert_eq!(b.leaf_weight(), None);
        let devices = b.weight_device().clone().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!((devices[0].minor(), devices[0].weight()), (16, Some(300)));
    }

    #[test]
    fn v1_device_rules_keep_their_wildcards() {
        let rule =
            |v: serde_json::Value| -> LinuxDeviceCgroup { serde_json::from_value(v).unwrap() };
        let r =
            rule(serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
        assert_eq!(device_rule_v1(&r), "c 136:* rwm");
        let r = rule(serde_json::json!({"allow": true, "type": "b", "access": "m"}));
        assert_eq!(device_rule_v1(&r), "b *:* m");
        let r = rule(serde_json::json!({"allow": false, "access": "rwm"}));
        assert_eq!(device_rule_v1(&r), "a *:* rwm");
        let r = rule(
            serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}),
        );
        assert_eq!(device_rule_v1(&r), "c 1:3 rw");
    }

    #[test]
    fn io_weight_conversion() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10000);
        assert_eq!(io_weight(500), 4950);
    }
}
