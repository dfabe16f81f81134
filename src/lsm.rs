//! AppArmor profiles and SELinux labels for the user's process, and the
//! SELinux label of the container's mounts.
//!
//! An AppArmor profile that cannot be applied is an error (the container
//! would run unconfined); SELinux labels on a host without SELinux are
//! ignored with a warning, as crun does. Labels are written only through a
//! verified procfs (`sys::open_proc_file`): never through a /proc a
//! container mount could have replaced (CVE-2019-19921, CVE-2025-52881).

use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::Path;

use oci_spec::runtime::Process;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("AppArmor profile {0:?}: AppArmor is not enabled on this host")]
    NoAppArmor(String),
    #[error("write {what} to /proc/{path}: {}", crate::sys::reason(.source))]
    Write {
        what: &'static str,
        path: &'static str,
        source: io::Error,
    },
}

/// True when the kernel runs AppArmor (its module says Y).
pub fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
}

/// True when SELinux is on (selinuxfs is there to be asked).
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Checks, before anything is made, that what the process asks of the LSMs
/// can be done: `what` names the field or flag in errors and warnings.
pub fn check(process: &Process, mount_label: Option<&str>) -> Result<(), LsmError> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(LsmError::NoAppArmor(profile.to_string()));
        }
    }
    if !selinux_enabled() {
        for (what, label) in [
            ("process.selinuxLabel", process.selinux_label().as_deref()),
            ("linux.mountLabel", mount_label),
        ] {
            if let Some(label) = label.filter(|l| !l.is_empty()) {
                crate::logging::warn(&format!(
                    "{what} {label:?}: SELinux is not enabled on this host; ignored"
                ));
            }
        }
    }
    Ok(())
}

/// The mount label to put on the container's mounts, if SELinux can use it.
pub fn mount_label(label: Option<&str>) -> Option<&str> {
    label.filter(|l| !l.is_empty() && selinux_enabled())
}

/// Sets the labels the next execve takes on, through `proc_root` (a
/// verified procfs). Runs in the process that will exec.
pub fn apply(process: &Process, proc_root: BorrowedFd) -> Result<(), LsmError> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(LsmError::NoAppArmor(profile.to_string()));
        }
        let value = format!("exec {profile}");
        // attr/apparmor/ since Linux 5.8; attr/exec before (and when
        // AppArmor is the only LSM).
        match write_attr(proc_root, "thread-self/attr/apparmor/exec", &value) {
            Err(LsmError::Write { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                write_attr(proc_root, "thread-self/attr/exec", &value)?
            }
            other => other?,
        }
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if selinux_enabled() {
            write_attr(proc_root, "thread-self/attr/exec", label)?;
        }
    }
    Ok(())
}

fn write_attr(proc_root: BorrowedFd, path: &'static str, value: &str) -> Result<(), LsmError> {
    let err = |source| LsmError::Write {
        what: "label",
        path,
        source,
    };
    let fd = crate::sys::open_proc_file(proc_root, Path::new(path), libc::O_WRONLY).map_err(err)?;
    std::fs::File::from(fd)
        .write_all(value.as_bytes())
        .map_err(err)
}
