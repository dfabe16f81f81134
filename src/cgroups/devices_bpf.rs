//! Device rules on cgroup v2: v2 has no devices.allow/deny files, so the
//! rules become an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the
//! container's cgroup. The program keeps v1's meaning: the last rule that
//! matches decides, and a request no rule matches is denied (an allow list,
//! as carte makes on v1 and runc on both). A rule matches when its type and
//! major/minor agree (`a` and -1 are wildcards) and it grants every access
//! bit asked for.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One eBPF instruction, as the kernel reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_MOV_K: u8 = 0xb7;
const JMP32_JNE_K: u8 = 0x56;
const JMP32_JNE_X: u8 = 0x5e;
const EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
// access_type is (access << 16) | type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum DeviceBpfError {
    #[error("linux.resources.devices[{index}]: {reason}")]
    Rule { index: usize, reason: String },
    #[error("load the device program for cgroup {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("attach the device program to cgroup {path}: {}", crate::sys::reason(.source))]
    Attach {
        path: String,
        source: std::io::Error,
    },
}

/// The program for `rules`, in config order.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, DeviceBpfError> {
    // r2 = device type, r3 = access asked for, r4 = major, r5 = minor.
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    // The last matching rule wins, so test them from the end.
    for (index, rule) in rules.iter().enumerate().rev() {
        let mut checks = Vec::new();
        match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => {}
            LinuxDeviceType::B => checks.push((JMP32_JNE_K, 2, DEV_BLOCK)),
            LinuxDeviceType::C | LinuxDeviceType::U => checks.push((JMP32_JNE_K, 2, DEV_CHAR)),
            other => {
                return Err(DeviceBpfError::Rule {
                    index,
                    reason: format!("type {other:?} has no cgroup device rule"),
                })
            }
        }
        let access = access_bits(rule.access().as_deref().unwrap_or("rwm"))
            .map_err(|reason| DeviceBpfError::Rule { index, reason })?;
        let mut block = Vec::new();
        if access != ACC_MKNOD | ACC_READ | ACC_WRITE {
            // r1 = r3 & access; r1 != r3 means a bit was asked the rule lacks.
            block.push(insn(ALU64_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, access));
            block.push(insn(JMP32_JNE_X, 1, 3, 0, 0)); // offset patched below
        }
        if let Some(major) = rule.major().filter(|m| *m >= 0) {
            checks.push((JMP32_JNE_K, 4, major as i32));
        }
        if let Some(minor) = rule.minor().filter(|m| *m >= 0) {
            checks.push((JMP32_JNE_K, 5, minor as i32));
        }
        for (code, reg, imm) in checks {
            block.push(insn(code, reg, 0, 0, imm));
        }
        let unconditional = block.is_empty();
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Every jump in the block skips to the instruction after it.
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JMP32_JNE_K || ins.code == JMP32_JNE_X {
                ins.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
        if unconditional {
            // It decides every request: what follows could never run, and
            // the verifier refuses unreachable instructions.
            return Ok(prog);
        }
    }
    // No rule matched: denied.
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

fn access_bits(access: &str) -> Result<i32, String> {
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(format!("access {access:?}: only r, w and m are allowed")),
        };
    }
    Ok(bits)
}

// bpf(2) commands and constants.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a live, initialised bpf_attr prefix of the size given;
    // the kernel zero-extends it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: fd was just returned by bpf(2) and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads the program for `rules` and makes it the only carte device
/// program on the cgroup directory `dir`: the new one is attached before the
/// old ones are detached, so the cgroup is never left unguarded.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), DeviceBpfError> {
    let path = dir.display().to_string();
    let prog = program(rules)?;
    let license = CString::new("Apache-2.0").expect("no NUL");
    let mut load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let prog_fd = match bpf(BPF_PROG_LOAD, &mut load) {
        Ok(fd) => owned(fd),
        Err(source) => {
            return Err(DeviceBpfError::Load {
                path,
                reason: verifier_says(&mut load).unwrap_or_else(|| crate::sys::reason(&source)),
            })
        }
    };
    let attach_err = |source| DeviceBpfError::Attach {
        path: path.clone(),
        source,
    };
    let cgroup = std::fs::File::open(dir).map_err(attach_err)?;
    let old = attached(&cgroup).map_err(attach_err)?;
    let mut attach = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(attach_err)?;
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        // A program gone meanwhile needs no detach.
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut get).map(owned) else {
            continue;
        };
        let mut detach = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        bpf(BPF_PROG_DETACH, &mut detach).map_err(attach_err)?;
    }
    Ok(())
}

/// Loads again with the verifier's log on, and returns its last line: the
/// reason a program was refused.
fn verifier_says(load: &mut ProgLoadAttr) -> Option<String> {
    let mut log = vec![0u8; 64 * 1024];
    load.log_level = 1;
    load.log_size = log.len() as u32;
    load.log_buf = log.as_mut_ptr() as u64;
    let result = bpf(BPF_PROG_LOAD, load);
    load.log_level = 0;
    load.log_size = 0;
    load.log_buf = 0;
    if let Ok(fd) = result {
        drop(owned(fd));
        return None;
    }
    let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0)?]).into_owned();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("processed "))?;
    Some(format!("the verifier refused it: {}", last.trim()))
}

/// The ids of the device programs attached to the cgroup itself.
fn attached(cgroup: &std::fs::File) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut query = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut query)?;
    ids.truncate(query.prog_cnt as usize);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, typ: &str, major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
        serde_json::from_value(serde_json::json!({
            "allow": allow, "type": typ, "major": major, "minor": minor, "access": access
        }))
        .unwrap()
    }

    /// Runs `prog` the way the kernel would for one request.
    fn run(prog: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access << 16) | typ) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP32_JNE_K if r[dst] as u32 != i.imm as u32 => pc += i.off as usize,
                JMP32_JNE_X if r[dst] as u32 != r[src] as u32 => pc += i.off as usize,
                JMP32_JNE_K | JMP32_JNE_X => {}
                EXIT => return r[0],
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn last_matching_rule_decides() {
        let rules = [
            rule(false, "a", -1, -1, "rwm"),
            rule(true, "c", 1, 3, "rwm"),   // /dev/null
            rule(true, "c", 136, -1, "rw"), // ptys, no mknod
            rule(false, "c", 1, 3, "w"),
        ];
        let prog = program(&rules).unwrap();
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 3), 1, "null readable");
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_WRITE, 1, 3),
            0,
            "write denied last"
        );
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 1, "rw is not a subset of w");
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 136, 7), 1, "any pty");
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_MKNOD, 136, 7),
            0,
            "no mknod of ptys"
        );
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_READ, 1, 3),
            0,
            "block 1:3 is not null"
        );
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_READ, 10, 200),
            0,
            "denied by default rule"
        );
    }

    #[test]
    fn no_rules_allow_nothing() {
        let prog = program(&[]).unwrap();
        assert_eq!(run(&prog, DEV_BLOCK, ACC_MKNOD, 8, 0), 0);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 3), 0);
        let all = program(&[rule(true, "a", -1, -1, "rwm")]).unwrap();
        assert_eq!(run(&all, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0), 1);
    }

    /// What create attaches (`Cgroup::apply`): linux.resources.devices,
    /// then runc's default devices. linux.devices grants nothing: a
    /// config that denies everything and lists /dev/kmsg (c 1:11) and
    /// /dev/null in linux.devices gets neither, but mknod and the other
    /// defaults.
    #[test]
    fn linux_devices_grant_nothing() {
        let devices: Vec<oci_spec::runtime::LinuxDevice> =
            serde_json::from_value(serde_json::json!([
                {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11},
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
            ]))
            .unwrap();
        let mut rules = vec![rule(false, "a", -1, -1, "rwm")];
        rules.extend(crate::cgroups::device_rules(&devices));
        let prog = program(&rules).unwrap();
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 1, 11), 0, "kmsg");
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 11), 0, "kmsg");
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 0, "null listed by path");
        assert_eq!(run(&prog, DEV_CHAR, ACC_MKNOD, 1, 11), 1, "mknod of any");
        assert_eq!(run(&prog, DEV_BLOCK, ACC_MKNOD, 8, 0), 1, "mknod of any");
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 0, "a disk");
        for (major, minor) in [(1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2), (136, 4)] {
            assert_eq!(run(&prog, DEV_CHAR, rw, major, minor), 1, "{major}:{minor}");
        }
        assert_eq!(
            run(&prog, DEV_CHAR, rw, 10, 200),
            0,
            "tun: not since runc 1.2"
        );
        assert_eq!(run(&prog, DEV_CHAR, rw, 5, 1), 0, "console: a pty instead");
        // With no rules of the config's own: the defaults alone.
        let prog = program(&crate::cgroups::device_rules(&[])).unwrap();
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 1, "null");
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 11), 0, "kmsg");
    }

    /// The kernel's verifier accepts what `program` emits (needs root).
    #[test]
    fn the_kernel_loads_it() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let rules = [rule(false, "a", -1, -1, "rwm"), rule(true, "c", 1, 3, "rw")];
        let prog = program(&rules).unwrap();
        let license = CString::new("Apache-2.0").unwrap();
        let mut load = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: prog.len() as u32,
            insns: prog.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_PROG_LOAD, &mut load) {
            Ok(fd) => drop(owned(fd)),
            Err(e) => panic!("{e}: {:?}", verifier_says(&mut load)),
        }
    }

    #[test]
    fn bad_access_names_the_rule() {
        let err = program(&[rule(true, "c", 1, 3, "rx")]).unwrap_err();
        assert!(err.to_string().contains("devices[0]"), "{err}");
    }
}
