//! The fork chain: parent -> intermediate -> init.
//!
//! The parent (this `carte create`) forks the intermediate, puts it in the
//! cgroup and answers its requests over the init pipe: uid/gid maps, the
//! prestart/createRuntime hooks. The intermediate enters the namespaces and
//! forks init, which becomes PID 1 of a new PID namespace, sets up the
//! rootfs and the process, says Ready and waits on exec.fifo.
//!
//! carte is single-threaded when it forks, so the children may allocate;
//! they never return into the parent's code: each ends in exec or _exit.

mod attrs;
pub mod channel;
pub mod exec;
pub mod foreground;
mod init;
mod intermediate;
pub mod sched;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag};
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Spec;

use crate::cgroups::Manager;
use channel::{Channel, ChannelError, Message};

/// The setrlimit resource of an rlimit type (rootless checks them up front).
pub(crate) fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> libc::__rlimit_resource_t {
    attrs::rlimit_resource(t)
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
    #[error("fork: {}", crate::sys::reason(&std::io::Error::from(*.0)))]
    Fork(nix::Error),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    /// The cause reported by a child stage, as it should reach the user.
    #[error("{0}")]
    Child(String),
}

/// Everything the children need, shared with them by fork.
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    /// How init learns it may exec the user's process.
    pub release: Release<'a>,
    pub console_socket: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The container's cgroup; empty for one without (driver "none").
    pub cgroup_path: &'a str,
    /// Who writes the maps of a new user namespace (rootless.rs).
    pub id_maps: &'a crate::rootless::IdMaps,
    /// carte itself runs in a user namespace (rootless podman's): init
    /// cannot mknod even without one of the container's own.
    pub in_userns: bool,
    /// The compiled linux.seccomp, installed by init.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// Execs the user's process, when that is the CVE-2019-5736 defence.
    pub trampoline: Option<&'a crate::cloned_binary::Trampoline>,
    /// The idmapped mounts, detached, that init attaches.
    pub idmapped: &'a [crate::rootfs::idmap::Idmapped],
}

/// What init waits on after Created, and where it reports after that.
#[derive(Clone, Copy)]
pub enum Release<'a> {
    /// exec.fifo opened O_PATH: init reopens it for writing, which blocks
    /// until `start` opens it for reading.
    Fifo(&'a OwnedFd),
    /// The write end of a pipe whose reader is this `run`, which starts the
    /// container at once: init goes on as soon as it is Created.
    Pipe(&'a OwnedFd),
}

impl Release<'_> {
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Release::Fifo(fd) | Release::Pipe(fd) => fd.as_raw_fd(),
        }
    }
}

/// The parent's side of a seccomp listener hand-off: given the process's
/// pid and the listener, passes it to the agent.
pub type OnListener<'a> = dyn FnMut(i32, OwnedFd) -> Result<(), String> + 'a;

/// Where `spawn` lets its caller do its own work while the children do
/// theirs (on the other core).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The intermediate is forked; the cgroup is not made yet.
    Forked,
    /// The intermediate has Start; init sets itself up.
    Started,
    /// Init exists, with this pid, and sets itself up.
    InitForked(i32),
}

/// A Ready init that still depends on this `create`: it exits when the
/// pipe closes, unless `created` was sent first.
pub struct Spawned {
    pub pid: i32,
    chan: Channel,
}

impl Spawned {
    /// Tells init the container is recorded (state.json is written): from
    /// now on it outlives this process and waits for `start`.
    pub fn created(self) -> Result<(), ProcessError> {
        self.chan.send(&Message::Created).map_err(|e| match e {
            ChannelError::Closed => {
                ProcessError::Child("container init exited right after it was ready".into())
            }
            e => e.into(),
        })
    }
}

/// Starts the container's init and returns it once it is Ready.
/// `create_runtime_hooks(init_pid)` runs the prestart and createRuntime hooks
/// and returns the state JSON that init hands to the container's own hooks;
/// `on_listener` passes a seccomp notify listener to the agent;
/// `meanwhile` is the caller's own work, done while the children set up
/// (see Stage).
pub fn spawn(
    args: &InitArgs,
    cgroup: &mut dyn Manager,
    create_runtime_hooks: &mut dyn FnMut(i32) -> Result<String, String>,
    on_listener: &mut OnListener,
    meanwhile: &mut dyn FnMut(Stage) -> Result<(), String>,
) -> Result<Spawned, ProcessError> {
    let (parent_end, child_end) = channel::pair()?;
    let parent_pid = nix::unistd::getpid();
    // The intermediate makes its namespaces while this process makes the
    // cgroup. A new child starts on its parent's CPU: where the parent goes
    // on first, the child would wait there for it to block; where the child
    // runs first (the parent has used up its slice), the parent would wait
    // for most of the child's unshare. So both move it to another CPU, the
    // child as its first step, the parent as soon as fork returns; it
    // resets its affinity to every CPU before it forks init.
    let spread = crate::sys::other_cpu();
    let to_other_cpu = |pid: i32| {
        if let Some((_, cpu)) = spread {
            // Only a hint: where it fails, both share a CPU.
            let _ = crate::sys::set_affinity(pid, &crate::sys::only_cpu(cpu));
        }
    };
    crate::logging::debug("forking the intermediate process");
    // SAFETY: carte is single-threaded here, so the child may run any code;
    // it never returns from this call (intermediate::run ends in _exit).
    match unsafe { fork() }.map_err(ProcessError::Fork)? {
        ForkResult::Child => {
            to_other_cpu(0);
            drop(parent_end);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                intermediate::run(args, &child_end, parent_pid)
            }));
            if result.is_err() {
                let _ = child_end.send(&Message::Error("intermediate process panicked".into()));
            }
            // SAFETY: _exit never returns and skips the parent's atexit work.
            unsafe { libc::_exit(1) }
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            to_other_cpu(child.as_raw());
            let mut init_pid = None;
            // The cgroup is made while the intermediate makes its
            // namespaces (two cores: both at once). On v1 the intermediate
            // moves itself, through the tasks files sent to it; on v2 (no
            // such files) it is moved from here.
            let joined = (|| -> Result<(), ProcessError> {
                meanwhile(Stage::Forked).map_err(ProcessError::Child)?;
                failpoint!("cgroup.join");
                let self_join = cgroup.apply(child.as_raw())?;
                // On v1 the intermediate waits for them: none when there
                // is no cgroup to join (the "none" driver).
                if !crate::cgroups::is_unified() {
                    use std::os::fd::AsRawFd;
                    let (paths, files) = self_join.into_parts();
                    let fds: Vec<_> = files.iter().map(|f| f.as_raw_fd()).collect();
                    let join = Message::JoinCgroup(paths);
                    match fds.is_empty() {
                        true => send(&parent_end, &join)?,
                        false => send_with_fds(&parent_end, &join, &fds)?,
                    }
                }
                Ok(())
            })();
            let result = joined.and_then(|()| {
                if let Err(e) = start_intermediate(args, cgroup, &parent_end) {
                    return Err(intermediate_cause(&parent_end, child).unwrap_or(e));
                }
                // The children work on their own for a while now.
                meanwhile(Stage::Started).map_err(ProcessError::Child)?;
                drive(
                    args,
                    &parent_end,
                    child,
                    &mut init_pid,
                    create_runtime_hooks,
                    on_listener,
                    meanwhile,
                )
            });
            if result.is_err() {
                if let Some(pid) = init_pid {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = kill(child, Signal::SIGKILL);
            }
            let _ = waitpid(child, None);
            result.map(|pid| Spawned {
                pid,
                chan: parent_end,
            })
        }
    }
}

/// Init runs as soon as the intermediate forks it, so its first message can
/// overtake the intermediate's InitPid on the shared pipe (seen about once
/// in 300 creates on a busy machine). The intermediate exits right after
/// that send: wait for the exit (leaving the zombie for the caller to reap)
/// and the pid, or its Error, is queued in the pipe.
fn late_init_pid(chan: &Channel, intermediate: Pid) -> Result<i32, ProcessError> {
    while let Err(nix::errno::Errno::EINTR) = waitid(
        Id::Pid(intermediate),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
    ) {}
    match chan.pending() {
        Some(Message::InitPid(pid)) => Ok(pid),
        Some(Message::Error(text)) => Err(ProcessError::Child(text)),
        _ => Err(ProcessError::Child(
            "the intermediate process exited without sending init's pid".into(),
        )),
    }
}

fn drive(
    args: &InitArgs,
    chan: &Channel,
    intermediate: Pid,
    init_pid: &mut Option<i32>,
    create_runtime_hooks: &mut dyn FnMut(i32) -> Result<String, String>,
    on_listener: &mut OnListener,
    meanwhile: &mut dyn FnMut(Stage) -> Result<(), String>,
) -> Result<i32, ProcessError> {
    let linux = args.spec.linux().as_ref().expect("validated");
    loop {
        wait_unless_frozen(chan, args.cgroup_path)?;
        let (msg, fd) = match chan.recv_with_fd() {
            Ok((msg, fd)) => (Ok(msg), fd),
            Err(e) => (Err(e), None),
        };
        let from_init = matches!(
            msg,
            Ok(Message::SeccompFd | Message::CreateRuntimeHooks | Message::Ready)
        );
        if from_init && init_pid.is_none() {
            let pid = late_init_pid(chan, intermediate)?;
            *init_pid = Some(pid);
            meanwhile(Stage::InitForked(pid)).map_err(ProcessError::Child)?;
        }
        match msg {
            Ok(Message::SeccompFd) => {
                let pid = init_pid.ok_or_else(|| {
                    ProcessError::Child("init sent its listener before its pid was known".into())
                })?;
                let fd = fd.ok_or_else(|| {
                    ProcessError::Child("init pipe: seccomp listener message without an fd".into())
                })?;
                on_listener(pid, fd).map_err(ProcessError::Child)?;
                send(chan, &Message::SeccompDone)?;
            }
            Ok(Message::MapsRequest) => {
                crate::namespaces::write_id_maps(intermediate.as_raw(), linux, args.id_maps)?;
                send(chan, &Message::MapsDone)?;
            }
            Ok(Message::InitPid(pid)) => {
                *init_pid = Some(pid);
                meanwhile(Stage::InitForked(pid)).map_err(ProcessError::Child)?;
            }
            Ok(Message::CreateRuntimeHooks) => {
                let pid = init_pid.ok_or_else(|| {
                    ProcessError::Child("init asked for hooks before its pid was known".into())
                })?;
                let state = create_runtime_hooks(pid).map_err(ProcessError::Child)?;
                send(chan, &Message::HooksDone(state))?;
            }
            Ok(Message::Ready) => {
                return init_pid.ok_or_else(|| {
                    ProcessError::Child("init was ready before its pid was known".into())
                });
            }
            Ok(Message::Error(text)) => return Err(ProcessError::Child(text)),
            Ok(other) => {
                return Err(ProcessError::Child(format!(
                    "init pipe: unexpected {other:?}"
                )))
            }
            Err(ChannelError::Closed) => {
                return Err(ProcessError::Child(
                    "container init exited before it was ready".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until the children have something to say, but not on a process
/// that a frozen cgroup holds (frozen by another hand mid-create, or a
/// parent cgroup frozen): that wait would never end.
fn wait_unless_frozen(chan: &Channel, cgroup_path: &str) -> Result<(), ProcessError> {
    use std::os::fd::AsRawFd;
    loop {
        let mut pfd = libc::pollfd {
            fd: chan.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, 100) } {
            0 => crate::cgroups::refuse_frozen(cgroup_path)?,
            n if n > 0 => return Ok(()),
            _ => {} // EINTR
        }
    }
}

/// Applies the resources and sends Start. The intermediate makes its
/// namespaces meanwhile, so it may already have failed.
fn start_intermediate(
    args: &InitArgs,
    cgroup: &mut dyn Manager,
    chan: &Channel,
) -> Result<(), ProcessError> {
    let linux = args.spec.linux().as_ref().expect("validated");
    failpoint!("cgroup.apply");
    let devices = linux.devices().as_deref().unwrap_or_default();
    let resources = linux.resources().clone().unwrap_or_default();
    cgroup.set(&resources, devices)?;
    chan.send(&Message::Start)?;
    Ok(())
}

/// After a failure before Start arrived: the intermediate's own error, if
/// it sent one. Its failure comes first (its exit is what makes the cgroup
/// join or the Start fail), so it is the cause to report. It is killed
/// first: before Start it is the only holder of the child's end (init does
/// not exist yet), so the reads below end on end of file, never hang.
fn intermediate_cause(chan: &Channel, intermediate: Pid) -> Option<ProcessError> {
    let _ = kill(intermediate, Signal::SIGKILL);
    pending_error(chan)
}

/// The Error message queued on the pipe, read up to end of file. Only for
/// a pipe whose other end is closed everywhere, or it would block.
fn pending_error(chan: &Channel) -> Option<ProcessError> {
    loop {
        match chan.recv() {
            Ok(Message::Error(text)) => return Some(ProcessError::Child(text)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// `send` with fds attached.
fn send_with_fds(
    chan: &Channel,
    msg: &Message,
    fds: &[std::os::fd::RawFd],
) -> Result<(), ProcessError> {
    or_cause(chan, chan.send_with_fds(msg, fds))
}

/// Sends to a child; if it is gone (end of pipe: every holder of its end
/// has closed it, so reading cannot block), reports its error instead.
pub(crate) fn send(chan: &Channel, msg: &Message) -> Result<(), ProcessError> {
    or_cause(chan, chan.send(msg))
}

/// A send's result, with the child's own Error in place of Closed.
fn or_cause(chan: &Channel, sent: Result<(), ChannelError>) -> Result<(), ProcessError> {
    match sent {
        Err(ChannelError::Closed) => {
            Err(pending_error(chan).unwrap_or(ChannelError::Closed.into()))
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::WaitStatus;
    use std::os::fd::AsRawFd;

    /// A stand-in intermediate: after `delay_us`, sends `packet` (if any)
    /// and exits with `code`. Only raw syscalls after fork: the test
    /// harness has threads.
    fn fake_intermediate(chan: &Channel, packet: Option<&[u8]>, delay_us: u32, code: i32) -> Pid {
        // SAFETY: the child makes only async-signal-safe calls and _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => unsafe {
                libc::usleep(delay_us);
                if let Some(p) = packet {
                    libc::send(chan.as_raw_fd(), p.as_ptr().cast(), p.len(), 0);
                }
                libc::_exit(code)
            },
            ForkResult::Parent { child } => child,
        }
    }

    #[test]
    fn init_pid_after_init_spoke_first() {
        let (parent, child) = channel::pair().unwrap();
        let packet = Message::InitPid(4242).encode();
        let pid = fake_intermediate(&child, Some(&packet), 50_000, 0);
        assert_eq!(late_init_pid(&parent, pid).unwrap(), 4242);
        // Left as a zombie for the caller's waitpid.
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
    }

    #[test]
    fn intermediate_died_without_the_pid() {
        let (parent, child) = channel::pair().unwrap();
        let pid = fake_intermediate(&child, None, 0, 1);
        let err = late_init_pid(&parent, pid).unwrap_err().to_string();
        assert!(err.contains("without sending init's pid"), "{err}");
        waitpid(pid, None).unwrap();
    }
}
