//! How the user's process is scheduled: process.scheduler (sched_setattr),
//! process.ioPriority (ioprio_set) and linux.personality (personality),
//! for init and `exec` alike. They are applied while carte still holds its
//! capabilities (a real-time policy needs CAP_SYS_NICE) and before the
//! seccomp filter, which may refuse these calls (runc 1.4's order).

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process, Scheduler,
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

/// The personality's flags: config.md says no flag values are supported
/// yet; runc warns and ignores them, and so does carte.
pub fn personality_warning(p: &LinuxPersonality) -> Option<String> {
    let flags = p.flags().as_ref().filter(|f| !f.is_empty())?;
    Some(format!(
        "linux.personality.flags: ignored {flags:?} (the runtime-spec defines no flag values)"
    ))
}

/// Applies all three to the calling process. Safe after fork: syscalls on
/// values read before the fork, no allocation but the error text.
pub(super) fn apply(
    process: &Process,
    personality: Option<&LinuxPersonality>,
) -> Result<(), String> {
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
