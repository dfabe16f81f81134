//! How the user's process is scheduled and placed: process.scheduler
//! (sched_setattr), process.ioPriority (ioprio_set), linux.personality
//! (personality), linux.memoryPolicy (set_mempolicy), for init and `exec`
//! alike, and `exec`'s process.execCPUAffinity. They are applied while
//! carte still holds its capabilities (a real-time policy needs
//! CAP_SYS_NICE) and before the seccomp filter, which may refuse these
//! calls (runc 1.4's order).

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler,
};

use crate::sys;

/// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1, with the
/// utilization clamps).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn policy_number(p: LinuxSchedulerPolicy) -> Option<u32> {
    Some(match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        // Linux has no SCHED_ISO (4 is reserved for it).
        LinuxSchedulerPolicy::SchedIso => return None,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    })
}

fn flag_bit(f: &LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

/// What config.md and the kernel refuse, as a (field, reason) under
/// process: checked before anything is created, for create and exec.
pub fn validate(process: &Process) -> Result<(), (String, String)> {
    if let Some(s) = process.scheduler() {
        validate_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err((
                "ioPriority.priority".into(),
                format!("{} is out of range (0 to 7)", io.priority()),
            ));
        }
    }
    Ok(())
}

fn validate_scheduler(s: &Scheduler) -> Result<(), (String, String)> {
    let bad = |field: &str, reason: String| Err((format!("scheduler.{field}"), reason));
    let policy = *s.policy();
    if policy_number(policy).is_none() {
        return bad(
            "policy",
            "SCHED_ISO is not a Linux scheduling policy".into(),
        );
    }
    if let Some(nice) = s.nice() {
        if !(-20..=19).contains(nice) {
            return bad("nice", format!("{nice} is out of range (-20 to 19)"));
        }
    }
    let realtime = matches!(
        policy,
        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
    );
    match s.priority() {
        Some(p) if !realtime && *p != 0 => {
            return bad(
                "priority",
                "can only be set for SCHED_FIFO or SCHED_RR".into(),
            )
        }
        Some(p) if realtime && !(1..=99).contains(p) => {
            return bad("priority", format!("{p} is out of range (1 to 99)"))
        }
        _ => {}
    }
    if policy != LinuxSchedulerPolicy::SchedDeadline {
        for (field, v) in [
            ("runtime", s.runtime()),
            ("deadline", s.deadline()),
            ("period", s.period()),
        ] {
            if v.is_some_and(|v| v != 0) {
                return bad(field, "can only be set for SCHED_DEADLINE".into());
            }
        }
    } else {
        let runtime = s.runtime().unwrap_or(0);
        let deadline = s.deadline().unwrap_or(0);
        let period = s.period().unwrap_or(0);
        if runtime == 0 || (deadline != 0 && runtime > deadline) {
            return bad(
                "runtime",
                format!("SCHED_DEADLINE needs 0 < runtime ({runtime}) <= deadline ({deadline})"),
            );
        }
        if period != 0 && deadline > period {
            return bad(
                "deadline",
                format!("SCHED_DEADLINE needs deadline ({deadline}) <= period ({period})"),
            );
        }
    }
    Ok(())
}

/// What `features` reports for linux.memoryPolicy: every mode and flag.
pub const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];
pub const MEMORY_POLICY_FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// The modes this kernel takes: each tried on this process (with node 0
/// where it needs nodes), then the default put back. For `features`.
pub fn memory_policy_modes_supported() -> Vec<&'static str> {
    let node0 = [1u64];
    let supported = MEMORY_POLICY_MODES
        .iter()
        .enumerate()
        .filter(|(_, name)| {
            let mode = mode_number(name);
            let (ptr, maxnode) = match mode {
                0 | 4 => (std::ptr::null(), 0),
                _ => (node0.as_ptr(), 65),
            };
            // SAFETY: set_mempolicy reads 64 bits of a mask on this stack,
            // or none; it changes only this process's policy.
            unsafe {
                libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode as libc::c_ulong) == 0
            }
        })
        .map(|(_, name)| *name)
        .collect();
    // SAFETY: as above: back to the default policy.
    unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            0,
            std::ptr::null::<u64>(),
            0 as libc::c_ulong,
        )
    };
    supported
}

fn mode_number(name: &str) -> libc::c_int {
    match name {
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        _ => 0,
    }
}

/// The highest memory node set_mempolicy is given a bit for here.
const MAX_NODES: usize = 1024;

/// linux.memoryPolicy: the mode's needs for nodes and the flags, as the
/// kernel's set_mempolicy(2) has them, as a (field, reason) under linux.
pub fn validate_memory_policy(m: &LinuxMemoryPolicy) -> Result<(), (String, String)> {
    let bad = |field: &str, reason: String| Err((format!("memoryPolicy.{field}"), reason));
    let nodes = match m.nodes().as_deref().filter(|n| !n.trim().is_empty()) {
        Some(list) => match parse_list(list, MAX_NODES) {
            Ok(n) => n,
            Err(why) => return bad("nodes", why),
        },
        None => Vec::new(),
    };
    match m.mode() {
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
            if !nodes.is_empty() =>
        {
            return bad("nodes", format!("{} takes no nodes", m.mode()))
        }
        MemoryPolicyModeType::MpolBind
        | MemoryPolicyModeType::MpolInterleave
        | MemoryPolicyModeType::MpolWeightedInterleave
        | MemoryPolicyModeType::MpolPreferredMany
            if nodes.is_empty() =>
        {
            return bad("nodes", format!("{} needs at least one node", m.mode()))
        }
        _ => {}
    }
    let flags = m.flags().as_deref().unwrap_or_default();
    let has = |f: MemoryPolicyFlagType| flags.contains(&f);
    if has(MemoryPolicyFlagType::MpolFStaticNodes) && has(MemoryPolicyFlagType::MpolFRelativeNodes)
    {
        return bad(
            "flags",
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
        );
    }
    if !flags.is_empty()
        && matches!(
            m.mode(),
            MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
        )
    {
        return bad("flags", format!("{} takes no flags", m.mode()));
    }
    Ok(())
}

/// "0-3,7" -> [0, 1, 2, 3, 7]: the spec's list syntax, each below `limit`.
pub fn parse_list(list: &str, limit: usize) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let num = |s: &str| {
            s.parse::<usize>()
                .ok()
                .filter(|&n| n < limit)
                .ok_or_else(|| format!("{list:?}: {s:?} is not a number below {limit}"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{list:?}: the range {part:?} runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// The CPUs of a spec list as a mask for sched_setaffinity.
pub fn cpu_mask(list: &str) -> Result<libc::cpu_set_t, String> {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in parse_list(list, libc::CPU_SETSIZE as usize)? {
        // SAFETY: CPU_SET writes a bit of our own mask; cpu < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut mask) };
    }
    Ok(mask)
}

/// `exec`'s execCPUAffinity.initial: the CPUs carte's side of the exec
/// runs on before it joins the container's cgroup.
pub fn initial_affinity(process: &Process) -> Option<&str> {
    process
        .exec_cpu_affinity()
        .as_ref()?
        .initial()
        .as_deref()
        .filter(|l| !l.is_empty())
}

/// Once in the container's cgroup: execCPUAffinity.final where `exec` has
/// one; the affinity left as it is where `exec` has only `initial`
/// (config.md: "If omitted or empty, runtime SHOULD NOT change process'
/// CPU affinity"); else all CPUs, which the kernel cuts down to what the
/// cgroup's cpuset allows. Since Linux 6.2 a task keeps the affinity it
/// asked for across a cgroup move, so the container would otherwise run on
/// carte's own (a systemd unit's CPUAffinity, say): runc 1.3.1 resets it
/// so too.
pub(super) fn final_affinity(process: Option<&Process>) -> Result<(), String> {
    let affinity = process.and_then(|p| p.exec_cpu_affinity().as_ref());
    let wanted = affinity
        .and_then(|a| a.cpu_affinity_final().as_deref())
        .filter(|l| !l.is_empty());
    if wanted.is_none() && process.and_then(initial_affinity).is_some() {
        return Ok(());
    }
    let mask = match wanted {
        Some(list) => cpu_mask(list).map_err(|e| format!("process.execCPUAffinity.final: {e}"))?,
        None => sys::all_cpus(),
    };
    sys::set_affinity(0, &mask).map_err(|e| match wanted {
        Some(list) => format!(
            "process.execCPUAffinity.final: sched_setaffinity({list}): {}",
            sys::reason(&e)
        ),
        None => format!("reset the CPU affinity: {}", sys::reason(&e)),
    })
}

/// The personality's flags: config.md says no flag values are supported
/// yet; runc warns and ignores them, and so does carte.
pub fn personality_warning(p: &LinuxPersonality) -> Option<String> {
    let flags = p.flags().as_ref().filter(|f| !f.is_empty())?;
    Some(format!(
        "linux.personality.flags: ignored {flags:?} (the runtime-spec defines no flag values)"
    ))
}

/// The container-wide settings that init and every exec'd process get,
/// as config.json has them (state.json keeps them for `exec`).
#[derive(Clone, Copy, Default)]
pub struct Container<'a> {
    pub personality: Option<&'a LinuxPersonality>,
    pub memory_policy: Option<&'a LinuxMemoryPolicy>,
}

/// Applies them all to the calling process. Safe after fork: syscalls on
/// values read before the fork, no allocation but the error text.
pub(super) fn apply(process: &Process, container: Container) -> Result<(), String> {
    if let Some(m) = container.memory_policy {
        set_memory_policy(m)?;
    }
    let personality = container.personality;
    if let Some(s) = process.scheduler() {
        set_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        set_io_priority(io)?;
    }
    if let Some(p) = personality {
        let domain = match p.domain() {
            LinuxPersonalityDomain::PerLinux => 0x0000,
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        // SAFETY: personality takes an integer and changes only this process.
        if unsafe { libc::personality(domain) } == -1 {
            return Err(format!(
                "linux.personality: personality({domain:#x}): {}",
                sys::last_error()
            ));
        }
    }
    Ok(())
}

fn set_memory_policy(m: &LinuxMemoryPolicy) -> Result<(), String> {
    let mode = mode_number(&m.mode().to_string());
    let mut flags: libc::c_int = 0;
    for f in m.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let mut mask = [0u64; MAX_NODES / 64];
    let nodes = m.nodes().as_deref().unwrap_or_default();
    if !nodes.trim().is_empty() {
        for n in
            parse_list(nodes, MAX_NODES).map_err(|e| format!("linux.memoryPolicy.nodes: {e}"))?
        {
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    let (ptr, maxnode) = if mask.iter().any(|&w| w != 0) {
        // The kernel reads one bit fewer than maxnode says.
        (mask.as_ptr(), MAX_NODES as libc::c_ulong + 1)
    } else {
        (std::ptr::null(), 0)
    };
    // SAFETY: set_mempolicy reads maxnode-1 bits of a mask that lives on
    // this stack for the call, or none with a null mask.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) };
    if rc != 0 {
        return Err(format!(
            "linux.memoryPolicy: set_mempolicy({}, nodes {nodes:?}): {}",
            m.mode(),
            sys::last_error()
        ));
    }
    Ok(())
}

fn set_scheduler(s: &Scheduler) -> Result<(), String> {
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_number(*s.policy()).unwrap_or(0),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    for f in s.flags().iter().flatten() {
        attr.flags |= flag_bit(f);
    }
    // SAFETY: sched_setattr reads a struct sched_attr of `size` bytes that
    // lives on this stack for the call; pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        // With CONFIG_RT_GROUP_SCHED a new v1 cgroup has no real-time
        // budget, and the kernel refuses any real-time policy in it.
        let hint = match s.policy() {
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
                if errno == Some(libc::EPERM) =>
            {
                " (a real-time policy needs CAP_SYS_NICE and, where the kernel has cpu.rt_runtime_us, a budget in linux.resources.cpu.realtimeRuntime)"
            }
            _ => "",
        };
        return Err(format!(
            "process.scheduler: sched_setattr({}): {}{hint}",
            s.policy(),
            sys::last_error()
        ));
    }
    Ok(())
}

fn set_io_priority(io: &LinuxIOPriority) -> Result<(), String> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << 13) | io.priority();
    // SAFETY: ioprio_set takes integers; pid 0 is the calling process.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if rc != 0 {
        return Err(format!(
            "process.ioPriority: ioprio_set({}, {}): {}",
            io.class(),
            io.priority(),
            sys::last_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `exec --process` file with `v`'s fields, parsed and validated.
    fn parse(v: serde_json::Value) -> Result<Process, crate::config::ConfigError> {
        let mut base =
            serde_json::json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        crate::config::process_from_bytes(base.to_string().as_bytes(), "p.json")
    }

    fn process(v: serde_json::Value) -> Process {
        parse(v).unwrap()
    }

    #[test]
    fn lists_and_memory_policies() {
        assert_eq!(parse_list("0-2,5", 8).unwrap(), [0, 1, 2, 5]);
        assert!(parse_list("3-1", 8).unwrap_err().contains("backwards"));
        assert!(parse_list("8", 8).is_err());
        assert!(parse_list("x", 8).is_err());
        let policy =
            |v: serde_json::Value| -> LinuxMemoryPolicy { serde_json::from_value(v).unwrap() };
        let field = |v: serde_json::Value| validate_memory_policy(&policy(v)).unwrap_err().0;
        assert_eq!(
            field(serde_json::json!({"mode": "MPOL_BIND"})),
            "memoryPolicy.nodes"
        );
        assert_eq!(
            field(serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"})),
            "memoryPolicy.nodes"
        );
        assert_eq!(
            field(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-"})),
            "memoryPolicy.nodes"
        );
        assert_eq!(
            field(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
                "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]})),
            "memoryPolicy.flags"
        );
        assert!(
            validate_memory_policy(&policy(serde_json::json!({"mode": "MPOL_PREFERRED"}))).is_ok()
        );
        assert!(validate_memory_policy(&policy(
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]})
        ))
        .is_ok());
    }

    #[test]
    fn sched_attr_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 56);
    }

    #[test]
    fn what_the_spec_and_kernel_refuse() {
        let field = |v: serde_json::Value| match parse(v).unwrap_err() {
            crate::config::ConfigError::Invalid { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(
            field(serde_json::json!({"scheduler": {"policy": "SCHED_OTHER", "nice": 20}})),
            "scheduler.nice"
        );
        assert_eq!(
            field(serde_json::json!({"scheduler": {"policy": "SCHED_BATCH", "priority": 5}})),
            "scheduler.priority"
        );
        assert_eq!(
            field(serde_json::json!({"scheduler": {"policy": "SCHED_FIFO", "priority": 100}})),
            "scheduler.priority"
        );
        assert_eq!(
            field(serde_json::json!({"scheduler": {"policy": "SCHED_RR", "runtime": 5}})),
            "scheduler.runtime"
        );
        assert_eq!(
            field(serde_json::json!({"scheduler": {"policy": "SCHED_DEADLINE",
                "runtime": 20, "deadline": 10, "period": 30}})),
            "scheduler.runtime"
        );
        assert_eq!(
            field(serde_json::json!({"scheduler": {"policy": "SCHED_ISO"}})),
            "scheduler.policy"
        );
        assert_eq!(
            field(serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}})),
            "ioPriority.priority"
        );
        assert!(validate(&process(
            serde_json::json!({"scheduler": {"policy": "SCHED_DEADLINE",
            "runtime": 10, "deadline": 20, "period": 30,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"]}})
        ))
        .is_ok());
    }

    #[test]
    fn flags_are_read_as_the_spec_spells_them() {
        let p = process(
            serde_json::json!({"scheduler": {"policy": "SCHED_FIFO", "priority": 1,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_KEEP_PARAMS"]}}),
        );
        let flags = p.scheduler().as_ref().unwrap().flags().clone().unwrap();
        assert_eq!(flags.iter().map(flag_bit).sum::<u64>(), 0x11);
        let bad = serde_json::json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "scheduler": {"policy": "SCHED_FIFO", "flags": ["SCHED_RESET_ON_FORK"]}});
        let err = crate::config::process_from_bytes(bad.to_string().as_bytes(), "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scheduler.flags"), "{err}");
    }
}
