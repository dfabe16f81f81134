//! OCI seccomp profiles: validation, compilation to one classic BPF
//! program, installation with seccomp(2), and the notify listener hand-off.
//!
//! seccompiler has one match action per filter, so the profile is cut into
//! groups: runs of consecutive `syscalls` entries with the same action.
//! Each group becomes a fragment; the fragments are chained in config
//! order, so the first entry that matches a call decides it (see
//! docs/architecture.md, "seccomp"). Unconditional names are matched with
//! one `jeq` each; rules with args go through seccompiler, whose two
//! return values (match = ALLOW, mismatch = KILL_PROCESS, stand-ins only)
//! are rewritten into the group's real action and a jump to the next
//! fragment. Each ABI (x86_64, x32, i386) has its own section.

mod syscalls;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: the program is {0} instructions; the kernel takes at most {BPF_MAXINSNS}")]
    TooLarge(usize),
    #[error("seccomp: build the rules of {syscall}: {reason}")]
    Build { syscall: String, reason: String },
    #[error("seccomp: flag {0} is not supported by this kernel")]
    FlagUnsupported(&'static str),
    #[error("seccomp: install the filter: {}", crate::sys::reason(.0))]
    Install(std::io::Error),
    #[error("seccomp: send the notify listener to {path}: {}", crate::sys::reason(.source))]
    Agent {
        path: String,
        source: std::io::Error,
    },
}

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
const BPF_MAXINSNS: usize = 4096;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 syscalls run under AUDIT_ARCH_X86_64 with this bit in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// offsetof(struct seccomp_data, nr) and (.., arch).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// BPF_LD | BPF_W | BPF_ABS
const LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JA
const JMP_JA: u16 = 0x05;
/// BPF_JMP | BPF_JEQ | BPF_K, and BPF_JGE
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
/// BPF_RET | BPF_K
const RET_K: u16 = 0x06;
/// BPF_ALU | BPF_AND | BPF_K (seccompiler's masked compare)
const ALU_AND_K: u16 = 0x54;

/// The version of the runtime-spec the agent message follows.
const OCI_VERSION: &str = "1.2.0";

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The actions, operators, architectures and flags carte implements, by
/// their OCI names (for `features`).
pub const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
pub const ARCHS: [&str; 3] = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"];
pub const FLAGS: [Flag; 4] = [
    Flag::SeccompFilterFlagLog,
    Flag::SeccompFilterFlagSpecAllow,
    Flag::SeccompFilterFlagTsync,
    Flag::SeccompFilterFlagWaitKillableRecv,
];

pub fn flag_name(flag: Flag) -> &'static str {
    match flag {
        Flag::SeccompFilterFlagLog => "SECCOMP_FILTER_FLAG_LOG",
        Flag::SeccompFilterFlagSpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        Flag::SeccompFilterFlagTsync => "SECCOMP_FILTER_FLAG_TSYNC",
        Flag::SeccompFilterFlagWaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
}

fn flag_bits(flag: Flag) -> libc::c_ulong {
    match flag {
        Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        Flag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
        Flag::SeccompFilterFlagWaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    }
}

/// Whether the running kernel knows `flag`: seccomp(2) with a NULL
/// program fails with EFAULT once the flags have passed its check, and
/// with EINVAL if they have not. Nothing is installed either way.
pub fn flag_supported(flag: Flag) -> bool {
    let mut bits = flag_bits(flag);
    if flag == Flag::SeccompFilterFlagWaitKillableRecv {
        // The kernel takes it only together with a listener.
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    // SAFETY: a NULL program pointer makes the kernel fail with EFAULT
    // before it installs anything; no memory of ours is touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bits,
            std::ptr::null::<u8>(),
        )
    };
    rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The 32-bit return value of an action, with its errno/trace data.
fn action_ret(action: Action, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(libc::EPERM as u32) & libc::SECCOMP_RET_DATA;
    match action {
        Action::ScmpActKill | Action::ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        Action::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        Action::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        Action::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        // runc's default trace data is EPERM too.
        Action::ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        Action::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        Action::ScmpActLog => libc::SECCOMP_RET_LOG,
        Action::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
    }
}

/// What a call of an ABI the profile does not list gets: the default
/// action if it refuses the call, ENOSYS if the default would let it run.
fn bad_arch_ret(default: u32) -> u32 {
    let lets_run = matches!(
        default & libc::SECCOMP_RET_ACTION_FULL,
        libc::SECCOMP_RET_ALLOW
            | libc::SECCOMP_RET_LOG
            | libc::SECCOMP_RET_TRACE
            | libc::SECCOMP_RET_USER_NOTIF
    );
    if lets_run {
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
    } else {
        default
    }
}

/// Calls carte makes itself once the filter is in, which SCMP_ACT_NOTIFY
/// would route through an agent: sendmsg hands the listener to the parent
/// (no agent has it yet: the call would wait for ever) and says Ready;
/// write is runc's (it refuses it for its own hand-off) and carte's
/// release byte on the exec fifo, which `start` waits for.
const NOTIFY_REFUSED: [(&str, &str); 2] = [
    (
        "sendmsg",
        "SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall (carte passes the listener on with it)",
    ),
    (
        "write",
        "SCMP_ACT_NOTIFY cannot be used for the write syscall (carte writes the start signal with it)",
    ),
];

/// The checks that need no kernel: each failure names its field below
/// `linux.seccomp`, as config.rs reports it.
pub fn validate(s: &LinuxSeccomp) -> Result<(), (String, String)> {
    let bad = |field: String, reason: &str| Err((format!("linux.seccomp.{field}"), reason.into()));
    let takes_errno = |a: Action| matches!(a, Action::ScmpActErrno | Action::ScmpActTrace);
    if s.default_action() == Action::ScmpActNotify {
        return bad(
            "defaultAction".into(),
            "SCMP_ACT_NOTIFY cannot be the default action",
        );
    }
    if s.default_errno_ret().is_some() && !takes_errno(s.default_action()) {
        return bad(
            "defaultErrnoRet".into(),
            "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno",
        );
    }
    if s.default_errno_ret()
        .is_some_and(|e| e > libc::SECCOMP_RET_DATA)
    {
        return bad("defaultErrnoRet".into(), "must be at most 65535");
    }
    let mut notify = false;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        if call.names().is_empty() {
            return bad(
                format!("syscalls[{i}].names"),
                "must name at least one syscall",
            );
        }
        if let Some(j) = call.names().iter().position(|n| n.is_empty()) {
            return bad(format!("syscalls[{i}].names[{j}]"), "must not be empty");
        }
        if call.errno_ret().is_some() && !takes_errno(call.action()) {
            return bad(
                format!("syscalls[{i}].errnoRet"),
                "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno",
            );
        }
        if call.errno_ret().is_some_and(|e| e > libc::SECCOMP_RET_DATA) {
            return bad(format!("syscalls[{i}].errnoRet"), "must be at most 65535");
        }
        if call.action() == Action::ScmpActNotify {
            notify = true;
            if let Some((j, why)) = call.names().iter().enumerate().find_map(|(j, n)| {
                NOTIFY_REFUSED
                    .iter()
                    .find(|(name, _)| n == name)
                    .map(|(_, why)| (j, why))
            }) {
                return bad(format!("syscalls[{i}].names[{j}]"), why);
            }
        }
        for (j, arg) in call.args().iter().flatten().enumerate() {
            if arg.index() > 5 {
                return bad(
                    format!("syscalls[{i}].args[{j}].index"),
                    "a syscall has six arguments, 0 to 5",
                );
            }
        }
    }
    let path_set = s
        .listener_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    if notify && !path_set {
        return bad(
            "listenerPath".into(),
            "must be set when an action is SCMP_ACT_NOTIFY",
        );
    }
    if s.listener_metadata().is_some() && !path_set {
        return bad(
            "listenerMetadata".into(),
            "must not be set without listenerPath",
        );
    }
    Ok(())
}

/// One argument comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

/// One `syscalls` entry: its return value and its rules, ORed; an empty
/// rule matches every call.
#[derive(Debug)]
struct Entry {
    ret: u32,
    names: Vec<String>,
    rules: Vec<Vec<Cond>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    fn table(self) -> &'static syscalls::Table {
        match self {
            Abi::X86_64 => &syscalls::X86_64_TABLE,
            Abi::X32 => &syscalls::X32_TABLE,
            Abi::I386 => &syscalls::I386_TABLE,
        }
    }

    fn nr(self, name: &str) -> Option<u32> {
        self.table().nr(name)
    }

    /// libseccomp compares all 64 bits on a 64-bit ABI, the low 32 on the
    /// 32-bit ones (x32 and i386 pass 32-bit arguments).
    fn arg_len(self) -> SeccompCmpArgLen {
        match self {
            Abi::X86_64 => SeccompCmpArgLen::Qword,
            Abi::X32 | Abi::I386 => SeccompCmpArgLen::Dword,
        }
    }
}

/// Consecutive entries with one action, resolved for one ABI.
#[derive(Debug, Default, PartialEq, Eq)]
struct Group {
    ret: u32,
    /// Numbers matched whatever their arguments.
    always: BTreeSet<u32>,
    /// Numbers matched when one of their rules holds.
    rules: BTreeMap<u32, Vec<Vec<Cond>>>,
}

/// Cuts the entries into groups for `abi`. A number that an earlier group
/// matches unconditionally can never reach a later one, so it is left out.
fn groups(entries: &[Entry], abi: Abi) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut decided = HashSet::new();
    for entry in entries {
        if out.last().is_none_or(|g| g.ret != entry.ret) {
            out.push(Group {
                ret: entry.ret,
                ..Default::default()
            });
        }
        let group = out.last_mut().expect("pushed above");
        for nr in entry.names.iter().filter_map(|n| abi.nr(n)) {
            if decided.contains(&nr) {
                continue;
            }
            if entry.rules.iter().any(|r| r.is_empty()) {
                group.rules.remove(&nr);
                group.always.insert(nr);
                decided.insert(nr);
            } else {
                group
                    .rules
                    .entry(nr)
                    .or_default()
                    .extend(entry.rules.iter().cloned());
            }
        }
    }
    out.retain(|g| !g.always.is_empty() || !g.rules.is_empty());
    out
}

fn condition(c: &Cond, abi: Abi) -> Result<SeccompCondition, seccompiler::BackendError> {
    let narrow = |v: u64| {
        if abi.arg_len() == SeccompCmpArgLen::Dword {
            v & 0xffff_ffff
        } else {
            v
        }
    };
    let (op, value) = match c.op {
        Op::ScmpCmpNe => (SeccompCmpOp::Ne, c.value),
        Op::ScmpCmpLt => (SeccompCmpOp::Lt, c.value),
        Op::ScmpCmpLe => (SeccompCmpOp::Le, c.value),
        Op::ScmpCmpEq => (SeccompCmpOp::Eq, c.value),
        Op::ScmpCmpGe => (SeccompCmpOp::Ge, c.value),
        Op::ScmpCmpGt => (SeccompCmpOp::Gt, c.value),
        // (arg & value) == valueTwo
        Op::ScmpCmpMaskedEq => (SeccompCmpOp::MaskedEq(narrow(c.value)), c.value_two),
    };
    SeccompCondition::new(c.index, abi.arg_len(), op, narrow(value))
}

/// Longest run of `jeq` that can reach its shared `ret` (jt is 8 bits).
const JEQ_RUN: usize = 255;

/// The instructions of one group. Control falls off the end when no rule
/// matched, into the next fragment.
fn fragment(group: &Group, abi: Abi) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
    if !group.always.is_empty() {
        out.push(stmt(LD_W_ABS, DATA_NR));
        let nrs: Vec<u32> = group.always.iter().copied().collect();
        for run in nrs.chunks(JEQ_RUN) {
            let n = run.len();
            for (i, nr) in run.iter().enumerate() {
                // Lands on the `ret` after the `ja`.
                out.push(jump(JMP_JEQ_K, *nr, (n - i) as u8, 0));
            }
            out.push(stmt(JMP_JA, 1));
            out.push(stmt(RET_K, group.ret));
        }
    }
    if group.rules.is_empty() {
        return Ok(out);
    }
    let build = |nr: u32, e: &dyn std::fmt::Display| SeccompError::Build {
        syscall: format!("syscall {nr:#x}"),
        reason: e.to_string(),
    };
    let mut rules = BTreeMap::new();
    for (nr, alternatives) in &group.rules {
        let mut list = Vec::new();
        for alt in alternatives {
            let conds = alt
                .iter()
                .map(|c| condition(c, abi))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| build(*nr, &e))?;
            list.push(SeccompRule::new(conds).map_err(|e| build(*nr, &e))?);
        }
        rules.insert(i64::from(*nr), list);
    }
    // Stand-in actions: ALLOW marks a match, KILL_PROCESS a miss.
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| build(0, &e))?;
    let program: BpfProgram = filter.try_into().map_err(|e| match e {
        seccompiler::BackendError::FilterTooLarge(n) => SeccompError::TooLarge(n),
        e => build(0, &e),
    })?;
    // seccompiler starts with its own 3-instruction arch check; carte has
    // checked the arch already.
    let body = strip_arch_check(program);
    let base = out.len();
    let end = base + body.len();
    for (i, mut insn) in body.into_iter().enumerate() {
        if insn.code == RET_K {
            if insn.k == libc::SECCOMP_RET_ALLOW {
                insn.k = group.ret;
            } else if insn.k == libc::SECCOMP_RET_KILL_PROCESS {
                // Jump to the end of the fragment: the next one starts there.
                insn = stmt(JMP_JA, (end - (base + i) - 1) as u32);
            }
        }
        out.push(insn);
    }
    Ok(out)
}

fn strip_arch_check(program: BpfProgram) -> Vec<sock_filter> {
    let check = [
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    assert_eq!(
        program[..3],
        check,
        "seccompiler's program prologue changed"
    );
    program.into_iter().skip(3).collect()
}

/// One ABI's section: the ENOSYS stub for numbers above `enosys_above`,
/// its fragments, then the default action.
fn section(
    entries: &[Entry],
    abi: Abi,
    default: u32,
    enosys_above: Option<u32>,
) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
    if let Some(last) = enosys_above {
        out.push(stmt(LD_W_ABS, DATA_NR));
        out.push(jump(JMP_JGT_K, last, 0, 1));
        out.push(stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    for group in groups(entries, abi) {
        out.extend(fragment(&group, abi)?);
    }
    out.push(stmt(RET_K, default));
    Ok(out)
}

/// `ja` at position `at` that lands on `target`.
fn ja(at: usize, target: usize) -> sock_filter {
    stmt(JMP_JA, (target - at - 1) as u32)
}

/// The whole program:
/// ```text
///  0 ld arch; 1 jeq X86_64 ? 2 : 3; 2 ja native
///  3 jeq I386 ? 4 : 5; 4 ja i386 (or ret bad); 5 ret bad
///  native: ld nr; jge X32_BIT ? next : skip; ja x32 (or ret bad); groups; ret default
///  x32:    groups; ret default
///  i386:   groups; ret default
/// ```
fn assemble(
    default: u32,
    native: Vec<sock_filter>,
    x32: Option<Vec<sock_filter>>,
    i386: Option<Vec<sock_filter>>,
) -> Vec<sock_filter> {
    let bad = bad_arch_ret(default);
    let native_at = 6;
    let x32_at = native_at + 3 + native.len();
    let i386_at = x32_at + x32.as_ref().map_or(0, Vec::len);
    let mut p = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 0, 1),
        ja(2, native_at),
        jump(JMP_JEQ_K, AUDIT_ARCH_I386, 0, 1),
        match i386 {
            Some(_) => ja(4, i386_at),
            None => stmt(RET_K, bad),
        },
        stmt(RET_K, bad),
        stmt(LD_W_ABS, DATA_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        match x32 {
            Some(_) => ja(native_at + 2, x32_at),
            None => stmt(RET_K, bad),
        },
    ];
    p.extend(native);
    p.extend(x32.into_iter().flatten());
    p.extend(i386.into_iter().flatten());
    p
}

/// Where the notify listener goes.
#[derive(Debug, Clone)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: Option<String>,
}

/// A compiled profile, ready to install in init or an exec'd process.
#[derive(Debug)]
pub struct Filter {
    program: Vec<sock_filter>,
    /// SECCOMP_FILTER_FLAG_* bits from the profile.
    flags: libc::c_ulong,
    /// Set when some rule notifies: the filter gets a listener fd.
    pub listener: Option<Listener>,
    /// Names no listed ABI knows; skipped, as runc does.
    pub skipped: Vec<String>,
}

/// Parses the profile's entries into rules. As runc does, an entry whose
/// action is the default one is dropped (libseccomp refuses it), and one
/// whose args compare an argument twice becomes one rule per arg (ORed).
fn entries(s: &LinuxSeccomp, default: u32) -> Vec<Entry> {
    let mut out = Vec::new();
    for call in s.syscalls().iter().flatten() {
        let ret = action_ret(call.action(), call.errno_ret());
        if ret == default {
            continue;
        }
        let conds: Vec<Cond> = call
            .args()
            .iter()
            .flatten()
            .map(|a| Cond {
                index: a.index() as u8,
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            })
            .collect();
        let mut seen = HashSet::new();
        let repeated = !conds.iter().all(|c| seen.insert(c.index));
        let rules = if repeated {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        out.push(Entry {
            ret,
            names: call.names().clone(),
            rules,
        });
    }
    out
}

/// runc's -ENOSYS stub (its patchbpf): for an ABI in `architectures`,
/// a number above the largest one the profile names (in any entry, for
/// that ABI) is a syscall newer than the profile, and gets ENOSYS instead
/// of the default action, so that libc falls back (clone3 to clone,
/// openat2, faccessat2...). Not when the default lets calls run (ALLOW,
/// LOG, TRACE: a tracer handles new calls itself), nor for an ABI whose
/// largest named number is 0 (runc's reading of "none").
fn enosys_above(s: &LinuxSeccomp, default: u32, abi: Abi, listed: bool) -> Option<u32> {
    let lets_run = matches!(
        default & libc::SECCOMP_RET_ACTION_FULL,
        libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG | libc::SECCOMP_RET_TRACE
    );
    if lets_run || !listed {
        return None;
    }
    let names = s.syscalls().iter().flatten().flat_map(|c| c.names());
    names.filter_map(|n| abi.nr(n)).max().filter(|&n| n != 0)
}

/// Compiles a validated profile. Call it before forking: it probes the
/// kernel for the flags and allocates.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let default = action_ret(s.default_action(), s.default_errno_ret());
    let archs = s.architectures().clone().unwrap_or_default();
    let x86_64 = archs.contains(&Arch::ScmpArchX86_64) || archs.contains(&Arch::ScmpArchNative);
    let x32 = archs.contains(&Arch::ScmpArchX32);
    let i386 = archs.contains(&Arch::ScmpArchX86);
    let entries = entries(s, default);
    let stub = |abi, listed| enosys_above(s, default, abi, listed);
    let native = section(&entries, Abi::X86_64, default, stub(Abi::X86_64, x86_64))?;
    let x32_section = x32
        .then(|| section(&entries, Abi::X32, default, stub(Abi::X32, true)))
        .transpose()?;
    let i386_section = i386
        .then(|| section(&entries, Abi::I386, default, stub(Abi::I386, true)))
        .transpose()?;
    let program = assemble(default, native, x32_section, i386_section);
    if program.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLarge(program.len()));
    }

    let notify = s
        .syscalls()
        .iter()
        .flatten()
        .any(|c| c.action() == Action::ScmpActNotify);
    let mut flags = 0;
    for flag in s.flags().iter().flatten() {
        // Without a listener there is no receive to make killable.
        if *flag == Flag::SeccompFilterFlagWaitKillableRecv && !notify {
            continue;
        }
        if !flag_supported(*flag) {
            return Err(SeccompError::FlagUnsupported(flag_name(*flag)));
        }
        flags |= flag_bits(*flag);
    }
    let listener = notify.then(|| Listener {
        path: s.listener_path().clone().unwrap_or_default(),
        metadata: s.listener_metadata().clone(),
    });

    let mut skipped: Vec<String> = Vec::new();
    for name in s.syscalls().iter().flatten().flat_map(|c| c.names()) {
        let known = Abi::X86_64.nr(name).is_some()
            || (x32 && Abi::X32.nr(name).is_some())
            || (i386 && Abi::I386.nr(name).is_some());
        if !known && !skipped.contains(name) {
            skipped.push(name.clone());
        }
    }
    Ok(Filter {
        program,
        flags,
        listener,
        skipped,
    })
}

/// struct sock_fprog.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const sock_filter,
}

impl Filter {
    /// Whether the filter lets a native call through unconditionally
    /// (SECCOMP_RET_ALLOW) with these arguments.
    pub fn allows(&self, nr: libc::c_long, args: [u64; 6]) -> bool {
        evaluate(&self.program, AUDIT_ARCH_X86_64, nr as u32, args) == Some(libc::SECCOMP_RET_ALLOW)
    }

    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Installs the filter on the calling thread with seccomp(2) (so the
    /// flags apply; prctl takes none). Without no_new_privs this needs
    /// CAP_SYS_ADMIN. Returns the listener fd if the profile notifies.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let prog = SockFprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr(),
        };
        let mut flags = self.flags;
        if self.listener.is_some() {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
                // TSYNC reports a failing thread in the return value, where
                // the listener fd goes; ESRCH makes it an errno instead.
                flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
            }
        }
        // SAFETY: prog points at our program, which outlives the call; the
        // kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const SockFprog,
            )
        };
        if rc < 0 {
            return Err(SeccompError::Install(std::io::Error::last_os_error()));
        }
        if self.listener.is_none() {
            if rc > 0 {
                // TSYNC: thread `rc` could not be synchronised.
                return Err(SeccompError::Install(std::io::Error::from_raw_os_error(
                    libc::ESRCH,
                )));
            }
            return Ok(None);
        }
        // SAFETY: with NEW_LISTENER the kernel returns a new fd (cloexec) we own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
    }

    /// Sends the listener to the agent at listenerPath, as runc does: one
    /// message holding the container process state JSON and, as
    /// SCM_RIGHTS, the fd (`fds` names it "seccompFd").
    pub fn send_listener(
        &self,
        pid: i32,
        state: serde_json::Value,
        fd: OwnedFd,
    ) -> Result<(), SeccompError> {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        let err = |source| SeccompError::Agent {
            path: listener.path.display().to_string(),
            source,
        };
        let payload = agent_message(pid, listener.metadata.as_deref(), state);
        let socket = std::os::unix::net::UnixStream::connect(&listener.path).map_err(err)?;
        crate::tty::send_fd_with(socket.as_fd(), payload.as_bytes(), fd.as_raw_fd()).map_err(err)
    }
}

/// Runs a program made of the instructions carte emits on one call, as the
/// kernel would, and returns its action; None for anything else (another
/// load, another opcode, a jump out of the program).
fn evaluate(p: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
    let word = |off: u32| -> Option<u32> {
        match off {
            DATA_NR => Some(nr),
            DATA_ARCH => Some(arch),
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let a = args[((o - 16) / 8) as usize];
                Some(if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                })
            }
            _ => None,
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = p.get(pc)?;
        pc += 1;
        match i.code {
            LD_W_ABS => acc = word(i.k)?,
            ALU_AND_K => acc &= i.k,
            JMP_JA => pc += i.k as usize,
            c if c & 0x07 == 0x05 => {
                let taken = match c & 0xf0 {
                    0x10 => acc == i.k,
                    0x20 => acc > i.k,
                    0x30 => acc >= i.k,
                    _ => return None,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            RET_K => return Some(i.k),
            _ => return None,
        }
    }
}

/// The runtime-spec's ContainerProcessState.
fn agent_message(pid: i32, metadata: Option<&str>, state: serde_json::Value) -> String {
    let mut msg = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        msg["metadata"] = m.into();
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    fn check(v: serde_json::Value) -> Result<(), (String, String)> {
        validate(&profile(v))
    }

    fn run(p: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        evaluate(p, arch, nr, args).expect("an instruction carte emits")
    }

    const X: u32 = AUDIT_ARCH_X86_64;
    const ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    fn nr(name: &str) -> u32 {
        Abi::X86_64.nr(name).unwrap()
    }

    #[test]
    fn tables_are_sorted_and_known() {
        for t in [syscalls::X86_64, syscalls::I386, syscalls::X32] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(Abi::X86_64.nr("mkdir"), Some(83));
        assert_eq!(Abi::I386.nr("mkdir"), Some(39));
        assert_eq!(Abi::X32.nr("mkdir"), Some(83 | X32_SYSCALL_BIT));
        assert_eq!(Abi::X86_64.nr("nosuch"), None);
    }

    #[test]
    fn actions_map_to_kernel_values() {
        assert_eq!(action_ret(Action::ScmpActKill, None), 0);
        assert_eq!(action_ret(Action::ScmpActKillProcess, None), 0x8000_0000);
        assert_eq!(action_ret(Action::ScmpActErrno, None), ERRNO | 1);
        assert_eq!(action_ret(Action::ScmpActErrno, Some(38)), ERRNO | 38);
        assert_eq!(action_ret(Action::ScmpActTrace, Some(7)), 0x7ff0_0007);
        assert_eq!(action_ret(Action::ScmpActNotify, None), 0x7fc0_0000);
        assert_eq!(bad_arch_ret(ALLOW), ERRNO | 38);
        assert_eq!(bad_arch_ret(ERRNO | 1), ERRNO | 1);
        assert_eq!(bad_arch_ret(0), 0);
    }

    #[test]
    fn allow_list_and_errno() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read", "write", "nosuch_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            ]
        })))
        .unwrap();
        assert_eq!(f.skipped, ["nosuch_call"]);
        let p = &f.program;
        assert_eq!(run(p, X, nr("read"), [0; 6]), ALLOW);
        assert_eq!(run(p, X, nr("write"), [0; 6]), ALLOW);
        assert_eq!(run(p, X, nr("mkdir"), [0; 6]), ERRNO | 13);
        assert_eq!(run(p, X, nr("getpid"), [0; 6]), ERRNO | 38);
        // x32 and i386 are not listed: the default refuses, so they get it.
        assert_eq!(run(p, X, nr("read") | X32_SYSCALL_BIT, [0; 6]), ERRNO | 38);
        assert_eq!(run(p, AUDIT_ARCH_I386, 3, [0; 6]), ERRNO | 38);
        assert_eq!(run(p, 0xdead, 0, [0; 6]), ERRNO | 38);
    }

    /// runc's -ENOSYS stub: per listed ABI, numbers above the largest one
    /// the profile names get ENOSYS; not under a default that lets calls
    /// run, nor for an ABI that is not listed.
    #[test]
    fn newer_syscalls_than_the_profile_get_enosys() {
        let enosys = ERRNO | 38;
        let mut v = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "mkdir", "openat2"], "action": "SCMP_ACT_ALLOW"},
                // Named with the default's action: dropped, but it counts.
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO"},
            ]
        });
        let p = compile(&profile(v.clone())).unwrap().program;
        let (clone3, openat2) = (nr("clone3"), nr("openat2"));
        assert_eq!((clone3, openat2), (435, 437));
        assert_eq!(run(&p, X, openat2, [0; 6]), ALLOW);
        assert_eq!(run(&p, X, clone3, [0; 6]), ERRNO | 1, "named: the default");
        assert_eq!(run(&p, X, nr("getpid"), [0; 6]), ERRNO | 1, "known, below");
        assert_eq!(run(&p, X, openat2 + 1, [0; 6]), enosys);
        assert_eq!(run(&p, X, 1000, [0; 6]), enosys);
        // x32 and i386: their own largest numbers.
        let x32_openat2 = Abi::X32.nr("openat2").unwrap();
        assert_eq!(run(&p, X, x32_openat2, [0; 6]), ALLOW);
        assert_eq!(run(&p, X, x32_openat2 + 1, [0; 6]), enosys);
        let i386_openat2 = Abi::I386.nr("openat2").unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_I386, i386_openat2 + 1, [0; 6]), enosys);
        assert_eq!(run(&p, AUDIT_ARCH_I386, 20, [0; 6]), ERRNO | 1);
        // Only x86_64 listed: an x32 call is a call of an unlisted ABI.
        v["architectures"] = serde_json::json!(["SCMP_ARCH_X86_64"]);
        let p = compile(&profile(v.clone())).unwrap().program;
        assert_eq!(run(&p, X, 1000, [0; 6]), enosys);
        assert_eq!(run(&p, X, 1000 | X32_SYSCALL_BIT, [0; 6]), ERRNO | 1);
        // No architectures: no stub, as runc.
        v.as_object_mut().unwrap().remove("architectures");
        let p = compile(&profile(v.clone())).unwrap().program;
        assert_eq!(run(&p, X, 1000, [0; 6]), ERRNO | 1);
        // KILL and TRAP defaults get it; ALLOW, LOG and TRACE do not.
        v["architectures"] = serde_json::json!(["SCMP_ARCH_X86_64"]);
        for (default, stub) in [
            ("SCMP_ACT_KILL_PROCESS", true),
            ("SCMP_ACT_TRAP", true),
            ("SCMP_ACT_LOG", false),
            ("SCMP_ACT_TRACE", false),
        ] {
            v["defaultAction"] = default.into();
            let p = compile(&profile(v.clone())).unwrap().program;
            assert_eq!(run(&p, X, 1000, [0; 6]) == enosys, stub, "{default}");
        }
        v["defaultAction"] = "SCMP_ACT_ALLOW".into();
        v["syscalls"] = serde_json::json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]);
        let p = compile(&profile(v)).unwrap().program;
        assert_eq!(run(&p, X, 1000, [0; 6]), ALLOW);
    }

    #[test]
    fn deny_list_never_allows_other_abis() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]
        })))
        .unwrap();
        let p = &f.program;
        assert_eq!(run(p, X, nr("mkdir"), [0; 6]), 0x8000_0000);
        assert_eq!(run(p, X, nr("getpid"), [0; 6]), ALLOW);
        assert_eq!(run(p, X, 83 | X32_SYSCALL_BIT, [0; 6]), ERRNO | 38);
        assert_eq!(run(p, AUDIT_ARCH_I386, 39, [0; 6]), ERRNO | 38);
    }

    #[test]
    fn listed_abis_get_their_own_numbers() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]
        })))
        .unwrap();
        let p = &f.program;
        assert_eq!(run(p, X, 83, [0; 6]), ERRNO | 5);
        assert_eq!(run(p, X, 83 | X32_SYSCALL_BIT, [0; 6]), ERRNO | 5);
        assert_eq!(run(p, X, 39 | X32_SYSCALL_BIT, [0; 6]), ALLOW);
        assert_eq!(run(p, AUDIT_ARCH_I386, 39, [0; 6]), ERRNO | 5);
        assert_eq!(run(p, AUDIT_ARCH_I386, 83, [0; 6]), ALLOW);
        assert_eq!(run(p, 0xdead, 0, [0; 6]), ERRNO | 38);
    }

    #[test]
    fn every_operator() {
        let ops = [
            ("SCMP_CMP_NE", 5u64, 0u64, [(4u64, true), (5, false)]),
            ("SCMP_CMP_LT", 5, 0, [(4, true), (5, false)]),
            ("SCMP_CMP_LE", 5, 0, [(5, true), (6, false)]),
            ("SCMP_CMP_EQ", 5, 0, [(5, true), (1 << 32 | 5, false)]),
            ("SCMP_CMP_GE", 5, 0, [(5, true), (4, false)]),
            ("SCMP_CMP_GT", 5, 0, [(6, true), (5, false)]),
            (
                "SCMP_CMP_MASKED_EQ",
                0xf0,
                0x20,
                [(0x123, true), (0x113, false)],
            ),
        ];
        for (op, value, two, cases) in ops {
            let f = compile(&profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]
            })))
            .unwrap();
            for (arg, hit) in cases {
                let want = if hit { ERRNO | 1 } else { ALLOW };
                let got = run(&f.program, X, nr("personality"), [0, arg, 0, 0, 0, 0]);
                assert_eq!(got, want, "{op} {arg:#x}");
            }
        }
    }

    #[test]
    fn args_and_within_a_rule_or_across_rules() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 10, "op": "SCMP_CMP_GE"}]},
                {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 2, "value": 3, "op": "SCMP_CMP_EQ"}]},
                // The same index twice: ORed, as runc does.
                {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            ]
        })))
        .unwrap();
        let p = &f.program;
        let sp = nr("setpriority");
        assert_eq!(run(p, X, sp, [0, 0, 12, 0, 0, 0]), ERRNO | 1);
        assert_eq!(run(p, X, sp, [1, 0, 12, 0, 0, 0]), ALLOW);
        assert_eq!(run(p, X, sp, [1, 0, 3, 0, 0, 0]), ERRNO | 1);
        assert_eq!(run(p, X, sp, [0, 0, 5, 0, 0, 0]), ALLOW);
        let um = nr("umask");
        assert_eq!(run(p, X, um, [1, 0, 0, 0, 0, 0]), ERRNO | 1);
        assert_eq!(run(p, X, um, [2, 0, 0, 0, 0, 0]), ERRNO | 1);
        assert_eq!(run(p, X, um, [3, 0, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn first_matching_entry_wins() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_KILL",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2,
                 "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdir", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
                // Same as the default: dropped, as runc does.
                {"names": ["getuid"], "action": "SCMP_ACT_KILL"},
                {"names": ["getuid"], "action": "SCMP_ACT_LOG"},
            ],
            "listenerPath": "/run/agent.sock"
        })))
        .unwrap();
        let p = &f.program;
        assert_eq!(run(p, X, nr("mkdir"), [0, 0o700, 0, 0, 0, 0]), ERRNO | 2);
        assert_eq!(run(p, X, nr("mkdir"), [0, 0o755, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(p, X, nr("getpid"), [0; 6]), ALLOW);
        assert_eq!(run(p, X, nr("getppid"), [0; 6]), 0x7fc0_0000);
        assert_eq!(run(p, X, nr("getuid"), [0; 6]), libc::SECCOMP_RET_LOG);
        assert_eq!(run(p, X, nr("exit"), [0; 6]), 0);
        assert!(f.listener.is_some());
    }

    #[test]
    fn long_lists_keep_jumps_in_range() {
        // Every x86_64 syscall: more than one 255-long jeq run, and with
        // three ABIs still under the kernel's limit.
        let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).collect();
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                 "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}]},
            ]
        })))
        .unwrap();
        assert!(f.len() < 1600, "{}", f.len());
        for (name, n) in syscalls::X86_64 {
            assert_eq!(run(&f.program, X, *n, [0; 6]), ALLOW, "{name}");
        }
        // Newer than any name: ENOSYS (runc's stub).
        assert_eq!(run(&f.program, X, 1000, [0; 6]), ERRNO | 38);
        assert_eq!(run(&f.program, AUDIT_ARCH_I386, 39, [0; 6]), ALLOW);
    }

    #[test]
    fn too_large_is_an_error() {
        let rules: Vec<serde_json::Value> = (0..1500)
            .map(|i| {
                serde_json::json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": i, "op": "SCMP_CMP_EQ"}]})
            })
            .collect();
        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules
        })))
        .unwrap_err();
        assert!(err.to_string().contains("at most 4096"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let base = |calls: serde_json::Value| serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": calls});
        assert_eq!(check(base(serde_json::json!([]))), Ok(()));
        let cases = [
            (
                base(serde_json::json!([{"names": [], "action": "SCMP_ACT_ERRNO"}])),
                "linux.seccomp.syscalls[0].names",
            ),
            (
                base(
                    serde_json::json!([{"names": ["read"], "action": "SCMP_ACT_LOG", "errnoRet": 1}]),
                ),
                "linux.seccomp.syscalls[0].errnoRet",
            ),
            (
                base(serde_json::json!([{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}])),
                "linux.seccomp.listenerPath",
            ),
            (
                base(
                    serde_json::json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
                ),
                "linux.seccomp.syscalls[0].args[0].index",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
                "linux.seccomp.defaultAction",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}),
                "linux.seccomp.defaultErrnoRet",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
                "linux.seccomp.listenerMetadata",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                    "syscalls": [{"names": ["read", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[0].names[1]",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                                 {"names": ["read", "getpid", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[1].names[2]",
            ),
        ];
        for (v, field) in cases {
            assert_eq!(check(v.clone()).unwrap_err().0, field, "{v}");
        }
    }

    #[test]
    fn agent_message_shape() {
        let m: serde_json::Value = serde_json::from_str(&agent_message(
            42,
            Some("meta"),
            serde_json::json!({"id": "c"}),
        ))
        .unwrap();
        assert_eq!(m["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(m["pid"], 42);
        assert_eq!(m["metadata"], "meta");
        assert_eq!(m["state"]["id"], "c");
        let m = agent_message(1, None, serde_json::json!({}));
        assert!(!m.contains("metadata"));
    }
}
