//! /dev: the devices every container gets, linux.devices, and the standard
//! symlinks. In a user namespace mknod is not allowed, so host devices are
//! bind-mounted instead, as runc does.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::{ensure_in_root, path_err, RootfsError};
use crate::sys::fd_path;

struct Dev {
    path: &'static str,
    major: u64,
    minor: u64,
}

const DEFAULT_DEVICES: &[Dev] = &[
    Dev {
        path: "/dev/null",
        major: 1,
        minor: 3,
    },
    Dev {
        path: "/dev/zero",
        major: 1,
        minor: 5,
    },
    Dev {
        path: "/dev/full",
        major: 1,
        minor: 7,
    },
    Dev {
        path: "/dev/random",
        major: 1,
        minor: 8,
    },
    Dev {
        path: "/dev/urandom",
        major: 1,
        minor: 9,
    },
    Dev {
        path: "/dev/tty",
        major: 5,
        minor: 0,
    },
];

const LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

pub fn default_devices(
    root: BorrowedFd,
    configured: &[LinuxDevice],
    in_userns: bool,
) -> Result<(), RootfsError> {
    for dev in DEFAULT_DEVICES {
        if configured.iter().any(|d| d.path() == Path::new(dev.path)) {
            continue;
        }
        let path = PathBuf::from(dev.path);
        make_device(
            root,
            &path,
            libc::S_IFCHR,
            dev.major,
            dev.minor,
            0o666,
            None,
            in_userns,
        )?;
    }
    let dev_dir = ensure_in_root(root, Path::new("/dev"), true)
        .map_err(path_err("create", Path::new("/dev")))?;
    for (target, name) in LINKS {
        match nix::unistd::symlinkat(*target, &dev_dir, *name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(path_err("symlink", &Path::new("/dev").join(name))(e.into())),
        }
    }
    Ok(())
}

pub fn config_devices(
    root: BorrowedFd,
    devices: &[LinuxDevice],
    in_userns: bool,
) -> Result<(), RootfsError> {
    for d in devices {
        failpoint!("rootfs.devices");
        // /dev/ptmx stays the link into the container's devpts (5:2 there
        // too), as with runc: podman --privileged lists the host's.
        if d.path() == Path::new("/dev/ptmx") {
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Path {
                    op: "create device",
                    path: d.path().display().to_string(),
                    source: io::Error::other("type \"a\" is only for cgroup rules"),
                })
            }
        };
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        make_device(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            owner,
            in_userns,
        )?;
    }
    Ok(())
}

/// A file already at a linux.devices path that is not the requested device
/// is an error (config-linux.md, Devices); the same device is replaced.
fn check_existing(
    root: BorrowedFd,
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
) -> Result<(), RootfsError> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    // O_NOFOLLOW: a symlink there is itself the file that is not the device.
    let st = match crate::sys::open_in_root(root, rel, libc::O_PATH | libc::O_NOFOLLOW, 0) {
        Ok(fd) => nix::sys::stat::fstat(&fd).map_err(io::Error::from),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => Err(e),
    }
    .map_err(path_err("stat", path))?;
    let (mode, rdev) = (st.st_mode, st.st_rdev);
    let same = mode & libc::S_IFMT == kind
        && (kind == libc::S_IFIFO
            || (libc::major(rdev) as u64, libc::minor(rdev) as u64) == (major, minor));
    if same {
        return Ok(());
    }
    Err(path_err("create device", path)(io::Error::other(format!(
        "a file that is not the requested device is already there (mode {:o}, device {}:{})",
        mode & libc::S_IFMT,
        libc::major(rdev),
        libc::minor(rdev)
    ))))
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: BorrowedFd,
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
    in_userns: bool,
) -> Result<(), RootfsError> {
    if owner.is_some() {
        // linux.devices: what is already at the path must be that device.
        check_existing(root, path, kind, major, minor)?;
    }
    if in_userns {
        // Bind the host's node over an empty file.
        let target = ensure_in_root(root, path, false).map_err(path_err("create", path))?;
        return mount(
            Some(path),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| RootfsError::Mount {
            what: path.display().to_string(),
            dest: path.display().to_string(),
            source: e.into(),
        });
    }
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let parent =
        ensure_in_root(root, parent_path, true).map_err(path_err("create", parent_path))?;
    let name = path.file_name().ok_or_else(|| {
        path_err("create device", path)(io::Error::from_raw_os_error(libc::EINVAL))
    })?;
    let cname = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(|_| path_err("create device", path)(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: parent is a valid dirfd, cname is NUL-terminated; unlinkat and
    // mknodat never follow a symlink in the last component.
    let rc = unsafe {
        libc::unlinkat(parent.as_raw_fd(), cname.as_ptr(), 0);
        libc::mknodat(parent.as_raw_fd(), cname.as_ptr(), kind | mode, dev)
    };
    if rc != 0 {
        return Err(path_err("mknod", path)(io::Error::last_os_error()));
    }
    if let Some((uid, gid)) = owner {
        // SAFETY: as above; AT_SYMLINK_NOFOLLOW keeps it on the node itself.
        let rc = unsafe {
            libc::fchownat(
                parent.as_raw_fd(),
                cname.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(path_err("chown", path)(io::Error::last_os_error()));
        }
    }
    Ok(())
}
