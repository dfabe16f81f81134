//! Terminals: the console-socket protocol (the pty master goes to the
//! caller over SCM_RIGHTS) and, for `run` without a console socket, a pty
//! that carte bridges to its own stdio.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("console: {what}: {}", crate::sys::reason(.source))]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn err(what: &'static str) -> impl FnOnce(nix::Error) -> TtyError {
    move |e| TtyError::Io {
        what,
        source: e.into(),
    }
}

/// In init (after pivot_root) and in an exec'd process: opens a pty in the
/// container's devpts, sends the master to the console socket and makes
/// the slave the controlling terminal and stdio. The slave comes from the
/// master itself (TIOCGPTPEER), never from a /dev/pts/N path a container
/// process could have swapped for a symlink (CVE-2025-52565). Returns the
/// slave (close-on-exec), for init to bind onto /dev/console.
pub fn setup_console(socket: BorrowedFd, size: Option<(u16, u16)>) -> Result<OwnedFd, TtyError> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(err("open /dev/ptmx"))?;
    grantpt(&master).map_err(err("grantpt"))?;
    unlockpt(&master).map_err(err("unlockpt"))?;
    // SAFETY: TIOCGPTPEER on a pty master fd takes open flags and returns a
    // new fd for its slave, which we own from here.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(TtyError::Io {
            what: "open pty slave (TIOCGPTPEER)",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: the kernel just returned this fd to us.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some((rows, cols)) = size {
        set_size(slave.as_raw_fd(), rows, cols);
    }
    send_fd(socket, master.as_raw_fd()).map_err(|source| TtyError::Io {
        what: "send pty master",
        source,
    })?;
    drop(master);
    for target in 0..3 {
        // SAFETY: dup2 on valid fds; stdio slots are ours to replace in init.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(TtyError::Io {
                what: "dup2 pty slave",
                source: io::Error::last_os_error(),
            });
        }
    }
    // SAFETY: TIOCSCTTY on a tty fd, in a process that is a session leader.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(TtyError::Io {
            what: "set controlling terminal",
            source: io::Error::last_os_error(),
        });
    }
    Ok(slave)
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

pub fn get_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes into a winsize we own.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some((ws.ws_row, ws.ws_col))
}

pub fn send_fd(socket: BorrowedFd, fd: RawFd) -> io::Result<()> {
    // runc sends the pty's name as the payload; callers ignore it but expect bytes.
    send_fd_with(socket, b"/dev/ptmx", fd)
}

/// Sends `payload` with `fd` attached as SCM_RIGHTS (the console socket,
/// the init pipe, the seccomp agent).
pub fn send_fd_with(socket: BorrowedFd, payload: &[u8], fd: RawFd) -> io::Result<()> {
    send_fds_with(socket, payload, &[fd])
}

/// Sends `payload` with `fds` attached (SCM_RIGHTS), in one message.
pub fn send_fds_with(socket: BorrowedFd, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let iov = [IoSlice::new(payload)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn recv_fd(socket: BorrowedFd) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    recv_with_fd(socket, &mut buf)?.1.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "no file descriptor in console message",
        )
    })
}

/// Receives one message into `buf` and the fd sent with it, if any
/// (close-on-exec). Returns the payload's length.
pub fn recv_with_fd(socket: BorrowedFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let (n, fds) = recv_with_fds(socket, buf)?;
    Ok((n, fds.into_iter().next()))
}

/// Most fds one message may carry (a v1 host's cgroup hierarchies).
const MAX_FDS: usize = 32;

/// Receives one message into `buf` and the fds sent with it (close-on-exec).
pub fn recv_with_fds(socket: BorrowedFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut owned = Vec::new();
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed these fds for us with SCM_RIGHTS.
            owned.extend(
                fds.into_iter()
                    .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) }),
            );
        }
    }
    Ok((msg.bytes, owned))
}

/// Puts a terminal in raw mode until dropped.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: isatty/tcgetattr/tcsetattr on an fd with termios structs we own.
        unsafe {
            if libc::isatty(fd) != 1 {
                return None;
            }
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved in enter().
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}
