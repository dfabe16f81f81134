//! linux.netDevices (config-linux.md, Network Devices): host network
//! devices moved into the container's network namespace, renamed where the
//! config says (a `%d` template lets the kernel pick the number), with
//! their permanent global addresses put back and the link set up. The
//! parent does it over rtnetlink once init exists, from the host's
//! namespace, with a second netlink socket opened in the container's. A
//! device is never moved back out (the spec forbids it): when the
//! namespace goes, the kernel returns a physical device to the host's and
//! destroys a virtual one.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use oci_spec::runtime::LinuxNetDevice;

#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    #[error("linux.netDevices[{device}]: {reason}")]
    Device { device: String, reason: String },
    #[error("linux.netDevices: {0}")]
    Netlink(String),
}

fn device_err(device: &str, reason: impl Into<String>) -> NetdevError {
    NetdevError::Device {
        device: device.into(),
        reason: reason.into(),
    }
}

const IFNAMSIZ: usize = 16;

/// What config validation refuses: names the kernel would refuse.
pub fn validate(devices: &HashMap<String, LinuxNetDevice>) -> Result<(), (String, String)> {
    for (host, dev) in devices {
        let field = format!("linux.netDevices[{host}]");
        check_name(host).map_err(|r| (field.clone(), r))?;
        if let Some(name) = dev.name().as_deref() {
            check_name(name).map_err(|r| (format!("{field}.name"), r))?;
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() >= IFNAMSIZ {
        return Err(format!(
            "{name:?}: a device name has 1 to {} bytes",
            IFNAMSIZ - 1
        ));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid device name"));
    }
    Ok(())
}

/// The devices exist on the host: checked before anything is made.
pub fn check_host(devices: &HashMap<String, LinuxNetDevice>) -> Result<(), NetdevError> {
    let sock = Netlink::open().map_err(NetdevError::Netlink)?;
    for host in devices.keys() {
        sock.link_by_name(host)
            .map_err(|e| device_err(host, format!("no such device on the host ({e})")))?;
    }
    Ok(())
}

/// Moves every device into the network namespace of `pid`. Every check
/// (each device is on the host, each target name is free) is made before
/// the first move.
pub fn move_all(devices: &HashMap<String, LinuxNetDevice>, pid: i32) -> Result<(), NetdevError> {
    let path = format!("/proc/{pid}/ns/net");
    let target = File::open(&path)
        .map_err(|e| NetdevError::Netlink(format!("open {path}: {}", crate::sys::reason(&e))))?;
    let host = Netlink::open().map_err(NetdevError::Netlink)?;
    let inside = Netlink::open_in(target.as_fd()).map_err(NetdevError::Netlink)?;
    let mut plan = Vec::new();
    for (name, dev) in devices {
        let link = host
            .link_by_name(name)
            .map_err(|e| device_err(name, format!("no such device on the host ({e})")))?;
        let target_name = dev.name().clone().unwrap_or_else(|| name.clone());
        if !target_name.contains("%d") && inside.link_by_name(&target_name).is_ok() {
            return Err(device_err(
                name,
                format!("{target_name} already exists in the container's network namespace"),
            ));
        }
        let addrs = host
            .permanent_addresses(link.index)
            .map_err(|e| device_err(name, e))?;
        plan.push((name, link, target_name, addrs));
    }
    for (name, link, target_name, addrs) in plan {
        host.move_link(link.index, target.as_raw_fd(), &target_name)
            .map_err(|e| device_err(name, format!("move into the container: {e}")))?;
        let moved = inside
            .find_moved(&link, &target_name)
            .map_err(|e| device_err(name, e))?;
        for a in &addrs {
            inside
                .add_address(moved.index, a)
                .map_err(|e| device_err(name, format!("restore address: {e}")))?;
        }
        inside
            .set_up(moved.index)
            .map_err(|e| device_err(name, format!("set up: {e}")))?;
    }
    Ok(())
}

// rtnetlink, as linux/netlink.h, rtnetlink.h, if_link.h and if_addr.h have it.
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;

/// A link as rtnetlink reports it.
#[derive(Debug, Clone)]
struct Link {
    index: i32,
    name: String,
    mac: Vec<u8>,
}

/// One address to put back: the ifaddrmsg fields and its attributes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Address {
    family: u8,
    prefix: u8,
    flags: u32,
    attrs: Vec<(u16, Vec<u8>)>,
}

struct Netlink {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

/// A netlink message under construction: header, fixed part, attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut b = vec![0u8; 16];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(fixed);
        Msg(b)
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
}

/// struct ifinfomsg: family, type, index, flags, change.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn cstr(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// The attributes that follow a fixed part, as (type, payload).
pub(crate) fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

/// The messages of one datagram, as (type, payload after the header).
pub(crate) fn messages(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            break;
        }
        out.push((kind, &b[16..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = i32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let mut link = Link {
        index,
        name: String::new(),
        mac: Vec::new(),
    };
    for (kind, data) in attributes(payload.get(16..)?) {
        match kind {
            IFLA_IFNAME => {
                link.name = String::from_utf8_lossy(data.split(|&c| c == 0).next()?).into_owned()
            }
            IFLA_ADDRESS => link.mac = data.to_vec(),
            _ => {}
        }
    }
    Some(link)
}

/// A permanent address of global scope on link `index` (the spec's rule),
/// from an RTM_NEWADDR payload.
pub(crate) fn parse_address(payload: &[u8], index: i32) -> Option<Address> {
    let fixed = payload.get(..8)?;
    let (family, prefix, flags8, scope) = (fixed[0], fixed[1], fixed[2], fixed[3]);
    let at = i32::from_ne_bytes(fixed[4..8].try_into().ok()?);
    if at != index || scope != RT_SCOPE_UNIVERSE {
        return None;
    }
    let mut flags = u32::from(flags8);
    let mut attrs = Vec::new();
    for (kind, data) in attributes(&payload[8..]) {
        match kind {
            IFA_FLAGS if data.len() >= 4 => flags = u32::from_ne_bytes(data[..4].try_into().ok()?),
            IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => attrs.push((kind, data.to_vec())),
            _ => {}
        }
    }
    (flags & IFA_F_PERMANENT != 0).then_some(Address {
        family,
        prefix,
        flags,
        attrs,
    })
}

impl Netlink {
    fn open() -> Result<Netlink, String> {
        // SAFETY: socket(2) with constant arguments; the fd is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(format!("netlink socket: {}", crate::sys::last_error()));
        }
        Ok(Netlink {
            // SAFETY: a fresh fd that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: std::cell::Cell::new(1),
        })
    }

    /// A socket of the network namespace `ns`: made there, it stays there
    /// when this (single-threaded) process goes back to its own.
    fn open_in(ns: BorrowedFd) -> Result<Netlink, String> {
        let own = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("open own network namespace: {}", crate::sys::reason(&e)))?;
        let enter = |fd: BorrowedFd| {
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns: {}", crate::sys::errno(e)))
        };
        enter(ns)?;
        let sock = Netlink::open();
        enter(own.as_fd()).expect("return to carte's own network namespace");
        sock
    }

    /// Sends `msg` and returns the payloads of the replies (a dump's, or
    /// none for an acknowledged request); an error reply is an Err.
    fn request(&self, mut msg: Msg) -> Result<Vec<(u16, Vec<u8>)>, String> {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let len = msg.0.len() as u32;
        msg.0[0..4].copy_from_slice(&len.to_ne_bytes());
        msg.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        // SAFETY: send(2) of a buffer we own, on our socket; the kernel is
        // the default destination of a netlink socket.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), msg.0.as_ptr().cast(), msg.0.len(), 0) };
        if sent < 0 {
            return Err(format!("netlink send: {}", crate::sys::last_error()));
        }
        let flags = u16::from_ne_bytes([msg.0[6], msg.0[7]]);
        // A dump ends with DONE, an acknowledged request with an ERROR
        // (0 for success); a plain get is answered by one message.
        let single = flags & (NLM_F_DUMP | NLM_F_ACK) == 0;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: recv(2) into a buffer we own, of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(format!("netlink recv: {}", crate::sys::last_error()));
            }
            for (kind, payload) in messages(&buf[..n as usize]) {
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                            .unwrap_or(-libc::EIO);
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(crate::sys::reason(&std::io::Error::from_raw_os_error(
                                -code,
                            )))
                        };
                    }
                    _ => out.push((kind, payload.to_vec())),
                }
            }
            if single && !out.is_empty() {
                return Ok(out);
            }
        }
    }

    fn link_by_name(&self, name: &str) -> Result<Link, String> {
        let msg = Msg::new(RTM_GETLINK, NLM_F_REQUEST, &ifinfomsg(0, 0, 0))
            .attr(IFLA_IFNAME, &cstr(name));
        self.one_link(msg)
    }

    fn link_by_index(&self, index: i32) -> Result<Link, String> {
        self.one_link(Msg::new(
            RTM_GETLINK,
            NLM_F_REQUEST,
            &ifinfomsg(index, 0, 0),
        ))
    }

    fn one_link(&self, msg: Msg) -> Result<Link, String> {
        self.request(msg)?
            .iter()
            .find_map(|(_, p)| parse_link(p))
            .ok_or_else(|| "no link in the kernel's answer".into())
    }

    fn links(&self) -> Result<Vec<Link>, String> {
        let msg = Msg::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifinfomsg(0, 0, 0));
        Ok(self
            .request(msg)?
            .iter()
            .filter_map(|(_, p)| parse_link(p))
            .collect())
    }

    fn permanent_addresses(&self, index: i32) -> Result<Vec<Address>, String> {
        let msg = Msg::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &[0u8; 8]);
        Ok(self
            .request(msg)?
            .iter()
            .filter_map(|(_, p)| parse_address(p, index))
            .collect())
    }

    fn move_link(&self, index: i32, netns: i32, name: &str) -> Result<(), String> {
        let msg = Msg::new(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            &ifinfomsg(index, 0, 0),
        )
        .attr(IFLA_NET_NS_FD, &(netns as u32).to_ne_bytes())
        .attr(IFLA_IFNAME, &cstr(name));
        self.request(msg).map(drop)
    }

    /// The link that `host` became: the kernel keeps its index where it is
    /// free in the namespace and its hardware address; the name is the one
    /// asked for, or made from the `%d` template.
    fn find_moved(&self, host: &Link, name: &str) -> Result<Link, String> {
        if !name.contains("%d") {
            return self.link_by_name(name);
        }
        if let Ok(l) = self.link_by_index(host.index) {
            if l.mac == host.mac {
                return Ok(l);
            }
        }
        self.links()?
            .into_iter()
            .find(|l| !host.mac.is_empty() && l.mac == host.mac)
            .ok_or_else(|| "the moved device is not found in the container".into())
    }

    fn add_address(&self, index: i32, a: &Address) -> Result<(), String> {
        let mut fixed = [0u8; 8];
        fixed[0] = a.family;
        fixed[1] = a.prefix;
        fixed[3] = RT_SCOPE_UNIVERSE;
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut msg = Msg::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &fixed,
        );
        for (kind, data) in &a.attrs {
            msg = msg.attr(*kind, data);
        }
        // The address was checked where it was; no second DAD round.
        msg = msg.attr(
            IFA_FLAGS,
            &((a.flags & IFA_F_NODAD) | IFA_F_NODAD).to_ne_bytes(),
        );
        self.request(msg).map(drop)
    }

    fn set_up(&self, index: i32) -> Result<(), String> {
        let up = libc::IFF_UP as u32;
        let msg = Msg::new(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            &ifinfomsg(index, up, up),
        );
        self.request(msg).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_would_refuse() {
        assert!(check_name("eth0").is_ok());
        assert!(check_name("eth%d").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a-name-too-long0").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn messages_and_attributes_round_trip() {
        let mut msg = Msg::new(RTM_NEWLINK, NLM_F_REQUEST, &ifinfomsg(7, 0, 0))
            .attr(IFLA_IFNAME, &cstr("eth1"))
            .attr(IFLA_ADDRESS, &[1, 2, 3, 4, 5, 6]);
        let len = msg.0.len() as u32;
        msg.0[0..4].copy_from_slice(&len.to_ne_bytes());
        let parsed = messages(&msg.0);
        assert_eq!(parsed.len(), 1);
        let link = parse_link(parsed[0].1).unwrap();
        assert_eq!((link.index, link.name.as_str()), (7, "eth1"));
        assert_eq!(link.mac, [1, 2, 3, 4, 5, 6]);
        // Truncated or garbled input is cut short, never a panic.
        for cut in 0..msg.0.len() {
            for (_, p) in messages(&msg.0[..cut]) {
                let _ = parse_link(p);
            }
        }
        assert!(attributes(&[0xff, 0xff, 1, 0]).is_empty());
    }

    #[test]
    fn only_permanent_global_addresses_are_kept() {
        let addr = |flags: u8, scope: u8, index: i32| {
            let mut b = vec![2, 24, flags, scope];
            b.extend_from_slice(&index.to_ne_bytes());
            b.extend_from_slice(&[8, 0, 2, 0, 10, 0, 0, 1]);
            b
        };
        let a = parse_address(&addr(0x80, 0, 3), 3).unwrap();
        assert_eq!((a.family, a.prefix), (2, 24));
        assert_eq!(a.attrs, vec![(IFA_LOCAL, vec![10, 0, 0, 1])]);
        assert!(
            parse_address(&addr(0x00, 0, 3), 3).is_none(),
            "not permanent"
        );
        assert!(
            parse_address(&addr(0x80, 253, 3), 3).is_none(),
            "link scope"
        );
        assert!(parse_address(&addr(0x80, 0, 4), 3).is_none(), "other link");
    }
}
