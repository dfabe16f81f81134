//! The cgroupfs driver: carte makes, joins, freezes, signals and removes
//! the container's cgroup directly in the cgroup filesystem (through
//! cgroups-rs where it is faithful). The systemd driver reuses it for
//! everything systemd has no say in.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::manager::{FsManager, Manager as _};
use cgroups_rs::{CgroupPid, FreezerState};
use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::{device_rules, host_hierarchies, is_unified, resources, stats};
use super::{CgroupError, Hierarchy, Manager, Stats};

/// Parent of the cgroup of a relative cgroupsPath.
pub const DEFAULT_PARENT: &str = "/carte";

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

/// A cgroup made by carte itself in the cgroup filesystem.
pub struct Fs {
    pub(super) path: String,
    /// Made on first use: it reads /proc/self/cgroup and mountinfo twice,
    /// which a v1 create that only writes device rules never needs.
    manager: std::cell::OnceCell<FsManager>,
    /// Whether `set` writes device rules (not for a rootless container).
    device_rules: bool,
}

impl Fs {
    pub fn open(path: &str) -> Fs {
        Fs {
            path: path.to_string(),
            manager: std::cell::OnceCell::new(),
            device_rules: true,
        }
    }

    /// A cgroup whose device rules are left alone (`for_create`).
    pub(super) fn without_device_rules(mut self) -> Fs {
        self.device_rules = false;
        self
    }

    /// The cgroups-rs manager of this cgroup.
    pub(super) fn manager(&self) -> Result<&FsManager, CgroupError> {
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

    pub(super) fn manager_mut(&mut self) -> Result<&mut FsManager, CgroupError> {
        self.manager()?;
        Ok(self.manager.get_mut().expect("made above"))
    }

    /// Creates the cgroup and, on a v1 host, opens the files through which
    /// a process moves itself into it (`SelfJoin`). On v2 the set is empty
    /// and the caller moves the process with `add`.
    pub(super) fn self_join(&mut self) -> Result<SelfJoin, CgroupError> {
        if is_unified() {
            return Ok(SelfJoin { files: Vec::new() });
        }
        let relative = self.path.trim_start_matches('/');
        let dirs: Vec<(PathBuf, bool, bool)> = join_hierarchies()
            .iter()
            .map(|h| {
                let cpuset = h.options.split(',').any(|o| o == "cpuset");
                (h.mount_point.join(relative), cpuset, h.v2)
            })
            .collect();
        let create = || -> Result<(), (PathBuf, std::io::Error)> {
            let mut parent_first = false;
            for (dir, cpuset, _) in &dirs {
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
        for (dir, _, v2) in dirs {
            // cgroup2 has no tasks file; its cgroup.procs takes "0" too.
            let path = dir.join(if v2 { "cgroup.procs" } else { "tasks" });
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
    pub(super) fn add(&mut self, pid: i32) -> Result<(), CgroupError> {
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
}

impl Manager for Fs {
    fn path(&self) -> &str {
        &self.path
    }

    /// On v1 the child's child moves itself through the files returned;
    /// on v2 `pid` is moved from here.
    fn apply(&mut self, pid: i32) -> Result<SelfJoin, CgroupError> {
        let join = self.self_join()?;
        if join.is_empty() {
            self.add(pid)?;
        }
        Ok(join)
    }

    fn set(
        &mut self,
        resources: &LinuxResources,
        devices: &[LinuxDevice],
    ) -> Result<(), CgroupError> {
        if !self.device_rules {
            let mut resources = resources.clone();
            resources.set_devices(None);
            return resources::apply(self, &resources);
        }
        let controller = is_unified()
            || super::controller_dir(&self.path, "devices").is_some_and(|d| d.is_dir());
        let all = with_device_rules(resources, devices, controller);
        resources::apply(self, &all)
    }

    fn update(&mut self, changes: &LinuxResources) -> Result<(), CgroupError> {
        resources::apply(self, changes)
    }

    fn forbid_new_tasks(&self) -> Result<(), CgroupError> {
        resources::no_new_tasks(&self.path)
    }

    fn enter(&mut self, pid: i32) -> Result<(), CgroupError> {
        self.add(pid)
    }

    /// Waits until the kernel reports it done (v1 passes through FREEZING).
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
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

    fn is_frozen(&self) -> bool {
        is_frozen(&self.path)
    }

    fn kill(&self, signal: i32) {
        kill_all(&self.path, signal)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        Ok(stats::collect(self))
    }

    fn pids(&self) -> Vec<i32> {
        pids_in(&self.path)
    }

    fn destroy(&mut self) -> Result<(), CgroupError> {
        kill_and_destroy(&self.path)
    }
}

/// `resources` with the device rules, set whether or not the config has
/// any, as runc sets them: an allow list (nothing is allowed but what a
/// rule allows), linux.resources.devices, then the default devices (see
/// `device_rules`). linux.devices only makes nodes: it grants no access.
/// `controller`: whether the cgroup has device rules at all; without a
/// devices controller (a v1 host may lack it) only the config's own rules
/// are an error (resources::apply says so).
pub(super) fn with_device_rules(
    resources: &LinuxResources,
    devices: &[LinuxDevice],
    controller: bool,
) -> LinuxResources {
    let mut resources = resources.clone();
    let own = resources.devices().clone();
    if own.is_some() || controller {
        let mut rules = own.unwrap_or_default();
        rules.extend(device_rules(devices));
        resources.set_devices(Some(rules));
    }
    resources
}

/// A frozen cgroup holds whatever joins it: init would never get to say
/// Ready, and carte would wait forever. As runc, `create` refuses one.
pub fn refuse_frozen(path: &str) -> Result<(), CgroupError> {
    if is_frozen(path) {
        return Err(CgroupError::Frozen { path: path.into() });
    }
    Ok(())
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
#[derive(Default)]
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
/// The v1 hierarchies in join order; on a hybrid host the cgroup2 one
/// last, as runc joins it too (`0::/<path>` in /proc/<pid>/cgroup), where
/// carte may move processes in it: cgroup2 asks for write access to
/// cgroup.procs of the common ancestor of the two cgroups, the root here,
/// which an unprivileged caller with a delegated v1 subtree lacks.
fn join_hierarchies() -> Vec<Hierarchy> {
    let all = host_hierarchies();
    let mut order = join_order(&all);
    order.extend(all.into_iter().filter(|h| {
        h.v2 && nix::unistd::access(
            &h.mount_point.join("cgroup.procs"),
            nix::unistd::AccessFlags::W_OK,
        )
        .is_ok()
    }));
    order
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
        let cg = Fs::open(path);
        cg.set_frozen(true).is_ok().then_some(cg)
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
    // A frozen process takes its SIGKILL only once thawed (v1); this
    // cgroup is going away, frozen or not.
    if is_frozen(path) {
        let _ = Fs::open(path).set_frozen(false);
    }
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

/// Whether this process can make cgroup `path` in every hierarchy: the
/// nearest existing ancestor of each is writable (a delegated subtree).
/// Asked only in rootless mode (`rootless::Rootless::cgroup_driver`),
/// which picks the "none" driver when it is false.
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
    // Every hierarchy, the hybrid host's cgroup2 one included.
    host_hierarchies()
        .into_iter()
        .map(|h| h.mount_point.join(rel))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::parse_hierarchies;

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
}
