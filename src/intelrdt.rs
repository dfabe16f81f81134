//! linux.intelRdt (config-linux.md, IntelRdt): the container's CLOS group
//! in the resctrl filesystem, its schemata, and a MON group, as runc 1.4
//! does. The resctrl root is a parameter (`Resctrl::at`), so the rules are
//! tested against a directory tree shaped like /sys/fs/resctrl on hosts
//! without one; a create on such a host fails before anything is made.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RdtError {
    #[error("linux.intelRdt: no resctrl filesystem is mounted (Intel RDT needs one, at /sys/fs/resctrl)")]
    NotMounted,
    #[error("linux.intelRdt.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("linux.intelRdt: {op} {path}: {reason}")]
    Io {
        op: &'static str,
        path: String,
        reason: String,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RdtError + 'a {
    move |e| RdtError::Io {
        op,
        path: path.display().to_string(),
        reason: crate::sys::reason(&e),
    }
}

/// What create made in resctrl, kept in state.json for `exec` and delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The CLOS (CTRL_MON) group the container's processes join.
    pub dir: PathBuf,
    /// Made by create for a container without closID: removed by delete.
    /// A closID group is never removed (the spec), even one create made.
    #[serde(default)]
    pub made: bool,
    /// The container's MON group (enableMonitoring), removed by delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mon: Option<PathBuf>,
}

/// A mounted resctrl filesystem.
pub struct Resctrl {
    root: PathBuf,
}

impl Resctrl {
    /// The resctrl mount of carte's mount namespace.
    pub fn find() -> Result<Resctrl, RdtError> {
        let info = crate::sys::read_proc("/proc/self/mountinfo").unwrap_or_default();
        info.lines()
            .find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                let point = left.split(' ').nth(4)?;
                (right.split(' ').next()? == "resctrl").then(|| PathBuf::from(point))
            })
            .map(Resctrl::at)
            .ok_or(RdtError::NotMounted)
    }

    pub fn at(root: PathBuf) -> Resctrl {
        Resctrl { root }
    }

    /// The group of `rdt` for container `id`, made and set up: checked as
    /// the spec says before it writes anything.
    pub fn prepare(&self, rdt: &LinuxIntelRdt, id: &str) -> Result<Group, RdtError> {
        let lines = schemata_lines(rdt)?;
        let clos = clos_name(rdt)?;
        let dir = match clos {
            Some("/") => self.root.clone(),
            Some(c) => self.root.join(c),
            None => self.root.join(id),
        };
        let exists = dir.is_dir();
        if clos.is_some() && lines.is_empty() && !exists {
            return Err(RdtError::Invalid {
                field: "closID",
                reason: format!("no pre-configured group {} in resctrl", dir.display()),
            });
        }
        if exists && !lines.is_empty() && clos.is_some() {
            let current = fs::read_to_string(dir.join("schemata"))
                .map_err(io("read", &dir.join("schemata")))?;
            if let Some(missing) = lines.iter().find(|l| !schemata_has(&current, l)) {
                return Err(RdtError::Invalid {
                    field: "closID",
                    reason: format!(
                        "group {} exists with other schemata (it lacks {missing:?})",
                        dir.display()
                    ),
                });
            }
        }
        if !exists {
            fs::create_dir(&dir).map_err(io("create", &dir))?;
        }
        // A closID group stays, even one made here (the spec).
        let made = !exists && clos.is_none();
        let mut group = Group {
            dir: dir.clone(),
            made,
            mon: None,
        };
        let result = self.set_up(&mut group, &lines, rdt, id);
        if result.is_err() {
            group.remove();
        }
        result.map(|()| group)
    }

    fn set_up(
        &self,
        group: &mut Group,
        lines: &[String],
        rdt: &LinuxIntelRdt,
        id: &str,
    ) -> Result<(), RdtError> {
        // l3CacheSchema first, memBwSchema last (the spec's order), then
        // the schemata lines; each line is one write, as the kernel parses.
        let file = group.dir.join("schemata");
        for line in lines {
            // Append: resctrl parses each write alone; a plain file (the
            // tests' tree) keeps every line.
            let mut f = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&file)
                .map_err(io("open", &file))?;
            f.write_all(format!("{line}\n").as_bytes())
                .map_err(io("write", &file))?;
        }
        if rdt.enable_monitoring() == &Some(true) {
            let mon = group.dir.join("mon_groups").join(id);
            fs::create_dir(&mon).map_err(io("create the MON group", &mon))?;
            group.mon = Some(mon);
        }
        Ok(())
    }
}

/// What config validation checks, before looking for resctrl.
pub fn check(rdt: &LinuxIntelRdt) -> Result<(), RdtError> {
    schemata_lines(rdt)?;
    clos_name(rdt).map(drop)
}

fn clos_name(rdt: &LinuxIntelRdt) -> Result<Option<&str>, RdtError> {
    match rdt.clos_id().as_deref() {
        Some(c) if c != "/" && (c.is_empty() || c.contains('/') || c == "." || c == "..") => {
            Err(RdtError::Invalid {
                field: "closID",
                reason: format!("{c:?} is not a resctrl group name"),
            })
        }
        c => Ok(c),
    }
}

/// The lines to write, in order, each checked: no newline in any value,
/// memBwSchema starts with "MB:" (MUST), l3CacheSchema with "L3:" (SHOULD:
/// a warning at most, so taken as it is).
fn schemata_lines(rdt: &LinuxIntelRdt) -> Result<Vec<String>, RdtError> {
    let mut lines = Vec::new();
    let no_newline = |field: &'static str, v: &str| {
        if v.contains('\n') {
            Err(RdtError::Invalid {
                field,
                reason: "must not contain newlines".into(),
            })
        } else {
            Ok(())
        }
    };
    if let Some(l3) = rdt.l3_cache_schema().as_deref().filter(|s| !s.is_empty()) {
        no_newline("l3CacheSchema", l3)?;
        lines.push(l3.to_string());
    }
    if let Some(mb) = rdt.mem_bw_schema().as_deref().filter(|s| !s.is_empty()) {
        no_newline("memBwSchema", mb)?;
        if !mb.starts_with("MB:") {
            return Err(RdtError::Invalid {
                field: "memBwSchema",
                reason: format!("{mb:?} must start with \"MB:\""),
            });
        }
        lines.push(mb.to_string());
    }
    for s in rdt.schemata().iter().flatten() {
        no_newline("schemata", s)?;
        lines.push(s.to_string());
    }
    Ok(lines)
}

/// The kernel prints a schemata file with its own spacing and zero
/// padding ("L3:0=00ff;1=00ff"): compare resource by resource, domain by
/// domain, as numbers.
fn schemata_has(current: &str, line: &str) -> bool {
    let parse = |l: &str| -> Option<(String, Vec<(String, String)>)> {
        let (res, domains) = l.trim().split_once(':')?;
        let mut d: Vec<(String, String)> = domains
            .split(';')
            .filter_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                let v = v.trim().trim_start_matches('0');
                Some((k.trim().to_string(), v.to_lowercase()))
            })
            .collect();
        d.sort();
        Some((res.trim().to_string(), d))
    };
    let Some((res, want)) = parse(line) else {
        return false;
    };
    current
        .lines()
        .filter_map(parse)
        .any(|(r, have)| r == res && want.iter().all(|w| have.contains(w)))
}

impl Group {
    /// Puts `pid` in the group (and its MON group): its children to come
    /// are in it too.
    pub fn join(&self, pid: i32) -> Result<(), RdtError> {
        let mut dirs = vec![self.dir.as_path()];
        dirs.extend(self.mon.as_deref());
        for dir in dirs {
            let tasks = dir.join("tasks");
            fs::write(&tasks, pid.to_string()).map_err(io("write", &tasks))?;
        }
        Ok(())
    }

    /// Removes the MON group, and the CLOS group where create made it.
    pub fn remove(&self) {
        if let Some(mon) = &self.mon {
            let _ = fs::remove_dir(mon);
        }
        if self.made {
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree shaped like /sys/fs/resctrl: the root group, a pre-set
    /// group "gold", mon_groups in each.
    fn tree(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("carte-resctrl-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for d in ["", "mon_groups", "info", "gold", "gold/mon_groups"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("schemata"), "    L3:0=fffff\n    MB:0=100\n").unwrap();
        fs::write(root.join("gold/schemata"), "    L3:0=000ff\n    MB:0= 50\n").unwrap();
        root
    }

    fn rdt(v: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn no_clos_id_makes_a_group_named_for_the_container_and_delete_removes_it() {
        let root = tree("own");
        let r = Resctrl::at(root.clone());
        let g = r
            .prepare(
                &rdt(
                    serde_json::json!({"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=20",
                    "schemata": ["L2:0=3"]}),
                ),
                "ctr1",
            )
            .unwrap();
        assert_eq!(
            (g.dir.clone(), g.made, g.mon.clone()),
            (root.join("ctr1"), true, None)
        );
        // Written in the spec's order, one line a write.
        assert_eq!(
            fs::read_to_string(root.join("ctr1/schemata")).unwrap(),
            "L3:0=f\nMB:0=20\nL2:0=3\n"
        );
        g.join(42).unwrap();
        assert_eq!(fs::read_to_string(root.join("ctr1/tasks")).unwrap(), "42");
        // resctrl's own files go with the group; a plain tree needs help.
        for f in ["tasks", "schemata"] {
            fs::remove_file(root.join("ctr1").join(f)).unwrap();
        }
        g.remove();
        assert!(!root.join("ctr1").exists());
        // A MON group in a pre-set group: made, joined, removed; the
        // group stays.
        let g = r
            .prepare(
                &rdt(serde_json::json!({"closID": "gold", "enableMonitoring": true})),
                "ctr2",
            )
            .unwrap();
        let mon = root.join("gold/mon_groups/ctr2");
        assert_eq!(g.mon.as_deref(), Some(mon.as_path()));
        g.join(43).unwrap();
        assert_eq!(fs::read_to_string(mon.join("tasks")).unwrap(), "43");
        fs::remove_file(mon.join("tasks")).unwrap();
        fs::remove_file(root.join("gold/tasks")).unwrap();
        g.remove();
        assert!(!mon.exists() && root.join("gold").is_dir());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_clos_id_is_joined_compared_and_never_removed() {
        let root = tree("clos");
        let r = Resctrl::at(root.clone());
        // Pre-configured, no schemata asked: joined as it is.
        let g = r
            .prepare(&rdt(serde_json::json!({"closID": "gold"})), "c")
            .unwrap();
        assert_eq!((g.dir.clone(), g.made), (root.join("gold"), false));
        g.remove();
        assert!(
            root.join("gold").is_dir(),
            "a closID group is never removed"
        );
        // Asked schemata that match, whatever the kernel's padding.
        r.prepare(
            &rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50"})),
            "c",
        )
        .unwrap();
        // ... and that do not: an error, nothing written.
        let before = fs::read_to_string(root.join("gold/schemata")).unwrap();
        let err = r
            .prepare(
                &rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=f0"})),
                "c",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("other schemata"), "{err}");
        assert_eq!(
            fs::read_to_string(root.join("gold/schemata")).unwrap(),
            before
        );
        // A closID without schemata that does not exist: an error.
        let err = r
            .prepare(&rdt(serde_json::json!({"closID": "silver"})), "c")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no pre-configured group"), "{err}");
        assert!(!root.join("silver").exists());
        // A closID with schemata that does not exist: made, and kept.
        let g = r
            .prepare(
                &rdt(serde_json::json!({"closID": "bronze", "memBwSchema": "MB:0=10"})),
                "c",
            )
            .unwrap();
        assert!(!g.made && root.join("bronze/schemata").exists());
        g.remove();
        assert!(
            root.join("bronze").is_dir(),
            "a closID group is never removed"
        );
        // "/" is the root group, the default CLOS.
        let g = r
            .prepare(&rdt(serde_json::json!({"closID": "/"})), "c")
            .unwrap();
        assert_eq!((g.dir, g.made), (root.clone(), false));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn bad_values_are_refused_before_anything_is_made() {
        let root = tree("bad");
        let r = Resctrl::at(root.clone());
        for (v, field) in [
            (serde_json::json!({"memBwSchema": "L3:0=f"}), "memBwSchema"),
            (
                serde_json::json!({"l3CacheSchema": "L3:0=f\nMB:0=1"}),
                "l3CacheSchema",
            ),
            (serde_json::json!({"schemata": ["L3:0=f\n"]}), "schemata"),
            (serde_json::json!({"closID": "../x"}), "closID"),
        ] {
            let err = r.prepare(&rdt(v.clone()), "c").unwrap_err().to_string();
            assert!(err.contains(field), "{v}: {err}");
            assert!(!root.join("c").exists(), "{v}");
        }
        // A MON group that cannot be made undoes the CLOS group.
        let err = r
            .prepare(&rdt(serde_json::json!({"enableMonitoring": true})), "c")
            .unwrap_err()
            .to_string();
        assert!(err.contains("MON group"), "{err}");
        assert!(!root.join("c").exists());
        fs::remove_dir_all(root).unwrap();
    }
}
