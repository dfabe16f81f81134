//! The init pipe as the parent reads it. The input is a stream of packets,
//! each a little-endian u16 length and that many bytes (the last one may
//! be cut short). Each packet is sent raw over a real SOCK_SEQPACKET pair
//! and read back with Channel::recv_with_fd, which decodes it, until the
//! first error, as carte's parent stops at the first bad message. A
//! decoded message must encode back to a packet that decodes the same.
#![no_main]

use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use carte::process::channel::{pair, Channel, Message};
use libfuzzer_sys::fuzz_target;

fn channels() -> &'static (Channel, Channel) {
    static PAIR: OnceLock<(Channel, Channel)> = OnceLock::new();
    PAIR.get_or_init(|| pair().expect("socketpair"))
}

fn packets(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = u16::from_le_bytes([data[0], data[1]]) as usize;
        let (packet, rest) = data[2..].split_at(len.min(data.len() - 2));
        data = rest;
        Some(packet)
    })
}

fuzz_target!(|data: &[u8]| {
    let (sender, receiver) = channels();
    for packet in packets(data) {
        // Straight from the pure decoder too: both must agree.
        let pure = Message::decode(packet);
        // SAFETY: send(2) reads `packet`, which outlives the call.
        let sent = unsafe {
            libc::send(
                sender.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        assert_eq!(sent, packet.len() as isize, "send a packet");
        match receiver.recv_with_fd() {
            Ok((msg, fd)) => {
                assert!(fd.is_none());
                assert_eq!(pure.as_ref().ok(), Some(&msg));
                assert_eq!(Message::decode(&msg.encode()).ok(), Some(msg));
            }
            // An empty packet reads as the other end closing.
            Err(_) => {
                assert!(packet.is_empty() || pure.is_err());
                break;
            }
        }
    }
});
