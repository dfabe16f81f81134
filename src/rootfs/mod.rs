//! The container's root filesystem: config mounts in order, /dev, then
//! pivot_root (or MS_MOVE + chroot), then masked and readonly paths,
//! sysctls, hostname and a readonly root.
//!
//! Every mount target is opened inside the rootfs with openat2
//! (RESOLVE_IN_ROOT) and mounted through /proc/self/fd/N, so a symlink in the
//! rootfs can neither point a mount outside it nor be swapped in mid-way.

mod devices;
pub mod idmap;
pub mod options;
pub mod shared;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{Mount, Spec};

use crate::sys::{fd_path, open_in_root};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
    #[error("mount {what} on {dest}: {}", crate::sys::reason(.source))]
    Mount {
        what: String,
        dest: String,
        source: io::Error,
    },
    #[error("{op} {path}: {}", crate::sys::reason(.source))]
    Path {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("mounts[{index}]: {reason}")]
    Entry { index: usize, reason: String },
    #[error("pivot_root to {path}: {}", crate::sys::reason(.source))]
    Pivot { path: String, source: io::Error },
    #[error("{field} {path}: a symlink is on the path, and carte follows none there")]
    Symlink { field: &'static str, path: String },
    #[error("set sysctl {key}: {}", crate::sys::reason(.source))]
    Sysctl { key: String, source: io::Error },
    #[error("set {what}: {}", crate::sys::reason(.source))]
    Uts {
        what: &'static str,
        source: io::Error,
    },
}

fn mount_err(what: impl Into<String>, dest: &Path) -> impl FnOnce(nix::Error) -> RootfsError {
    let what = what.into();
    let dest = dest.display().to_string();
    move |e| RootfsError::Mount {
        what,
        dest,
        source: e.into(),
    }
}

fn path_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RootfsError {
    let path = path.display().to_string();
    move |source| RootfsError::Path { op, path, source }
}

/// What init needs to know besides the spec.
pub struct RootfsContext<'a> {
    pub rootfs: &'a Path,
    /// False when the container shares carte's mount namespace (none in
    /// linux.namespaces): nothing may touch the host's / then (see shared.rs).
    pub own_mount_ns: bool,
    pub in_userns: bool,
    pub cgroup_ns: bool,
    pub cgroup_path: &'a str,
    /// linux.mountLabel, when SELinux is there to use it.
    pub mount_label: Option<&'a str>,
    /// The idmapped mounts `create` made, detached (see idmap.rs).
    pub idmapped: &'a [idmap::Idmapped],
}

/// The path of `dest` relative to the rootfs ("/dev/pts" -> "dev/pts"),
/// cleaned lexically so ".." never climbs above the root.
fn inner(dest: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Opens `path` (inside root) as O_PATH, creating missing directories, and
/// the last component as a directory or an empty file.
pub fn ensure_in_root(root: BorrowedFd, path: &Path, dir: bool) -> io::Result<OwnedFd> {
    let rel = inner(path);
    if rel.as_os_str().is_empty() {
        // "/" itself (the parent of a device at the top of the rootfs).
        return open_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0);
    }
    let kind = if dir { libc::O_DIRECTORY } else { 0 };
    match open_in_root(root, &rel, libc::O_PATH | kind, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let parent = match rel.parent() {
        Some(p) if !p.as_os_str().is_empty() => ensure_in_root(root, p, true)?,
        _ => open_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0)?,
    };
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let cname = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: parent is a valid dirfd and cname a NUL-terminated name; the
    // *at calls never follow a symlink in the last component.
    let rc = unsafe {
        if dir {
            libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o755)
        } else {
            libc::mknodat(parent.as_raw_fd(), cname.as_ptr(), libc::S_IFREG | 0o644, 0)
        }
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(err);
        }
    }
    open_in_root(root, &rel, libc::O_PATH | kind, 0)
}

fn open_root(rootfs: &Path) -> Result<OwnedFd, RootfsError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(rootfs)
        .map_err(path_err("open rootfs", rootfs))?;
    Ok(file.into())
}

/// The flags a bind remount must keep: in a user namespace the kernel
/// refuses to drop nosuid/nodev/noexec/ro that came from the parent mount.
fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Step 1, in init's new mount namespace: propagation of /, the rootfs bind,
/// config mounts in order, and /dev.
pub fn prepare(spec: &Spec, ctx: &RootfsContext) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref().expect("validated");
    let root_prop = linux
        .rootfs_propagation()
        .as_deref()
        .map(|p| options::parse(&[p.to_string()]).propagation)
        .and_then(|p| p.first().copied())
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Never let a mount made for the container reach the host; and an
    // unbindable / could not give the rootfs bind below (EINVAL). finalize
    // sets rootfsPropagation itself on the new root.
    let first = if root_prop.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        root_prop
    };
    failpoint!("rootfs.propagation");
    if ctx.own_mount_ns {
        mount(None::<&str>, "/", None::<&str>, first, None::<&str>)
            .map_err(mount_err("propagation", Path::new("/")))?;
        // A non-recursive "slave" or "private" leaves the mount the rootfs
        // lies in shared where the host's is (systemd makes / shared): the
        // rootfs bind and all below would reach the host, and pivot_root
        // refuses a shared parent. runc makes that one mount private too.
        // A recursive change (the default rslave) leaves no mount shared:
        // mountinfo is read only for the others.
        let mountinfo = if first.contains(MsFlags::MS_REC) {
            String::new()
        } else {
            crate::sys::read_proc("/proc/self/mountinfo").unwrap_or_default()
        };
        if let Some((point, true)) = parent_mount(&mountinfo, ctx.rootfs) {
            mount(
                None::<&str>,
                &point,
                None::<&str>,
                MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(mount_err("propagation", &point))?;
        }
    }
    failpoint!("rootfs.bind");
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_err(ctx.rootfs.display().to_string(), ctx.rootfs))?;
    if !ctx.own_mount_ns {
        // In the host's namespace: what is mounted in the rootfs from here
        // on stays out of the host's peer groups.
        mount(
            None::<&str>,
            ctx.rootfs,
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(mount_err("propagation", ctx.rootfs))?;
    }
    let root = open_root(ctx.rootfs)?;
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        // Name the config field, whatever step of the mount failed.
        let tree = ctx
            .idmapped
            .iter()
            .find(|t| t.index == index)
            .map(|t| t.tree.as_fd());
        mount_entry(root.as_fd(), m, tree, ctx).map_err(|e| match e {
            RootfsError::Entry { reason, .. } => RootfsError::Entry { index, reason },
            other => RootfsError::Entry {
                index,
                reason: other.to_string(),
            },
        })?;
    }
    let dev_is_bind = spec.mounts().iter().flatten().any(|m| {
        inner(m.destination()) == Path::new("dev")
            && options::parse(m.options().as_deref().unwrap_or_default()).is_bind()
    });
    if !dev_is_bind {
        failpoint!("rootfs.dev");
        devices::default_devices(
            root.as_fd(),
            linux.devices().as_deref().unwrap_or_default(),
            ctx.in_userns,
        )?;
    }
    devices::config_devices(
        root.as_fd(),
        linux.devices().as_deref().unwrap_or_default(),
        ctx.in_userns,
    )?;
    Ok(())
}

/// One config mount; `idmapped` is its detached, idmapped tree, if it is one.
fn mount_entry(
    root: BorrowedFd,
    m: &Mount,
    idmapped: Option<BorrowedFd>,
    ctx: &RootfsContext,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let opts = options::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.is_bind() || typ == "bind";
    match typ {
        _ if bind => failpoint!("rootfs.mount.bind"),
        "proc" => failpoint!("rootfs.mount.proc"),
        "sysfs" => failpoint!("rootfs.mount.sysfs"),
        "tmpfs" => failpoint!("rootfs.mount.tmpfs"),
        "devpts" => failpoint!("rootfs.mount.devpts"),
        "mqueue" => failpoint!("rootfs.mount.mqueue"),
        "cgroup" => failpoint!("rootfs.mount.cgroup"),
        _ => {}
    }
    if typ == "cgroup" && !bind {
        return mount_cgroup(root, m, &opts, ctx);
    }
    let target = if let Some(tree) = idmapped {
        attach_idmapped(root, tree, dest, &opts, typ, ctx)?
    } else if bind {
        let source = m.source().as_ref().ok_or_else(|| RootfsError::Entry {
            index: 0,
            reason: "a bind mount needs a source".into(),
        })?;
        let is_dir = std::fs::metadata(source)
            .map_err(path_err("stat bind source", source))?
            .is_dir();
        let target =
            ensure_in_root(root, dest, is_dir).map_err(path_err("create mountpoint", dest))?;
        // In a user namespace the kernel refuses to drop the flags the
        // source mount has; keep them unless the config clears them.
        let keep_locked = ctx.in_userns.then_some(opts.clear);
        bind_remount(root, source, &target, dest, opts.flags, keep_locked)?
    } else {
        // proc and sysfs must land on a real directory, never through a
        // symlink: the image could point them at a place it controls, where
        // later writes to /proc would land (CVE-2019-19921).
        if matches!(typ, "proc" | "sysfs") {
            match crate::sys::open_in_root_no_symlinks(root, &inner(dest), libc::O_PATH) {
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(RootfsError::Entry {
                        index: 0,
                        reason: format!(
                            "{typ} on {}: the destination is a symlink in the rootfs",
                            dest.display()
                        ),
                    })
                }
                _ => {}
            }
        }
        let covered = covered_mode(root, dest, typ, &opts);
        let target =
            ensure_in_root(root, dest, true).map_err(path_err("create mountpoint", dest))?;
        let source = m
            .source()
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_else(|| typ.to_string());
        let fstype = (!typ.is_empty()).then_some(typ);
        let mut data = opts.data_string();
        if let Some(mode) = covered {
            // As the tmpfs's own option: it may be read-only.
            let mode = format!("mode={mode:o}");
            data = Some(data.map_or(mode.clone(), |d| format!("{d},{mode}")));
        }
        // proc, sysfs and mqueue take no context= (as runc).
        if let Some(label) = ctx
            .mount_label
            .filter(|_| !matches!(typ, "proc" | "sysfs" | "mqueue"))
        {
            let context = format!("context=\"{label}\"");
            data = Some(match data {
                Some(d) => format!("{d},{context}"),
                None => context,
            });
        }
        mount(
            Some(source.as_str()),
            fd_path(&target).as_str(),
            fstype,
            opts.flags,
            data.as_deref(),
        )
        .map_err(mount_err(format!("{typ} {source}"), dest))?;
        let mounted =
            open_in_root(root, &inner(dest), libc::O_PATH, 0).map_err(path_err("open", dest))?;
        if opts.copy_up && typ == "tmpfs" {
            // `target` still names the directory underneath the new tmpfs.
            copy_tree(Path::new(&fd_path(&target)), Path::new(&fd_path(&mounted)))
                .map_err(path_err("tmpcopyup", dest))?;
        }
        mounted
    };
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        crate::sys::mount_setattr(target.as_fd(), opts.attr_set, opts.attr_clr, true).map_err(
            |source| RootfsError::Mount {
                what: "recursive attributes".into(),
                dest: dest.display().to_string(),
                source,
            },
        )?;
    }
    for prop in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            *prop,
            None::<&str>,
        )
        .map_err(mount_err("propagation", dest))?;
    }
    Ok(())
}

/// An idmapped mount: the detached tree `create` made (idmap.rs) is
/// moved onto the mountpoint, then given its per-mount flags as a bind
/// mount would be. A tmpfs gets its tmpcopyup copy through the mapping.
fn attach_idmapped(
    root: BorrowedFd,
    tree: BorrowedFd,
    dest: &Path,
    opts: &options::MountOptions,
    typ: &str,
    ctx: &RootfsContext,
) -> Result<OwnedFd, RootfsError> {
    let target = ensure_in_root(root, dest, idmap::is_dir(tree))
        .map_err(path_err("create mountpoint", dest))?;
    idmap::attach(tree, target.as_fd()).map_err(|source| RootfsError::Mount {
        what: "idmapped mount".into(),
        dest: dest.display().to_string(),
        source,
    })?;
    let keep_locked = ctx.in_userns.then_some(opts.clear);
    let mounted = remount_flags(root, dest, opts.flags, keep_locked)?;
    if opts.copy_up && typ == "tmpfs" {
        copy_tree(Path::new(&fd_path(&target)), Path::new(&fd_path(&mounted)))
            .map_err(path_err("tmpcopyup", dest))?;
    }
    Ok(mounted)
}

/// Copies a directory tree, keeping modes, owners and symlinks, and never
/// following a symlink of the source (it comes from the image).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            let mut input = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&src)?;
            let mut output = File::create(&dst)?;
            io::copy(&mut input, &mut output)?;
        } else {
            continue; // devices, fifos and sockets are not copied up
        }
        lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// A `cgroup` mount. With a cgroup namespace the hierarchies are mounted
/// afresh (the namespace makes the container's cgroup their root); without
/// one the container's own cgroup directories are bind-mounted.
fn mount_cgroup(
    root: BorrowedFd,
    m: &Mount,
    opts: &options::MountOptions,
    ctx: &RootfsContext,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let flags = opts.flags & !MsFlags::MS_RDONLY;
    let target = ensure_in_root(root, dest, true).map_err(path_err("create mountpoint", dest))?;
    let hierarchies = crate::cgroups::host_hierarchies();
    if crate::cgroups::is_unified() {
        let mounted = ctx.cgroup_ns
            && match mount(
                Some("cgroup2"),
                fd_path(&target).as_str(),
                Some("cgroup2"),
                opts.flags,
                None::<&str>,
            ) {
                Ok(()) => true,
                // The host's cgroup2 is already there, at the root of its
                // mount (a /sys bound from the host, as rootless configs
                // have): the kernel refuses the same filesystem twice on
                // one mount point. As runc, the container's cgroup is
                // bound instead (with no cgroup of its own, the tree).
                Err(nix::errno::Errno::EBUSY) => false,
                Err(e) => return Err(mount_err("cgroup2", dest)(e)),
            };
        if !mounted {
            let src = format!("/sys/fs/cgroup{}", ctx.cgroup_path);
            bind_remount(
                root,
                Path::new(&src),
                &target,
                dest,
                opts.flags,
                Some(MsFlags::empty()),
            )?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(mount_err("tmpfs for cgroups", dest))?;
    for h in &hierarchies {
        let src = PathBuf::from(format!("{}{}", h.mount_point.display(), ctx.cgroup_path));
        // Without a cgroup namespace only the container's own cgroup is
        // shown; a hierarchy it is not in (cgroup2 on a hybrid host) is left out.
        if !ctx.cgroup_ns && !src.exists() {
            continue;
        }
        let sub = dest.join(&h.name);
        let fd = ensure_in_root(root, &sub, true).map_err(path_err("create mountpoint", &sub))?;
        if ctx.cgroup_ns {
            let (fstype, data) = if h.v2 {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(h.options.as_str()))
            };
            mount(
                Some(fstype),
                fd_path(&fd).as_str(),
                Some(fstype),
                opts.flags,
                data,
            )
            .map_err(mount_err(fstype, &sub))?;
        } else {
            bind_remount(root, &src, &fd, &sub, opts.flags, Some(MsFlags::empty()))?;
        }
        // "cpu" and "cpuacct" point at "cpu,cpuacct", as on the host.
        if h.name.contains(',') {
            let dir = ensure_in_root(root, dest, true).map_err(path_err("open", dest))?;
            for alias in h.name.split(',') {
                let _ = nix::unistd::symlinkat(h.name.as_str(), &dir, alias);
            }
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let fd =
            open_in_root(root, &inner(dest), libc::O_PATH, 0).map_err(path_err("open", dest))?;
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .map_err(mount_err("remount ro", dest))?;
    }
    Ok(())
}

/// Bind-mounts `source` on `target` (recursively with MS_REC in `flags`)
/// and remounts it with the rest of `flags`. With `keep_locked`, the flags
/// the new mount already has are kept, less those given there to clear.
/// Returns an O_PATH fd of the new mount.
fn bind_remount(
    root: BorrowedFd,
    source: &Path,
    target: &OwnedFd,
    dest: &Path,
    flags: MsFlags,
    keep_locked: Option<MsFlags>,
) -> Result<OwnedFd, RootfsError> {
    let bind = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
    mount(
        Some(source),
        fd_path(target).as_str(),
        None::<&str>,
        bind,
        None::<&str>,
    )
    .map_err(mount_err(source.display().to_string(), dest))?;
    remount_flags(root, dest, flags, keep_locked)
}

/// Reopens the mount just made on `dest` and remounts it with the
/// per-mount flags of `flags` (see bind_remount for `keep_locked`).
fn remount_flags(
    root: BorrowedFd,
    dest: &Path,
    flags: MsFlags,
    keep_locked: Option<MsFlags>,
) -> Result<OwnedFd, RootfsError> {
    // Reopen: the old fd names the mountpoint underneath, not the new mount.
    let mounted =
        open_in_root(root, &inner(dest), libc::O_PATH, 0).map_err(path_err("open", dest))?;
    let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        let path = fd_path(&mounted);
        let keep = keep_locked
            .map(|clear| locked_flags(&path) - clear)
            .unwrap_or(MsFlags::empty());
        mount(
            None::<&str>,
            path.as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra | keep,
            None::<&str>,
        )
        .map_err(mount_err("remount", dest))?;
    }
    Ok(mounted)
}

/// Step 2: make the rootfs "/" and drop the host's tree. In carte's own
/// mount namespace (`own_mount_ns` false) only a chroot: pivot_root or
/// MS_MOVE there would change the host's root.
pub fn enter(rootfs: &Path, no_pivot: bool, own_mount_ns: bool) -> Result<(), RootfsError> {
    failpoint!("rootfs.pivot_root");
    let pivot_err = |e: nix::Error| RootfsError::Pivot {
        path: rootfs.display().to_string(),
        source: e.into(),
    };
    if !own_mount_ns {
        nix::unistd::chdir(rootfs).map_err(pivot_err)?;
        nix::unistd::chroot(".").map_err(pivot_err)?;
        nix::unistd::chdir("/").map_err(pivot_err)?;
        return Ok(());
    }
    if no_pivot {
        hide_host_proc_and_sys(rootfs)?;
        nix::unistd::chdir(rootfs).map_err(pivot_err)?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(pivot_err)?;
        nix::unistd::chroot(".").map_err(pivot_err)?;
        nix::unistd::chdir("/").map_err(pivot_err)?;
        return Ok(());
    }
    let old = open_root(Path::new("/"))?;
    let new = open_root(rootfs)?;
    nix::unistd::fchdir(&new).map_err(pivot_err)?;
    // pivot_root(".", "."): the old root ends up stacked on the new one,
    // so no directory for it is needed inside the container.
    nix::unistd::pivot_root(".", ".").map_err(pivot_err)?;
    nix::unistd::fchdir(&old).map_err(pivot_err)?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(pivot_err)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(pivot_err)?;
    nix::unistd::chdir("/").map_err(pivot_err)?;
    Ok(())
}

/// Before the MS_MOVE of --no-pivot, as runc's msMoveRoot: the host's
/// whole procfs and sysfs mounts stay in this mount namespace under the
/// chroot, and the kernel lets a process in a new user namespace mount
/// procfs (or sysfs) where a whole one is visible in its mount namespace.
/// Each is detached (made a slave first, so nothing reaches the host), or
/// covered with a tmpfs where it cannot be (locked in a user namespace).
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<(), RootfsError> {
    let mountinfo =
        crate::sys::read_proc("/proc/self/mountinfo").map_err(|source| RootfsError::Path {
            op: "read",
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
    for target in whole_proc_and_sys_outside(&mountinfo, rootfs) {
        let hide = |e: nix::Error| RootfsError::Mount {
            what: "a cover for the host's procfs or sysfs".into(),
            dest: target.display().to_string(),
            source: e.into(),
        };
        let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        match mount(None::<&str>, &target, None::<&str>, slave, None::<&str>) {
            // Gone with a mount above it that was detached already.
            Err(nix::Error::ENOENT) => continue,
            other => other.map_err(hide)?,
        }
        match umount2(&target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL | nix::Error::EPERM) => mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(hide)?,
            Err(e) => return Err(hide(e)),
        }
    }
    Ok(())
}

/// The mount points of whole (root "/") proc and sysfs mounts that are
/// not in `rootfs`, from a mountinfo text.
fn whole_proc_and_sys_outside(mountinfo: &str, rootfs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = left.split(' ').skip(3);
        let (Some(root), Some(point)) = (fields.next(), fields.next()) else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or_default();
        let point = PathBuf::from(unescape_mountinfo(point));
        if root == "/" && matches!(fstype, "proc" | "sysfs") && !point.starts_with(rootfs) {
            out.push(point);
        }
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// Step 3, inside the new root: sysctls, hostname, domainname, readonly
/// and masked paths, rootfsPropagation, and a readonly root last.
pub fn finalize(spec: &Spec, proc_root: BorrowedFd) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref().expect("validated");
    if let Some(sysctl) = linux.sysctl() {
        for (key, value) in sysctl {
            failpoint!("rootfs.sysctl");
            // Through init's verified procfs, not the container's /proc,
            // which a config or image mount could have covered.
            let path = PathBuf::from(format!("sys/{}", key.replace('.', "/")));
            let err = |source| RootfsError::Sysctl {
                key: key.clone(),
                source,
            };
            let fd = crate::sys::open_proc_file(proc_root, &path, libc::O_WRONLY).map_err(err)?;
            io::Write::write_all(&mut File::from(fd), value.as_bytes()).map_err(err)?;
        }
    }
    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        failpoint!("rootfs.hostname");
        nix::unistd::sethostname(name).map_err(|e| RootfsError::Uts {
            what: "hostname",
            source: e.into(),
        })?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: the pointer and length describe `name`'s bytes.
        let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        if rc != 0 {
            return Err(RootfsError::Uts {
                what: "domainname",
                source: io::Error::last_os_error(),
            });
        }
    }
    // After sysctl, since /proc/sys is usually among the readonly paths.
    // Both lists are applied fd to fd inside the new root: each path is
    // opened once, with no symlink allowed anywhere on it, and the mount
    // goes onto that fd (CVE-2025-31133, CVE-2024-45310 class).
    let root = open_root(Path::new("/"))?;
    let label = crate::lsm::mount_label(linux.mount_label().as_deref());
    for path in linux.readonly_paths().iter().flatten() {
        readonly_path(root.as_fd(), path)?;
    }
    let mut null = None;
    for path in linux.masked_paths().iter().flatten() {
        mask_path(root.as_fd(), path, &mut null, label)?;
    }
    // After the readonly and masked paths, which bind mounts inside the
    // root: an (r)unbindable root would refuse them.
    if let Some(prop) = linux.rootfs_propagation().as_deref() {
        for flag in options::parse(&[prop.to_string()]).propagation {
            mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
                .map_err(mount_err("rootfsPropagation", Path::new("/")))?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        failpoint!("rootfs.readonly_root");
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags("/");
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .map_err(mount_err("readonly root", Path::new("/")))?;
    }
    Ok(())
}

/// Opens a maskedPaths or readonlyPaths entry inside `root` as O_PATH,
/// refusing a symlink anywhere on the way (runc follows them; see
/// docs/spec-vs-runc.md). None when it does not exist: the spec lets
/// such entries be skipped.
fn open_listed_path(
    root: BorrowedFd,
    field: &'static str,
    path: &str,
) -> Result<Option<OwnedFd>, RootfsError> {
    match crate::sys::open_in_root_no_symlinks(root, &inner(Path::new(path)), libc::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(RootfsError::Symlink {
            field,
            path: path.to_string(),
        }),
        Err(source) => Err(RootfsError::Path {
            op: field,
            path: path.to_string(),
            source,
        }),
    }
}

/// A read-only recursive bind of `path` over itself: its tree is cloned
/// through its fd, made read-only while still detached, and moved back
/// onto the same fd, so no second lookup can land elsewhere.
fn readonly_path(root: BorrowedFd, path: &str) -> Result<(), RootfsError> {
    failpoint!("rootfs.readonly_paths");
    let Some(target) = open_listed_path(root, "readonlyPaths", path)? else {
        return Ok(());
    };
    let err = |what: &str| {
        let what = what.to_string();
        move |source| RootfsError::Mount {
            what,
            dest: path.to_string(),
            source,
        }
    };
    let tree = crate::sys::clone_tree(target.as_fd(), true).map_err(err("readonly bind"))?;
    crate::sys::mount_setattr(tree.as_fd(), crate::sys::MOUNT_ATTR_RDONLY, 0, true)
        .map_err(err("readonly attribute"))?;
    crate::sys::move_mount_to(tree.as_fd(), target.as_fd()).map_err(err("readonly bind"))
}

/// Masks `path`: the verified /dev/null over a file, a new empty
/// read-only tmpfs over a directory, each moved onto the path's fd.
/// `null` caches the /dev/null fd across entries.
fn mask_path(
    root: BorrowedFd,
    path: &str,
    null: &mut Option<OwnedFd>,
    label: Option<&str>,
) -> Result<(), RootfsError> {
    failpoint!("rootfs.masked_paths");
    let Some(target) = open_listed_path(root, "maskedPaths", path)? else {
        return Ok(());
    };
    let is_dir = File::from(
        target
            .try_clone()
            .map_err(path_err("stat masked path", Path::new(path)))?,
    )
    .metadata()
    .map_err(path_err("stat masked path", Path::new(path)))?
    .is_dir();
    let err = |source| RootfsError::Mount {
        what: "mask".into(),
        dest: path.to_string(),
        source,
    };
    if is_dir {
        // An empty read-only directory that anyone may list.
        let mut options = vec![("size", "0"), ("mode", "755")];
        options.extend(label.map(|l| ("context", l)));
        let tmpfs = crate::sys::new_tmpfs(&options, crate::sys::MOUNT_ATTR_RDONLY).map_err(err)?;
        return crate::sys::move_mount_to(tmpfs.as_fd(), target.as_fd()).map_err(err);
    }
    // Bound fd to fd: neither /dev/null nor the masked path is resolved
    // again (CVE-2025-31133).
    let null = match null {
        Some(fd) => fd,
        None => null.insert(null_device(root)?),
    };
    crate::sys::bind_fd(null.as_fd(), target.as_fd()).map_err(err)
}

/// The container's /dev/null, opened with no symlink on the way and
/// checked to be the null device (a character device 1:3), not, say, a
/// symlink or bind mount of a host file that masking would then expose
/// over /proc (CVE-2025-31133).
fn null_device(root: BorrowedFd) -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = match crate::sys::open_in_root_no_symlinks(root, &inner(path), libc::O_PATH) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(path_err("check", path)(io::Error::other(
                "not the null device (a symlink is on the way)",
            )))
        }
        other => other.map_err(path_err("open", path))?,
    };
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = File::from(fd.try_clone().map_err(path_err("open", path))?)
        .metadata()
        .map_err(path_err("stat", path))?;
    if !meta.file_type().is_char_device() || meta.rdev() != libc::makedev(1, 3) {
        return Err(path_err("check", path)(io::Error::other(
            "not the null device (character device 1:3)",
        )));
    }
    Ok(fd)
}

/// Binds the pty slave `slave` onto /dev/console, fd to fd: the target
/// is opened in the new root with no symlink allowed (made as an empty
/// file if missing), and the source is the slave's own fd, so no path the
/// container controls can redirect the bind (CVE-2025-52565).
pub fn bind_console(slave: BorrowedFd) -> Result<(), RootfsError> {
    let path = Path::new("/dev/console");
    let root = open_root(Path::new("/"))?;
    let open = || {
        crate::sys::open_in_root_no_symlinks(root.as_fd(), Path::new("dev/console"), libc::O_PATH)
    };
    let symlink = || RootfsError::Symlink {
        field: "console",
        path: path.display().to_string(),
    };
    let target = match open() {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(symlink()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let dev = crate::sys::open_in_root_no_symlinks(
                root.as_fd(),
                Path::new("dev"),
                libc::O_PATH | libc::O_DIRECTORY,
            )
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => symlink(),
                _ => path_err("open", Path::new("/dev"))(e),
            })?;
            // SAFETY: dev is a valid dirfd and the name a static C string;
            // mknodat never follows a symlink in the last component.
            let rc = unsafe {
                libc::mknodat(
                    dev.as_raw_fd(),
                    c"console".as_ptr(),
                    libc::S_IFREG | 0o600,
                    0,
                )
            };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(path_err("create", path)(e));
                }
            }
            open().map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => symlink(),
                _ => path_err("open", path)(e),
            })?
        }
        Err(e) => return Err(path_err("open", path)(e)),
    };
    crate::sys::bind_fd(slave, target.as_fd()).map_err(|source| RootfsError::Mount {
        what: "pty slave".into(),
        dest: path.display().to_string(),
        source,
    })
}

/// The mount point of the topmost mount `path` lies in, from mountinfo
/// text, and whether that mount is shared (a `shared:N` optional field).
fn parent_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| PathBuf::from(unescape_mountinfo(p))) else {
            continue;
        };
        if !path.starts_with(&point) {
            continue;
        }
        let shared = fields[6..]
            .iter()
            .take_while(|f| **f != "-")
            .any(|f| f.starts_with("shared:"));
        // Later lines are mounted later: on the same point, they are on top.
        if best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some((point, shared));
        }
    }
    best
}

/// Opens the host's /proc before pivot_root, for the exec fifo after it.
pub fn open_host_proc() -> Result<OwnedFd, RootfsError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open("/proc")
        .map_err(path_err("open", Path::new("/proc")))?;
    Ok(file.into())
}

/// A tmpfs without `mode=` takes the mode of the directory it covers, as
/// runc gives it (the kernel's default is 1777); None for any other mount,
/// or a destination that does not exist yet.
fn covered_mode(
    root: BorrowedFd,
    dest: &Path,
    typ: &str,
    opts: &options::MountOptions,
) -> Option<u32> {
    if typ != "tmpfs" || opts.data.iter().any(|d| d.starts_with("mode=")) {
        return None;
    }
    let fd = open_in_root(root, &inner(dest), libc::O_PATH | libc::O_DIRECTORY, 0).ok()?;
    let meta = File::from(fd).metadata().ok()?;
    Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_proc_and_sys_outside_the_rootfs() {
        let mountinfo = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid shared:2 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup ro shared:3 - tmpfs tmpfs ro
26 23 0:24 / /proc/sys/fs/binfmt_misc rw shared:13 - binfmt_misc binfmt_misc rw
27 22 0:21 /sys /mnt/procsys rw - proc proc rw
28 22 0:25 / /srv/my\\040dir/proc rw - proc proc rw
40 22 254:1 /b/rootfs /b/rootfs rw - ext4 /dev/vda1 rw
41 40 0:30 / /b/rootfs/proc rw - proc proc rw
42 40 0:31 / /b/rootfs/sys ro - sysfs sysfs ro
43 22 0:32 / /b/rootfs2/proc rw - proc proc rw
";
        let found = whole_proc_and_sys_outside(mountinfo, Path::new("/b/rootfs"));
        let want: Vec<PathBuf> = ["/proc", "/sys", "/srv/my dir/proc", "/b/rootfs2/proc"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(found, want);
    }

    #[test]
    fn parent_mount_is_the_topmost_longest_prefix() {
        let info = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    30 22 254:16 / /carte-tests rw shared:9 - ext4 /dev/vdb rw\n\
                    31 22 254:16 /rootfs /rootfs rw shared:9 - ext4 /dev/vdb rw\n\
                    32 31 0:40 / /rootfs rw - tmpfs tmpfs rw\n\
                    33 22 0:41 / /my\\040dir rw master:3 - tmpfs tmpfs rw\n";
        let p = |s: &str| super::parent_mount(info, Path::new(s));
        assert_eq!(p("/rootfs"), Some((PathBuf::from("/rootfs"), false)));
        assert_eq!(
            p("/carte-tests/rootfs"),
            Some((PathBuf::from("/carte-tests"), true))
        );
        assert_eq!(p("/rootfsx"), Some((PathBuf::from("/"), true)));
        assert_eq!(p("/my dir/r"), Some((PathBuf::from("/my dir"), false)));
    }

    #[test]
    fn inner_paths_stay_inside() {
        assert_eq!(inner(Path::new("/dev/pts")), PathBuf::from("dev/pts"));
        assert_eq!(inner(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(inner(Path::new("/a/../b/./c")), PathBuf::from("b/c"));
        assert_eq!(inner(Path::new("data")), PathBuf::from("data"));
    }
}
