//! carte-checker: run as a container's process, it reads the container's
//! config.json (bind-mounted in) and checks the live environment against it,
//! printing TAP. Exit status 0 when every check passes.
//!
//! It is statically linked so it runs in any rootfs. Things it cannot see
//! from inside (the host's namespaces, the inode of a namespace path) come
//! from annotations the driver adds to config.json:
//! `org.carte.checker.host-ns.<type>` and `org.carte.checker.ns.<type>`.
//!
//! Capabilities are checked as the kernel computes them at the checker's
//! own execve, from the sets the runtime gave it.

mod caps;
mod cgroups;
mod mounts;
mod tap;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::Value;

use crate::tap::Tap;

/// Why the checker could not start checking.
#[derive(Debug)]
enum CheckerError {
    Read {
        path: String,
        err: std::io::Error,
    },
    Parse {
        path: String,
        err: serde_json::Error,
    },
}

impl fmt::Display for CheckerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckerError::Read { path, err } => write!(f, "read {path}: {err}"),
            CheckerError::Parse { path, err } => write!(f, "parse {path}: {err}"),
        }
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/carte-config.json".to_string());
    let config = match load(&path) {
        Ok(c) => c,
        Err(err) => {
            println!("1..0 # SKIP carte-checker: {err}");
            std::process::exit(2);
        }
    };
    let mut t = Tap::default();
    check_process(&config, &mut t);
    check_capabilities(&config, &mut t);
    check_namespaces(&config, &mut t);
    check_uts(&config, &mut t);
    mounts::check(&config, &mut t);
    check_devices(&config, &mut t);
    check_masked_readonly(&config, &mut t);
    check_sysctl(&config, &mut t);
    check_id_maps(&config, &mut t);
    check_time_offsets(&config, &mut t);
    cgroups::check(&config, &mut t);
    std::process::exit(if t.finish() { 0 } else { 1 });
}

fn load(path: &str) -> Result<Value, CheckerError> {
    let text = std::fs::read(path).map_err(|err| CheckerError::Read {
        path: path.into(),
        err,
    })?;
    serde_json::from_slice(&text).map_err(|err| CheckerError::Parse {
        path: path.into(),
        err,
    })
}

/// A field of /proc/self/status.
pub fn status_field(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

fn check_process(c: &Value, t: &mut Tap) {
    let p = &c["process"];
    // umask before anything could change it.
    if let Some(want) = p["user"]["umask"].as_u64() {
        let got = status_field("Umask").and_then(|u| u32::from_str_radix(&u, 8).ok());
        t.eq("process.user.umask", got, Some(want as u32));
    }
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid writes three uids into valid pointers.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    let uid = p["user"]["uid"].as_u64().unwrap_or(0) as u32;
    t.eq(
        "process.user.uid (real, effective, saved)",
        (r, e, s),
        (uid, uid, uid),
    );
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresgid writes three gids into valid pointers.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    let gid = p["user"]["gid"].as_u64().unwrap_or(0) as u32;
    t.eq(
        "process.user.gid (real, effective, saved)",
        (r, e, s),
        (gid, gid, gid),
    );
    if let Some(extra) = p["user"]["additionalGids"].as_array() {
        let groups: BTreeSet<u32> = status_field("Groups")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect();
        let missing: Vec<u64> = extra
            .iter()
            .filter_map(Value::as_u64)
            .filter(|g| !groups.contains(&(*g as u32)))
            .collect();
        t.check(
            "process.user.additionalGids are supplementary groups",
            missing.is_empty(),
            format!("missing {missing:?}, groups {groups:?}"),
        );
    }
    let cwd = std::env::current_dir().map(|d| d.display().to_string());
    t.eq(
        "process.cwd",
        cwd.unwrap_or_else(|e| format!("error: {e}")),
        p["cwd"].as_str().unwrap_or("/").to_string(),
    );
    let env: BTreeSet<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    let want: Vec<&str> = p["env"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&&str> = want.iter().filter(|e| !env.contains(**e)).collect();
    t.check(
        "process.env entries are in the environment",
        missing.is_empty(),
        format!("missing {missing:?}"),
    );
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let want: Vec<String> = p["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    t.eq("process.args", args, want);
    // SAFETY: isatty only inspects fd 0.
    let tty = unsafe { libc::isatty(0) } == 1;
    t.eq(
        "process.terminal (stdin is a tty)",
        tty,
        p["terminal"].as_bool().unwrap_or(false),
    );
    if let Some(rlimits) = p["rlimits"].as_array() {
        for rl in rlimits {
            let name = rl["type"].as_str().unwrap_or("");
            let desc = format!("process.rlimits {name}");
            let Some(res) = rlimit_resource(name) else {
                t.skip(&desc, "unknown on this kernel");
                continue;
            };
            let mut got = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills a valid rlimit struct.
            unsafe { libc::getrlimit(res, &mut got) };
            t.eq(
                &desc,
                (got.rlim_cur, got.rlim_max),
                (
                    rl["soft"].as_u64().unwrap_or(0),
                    rl["hard"].as_u64().unwrap_or(0),
                ),
            );
        }
    }
    let nnp = status_field("NoNewPrivs").unwrap_or_default();
    let want = if p["noNewPrivileges"].as_bool().unwrap_or(false) {
        "1"
    } else {
        "0"
    };
    t.eq("process.noNewPrivileges", nnp.as_str(), want);
    let got = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(adj) = p["oomScoreAdj"].as_i64() {
        t.eq("process.oomScoreAdj", got, Some(adj));
    } else if let Some(own) = c["annotations"]["org.carte.checker.runtime-oom-score-adj"]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok())
    {
        // Not set: the runtime must leave the value it had.
        t.eq(
            "process.oomScoreAdj not set: oom_score_adj unchanged",
            got,
            Some(own),
        );
    }
    let mode = status_field("Seccomp").unwrap_or_default();
    let want = if c["linux"]["seccomp"].is_object() {
        "2"
    } else {
        "0"
    };
    t.eq("linux.seccomp (seccomp mode)", mode.as_str(), want);
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

fn check_capabilities(c: &Value, t: &mut Tap) {
    let Some(set) = c["process"]["capabilities"].as_object() else {
        return;
    };
    let mask = |name: &str| -> Result<u64, String> {
        let mut m = 0u64;
        for cap in set
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cap = cap.as_str().unwrap_or("");
            let n = caps::number(cap).ok_or_else(|| format!("unknown capability {cap}"))?;
            m |= 1 << n;
        }
        Ok(m)
    };
    let (Ok(bnd), Ok(inh), Ok(amb), Ok(_)) = (
        mask("bounding"),
        mask("inheritable"),
        mask("ambient"),
        mask("permitted"),
    ) else {
        t.skip("process.capabilities", "a name the checker does not know");
        return;
    };
    // The kernel's last capability bounds every set it shows.
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    let all = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    let got = |f: &str| {
        status_field(f)
            .and_then(|h| u64::from_str_radix(&h, 16).ok())
            .unwrap_or(u64::MAX)
    };
    let hex = |m: u64| format!("{m:016x}");
    t.eq(
        "process.capabilities.bounding",
        hex(got("CapBnd")),
        hex(bnd & all),
    );
    t.eq(
        "process.capabilities.inheritable",
        hex(got("CapInh")),
        hex(inh & all),
    );
    t.eq(
        "process.capabilities.ambient",
        hex(got("CapAmb")),
        hex(amb & all),
    );
    // At execve a root process without file caps gets inheritable |
    // bounding; any other gets its ambient set (capabilities(7)).
    let root = c["process"]["user"]["uid"].as_u64().unwrap_or(0) == 0;
    let perm = if root { (inh | bnd | amb) & all } else { amb };
    t.eq(
        "process.capabilities.permitted (after execve)",
        hex(got("CapPrm")),
        hex(perm),
    );
    t.eq(
        "process.capabilities.effective (after execve)",
        hex(got("CapEff")),
        hex(perm),
    );
}

const NAMESPACES: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

fn ns_inode(proc_name: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/ns/{proc_name}"))
        .ok()
        .map(|m| m.ino())
}

fn check_namespaces(c: &Value, t: &mut Tap) {
    let listed = c["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let notes = &c["annotations"];
    for (typ, proc_name) in NAMESPACES {
        let desc = format!("linux.namespaces {typ}");
        let Some(here) = ns_inode(proc_name) else {
            t.skip(&desc, "the kernel lacks it");
            continue;
        };
        let host = notes[format!("org.carte.checker.host-ns.{typ}")]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok());
        let entry = listed.iter().find(|n| n["type"] == typ);
        match entry {
            Some(n) if n["path"].is_string() => {
                let want = notes[format!("org.carte.checker.ns.{typ}")]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok());
                match want {
                    Some(want) => t.eq(&format!("{desc}: joined by path"), here, want),
                    None => t.skip(&desc, "no annotation with the path's inode"),
                }
            }
            Some(_) => match host {
                Some(host) => t.check(
                    &format!("{desc}: a new one"),
                    here != host,
                    format!("same as the host's ({here})"),
                ),
                None => t.skip(&desc, "no annotation with the host's inode"),
            },
            None => match host {
                Some(host) => t.eq(&format!("{desc}: the runtime's (not listed)"), here, host),
                None => t.skip(&desc, "no annotation with the host's inode"),
            },
        }
    }
}

fn check_uts(c: &Value, t: &mut Tap) {
    // SAFETY: uname fills a zeroed utsname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid utsname.
    unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| *b as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    if let Some(h) = c["hostname"].as_str() {
        t.eq("hostname", field(&u.nodename), h.to_string());
    }
    if let Some(d) = c["domainname"].as_str() {
        t.eq("domainname", field(&u.domainname), d.to_string());
    }
}

fn check_devices(c: &Value, t: &mut Tap) {
    // runtime-linux.md: the default devices, and the /dev symlinks.
    for (path, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        let got = std::fs::symlink_metadata(path).ok().map(|m| {
            (
                m.file_type().is_char_device(),
                (libc::major(m.rdev()) as u64, libc::minor(m.rdev()) as u64),
            )
        });
        t.eq(
            &format!("default device {path}"),
            got,
            Some((true, (major, minor))),
        );
    }
    let ptmx = std::fs::metadata("/dev/ptmx").ok().map(|m| {
        (
            m.file_type().is_char_device(),
            libc::major(m.rdev()) as u64,
            libc::minor(m.rdev()) as u64,
        )
    });
    t.check(
        "default device /dev/ptmx",
        matches!(ptmx, Some((true, 5, 2)) | Some((true, 136.., _))),
        format!("{ptmx:?}"),
    );
    if c["process"]["terminal"].as_bool().unwrap_or(false) {
        t.check(
            "/dev/console exists with a terminal",
            std::fs::metadata("/dev/console").is_ok(),
            "missing",
        );
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let got = std::fs::read_link(link).map(|p| p.display().to_string());
        t.eq(
            &format!("/dev symlink {link}"),
            got.unwrap_or_else(|e| format!("error: {e}")),
            target.to_string(),
        );
    }
    for dev in c["linux"]["devices"].as_array().into_iter().flatten() {
        let path = dev["path"].as_str().unwrap_or("");
        let desc = format!("linux.devices {path}");
        let Ok(m) = std::fs::symlink_metadata(path) else {
            t.check(&desc, false, "missing");
            continue;
        };
        let ft = m.file_type();
        let kind_ok = match dev["type"].as_str().unwrap_or("") {
            "c" | "u" => ft.is_char_device(),
            "b" => ft.is_block_device(),
            "p" => ft.is_fifo(),
            _ => false,
        };
        t.check(&format!("{desc}: type"), kind_ok, format!("{ft:?}"));
        if dev["type"] != "p" {
            t.eq(
                &format!("{desc}: major:minor"),
                (libc::major(m.rdev()) as u64, libc::minor(m.rdev()) as u64),
                (
                    dev["major"].as_u64().unwrap_or(0),
                    dev["minor"].as_u64().unwrap_or(0),
                ),
            );
        }
        if let Some(mode) = dev["fileMode"].as_u64() {
            t.eq(
                &format!("{desc}: fileMode"),
                format!("{:o}", m.mode() & 0o7777),
                format!("{:o}", mode & 0o7777),
            );
        }
        if let Some(uid) = dev["uid"].as_u64() {
            t.eq(&format!("{desc}: uid"), m.uid() as u64, uid);
        }
        if let Some(gid) = dev["gid"].as_u64() {
            t.eq(&format!("{desc}: gid"), m.gid() as u64, gid);
        }
    }
}

fn check_masked_readonly(c: &Value, t: &mut Tap) {
    for path in c["linux"]["maskedPaths"].as_array().into_iter().flatten() {
        let path = path.as_str().unwrap_or("");
        let desc = format!("linux.maskedPaths {path} cannot be read");
        let Ok(meta) = std::fs::metadata(path) else {
            t.skip(&desc, "not present");
            continue;
        };
        let readable = if meta.is_dir() {
            std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
        } else {
            let mut buf = [0u8; 1];
            std::fs::File::open(path).is_ok_and(|mut f| f.read(&mut buf).is_ok_and(|n| n > 0))
        };
        t.check(&desc, !readable, "its contents are visible");
    }
    for path in c["linux"]["readonlyPaths"].as_array().into_iter().flatten() {
        let path = path.as_str().unwrap_or("");
        let desc = format!("linux.readonlyPaths {path} is read-only");
        match statvfs_readonly(path) {
            Some(ro) => t.check(&desc, ro, "mounted read-write"),
            None => t.skip(&desc, "not present"),
        }
    }
}

pub fn statvfs_readonly(path: &str) -> Option<bool> {
    let c = CString::new(path).ok()?;
    // SAFETY: zeroed statvfs is a valid out buffer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated, st is valid.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_flag & libc::ST_RDONLY != 0)
}

fn check_sysctl(c: &Value, t: &mut Tap) {
    for (key, want) in c["linux"]["sysctl"].as_object().into_iter().flatten() {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let got = std::fs::read_to_string(&path)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|e| format!("error: {e}"));
        let want = want
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        t.eq(&format!("linux.sysctl {key}"), got, want);
    }
}

fn read_map(path: &str) -> Vec<(u64, u64, u64)> {
    let mut v: Vec<(u64, u64, u64)> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (n.len() == 3).then(|| (n[0], n[1], n[2]))
        })
        .collect();
    v.sort();
    v
}

fn check_id_maps(c: &Value, t: &mut Tap) {
    let userns = c["linux"]["namespaces"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n["type"] == "user"));
    for (field, file) in [("uidMappings", "uid_map"), ("gidMappings", "gid_map")] {
        let got = read_map(&format!("/proc/self/{file}"));
        let desc = format!("linux.{field}");
        match c["linux"][field].as_array() {
            Some(maps) if userns => {
                let mut want: Vec<(u64, u64, u64)> = maps
                    .iter()
                    .map(|m| {
                        (
                            m["containerID"].as_u64().unwrap_or(0),
                            m["hostID"].as_u64().unwrap_or(0),
                            m["size"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect();
                want.sort();
                // Joined by path, the map is whatever that namespace has.
                if c["linux"]["namespaces"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|n| n["type"] == "user" && n["path"].is_string())
                }) {
                    t.skip(&desc, "user namespace joined by path");
                } else {
                    t.eq(&desc, got, want);
                }
            }
            _ if !userns => t.eq(
                &format!("{desc}: identity without a user namespace"),
                got,
                vec![(0, 0, 4294967295)],
            ),
            _ => {}
        }
    }
}

fn check_time_offsets(c: &Value, t: &mut Tap) {
    let creates = c["linux"]["namespaces"].as_array().is_some_and(|a| {
        a.iter()
            .any(|n| n["type"] == "time" && !n["path"].is_string())
    });
    if !creates {
        return;
    }
    let text = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
    for clock in ["monotonic", "boottime"] {
        let got = text.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 3 && w[0] == clock)
                .then(|| (w[1].parse::<i64>().ok(), w[2].parse::<i64>().ok()))
        });
        let off = &c["linux"]["timeOffsets"][clock];
        let want = (
            Some(off["secs"].as_i64().unwrap_or(0)),
            Some(off["nanosecs"].as_i64().unwrap_or(0)),
        );
        t.eq(&format!("linux.timeOffsets.{clock}"), got, Some(want));
    }
}
