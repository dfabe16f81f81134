//! The intermediate process: enters the namespaces, then forks init so that
//! init is PID 1 of the new PID namespace (and the first process of a new
//! time namespace), reports init's pid and exits.

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{fork, setresgid, setresuid, ForkResult, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, Message};
use super::{init, InitArgs};
use crate::cgroups::SelfJoin;
use crate::namespaces::{self, Plan};
use crate::sys;
use std::os::fd::AsRawFd;

pub(super) fn run(
    args: &InitArgs,
    chan: &Channel,
    parent: nix::unistd::Pid,
    affinity: Option<libc::cpu_set_t>,
) -> ! {
    let mut keep = vec![0, 1, 2, chan.as_raw_fd(), args.release.raw_fd()];
    keep.extend(args.console_socket.map(|fd| fd.as_raw_fd()));
    keep.extend(args.trampoline.map(|t| t.fd().as_raw_fd()));
    keep.extend(crate::failpoint::hits_fd());
    keep.extend((0..args.preserve_fds as i32).map(|i| 3 + i));
    sys::close_fds_except(&keep);
    // If `carte create` dies, so does the intermediate: nothing is left
    // half-built. (Init's own parent is the intermediate, which exits
    // normally; init notices a dead `create` by the pipe's end of file.)
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // The parent may have died before the prctl: then nobody will signal us.
    if nix::unistd::getppid() != parent {
        // SAFETY: _exit ends the child without touching the parent's state.
        unsafe { libc::_exit(1) }
    }
    let join = match enter_namespaces(args, chan) {
        Ok(join) => join,
        Err(msg) => {
            let _ = chan.send(&Message::Error(msg));
            // SAFETY: _exit ends the child without touching the parent's state.
            unsafe { libc::_exit(1) }
        }
    };
    // The parent moved us to another CPU for the namespaces (see spawn);
    // init and the container get the runtime's own affinity.
    if let Some(mask) = affinity {
        if let Err(e) = sys::set_affinity(0, &mask) {
            let _ = chan.send(&Message::Error(format!(
                "restore the CPU affinity: {}",
                sys::reason(&e)
            )));
            // SAFETY: _exit ends the child without touching the parent's state.
            unsafe { libc::_exit(1) }
        }
    }
    // SAFETY: still single-threaded; the child never returns (init::run ends in exec or _exit).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => init::run(args, chan, join),
        Ok(ForkResult::Parent { child }) => {
            let code = match chan.send(&Message::InitPid(child.as_raw())) {
                Ok(()) => 0,
                Err(e) => {
                    // Init must not go on unknown to the parent.
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = chan.send(&Message::Error(e.to_string()));
                    1
                }
            };
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        Err(e) => {
            let _ = chan.send(&Message::Error(format!("fork init: {}", sys::errno(e))));
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

/// Enters the namespaces (but the cgroup namespace) while the parent makes
/// the cgroup and applies its limits (and, on v2, moves us into it: that
/// migration waits for an RCU grace period, milliseconds to overlap). On
/// v1 returns the cgroup's tasks files, through which init moves itself
/// once forked: what the kernel allocates for the namespaces and for the
/// fork of init is charged where the runtime runs, as for a runtime that
/// clones init; init and everything it does is the container's.
fn enter_namespaces(args: &InitArgs, chan: &Channel) -> Result<Option<SelfJoin>, String> {
    // The caller's blocked signals must not reach the container.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let linux = args.spec.linux().as_ref().expect("validated");
    let plan = Plan::from_spec(linux);
    let mut inbox = Inbox::default();
    let opened = |path| namespaces::open(path).map_err(|e| e.to_string());
    let user = plan.join_user.as_deref().map(opened).transpose()?;
    let others = (plan.join.iter())
        .map(|(kind, path)| Ok((*kind, path, opened(path)?)))
        .collect::<Result<Vec<_>, String>>()?;
    if let (Some(path), Some(file)) = (&plan.join_user, &user) {
        namespaces::join(LinuxNamespaceType::User, path, file).map_err(|e| e.to_string())?;
    } else if plan.new_user {
        namespaces::create(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| e.to_string())?;
        chan.send(&Message::MapsRequest)
            .map_err(|e| e.to_string())?;
        inbox.wait_for(chan, Want::MapsDone)?;
    }
    if plan.has(LinuxNamespaceType::User) {
        // Become root of the new namespace, so init owns what it creates.
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(|e| format!("setresgid 0 in user namespace: {}", sys::errno(e)))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(|e| format!("setresuid 0 in user namespace: {}", sys::errno(e)))?;
    }
    for (kind, path, file) in &others {
        namespaces::join(*kind, path, file).map_err(|e| e.to_string())?;
    }
    let cgroup_ns = namespaces::clone_flag(LinuxNamespaceType::Cgroup);
    namespaces::create(plan.create - cgroup_ns).map_err(|e| e.to_string())?;
    if plan
        .create
        .contains(namespaces::clone_flag(LinuxNamespaceType::Time))
    {
        namespaces::write_time_offsets(linux).map_err(|e| e.to_string())?;
    }
    if args.cgroup_path.is_some() && !crate::cgroups::is_unified() {
        inbox.wait_for(chan, Want::JoinCgroup)?;
    }
    inbox.wait_for(chan, Want::Start)?;
    Ok(inbox.join.take())
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    MapsDone,
    JoinCgroup,
    Start,
}

/// The parent's messages to the intermediate, which may come in any order
/// (it sends the cgroup's files and Start without waiting for MapsRequest).
#[derive(Default)]
struct Inbox {
    maps_done: bool,
    join: Option<SelfJoin>,
    started: bool,
}

impl Inbox {
    fn has(&self, want: Want) -> bool {
        match want {
            Want::MapsDone => self.maps_done,
            Want::JoinCgroup => self.join.is_some(),
            Want::Start => self.started,
        }
    }

    fn wait_for(&mut self, chan: &Channel, want: Want) -> Result<(), String> {
        while !self.has(want) {
            match chan.recv_with_fds() {
                Ok((Message::MapsDone, _)) if !self.maps_done => self.maps_done = true,
                Ok((Message::Start, _)) if !self.started => self.started = true,
                Ok((Message::JoinCgroup(paths), fds)) if self.join.is_none() => {
                    if paths.len() != fds.len() {
                        return Err(format!(
                            "init pipe: {} cgroup paths with {} files",
                            paths.len(),
                            fds.len()
                        ));
                    }
                    self.join = Some(SelfJoin::from_parts(paths, fds));
                }
                Ok((Message::Error(text), _)) => return Err(text),
                Ok((other, _)) => return Err(format!("init pipe: unexpected {other:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}
