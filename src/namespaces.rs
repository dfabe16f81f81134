//! Namespaces: which to join (by path) and which to create, the uid/gid maps
//! the parent writes, and time namespace offsets.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::rootless::{IdMaps, Writer};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
    #[error("open namespace {path}: {}", crate::sys::reason(.source))]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("join {kind} namespace {path}: {}", crate::sys::reason(&std::io::Error::from(*.source)))]
    Join {
        kind: String,
        path: String,
        source: nix::Error,
    },
    #[error("unshare namespaces ({flags}): {}", crate::sys::reason(&std::io::Error::from(*.source)))]
    Unshare { flags: String, source: nix::Error },
    #[error("write {path}: {}", crate::sys::reason(.source))]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("bring up lo in the new network namespace: {}", crate::sys::reason(.0))]
    Loopback(std::io::Error),
    #[error("{tool}: {reason}")]
    MapHelper { tool: String, reason: String },
}

pub fn clone_flag(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// What the intermediate process does with namespaces, worked out once.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A user namespace to create (its maps are written by the parent).
    pub new_user: bool,
    /// A user namespace to join; joined before anything else so that the
    /// other namespaces are owned by it.
    pub join_user: Option<PathBuf>,
    /// Other namespaces to join, in config order.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Namespaces to create with unshare, user excluded.
    pub create: CloneFlags,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            new_user: false,
            join_user: None,
            join: Vec::new(),
            create: CloneFlags::empty(),
        }
    }
}

impl Plan {
    pub fn from_spec(linux: &Linux) -> Plan {
        let mut plan = Plan::default();
        for ns in linux.namespaces().iter().flatten() {
            match (ns.typ(), ns.path()) {
                (LinuxNamespaceType::User, Some(path)) => plan.join_user = Some(path.clone()),
                (LinuxNamespaceType::User, None) => plan.new_user = true,
                (kind, Some(path)) => plan.join.push((kind, path.clone())),
                (kind, None) => plan.create |= clone_flag(kind),
            }
        }
        plan
    }

    pub fn has(&self, kind: LinuxNamespaceType) -> bool {
        let flag = clone_flag(kind);
        self.create.contains(flag)
            || self.join.iter().any(|(k, _)| *k == kind)
            || (kind == LinuxNamespaceType::User && (self.new_user || self.join_user.is_some()))
    }
}

/// Opens a namespace to join. All are opened before the first is joined:
/// once in a user namespace, the /proc/<pid>/ns files of a non-dumpable
/// process (a created container's init) can no longer be opened.
pub fn open(path: &Path) -> Result<File, NamespaceError> {
    File::open(path).map_err(|source| NamespaceError::Open {
        path: path.display().to_string(),
        source,
    })
}

pub fn join(kind: LinuxNamespaceType, path: &Path, file: &File) -> Result<(), NamespaceError> {
    match kind {
        LinuxNamespaceType::User => failpoint!("ns.setns.user"),
        LinuxNamespaceType::Pid => failpoint!("ns.setns.pid"),
        LinuxNamespaceType::Network => failpoint!("ns.setns.network"),
        LinuxNamespaceType::Ipc => failpoint!("ns.setns.ipc"),
        LinuxNamespaceType::Uts => failpoint!("ns.setns.uts"),
        LinuxNamespaceType::Mount => failpoint!("ns.setns.mount"),
        LinuxNamespaceType::Cgroup => failpoint!("ns.setns.cgroup"),
        LinuxNamespaceType::Time => failpoint!("ns.setns.time"),
    }
    setns(file, clone_flag(kind)).map_err(|source| NamespaceError::Join {
        kind: kind.to_string(),
        path: path.display().to_string(),
        source,
    })
}

pub fn create(flags: CloneFlags) -> Result<(), NamespaceError> {
    if flags.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "failpoints")]
    create_failpoints(flags)?;
    unshare(flags).map_err(|source| NamespaceError::Unshare {
        flags: format!("{flags:?}"),
        source,
    })
}

/// One failpoint per kind about to be unshared.
#[cfg(feature = "failpoints")]
fn create_failpoints(flags: CloneFlags) -> Result<(), NamespaceError> {
    use LinuxNamespaceType::*;
    for kind in [User, Pid, Network, Ipc, Uts, Mount, Cgroup, Time] {
        if !flags.contains(clone_flag(kind)) {
            continue;
        }
        match kind {
            User => failpoint!("ns.unshare.user"),
            Pid => failpoint!("ns.unshare.pid"),
            Network => failpoint!("ns.unshare.network"),
            Ipc => failpoint!("ns.unshare.ipc"),
            Uts => failpoint!("ns.unshare.uts"),
            Mount => failpoint!("ns.unshare.mount"),
            Cgroup => failpoint!("ns.unshare.cgroup"),
            Time => failpoint!("ns.unshare.time"),
        }
    }
    Ok(())
}

/// Brings `lo` up in a new network namespace, as runc and crun do: the
/// kernel makes it down, and programs expect 127.0.0.1 to work. One
/// SIOCSIFFLAGS on a datagram socket.
pub fn loopback_up() -> Result<(), NamespaceError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let err = || NamespaceError::Loopback(std::io::Error::last_os_error());
    // SAFETY: socket with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err());
    }
    // SAFETY: socket just returned this fd.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // A new namespace's lo has exactly these flags, down; as `ip link set
    // lo up` gives it.
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(err());
    }
    Ok(())
}

/// "containerID hostID size" lines, as /proc/<pid>/uid_map wants them.
pub fn format_id_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_proc(path: String, data: &str) -> Result<(), NamespaceError> {
    // One write(2): the kernel accepts a map only in a single write.
    std::fs::write(&path, data).map_err(|source| NamespaceError::Write { path, source })
}

/// Run by the parent for the intermediate's new user namespace, each map
/// by the writer rootless.rs chose (root mode: carte, directly).
pub fn write_id_maps(pid: i32, linux: &Linux, writers: &IdMaps) -> Result<(), NamespaceError> {
    failpoint!("ns.id_maps");
    let maps = |m: &Option<Vec<LinuxIdMapping>>| m.clone().filter(|m| !m.is_empty());
    if let Some(maps) = maps(linux.uid_mappings()) {
        write_id_map(pid, "uid_map", &writers.uid, &maps)?;
    }
    if let Some(maps) = maps(linux.gid_mappings()) {
        write_id_map(pid, "gid_map", &writers.gid, &maps)?;
    }
    Ok(())
}

fn write_id_map(
    pid: i32,
    file: &str,
    writer: &Writer,
    maps: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let tool = match writer {
        Writer::Kernel => return write_proc(format!("/proc/{pid}/{file}"), &format_id_map(maps)),
        Writer::DenySetgroups => {
            // The kernel takes an unprivileged gid_map only after this.
            write_proc(format!("/proc/{pid}/setgroups"), "deny")?;
            return write_proc(format!("/proc/{pid}/{file}"), &format_id_map(maps));
        }
        Writer::Helper(tool) => tool,
    };
    let failed = |reason: String| NamespaceError::MapHelper {
        tool: tool.display().to_string(),
        reason,
    };
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| failed(crate::sys::reason(&e)))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(failed(format!("{} ({})", line.trim(), out.status)));
    }
    Ok(())
}

/// Run by the intermediate right after it unshares the time namespace,
/// before it forks the first process that lives in it.
pub fn write_time_offsets(linux: &Linux) -> Result<(), NamespaceError> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    failpoint!("ns.time_offsets");
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    write_proc("/proc/self/timens_offsets".into(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_lines() {
        let maps: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536},{"containerID":65536,"hostID":5,"size":1}]"#)
                .unwrap();
        assert_eq!(format_id_map(&maps), "0 100000 65536\n65536 5 1\n");
    }

    #[test]
    fn plan_splits_join_and_create() {
        let linux: Linux = serde_json::from_str(
            r#"{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},{"type":"user"},{"type":"mount"}]}"#,
        )
        .unwrap();
        let plan = Plan::from_spec(&linux);
        assert!(plan.new_user);
        assert_eq!(plan.join.len(), 1);
        assert_eq!(
            plan.create,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert!(plan.has(LinuxNamespaceType::Network));
        assert!(!plan.has(LinuxNamespaceType::Ipc));
    }
}
