//! config.json as serde reads it, field for field oci-spec's `Spec` and
//! `Process`, but for process.execCPUAffinity and the scheduler's flags.
//!
//! oci-spec checks execCPUAffinity with a regex inside `Process`'s
//! Deserialize, which links the regex crate and its Unicode tables into
//! carte: about 1 MB of text and 6000 relocations (copy-on-write pages
//! of .data.rel.ro at every start). Reading the two top types here, with
//! the same field names and defaults, keeps every other type oci-spec's
//! own and lets a few lines check the CPU list instead.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Box as ConsoleSize, ExecCPUAffinity, Hooks, Linux, LinuxCapabilities, LinuxIOPriority,
    LinuxIdMapping, LinuxSchedulerFlag, LinuxSchedulerPolicy, Mount, PosixRlimit, Process, Root,
    Scheduler, Solaris, Spec, User, Windows, VM, ZOS,
};
use serde::{de, Deserialize, Deserializer};

// `expecting`: serde names the struct in a type error; users see oci-spec's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "struct Spec")]
pub(super) struct RawSpec {
    #[serde(default, rename = "ociVersion")]
    version: String,
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    mounts: Option<Vec<Mount>>,
    #[serde(default)]
    process: Option<RawProcess>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    domainname: Option<String>,
    #[serde(default)]
    hooks: Option<Hooks>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    linux: Option<Linux>,
    #[serde(default)]
    solaris: Option<Solaris>,
    #[serde(default)]
    windows: Option<Windows>,
    #[serde(default)]
    vm: Option<VM>,
    #[serde(default)]
    zos: Option<ZOS>,
    #[serde(default)]
    uid_mappings: Option<Vec<LinuxIdMapping>>,
    #[serde(default)]
    gid_mappings: Option<Vec<LinuxIdMapping>>,
}

impl RawSpec {
    /// A process without its REQUIRED user (config.md, POSIX process).
    pub(super) fn lacks_user(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.user.is_none())
    }
}

impl From<RawSpec> for Spec {
    #[allow(deprecated)] // top-level uid/gidMappings: kept as oci-spec reads them
    fn from(raw: RawSpec) -> Spec {
        let mut spec = Spec::default();
        spec.set_version(raw.version)
            .set_root(raw.root)
            .set_mounts(raw.mounts)
            .set_process(raw.process.map(Process::from))
            .set_hostname(raw.hostname)
            .set_domainname(raw.domainname)
            .set_hooks(raw.hooks)
            .set_annotations(raw.annotations)
            .set_linux(raw.linux)
            .set_solaris(raw.solaris)
            .set_windows(raw.windows)
            .set_vm(raw.vm)
            .set_zos(raw.zos)
            .set_uid_mappings(raw.uid_mappings)
            .set_gid_mappings(raw.gid_mappings);
        spec
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "struct Process")]
pub(super) struct RawProcess {
    #[serde(default)]
    terminal: Option<bool>,
    #[serde(default)]
    console_size: Option<ConsoleSize>,
    /// REQUIRED in config.json (see `RawSpec::lacks_user`); an `exec
    /// --process` file may leave it out, for uid 0 and gid 0, as runc.
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    command_line: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    cwd: PathBuf,
    #[serde(default)]
    capabilities: Option<LinuxCapabilities>,
    #[serde(default)]
    rlimits: Option<Vec<PosixRlimit>>,
    #[serde(default)]
    no_new_privileges: Option<bool>,
    #[serde(default)]
    apparmor_profile: Option<String>,
    oom_score_adj: Option<i32>,
    #[serde(default)]
    selinux_label: Option<String>,
    #[serde(default)]
    io_priority: Option<LinuxIOPriority>,
    #[serde(default)]
    scheduler: Option<RawScheduler>,
    #[serde(rename = "execCPUAffinity", default)]
    exec_cpu_affinity: Option<RawCpuAffinity>,
}

/// process.scheduler with its flags spelled as the spec spells them
/// (`SCHED_FLAG_RESET_ON_FORK`, `SCHED_FLAG_DL_OVERRUN`); oci-spec 0.10
/// reads other names (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`).
#[derive(Deserialize)]
#[serde(expecting = "struct Scheduler")]
pub(crate) struct RawScheduler {
    policy: LinuxSchedulerPolicy,
    #[serde(default)]
    nice: Option<i32>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    flags: Option<Vec<SpecSchedulerFlag>>,
    #[serde(default)]
    runtime: Option<u64>,
    #[serde(default)]
    deadline: Option<u64>,
    #[serde(default)]
    period: Option<u64>,
}

#[derive(Deserialize)]
#[allow(clippy::enum_variant_names)] // the spec's names
enum SpecSchedulerFlag {
    #[serde(rename = "SCHED_FLAG_RESET_ON_FORK")]
    ResetOnFork,
    #[serde(rename = "SCHED_FLAG_RECLAIM")]
    Reclaim,
    #[serde(rename = "SCHED_FLAG_DL_OVERRUN")]
    DlOverrun,
    #[serde(rename = "SCHED_FLAG_KEEP_POLICY")]
    KeepPolicy,
    #[serde(rename = "SCHED_FLAG_KEEP_PARAMS")]
    KeepParams,
    #[serde(rename = "SCHED_FLAG_UTIL_CLAMP_MIN")]
    UtilClampMin,
    #[serde(rename = "SCHED_FLAG_UTIL_CLAMP_MAX")]
    UtilClampMax,
}

impl From<RawScheduler> for Scheduler {
    fn from(raw: RawScheduler) -> Scheduler {
        let flags = raw.flags.map(|flags| {
            flags
                .into_iter()
                .map(|f| match f {
                    SpecSchedulerFlag::ResetOnFork => LinuxSchedulerFlag::SchedResetOnFork,
                    SpecSchedulerFlag::Reclaim => LinuxSchedulerFlag::SchedFlagReclaim,
                    SpecSchedulerFlag::DlOverrun => LinuxSchedulerFlag::SchedFlagDLOverrun,
                    SpecSchedulerFlag::KeepPolicy => LinuxSchedulerFlag::SchedFlagKeepPolicy,
                    SpecSchedulerFlag::KeepParams => LinuxSchedulerFlag::SchedFlagKeepParams,
                    SpecSchedulerFlag::UtilClampMin => LinuxSchedulerFlag::SchedFlagUtilClampMin,
                    SpecSchedulerFlag::UtilClampMax => LinuxSchedulerFlag::SchedFlagUtilClampMax,
                })
                .collect()
        });
        let mut s = Scheduler::default();
        s.set_policy(raw.policy)
            .set_nice(raw.nice)
            .set_priority(raw.priority)
            .set_flags(flags)
            .set_runtime(raw.runtime)
            .set_deadline(raw.deadline)
            .set_period(raw.period);
        s
    }
}

impl From<RawProcess> for Process {
    fn from(raw: RawProcess) -> Process {
        let mut process = Process::default();
        process
            .set_terminal(raw.terminal)
            .set_console_size(raw.console_size)
            .set_user(raw.user.unwrap_or_default())
            .set_args(raw.args)
            .set_command_line(raw.command_line)
            .set_env(raw.env)
            .set_cwd(raw.cwd)
            .set_capabilities(raw.capabilities)
            .set_rlimits(raw.rlimits)
            .set_no_new_privileges(raw.no_new_privileges)
            .set_apparmor_profile(raw.apparmor_profile)
            .set_oom_score_adj(raw.oom_score_adj)
            .set_selinux_label(raw.selinux_label)
            .set_io_priority(raw.io_priority)
            .set_scheduler(raw.scheduler.map(Scheduler::from))
            .set_exec_cpu_affinity(raw.exec_cpu_affinity.map(|raw| {
                let mut affinity = ExecCPUAffinity::default();
                affinity
                    .set_initial(raw.initial)
                    .set_cpu_affinity_final(raw.cpu_affinity_final);
                affinity
            }));
        process
    }
}

#[derive(Deserialize)]
#[serde(expecting = "struct ExecCPUAffinity")]
pub(super) struct RawCpuAffinity {
    #[serde(default, deserialize_with = "cpu_list")]
    initial: Option<String>,
    #[serde(default, rename = "final", deserialize_with = "cpu_list")]
    cpu_affinity_final: Option<String>,
}

/// A CPU list as oci-spec's regex `^(\d+(-\d+)?)(,\d+(-\d+)?)*$` reads it,
/// with the same error.
fn cpu_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(deserializer)?;
    if let Some(s) = &value {
        if !is_cpu_list(s) {
            return Err(de::Error::custom(format!(
                "Invalid execCPUAffinity format: {s}"
            )));
        }
    }
    Ok(value)
}

/// "0-3,7": comma-separated CPUs or ranges of CPUs.
fn is_cpu_list(s: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit());
    s.split(',').all(|item| match item.split_once('-') {
        Some((from, to)) => number(from) && number(to),
        None => number(item),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        for good in ["0", "0-3", "0-3,7", "1,2,3", "10-20,30-40"] {
            assert!(is_cpu_list(good), "{good}");
        }
        for bad in ["", ",", "1,", ",1", "1-", "-1", "1-2-3", "a", "1 ", "1,,2"] {
            assert!(!is_cpu_list(bad), "{bad}");
        }
    }

    /// Every field of a full config reads as oci-spec reads it.
    #[test]
    fn same_as_oci_spec() {
        let text = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "process": {
                "terminal": true, "consoleSize": {"height": 1, "width": 2},
                "user": {"uid": 1, "gid": 2, "additionalGids": [3]},
                "args": ["sh"], "commandLine": "x", "env": ["A=b"], "cwd": "/",
                "capabilities": {"bounding": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}],
                "noNewPrivileges": true, "apparmorProfile": "p", "oomScoreAdj": 5,
                "selinuxLabel": "l", "ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 1},
                "scheduler": {"policy": "SCHED_OTHER"},
                "execCPUAffinity": {"initial": "0-1", "final": "1"}
            },
            "hostname": "h", "domainname": "d",
            "hooks": {"prestart": [{"path": "/bin/true"}]},
            "annotations": {"a": "b"},
            "linux": {"namespaces": [{"type": "pid"}]},
            "solaris": {"milestone": "m"},
            "windows": {"layerFolders": ["x"]},
            "vm": {"kernel": {"path": "/k"}},
            "zos": {},
            "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]
        })
        .to_string();
        let ours: Spec = serde_json::from_str::<RawSpec>(&text).unwrap().into();
        let theirs: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(ours, theirs);
        let minimal = r#"{"process": {"user": {"uid": 0, "gid": 0}, "cwd": "/"}}"#;
        let ours: Spec = serde_json::from_str::<RawSpec>(minimal).unwrap().into();
        let theirs: Spec = serde_json::from_str(minimal).unwrap();
        assert_eq!(ours, theirs);
        let empty: Spec = serde_json::from_str::<RawSpec>("{}").unwrap().into();
        assert_eq!(empty, serde_json::from_str::<Spec>("{}").unwrap());
    }

    #[test]
    fn bad_cpu_list_is_oci_specs_error() {
        let text =
            r#"{"user": {"uid": 0, "gid": 0}, "cwd": "/", "execCPUAffinity": {"final": "x"}}"#;
        let ours = serde_json::from_str::<RawProcess>(text).err().unwrap();
        let theirs = serde_json::from_str::<Process>(text).err().unwrap();
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[test]
    fn type_errors_name_oci_specs_structs() {
        for text in [
            "5",
            r#"{"process": 5}"#,
            r#"{"process": {"execCPUAffinity": 1}}"#,
        ] {
            let ours = serde_json::from_str::<RawSpec>(text)
                .err()
                .map(|e| e.to_string());
            let theirs = serde_json::from_str::<Spec>(text)
                .err()
                .map(|e| e.to_string());
            assert!(ours.is_some(), "{text}");
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
