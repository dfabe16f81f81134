//! A container without a mount namespace of its own inherits carte's (the
//! spec: a namespace type not listed is inherited). Its rootfs bind and the
//! mounts made in it then live in that namespace, and outlive init: create
//! records which mount the rootfs path resolved to before it began, and
//! every mount stacked above that one at the path is carte's to detach when
//! the container goes (a failed create, `delete`, `delete --force` of a
//! create that was killed).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The id of the mount `path` resolves to: the topmost one mounted on it,
/// or the one it lies in.
pub fn mount_id(path: &Path) -> io::Result<u64> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statx only writes into `buf`, which is sized for it.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: cpath outlives the call and buf is a valid statx buffer.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            cpath.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            libc::STATX_MNT_ID,
            &mut buf,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if buf.stx_mask & libc::STATX_MNT_ID == 0 {
        // Before Linux 5.8: no way to tell carte's mounts from the host's.
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(buf.stx_mnt_id)
}

/// Detaches the mounts stacked on `rootfs` above the mount `base` (carte's
/// rootfs bind and, with it, everything mounted inside it). Stops once the
/// path resolves to `base` again, or when it no longer changes.
pub fn detach_above(rootfs: &Path, base: u64) -> io::Result<()> {
    // More mounts stacked on one path than this is no container of carte's.
    for _ in 0..64 {
        let top = match mount_id(rootfs) {
            Ok(id) => id,
            // The rootfs is gone: nothing of carte's is mounted there.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        if top == base {
            return Ok(());
        }
        match nix::mount::umount2(rootfs, nix::mount::MntFlags::MNT_DETACH) {
            // Not a mountpoint: the base itself is gone, and carte's with it.
            Err(nix::Error::EINVAL) => return Ok(()),
            other => other.map_err(io::Error::from)?,
        }
    }
    Err(io::Error::other(
        "more than 64 mounts stacked on the rootfs",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_resolves_to_a_mount() {
        let root = mount_id(Path::new("/")).unwrap();
        assert_eq!(mount_id(Path::new("/.")).unwrap(), root);
        assert!(mount_id(Path::new("/nonexistent-carte-path")).is_err());
    }
}
