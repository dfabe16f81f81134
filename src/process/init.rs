//! The container's init: rootfs, console, then the process attributes in
//! the order the spec and the CVE history require; Ready; then it waits on
//! exec.fifo until `start` and execs the user's process.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use super::attrs;
use super::channel::{Channel, ChannelError, Message};
use super::{InitArgs, Release};
use crate::cgroups::SelfJoin;
use crate::cloned_binary::Report;
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsContext};
use crate::{hooks, sys, tty};

/// What is left to do after Ready.
struct Ready {
    host_proc: OwnedFd,
    program: attrs::Program,
    state_json: String,
}

pub(super) fn run(args: &InitArgs, chan: &Channel, join: Option<SelfJoin>) -> ! {
    let ready = match setup(args, chan, join) {
        Ok(ready) => ready,
        Err(msg) => {
            let _ = chan.send(&Message::Error(msg));
            // SAFETY: _exit ends init without running the parent's atexit work.
            unsafe { libc::_exit(1) }
        }
    };
    // An injected failure of the Ready send still tells the parent why.
    if let Err(e) = chan.send(&Message::Ready) {
        let _ = chan.send(&Message::Error(e.to_string()));
        // SAFETY: as above.
        unsafe { libc::_exit(1) }
    }
    // Until `create` has recorded the container in state.json, init lives
    // only as long as `create` does: a create killed before that leaves
    // nothing running that no state.json describes.
    match chan.recv() {
        Ok(Message::Created) => {}
        // The parent is gone: nobody will start us, nobody to tell.
        // SAFETY: as above.
        Err(ChannelError::Closed) => unsafe { libc::_exit(1) },
        other => {
            // create may have returned already: stderr is what is left.
            let why = match other {
                Err(e) => e.to_string(),
                Ok(msg) => format!("init pipe: expected Created, got {msg:?}"),
            };
            eprintln!("carte: {why}");
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
    let err = wait_and_exec(args, ready);
    // The caller of `create` has returned by now; stderr is all that is
    // left, unless this is `run`, which waits for the exec and says why.
    if !run_reports(args) {
        eprintln!("carte: {err}");
    }
    // SAFETY: as above.
    unsafe { libc::_exit(127) }
}

fn setup(args: &InitArgs, chan: &Channel, join: Option<SelfJoin>) -> Result<Ready, String> {
    let spec = args.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let process = spec.process().as_ref().expect("validated");
    let plan = Plan::from_spec(linux);
    let s = |e: &dyn std::fmt::Display| e.to_string();

    // First, on v1: into the cgroup (see intermediate::enter_namespaces),
    // then the cgroup namespace, whose root is the cgroup we are in.
    if let Some(join) = join {
        join.join()?;
    }
    let cgroup_ns = namespaces::clone_flag(LinuxNamespaceType::Cgroup);
    namespaces::create(plan.create & cgroup_ns).map_err(|e| s(&e))?;

    nix::unistd::setsid().map_err(|e| format!("setsid: {}", sys::errno(e)))?;
    // Devices and mountpoints get exactly the modes asked for.
    nix::sys::stat::umask(Mode::empty());
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oomScoreAdj {adj}: {}", crate::sys::reason(&e)))?;
    }
    // From here on init holds host fds (its /proc above all): a process
    // `exec`'d into the created container must not reach them through
    // /proc/1/fd (CVE-2016-9962). Undone by the kernel at execve. Not
    // earlier: in a user namespace the writes to /proc/self above need it.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let host_proc = rootfs::open_host_proc().map_err(|e| s(&e))?;
    let own_mount_ns = plan.has(LinuxNamespaceType::Mount);
    let ctx = RootfsContext {
        rootfs: args.rootfs,
        own_mount_ns,
        in_userns: plan.has(LinuxNamespaceType::User) || args.in_userns,
        cgroup_ns: plan.has(LinuxNamespaceType::Cgroup),
        // Empty without a cgroup of its own (rootless): the container is
        // in the caller's, and a cgroup mount without a namespace shows
        // the roots.
        cgroup_path: args.cgroup_path,
        mount_label: crate::lsm::mount_label(linux.mount_label().as_deref()),
        idmapped: args.idmapped,
    };
    rootfs::prepare(spec, &ctx).map_err(|e| s(&e))?;

    // A config without hooks needs neither the parent's turn nor the state.
    let state_json = if hooks::any(spec.hooks().as_ref()) {
        chan.send(&Message::CreateRuntimeHooks).map_err(|e| s(&e))?;
        match chan.recv().map_err(|e| s(&e))? {
            Message::HooksDone(state) => state,
            other => return Err(format!("init pipe: expected HooksDone, got {other:?}")),
        }
    } else {
        String::new()
    };
    if let Some(list) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        // In the rootfs, as runc runs them (before pivot_root: its path
        // from the runtime's mount namespace).
        nix::unistd::chdir(args.rootfs)
            .map_err(|e| format!("chdir to {}: {}", args.rootfs.display(), sys::errno(e)))?;
        hooks::run("createContainer", list, &state_json).map_err(|e| s(&e))?;
    }

    rootfs::enter(args.rootfs, args.no_pivot, own_mount_ns).map_err(|e| s(&e))?;
    attrs::create_cwd(process.cwd())?;
    if let Some(socket) = args.console_socket {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let slave = tty::setup_console(socket.as_fd(), size).map_err(|e| s(&e))?;
        rootfs::bind_console(slave.as_fd()).map_err(|e| s(&e))?;
    }
    rootfs::finalize(spec, host_proc.as_fd()).map_err(|e| s(&e))?;
    if !args.no_new_keyring {
        failpoint!("init.keyring");
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
    let hand_off = |fd| chan.hand_off_listener(fd);
    let seccomp = args.seccomp.map(|filter| attrs::Seccomp {
        filter,
        hand_off: &hand_off,
    });
    let container = super::sched::Container {
        personality: linux.personality().as_ref(),
        memory_policy: linux.memory_policy().as_ref(),
    };
    super::sched::apply(process, container)?;
    let program = attrs::prepare(
        process,
        plan.has(LinuxNamespaceType::User) || args.in_userns,
        seccomp.as_ref(),
        host_proc.as_fd(),
        args.preserve_fds,
    )?;
    Ok(Ready {
        host_proc,
        program,
        state_json,
    })
}

fn wait_and_exec(args: &InitArgs, ready: Ready) -> String {
    let opened;
    let fifo = match args.release {
        Release::Fifo(fifo) => match open_fifo(fifo, &ready) {
            Ok(fd) => {
                opened = fd;
                opened.as_fd()
            }
            Err(e) => return e,
        },
        Release::Pipe(pipe) => pipe.as_fd(),
    };
    // SAFETY: writes one byte from a static buffer.
    if unsafe { libc::write(fifo.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
        let err = std::io::Error::last_os_error();
        // EPIPE: `start` opened the fifo, then was killed before it read.
        // It asked for the start all the same.
        if err.raw_os_error() != Some(libc::EPIPE) {
            return format!("write exec fifo: {}", sys::reason(&err));
        }
    }
    if let Some(list) = args
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        // The same `created` state as prestart's: start is what let init
        // get here, and the user's program has not run yet.
        let state = &ready.state_json;
        if let Err(e) = hooks::run("startContainer", list, state) {
            return report(fifo, e.to_string());
        }
    }
    let via = args.trampoline.map(|trampoline| attrs::Via {
        trampoline,
        report: fifo.as_raw_fd(),
        mode: if run_reports(args) {
            Report::Text
        } else {
            Report::TextAndStderr
        },
    });
    report(
        fifo,
        attrs::exec(&ready.program, args.preserve_fds, via.as_ref()),
    )
}

/// `run`, which started the container itself, prints why init could not
/// exec, where it waits for the exec at all (see start_waits_for_exec).
fn run_reports(args: &InitArgs) -> bool {
    matches!(args.release, Release::Pipe(_))
        && hooks::start_waits_for_exec(args.spec.hooks().as_ref())
}

/// Blocks until `start` opens the fifo for reading. Reopened through the
/// host's /proc, which the container may not even have mounted.
fn open_fifo(fifo: &OwnedFd, ready: &Ready) -> Result<OwnedFd, String> {
    let fifo_path = CString::new(format!("self/fd/{}", fifo.as_raw_fd())).expect("no NUL");
    // SAFETY: host_proc is a valid dirfd and fifo_path NUL-terminated.
    let fd = unsafe {
        libc::openat(
            ready.host_proc.as_raw_fd(),
            fifo_path.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!("open exec fifo: {}", sys::last_error()));
    }
    // SAFETY: openat just returned this fd. It stays open, close-on-exec,
    // until execve: `start` waits for the hang-up to know the process runs.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// After the release byte, anything init writes on the fifo is why it
/// could not exec: `start` waits for it when the config has startContainer
/// or poststart hooks, and fails with it.
fn report(fifo: BorrowedFd, err: String) -> String {
    // SAFETY: ignoring SIGPIPE only turns a missing reader into EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: writes from a buffer we own; the result does not matter.
    let _ = unsafe { libc::write(fifo.as_raw_fd(), err.as_ptr().cast(), err.len()) };
    err
}
