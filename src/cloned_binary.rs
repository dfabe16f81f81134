//! CVE-2019-5736: a container process must never reach the host's carte
//! binary through /proc/<pid>/exe of a carte process, nor run it through an
//! image whose program is `#!/proc/self/exe`, and then write to it.
//!
//! Every carte process a container can see (init until its execve, an exec
//! child until its own) is non-dumpable. That is not enough on its own: the
//! execve of a `#!/proc/self/exe` script runs the carte binary itself in
//! the container, as a new, dumpable image whose exe is the host's binary
//! (found with a static carte, which runs in any rootfs; a dynamic one runs
//! wherever the image has glibc's loader). Only a user namespace stops
//! that: the binary's owner is not mapped in it, so the kernel gives the
//! new image to the host's user namespace, and opening its exe takes
//! CAP_SYS_PTRACE there. So without a user namespace, or with a PID
//! namespace joined by path (another container's processes), create, run
//! and exec re-exec carte once, before they fork (`needed_for`, recorded
//! in state.json for `exec`, which also sets it when it grants
//! CAP_SYS_PTRACE), from a path that cannot be written: a detached
//! read-only bind mount of the binary (open_tree + mount_setattr; no copy,
//! the page cache is shared), or where that is refused, a sealed memfd
//! copy. Every process it forks, and every image they exec, then has an
//! exe that opens read-only (EROFS) or not at all for writing
//! (F_SEAL_WRITE). A carte already on a read-only mount never re-execs.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

#[derive(Debug, thiserror::Error)]
pub enum ClonedBinaryError {
    #[error("open /proc/self/exe: {}", crate::sys::reason(.0))]
    Open(io::Error),
    #[error("memfd_create for the sealed copy of carte: {}", crate::sys::reason(.0))]
    Memfd(io::Error),
    #[error("copy /proc/self/exe into a memfd: {}", crate::sys::reason(.0))]
    Copy(io::Error),
    #[error("seal the memfd copy of carte: {}", crate::sys::reason(.0))]
    Seal(io::Error),
    #[error("re-exec carte from its read-only copy: {}", crate::sys::reason(.0))]
    Exec(io::Error),
}

/// Nothing may change the copy once it is made, nor drop these seals.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
/// MFD_EXEC (Linux 6.3): executable even under vm.memfd_noexec=1.
const MFD_EXEC: libc::c_uint = 0x0010;

/// True if `exe` is a memfd carrying every seal in SEALS.
fn is_sealed(exe: &File) -> bool {
    // SAFETY: fcntl on a valid fd; a non-memfd answers EINVAL.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Whether carte's processes for a container with this config must run
/// from the read-only binary (see the module comment).
pub fn needed_for(spec: &oci_spec::runtime::Spec) -> bool {
    use oci_spec::runtime::LinuxNamespaceType;
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let shares_pid_ns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_some());
    let has_userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User);
    shares_pid_ns || !has_userns
}

/// Whether a process may ever hold CAP_SYS_PTRACE: it is in its bounding set.
pub fn grants_ptrace(process: Option<&oci_spec::runtime::Process>) -> bool {
    process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::SysPtrace))
}

/// Returns if carte already runs from a sealed copy; otherwise makes one
/// and re-execs into it with the same arguments and environment (it does
/// not return then).
pub fn ensure() -> Result<(), ClonedBinaryError> {
    let exe = File::open("/proc/self/exe").map_err(ClonedBinaryError::Open)?;
    if is_sealed(&exe) || on_readonly_mount(&exe) {
        return Ok(());
    }
    if let Some(tree) = readonly_bind(&exe) {
        return Err(reexec(&tree));
    }
    let memfd = memfd()?;
    let len = exe.metadata().map_err(ClonedBinaryError::Copy)?.len();
    let mut left = len;
    while left > 0 {
        // SAFETY: both fds are valid; a NULL offset uses exe's file position.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left.min(1 << 30) as usize,
            )
        };
        match n {
            n if n > 0 => left -= n as u64,
            0 => return Err(ClonedBinaryError::Copy(io::ErrorKind::UnexpectedEof.into())),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(ClonedBinaryError::Copy(err));
                }
            }
        }
    }
    // SAFETY: fcntl with integer arguments on our own memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(ClonedBinaryError::Seal(io::Error::last_os_error()));
    }
    Err(reexec(&memfd))
}

/// True if `exe` sits on a read-only mount (installed so, or re-exec'd).
fn on_readonly_mount(exe: &File) -> bool {
    // SAFETY: statvfs is plain old data; fstatvfs fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a pointer to our own struct.
    let rc = unsafe { libc::fstatvfs(exe.as_raw_fd(), &mut st) };
    rc == 0 && st.f_flag & libc::ST_RDONLY != 0
}

/// A detached, read-only bind mount of carte's own binary, or None if the
/// kernel refuses one (then the memfd copy is used).
fn readonly_bind(exe: &File) -> Option<OwnedFd> {
    let tree = crate::sys::clone_tree(exe.as_fd(), false).ok()?;
    crate::sys::mount_setattr(tree.as_fd(), crate::sys::MOUNT_ATTR_RDONLY, 0, false).ok()?;
    Some(tree)
}

/// execveat of `fd` with carte's own arguments and environment; returns
/// only on failure.
fn reexec(fd: &OwnedFd) -> ClonedBinaryError {
    let cstrings = |items: Vec<OsString>| -> Vec<CString> {
        items
            .into_iter()
            .filter_map(|s| CString::new(s.into_vec()).ok())
            .collect()
    };
    let argv = cstrings(std::env::args_os().collect());
    let envp = cstrings(
        std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                kv
            })
            .collect(),
    );
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated
    // strings that outlive the call; the fd is close-on-exec, which is
    // fine for an ELF program (the kernel holds its own reference).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    ClonedBinaryError::Exec(io::Error::last_os_error())
}

fn memfd() -> Result<OwnedFd, ClonedBinaryError> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags: libc::c_uint| {
        // SAFETY: a static NUL-terminated name and integer flags.
        unsafe { libc::memfd_create(c"carte".as_ptr(), flags) }
    };
    let mut fd = create(base | MFD_EXEC);
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable.
        fd = create(base);
    }
    if fd < 0 {
        return Err(ClonedBinaryError::Memfd(io::Error::last_os_error()));
    }
    // SAFETY: memfd_create just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
