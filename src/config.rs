//! Loading and validating a bundle's config.json.
//!
//! Every error names the file, the field and the reason in one line, so a
//! user (or containerd, which shows the last log line) can fix the bundle.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxNamespaceType, Process, Spec};

mod raw;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bundle {path}: {}", crate::sys::reason(.source))]
    Bundle {
        path: String,
        source: std::io::Error,
    },
    #[error("open {path}: {}", crate::sys::reason(.source))]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {reason}")]
    Parse {
        path: String,
        field: String,
        reason: String,
    },
    #[error("{path}: {field}: {reason}")]
    Invalid {
        path: String,
        field: String,
        reason: String,
    },
}

/// A loaded, validated bundle with absolute paths.
#[derive(Debug)]
pub struct Bundle {
    pub path: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }
}

pub fn load(bundle: &Path) -> Result<Bundle, ConfigError> {
    let path = std::fs::canonicalize(bundle).map_err(|source| ConfigError::Bundle {
        path: bundle.display().to_string(),
        source,
    })?;
    let config_path = path.join("config.json");
    let shown = config_path.display().to_string();
    let text = std::fs::read(&config_path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let spec = from_bytes(&text, &shown)?;
    let invalid = |(field, reason): (String, String)| ConfigError::Invalid {
        path: shown.clone(),
        field,
        reason,
    };
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs = path.join(&root);
    match std::fs::metadata(&rootfs) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(invalid((
                "root.path".into(),
                format!("{} is not a directory", rootfs.display()),
            )))
        }
        Err(err) => {
            return Err(invalid((
                "root.path".into(),
                format!("{}: {}", rootfs.display(), crate::sys::reason(&err)),
            )))
        }
    }
    Ok(Bundle { path, rootfs, spec })
}

/// Parses and validates the bytes of a config.json (`shown` names it in
/// errors). No filesystem access: `load` adds the bundle's paths, and the
/// fuzzer (conformance/fuzz) calls this with hostile bytes.
pub fn from_bytes(text: &[u8], shown: &str) -> Result<Spec, ConfigError> {
    let spec = parse(text).map_err(|(field, reason)| ConfigError::Parse {
        path: shown.into(),
        field,
        reason,
    })?;
    validate(&spec).map_err(|(field, reason)| ConfigError::Invalid {
        path: shown.into(),
        field,
        reason,
    })?;
    Ok(spec)
}

/// Parses and checks the process object of `exec --process FILE`
/// (`shown` names the file in errors). No filesystem access.
pub fn process_from_bytes(text: &[u8], shown: &str) -> Result<Process, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let raw: raw::RawProcess =
        serde_path_to_error::deserialize(de).map_err(|err| ConfigError::Parse {
            path: shown.into(),
            field: json_field(err.path()),
            reason: err.into_inner().to_string(),
        })?;
    warn_unknown_capabilities(raw.unknown_capabilities("capabilities"));
    let process: Process = raw.into();
    check_process_args(&process).map_err(|(field, reason)| ConfigError::Invalid {
        path: shown.into(),
        field,
        reason,
    })?;
    Ok(process)
}

/// What every process needs: a command and an absolute working directory.
pub fn check_process_args(process: &Process) -> Result<(), Invalid> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bad("args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(bad(
            "cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    crate::process::sched::validate(process)
}

/// Parses config.json, naming the JSON path of a bad field.
pub fn parse(text: &[u8]) -> Result<Spec, (String, String)> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let raw: raw::RawSpec = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = json_field(err.path());
        let reason = seccomp_reason(&field, &err.into_inner().to_string());
        (field, reason)
    })?;
    if raw.lacks_user() {
        return Err(("process".into(), "missing field `user`".into()));
    }
    warn_unknown_capabilities(raw.unknown_capabilities());
    let mut spec: Spec = raw.into();
    // Text after the object is a broken file, not something to ignore.
    de.end()
        .map_err(|e| ("(json)".to_string(), e.to_string()))?;
    forget_pids_without_limit(&mut spec, text);
    empty_namespace_paths_are_none(&mut spec);
    Ok(spec)
}

/// config.md (Linux process): a capability that "cannot be mapped to a
/// relevant kernel interface ... MUST be logged as a warning"; the rest
/// are granted.
fn warn_unknown_capabilities(unknown: Vec<(String, String)>) {
    for (field, name) in unknown {
        crate::logging::warn(&format!(
            "{field}: {name:?} is no capability this kernel interface knows; left out"
        ));
    }
}

/// A namespace with `"path": ""` has no path (a new namespace), as Go's
/// zero value reads for runc.
fn empty_namespace_paths_are_none(spec: &mut Spec) {
    let Some(namespaces) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    else {
        return;
    };
    for ns in namespaces {
        if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            ns.set_path(None);
        }
    }
}

/// oci-spec reads "pids": {} (limit is OPTIONAL) as a limit of 0, which is
/// a real limit: without a limit in the text, there is no pids object.
fn forget_pids_without_limit(spec: &mut Spec, text: &[u8]) {
    let zero = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.pids().as_ref())
        .is_some_and(|p| p.limit() == 0);
    if !zero {
        return;
    }
    let raw: serde_json::Value = serde_json::from_slice(text).unwrap_or_default();
    if raw.pointer("/linux/resources/pids/limit").is_some() {
        return;
    }
    if let Some(linux) = spec.linux_mut() {
        if let Some(mut resources) = linux.resources().clone() {
            resources.set_pids(None);
            linux.set_resources(Some(resources));
        }
    }
}

/// The JSON path of a bad field; "?" and "." mean the JSON itself is
/// broken, not one field.
fn json_field(path: &serde_path_to_error::Path) -> String {
    match path.to_string() {
        field if field == "." || field == "?" => "(json)".to_string(),
        field => field,
    }
}

/// serde words an unknown seccomp name as "unknown variant `X`, expected
/// one of ..." (thirty archs long); say what the name is instead.
fn seccomp_reason(field: &str, reason: &str) -> String {
    let Some(rest) = field.strip_prefix("linux.seccomp.") else {
        return reason.to_string();
    };
    let Some(name) = reason
        .strip_prefix("unknown variant `")
        .and_then(|r| r.split('`').next())
    else {
        return reason.to_string();
    };
    let what = if rest.ends_with("action") || rest == "defaultAction" {
        "action"
    } else if rest.ends_with(".op") {
        "operator"
    } else if rest.starts_with("architectures") {
        "architecture"
    } else if rest.starts_with("flags") {
        "flag"
    } else {
        return reason.to_string();
    };
    format!("unknown {what} {name:?}")
}

type Invalid = (String, String);

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    (field.into(), reason.into())
}

/// The checks the runtime-spec asks of a runtime before it creates anything.
pub fn validate(spec: &Spec) -> Result<(), Invalid> {
    check_oci_version(spec.version())?;
    if spec
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(""))
    {
        return Err(bad("annotations", "a key is empty"));
    }
    if spec.root().is_none() {
        return Err(bad("root", "missing"));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| bad("process", "missing"))?;
    check_process_args(process).map_err(|(field, reason)| (format!("process.{field}"), reason))?;
    check_exec_strings(
        "process.args",
        process.args().as_deref().unwrap_or_default(),
    )?;
    check_exec_strings("process.env", process.env().as_deref().unwrap_or_default())?;
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(bad(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    if let Some(rlimits) = process.rlimits() {
        let mut seen = HashSet::new();
        for (i, rlimit) in rlimits.iter().enumerate() {
            if !seen.insert(format!("{:?}", rlimit.typ())) {
                return Err(bad(
                    format!("process.rlimits[{i}].type"),
                    format!("{:?} is given twice", rlimit.typ()),
                ));
            }
            if rlimit.soft() > rlimit.hard() {
                return Err(bad(
                    format!("process.rlimits[{i}]"),
                    "soft limit is above the hard limit",
                ));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| bad("linux", "missing"))?;
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(bad(
                format!("linux.namespaces[{i}].type"),
                format!("{} is given twice", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(bad(
                    format!("linux.namespaces[{i}].path"),
                    format!("{path:?} is not an absolute path"),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_userns = namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if new_userns && !maps {
        return Err(bad(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if maps && !has(LinuxNamespaceType::User) {
        return Err(bad("linux.uidMappings", "mappings need a user namespace"));
    }
    for (field, name) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        check_uts_name(field, name.as_deref().unwrap_or_default())?;
    }
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        check_id_maps(field, maps)?;
    }
    if let Some(path) = linux.cgroups_path() {
        if path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(bad(
                "linux.cgroupsPath",
                format!("{path:?} must not contain \"..\""),
            ));
        }
    }
    if let Some(memory) = linux.resources().as_ref().and_then(|r| r.memory().as_ref()) {
        for (name, value) in [
            ("limit", memory.limit()),
            ("reservation", memory.reservation()),
            ("swap", memory.swap()),
        ] {
            if value.is_some_and(|v| v < -1) {
                return Err(bad(
                    format!("linux.resources.memory.{name}"),
                    format!("{} is neither -1 (unlimited) nor a size", value.unwrap()),
                ));
            }
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(bad(
            "hostname",
            "setting the hostname needs a uts namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(bad(
            "domainname",
            "setting the domainname needs a uts namespace",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        let creates_time = namespaces
            .iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::Time && ns.path().is_none());
        if !creates_time {
            return Err(bad(
                "linux.timeOffsets",
                "offsets need a new time namespace",
            ));
        }
        for clock in linux.time_offsets().as_ref().unwrap().keys() {
            if clock != "monotonic" && clock != "boottime" {
                return Err(bad(
                    format!("linux.timeOffsets.{clock}"),
                    "only monotonic and boottime have offsets",
                ));
            }
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            check_sysctl(key, &has).map_err(|reason| bad(format!("linux.sysctl.{key}"), reason))?;
        }
        // Two values for one name, as runc and crun refuse.
        for (field, name) in [
            ("hostname", spec.hostname()),
            ("domainname", spec.domainname()),
        ] {
            let key = format!("kernel.{field}");
            if sysctl.contains_key(&key) && name.as_ref().is_some_and(|n| !n.is_empty()) {
                return Err(bad(
                    format!("linux.sysctl.{key}"),
                    format!("conflicts with the {field:?} field"),
                ));
            }
        }
    }
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        if mount.destination().as_os_str().is_empty() {
            return Err(bad(format!("mounts[{i}].destination"), "must not be empty"));
        }
        check_idmap(i, mount, linux)?;
    }
    if let Some(hooks) = spec.hooks() {
        let kinds: [(&str, &Option<Vec<Hook>>); 6] = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (kind, list) in kinds {
            for (i, hook) in list.iter().flatten().enumerate() {
                if !hook.path().is_absolute() {
                    return Err(bad(
                        format!("hooks.{kind}[{i}].path"),
                        format!("{:?} is not an absolute path", hook.path()),
                    ));
                }
                if hook.timeout().is_some_and(|t| t <= 0) {
                    return Err(bad(
                        format!("hooks.{kind}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, path) in paths.iter().flatten().enumerate() {
            if !path.starts_with('/') {
                return Err(bad(
                    format!("{field}[{i}]"),
                    format!("{path:?} is not an absolute path"),
                ));
            }
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        crate::seccomp::validate(seccomp)?;
    }
    if let Some(m) = linux.memory_policy() {
        crate::process::sched::validate_memory_policy(m)
            .map_err(|(field, reason)| (format!("linux.{field}"), reason))?;
    }
    if let Err(e) = crate::lsm::check(process, linux.mount_label().as_deref()) {
        return Err(bad("process.apparmorProfile", e.to_string()));
    }
    if let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) {
        // Moved into the container's own network namespace: never the host's.
        if !has(LinuxNamespaceType::Network) {
            return Err(bad(
                "linux.netDevices",
                "the container has no network namespace of its own (add one to linux.namespaces)",
            ));
        }
        crate::netdev::validate(devices)?;
    }
    if let Some(rdt) = linux.intel_rdt() {
        crate::intelrdt::check(rdt).map_err(|e| match e {
            crate::intelrdt::RdtError::Invalid { field, reason } => {
                (format!("linux.intelRdt.{field}"), reason)
            }
            e => ("linux.intelRdt".into(), e.to_string()),
        })?;
    }
    Ok(())
}

/// ociVersion is SemVer 2.0.0 (MAJOR.MINOR.PATCH, then -pre-release and
/// +build); carte reads the 1.x series, which is compatible within itself.
fn check_oci_version(version: &str) -> Result<(), Invalid> {
    let bad_version = || bad("ociVersion", format!("{version:?} is not a SemVer version"));
    let (rest, build) = match version.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let ident_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let numeric_ok = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric_ok(p)) {
        return Err(bad_version());
    }
    for ids in [pre, build].into_iter().flatten() {
        if !ids.split('.').all(ident_ok) {
            return Err(bad_version());
        }
    }
    if parts[0] != "1" {
        return Err(bad(
            "ociVersion",
            format!("{version}: carte supports the 1.x runtime-spec"),
        ));
    }
    Ok(())
}

/// The kernel's limit for one argument or environment string, its NUL
/// included (MAX_ARG_STRLEN): a longer one fails execve with E2BIG.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// args and env reach execve as C strings: no NUL inside, none too long.
fn check_exec_strings(field: &str, list: &[String]) -> Result<(), Invalid> {
    for (i, text) in list.iter().enumerate() {
        if text.contains('\0') {
            return Err(bad(format!("{field}[{i}]"), "contains a NUL byte"));
        }
        if text.len() >= MAX_ARG_STRLEN {
            return Err(bad(
                format!("{field}[{i}]"),
                format!(
                    "{} bytes, over the kernel's limit of {} for one string",
                    text.len(),
                    MAX_ARG_STRLEN - 1
                ),
            ));
        }
    }
    Ok(())
}

/// hostname and domainname: at most 64 bytes (the uts fields), no NUL.
fn check_uts_name(field: &str, name: &str) -> Result<(), Invalid> {
    if name.contains('\0') {
        return Err(bad(field, "contains a NUL byte"));
    }
    if name.len() > 64 {
        return Err(bad(
            field,
            format!("{} bytes, over the kernel's limit of 64", name.len()),
        ));
    }
    Ok(())
}

/// Only namespaced sysctls may be set, and only when the container has the
/// namespace they belong to; anything else would change the host.
pub(crate) fn check_sysctl(
    key: &str,
    has: &dyn Fn(LinuxNamespaceType) -> bool,
) -> Result<(), String> {
    const IPC_KEYS: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.is_empty() || key.contains("..") || key.contains('/') || key.starts_with('.') {
        return Err("not a sysctl name".into());
    }
    let need = |ns: LinuxNamespaceType, name: &str| {
        if has(ns) {
            Ok(())
        } else {
            Err(format!("needs a {name} namespace"))
        }
    };
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        need(LinuxNamespaceType::Ipc, "ipc")
    } else if key.starts_with("net.") {
        need(LinuxNamespaceType::Network, "network")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        need(LinuxNamespaceType::Uts, "uts")
    } else {
        Err("not a namespaced sysctl; it would change the host".into())
    }
}

/// Each range of a uid or gid map has a size and stays within 32 bits.
fn check_id_maps(
    field: &str,
    maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>,
) -> Result<(), Invalid> {
    for (i, map) in maps.iter().flatten().enumerate() {
        let end = |start: u32| u64::from(start) + u64::from(map.size());
        if map.size() == 0 {
            return Err(bad(
                format!("{field}[{i}].size"),
                "must be greater than zero",
            ));
        }
        if end(map.host_id()) > 1 << 32 || end(map.container_id()) > 1 << 32 {
            return Err(bad(
                format!("{field}[{i}]"),
                "the range runs past the largest id (4294967295)",
            ));
        }
    }
    Ok(())
}

/// An idmapped mount (config.md: `idmap`, `ridmap`, the mount's
/// uidMappings and gidMappings): both maps or neither; without them, the
/// container's user namespace's, or an error; bind and tmpfs only (the
/// mounts carte can make detached, see rootfs::idmap).
fn check_idmap(
    i: usize,
    mount: &oci_spec::runtime::Mount,
    linux: &oci_spec::runtime::Linux,
) -> Result<(), Invalid> {
    if !crate::rootfs::idmap::wants_idmap(mount) {
        return Ok(());
    }
    let given = |m: &Option<Vec<_>>| m.as_ref().is_some_and(|m: &Vec<_>| !m.is_empty());
    let (uid, gid) = (given(mount.uid_mappings()), given(mount.gid_mappings()));
    if uid != gid {
        let (missing, other) = if uid {
            ("gidMappings", "uidMappings")
        } else {
            ("uidMappings", "gidMappings")
        };
        return Err(bad(
            format!("mounts[{i}].{missing}"),
            format!("{other} must come with {missing}"),
        ));
    }
    check_id_maps(&format!("mounts[{i}].uidMappings"), mount.uid_mappings())?;
    check_id_maps(&format!("mounts[{i}].gidMappings"), mount.gid_mappings())?;
    let options = mount.options().as_deref().unwrap_or_default();
    let typ = mount.typ().as_deref().unwrap_or_default();
    if !(typ == "bind" || typ == "tmpfs" || crate::rootfs::options::parse(options).is_bind()) {
        return Err(bad(
            format!("mounts[{i}].type"),
            format!("{typ:?}: only bind and tmpfs mounts can be idmapped"),
        ));
    }
    let has_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User);
    if !uid && !has_userns {
        let opt = options
            .iter()
            .find(|o| *o == "idmap" || *o == "ridmap")
            .map_or("idmap", String::as_str);
        return Err(bad(
            format!("mounts[{i}].options"),
            format!("{opt} needs uidMappings and gidMappings on the mount, or a user namespace of the container to take them from"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(v: &serde_json::Value) -> Result<(), (String, String)> {
        let spec = parse(v.to_string().as_bytes())?;
        validate(&spec)
    }

    #[test]
    fn minimal_is_valid() {
        assert_eq!(check(&base()), Ok(()));
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let (field, reason) = check(&v).unwrap_err();
        assert_eq!(field, "linux.namespaces[1].type");
        assert!(reason.contains("bogus"), "{reason}");
    }

    #[test]
    fn unknown_capability_is_left_out() {
        let mut v = base();
        v["process"]["capabilities"] =
            serde_json::json!({"bounding": ["CAP_NOPE", "CAP_KILL", "kill"], "ambient": ["x"]});
        let spec = parse(v.to_string().as_bytes()).unwrap();
        assert!(validate(&spec).is_ok());
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        let kill = oci_spec::runtime::Capability::Kill;
        assert_eq!(caps.bounding().clone().unwrap(), [kill].into());
        assert_eq!(caps.ambient().clone().unwrap(), Default::default());
        assert_eq!(caps.effective(), &None);
    }

    #[test]
    fn malformed_json() {
        assert!(parse(b"{not json").is_err());
    }

    #[test]
    fn relative_cwd_and_empty_args() {
        let mut v = base();
        v["process"]["cwd"] = "tmp".into();
        assert_eq!(check(&v).unwrap_err().0, "process.cwd");
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(check(&v).unwrap_err().0, "process.args");
    }

    #[test]
    fn userns_needs_mappings() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        assert_eq!(check(&v).unwrap_err().0, "linux.uidMappings");
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        v["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert_eq!(check(&v), Ok(()));
    }

    #[test]
    fn oci_version_is_semver_of_the_1_series() {
        for ok in ["1.0.0", "1.2.0", "1.0.2-dev", "1.3.0-rc.1+build.5"] {
            assert_eq!(check_oci_version(ok), Ok(()), "{ok}");
        }
        for bad_v in ["1.0", "v1.0.0", "1.02.0", "1.0.0-", "1.0.0+", "", "x.y.z"] {
            assert!(
                check_oci_version(bad_v).unwrap_err().1.contains("SemVer"),
                "{bad_v}"
            );
        }
        assert!(check_oci_version("2.0.0").unwrap_err().1.contains("1.x"));
    }

    #[test]
    fn pids_without_a_limit_is_no_pids_object() {
        let pids = |resources: serde_json::Value| -> Option<oci_spec::runtime::LinuxPids> {
            let mut v = base();
            v["linux"]["resources"] = resources;
            let spec = parse(v.to_string().as_bytes()).unwrap();
            spec.linux().clone()?.resources().clone()?.pids().to_owned()
        };
        assert!(pids(serde_json::json!({"pids": {}})).is_none());
        assert_eq!(
            pids(serde_json::json!({"pids": {"limit": 0}}))
                .unwrap()
                .limit(),
            0
        );
    }

    #[test]
    fn idmapped_mounts_need_usable_mappings() {
        let mut v = base();
        let bind = |extra: serde_json::Value| {
            let mut m = serde_json::json!({"destination": "/m", "type": "bind", "source": "/tmp",
                "options": ["rbind", "ridmap"]});
            m.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::json!([m])
        };
        let one = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        // No mappings and no user namespace: an error naming the option.
        v["mounts"] = bind(serde_json::json!({}));
        let (field, reason) = check(&v).unwrap_err();
        assert_eq!(field, "mounts[0].options");
        assert!(reason.contains("ridmap"), "{reason}");
        // Mappings on the mount: fine without a user namespace.
        v["mounts"] = bind(serde_json::json!({"uidMappings": one, "gidMappings": one}));
        assert_eq!(check(&v), Ok(()));
        // One map without the other.
        v["mounts"] = bind(serde_json::json!({"uidMappings": one}));
        assert_eq!(check(&v).unwrap_err().0, "mounts[0].gidMappings");
        v["mounts"] = bind(serde_json::json!({"gidMappings": one}));
        assert_eq!(check(&v).unwrap_err().0, "mounts[0].uidMappings");
        // A range of size 0.
        let zero = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
        v["mounts"] = bind(serde_json::json!({"uidMappings": one, "gidMappings": zero}));
        assert_eq!(check(&v).unwrap_err().0, "mounts[0].gidMappings[0].size");
        // Not a bind or a tmpfs.
        v["mounts"] = serde_json::json!([{"destination": "/p", "type": "proc", "source": "proc",
            "options": ["idmap"], "uidMappings": one, "gidMappings": one}]);
        assert_eq!(check(&v).unwrap_err().0, "mounts[0].type");
        // idmap alone in a container with a user namespace: its mappings.
        v["mounts"] = bind(serde_json::json!({}));
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "user"}]);
        v["linux"]["uidMappings"] = one.clone();
        v["linux"]["gidMappings"] = one.clone();
        assert_eq!(check(&v), Ok(()));
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"});
        assert_eq!(check(&v).unwrap_err().0, "linux.sysctl.kernel.panic");
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(&v).unwrap_err().1.contains("network"));
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network"}));
        assert_eq!(check(&v), Ok(()));
    }

    #[test]
    fn empty_namespace_path_is_no_path() {
        let mut v = base();
        v["linux"]["namespaces"][0]["path"] = "".into();
        let spec = parse(v.to_string().as_bytes()).unwrap();
        assert!(validate(&spec).is_ok());
        let ns = &spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()[0];
        assert_eq!(ns.path(), &None);
    }

    #[test]
    fn uts_sysctl_conflicts_with_the_field() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "uts"}));
        v["linux"]["sysctl"] = serde_json::json!({"kernel.hostname": "a"});
        assert!(check(&v).is_ok());
        v["hostname"] = "b".into();
        assert_eq!(check(&v).unwrap_err().0, "linux.sysctl.kernel.hostname");
        v["linux"]["sysctl"] = serde_json::json!({"kernel.domainname": "a"});
        assert!(check(&v).is_ok());
        v["domainname"] = "c".into();
        assert_eq!(check(&v).unwrap_err().0, "linux.sysctl.kernel.domainname");
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = "box".into();
        assert_eq!(check(&v).unwrap_err().0, "hostname");
    }

    #[test]
    fn hook_paths_absolute() {
        let mut v = base();
        v["hooks"] = serde_json::json!({"poststop": [{"path": "bin/true"}]});
        assert_eq!(check(&v).unwrap_err().0, "hooks.poststop[0].path");
    }

    #[test]
    fn seccomp_names_are_checked() {
        let mut v = base();
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
        });
        assert_eq!(check(&v), Ok(()));
        let cases = [
            (
                "/syscalls/0/action",
                "SCMP_ACT_FOO",
                "linux.seccomp.syscalls[0].action",
                "unknown action \"SCMP_ACT_FOO\"",
            ),
            (
                "/defaultAction",
                "SCMP_ACT_NOPE",
                "linux.seccomp.defaultAction",
                "unknown action \"SCMP_ACT_NOPE\"",
            ),
            (
                "/architectures",
                "",
                "linux.seccomp.architectures[0]",
                "unknown architecture \"SCMP_ARCH_Z80\"",
            ),
            (
                "/flags",
                "",
                "linux.seccomp.flags[0]",
                "unknown flag \"SECCOMP_FILTER_FLAG_X\"",
            ),
        ];
        for (pointer, value, field, reason) in cases {
            let mut v = v.clone();
            let sc = &mut v["linux"]["seccomp"];
            match pointer {
                "/architectures" => sc["architectures"] = serde_json::json!(["SCMP_ARCH_Z80"]),
                "/flags" => sc["flags"] = serde_json::json!(["SECCOMP_FILTER_FLAG_X"]),
                p => *sc.pointer_mut(p).unwrap() = value.into(),
            }
            assert_eq!(check(&v).unwrap_err(), (field.into(), reason.into()));
        }
        let mut v = v.clone();
        v["linux"]["seccomp"]["syscalls"][0]["args"] =
            serde_json::json!([{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]);
        assert_eq!(
            check(&v).unwrap_err(),
            (
                "linux.seccomp.syscalls[0].args[0].op".into(),
                "unknown operator \"SCMP_CMP_ABOUT\"".into()
            )
        );
    }

    #[test]
    fn process_file() {
        let ok = br#"{"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#;
        assert!(process_from_bytes(ok, "p.json").is_ok());
        for (text, want) in [
            (&br#"{"args": 3}"#[..], "p.json: args: invalid type"),
            (b"{", "p.json: (json): EOF"),
            (
                br#"{"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#,
                "p.json: args: must not be empty",
            ),
            (
                br#"{"args": ["sh"], "cwd": "x", "user": {"uid": 0, "gid": 0}}"#,
                "p.json: cwd: \"x\" is not an absolute path",
            ),
        ] {
            let err = process_from_bytes(text, "p.json").unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{err:?} does not start with {want:?}"
            );
        }
    }

    #[test]
    fn duplicate_namespace() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "pid"}));
        assert_eq!(check(&v).unwrap_err().0, "linux.namespaces[2].type");
    }
}
