//! The init pipe: a SOCK_SEQPACKET socketpair between the parent and the
//! intermediate/init processes. Each message is one packet: a tag byte and
//! an optional payload, so no framing can go wrong.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{sendmsg, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// Largest packet; a longer message is cut into CONTINUED pieces.
const MAX_PACKET: usize = 64 * 1024;

/// The tag of a piece of a message longer than a packet.
const CONTINUED: u8 = b'+';

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// parent -> intermediate: you are in the cgroup; go on.
    Start,
    /// parent -> intermediate, on v1: the cgroup exists; its `tasks`
    /// files (these paths) come with this message, opened, for the
    /// intermediate to move itself (see cgroups::SelfJoin).
    JoinCgroup(Vec<String>),
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
    /// init -> parent: everything is set up; init waits for Created.
    Ready,
    /// parent -> init: state.json is written, the container exists; init
    /// may outlive the parent now and waits on exec.fifo. Until then, end
    /// of file on the pipe (a killed `create`) makes init exit.
    Created,
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
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
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
            Message::JoinCgroup(_) => b'J',
            Message::MapsRequest => b'M',
            Message::MapsDone => b'm',
            Message::InitPid(_) => b'P',
            Message::CreateRuntimeHooks => b'H',
            Message::HooksDone(_) => b'h',
            Message::Ready => b'R',
            Message::Created => b'C',
            Message::SeccompFd => b'F',
            Message::SeccompDone => b'f',
            Message::Error(_) => b'E',
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag()];
        match self {
            Message::InitPid(pid) => out.extend_from_slice(&pid.to_le_bytes()),
            Message::JoinCgroup(paths) => out.extend_from_slice(paths.join("\n").as_bytes()),
            Message::HooksDone(text) | Message::Error(text) => {
                out.extend_from_slice(text.as_bytes())
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
            // No paths at all: a container without a cgroup.
            b'J' => Ok(Message::JoinCgroup(
                (text().split('\n'))
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            b'M' => bare(Message::MapsRequest),
            b'm' => bare(Message::MapsDone),
            b'H' => bare(Message::CreateRuntimeHooks),
            b'R' => bare(Message::Ready),
            b'C' => bare(Message::Created),
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
    /// Sends `msg`; a payload longer than a packet (the state JSON with
    /// large annotations) goes first in CONTINUED pieces.
    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        match msg {
            Message::Start => failpoint!("pipe.send.start"),
            // Sent with its fds (send_with_fds), never through here.
            Message::JoinCgroup(_) => {}
            Message::MapsRequest => failpoint!("pipe.send.maps_request"),
            Message::MapsDone => failpoint!("pipe.send.maps_done"),
            Message::InitPid(_) => failpoint!("pipe.send.init_pid"),
            Message::CreateRuntimeHooks => failpoint!("pipe.send.create_runtime_hooks"),
            Message::HooksDone(_) => failpoint!("pipe.send.hooks_done"),
            Message::Ready => failpoint!("pipe.send.ready"),
            Message::Created => failpoint!("pipe.send.created"),
            // The seccomp hand-off needs an agent; Error is how failures travel.
            Message::SeccompFd | Message::SeccompDone | Message::Error(_) => {}
        }
        let bytes = msg.encode();
        let (tag, mut payload) = (bytes[0], &bytes[1..]);
        while payload.len() >= MAX_PACKET {
            let (piece, rest) = payload.split_at(MAX_PACKET - 1);
            let mut packet = vec![CONTINUED];
            packet.extend_from_slice(piece);
            self.send_packet(&packet)?;
            payload = rest;
        }
        let mut packet = vec![tag];
        packet.extend_from_slice(payload);
        self.send_packet(&packet)
    }

    fn send_packet(&self, bytes: &[u8]) -> Result<(), ChannelError> {
        let iov = [IoSlice::new(bytes)];
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                // ECONNRESET: the other end closed with our last message unread.
                Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => {
                    return Err(ChannelError::Closed)
                }
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        }
    }

    pub fn recv(&self) -> Result<Message, ChannelError> {
        self.recv_with_fd().map(|(msg, _)| msg)
    }

    /// Receives a message and the fd that came with it, if any.
    pub fn recv_with_fd(&self) -> Result<(Message, Option<OwnedFd>), ChannelError> {
        self.recv_with_fds()
            .map(|(msg, fds)| (msg, fds.into_iter().next()))
    }

    /// Receives a message and the fds that came with it.
    pub fn recv_with_fds(&self) -> Result<(Message, Vec<OwnedFd>), ChannelError> {
        let mut buf = Vec::new();
        // The payload of CONTINUED pieces, which the next message ends.
        let mut head = Vec::new();
        loop {
            // A buffer the packet's size, not MAX_PACKET: in the
            // intermediate and init every page touched is charged to the
            // container's memory limit.
            let size = match self.next_packet_size() {
                Ok(size) => size,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET) => continue,
                Err(e) => return Err(ChannelError::Io(e.into())),
            };
            buf.resize(size.max(1), 0);
            match crate::tty::recv_with_fds(self.fd.as_fd(), &mut buf) {
                Ok((0, _)) => return Err(ChannelError::Closed),
                Ok((n, _)) if buf[0] == CONTINUED => head.extend_from_slice(&buf[1..n]),
                Ok((n, fd)) if head.is_empty() => return received(Message::decode(&buf[..n])?, fd),
                Ok((n, fd)) => {
                    let mut packet = vec![buf[0]];
                    packet.append(&mut head);
                    packet.extend_from_slice(&buf[1..n]);
                    return received(Message::decode(&packet)?, fd);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The peer closed without reading what we sent: the error
                // is reported once, before what it sent us (its Error).
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => continue,
                Err(e) => return Err(ChannelError::Io(e)),
            }
        }
    }

    /// The size of the next packet (0 at end of file), left queued.
    fn next_packet_size(&self) -> nix::Result<usize> {
        let mut byte = [0u8; 1];
        nix::sys::socket::recv(
            self.fd.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
        )
    }

    /// A message already queued, without waiting for one.
    pub fn pending(&self) -> Option<Message> {
        let mut buf = vec![0u8; MAX_PACKET];
        let mut recv =
            || nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT);
        let n = match recv() {
            // Reported once (see recv_with_fd), before the queued message.
            Err(nix::errno::Errno::ECONNRESET) => recv(),
            n => n,
        }
        .ok()?;
        Message::decode(&buf[..n]).ok()
    }

    /// Sends `msg` with `fd` attached.
    pub fn send_with_fd(&self, msg: &Message, fd: BorrowedFd) -> Result<(), ChannelError> {
        self.send_with_fds(msg, &[fd.as_raw_fd()])
    }

    /// Sends `msg` (one packet) with `fds` attached.
    pub fn send_with_fds(
        &self,
        msg: &Message,
        fds: &[std::os::fd::RawFd],
    ) -> Result<(), ChannelError> {
        crate::tty::send_fds_with(self.fd.as_fd(), &msg.encode(), fds).map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
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

/// The receiving side's failpoints, one per message.
fn received(msg: Message, fd: Vec<OwnedFd>) -> Result<(Message, Vec<OwnedFd>), ChannelError> {
    match msg {
        Message::Start => failpoint!("pipe.recv.start"),
        Message::MapsRequest => failpoint!("pipe.recv.maps_request"),
        Message::MapsDone => failpoint!("pipe.recv.maps_done"),
        Message::InitPid(_) => failpoint!("pipe.recv.init_pid"),
        Message::CreateRuntimeHooks => failpoint!("pipe.recv.create_runtime_hooks"),
        Message::HooksDone(_) => failpoint!("pipe.recv.hooks_done"),
        Message::Ready => failpoint!("pipe.recv.ready"),
        Message::Created => failpoint!("pipe.recv.created"),
        Message::SeccompFd | Message::SeccompDone | Message::JoinCgroup(_) | Message::Error(_) => {}
    }
    Ok((msg, fd))
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
            Message::Created,
            Message::SeccompFd,
            Message::SeccompDone,
            Message::JoinCgroup(vec![
                "/sys/fs/cgroup/pids/x/tasks".into(),
                "/a/tasks".into(),
            ]),
            // The "none" cgroup driver's: nothing to join.
            Message::JoinCgroup(Vec::new()),
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
    fn over_a_real_socketpair() {
        let (a, b) = pair().unwrap();
        a.send(&Message::InitPid(7)).unwrap();
        assert_eq!(b.recv().unwrap(), Message::InitPid(7));
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn long_messages_come_whole() {
        let (a, b) = pair().unwrap();
        let text = "x".repeat(3 * MAX_PACKET + 17);
        let sender = std::thread::spawn(move || {
            a.send(&Message::HooksDone(text)).unwrap();
            a.send(&Message::Ready).unwrap();
        });
        assert_eq!(
            b.recv().unwrap(),
            Message::HooksDone("x".repeat(3 * MAX_PACKET + 17))
        );
        assert_eq!(b.recv().unwrap(), Message::Ready);
        sender.join().unwrap();
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
