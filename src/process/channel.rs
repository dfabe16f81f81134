//! The init pipe: a SOCK_SEQPACKET socketpair between the parent and the
//! intermediate/init processes. Each message is one packet: a tag byte and
//! an optional payload, so no framing can go wrong.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{sendmsg, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// Largest packet: an error text or a state JSON.
const MAX_PACKET: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// parent -> intermediate: you are in the cgroup; go on.
    Start,
    /// intermediate -> parent: the user namespace exists; write its maps.
    MapsRequest,
    /// parent -> intermediate: maps written.
    MapsDone,
    /// intermediate -> parent: init's pid in the parent's pid namespace.
    InitPid(i32),
    /// init -> parent: namespaces are up; run prestart and createRuntime hooks.
    CreateRuntimeHooks,
    /// parent -> init: hooks done; payload is the state JSON for the
    /// container's own hooks.
    HooksDone(String),
    /// init -> parent: everything is set up; init now waits on exec.fifo.
    Ready,
    /// init or an exec'd process -> parent: the seccomp notify listener
    /// comes with this message (SCM_RIGHTS), for the agent.
    SeccompFd,
    /// parent -> child: the agent has the listener; go on.
    SeccompDone,
    /// any child -> parent: a stage failed; the text is the cause.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("init pipe: {}", crate::sys::reason(.0))]
    Io(#[from] io::Error),
    #[error("init pipe: the other end closed")]
    Closed,
    #[error("init pipe: bad message: {0}")]
    Bad(String),
}

impl Message {
    fn tag(&self) -> u8 {
        match self {
            Message::Start => b'S',
            Message::MapsRequest => b'M',
            Message::MapsDone => b'm',
            Message::InitPid(_) => b'P',
            Message::CreateRuntimeHooks => b'H',
            Message::HooksDone(_) => b'h',
            Message::Ready => b'R',
            Message::SeccompFd => b'F',
            Message::SeccompDone => b'f',
            Message::Error(_) => b'E',
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag()];
        match self {
            Message::InitPid(pid) => out.extend_from_slice(&pid.to_le_bytes()),
            Message::HooksDone(text) | Message::Error(text) => {
                // Cut on a char boundary so the text still decodes as written.
                let mut end = text.len().min(MAX_PACKET - 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&text.as_bytes()[..end]);
            }
            _ => {}
        }
        out
    }

    pub fn decode(packet: &[u8]) -> Result<Message, ChannelError> {
        let (&tag, payload) = packet
            .split_first()
            .ok_or_else(|| ChannelError::Bad("empty packet".into()))?;
        let text = || String::from_utf8_lossy(payload).into_owned();
        let bare = |m: Message| {
            if payload.is_empty() {
                Ok(m)
            } else {
                Err(ChannelError::Bad(format!(
                    "unexpected payload on {:?}",
                    tag as char
                )))
            }
        };
        match tag {
            b'S' => bare(Message::Start),
            b'M' => bare(Message::MapsRequest),
            b'm' => bare(Message::MapsDone),
            b'H' => bare(Message::CreateRuntimeHooks),
            b'R' => bare(Message::Ready),
            b'F' => bare(Message::SeccompFd),
            b'f' => bare(Message::SeccompDone),
            b'P' => {
                let bytes: [u8; 4] = payload
                    .try_into()
                    .map_err(|_| ChannelError::Bad("pid payload".into()))?;
                match i32::from_le_bytes(bytes) {
                    pid if pid > 0 => Ok(Message::InitPid(pid)),
                    pid => Err(ChannelError::Bad(format!("pid {pid}"))),
                }
            }
            b'h' => Ok(Message::HooksDone(text())),
            b'E' => Ok(Message::Error(text())),
            other => Err(ChannelError::Bad(format!("unknown tag {other:#x}"))),
        }
    }
}

/// One end of the init pipe.
pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ChannelError::Io(e.into()))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl std::os::fd::AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        let bytes = msg.encode();
        let iov = [IoSlice::new(&bytes)];
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EPIPE) => return Err(ChannelError::Closed),
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        }
    }

    pub fn recv(&self) -> Result<Message, ChannelError> {
        self.recv_with_fd().map(|(msg, _)| msg)
    }

    /// Receives a message and the fd that came with it, if any.
    pub fn recv_with_fd(&self) -> Result<(Message, Option<OwnedFd>), ChannelError> {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            match crate::tty::recv_with_fd(self.fd.as_fd(), &mut buf) {
                Ok((0, _)) => return Err(ChannelError::Closed),
                Ok((n, fd)) => return Ok((Message::decode(&buf[..n])?, fd)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ChannelError::Io(e)),
            }
        }
    }

    /// Sends `msg` with `fd` attached.
    pub fn send_with_fd(&self, msg: &Message, fd: BorrowedFd) -> Result<(), ChannelError> {
        crate::tty::send_fd_with(self.fd.as_fd(), &msg.encode(), fd.as_raw_fd()).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPIPE) {
                ChannelError::Closed
            } else {
                ChannelError::Io(e)
            }
        })
    }

    /// In the child: gives the seccomp listener to the parent and waits
    /// until the agent has it.
    pub fn hand_off_listener(&self, fd: OwnedFd) -> Result<(), String> {
        self.send_with_fd(&Message::SeccompFd, fd.as_fd())
            .map_err(|e| e.to_string())?;
        drop(fd);
        self.expect(&Message::SeccompDone)
    }

    /// Waits for exactly `want`; an Error message becomes Err with its text.
    pub fn expect(&self, want: &Message) -> Result<(), String> {
        match self.recv() {
            Ok(ref got) if got == want => Ok(()),
            Ok(Message::Error(text)) => Err(text),
            Ok(other) => Err(format!("init pipe: expected {want:?}, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for m in [
            Message::Start,
            Message::MapsRequest,
            Message::MapsDone,
            Message::InitPid(4242),
            Message::CreateRuntimeHooks,
            Message::HooksDone("{\"id\":\"x\"}".into()),
            Message::Ready,
            Message::SeccompFd,
            Message::SeccompDone,
            Message::Error("exec \"/bin/nosuch\": no such file or directory".into()),
        ] {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(Message::decode(b"").is_err());
        assert!(Message::decode(b"Z").is_err());
        assert!(Message::decode(b"P\x01").is_err());
        assert!(Message::decode(b"P\0\0\0\0").is_err());
        assert!(Message::decode(b"Sx").is_err());
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let text = format!("x{}", "é".repeat(MAX_PACKET));
        let packet = Message::Error(text.clone()).encode();
        assert!(packet.len() <= MAX_PACKET);
        let Message::Error(got) = Message::decode(&packet).unwrap() else {
            panic!("not an error message");
        };
        assert!(text.starts_with(&got) && !got.contains('\u{fffd}'));
    }

    #[test]
    fn over_a_real_socketpair() {
        let (a, b) = pair().unwrap();
        a.send(&Message::InitPid(7)).unwrap();
        assert_eq!(b.recv().unwrap(), Message::InitPid(7));
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn carries_an_fd() {
        let (a, b) = pair().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_with_fd(&Message::SeccompFd, file.as_fd()).unwrap();
        let (msg, fd) = b.recv_with_fd().unwrap();
        assert_eq!(msg, Message::SeccompFd);
        assert!(fd.is_some());
        a.send(&Message::SeccompDone).unwrap();
        let (msg, fd) = b.recv_with_fd().unwrap();
        assert_eq!(msg, Message::SeccompDone);
        assert!(fd.is_none());
    }
}
