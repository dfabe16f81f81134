//! The container's cgroup behind one interface, `Manager` (as runc's
//! cgroups.Manager and youki's CgroupManager): make it and put a process in
//! it, set resources, freeze, signal, read statistics and pids, remove it.
//! Two drivers implement it: `fs` (cgroupfs: carte writes the cgroup
//! filesystem itself) and `systemd` (a transient scope over D-Bus, with the
//! files written for what systemd has no property for). `create` picks the
//! driver from `--systemd-cgroup` and state.json records it; every later
//! verb gets its manager from `open`. Works on v1, v2 and hybrid hosts (on
//! hybrid the v1 controllers hold the limits). `resources` applies
//! linux.resources, `stats` reads what `events` prints, `oom` watches for
//! OOM kills.

mod devices_bpf;
mod fs;
mod none;
mod oom;
mod resources;
mod stats;
pub mod systemd;

pub use fs::{can_create, path_for, pids_in, refuse_frozen, SelfJoin};
pub use oom::{Oom, OomWatch};
pub use resources::{dropped_fields, merge};
pub use stats::Stats;

use std::path::{Path, PathBuf};

use cgroups_rs::fs::hierarchies;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxResources};
use serde::{Deserialize, Serialize};

/// Who makes and removes the container's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// carte itself, in the cgroup filesystem.
    #[default]
    Cgroupfs,
    /// systemd: a transient scope unit (`--systemd-cgroup`).
    Systemd,
    /// No cgroup: a rootless container without a writable one (none.rs).
    None,
}

/// The container's init as state.json recorded it: without a cgroup, its
/// processes are found through init's PID namespace (none.rs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Init {
    pub pid: i32,
    /// /proc/<pid>/stat's start time, so a reused pid is not taken for it.
    pub start_time: u64,
}

/// The container's cgroup, whichever driver made it. Verbs and the
/// process chain use only this; the driver is chosen once, by `create`
/// (from the flag) or by `open` (from state.json).
pub trait Manager {
    /// The cgroup's path below each hierarchy's root ("/<id>",
    /// "/system.slice/carte-<id>.scope").
    fn path(&self) -> &str;
    /// Makes the cgroup and puts `pid` (the intermediate) in it. On a v1
    /// host the caller gets the `tasks` files through which the child's
    /// child moves itself in every hierarchy (see `SelfJoin`).
    fn apply(&mut self, pid: i32) -> Result<SelfJoin, CgroupError>;
    /// Applies `resources` at create, with the device rules every
    /// container needs (see `device_rules`) after the config's own.
    fn set(
        &mut self,
        resources: &LinuxResources,
        devices: &[LinuxDevice],
    ) -> Result<(), CgroupError>;
    /// Applies the fields of `changes` to the live cgroup (`update`).
    /// Device rules are not in it: the caller refuses to change them.
    fn update(&mut self, changes: &LinuxResources) -> Result<(), CgroupError>;
    /// pids.max 0, for a config whose pids limit is 0 (once init exists).
    fn forbid_new_tasks(&self) -> Result<(), CgroupError>;
    /// Moves `pid` into the existing cgroup (`exec`).
    fn enter(&mut self, pid: i32) -> Result<(), CgroupError>;
    /// Freezes (pause) or thaws (resume), waiting until it is done.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError>;
    /// True while the freezer holds the cgroup (the `paused` status).
    fn is_frozen(&self) -> bool;
    /// Sends `signal` to every process in the cgroup and below.
    fn kill(&self, signal: i32);
    /// The statistics `events` prints.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// Watches the cgroup for OOM kills (`events`).
    fn oom_watch(&self) -> Result<OomWatch, CgroupError> {
        OomWatch::new(self.path())
    }
    /// Every process in the cgroup and below.
    fn pids(&self) -> Vec<i32>;
    /// Hands the cgroup to the container's user (see `delegate`).
    fn delegate(&self, uid: u32, gid: u32) -> Result<(), CgroupError> {
        delegate(self.path(), uid, gid)
    }
    /// Kills what is left and removes the cgroup (and, for systemd, the
    /// unit), so that nothing of it remains.
    fn destroy(&mut self) -> Result<(), CgroupError>;
}

/// The manager of a new container's cgroup, for `create`: its path from
/// linux.cgroupsPath in the driver's own syntax, checked here.
/// `device_rules`: false for a rootless container, which cannot write them
/// (`rootless::Rootless::device_rules`).
pub fn for_create(
    driver: Driver,
    spec: &oci_spec::runtime::Spec,
    id: &str,
    device_rules: bool,
) -> Result<Box<dyn Manager>, CgroupError> {
    Ok(match driver {
        Driver::Cgroupfs => {
            let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
            let fs = fs::Fs::open(&path_for(cgroups_path.as_deref(), id));
            Box::new(match device_rules {
                true => fs,
                false => fs.without_device_rules(),
            })
        }
        Driver::Systemd => Box::new(systemd::Systemd::for_create(spec, id)?),
        Driver::None => Box::new(none::NoCgroup::new(Init::default())),
    })
}

/// The manager of an existing container's cgroup, by the driver, path and
/// init state.json recorded (only the "none" driver needs init).
pub fn open(driver: Driver, path: &str, init: Init) -> Box<dyn Manager> {
    match driver {
        Driver::Cgroupfs => Box::new(fs::Fs::open(path)),
        Driver::Systemd => Box::new(systemd::Systemd::open(path)),
        Driver::None => Box::new(none::NoCgroup::new(init)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A config field in a form the driver cannot take; nothing was made.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system)")]
    NoSystemd,
    #[error("cgroup {path}: {reason}")]
    Manager { path: String, reason: String },
    /// A cgroup operation on a container that has none (driver "none").
    #[error("cannot {op} the container: it has no cgroup (rootless without a writable, delegated cgroup)")]
    NoCgroup { op: &'static str },
    /// A field this host (or carte) cannot honour; nothing was written.
    #[error("linux.resources.{field}: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("linux.resources.{field}: write {value:?} to {path}: {}", crate::sys::reason(.source))]
    Write {
        field: String,
        path: String,
        value: String,
        source: std::io::Error,
    },
    /// cgroups-rs refused or failed a write; `reason` is its own words.
    #[error("linux.resources.{field}: cgroup {path}: {reason}")]
    Library {
        field: &'static str,
        path: String,
        reason: String,
    },
    #[error("read {path}: {}", crate::sys::reason(.source))]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("watch {path} for oom: {}", crate::sys::reason(.source))]
    Watch {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    DeviceProgram(#[from] devices_bpf::DeviceBpfError),
    #[error("remove cgroup {path}: {}", crate::sys::reason(.source))]
    Remove {
        path: String,
        source: std::io::Error,
    },
    /// runc's words: its processes could make no progress.
    #[error("container's cgroup unexpectedly frozen: {path}")]
    Frozen { path: String },
}

/// True on a cgroup v2 only host. Asked once per carte process (a statfs
/// that every cgroup file access would repeat); like `host_hierarchies`,
/// init inherits the host's answer made before fork.
pub fn is_unified() -> bool {
    static UNIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNIFIED.get_or_init(hierarchies::is_cgroup2_unified_mode)
}

/// The allow rules runc adds after the config's device rules: mknod of
/// any char or block device, the default /dev nodes, /dev/pts/* and
/// /dev/ptmx (runc's AllowedDevices; runc 1.2 dropped /dev/net/tun). As in
/// runc, a default node that linux.devices also lists by path loses its
/// rule: its access is then linux.resources.devices' alone.
pub fn device_rules(devices: &[LinuxDevice]) -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        serde_json::from_value(serde_json::json!({
            "allow": true, "type": typ, "major": major, "minor": minor, "access": access
        }))
        .expect("valid device rule")
    };
    let listed = |path: &str| devices.iter().any(|d| d.path() == Path::new(path));
    let nodes = [
        ("/dev/null", 1, 3),
        ("/dev/random", 1, 8),
        ("/dev/full", 1, 7),
        ("/dev/tty", 5, 0),
        ("/dev/zero", 1, 5),
        ("/dev/urandom", 1, 9),
    ];
    let mut rules = vec![rule("c", None, None, "m"), rule("b", None, None, "m")];
    rules.extend(
        (nodes.iter())
            .filter(|(path, _, _)| !listed(path))
            .map(|&(_, major, minor)| rule("c", Some(major), Some(minor), "rwm")),
    );
    rules.push(rule("c", Some(136), None, "rwm"));
    rules.push(rule("c", Some(5), Some(2), "rwm"));
    rules
}

/// One cgroup hierarchy mounted on the host.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Directory name under /sys/fs/cgroup ("cpu,cpuacct", "unified").
    pub name: String,
    pub mount_point: PathBuf,
    /// Super options to mount it again ("cpu,cpuacct", "none,name=systemd").
    pub options: String,
    pub v2: bool,
}

/// The cgroup hierarchies on the host, from /proc/self/mountinfo.
/// The host's cgroup hierarchies, read once per carte process: the cgroup
/// code asks for them on every file it writes. Init inherits the copy made
/// before fork, which is what it wants: the host's, not its new root's.
pub fn host_hierarchies() -> Vec<Hierarchy> {
    static HIERARCHIES: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();
    HIERARCHIES
        .get_or_init(|| {
            let text = crate::sys::read_proc("/proc/self/mountinfo").unwrap_or_default();
            parse_hierarchies(&text)
        })
        .clone()
}

pub fn parse_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = match left.split_whitespace().nth(4) {
            Some(m) => PathBuf::from(m),
            None => continue,
        };
        let mut right = right.split_whitespace();
        let (Some(fstype), _, Some(super_opts)) = (right.next(), right.next(), right.next()) else {
            continue;
        };
        let v2 = fstype == "cgroup2";
        if fstype != "cgroup" && !v2 {
            continue;
        }
        let Some(name) = mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue;
        };
        let options = super_opts
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro")
                    && !o.starts_with("release_agent")
                    && *o != "clone_children"
            })
            .collect::<Vec<_>>()
            .join(",");
        let options = if options.contains("name=") {
            format!("none,{options}")
        } else {
            options
        };
        out.push(Hierarchy {
            name,
            mount_point,
            options,
            v2,
        });
    }
    out
}

/// Hands the container's v2 cgroup to the container's user (config-linux.md,
/// Cgroup ownership): the directory and the files the kernel lists as
/// delegatable (/sys/kernel/cgroup/delegate, or the spec's three when it is
/// missing), those that exist; nothing else.
pub fn delegate(path: &str, uid: u32, gid: u32) -> Result<(), CgroupError> {
    let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let listed = delegated_files(std::fs::read_to_string("/sys/kernel/cgroup/delegate").ok());
    let chown = |p: &Path| {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(|source| CgroupError::Write {
            field: "cgroup ownership".into(),
            path: p.display().to_string(),
            value: format!("{uid}:{gid}"),
            source,
        })
    };
    chown(&dir)?;
    for name in listed {
        let file = dir.join(name);
        if file.exists() {
            chown(&file)?;
        }
    }
    Ok(())
}

/// The files to hand over: the kernel's list, or without one the spec's.
fn delegated_files(kernel_list: Option<String>) -> Vec<String> {
    match kernel_list {
        Some(text) => text
            .lines()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
        None => ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
            .map(String::from)
            .to_vec(),
    }
}

/// The container's directory for controller `ctrl` ("memory", "cpu"):
/// on v2 the one unified directory, on v1 the directory in the hierarchy
/// that holds the controller; on a hybrid host, a controller no v1
/// hierarchy has but the cgroup2 one holds (hugetlb, say) is there, as in
/// runc. None when no hierarchy has it.
pub fn controller_dir(path: &str, ctrl: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if is_unified() {
        return Some(Path::new("/sys/fs/cgroup").join(rel));
    }
    host_hierarchies()
        .into_iter()
        .find(|h| !h.v2 && h.options.split(',').any(|o| o == ctrl))
        .map(|h| h.mount_point.join(rel))
        .or_else(|| {
            let unified = hybrid_unified()?;
            hybrid_controllers()
                .iter()
                .any(|c| c == ctrl)
                .then(|| unified.join(rel))
        })
}

/// On a hybrid host, the cgroup2 mount beside the v1 hierarchies (runc
/// puts its containers there too).
pub fn hybrid_unified() -> Option<PathBuf> {
    if is_unified() {
        return None;
    }
    host_hierarchies()
        .into_iter()
        .find(|h| h.v2)
        .map(|h| h.mount_point)
}

/// The controllers the hybrid host's cgroup2 hierarchy holds.
pub fn hybrid_controllers() -> Vec<String> {
    hybrid_unified()
        .and_then(|u| std::fs::read_to_string(u.join("cgroup.controllers")).ok())
        .map(|c| c.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Enables `ctrl` in the cgroup.subtree_control of every cgroup above
/// `path` in the hybrid host's cgroup2 hierarchy, so that the container's
/// cgroup there gets its files (as runc's fs2 manager does). Cgroups with
/// processes are never above a container's, but the root, which is exempt.
pub fn hybrid_enable(path: &str, ctrl: &str) -> Result<(), CgroupError> {
    let Some(unified) = hybrid_unified() else {
        return Ok(());
    };
    let mut dir = unified.clone();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        enable_in(&dir, ctrl)?;
        dir.push(part);
    }
    enable_in(&dir, ctrl)
}

fn enable_in(dir: &Path, ctrl: &str) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.subtree_control");
    let on = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == ctrl);
    if on {
        return Ok(());
    }
    std::fs::write(&file, format!("+{ctrl}")).map_err(|source| CgroupError::Write {
        field: "cgroupsPath".into(),
        path: file.display().to_string(),
        value: format!("+{ctrl}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_files_fall_back_to_the_spec_list() {
        assert_eq!(
            delegated_files(None),
            ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
        );
        assert_eq!(
            delegated_files(Some("cgroup.procs\nmemory.oom.group\n\n".into())),
            ["cgroup.procs", "memory.oom.group"]
        );
    }

    #[test]
    fn hierarchies_from_mountinfo() {
        let text = "\
30 24 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
31 24 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:6 - cgroup cgroup rw,xattr,name=systemd
35 24 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
40 24 0:40 / /proc rw - proc proc rw";
        let h = parse_hierarchies(text);
        assert_eq!(h.len(), 3);
        assert!(h[0].v2);
        assert_eq!(h[1].options, "none,xattr,name=systemd");
        assert_eq!(h[2].name, "cpu,cpuacct");
        assert_eq!(h[2].options, "cpu,cpuacct");
    }
}
