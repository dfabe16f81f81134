//! What this host offers, read once per test binary. Machines of one kind
//! differ from run to run (kernel build, I/O scheduler, cgroup files,
//! modules), so a test that needs a host feature asks here: where the
//! feature is there it checks that the value landed, where it is not it
//! checks carte's error or records a skip with the reason (`skip`).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct Host {
    /// v1 hierarchies by controller name (and `name=systemd`), with their
    /// mount points.
    v1: Vec<(String, PathBuf)>,
    /// The files a new cgroup gets in each v1 hierarchy (a root cgroup
    /// lacks some, pids.max among them), by mount point.
    v1_files: Vec<(PathBuf, BTreeSet<String>)>,
    /// The cgroup2 mount, if any, and the controllers it holds.
    pub unified: Option<PathBuf>,
    pub unified_controllers: BTreeSet<String>,
    /// The CPUs and memory nodes a cgroup of this host may be given.
    pub cpus: Vec<u32>,
    pub mems: Vec<u32>,
    /// Huge page sizes in the spec's spelling ("2MB", "1GB").
    pub hugepage_sizes: Vec<String>,
    pub time_namespace: bool,
    pub apparmor: bool,
    pub selinux: bool,
}

pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(Host::read)
}

impl Host {
    fn read() -> Host {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v1 = Vec::new();
        let mut unified = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let point = left.split(' ').nth(4).unwrap_or_default();
            let mut r = right.split(' ');
            let fstype = r.next().unwrap_or_default();
            let opts = r.nth(1).unwrap_or_default();
            match fstype {
                "cgroup2" if unified.is_none() => unified = Some(PathBuf::from(point)),
                "cgroup" => {
                    for o in opts.split(',') {
                        if is_controller(o) || o.starts_with("name=") {
                            v1.push((o.to_string(), PathBuf::from(point)));
                        }
                    }
                }
                _ => {}
            }
        }
        let unified_controllers = unified
            .as_ref()
            .and_then(|u| fs::read_to_string(u.join("cgroup.controllers")).ok())
            .map(|c| c.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let cpuset_root = v1
            .iter()
            .find(|(c, _)| c == "cpuset")
            .map(|(_, p)| p.clone())
            .or_else(|| unified.clone());
        let list = |file: &str, fallback: &str| {
            cpuset_root
                .as_ref()
                .and_then(|r| {
                    fs::read_to_string(r.join(file))
                        .or_else(|_| fs::read_to_string(r.join(file.replace("effective_", ""))))
                        .ok()
                })
                .or_else(|| fs::read_to_string(fallback).ok())
                .map(|s| parse_list(s.trim()))
                .unwrap_or_else(|| vec![0])
        };
        let cpus = list("cpuset.effective_cpus", "/sys/devices/system/cpu/online");
        let mems = list("cpuset.effective_mems", "/sys/devices/system/node/online");
        let mut hugepage_sizes: Vec<String> = fs::read_dir("/sys/kernel/mm/hugepages")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let kb: u64 = name
                    .strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()?;
                Some(page_size_name(kb))
            })
            .collect();
        hugepage_sizes.sort();
        let mut points: Vec<&PathBuf> = v1.iter().map(|(_, p)| p).collect();
        points.dedup();
        let v1_files = points
            .into_iter()
            .map(|p| (p.clone(), child_files(p)))
            .collect();
        Host {
            v1,
            v1_files,
            unified,
            unified_controllers,
            cpus,
            mems,
            hugepage_sizes,
            time_namespace: Path::new("/proc/self/ns/time").exists(),
            apparmor: fs::read("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|v| v.starts_with(b"Y")),
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
        }
    }

    /// The v1 mount of `ctrl` (a controller or "name=systemd").
    pub fn v1(&self, ctrl: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c == ctrl)
            .map(|(_, p)| p.as_path())
    }

    /// Any v1 controller at all: the host carte treats as v1 or hybrid.
    pub fn has_v1(&self) -> bool {
        self.v1.iter().any(|(c, _)| !c.starts_with("name="))
    }

    /// `file` in a cgroup of the v1 hierarchy of `ctrl`.
    pub fn v1_file(&self, ctrl: &str, file: &str) -> bool {
        let Some(point) = self.v1(ctrl) else {
            return false;
        };
        self.v1_files
            .iter()
            .find(|(p, _)| p == point)
            .is_some_and(|(_, files)| files.contains(file))
    }

    /// Every hierarchy's directory for the cgroup at `rel` (relative to the
    /// hierarchies' roots) that exists: one per v1 mount, and cgroup2's.
    pub fn cgroup_dirs(&self, rel: &str) -> Vec<PathBuf> {
        let mut points: Vec<&Path> = self.v1.iter().map(|(_, p)| p.as_path()).collect();
        points.extend(self.unified.as_deref());
        points.dedup();
        points
            .into_iter()
            .map(|p| p.join(rel.trim_start_matches('/')))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// The blkio weight file this kernel has (BFQ's or CFQ's), if any.
    pub fn blkio_weight_file(&self) -> Option<&'static str> {
        ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| self.v1_file("blkio", f))
    }

    /// Swap accounting: v1 has memory.memsw files only with it.
    pub fn swap_accounting(&self) -> bool {
        self.v1_file("memory", "memory.memsw.limit_in_bytes")
    }

    /// A whole block device (major, minor) that throttles can name: the
    /// first disk in /sys/block that is not a loop or ram device.
    pub fn block_device(&self) -> Option<(u32, u32)> {
        let mut names: Vec<String> = fs::read_dir("/sys/block")
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
            .collect();
        names.sort();
        let dev = fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
        let (maj, min) = dev.trim().split_once(':')?;
        Some((maj.parse().ok()?, min.parse().ok()?))
    }

    /// The I/O schedulers each disk offers, as the kernel lists them.
    pub fn io_schedulers(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = fs::read_dir("/sys/block")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let s = fs::read_to_string(e.path().join("queue/scheduler")).ok()?;
                Some((name, s.trim().to_string()))
            })
            .collect();
        out.sort();
        out
    }

    /// The host as one line, for test logs.
    pub fn summary(&self) -> String {
        let v1: Vec<&str> = self.v1.iter().map(|(c, _)| c.as_str()).collect();
        format!(
            "cgroup v1 [{}], cgroup2 {} [{}], cpus {:?}, mems {:?}, hugepages {:?}, blkio weight {:?}, swap accounting {}, time ns {}, apparmor {}, selinux {}",
            v1.join(" "),
            self.unified
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string()),
            self.unified_controllers
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
            self.cpus,
            self.mems,
            self.hugepage_sizes,
            self.blkio_weight_file(),
            self.swap_accounting(),
            self.time_namespace,
            self.apparmor,
            self.selinux,
        )
    }
}

/// The files of a new cgroup under `point`: a probe cgroup made and
/// removed at once (the root's own list falls back where mkdir fails).
fn child_files(point: &Path) -> BTreeSet<String> {
    let probe = point.join(format!("carte-host-probe-{}", std::process::id()));
    let list = |dir: &Path| -> BTreeSet<String> {
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    if fs::create_dir(&probe).is_ok() {
        let files = list(&probe);
        let _ = fs::remove_dir(&probe);
        files
    } else {
        list(point)
    }
}

fn is_controller(o: &str) -> bool {
    matches!(
        o,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "blkio"
            | "pids"
            | "hugetlb"
            | "net_cls"
            | "net_prio"
            | "perf_event"
            | "rdma"
            | "misc"
    )
}

/// "0-2,4" -> [0, 1, 2, 4].
pub fn parse_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

/// 2048 -> "2MB", 1048576 -> "1GB", as the spec and the cgroup files name them.
fn page_size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// Records that `test` left something out because the host lacks it: one
/// line on stderr and, when the runner asks (CARTE_SKIP_LOG), in its log,
/// so that `conformance/run-tests.sh` prints every skip with its reason.
pub fn skip(test: &str, reason: &str) {
    let line = format!("skip: {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("CARTE_SKIP_LOG") {
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// [0, 1, 2, 4] -> "0-2,4", as cpuset files print a list.
pub fn format_list(items: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let start = items[i];
        while i + 1 < items.len() && items[i + 1] == items[i] + 1 {
            i += 1;
        }
        parts.push(if items[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", items[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// Whether this kernel idmaps a detached clone of `path`'s mount (the
/// filesystem has FS_ALLOW_IDMAP): open_tree(OPEN_TREE_CLONE) then
/// mount_setattr(MOUNT_ATTR_IDMAP) with a user namespace made by
/// `unshare -U`, as carte does. Err names why not.
pub fn idmap_probe(path: &Path) -> Result<(), String> {
    idmap_probe_of(|| {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
        // SAFETY: a NUL-terminated path and integer flags.
        unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                c.as_ptr(),
                1 | libc::O_CLOEXEC,
            )
        }
    })
}

/// The same for a new tmpfs (fsopen, fsmount): Linux 6.3 and later.
pub fn idmap_tmpfs_probe() -> Result<(), String> {
    idmap_probe_of(|| {
        // SAFETY: static strings and integer flags; fds checked below.
        unsafe {
            let fs = libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1);
            if fs < 0 {
                return fs;
            }
            let rc = libc::syscall(libc::SYS_fsconfig, fs, 6, 0usize, 0usize, 0);
            let mnt = if rc < 0 {
                rc
            } else {
                libc::syscall(libc::SYS_fsmount, fs, 1, 0)
            };
            libc::close(fs as i32);
            mnt
        }
    })
}

fn idmap_probe_of(tree: impl FnOnce() -> libc::c_long) -> Result<(), String> {
    let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    let mut child = std::process::Command::new("unshare")
        .args(["-U", "sleep", "30"])
        .spawn()
        .map_err(|e| format!("unshare -U: {e}"))?;
    let pid = child.id();
    let own = fs::read_link("/proc/self/ns/user").ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while fs::read_link(format!("/proc/{pid}/ns/user")).ok() == own
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let ns = fs::write(format!("/proc/{pid}/uid_map"), "0 1000 1\n")
        .and_then(|()| fs::write(format!("/proc/{pid}/gid_map"), "0 1000 1\n"))
        .and_then(|()| fs::File::open(format!("/proc/{pid}/ns/user")));
    let _ = child.kill();
    let _ = child.wait();
    let ns = ns.map_err(|e| format!("a user namespace with a mapping: {e}"))?;
    let fd = tree();
    if fd < 0 {
        return Err(err("a detached mount"));
    }
    // struct mount_attr: attr_set, attr_clr, propagation, userns_fd.
    let attr: [u64; 4] = [
        0x0010_0000,
        0,
        0,
        std::os::fd::AsRawFd::as_raw_fd(&ns) as u64,
    ];
    // SAFETY: a valid fd, a static empty path and an attr of the right size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            attr.as_ptr(),
            32usize,
        )
    };
    let result = if rc < 0 {
        Err(err("mount_setattr MOUNT_ATTR_IDMAP"))
    } else {
        Ok(())
    };
    // SAFETY: the fd came from the kernel above and is closed once.
    unsafe { libc::close(fd as i32) };
    result
}
