//! The container's init: rootfs, console, then the process attributes in
//! the order the spec and the CVE history require; Ready; then it waits on
//! exec.fifo until `start` and execs the user's process.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process};

use super::channel::{Channel, Message};
use super::InitArgs;
use crate::namespaces::Plan;
use crate::rootfs::{self, RootfsContext};
use crate::{capabilities, hooks, sys, tty};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What is left to do after Ready.
struct Ready {
    host_proc: OwnedFd,
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    state_json: String,
}

pub(super) fn run(args: &InitArgs, chan: &Channel) -> ! {
    let ready = match setup(args, chan) {
        Ok(ready) => ready,
        Err(msg) => {
            let _ = chan.send(&Message::Error(msg));
            // SAFETY: _exit ends init without running the parent's atexit work.
            unsafe { libc::_exit(1) }
        }
    };
    if chan.send(&Message::Ready).is_err() {
        // SAFETY: as above; the parent is gone, nobody will start us.
        unsafe { libc::_exit(1) }
    }
    let err = wait_and_exec(args, ready);
    // The caller of `create` has returned by now; stderr is all that is left.
    eprintln!("carte: {err}");
    // SAFETY: as above.
    unsafe { libc::_exit(127) }
}

fn setup(args: &InitArgs, chan: &Channel) -> Result<Ready, String> {
    let spec = args.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let process = spec.process().as_ref().expect("validated");
    let plan = Plan::from_spec(linux);
    let s = |e: &dyn std::fmt::Display| e.to_string();

    nix::unistd::setsid().map_err(|e| format!("setsid: {}", sys::errno(e)))?;
    // Devices and mountpoints get exactly the modes asked for.
    nix::sys::stat::umask(Mode::empty());
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oomScoreAdj {adj}: {}", crate::sys::reason(&e)))?;
    }
    let host_proc = rootfs::open_host_proc().map_err(|e| s(&e))?;
    let ctx = RootfsContext {
        rootfs: args.rootfs,
        in_userns: plan.has(LinuxNamespaceType::User),
        cgroup_ns: plan.has(LinuxNamespaceType::Cgroup),
        cgroup_path: args.cgroup_path,
    };
    rootfs::prepare(spec, &ctx).map_err(|e| s(&e))?;

    chan.send(&Message::CreateRuntimeHooks).map_err(|e| s(&e))?;
    let state_json = match chan.recv().map_err(|e| s(&e))? {
        Message::HooksDone(state) => state,
        other => return Err(format!("init pipe: expected HooksDone, got {other:?}")),
    };
    if let Some(list) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        hooks::run("createContainer", list, &state_json).map_err(|e| s(&e))?;
    }

    rootfs::enter(args.rootfs, args.no_pivot).map_err(|e| s(&e))?;
    if let Some(socket) = args.console_socket {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(socket.as_fd(), size).map_err(|e| s(&e))?;
    }
    rootfs::finalize(spec).map_err(|e| s(&e))?;
    if !args.no_new_keyring {
        // EACCES/ENOSYS: keyrings are off or forbidden here (as runc, not fatal).
        if let Err(e) = sys::join_session_keyring(&format!("_ses.{}", args.id)) {
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
            ) {
                return Err(format!("join session keyring: {}", sys::reason(&e)));
            }
        }
    }
    set_rlimits(process)?;
    set_user_and_caps(process, plan.has(LinuxNamespaceType::User))?;
    enter_cwd(process.cwd())?;
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("set no_new_privs: {}", sys::last_error()));
        }
    }
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask));

    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let args_vec = process.args().clone().unwrap_or_default();
    let program = find_executable(&args_vec[0], &env)?;
    let cstr =
        |v: &String| CString::new(v.as_bytes()).map_err(|_| format!("{v:?}: contains a NUL byte"));
    Ok(Ready {
        host_proc,
        program: CString::new(program.as_os_str().as_bytes())
            .map_err(|_| "program path has a NUL byte".to_string())?,
        argv: args_vec.iter().map(cstr).collect::<Result<_, _>>()?,
        envp: env.iter().map(cstr).collect::<Result<_, _>>()?,
        state_json,
    })
}

fn set_rlimits(process: &Process) -> Result<(), String> {
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

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
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
    let sets = capabilities::resolve(process.capabilities().as_ref()).map_err(|e| e.to_string())?;
    let user = process.user();
    // SAFETY: prctl with integer arguments; keeps permitted caps across setuid.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    capabilities::drop_bounding(&sets).map_err(|e| e.to_string())?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match setgroups(&groups) {
        Ok(()) => {}
        // A joined user namespace may have setgroups denied; with no extra
        // groups asked for, that is fine.
        Err(nix::Error::EPERM) if in_userns && groups.is_empty() => {}
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
/// cwd that is an fd leaked from the host shows up as "(unreachable)"
/// (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<(), String> {
    nix::unistd::chdir(cwd)
        .map_err(|e| format!("chdir to cwd {:?}: {}", cwd, e.desc().to_lowercase()))?;
    let now = nix::unistd::getcwd().map_err(|e| format!("getcwd: {}", sys::errno(e)))?;
    if !now.is_absolute() || now.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return Err(format!("cwd {cwd:?} is outside the container's root"));
    }
    Ok(())
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

fn wait_and_exec(args: &InitArgs, ready: Ready) -> String {
    // Blocks until `start` opens the fifo for reading. Reopened through the
    // host's /proc, which the container may not even have mounted.
    let fifo_path = CString::new(format!("self/fd/{}", args.fifo.as_raw_fd())).expect("no NUL");
    // SAFETY: host_proc is a valid dirfd and fifo_path NUL-terminated.
    let fd = unsafe {
        libc::openat(
            ready.host_proc.as_raw_fd(),
            fifo_path.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return format!("open exec fifo: {}", sys::last_error());
    }
    // SAFETY: openat just returned this fd. It stays open, close-on-exec,
    // until execve: `start` waits for the hang-up to know the process runs.
    let fifo = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: writes one byte from a static buffer.
    if unsafe { libc::write(fifo.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
        return format!("write exec fifo: {}", sys::last_error());
    }
    if let Some(list) = args
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        // The container is created now; start is what let init get here.
        let state =
            ready
                .state_json
                .replacen("\"status\":\"creating\"", "\"status\":\"created\"", 1);
        if let Err(e) = hooks::run("startContainer", list, &state) {
            return e.to_string();
        }
    }
    reset_signals();
    for fd in 3..3 + args.preserve_fds as i32 {
        let _ = sys::clear_cloexec(fd);
    }
    if let Err(e) = sys::cloexec_from(3 + args.preserve_fds) {
        return format!("close fds: {}", sys::reason(&e));
    }
    match nix::unistd::execve(&ready.program, &ready.argv, &ready.envp) {
        Err(e) => format!("exec {:?}: {}", ready.program, e.desc().to_lowercase()),
        Ok(never) => match never {},
    }
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
