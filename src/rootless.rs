//! Rootless mode: the decisions taken once, at the top of `create`, `run`
//! and `exec`, from the environment (carte's effective ids, whether it runs
//! in a user namespace, whether it can make a cgroup). The rest of carte
//! follows them; it never asks `geteuid` itself.
//!
//! What follows from them: no cgroup (the "none" cgroup driver) when none
//! is writable (`Rootless::cgroup_driver`), how the uid/gid maps are
//! written (`IdMaps`), and the config fields refused up front because they
//! need privilege (`check`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::cgroups::Driver;

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("--rootless: {0:?} is not true, false or auto")]
    Flag(String),
    #[error("--systemd-cgroup: not supported for a rootless container (it would need the user's systemd over the session bus)")]
    SystemdCgroup,
    /// A config field a rootless container cannot have: file, field, reason.
    #[error("{path}: {field}: {reason}")]
    Invalid {
        path: String,
        field: String,
        reason: String,
    },
}

/// The `--rootless` flag, as runc reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Auto,
    True,
    False,
}

impl Flag {
    pub fn parse(value: Option<&str>) -> Result<Flag, RootlessError> {
        match value {
            None | Some("auto") => Ok(Flag::Auto),
            Some("true") => Ok(Flag::True),
            Some("false") => Ok(Flag::False),
            Some(other) => Err(RootlessError::Flag(other.into())),
        }
    }
}

/// carte's environment, read once. The default is root mode, as carte
/// always ran.
#[derive(Debug, Clone, Default)]
pub struct Rootless {
    /// Running without the host's root (runc's rootless): no cgroup unless
    /// one is writable, and what needs privilege is refused up front.
    pub enabled: bool,
    pub euid: u32,
    pub egid: u32,
    /// carte runs in a user namespace that does not map every id (as
    /// under rootless podman, where it is root of podman's namespace).
    pub in_userns: bool,
}

impl Rootless {
    /// runc's rule for `auto`: rootless when not root, or when root of a
    /// user namespace that does not map the whole id range. `false` is
    /// root mode, as it always was.
    pub fn detect(flag: Flag) -> Rootless {
        // SAFETY: geteuid and getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let in_userns = flag != Flag::False
            && std::fs::read_to_string("/proc/self/uid_map")
                .map(|m| !maps_whole_range(&m))
                .unwrap_or(false);
        let enabled = match flag {
            Flag::False => false,
            Flag::True => true,
            Flag::Auto => euid != 0 || in_userns,
        };
        Rootless {
            enabled,
            euid,
            egid,
            in_userns,
        }
    }

    /// Which cgroup driver the container gets: as root, the one asked for;
    /// rootless, cgroupfs when carte can make the cgroup (a delegated,
    /// writable parent), else "none": no cgroup is made at all, and
    /// resources are refused (`check`). The systemd driver would need the
    /// user's systemd over the session bus, which carte does not speak.
    pub fn cgroup_driver(
        &self,
        asked: Driver,
        spec: &Spec,
        id: &str,
    ) -> Result<Driver, RootlessError> {
        if !self.enabled {
            return Ok(asked);
        }
        if asked == Driver::Systemd {
            return Err(RootlessError::SystemdCgroup);
        }
        let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        let path = crate::cgroups::path_for(cgroups_path.as_deref(), id);
        Ok(match crate::cgroups::can_create(&path) {
            true => Driver::Cgroupfs,
            false => Driver::None,
        })
    }

    /// Whether the container's cgroup gets device rules. Not rootless: v1's
    /// devices.allow and v2's eBPF program need privilege over the host.
    /// As runc, a rootless container has none; its device nodes are bind
    /// mounts of the host's, which the kernel already guards.
    pub fn device_rules(&self) -> bool {
        !self.enabled
    }

    /// Holds CAP_SETUID and CAP_SETGID over the ids it would map: root on
    /// the host, or root of the user namespace it runs in.
    fn privileged(&self) -> bool {
        self.euid == 0
    }

    /// How the maps of a new user namespace get written, worked out before
    /// anything is made so a missing helper or range is one early error.
    pub fn id_maps(&self, spec: &Spec, config: &Path) -> Result<IdMaps, RootlessError> {
        let linux = spec.linux().as_ref().expect("validated");
        let new_user = linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
        if !new_user || self.privileged() {
            return Ok(IdMaps::default());
        }
        let uid = self.writer(Kind::Uid, linux.uid_mappings().as_deref(), config)?;
        let gid = self.writer(Kind::Gid, linux.gid_mappings().as_deref(), config)?;
        Ok(IdMaps { uid, gid })
    }

    fn writer(
        &self,
        kind: Kind,
        maps: Option<&[LinuxIdMapping]>,
        config: &Path,
    ) -> Result<Writer, RootlessError> {
        let own = match kind {
            Kind::Uid => self.euid,
            Kind::Gid => self.egid,
        };
        let maps = maps.unwrap_or_default();
        if maps.is_empty() {
            return Ok(Writer::Kernel);
        }
        // The kernel lets an unprivileged process map its own id, once.
        if let [m] = maps {
            if m.host_id() == own && m.size() == 1 {
                return Ok(match kind {
                    Kind::Uid => Writer::Kernel,
                    Kind::Gid => Writer::DenySetgroups,
                });
            }
        }
        let invalid = |reason: String| RootlessError::Invalid {
            path: config.display().to_string(),
            field: kind.field().into(),
            reason,
        };
        let tool = find_in_path(kind.tool()).ok_or_else(|| {
            invalid(format!(
                "mapping more than the caller's own {kind} needs {} (package uidmap), which is not installed",
                kind.tool()
            ))
        })?;
        let user = user_name(self.euid);
        let text = std::fs::read_to_string(kind.file()).unwrap_or_default();
        let ranges = subid_ranges(&text, user.as_deref(), self.euid);
        if ranges.is_empty() {
            return Err(invalid(format!(
                "mapping more than the caller's own {kind} needs a range for {} in {}, which has none",
                user.unwrap_or_else(|| self.euid.to_string()),
                kind.file()
            )));
        }
        for m in maps {
            if !covered(m, own, &ranges) {
                return Err(invalid(format!(
                    "host {kind}s {}..{} are neither the caller's own nor in its ranges in {}",
                    m.host_id(),
                    u64::from(m.host_id()) + u64::from(m.size()),
                    kind.file()
                )));
            }
        }
        Ok(Writer::Helper(tool))
    }

    /// Refuses, each with one line naming the field, what a rootless
    /// container cannot have: resources without a cgroup, a lower
    /// oomScoreAdj, rlimits above carte's hard limits, sysctls of a
    /// namespace the container does not create, supplementary groups with
    /// setgroups denied, and (unless root of its namespace) no user
    /// namespace at all.
    pub fn check(
        &self,
        spec: &Spec,
        config: &Path,
        cgroup: bool,
        maps: &IdMaps,
    ) -> Result<(), RootlessError> {
        if !self.enabled {
            return Ok(());
        }
        let linux = spec.linux().as_ref().expect("validated");
        self.check_linux(linux, cgroup)
            .and_then(|()| {
                spec.process()
                    .as_ref()
                    .map_or(Ok(()), |p| check_process(p, maps))
            })
            .map_err(|(field, reason)| RootlessError::Invalid {
                path: config.display().to_string(),
                field,
                reason,
            })
    }

    /// The linux section: a user namespace, resources, sysctls.
    fn check_linux(&self, linux: &oci_spec::runtime::Linux, cgroup: bool) -> Result<(), Bad> {
        let plan = crate::namespaces::Plan::from_spec(linux);
        if !self.privileged() && !plan.has(LinuxNamespaceType::User) {
            return Err(bad(
                "linux.namespaces",
                "a rootless container needs a user namespace",
            ));
        }
        if !cgroup {
            if let Some(field) = linux.resources().as_ref().and_then(set_resource) {
                return Err(bad(
                    format!("linux.resources.{field}"),
                    "cannot be set: a rootless container without a writable (delegated) cgroup gets no cgroup",
                ));
            }
        }
        let created = |t| plan.create.contains(crate::namespaces::clone_flag(t));
        for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
            if crate::config::check_sysctl(key, &created).is_err() {
                return Err(bad(
                    format!("linux.sysctl.{key}"),
                    "a rootless container may only set sysctls of a namespace it creates",
                ));
            }
        }
        Ok(())
    }
}

/// A refused field and why.
type Bad = (String, String);

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Bad {
    (field.into(), reason.into())
}

/// The process: oomScoreAdj, rlimits, supplementary groups.
fn check_process(process: &oci_spec::runtime::Process, maps: &IdMaps) -> Result<(), Bad> {
    if let Some(adj) = process.oom_score_adj() {
        let own = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .unwrap_or(0);
        if adj < own {
            return Err(bad(
                "process.oomScoreAdj",
                format!("{adj} is below the caller's {own}: lowering it needs privilege a rootless container lacks"),
            ));
        }
    }
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        let resource = crate::process::rlimit_resource(rl.typ());
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(resource, &mut cur) } == 0 && rl.hard() > cur.rlim_max {
            return Err(bad(
                format!("process.rlimits[{i}]"),
                format!(
                    "hard limit {} is above the caller's {}: raising it needs privilege a rootless container lacks",
                    rl.hard(),
                    cur.rlim_max
                ),
            ));
        }
    }
    let extra_groups = process
        .user()
        .additional_gids()
        .as_ref()
        .is_some_and(|g| !g.is_empty());
    if extra_groups && maps.gid == Writer::DenySetgroups {
        return Err(bad(
            "process.user.additionalGids",
            "cannot be set when the gid map is the caller's own gid alone (setgroups is denied); map a range through /etc/subgid",
        ));
    }
    Ok(())
}

/// The state root without --root: `$XDG_RUNTIME_DIR/carte` where runc
/// would use `$XDG_RUNTIME_DIR/runc` (not root; or root of a user
/// namespace, as under rootless podman, which passes no --root, unless
/// USER is root), else /run/carte.
pub fn default_state_root() -> PathBuf {
    let system = PathBuf::from("/run/carte");
    let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) else {
        return system;
    };
    // SAFETY: geteuid cannot fail.
    let honour = unsafe { libc::geteuid() } != 0
        || (std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !maps_whole_range(&m))
            && std::env::var_os("USER").is_none_or(|u| u != "root"));
    if honour {
        PathBuf::from(dir).join("carte")
    } else {
        system
    }
}

/// True for a uid_map that maps every id (the initial user namespace).
fn maps_whole_range(uid_map: &str) -> bool {
    uid_map.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
    })
}

/// The first linux.resources field that asks for a limit; devices do
/// not count (runc ignores them without a cgroup, as the device nodes a
/// rootless container gets are bind mounts the kernel already guards).
fn set_resource(r: &oci_spec::runtime::LinuxResources) -> Option<String> {
    let v = serde_json::to_value(r).ok()?;
    v.as_object()?.iter().find_map(|(k, v)| {
        let empty = v.is_null()
            || v.as_object()
                .is_some_and(|o| o.values().all(|x| x.is_null()))
            || v.as_array().is_some_and(|a| a.is_empty());
        (k != "devices" && !empty).then(|| k.clone())
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Uid => "uid",
            Kind::Gid => "gid",
        })
    }
}

/// Who writes one of the maps of a new user namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Writer {
    /// carte writes /proc/<pid>/{uid,gid}_map itself (root, or an
    /// unprivileged uid_map of the caller's own uid).
    #[default]
    Kernel,
    /// The caller's own gid alone: the kernel wants setgroups "deny" first.
    DenySetgroups,
    /// The setuid helper (newuidmap, newgidmap), checked against
    /// /etc/subuid or /etc/subgid.
    Helper(PathBuf),
}

/// How the uid and gid maps of the container's new user namespace are
/// written. Root mode: both by carte, as always.
#[derive(Debug, Clone, Default)]
pub struct IdMaps {
    pub uid: Writer,
    pub gid: Writer,
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(tool))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The login name of `uid`, from /etc/passwd (carte is static: no NSS).
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// The (start, count) ranges /etc/subuid or /etc/subgid gives a user, by
/// name or by number.
fn subid_ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<(u64, u64)> {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != uid && Some(who) != name {
                return None;
            }
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// A mapping is the caller's own id, or lies in one of its ranges.
fn covered(m: &LinuxIdMapping, own: u32, ranges: &[(u64, u64)]) -> bool {
    let (start, end) = (
        u64::from(m.host_id()),
        u64::from(m.host_id()) + u64::from(m.size()),
    );
    (start == u64::from(own) && m.size() == 1)
        || ranges.iter().any(|(s, c)| start >= *s && end <= s + c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_range_is_the_initial_namespace() {
        assert!(maps_whole_range("         0          0 4294967295\n"));
        assert!(!maps_whole_range("         0       1000          1\n"));
        assert!(!maps_whole_range("0 1000 1\n1 100000 65536\n"));
    }

    #[test]
    fn flag_values() {
        assert_eq!(Flag::parse(None).unwrap(), Flag::Auto);
        assert_eq!(Flag::parse(Some("true")).unwrap(), Flag::True);
        assert_eq!(Flag::parse(Some("false")).unwrap(), Flag::False);
        assert!(Flag::parse(Some("yes")).is_err());
    }

    #[test]
    fn subid_ranges_by_name_or_number() {
        let text = "alice:100000:65536\n1001:200000:10\nbob:300000:5\n";
        assert_eq!(
            subid_ranges(text, Some("alice"), 1001),
            vec![(100000, 65536), (200000, 10)]
        );
        assert!(subid_ranges(text, Some("carol"), 7).is_empty());
    }

    #[test]
    fn mappings_must_be_own_or_in_range() {
        let m = |h: u32, n: u32| -> LinuxIdMapping {
            serde_json::from_value(serde_json::json!({"containerID": 0, "hostID": h, "size": n}))
                .unwrap()
        };
        let ranges = [(100000, 65536)];
        assert!(covered(&m(1001, 1), 1001, &ranges));
        assert!(covered(&m(100000, 65536), 1001, &ranges));
        assert!(!covered(&m(100000, 65537), 1001, &ranges));
        assert!(!covered(&m(0, 1), 1001, &ranges));
    }

    #[test]
    fn resources_that_ask_for_a_limit() {
        let r = |v: serde_json::Value| -> oci_spec::runtime::LinuxResources {
            serde_json::from_value(v).unwrap()
        };
        let devices_only = r(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}));
        assert_eq!(set_resource(&devices_only), None);
        let memory = r(serde_json::json!({"memory": {"limit": 1048576}}));
        assert_eq!(set_resource(&memory).as_deref(), Some("memory"));
        let empty_memory = r(serde_json::json!({"memory": {}}));
        assert_eq!(set_resource(&empty_memory), None);
    }
}
