//! The attributes of the user's process, applied in the order the spec and
//! the CVE history require: rlimits, then groups/gid/uid with the
//! capability sets, cwd, no_new_privs, umask; then exec. Shared by init and
//! `exec`. The seccomp filter goes in as runc puts it: before the user and
//! capability switch without no_new_privs (installing it then needs
//! CAP_SYS_ADMIN), otherwise last, so the fewest calls run under it.

use std::ffi::CString;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::{capabilities, sys};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user's program, resolved and ready for execve.
pub(super) struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// The container's seccomp filter and what to do with its notify listener.
pub(super) struct Seccomp<'a> {
    pub filter: &'a crate::seccomp::Filter,
    /// Gives the listener to the parent, which passes it to the agent.
    pub hand_off: &'a dyn Fn(OwnedFd) -> Result<(), String>,
}

fn install_seccomp(seccomp: Option<&Seccomp>) -> Result<(), String> {
    let Some(s) = seccomp else { return Ok(()) };
    failpoint!("attrs.seccomp");
    if let Some(listener) = s.filter.install().map_err(|e| e.to_string())? {
        (s.hand_off)(listener)?;
    }
    Ok(())
}

/// Applies everything but the exec itself and resolves the program, so
/// that a missing executable is reported before the caller returns.
pub(super) fn prepare(
    process: &Process,
    in_userns: bool,
    seccomp: Option<&Seccomp>,
    proc_root: BorrowedFd,
) -> Result<Program, String> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    set_rlimits(process)?;
    // Before seccomp, which may refuse the write; takes effect at execve.
    crate::lsm::apply(process, proc_root).map_err(|e| e.to_string())?;
    if !nnp {
        install_seccomp(seccomp)?;
    }
    set_user_and_caps(process, in_userns)?;
    enter_cwd(process.cwd())?;
    if nnp {
        failpoint!("attrs.no_new_privs");
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("set no_new_privs: {}", sys::last_error()));
        }
    }
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask));

    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let arg0 = args.first().ok_or("process.args: must not be empty")?;
    let path = find_executable(arg0, &env)?;
    let cstr =
        |v: &String| CString::new(v.as_bytes()).map_err(|_| format!("{v:?}: contains a NUL byte"));
    let program = Program {
        path: CString::new(path.as_os_str().as_bytes())
            .map_err(|_| "program path has a NUL byte".to_string())?,
        argv: args.iter().map(cstr).collect::<Result<_, _>>()?,
        envp: env.iter().map(cstr).collect::<Result<_, _>>()?,
    };
    if nnp {
        install_seccomp(seccomp)?;
    }
    Ok(program)
}

/// The trampoline that execs the program (CVE-2019-5736, see
/// cloned_binary.rs), and the fd on which carte waits for the hang-up at
/// the program's execve, which the trampoline keeps open until then.
pub(super) struct Via<'a> {
    pub trampoline: &'a crate::cloned_binary::Trampoline,
    pub report: RawFd,
    pub mode: crate::cloned_binary::Report,
}

/// Resets signals, leaves only stdio and fds 3..3+preserve_fds open across
/// exec, and execs, through `via` if given. Returns only on failure, with
/// the cause.
pub(super) fn exec(program: &Program, preserve_fds: u32, via: Option<&Via>) -> String {
    reset_signals();
    for fd in 3..3 + preserve_fds as i32 {
        let _ = sys::clear_cloexec(fd);
    }
    if let Err(e) = sys::cloexec_from(3 + preserve_fds) {
        return format!("close fds: {}", sys::reason(&e));
    }
    let Some(via) = via else {
        return match nix::unistd::execve(&program.path, &program.argv, &program.envp) {
            Err(e) => format!("exec {:?}: {}", program.path, sys::errno(e)),
            Ok(never) => match never {},
        };
    };
    // The trampoline marks it close-on-exec again before its execve.
    if let Err(e) = sys::clear_cloexec(via.report) {
        return format!(
            "keep fd {} open for the trampoline: {}",
            via.report,
            sys::reason(&e)
        );
    }
    let argv =
        crate::cloned_binary::trampoline_argv(via.report, via.mode, &program.path, &program.argv);
    match nix::unistd::execveat(
        via.trampoline.fd(),
        c"",
        &argv,
        &program.envp,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    ) {
        Err(e) => format!(
            "exec the trampoline for {:?}: {}",
            program.path,
            sys::errno(e)
        ),
        Ok(never) => match never {},
    }
}

/// The user namespace this process is in has setgroups(2) turned off.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

fn set_rlimits(process: &Process) -> Result<(), String> {
    failpoint!("attrs.rlimits");
    for rl in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads a struct we own.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(format!("set rlimit {:?}: {}", rl.typ(), sys::last_error()));
        }
    }
    Ok(())
}

pub(crate) fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn set_user_and_caps(process: &Process, in_userns: bool) -> Result<(), String> {
    let caps = process.capabilities().as_ref();
    let sets = if in_userns {
        capabilities::resolve_fresh(caps)
    } else {
        capabilities::resolve(caps)
    }
    .map_err(|e| e.to_string())?;
    let user = process.user();
    // SAFETY: prctl with integer arguments; keeps permitted caps across setuid.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    failpoint!("attrs.caps");
    capabilities::drop_bounding(&sets).map_err(|e| e.to_string())?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    failpoint!("attrs.user");
    match setgroups(&groups) {
        Ok(()) => {}
        // A user namespace (the container's, or the one carte runs in) may
        // have setgroups denied; with no extra groups asked for, that is
        // fine.
        Err(nix::Error::EPERM) if groups.is_empty() && (in_userns || setgroups_denied()) => {}
        Err(e) => {
            return Err(format!(
                "setgroups {:?}: {}",
                user.additional_gids(),
                sys::errno(e)
            ))
        }
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(|e| format!("setresgid {}: {}", user.gid(), sys::errno(e)))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(|e| format!("setresuid {}: {}", user.uid(), sys::errno(e)))?;
    capabilities::apply(&sets).map_err(|e| e.to_string())?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// chdir to process.cwd and make sure it really is inside the new root: a
/// cwd that is an fd leaked from the host lies outside it (CVE-2024-21626).
/// Checked by inode, not getcwd, which the container's seccomp profile may
/// already deny.
fn enter_cwd(cwd: &Path) -> Result<(), String> {
    failpoint!("attrs.cwd");
    nix::unistd::chdir(cwd)
        .map_err(|e| format!("chdir to cwd {:?}: {}", cwd, e.desc().to_lowercase()))?;
    match sys::cwd_under_root() {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("cwd {cwd:?} is outside the container's root")),
        Err(e) => Err(format!("check cwd {cwd:?}: {}", sys::reason(&e))),
    }
}

/// Finds the program as execvp would, with the container's PATH, so a
/// missing one fails `create` rather than after `start`.
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<(), String> {
        let meta = std::fs::metadata(p).map_err(|e| crate::sys::reason(&e))?;
        if meta.is_dir() {
            return Err("is a directory".into());
        }
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).map_err(|e| e.desc().to_lowercase())
    };
    if arg0.contains('/') {
        let path = PathBuf::from(arg0);
        return check(&path)
            .map(|()| path)
            .map_err(|reason| format!("exec {arg0:?}: {reason}"));
    }
    let path_var = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if check(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(format!("exec {arg0:?}: executable file not found in $PATH"))
}

/// The user's process starts with default dispositions and nothing blocked
/// (Rust ignores SIGPIPE, and callers may block signals).
fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: resetting a disposition to SIG_DFL is always sound.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}
