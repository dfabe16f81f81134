//! The container's cgroup, through cgroups-rs: created once at create,
//! joined by the intermediate process, signalled for `kill --all`, removed at
//! delete. Works on v1, v2 and hybrid hosts (on hybrid the v1 controllers
//! hold the limits). `resources` applies linux.resources (create and
//! `update`), `stats` reads what `events` prints, `oom` watches for OOM kills.

mod devices_bpf;
mod oom;
mod resources;
mod stats;

pub use oom::{Oom, OomWatch};
pub use resources::{dropped_fields, merge};
pub use stats::Stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::hierarchies;
use cgroups_rs::manager::{FsManager, Manager};
use cgroups_rs::{CgroupPid, FreezerState};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// Parent of the cgroup of a relative cgroupsPath.
pub const DEFAULT_PARENT: &str = "/carte";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {reason}")]
    Manager { path: String, reason: String },
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
}

/// The cgroup path for a container: cgroupsPath if given (a relative one is
/// taken under the default parent), else /<id>, as runc and crun do: one
/// level, so no parent to make and remove around every container (about
/// 0.7 ms of a `run` on this v1 host, the kernel's work for nine cgroups).
pub fn path_for(cgroups_path: Option<&Path>, id: &str) -> String {
    match cgroups_path {
        Some(p) if p.is_absolute() => p.display().to_string(),
        Some(p) if !p.as_os_str().is_empty() => format!("{DEFAULT_PARENT}/{}", p.display()),
        _ => format!("/{id}"),
    }
}

/// True on a cgroup v2 only host. Asked once per carte process (a statfs
/// that every cgroup file access would repeat); like `host_hierarchies`,
/// init inherits the host's answer made before fork.
pub fn is_unified() -> bool {
    static UNIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNIFIED.get_or_init(hierarchies::is_cgroup2_unified_mode)
}

pub struct Cgroup {
    path: String,
    /// Made on first use: it reads /proc/self/cgroup and mountinfo twice,
    /// which a v1 create that only writes device rules never needs.
    manager: std::cell::OnceCell<FsManager>,
}

impl Cgroup {
    pub fn open(path: &str) -> Result<Cgroup, CgroupError> {
        Ok(Cgroup {
            path: path.to_string(),
            manager: std::cell::OnceCell::new(),
        })
    }

    /// The cgroups-rs manager of this cgroup.
    fn manager(&self) -> Result<&FsManager, CgroupError> {
        if let Some(manager) = self.manager.get() {
            return Ok(manager);
        }
        // cgroups-rs joins this onto each mount point: it must be relative,
        // or PathBuf::push would replace the mount point with it.
        let relative = self.path.trim_start_matches('/');
        let manager = FsManager::new(relative).map_err(|e| CgroupError::Manager {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(self.manager.get_or_init(|| manager))
    }

    fn manager_mut(&mut self) -> Result<&mut FsManager, CgroupError> {
        self.manager()?;
        Ok(self.manager.get_mut().expect("made above"))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Creates the cgroup and, on a v1 host, opens the files through which
    /// a process moves itself into it (`SelfJoin`). On v2 the set is empty
    /// and the caller moves the process with `add`.
    pub fn self_join(&mut self) -> Result<SelfJoin, CgroupError> {
        if is_unified() {
            return Ok(SelfJoin { files: Vec::new() });
        }
        let relative = self.path.trim_start_matches('/');
        let dirs: Vec<(PathBuf, bool)> = join_hierarchies()
            .iter()
            .map(|h| {
                let cpuset = h.options.split(',').any(|o| o == "cpuset");
                (h.mount_point.join(relative), cpuset)
            })
            .collect();
        let create = || -> Result<(), (PathBuf, std::io::Error)> {
            let mut parent_first = false;
            for (dir, cpuset) in &dirs {
                parent_first = make_dirs(dir, parent_first)?.1;
                if *cpuset {
                    // A cpuset with no cpus or mems can hold no task. As in
                    // cgroups-rs, a failure here shows as the join's error.
                    let _ = inherit_cpuset(dir, "cpuset.cpus");
                    let _ = inherit_cpuset(dir, "cpuset.mems");
                }
            }
            Ok(())
        };
        // One retry, as in `add`: a concurrent delete may remove /carte.
        create()
            .or_else(|_| create())
            .map_err(|(dir, e)| CgroupError::Manager {
                path: self.path.clone(),
                reason: format!("create {}: {}", dir.display(), crate::sys::reason(&e)),
            })?;
        let mut files = Vec::new();
        for (dir, _) in dirs {
            let path = dir.join("tasks");
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| CgroupError::Write {
                    field: "cgroupsPath".into(),
                    path: path.display().to_string(),
                    value: "0".into(),
                    source,
                })?;
            files.push((path, file));
        }
        Ok(SelfJoin { files })
    }

    /// Moves `pid` into the cgroup, creating it on first use.
    pub fn add(&mut self, pid: i32) -> Result<(), CgroupError> {
        let pid = CgroupPid::from(pid as u64);
        let manager = self.manager_mut()?;
        // A concurrent delete may remove the empty default parent between
        // the creation of /carte and of /carte/<id>: one retry recreates it.
        manager
            .add_proc(pid)
            .or_else(|_| manager.add_proc(pid))
            .map_err(|e| CgroupError::Manager {
                path: self.path.clone(),
                reason: format!("add pid {}: {e}", pid.pid),
            })
    }

    /// Applies `resources` at create, with the device rules every
    /// container needs (see `device_rules`) after the config's own.
    pub fn apply(
        &mut self,
        resources: &LinuxResources,
        devices: &[LinuxDevice],
    ) -> Result<(), CgroupError> {
        let mut resources = resources.clone();
        if resources.devices().is_some() || !devices.is_empty() {
            let mut rules = resources.devices().clone().unwrap_or_default();
            rules.extend(device_rules(devices));
            resources.set_devices(Some(rules));
        }
        resources::apply(self, &resources)
    }

    /// pids.max 0, for a config whose pids limit is 0.
    pub fn forbid_new_tasks(&self) -> Result<(), CgroupError> {
        resources::no_new_tasks(&self.path)
    }

    /// Applies the fields of `changes` to the live cgroup (`update`).
    /// Device rules are not in it: the caller refuses to change them.
    pub fn update(&mut self, changes: &LinuxResources) -> Result<(), CgroupError> {
        resources::apply(self, changes)
    }

    /// The statistics `events` prints.
    pub fn stats(&self) -> Stats {
        stats::collect(self)
    }

    /// Freezes (pause) or thaws (resume) every process in the cgroup, and
    /// waits until the kernel reports it done (v1 passes through FREEZING).
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.manager()?
            .freeze(state)
            .map_err(|e| CgroupError::Manager {
                path: self.path.clone(),
                reason: format!("freezer: {e}"),
            })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_frozen(&self.path) != frozen {
            if Instant::now() > deadline {
                return Err(CgroupError::Manager {
                    path: self.path.clone(),
                    reason: "freezer: timed out".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Every process in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.path)
    }
}

impl SelfJoin {
    /// The paths and the open files, to send to the child.
    pub fn into_parts(self) -> (Vec<String>, Vec<std::fs::File>) {
        self.files
            .into_iter()
            .map(|(path, file)| (path.display().to_string(), file))
            .unzip()
    }

    /// The set again, in the child that received the parts.
    pub fn from_parts(paths: Vec<String>, fds: Vec<std::os::fd::OwnedFd>) -> SelfJoin {
        SelfJoin {
            files: paths
                .into_iter()
                .map(PathBuf::from)
                .zip(fds.into_iter().map(std::fs::File::from))
                .collect(),
        }
    }
}

/// The v1 `tasks` files of a container's cgroup, opened by the runtime for
/// a child to move itself. Writing "0" to `tasks` moves the calling thread
/// without the global threadgroup lock that a pid written to cgroup.procs
/// takes, and so without waiting for an RCU grace period (milliseconds, the
/// largest single cost of `create` on a v1 host). The child is
/// single-threaded, so moving its thread moves the process.
pub struct SelfJoin {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl SelfJoin {
    /// True on v2: the runtime must move the child itself.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The open files, which must survive the child's fd sweep.
    pub fn raw_fds(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        use std::os::fd::AsRawFd;
        self.files.iter().map(|(_, file)| file.as_raw_fd())
    }

    /// Moves the calling (single-threaded) process into every hierarchy.
    pub fn join(self) -> Result<(), String> {
        use std::io::Write;
        for (path, mut file) in self.files {
            file.write_all(b"0").map_err(|e| {
                format!(
                    "join cgroup: write 0 to {}: {}",
                    path.display(),
                    crate::sys::reason(&e)
                )
            })?;
        }
        Ok(())
    }
}

/// The v1 controllers cgroups-rs manages, in the order it joins them
/// (blkio before memory, for writeback accounting).
const V1_CONTROLLERS: [&str; 14] = [
    "blkio",
    "memory",
    "pids",
    "cpuset",
    "cpuacct",
    "cpu",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "rdma",
    "name=systemd",
];

/// The v1 hierarchies a container joins: the first mount of each of
/// `V1_CONTROLLERS`, in that order, each once (cpu,cpuacct is one).
fn join_hierarchies() -> Vec<Hierarchy> {
    join_order(&host_hierarchies())
}

fn join_order(hierarchies: &[Hierarchy]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for ctrl in V1_CONTROLLERS {
        let found = hierarchies
            .iter()
            .find(|h| !h.v2 && h.options.split(',').any(|o| o == ctrl));
        if let Some(h) = found {
            if !out.iter().any(|o| o.mount_point == h.mount_point) {
                out.push(h.clone());
            }
        }
    }
    out
}

/// Makes a v1 cgroup directory and the missing ones above it, as
/// cgroups-rs did: the directory first, since its parent (/carte) is there
/// whenever another container is; with `parent_first` (the parent was
/// missing in the previous hierarchy) the parent first, instead of a mkdir
/// bound to fail. Returns whether the directory and its parent were new.
fn make_dirs(dir: &Path, parent_first: bool) -> Result<(bool, bool), (PathBuf, std::io::Error)> {
    let parent = dir.parent();
    let mut new_parent = false;
    if let Some(p) = parent.filter(|_| parent_first) {
        new_parent = make_dirs(p, false)?.0;
    }
    let result = match std::fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !parent_first => {
            let Some(p) = parent else {
                return Err((dir.to_path_buf(), e));
            };
            new_parent = make_dirs(p, false)?.0;
            std::fs::create_dir(dir)
        }
        other => other,
    };
    match result {
        Ok(()) => Ok((true, new_parent)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((false, new_parent)),
        Err(e) => Err((dir.to_path_buf(), e)),
    }
}

/// Fills `file` (cpuset.cpus or cpuset.mems) of `dir` and of the empty
/// cgroups above it from the nearest one that is set.
fn inherit_cpuset(dir: &Path, file: &str) -> std::io::Result<()> {
    let mut empty = Vec::new();
    let mut at = Some(dir);
    let value = loop {
        let Some(d) = at else { return Ok(()) };
        let value = std::fs::read_to_string(d.join(file))?;
        if !value.trim().is_empty() {
            break value;
        }
        empty.push(d);
        at = d.parent();
    };
    for d in empty.iter().rev() {
        std::fs::write(d.join(file), value.trim())?;
    }
    Ok(())
}

/// The allow rules runc adds after the config's device rules: mknod of
/// anything, the default /dev nodes, ptys, tun, and each of linux.devices.
pub fn device_rules(devices: &[LinuxDevice]) -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        serde_json::from_value(serde_json::json!({
            "allow": true, "type": typ, "major": major, "minor": minor, "access": access
        }))
        .expect("valid device rule")
    };
    let mut rules = vec![
        rule("c", None, None, "m"),
        rule("b", None, None, "m"),
        rule("c", Some(1), Some(3), "rwm"),
        rule("c", Some(1), Some(5), "rwm"),
        rule("c", Some(1), Some(7), "rwm"),
        rule("c", Some(1), Some(8), "rwm"),
        rule("c", Some(1), Some(9), "rwm"),
        rule("c", Some(5), Some(0), "rwm"),
        rule("c", Some(5), Some(2), "rwm"),
        rule("c", Some(136), None, "rwm"),
        rule("c", Some(10), Some(200), "rwm"),
    ];
    // Fifos are not devices to the device controller.
    rules.extend(
        devices
            .iter()
            .filter(|d| d.typ() != LinuxDeviceType::P)
            .map(LinuxDeviceCgroup::from),
    );
    rules
}

/// Every process in the cgroup at `path` and in the cgroups below it, in
/// any hierarchy (a container may nest cgroups in one controller only).
pub fn pids_in(path: &str) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out);
            }
        }
    }
    let mut pids = Vec::new();
    for dir in dirs(path) {
        walk(&dir, &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Sends `signal` to every process in the cgroup and below, so that none
/// escapes by forking meanwhile: SIGKILL through cgroup.kill on v2; else
/// freeze, signal, thaw. A cgroup that was already frozen stays frozen,
/// and one that no longer exists is left alone (never recreated).
pub fn kill_all(path: &str, signal: i32) {
    let rel = path.trim_start_matches('/');
    if is_unified() && signal == libc::SIGKILL {
        let kill_file = Path::new("/sys/fs/cgroup").join(rel).join("cgroup.kill");
        if std::fs::write(kill_file, "1").is_ok() {
            return;
        }
    }
    if pids_in(path).is_empty() {
        return;
    }
    let thaw_after = if is_frozen(path) {
        None
    } else {
        Cgroup::open(path)
            .ok()
            .filter(|cg| cg.set_frozen(true).is_ok())
    };
    for pid in pids_in(path) {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(pid, signal) };
    }
    if let Some(cg) = thaw_after {
        let _ = cg.set_frozen(false);
    }
}

/// Kills what is in the cgroup and removes it in every hierarchy, with the
/// cgroups the container made below it, waiting while the kernel still
/// reports it busy (its last processes are exiting), then the default
/// parent if it is left empty. Tries rmdir first, which the kernel refuses
/// (EBUSY) while the cgroup holds a process or a child cgroup; only then
/// does it scan, kill and walk the tree, so the usual empty cgroup costs
/// one rmdir per hierarchy.
pub fn kill_and_destroy(path: &str) -> Result<(), CgroupError> {
    let mut busy = Vec::new();
    for dir in candidate_dirs(path) {
        match std::fs::remove_dir(&dir) {
            Ok(()) => remove_empty_parents(&dir, path),
            // Gone already: a parent left empty by a create that failed
            // before making it, or by a delete killed half-way, goes too.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => remove_empty_parents(&dir, path),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {
                busy.push(dir)
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.display().to_string(),
                    source,
                })
            }
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    // Processes (a container without its own PID namespace, or ones that
    // joined from elsewhere) or cgroups the container made below its own.
    kill_all(path, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in busy {
        remove_tree(&dir, deadline)?;
        remove_empty_parents(&dir, path);
    }
    Ok(())
}

/// Removes a cgroup and the cgroups the container made below it, deepest
/// first (the kernel refuses to remove a cgroup that has children).
fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path(), deadline)?;
        }
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.display().to_string(),
                    source,
                })
            }
        }
    }
}

/// Removes the now-empty directories between a container's cgroup and the
/// default parent, that one included, when carte made them (a relative
/// cgroupsPath or the default). Cgroups outside /carte belong to others.
fn remove_empty_parents(dir: &Path, path: &str) {
    let Some(below_parent) = path.strip_prefix(&format!("{DEFAULT_PARENT}/")) else {
        return;
    };
    let levels = Path::new(below_parent).components().count();
    let mut parent = dir.parent();
    for _ in 0..levels {
        let Some(p) = parent else { break };
        // Fails harmlessly while another container still lives there.
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        parent = p.parent();
    }
}

/// True when the cgroup's freezer holds it frozen (the `paused` status).
pub fn is_frozen(path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    let (file, frozen) = if is_unified() {
        (
            Path::new("/sys/fs/cgroup").join(rel).join("cgroup.freeze"),
            "1",
        )
    } else {
        (
            Path::new("/sys/fs/cgroup/freezer")
                .join(rel)
                .join("freezer.state"),
            "FROZEN",
        )
    };
    std::fs::read_to_string(file).is_ok_and(|s| s.trim() == frozen)
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

/// Whether this process can make cgroup `path` in every hierarchy: the
/// nearest existing ancestor of each is writable (a delegated subtree).
/// Asked only in rootless mode (`rootless::Rootless::use_cgroup`); with
/// the manager interface it picks the "no cgroup" manager when false.
pub fn can_create(path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    let dirs: Vec<PathBuf> = if is_unified() {
        candidate_dirs(path)
    } else {
        // The hierarchies the container joins (`self_join`).
        join_hierarchies()
            .iter()
            .map(|h| h.mount_point.join(rel))
            .collect()
    };
    !dirs.is_empty()
        && dirs.iter().all(|dir| {
            let Some(existing) = dir.ancestors().find(|d| d.exists()) else {
                return false;
            };
            nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).is_ok()
        })
}

/// The container's directory in each hierarchy.
fn dirs(path: &str) -> Vec<PathBuf> {
    let dirs = candidate_dirs(path);
    if is_unified() {
        return dirs;
    }
    dirs.into_iter().filter(|d| d.exists()).collect()
}

/// Where the container's directory is in each hierarchy, if it exists.
fn candidate_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if is_unified() {
        return vec![Path::new("/sys/fs/cgroup").join(rel)];
    }
    host_hierarchies()
        .into_iter()
        .filter(|h| !h.v2)
        .map(|h| h.mount_point.join(rel))
        .collect()
}

/// The container's directory for controller `ctrl` ("memory", "cpu"):
/// on v2 the one unified directory, on v1 the directory in the hierarchy
/// that holds the controller. None when no v1 hierarchy has it.
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

pub fn controller_dir(path: &str, ctrl: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if is_unified() {
        return Some(Path::new("/sys/fs/cgroup").join(rel));
    }
    host_hierarchies()
        .into_iter()
        .find(|h| !h.v2 && h.options.split(',').any(|o| o == ctrl))
        .map(|h| h.mount_point.join(rel))
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
    fn default_and_custom_paths() {
        assert_eq!(path_for(None, "abc"), "/abc");
        assert_eq!(path_for(Some(Path::new("/pod/x")), "abc"), "/pod/x");
        assert_eq!(path_for(Some(Path::new("pod/x")), "abc"), "/carte/pod/x");
    }

    #[test]
    fn empty_parents_go_up_to_the_default_parent_only() {
        let mount = std::env::temp_dir().join(format!("carte-unit-{}", std::process::id()));
        let leaf = mount.join("carte/pod/x");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::create_dir(mount.join("carte/pod/sibling")).unwrap();
        std::fs::remove_dir(&leaf).unwrap();
        remove_empty_parents(&leaf, "/carte/pod/x");
        assert!(
            mount.join("carte/pod").exists(),
            "a sibling still lives there"
        );
        std::fs::remove_dir(mount.join("carte/pod/sibling")).unwrap();
        remove_empty_parents(&mount.join("carte/pod/sibling"), "/carte/pod/sibling");
        assert!(!mount.join("carte").exists());
        assert!(
            mount.exists(),
            "nothing above the default parent is removed"
        );
        std::fs::create_dir_all(mount.join("other/y")).unwrap();
        remove_empty_parents(&mount.join("other/y/z"), "/other/y/z");
        assert!(mount.join("other/y").exists(), "not carte's to remove");
        std::fs::remove_dir_all(&mount).unwrap();
    }

    #[test]
    fn joined_in_the_order_of_cgroups_rs_each_once() {
        let text = "\
30 24 0:26 / /sys/fs/cgroup/unified rw shared:5 - cgroup2 cgroup2 rw,nsdelegate
31 24 0:27 / /sys/fs/cgroup/systemd rw shared:6 - cgroup cgroup rw,xattr,name=systemd
32 24 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:10 - cgroup cgroup rw,cpu,cpuacct
33 24 0:32 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
34 24 0:33 / /sys/fs/cgroup/misc rw shared:12 - cgroup cgroup rw,misc
35 24 0:34 / /sys/fs/cgroup/blkio rw shared:13 - cgroup cgroup rw,blkio
36 24 0:34 / /mnt/blkio rw shared:13 - cgroup cgroup rw,blkio";
        let names: Vec<String> = join_order(&parse_hierarchies(text))
            .into_iter()
            .map(|h| h.mount_point.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "/sys/fs/cgroup/blkio",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/systemd"
            ]
        );
    }

    #[test]
    fn cgroups_are_made_with_their_parents_and_cpusets_filled() {
        let root = std::env::temp_dir().join(format!("carte-unit-mk-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("cpuset.cpus"), "0-1\n").unwrap();
        let leaf = root.join("carte/x");
        assert_eq!(make_dirs(&leaf, false).unwrap(), (true, true));
        assert!(leaf.is_dir());
        assert_eq!(make_dirs(&leaf, false).unwrap(), (false, false));
        let sibling = root.join("carte/y");
        assert_eq!(make_dirs(&sibling, true).unwrap(), (true, false));
        let other = root.join("other/z");
        assert_eq!(make_dirs(&other, true).unwrap(), (true, true));
        // Files the kernel would make in a new cpuset, empty.
        std::fs::write(root.join("carte/cpuset.cpus"), "").unwrap();
        std::fs::write(leaf.join("cpuset.cpus"), "\n").unwrap();
        inherit_cpuset(&leaf, "cpuset.cpus").unwrap();
        for d in [root.join("carte"), leaf.clone()] {
            assert_eq!(
                std::fs::read_to_string(d.join("cpuset.cpus")).unwrap(),
                "0-1"
            );
        }
        let missing = root.join("none/y");
        std::fs::write(root.join("none"), "").unwrap();
        assert!(make_dirs(&missing, false).is_err());
        assert!(make_dirs(&missing, true).is_err());
        std::fs::remove_dir_all(&root).unwrap();
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
