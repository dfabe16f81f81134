//! CVE-2019-5736: a container process must never reach the host's carte
//! binary through /proc/<pid>/exe of a carte process, nor run it through an
//! image whose program is `#!/proc/self/exe`, and then write to it.
//!
//! Every carte process a container can see (init until its execve, an exec
//! child until its own) is non-dumpable. That is not enough on its own: the
//! execve of a `#!/proc/self/exe` script runs the exe of the process that
//! execs, which would be carte itself, in the container, as a new,
//! dumpable image whose exe is the host's binary (found with a static
//! carte, which runs in any rootfs; a dynamic one runs wherever the image
//! has glibc's loader). Each config gets one of three defences
//! (`defence_for`, recorded in state.json for `exec`):
//!
//! - A user namespace: the binary's owner is not mapped in it, so the
//!   kernel gives the new image to the host's user namespace, and opening
//!   its exe takes CAP_SYS_PTRACE there. Nothing more is needed.
//! - The trampoline: carte execs the user's program through a few-KiB
//!   static program (src/trampoline/) run from a sealed, per-container
//!   memfd, so the process that execs the program, and any image that is
//!   `#!/proc/self/exe`, has that memfd as its exe. carte's own processes
//!   stay the host's binary, non-dumpable, which holds only where nothing
//!   in the container can open a non-dumpable process's exe: a PID
//!   namespace of its own and no CAP_SYS_PTRACE.
//! - Otherwise (a PID namespace joined or the host's, CAP_SYS_PTRACE, an
//!   LSM label, container-side hooks, a seccomp profile that would stop
//!   the trampoline), create, run and exec re-exec carte once, before they
//!   fork (`ensure`), from a path that cannot be written: a detached
//!   read-only bind mount of the binary (open_tree + mount_setattr; no
//!   copy, the page cache is shared), or where that is refused, a sealed
//!   memfd copy. Every process it forks, and every image they exec, then
//!   has an exe that opens read-only (EROFS) or not at all for writing
//!   (F_SEAL_WRITE). `exec` also moves a container here for good when it
//!   grants CAP_SYS_PTRACE. A carte already on a read-only mount never
//!   re-execs.

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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
    #[error("write the exec trampoline into a memfd: {}", crate::sys::reason(.0))]
    Trampoline(io::Error),
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

/// How a container's processes are kept from the host's carte binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defence {
    /// A user namespace: the kernel keeps the binary out of reach.
    UserNamespace,
    /// carte re-execs from the read-only binary before it forks (`ensure`).
    ReadOnlyExe,
    /// The user's program is exec'd by the trampoline (`Trampoline`).
    Trampoline,
}

/// What the config needs (see the module comment). The trampoline covers
/// only the execve of a `#!/proc/self/exe` image; carte's own image stays
/// the host's binary, so it needs a container that can never open the exe
/// of a non-dumpable process: a PID namespace of its own (nothing of the
/// container's, or another's, sees carte's processes but through one that
/// holds CAP_SYS_PTRACE) and no CAP_SYS_PTRACE in its bounding set. It is
/// also not used where it would change what the user's process gets: an
/// LSM label (it would go to the trampoline's exec), container-side hooks
/// (carte execs them itself), or a seccomp profile that would not let the
/// trampoline's own calls through.
pub fn defence_for(
    spec: &oci_spec::runtime::Spec,
    seccomp: Option<&crate::seccomp::Filter>,
) -> Defence {
    use crate::namespaces::{clone_flag, Plan};
    use oci_spec::runtime::LinuxNamespaceType as T;
    let plan = spec
        .linux()
        .as_ref()
        .map(Plan::from_spec)
        .unwrap_or_default();
    let shares_pid_ns = plan.join.iter().any(|(kind, _)| *kind == T::Pid);
    if plan.has(T::User) && !shares_pid_ns {
        return Defence::UserNamespace;
    }
    let trampoline_fits = plan.create.contains(clone_flag(T::Pid))
        && !crate::hooks::run_in_container(spec.hooks().as_ref())
        && spec
            .process()
            .as_ref()
            .is_some_and(|p| trampoline_fits_process(p, seccomp));
    if trampoline_fits {
        Defence::Trampoline
    } else {
        Defence::ReadOnlyExe
    }
}

/// The part of `defence_for` that depends on the process (also for exec).
pub fn trampoline_fits_process(
    process: &oci_spec::runtime::Process,
    seccomp: Option<&crate::seccomp::Filter>,
) -> bool {
    let labelled = process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        || process
            .selinux_label()
            .as_ref()
            .is_some_and(|l| !l.is_empty());
    !grants_ptrace(Some(process)) && !labelled && seccomp.is_none_or(trampoline_calls_allowed)
}

/// The trampoline's own calls, as it makes them, are let through: the
/// execveat of its memfd and the fcntl that marks the report fd. (Its
/// execve of the user's program is the one every runtime makes.) The fd
/// numbers are not known yet: a profile that filters on them is refused.
pub fn trampoline_calls_allowed(filter: &crate::seccomp::Filter) -> bool {
    [3, 4, 9, 64, 1000].iter().all(|&fd| {
        let execveat = [fd, 0, 0, 0, libc::AT_EMPTY_PATH as u64, 0];
        let fcntl = [fd, libc::F_SETFD as u64, libc::FD_CLOEXEC as u64, 0, 0, 0];
        filter.allows(libc::SYS_execveat, execveat) && filter.allows(libc::SYS_fcntl, fcntl)
    })
}

/// The trampoline program, built by build.rs from src/trampoline/.
static TRAMPOLINE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trampoline"));

/// A sealed memfd holding the trampoline, made per container (or exec)
/// before the fork: close-on-exec, executable, never writable.
pub struct Trampoline(OwnedFd);

impl Trampoline {
    pub fn new() -> Result<Trampoline, ClonedBinaryError> {
        let memfd = memfd(c"carte-trampoline")?;
        let mut file = File::from(memfd);
        io::Write::write_all(&mut file, TRAMPOLINE).map_err(ClonedBinaryError::Trampoline)?;
        seal(file.as_fd())?;
        Ok(Trampoline(file.into()))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// How the trampoline reports a failed execve on its report fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Plain text that may have no reader left: stderr gets it too.
    TextAndStderr,
    /// Plain text that carte reads and prints itself.
    Text,
    /// An Error message on an init pipe.
    Tagged,
}

/// The trampoline's argv: the report fd and its mode, the program's path,
/// then its argv.
pub fn trampoline_argv(report: RawFd, mode: Report, path: &CStr, argv: &[CString]) -> Vec<CString> {
    let suffix = match mode {
        Report::TextAndStderr => "",
        Report::Text => "q",
        Report::Tagged => "E",
    };
    let report = format!("{report}{suffix}");
    let mut out = Vec::with_capacity(argv.len() + 2);
    out.push(CString::new(report).expect("digits"));
    out.push(path.to_owned());
    out.extend(argv.iter().cloned());
    out
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
    let memfd = memfd(c"carte")?;
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
    seal(memfd.as_fd())?;
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

/// Adds every seal in SEALS to a filled memfd.
fn seal(memfd: BorrowedFd) -> Result<(), ClonedBinaryError> {
    // SAFETY: fcntl with integer arguments on a memfd we hold.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(ClonedBinaryError::Seal(io::Error::last_os_error()));
    }
    Ok(())
}

fn memfd(name: &CStr) -> Result<OwnedFd, ClonedBinaryError> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags: libc::c_uint| {
        // SAFETY: a NUL-terminated name (CStr) and integer flags.
        unsafe { libc::memfd_create(name.as_ptr(), flags) }
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

#[cfg(test)]
mod tests {
    use super::*;

    include!("trampoline/reasons.rs");

    #[test]
    fn trampoline_words_errors_as_carte_does() {
        for (errno, text) in REASONS {
            assert_eq!(
                *text,
                crate::sys::reason(&io::Error::from_raw_os_error(*errno))
            );
        }
    }

    #[test]
    fn trampoline_argv_leads_with_the_report_fd_and_path() {
        let argv = [CString::new("sh").unwrap(), CString::new("-c").unwrap()];
        let got = trampoline_argv(7, Report::Tagged, c"/bin/sh", &argv);
        let got: Vec<&str> = got.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(got, ["7E", "/bin/sh", "sh", "-c"]);
        let got = trampoline_argv(12, Report::TextAndStderr, c"/x", &[]);
        assert_eq!(got[0].to_str().unwrap(), "12");
        let got = trampoline_argv(3, Report::Text, c"/x", &[]);
        assert_eq!(got[0].to_str().unwrap(), "3q");
    }

    fn spec(v: serde_json::Value) -> oci_spec::runtime::Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": ["CAP_KILL"]}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        });
        json_merge(&mut base, v);
        serde_json::from_value(base).unwrap()
    }

    fn json_merge(base: &mut serde_json::Value, v: serde_json::Value) {
        match (base, v) {
            (serde_json::Value::Object(b), serde_json::Value::Object(v)) => {
                for (k, v) in v {
                    json_merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, v) => *b = v,
        }
    }

    #[test]
    fn defence_per_config() {
        use serde_json::json;
        let d = |v| defence_for(&spec(v), None);
        assert_eq!(d(json!({})), Defence::Trampoline);
        let userns = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "user"}]}});
        assert_eq!(d(userns), Defence::UserNamespace);
        let joined = json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}});
        assert_eq!(d(joined), Defence::ReadOnlyExe);
        let joined_userns = json!({"linux": {"namespaces": [
            {"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "user"}]}});
        assert_eq!(d(joined_userns), Defence::ReadOnlyExe);
        let host_pid = json!({"linux": {"namespaces": [{"type": "mount"}]}});
        assert_eq!(d(host_pid), Defence::ReadOnlyExe);
        let ptrace = json!({"process": {"capabilities": {"bounding": ["CAP_SYS_PTRACE"]}}});
        assert_eq!(d(ptrace), Defence::ReadOnlyExe);
        let labelled = json!({"process": {"apparmorProfile": "p"}});
        assert_eq!(d(labelled), Defence::ReadOnlyExe);
        let hooks = json!({"hooks": {"startContainer": [{"path": "/bin/true"}]}});
        assert_eq!(d(hooks), Defence::ReadOnlyExe);
    }

    #[test]
    fn seccomp_profiles_that_stop_the_trampoline() {
        use serde_json::json;
        let filter = |v: serde_json::Value| {
            crate::seccomp::compile(&serde_json::from_value(v).unwrap()).unwrap()
        };
        let with = |f: &crate::seccomp::Filter| defence_for(&spec(json!({})), Some(f));
        let allow_all = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
        assert_eq!(with(&allow_all), Defence::Trampoline);
        for name in ["execveat", "fcntl"] {
            let denied = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": [name], "action": "SCMP_ACT_ERRNO"}]}));
            assert_eq!(with(&denied), Defence::ReadOnlyExe, "{name}");
        }
        let by_fd = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_KILL",
                          "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}]}));
        assert_eq!(with(&by_fd), Defence::ReadOnlyExe);
        let allow_list = filter(json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["execve", "execveat", "fcntl", "exit_group"],
                          "action": "SCMP_ACT_ALLOW"}]}));
        assert_eq!(with(&allow_list), Defence::Trampoline);
    }
}
