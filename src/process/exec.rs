//! `exec`: a new process in a running container, through the same chain as
//! create. The parent puts an intermediate in the container's cgroup; the
//! intermediate joins every namespace of init that differs from its own,
//! forks (so the process lands in the PID namespace), and the child applies
//! the process attributes and execs. Success is the pipe's end of file at
//! execve (the child's end is close-on-exec); failure is an Error message.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, setresgid, setresuid, ForkResult, Gid, Pid, Uid};
use oci_spec::runtime::Process;

use super::channel::{self, Channel, ChannelError, Message};
use super::{attrs, ProcessError};
use crate::cgroups::Manager;
use crate::{sys, tty};

pub struct ExecArgs<'a> {
    pub init_pid: i32,
    pub process: &'a Process,
    /// linux.personality and memoryPolicy as the container was created.
    pub container: super::sched::Container<'a>,
    /// The container's resctrl group (linux.intelRdt), joined with the cgroup.
    pub rdt: Option<&'a crate::intelrdt::Group>,
    pub console_socket: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    /// The container's seccomp filter, which the process gets too.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// Execs the process, when that is the CVE-2019-5736 defence.
    pub trampoline: Option<&'a crate::cloned_binary::Trampoline>,
    /// `exec --cgroup`: existing sub-cgroups of the container's to move
    /// the process into, after the container's own.
    pub sub_cgroups: &'a [std::path::PathBuf],
}

/// Namespace kinds in the order they are joined: user first (it owns the
/// rest), mount last (joining it changes what /proc paths mean).
const KINDS: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

/// Opens one of init's namespace files. Until init execs the container's
/// process it is not dumpable (CVE-2016-9962), and only root may open
/// them: carte without root (rootless) gets EACCES there. `start` returns
/// before that execve, so an exec right after it waits for it, a second
/// at most; a `created` container stays closed to it.
fn open_init_ns(path: &str) -> std::io::Result<File> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match File::open(path) {
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Opens init's namespaces that are not ours.
fn container_namespaces(init_pid: i32) -> Result<Vec<(&'static str, libc::c_int, File)>, String> {
    let mut out = Vec::new();
    for (name, flag) in KINDS {
        let theirs = format!("/proc/{init_pid}/ns/{name}");
        let file = match open_init_ns(&theirs) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(format!(
                    "open {theirs}: {} (without root, init can be entered only once it runs the container's process)",
                    sys::reason(&e)
                ))
            }
            Err(e) => return Err(format!("open {theirs}: {}", sys::reason(&e))),
        };
        let same = std::fs::metadata(format!("/proc/self/ns/{name}")).is_ok_and(|ours| {
            file.metadata()
                .is_ok_and(|t| t.ino() == ours.ino() && t.dev() == ours.dev())
        });
        if !same {
            out.push((name, flag, file));
        }
    }
    Ok(out)
}

/// Starts the process and returns its pid once it has exec'd;
/// `on_listener` passes a seccomp notify listener to the agent.
pub fn spawn(
    args: &ExecArgs,
    cgroup: &mut dyn Manager,
    on_listener: &mut super::OnListener,
) -> Result<i32, ProcessError> {
    // Opened here, while /proc is the host's and init is known alive.
    failpoint!("exec.namespaces");
    let namespaces = container_namespaces(args.init_pid).map_err(ProcessError::Child)?;
    // A container in carte's own mount namespace (it has none of its own)
    // is only a chroot: the process is put in init's root, not the host's.
    let chroot = if namespaces
        .iter()
        .any(|(_, flag, _)| *flag == libc::CLONE_NEWNS)
    {
        None
    } else {
        let path = format!("/proc/{}/root", args.init_pid);
        Some(
            std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| ProcessError::Child(format!("open {path}: {}", sys::reason(&e))))?,
        )
    };
    // The procfs the process's labels are written through: the host's, which
    // no mount in the container can cover.
    let host_proc =
        crate::rootfs::open_host_proc().map_err(|e| ProcessError::Child(e.to_string()))?;
    let (parent_end, child_end) = channel::pair()?;
    // The process is orphaned when the intermediate exits: it becomes our
    // child, so a failed one can be reaped (below). A detached process
    // that runs goes on to the host's init when we exit, as before.
    crate::process::foreground::become_subreaper();
    // SAFETY: single-threaded; the child ends in exec or _exit.
    match unsafe { fork() }.map_err(ProcessError::Fork)? {
        ForkResult::Child => {
            drop(parent_end);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                intermediate(
                    args,
                    &namespaces,
                    chroot.as_ref().map(|f| f.as_fd()),
                    host_proc.as_fd(),
                    &child_end,
                )
            }));
            if result.is_err() {
                let _ = child_end.send(&Message::Error(
                    "exec: intermediate process panicked".into(),
                ));
            }
            // SAFETY: _exit never returns and skips the parent's atexit work.
            unsafe { libc::_exit(1) }
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            let mut pid = None;
            let rdt = |()| match args.rdt {
                Some(group) => group
                    .join(child.as_raw())
                    .map_err(|e| ProcessError::Child(e.to_string())),
                None => Ok(()),
            };
            let result = initial_affinity(args.process, child)
                .and_then(rdt)
                .and_then(|()| {
                    drive(
                        cgroup,
                        args.sub_cgroups,
                        &parent_end,
                        child,
                        &mut pid,
                        on_listener,
                    )
                });
            if result.is_err() {
                if let Some(pid) = pid {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = kill(child, Signal::SIGKILL);
            }
            let _ = waitpid(child, None);
            if result.is_err() && pid.is_none() {
                // The process's Error can overtake the intermediate's
                // InitPid on their shared pipe; the intermediate has
                // exited now, so its pid, if sent, is queued.
                while let Some(msg) = parent_end.pending() {
                    if let Message::InitPid(p) = msg {
                        pid = Some(p);
                        break;
                    }
                }
            }
            if let (Err(_), Some(pid)) = (&result, pid) {
                // Orphaned by the intermediate, the failed process is ours
                // now (we are its subreaper): reap it. Left to the host's
                // init, it lingers as a zombie in the container's PID
                // namespace, whose init cannot finish dying before it is
                // reaped: `delete --force` took 1-2 s here after a failed exec.
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            result
        }
    }
}

/// execCPUAffinity.initial: the intermediate runs there until it joins
/// the container's cgroup (then `final`, see sched::final_affinity).
fn initial_affinity(process: &Process, intermediate: Pid) -> Result<(), ProcessError> {
    let Some(list) = super::sched::initial_affinity(process) else {
        return Ok(());
    };
    let mask = super::sched::cpu_mask(list)
        .map_err(|e| ProcessError::Child(format!("process.execCPUAffinity.initial: {e}")))?;
    sys::set_affinity(intermediate.as_raw(), &mask).map_err(|e| {
        ProcessError::Child(format!(
            "process.execCPUAffinity.initial: sched_setaffinity({list}): {}",
            sys::reason(&e)
        ))
    })
}

fn drive(
    cgroup: &mut dyn Manager,
    sub_cgroups: &[std::path::PathBuf],
    chan: &Channel,
    intermediate: Pid,
    pid: &mut Option<i32>,
    on_listener: &mut super::OnListener,
) -> Result<i32, ProcessError> {
    failpoint!("exec.cgroup.join");
    cgroup.enter(intermediate.as_raw())?;
    for dir in sub_cgroups {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, intermediate.as_raw().to_string()).map_err(|e| {
            ProcessError::Child(format!(
                "exec --cgroup: join {}: {}",
                dir.display(),
                sys::reason(&e)
            ))
        })?;
    }
    chan.send(&Message::Start)?;
    // The process may send its listener before the intermediate has sent
    // its pid (they share the pipe): it then waits here for the pid.
    let mut listener: Option<OwnedFd> = None;
    loop {
        let (msg, fd) = match chan.recv_with_fd() {
            Ok((msg, fd)) => (Ok(msg), fd),
            Err(e) => (Err(e), None),
        };
        if let Ok(Message::InitPid(p)) = msg {
            *pid = Some(p);
        }
        if let Ok(Message::SeccompFd) = msg {
            listener = Some(fd.ok_or_else(|| {
                ProcessError::Child("exec: seccomp listener message without an fd".into())
            })?);
        }
        if let (Some(p), Some(_)) = (*pid, &listener) {
            on_listener(p, listener.take().expect("checked")).map_err(ProcessError::Child)?;
            super::send(chan, &Message::SeccompDone)?;
        }
        match msg {
            Ok(Message::SeccompFd) | Ok(Message::InitPid(_)) => {}
            Ok(Message::Error(text)) => return Err(ProcessError::Child(text)),
            Ok(other) => {
                return Err(ProcessError::Child(format!(
                    "init pipe: unexpected {other:?}"
                )))
            }
            Err(ChannelError::Closed) => {
                return pid.ok_or_else(|| {
                    ProcessError::Child("exec: the process exited before it started".into())
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn intermediate(
    args: &ExecArgs,
    namespaces: &[(&'static str, libc::c_int, File)],
    chroot: Option<BorrowedFd>,
    host_proc: BorrowedFd,
    chan: &Channel,
) -> ! {
    let fail = |msg: String| -> ! {
        let _ = chan.send(&Message::Error(msg));
        // SAFETY: _exit ends the child without touching the parent's state.
        unsafe { libc::_exit(1) }
    };
    let mut keep = vec![0, 1, 2, chan.as_raw_fd(), host_proc.as_raw_fd()];
    keep.extend(namespaces.iter().map(|(_, _, f)| f.as_raw_fd()));
    keep.extend(chroot.map(|fd| fd.as_raw_fd()));
    keep.extend(crate::failpoint::hits_fd());
    keep.extend(args.console_socket.map(|fd| fd.as_raw_fd()));
    keep.extend(args.trampoline.map(|t| t.fd().as_raw_fd()));
    // Only the caller's fds of the range: create and exec refuse a range
    // with one of carte's in it; never hand one over all the same.
    keep.extend((3..3 + args.preserve_fds as i32).filter(|&fd| sys::passed_fd(fd)));
    sys::close_fds_except(&keep);
    // SAFETY: prctl with integer arguments; dies with `carte exec`.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // Its fds and memory are the host's until execve, which undoes this:
    // the container's processes must not reach them through /proc/<pid>.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    if let Err(e) = chan.expect(&Message::Start) {
        fail(e)
    }
    let mut in_userns = false;
    for (name, flag, file) in namespaces {
        if let Err(e) = setns_failpoint(name) {
            fail(e)
        }
        if let Err(e) = setns(file.as_fd(), CloneFlags::from_bits_retain(*flag)) {
            fail(format!(
                "join {name} namespace of the container: {}",
                sys::errno(e)
            ));
        }
        if *flag == libc::CLONE_NEWUSER {
            in_userns = true;
            let zero = (Gid::from_raw(0), Uid::from_raw(0));
            if let Err(e) =
                setresgid(zero.0, zero.0, zero.0).and_then(|_| setresuid(zero.1, zero.1, zero.1))
            {
                fail(format!(
                    "become root of the user namespace: {}",
                    sys::errno(e)
                ));
            }
        }
    }
    if let Some(root) = chroot {
        if let Err(e) = nix::unistd::fchdir(root).and_then(|()| nix::unistd::chroot(".")) {
            fail(format!("enter the container's root: {}", sys::errno(e)));
        }
    }
    // SAFETY: still single-threaded; the child ends in exec or _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let err = match setup(args, in_userns, host_proc, chan) {
                Ok(program) => {
                    let via = args.trampoline.map(|trampoline| attrs::Via {
                        trampoline,
                        report: chan.as_raw_fd(),
                        mode: crate::cloned_binary::Report::Tagged,
                    });
                    attrs::exec(&program, args.preserve_fds, via.as_ref())
                }
                Err(e) => e,
            };
            fail(err)
        }
        Ok(ForkResult::Parent { child }) => {
            let code = match chan.send(&Message::InitPid(child.as_raw())) {
                Ok(()) => 0,
                Err(e) => {
                    // The process must not go on unknown to the parent.
                    let _ = kill(child, Signal::SIGKILL);
                    let _ = chan.send(&Message::Error(e.to_string()));
                    1
                }
            };
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        Err(e) => fail(format!("fork: {}", sys::errno(e))),
    }
}

/// One failpoint per kind of namespace joined.
fn setns_failpoint(name: &str) -> Result<(), String> {
    match name {
        "user" => failpoint!("exec.setns.user"),
        "ipc" => failpoint!("exec.setns.ipc"),
        "uts" => failpoint!("exec.setns.uts"),
        "net" => failpoint!("exec.setns.network"),
        "pid" => failpoint!("exec.setns.pid"),
        "cgroup" => failpoint!("exec.setns.cgroup"),
        "time" => failpoint!("exec.setns.time"),
        "mnt" => failpoint!("exec.setns.mount"),
        _ => {}
    }
    Ok(())
}

fn setup(
    args: &ExecArgs,
    in_userns: bool,
    host_proc: BorrowedFd,
    chan: &Channel,
) -> Result<attrs::Program, String> {
    failpoint!("exec.process");
    // Its own session and process group, with or without a terminal, as
    // runc's nsexec gives every process it starts.
    nix::unistd::setsid().map_err(|e| format!("setsid: {}", sys::errno(e)))?;
    if let Some(socket) = args.console_socket {
        let size = args
            .process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(socket.as_fd(), size).map_err(|e| e.to_string())?;
    }
    let hand_off = |fd| chan.hand_off_listener(fd);
    let seccomp = args.seccomp.map(|filter| attrs::Seccomp {
        filter,
        hand_off: &hand_off,
    });
    super::sched::final_affinity(Some(args.process))?;
    super::sched::apply(args.process, args.container)?;
    attrs::prepare(
        args.process,
        in_userns,
        seccomp.as_ref(),
        host_proc,
        args.preserve_fds,
    )
}
