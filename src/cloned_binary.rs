//! CVE-2019-5736: a container process must never reach the host's carte
//! binary through /proc/<pid>/exe of a carte process, nor run it through an
//! image whose program is `#!/proc/self/exe`, and then write to it.
//!
//! The verbs whose processes enter a container (create, run, exec) re-exec
//! carte once from a sealed memfd copy before they do anything else, so
//! every process they fork has a private, unwritable copy as its exe. The
//! other verbs never fork into a container and keep the fast path.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
    #[error("re-exec carte from its sealed copy: {}", crate::sys::reason(.0))]
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

/// Returns if carte already runs from a sealed copy; otherwise makes one
/// and re-execs into it with the same arguments and environment (it does
/// not return then).
pub fn ensure() -> Result<(), ClonedBinaryError> {
    let exe = File::open("/proc/self/exe").map_err(ClonedBinaryError::Open)?;
    if is_sealed(&exe) {
        return Ok(());
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
    // strings that outlive the call; the memfd is close-on-exec, which is
    // fine for an ELF program (the kernel holds its own reference).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            memfd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(ClonedBinaryError::Exec(io::Error::last_os_error()))
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
