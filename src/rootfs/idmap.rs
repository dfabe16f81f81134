//! Idmapped mounts (config.md: the `idmap` and `ridmap` options and a
//! mount's `uidMappings`/`gidMappings`).
//!
//! The kernel idmaps only a detached mount, and only for a caller that is
//! privileged over the filesystem's user namespace (the host's): init, in
//! the container's user namespace, is not. So `carte create` makes each
//! idmapped mount before it forks: a user namespace per distinct mapping
//! (a helper child born in it, whose maps the parent writes and whose
//! /proc/<pid>/ns/user it opens), then open_tree(OPEN_TREE_CLONE) of the
//! bind source (or fsopen/fsmount of a tmpfs), mount_setattr
//! (MOUNT_ATTR_IDMAP). The detached trees are inherited down the fork chain
//! and init attaches each with move_mount at its turn among the mounts.
//! Nothing is mounted by path. A container without idmapped mounts pays one
//! scan of its mount list.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::{options, RootfsError};

/// A detached, idmapped mount for `mounts[index]`.
pub struct Idmapped {
    pub index: usize,
    pub tree: OwnedFd,
}

/// Whose mapping an idmapped mount gets.
#[derive(Debug, PartialEq)]
pub enum Mapping<'a> {
    /// The mount's own uidMappings and gidMappings, or the container's
    /// when it makes its user namespace.
    Maps(&'a [LinuxIdMapping], &'a [LinuxIdMapping]),
    /// The user namespace the container joins (linux.namespaces path).
    Joined(&'a Path),
}

/// One idmapped mount, as config.json asks for it (already validated).
#[derive(Debug, PartialEq)]
pub struct Request<'a> {
    pub index: usize,
    /// `ridmap`: the mapping goes on every mount of the tree too.
    pub recursive: bool,
    pub mapping: Mapping<'a>,
}

fn non_empty(maps: &Option<Vec<LinuxIdMapping>>) -> Option<&[LinuxIdMapping]> {
    maps.as_deref().filter(|m| !m.is_empty())
}

/// `idmap` or `ridmap` among the options, or mappings on the mount.
pub fn wants_idmap(m: &Mount) -> bool {
    non_empty(m.uid_mappings()).is_some()
        || non_empty(m.gid_mappings()).is_some()
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
}

/// The idmapped mounts of a validated config, in order. A mount with
/// mappings but neither option gets them on its top mount only (as runc).
pub fn requests(spec: &Spec) -> Vec<Request<'_>> {
    let Some(linux) = spec.linux().as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if !wants_idmap(m) {
            continue;
        }
        let recursive = m.options().iter().flatten().any(|o| o == "ridmap");
        let mapping = match (non_empty(m.uid_mappings()), non_empty(m.gid_mappings())) {
            (Some(uid), Some(gid)) => Mapping::Maps(uid, gid),
            // No mappings of its own: the container's user namespace's
            // (config.md allows it; validation refused the rest).
            _ => match container_userns(linux) {
                Some(mapping) => mapping,
                None => continue,
            },
        };
        out.push(Request {
            index,
            recursive,
            mapping,
        });
    }
    out
}

fn container_userns(linux: &Linux) -> Option<Mapping<'_>> {
    let ns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|ns| ns.typ() == LinuxNamespaceType::User)?;
    match ns.path() {
        Some(path) => Some(Mapping::Joined(path)),
        None => Some(Mapping::Maps(
            non_empty(linux.uid_mappings())?,
            non_empty(linux.gid_mappings())?,
        )),
    }
}

/// The idmapped mounts of a container, and the helper children whose
/// user namespaces gave their mappings: let go already, reaped when this is
/// dropped (by then they have exited: create does not wait for a child's
/// turn to run).
#[derive(Default)]
pub struct Prepared {
    pub mounts: Vec<Idmapped>,
    /// Held for their Drop only.
    _helpers: Vec<Helper>,
}

/// A helper child, reaped on drop.
struct Helper(i32);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.0), None);
    }
}

/// Makes every idmapped mount of `spec`, detached. Run by `carte create`
/// before it forks; on error nothing is left (the trees and the user
/// namespaces go with their last fd).
pub fn prepare(spec: &Spec) -> Result<Prepared, RootfsError> {
    let requests = requests(spec);
    if requests.is_empty() {
        return Ok(Prepared::default());
    }
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    // A tmpfs gets linux.mountLabel as init gives the others.
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| crate::lsm::mount_label(l.mount_label().as_deref()));
    // One user namespace per distinct mapping.
    let mut namespaces: Vec<(String, OwnedFd)> = Vec::new();
    let mut helpers = Vec::new();
    let mut out = Vec::with_capacity(requests.len());
    for req in &requests {
        let entry = |what: &str, e: io::Error| RootfsError::Entry {
            index: req.index,
            reason: format!("idmapped mount: {what}: {}", crate::sys::reason(&e)),
        };
        let key = match &req.mapping {
            Mapping::Maps(uid, gid) => format!(
                "{}|{}",
                crate::namespaces::format_id_map(uid),
                crate::namespaces::format_id_map(gid)
            ),
            Mapping::Joined(path) => path.display().to_string(),
        };
        let userns = match namespaces.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let fd = match &req.mapping {
                    Mapping::Maps(uid, gid) => userns_with(uid, gid, &mut helpers)
                        .map_err(|e| entry("make a user namespace with its mappings", e))?,
                    Mapping::Joined(path) => crate::namespaces::open(path)
                        .map(OwnedFd::from)
                        .map_err(|e| RootfsError::Entry {
                            index: req.index,
                            reason: format!("idmapped mount: {e}"),
                        })?,
                };
                namespaces.push((key, fd));
                namespaces.len() - 1
            }
        };
        let m = &mounts[req.index];
        let tree = detached(m, label).map_err(|(what, e)| entry(&what, e))?;
        crate::sys::mount_setattr_idmap(tree.as_fd(), namespaces[userns].1.as_fd(), req.recursive)
            .map_err(|e| RootfsError::Entry {
                index: req.index,
                reason: idmap_failure(m, req.recursive, &e),
            })?;
        out.push(Idmapped {
            index: req.index,
            tree,
        });
    }
    Ok(Prepared {
        mounts: out,
        _helpers: helpers,
    })
}

/// Why mount_setattr refused, in the words of what the kernel checks.
fn idmap_failure(m: &Mount, recursive: bool, e: &io::Error) -> String {
    let what = match m.source() {
        Some(s) if m.typ().as_deref() != Some("tmpfs") => s.display().to_string(),
        _ => "tmpfs".to_string(),
    };
    let why = match e.raw_os_error() {
        Some(libc::EINVAL) if recursive => {
            ": its filesystem, or that of a mount below it, does not support idmapped mounts"
        }
        Some(libc::EINVAL) => ": its filesystem does not support idmapped mounts",
        Some(libc::ENOSYS) => ": this kernel has no mount_setattr (Linux 5.12 or later)",
        Some(libc::EPERM) => ": not allowed (carte needs CAP_SYS_ADMIN over the filesystem)",
        _ => "",
    };
    format!(
        "idmap {what}: mount_setattr: {}{why}",
        crate::sys::reason(e)
    )
}

/// The mount, detached and not yet idmapped: a clone of the bind source
/// (with the mounts below it for rbind), or a new tmpfs (with `label` as
/// its SELinux context).
fn detached(m: &Mount, label: Option<&str>) -> Result<OwnedFd, (String, io::Error)> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default());
    if opts.is_bind() || m.typ().as_deref() == Some("bind") {
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        let what = || format!("open {}", source.display());
        let fd = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(source)
            .map_err(|e| (what(), e))?;
        let recursive = opts.flags.contains(nix::mount::MsFlags::MS_REC);
        return crate::sys::clone_tree(fd.as_fd(), recursive)
            .map_err(|e| (format!("open_tree {}", source.display()), e));
    }
    let mut pairs: Vec<(&str, &str)> = opts
        .data
        .iter()
        .map(|d| d.split_once('=').unwrap_or((d.as_str(), "")))
        .collect();
    pairs.extend(label.map(|l| ("context", l)));
    crate::sys::new_tmpfs(&pairs, 0).map_err(|e| ("make the tmpfs".to_string(), e))
}

/// A user namespace with these maps, as an fd: a helper child is born in
/// a new user namespace (clone with CLONE_NEWUSER), this process writes its
/// maps and opens /proc/<pid>/ns/user, then lets the child go (it is
/// added to `helpers`, to be reaped).
fn userns_with(
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    helpers: &mut Vec<Helper>,
) -> io::Result<OwnedFd> {
    let (hold, release) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM is a fork: carte is single-threaded
    // here, and the child only closes, reads and _exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: plain syscalls on inherited fds, then _exit: the child
        // waits until the parent closes (or loses) its end.
        unsafe {
            libc::close(release.as_raw_fd());
            let mut byte = 0u8;
            libc::read(hold.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0)
        }
    }
    let pid = pid as i32;
    let made = (|| {
        let write = |file: &str, maps: &[LinuxIdMapping]| {
            std::fs::write(
                format!("/proc/{pid}/{file}"),
                crate::namespaces::format_id_map(maps),
            )
        };
        write("uid_map", uid)?;
        write("gid_map", gid)?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(ns))
    })();
    // End of file on the pipe: the child exits.
    drop(release);
    drop(hold);
    helpers.push(Helper(pid));
    made
}

/// Attaches `tree` on `target` (an O_PATH fd of the mountpoint).
pub fn attach(tree: BorrowedFd, target: BorrowedFd) -> io::Result<()> {
    crate::sys::move_mount_to(tree, target)
}

/// Whether the detached tree is a directory (the mountpoint must match).
pub fn is_dir(tree: BorrowedFd) -> bool {
    // SAFETY: fstat on a valid fd into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(tree.as_raw_fd(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_pick_the_mapping() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/a", "type": "bind", "source": "/tmp", "options": ["rbind"]},
                {"destination": "/b", "type": "bind", "source": "/tmp", "options": ["rbind", "ridmap"]},
                {"destination": "/c", "type": "bind", "source": "/tmp", "options": ["bind"],
                 "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                 "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
            ],
            "linux": {
                "namespaces": [{"type": "user"}, {"type": "mount"}],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
            }
        }));
        let r = requests(&s);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].index, r[0].recursive), (1, true));
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(
            r[0].mapping,
            Mapping::Maps(
                linux.uid_mappings().as_deref().unwrap(),
                linux.gid_mappings().as_deref().unwrap()
            )
        );
        assert_eq!((r[1].index, r[1].recursive), (2, false));
        match &r[1].mapping {
            Mapping::Maps(uid, _) => assert_eq!(uid[0].host_id(), 1000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_joined_user_namespace_is_used_as_is() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/a", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]}],
            "linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}, {"type": "mount"}]}
        }));
        assert_eq!(
            requests(&s)[0].mapping,
            Mapping::Joined(Path::new("/proc/1/ns/user"))
        );
    }

    #[test]
    fn no_idmap_no_request() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/a", "type": "tmpfs", "source": "tmpfs"}],
            "linux": {}
        }));
        assert!(requests(&s).is_empty());
    }
}
