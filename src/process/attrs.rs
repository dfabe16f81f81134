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
    /// A seccomp filter is in place (see exec).
    filtered: bool,
}

/// The container's seccomp filter and what to do with its notify listener.
pub(super) struct Seccomp<'a> {
    pub filter: &'a crate::seccomp::Filter,
    /// Gives the listener to the parent, which passes it to the agent.
    pub hand_off: &'a dyn Fn(OwnedFd) -> Result<(), String>,
}

/// Installs the filter. First, while nothing can refuse it, marks every
/// fd from 3+preserve_fds close-on-exec: under the filter, close_range
/// (which a profile need not list) may get any errno, and did fail the
/// start. Every fd carte opens after this is close-on-exec by itself.
fn install_seccomp(seccomp: Option<&Seccomp>, preserve_fds: u32) -> Result<(), String> {
    let Some(s) = seccomp else { return Ok(()) };
    sys::cloexec_from(3 + preserve_fds).map_err(|e| format!("close fds: {}", sys::reason(&e)))?;
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
    preserve_fds: u32,
) -> Result<Program, String> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    set_rlimits(process)?;
    // Before seccomp, which may refuse the write; takes effect at execve.
    crate::lsm::apply(process, proc_root).map_err(|e| e.to_string())?;
    if !nnp {
        install_seccomp(seccomp, preserve_fds)?;
    }
    // Read while still root: /etc/passwd may not be readable by the user.
    let env = with_home(
        process.env().as_deref().unwrap_or_default(),
        process.user().uid(),
    );
    give_stdio_to(process.user().uid())?;
    // Into cwd while still privileged, as runc: the user may be unable to
    // search a directory on the way. When root can't (root-squashed NFS),
    // again as the user.
    let cwd_entered = enter_cwd(process.cwd(), true)?;
    set_user_and_caps(process, in_userns)?;
    if !cwd_entered {
        enter_cwd(process.cwd(), false)?;
    }
    if nnp {
        failpoint!("attrs.no_new_privs");
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("set no_new_privs: {}", sys::last_error()));
        }
    }
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask));

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
        filtered: seccomp.is_some(),
    };
    if nnp {
        install_seccomp(seccomp, preserve_fds)?;
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

/// Resets signals, leaves only stdio and the caller's fds 3..3+preserve_fds
/// open across exec, and execs, through `via` if given. Returns only on
/// failure, with the cause. The caller's fds are not close-on-exec (they
/// came through carte's own execve); a close-on-exec fd in the range is
/// carte's and stays so.
pub(super) fn exec(program: &Program, preserve_fds: u32, via: Option<&Via>) -> String {
    reset_signals();
    // Under a seccomp filter, install_seccomp has marked them already,
    // and the filter may refuse the calls: then it is no error.
    if let Err(e) = sys::cloexec_from(3 + preserve_fds) {
        if !program.filtered {
            return format!("close fds: {}", sys::reason(&e));
        }
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
/// already deny. With `may_retry`, a permission error is Ok(false): the
/// caller tries again as the user.
fn enter_cwd(cwd: &Path, may_retry: bool) -> Result<bool, String> {
    failpoint!("attrs.cwd");
    match nix::unistd::chdir(cwd) {
        Ok(()) => {}
        Err(nix::Error::EACCES | nix::Error::EPERM) if may_retry => return Ok(false),
        Err(e) => {
            return Err(format!(
                "chdir to cwd {:?}: {}",
                cwd,
                e.desc().to_lowercase()
            ))
        }
    }
    match sys::cwd_under_root() {
        Ok(true) => Ok(true),
        Ok(false) => Err(format!("cwd {cwd:?} is outside the container's root")),
        Err(e) => Err(format!("check cwd {cwd:?}: {}", sys::reason(&e))),
    }
}

/// Makes a missing process.cwd (and its parents) mode 0755, as runc does;
/// in init, after pivot_root (the path resolves in the container's root)
/// and before the root is made read-only.
pub(super) fn create_cwd(cwd: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::symlink_metadata(cwd) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(cwd)
            .map_err(|e| format!("create cwd {cwd:?}: {}", sys::reason(&e))),
        _ => Ok(()),
    }
}

/// Makes the user the owner of stdio (a pty slave, a pipe, a file), keeping
/// its group, as runc does: a process that is not root can then reopen
/// /dev/stdout or its terminal. Not /dev/null, nor what the user owns
/// already; an owner or group not mapped here, or a read-only file, is
/// left as it is.
fn give_stdio_to(uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let null = std::fs::metadata("/dev/null").ok().map(|m| m.rdev());
    for fd in 0..3 {
        // SAFETY: an all-zero stat is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat fills a struct we own; a closed fd is an error.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && Some(st.st_rdev) == null;
        if st.st_uid == uid || is_null {
            continue;
        }
        // SAFETY: fchown on one of our own fds.
        if unsafe { libc::fchown(fd, uid, st.st_gid) } != 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINVAL | libc::EPERM | libc::EROFS) => {}
                _ => {
                    return Err(format!(
                        "chown stdio fd {fd} to {uid}: {}",
                        sys::reason(&err)
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The environment with HOME set from the user's /etc/passwd entry in the
/// container (`/` without one) when it has no HOME or an empty one, as
/// runc does.
fn with_home(env: &[String], uid: u32) -> Vec<String> {
    let has_home = env
        .iter()
        .any(|kv| kv.strip_prefix("HOME=").is_some_and(|v| !v.is_empty()));
    let mut env = env.to_vec();
    if has_home {
        return env;
    }
    let passwd = read_passwd().unwrap_or_default();
    let home = home_in_passwd(&passwd, uid).unwrap_or("/");
    env.retain(|kv| !kv.starts_with("HOME="));
    env.push(format!("HOME={home}"));
    env
}

/// The container's /etc/passwd, if it is a regular file (never a fifo to
/// block on); capped, as a passwd file is small.
fn read_passwd() -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open("/etc/passwd")
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The home directory of the first passwd line whose uid is `uid`.
fn home_in_passwd(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let id = fields.nth(2)?;
        let home = fields.nth(2)?;
        (id.parse() == Ok(uid) && !home.is_empty()).then_some(home)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n# comment\nuser:x:1000:1000::/home/user:/bin/sh\nodd:x:7:7\n";
        assert_eq!(home_in_passwd(passwd, 0), Some("/root"));
        assert_eq!(home_in_passwd(passwd, 1000), Some("/home/user"));
        assert_eq!(home_in_passwd(passwd, 7), None);
        assert_eq!(home_in_passwd(passwd, 2000), None);
    }

    #[test]
    fn home_kept_when_given() {
        let env = vec!["A=1".to_string(), "HOME=/x".to_string()];
        assert_eq!(with_home(&env, 0), env);
    }
}
