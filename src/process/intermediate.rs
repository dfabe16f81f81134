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
    cgroup: SelfJoin,
    parent: nix::unistd::Pid,
) -> ! {
    let mut keep = vec![0, 1, 2, chan.as_raw_fd(), args.release.raw_fd()];
    keep.extend(cgroup.raw_fds());
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
    if let Err(msg) = enter_namespaces(args, chan, cgroup) {
        let _ = chan.send(&Message::Error(msg));
        // SAFETY: _exit ends the child without touching the parent's state.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: still single-threaded; the child never returns (init::run ends in exec or _exit).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => init::run(args, chan),
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

/// Enters the namespaces while the parent applies the cgroup's limits (and,
/// on v2, moves us into it: that migration waits for an RCU grace period,
/// milliseconds to overlap). Only the cgroup namespace waits for Start, as
/// its root is the cgroup we are in when it is made.
fn enter_namespaces(args: &InitArgs, chan: &Channel, cgroup: SelfJoin) -> Result<(), String> {
    // The caller's blocked signals must not reach the container.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let linux = args.spec.linux().as_ref().expect("validated");
    let plan = Plan::from_spec(linux);
    let mut started = false;
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
        expect_after_start(chan, &Message::MapsDone, &mut started)?;
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
    // On v1 the process moves itself into the cgroup (see `SelfJoin`) once
    // its namespaces exist: what the kernel allocated for them is charged
    // where the runtime runs, as with a runtime that clones them; init and
    // everything it does is the container's.
    cgroup.join()?;
    if !started {
        chan.expect(&Message::Start)?;
    }
    namespaces::create(plan.create & cgroup_ns).map_err(|e| e.to_string())
}

/// Waits for `want`; the parent's Start may come first, and is noted.
fn expect_after_start(chan: &Channel, want: &Message, started: &mut bool) -> Result<(), String> {
    loop {
        match chan.recv() {
            Ok(Message::Start) if !*started => *started = true,
            Ok(ref got) if got == want => return Ok(()),
            Ok(Message::Error(text)) => return Err(text),
            Ok(other) => return Err(format!("init pipe: expected {want:?}, got {other:?}")),
            Err(e) => return Err(e.to_string()),
        }
    }
}
