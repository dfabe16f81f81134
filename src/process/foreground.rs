//! `run` in the foreground: carte is the subreaper of its container, waits
//! for init, forwards every catchable signal to it, and, when it made the
//! pty itself, bridges that pty to its own stdio.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::tty;

/// Becomes the reaper of orphans below us, so init (whose parent, the
/// intermediate, exits) comes back to us and can be waited for.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Blocks all signals and returns a signalfd for them; call before start so
/// that none is lost between start and the wait loop.
pub fn catch_signals() -> std::io::Result<SignalFd> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    Ok(SignalFd::with_flags(
        &all,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// The exit code `run` passes on: the status, or 128+n for a signal.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps every exited child; returns init's exit code once it is among them.
fn reap(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(status) if status.pid() == Some(init) => code = exit_code(status).or(code),
            Ok(_) => {}
        }
    }
}

/// Gives the process the size of carte's own terminal from the start: its
/// pty is made at that size, before the process can ask (the wait loop
/// only follows later changes).
pub fn take_terminal_size(process: &mut oci_spec::runtime::Process) {
    if let Some((rows, cols)) = tty::get_size(0) {
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(u64::from(rows))
            .width(u64::from(cols))
            .build()
            .expect("both fields set");
        process.set_console_size(Some(size));
    }
}

/// Waits for init to exit, forwarding signals and copying pty data.
pub fn wait(init_pid: i32, sigfd: SignalFd, pty: Option<OwnedFd>) -> i32 {
    let init = Pid::from_raw(init_pid);
    let _raw = pty.as_ref().and_then(|_| tty::RawMode::enter(0));
    if let (Some(master), Some((rows, cols))) = (&pty, tty::get_size(0)) {
        tty::set_size(master.as_raw_fd(), rows, cols);
    }
    let mut stdin_open = pty.is_some();
    let mut master_open = pty.is_some();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(code) = reap(init) {
            if let Some(master) = &pty {
                drain(master.as_raw_fd(), &mut buf);
            }
            return code;
        }
        let mut fds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if stdin_open {
            fds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let master_fd = pty.as_ref().map(|m| m.as_raw_fd()).unwrap_or(-1);
        if master_open {
            fds.push(libc::pollfd {
                fd: master_fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for pfd in &fds {
            if pfd.revents == 0 {
                continue;
            }
            if pfd.fd == sigfd.as_raw_fd() {
                while let Ok(Some(info)) = sigfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    if sig == libc::SIGCHLD {
                        continue;
                    }
                    if sig == libc::SIGWINCH && master_open {
                        if let Some((rows, cols)) = tty::get_size(0) {
                            tty::set_size(master_fd, rows, cols);
                        }
                        continue;
                    }
                    if let Ok(s) = Signal::try_from(sig) {
                        let _ = nix::sys::signal::kill(init, s);
                    } else {
                        // SAFETY: kill(2) with plain integers (real-time signals).
                        unsafe { libc::kill(init_pid, sig) };
                    }
                }
            } else if pfd.fd == 0 {
                if !copy(0, master_fd, &mut buf) {
                    stdin_open = false;
                }
            } else if pfd.fd == master_fd && !copy(master_fd, 1, &mut buf) {
                master_open = false;
            }
        }
    }
}

/// Copies one read's worth; false on EOF or error.
fn copy(from: i32, to: i32, buf: &mut [u8]) -> bool {
    // SAFETY: reads into and writes from a buffer we own, within its length.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut done = 0;
    while done < n as usize {
        // SAFETY: as above.
        let w = unsafe { libc::write(to, buf[done..].as_ptr().cast(), n as usize - done) };
        if w <= 0 {
            return false;
        }
        done += w as usize;
    }
    true
}

/// Copies what the container wrote to the pty before it exited.
fn drain(master: i32, buf: &mut [u8]) {
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(master, libc::F_SETFL, libc::O_NONBLOCK) };
    while copy(master, 1, buf) {}
}
