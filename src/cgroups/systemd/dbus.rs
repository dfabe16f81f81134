//! A minimal synchronous D-Bus client: what the systemd driver needs and
//! nothing more. One unix socket (close-on-exec), EXTERNAL authentication,
//! Hello, method calls that wait for their reply, and signals kept until
//! asked for. No thread, no async runtime, no libdbus: carte forks, is
//! static and single-threaded (see docs/architecture.md, cgroup drivers).
//!
//! The marshalling covers the basic types (y b n q i u x t d s o g), arrays,
//! structs, dict entries and variants, in either byte order, as the
//! specification's wire format describes. Decoding checks every length
//! and offset against the bytes it has; it is fuzzed
//! (conformance/fuzz, target `dbus`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The system bus, where no DBUS_SYSTEM_BUS_ADDRESS says otherwise.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// The largest message accepted (the specification's limit is 128 MiB;
/// systemd's replies to carte are a few hundred bytes).
const MAX_MESSAGE: usize = 16 << 20;
/// Nesting the specification allows: 32 arrays and 32 structs.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("d-bus {what}: {}", crate::sys::reason(.source))]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("d-bus: {0}")]
    Protocol(String),
    /// An error reply: its name ("org.freedesktop.systemd1.NoSuchUnit")
    /// and its message.
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
    #[error("d-bus: no answer to {0} within the timeout")]
    Timeout(String),
}

fn protocol(text: impl Into<String>) -> DbusError {
    DbusError::Protocol(text.into())
}

/// One D-Bus value. An array carries its element signature, so that an
/// empty one still has a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    Path(String),
    Signature(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::DictEntry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    /// `(sv)`: one property of a unit, as StartTransientUnit takes them.
    pub fn property(name: &str, value: Value) -> Value {
        Value::Struct(vec![Value::str(name), Value::Variant(Box::new(value))])
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

/// Alignment of the first byte of a value of the type `code` starts with.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// The first complete type of `sig` and the rest.
fn split_type(sig: &[u8]) -> Result<(&[u8], &[u8]), DbusError> {
    fn end(sig: &[u8], at: usize, depth: usize) -> Result<usize, DbusError> {
        if depth > MAX_DEPTH {
            return Err(protocol("signature nested too deep"));
        }
        match sig.get(at) {
            None => Err(protocol("signature ends inside a type")),
            Some(b'a') => end(sig, at + 1, depth + 1),
            Some(b'(') => {
                let mut i = at + 1;
                if sig.get(i) == Some(&b')') {
                    return Err(protocol("empty struct in signature"));
                }
                while sig.get(i) != Some(&b')') {
                    i = end(sig, i, depth + 1)?;
                }
                Ok(i + 1)
            }
            Some(b'{') => {
                let key = at + 1;
                if !matches!(sig.get(key), Some(c) if b"ybnqiuxtdsog".contains(c)) {
                    return Err(protocol("dict entry key is not a basic type"));
                }
                let value_end = end(sig, key + 1, depth + 1)?;
                if sig.get(value_end) != Some(&b'}') {
                    return Err(protocol("dict entry without two types"));
                }
                Ok(value_end + 1)
            }
            Some(c) if b"ybnqiuxtdsogv".contains(c) => Ok(at + 1),
            Some(c) => Err(protocol(format!("unknown type code {:?}", *c as char))),
        }
    }
    let n = end(sig, 0, 0)?;
    Ok(sig.split_at(n))
}

/// Encodes values (little-endian) into a buffer whose offset 0 is the
/// message start, as alignment is counted from there.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    pub fn write(&mut self, value: &Value) {
        match value {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(*b as u32),
            Value::I16(n) => {
                self.pad(2);
                self.buf.extend_from_slice(&n.to_le_bytes())
            }
            Value::U16(n) => {
                self.pad(2);
                self.buf.extend_from_slice(&n.to_le_bytes())
            }
            Value::I32(n) => self.u32(*n as u32),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes())
            }
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes())
            }
            Value::Double(d) => {
                self.pad(8);
                self.buf.extend_from_slice(&d.to_le_bytes())
            }
            Value::Str(s) | Value::Path(s) => {
                self.u32(s.len() as u32);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Signature(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.write(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.write(f);
                }
            }
            Value::DictEntry(k, v) => {
                self.pad(8);
                self.write(k);
                self.write(v);
            }
            Value::Variant(inner) => {
                self.write(&Value::Signature(inner.signature()));
                self.write(inner);
            }
        }
    }
}

/// Decodes values from `buf`, whose offset 0 is the message start.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize, big_endian: bool) -> Reader<'a> {
        Reader {
            buf,
            pos,
            big_endian,
        }
    }

    fn align(&mut self, align: usize) -> Result<(), DbusError> {
        let to = self.pos.div_ceil(align) * align;
        if to > self.buf.len() {
            return Err(protocol("message ends inside padding"));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| protocol("message ends inside a value"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DbusError> {
        self.align(N)?;
        let mut bytes: [u8; N] = self.take(N)?.try_into().expect("N bytes");
        if self.big_endian {
            bytes.reverse();
        }
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn text(&mut self, len: usize) -> Result<String, DbusError> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(protocol("string without its nul"));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| protocol("string is not UTF-8"))
    }

    /// One value of the single complete type `sig`.
    pub fn read(&mut self, sig: &[u8], depth: usize) -> Result<Value, DbusError> {
        if depth > MAX_DEPTH {
            return Err(protocol("value nested too deep"));
        }
        let code = *sig.first().ok_or_else(|| protocol("empty signature"))?;
        Ok(match code {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => return Err(protocol(format!("boolean {n}"))),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.fixed()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if code == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Signature(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                let (one, rest) = split_type(inner.as_bytes())?;
                if !rest.is_empty() {
                    return Err(protocol("variant signature holds more than one type"));
                }
                Value::Variant(Box::new(self.read(one, depth + 1)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                if len > 64 << 20 {
                    return Err(protocol("array longer than 64 MiB"));
                }
                let (elem, _) = split_type(&sig[1..])?;
                self.align(alignment(elem[0]))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|&e| e <= self.buf.len())
                    .ok_or_else(|| protocol("array runs past the message"))?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.read(elem, depth + 1)?);
                }
                if self.pos != end {
                    return Err(protocol("array length does not end on an element"));
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' => {
                self.align(8)?;
                let mut rest = &sig[1..];
                let mut fields = Vec::new();
                while rest.first() != Some(&b')') {
                    let (one, after) = split_type(rest)?;
                    fields.push(self.read(one, depth + 1)?);
                    rest = after;
                }
                Value::Struct(fields)
            }
            b'{' => {
                self.align(8)?;
                let (key, rest) = split_type(&sig[1..])?;
                let (value, _) = split_type(rest)?;
                let k = self.read(key, depth + 1)?;
                let v = self.read(value, depth + 1)?;
                Value::DictEntry(Box::new(k), Box::new(v))
            }
            c => return Err(protocol(format!("unknown type code {:?}", c as char))),
        })
    }

    /// Every value of the signature `sig`, in order.
    pub fn read_all(&mut self, sig: &str) -> Result<Vec<Value>, DbusError> {
        let mut rest = sig.as_bytes();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (one, after) = split_type(rest)?;
            out.push(self.read(one, 0)?);
            rest = after;
        }
        Ok(out)
    }
}

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;
/// Header flag: no reply is wanted.
const NO_REPLY_EXPECTED: u8 = 1;

/// One message: the header fields carte uses and the body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub kind: u8,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    pub fn call(
        dest: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: Vec<Value>,
    ) -> Message {
        Message {
            kind: METHOD_CALL,
            path: Some(path.into()),
            interface: Some(interface.into()),
            member: Some(member.into()),
            destination: Some(dest.into()),
            body,
            ..Message::default()
        }
    }

    /// The wire form, little-endian, protocol version 1.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::default();
        for v in &self.body {
            body.write(v);
        }
        let signature: String = self.body.iter().map(Value::signature).collect();
        let mut fields = Vec::new();
        let mut field = |code: u8, value: Value| {
            fields.push(Value::Struct(vec![
                Value::Byte(code),
                Value::Variant(Box::new(value)),
            ]))
        };
        let text = |s: &Option<String>| s.clone();
        if let Some(p) = text(&self.path) {
            field(1, Value::Path(p));
        }
        if let Some(s) = text(&self.interface) {
            field(2, Value::Str(s));
        }
        if let Some(s) = text(&self.member) {
            field(3, Value::Str(s));
        }
        if let Some(s) = text(&self.error_name) {
            field(4, Value::Str(s));
        }
        if let Some(n) = self.reply_serial {
            field(5, Value::U32(n));
        }
        if let Some(s) = text(&self.destination) {
            field(6, Value::Str(s));
        }
        if let Some(s) = text(&self.sender) {
            field(7, Value::Str(s));
        }
        if !signature.is_empty() {
            field(8, Value::Signature(signature));
        }
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', self.kind, self.flags, 1]);
        w.u32(body.buf.len() as u32);
        w.u32(self.serial);
        w.write(&Value::Array("(yv)".into(), fields));
        w.pad(8);
        w.buf.extend_from_slice(&body.buf);
        w.buf
    }

    /// The whole length of the message that `head` (at least 16 bytes)
    /// starts, or None if it needs more bytes to tell.
    pub fn length(head: &[u8]) -> Result<Option<usize>, DbusError> {
        if head.len() < 16 {
            return Ok(None);
        }
        let big = match head[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err(protocol("bad byte order mark")),
        };
        let word = |at: usize| {
            let b: [u8; 4] = head[at..at + 4].try_into().expect("4 bytes");
            (if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }) as usize
        };
        let fields = 16 + word(12);
        let total = fields.div_ceil(8) * 8 + word(4);
        if total > MAX_MESSAGE {
            return Err(protocol(format!("message of {total} bytes")));
        }
        Ok(Some(total))
    }

    /// Parses one whole message (as long as `length` said).
    pub fn decode(bytes: &[u8]) -> Result<Message, DbusError> {
        let total = Message::length(bytes)?.ok_or_else(|| protocol("short message"))?;
        if bytes.len() != total {
            return Err(protocol("message length does not match its header"));
        }
        let big = bytes[0] == b'B';
        if bytes[3] != 1 {
            return Err(protocol(format!("protocol version {}", bytes[3])));
        }
        let mut r = Reader::new(bytes, 4, big);
        let body_len = r.u32()? as usize;
        let mut msg = Message {
            kind: bytes[1],
            flags: bytes[2],
            serial: r.u32()?,
            ..Message::default()
        };
        let Value::Array(_, fields) = r.read(b"a(yv)", 0)? else {
            unreachable!("an array signature reads an array")
        };
        let mut signature = String::new();
        for f in fields {
            let Value::Struct(pair) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (pair.first(), pair.get(1))
            else {
                continue;
            };
            let s = v.as_str().map(String::from);
            match code {
                1 => msg.path = s,
                2 => msg.interface = s,
                3 => msg.member = s,
                4 => msg.error_name = s,
                5 => msg.reply_serial = v.as_u32(),
                6 => msg.destination = s,
                7 => msg.sender = s,
                8 => signature = s.unwrap_or_default(),
                _ => {}
            }
        }
        r.align(8)?;
        if r.pos + body_len != bytes.len() {
            return Err(protocol("body length does not match its header"));
        }
        msg.body = r.read_all(&signature)?;
        if r.pos != bytes.len() {
            return Err(protocol("body longer than its signature"));
        }
        Ok(msg)
    }
}

/// A connection to the bus.
pub struct Bus {
    sock: UnixStream,
    serial: u32,
    /// Bytes read past the last whole message.
    inbox: Vec<u8>,
    /// Signals read while waiting for a reply, oldest first.
    signals: Vec<Message>,
    timeout: Duration,
}

impl Bus {
    /// Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS if it names a
    /// `unix:path=`), authenticates as this process's uid and says Hello.
    /// The socket is close-on-exec (std opens it so) and never reaches a
    /// container: carte closes the connection before it forks.
    pub fn system(timeout: Duration) -> Result<Bus, DbusError> {
        let path = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| {
                a.strip_prefix("unix:path=")
                    .map(|p| p.split(',').next().unwrap_or(p).to_string())
            })
            .unwrap_or_else(|| SYSTEM_BUS.to_string());
        let sock = UnixStream::connect(&path).map_err(|source| DbusError::Io {
            what: format!("connect {path}"),
            source,
        })?;
        let mut bus = Bus {
            sock,
            serial: 0,
            inbox: Vec::new(),
            signals: Vec::new(),
            timeout,
        };
        bus.authenticate()?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            vec![],
        )?;
        Ok(bus)
    }

    fn io(what: &str) -> impl FnOnce(std::io::Error) -> DbusError + '_ {
        move |source| DbusError::Io {
            what: what.into(),
            source,
        }
    }

    /// SASL EXTERNAL with the uid as hex of its decimal digits.
    fn authenticate(&mut self) -> Result<(), DbusError> {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .map_err(Self::io("authenticate"))?;
        let line = self.auth_line()?;
        if !line.starts_with("OK ") {
            return Err(protocol(format!(
                "the bus refused EXTERNAL authentication: {line}"
            )));
        }
        self.sock
            .write_all(b"BEGIN\r\n")
            .map_err(Self::io("authenticate"))
    }

    fn auth_line(&mut self) -> Result<String, DbusError> {
        let deadline = Instant::now() + self.timeout;
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(protocol("authentication line too long"));
            }
            let mut byte = [0u8];
            self.read_some(&mut byte, deadline, "authentication")?;
            line.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned())
    }

    fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        what: &str,
    ) -> Result<usize, DbusError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbusError::Timeout(what.into()));
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(Self::io("set timeout"))?;
            match self.sock.read(buf) {
                Ok(0) => return Err(protocol("the bus closed the connection")),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(DbusError::Timeout(what.into()))
                }
                Err(e) => return Err(Self::io("read")(e)),
            }
        }
    }

    /// The next whole message from the socket.
    fn receive(&mut self, deadline: Instant, what: &str) -> Result<Message, DbusError> {
        loop {
            if let Some(total) = Message::length(&self.inbox)? {
                if self.inbox.len() >= total {
                    let rest = self.inbox.split_off(total);
                    let bytes = std::mem::replace(&mut self.inbox, rest);
                    return Message::decode(&bytes);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.read_some(&mut chunk, deadline, what)?;
            self.inbox.extend_from_slice(&chunk[..n]);
        }
    }

    fn send(&mut self, mut msg: Message) -> Result<u32, DbusError> {
        self.serial += 1;
        msg.serial = self.serial;
        self.sock
            .write_all(&msg.encode())
            .map_err(Self::io("send"))?;
        Ok(msg.serial)
    }

    /// Calls a method and returns its reply's body; an error reply is
    /// `DbusError::Remote`. Signals that arrive meanwhile are kept.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: Vec<Value>,
    ) -> Result<Vec<Value>, DbusError> {
        let serial = self.send(Message::call(dest, path, interface, member, body))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let msg = self.receive(deadline, member)?;
            match msg.kind {
                SIGNAL => self.signals.push(msg),
                METHOD_RETURN if msg.reply_serial == Some(serial) => return Ok(msg.body),
                ERROR if msg.reply_serial == Some(serial) => {
                    return Err(DbusError::Remote {
                        name: msg.error_name.unwrap_or_default(),
                        message: msg
                            .body
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                }
                _ => {}
            }
        }
    }

    /// Sends a call without waiting for (or wanting) a reply.
    pub fn call_no_reply(
        &mut self,
        dest: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: Vec<Value>,
    ) -> Result<(), DbusError> {
        let mut msg = Message::call(dest, path, interface, member, body);
        msg.flags = NO_REPLY_EXPECTED;
        self.send(msg).map(|_| ())
    }

    /// The first signal (kept or new) for which `want` is true, waiting
    /// until `timeout`.
    pub fn wait_signal(
        &mut self,
        timeout: Duration,
        what: &str,
        mut want: impl FnMut(&Message) -> bool,
    ) -> Result<Message, DbusError> {
        if let Some(i) = self.signals.iter().position(&mut want) {
            return Ok(self.signals.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let msg = self.receive(deadline, what)?;
            if msg.kind == SIGNAL && want(&msg) {
                return Ok(msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut w = Writer::default();
        w.write(&v);
        let sig = v.signature();
        let mut r = Reader::new(&w.buf, 0, false);
        assert_eq!(r.read_all(&sig).unwrap(), vec![v], "{sig}");
        assert_eq!(r.pos, w.buf.len());
    }

    #[test]
    fn values_roundtrip() {
        roundtrip(Value::Byte(7));
        roundtrip(Value::Bool(true));
        roundtrip(Value::U64(u64::MAX));
        roundtrip(Value::I32(-5));
        roundtrip(Value::str("carte-x.scope"));
        roundtrip(Value::Path("/org/freedesktop/systemd1/job/42".into()));
        roundtrip(Value::Array(
            "y".into(),
            vec![Value::Byte(0x0f), Value::Byte(1)],
        ));
        roundtrip(Value::Array("u".into(), vec![]));
        roundtrip(Value::Array("(ss)".into(), vec![]));
        roundtrip(Value::Array(
            "(sv)".into(),
            vec![
                Value::property("Delegate", Value::Bool(true)),
                Value::property("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                Value::property("MemoryMax", Value::U64(1 << 30)),
                Value::property(
                    "DeviceAllow",
                    Value::Array(
                        "(ss)".into(),
                        vec![Value::Struct(vec![
                            Value::str("/dev/char/1:3"),
                            Value::str("rwm"),
                        ])],
                    ),
                ),
            ],
        ));
        roundtrip(Value::Array(
            "{sv}".into(),
            vec![Value::DictEntry(
                Box::new(Value::str("a")),
                Box::new(Value::Variant(Box::new(Value::I16(-1)))),
            )],
        ));
    }

    /// The bytes of the specification's layout for a known value: a(sv)
    /// with one ("Delegate", <true>).
    #[test]
    fn array_of_properties_wire_bytes() {
        let mut w = Writer::default();
        w.write(&Value::Array(
            "(sv)".into(),
            vec![Value::property("Delegate", Value::Bool(true))],
        ));
        let expected: Vec<u8> = [
            &[20u8, 0, 0, 0][..], // array length, after the padding
            &[0, 0, 0, 0],        // pad to 8 for the struct
            &[8, 0, 0, 0],        // "Delegate"
            b"Delegate\0",
            &[1, b'b', 0], // variant signature "b", ends at 24
            &[1, 0, 0, 0], // true, already 4-aligned
        ]
        .concat();
        // 4 + 9 + 3 + 4 = 20: the struct starts at 8, ends at 28.
        assert_eq!(w.buf, expected);
    }

    #[test]
    fn messages_roundtrip_and_lengths_match() {
        let mut msg = Message::call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            vec![
                Value::str("carte-x.scope"),
                Value::str("replace"),
                Value::Array(
                    "(sv)".into(),
                    vec![Value::property("Slice", Value::str("system.slice"))],
                ),
                Value::Array("(sa(sv))".into(), vec![]),
            ],
        );
        msg.serial = 3;
        let bytes = msg.encode();
        assert!(
            bytes.len().is_multiple_of(8),
            "a body of strings ends on any byte, but this one is 8-aligned"
        );
        assert_eq!(Message::length(&bytes).unwrap(), Some(bytes.len()));
        assert_eq!(Message::length(&bytes[..15]).unwrap(), None);
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
    }

    /// A JobRemoved signal as a big-endian peer would send it.
    #[test]
    fn big_endian_signal() {
        let body: Vec<u8> = [
            &7u32.to_be_bytes()[..],
            &4u32.to_be_bytes(),
            b"/j/7\0",
            &[0, 0, 0],
            &1u32.to_be_bytes(),
            b"u\0",
            &[0, 0],
            &4u32.to_be_bytes(),
            b"done\0",
        ]
        .concat();
        let mut fields = Vec::new();
        // (3, <"JobRemoved">) and (8, <"uoss">)
        fields.extend_from_slice(&[3, 1, b's', 0]);
        fields.extend_from_slice(&10u32.to_be_bytes());
        fields.extend_from_slice(b"JobRemoved\0");
        fields.extend_from_slice(&[0, 0, 0, 0, 0]); // to 8
        fields.extend_from_slice(&[8, 1, b'g', 0, 4]);
        fields.extend_from_slice(b"uoss\0");
        let mut bytes = vec![b'B', SIGNAL, 0, 1];
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&9u32.to_be_bytes());
        bytes.extend_from_slice(&(fields.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&fields);
        while bytes.len() % 8 != 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(&body);
        let msg = Message::decode(&bytes).unwrap();
        assert_eq!(msg.member.as_deref(), Some("JobRemoved"));
        assert_eq!(
            msg.body,
            vec![
                Value::U32(7),
                Value::Path("/j/7".into()),
                Value::str("u"),
                Value::str("done")
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut msg = Message::call("d", "/p", "i.f", "M", vec![Value::str("x")]);
        msg.serial = 1;
        let good = msg.encode();
        for cut in 0..good.len() {
            let _ = Message::decode(&good[..cut]);
        }
        let mut bad = good.clone();
        bad[0] = b'x';
        assert!(Message::decode(&bad).is_err());
        for sig in ["a", "(", "()", "{sv}x", "{vs}", "(s", "z"] {
            let mut r = Reader::new(&[0u8; 64], 0, false);
            assert!(r.read_all(sig).is_err(), "{sig}");
        }
        let deep = "a".repeat(100) + "y";
        assert!(Reader::new(&[0u8; 8], 0, false).read_all(&deep).is_err());
    }

    /// The fuzz seeds (made by hand from the specification, outside
    /// carte): a Hello reply, a JobRemoved signal, an error reply.
    #[test]
    fn fuzz_seeds_decode() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/fuzz/corpus/dbus");
        let mut members = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert_eq!(Message::length(&bytes).unwrap(), Some(bytes.len()));
            let msg = Message::decode(&bytes).unwrap();
            assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
            members.push(match msg.kind {
                METHOD_RETURN => format!("return {:?}", msg.body),
                ERROR => format!("error {}", msg.error_name.unwrap()),
                _ => format!("signal {}", msg.member.unwrap()),
            });
        }
        members.sort();
        assert_eq!(
            members,
            [
                "error org.freedesktop.systemd1.NoSuchUnit",
                "return [Str(\":1.42\")]",
                "signal JobRemoved"
            ]
        );
    }
}
