//! config.json mounts, root.readonly and rootfsPropagation against
//! /proc/self/mountinfo.

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::tap::Tap;

/// One mountinfo line, the fields the checks need.
struct Entry {
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    /// The superblock's options (sync, dirsync, lazytime live there).
    super_opts: Vec<String>,
}

fn mountinfo() -> Vec<Entry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let p: Vec<&str> = post.split(' ').collect();
            Some(Entry {
                point: f.get(4)?.replace("\\040", " "),
                opts: f.get(5)?.split(',').map(String::from).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: p.first()?.to_string(),
                super_opts: p
                    .get(2)
                    .map(|o| o.split(',').map(String::from).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The propagation mountinfo shows: shared, slave, unbindable or private.
fn propagation(e: &Entry) -> &'static str {
    if e.optional.iter().any(|o| o == "unbindable") {
        "unbindable"
    } else if e.optional.iter().any(|o| o.starts_with("master:")) {
        "slave"
    } else if e.optional.iter().any(|o| o.starts_with("shared:")) {
        "shared"
    } else {
        "private"
    }
}

/// The last (topmost) mount at `point`.
fn find<'a>(all: &'a [Entry], point: &str) -> Option<&'a Entry> {
    find_below(all, point, 0)
}

/// The mount at `point` with `above` mounts on top of it.
fn find_below<'a>(all: &'a [Entry], point: &str, above: usize) -> Option<&'a Entry> {
    all.iter().rev().filter(|e| e.point == point).nth(above)
}

fn is_remount(m: &Value) -> bool {
    m["options"]
        .as_array()
        .is_some_and(|a| a.iter().any(|o| o == "remount"))
}

/// The destination cleaned lexically, as the runtime resolves it in the rootfs.
fn clean(dest: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in dest.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

pub fn check(c: &Value, t: &mut Tap) {
    let all = mountinfo();
    let Some(root) = find(&all, "/") else {
        t.check("/ is a mount point", false, "no mountinfo entry for /");
        return;
    };
    let ro = root.opts.iter().any(|o| o == "ro");
    t.eq(
        "root.readonly",
        ro,
        c["root"]["readonly"].as_bool().unwrap_or(false),
    );
    if let Some(p) = c["linux"]["rootfsPropagation"].as_str() {
        let mut want = p.trim_start_matches('r');
        // Making a mount that is not shared a slave leaves it private: a
        // slave root needs a shared mount under the bundle on the host.
        let host = c["annotations"]["org.carte.checker.host-rootfs-propagation"].as_str();
        if want == "slave" && host.is_some_and(|h| h != "shared") {
            want = "private";
        }
        t.eq("linux.rootfsPropagation", propagation(root), want);
    }
    let list: Vec<&Value> = c["mounts"].as_array().into_iter().flatten().collect();
    for (i, m) in list.iter().enumerate() {
        let dest = clean(m["destination"].as_str().unwrap_or(""));
        let desc = format!("mounts[{i}] {dest}");
        // Mounts are made in the listed order: a later mount at the same
        // place lies on top of this one (a remount changes it, adds none).
        let above = list[i + 1..]
            .iter()
            .filter(|n| clean(n["destination"].as_str().unwrap_or("")) == dest && !is_remount(n))
            .count();
        let Some(e) = find_below(&all, &dest, above) else {
            t.check(&desc, false, "not mounted");
            continue;
        };
        let opts: Vec<&str> = m["options"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let bind = opts.iter().any(|o| *o == "bind" || *o == "rbind");
        let typ = m["type"].as_str().unwrap_or("");
        if !bind && !typ.is_empty() && typ != "bind" && typ != "none" {
            let ok = match typ {
                // A v1 host gets a tmpfs with one mount per hierarchy.
                "cgroup" => ["cgroup", "cgroup2", "tmpfs"].contains(&e.fstype.as_str()),
                _ => e.fstype == typ,
            };
            t.check(
                &format!("{desc}: type {typ}"),
                ok,
                format!("mounted as {}", e.fstype),
            );
        }
        let has = |o: &str| e.opts.iter().any(|x| x == o);
        let sb = |o: &str| e.super_opts.iter().any(|x| x == o);
        let host_shared = c["annotations"]["org.carte.checker.host-rootfs-propagation"]
            .as_str()
            .is_none_or(|h| h == "shared");
        // The atime options set one mode: only the last one counts.
        // rnorelatime is not one: it clears MOUNT_ATTR_RELATIME, which is
        // 0, and so changes nothing (runc, crun, youki).
        const ATIME: [&str; 10] = [
            "atime",
            "noatime",
            "relatime",
            "norelatime",
            "strictatime",
            "nostrictatime",
            "rnoatime",
            "ratime",
            "rrelatime",
            "rstrictatime",
        ];
        let last_atime = opts
            .iter()
            .rposition(|o| ATIME.contains(o) || *o == "rnostrictatime");
        let mut bad = Vec::new();
        for (k, o) in opts.iter().enumerate() {
            if (ATIME.contains(o) || *o == "rnostrictatime") && Some(k) != last_atime {
                continue;
            }
            // The recursive options ("rro", ...) are checked on the mount
            // itself, as their plain forms.
            let ok = match *o {
                "ro" | "rro" => has("ro"),
                "rw" | "rrw" => has("rw"),
                "nosuid" | "nodev" | "noexec" | "noatime" | "nodiratime" | "relatime"
                | "nosymfollow" => has(o),
                "rnosuid" | "rnodev" | "rnoexec" | "rnoatime" | "rnodiratime" | "rrelatime"
                | "rnosymfollow" => has(&o[1..]),
                "suid" | "rsuid" => !has("nosuid"),
                "dev" | "rdev" => !has("nodev"),
                "exec" | "rexec" => !has("noexec"),
                "atime" => !has("noatime"),
                "diratime" | "rdiratime" => !has("nodiratime"),
                "symfollow" | "rsymfollow" => !has("nosymfollow"),
                "ratime" | "rnostrictatime" => has("relatime"),
                "strictatime" | "rstrictatime" => !has("noatime") && !has("relatime"),
                "sync" | "dirsync" | "lazytime" => sb(o),
                "async" => !sb("sync"),
                "nolazytime" => !sb("lazytime"),
                // Making a mount that nothing propagates to a slave leaves
                // it private (the host's mounts here are not shared).
                "slave" | "rslave" if !host_shared => {
                    matches!(propagation(e), "slave" | "private")
                }
                // A bind from a slave source (on a systemd host, where / is
                // shared and the runtime made it a slave) made shared is
                // both: "shared:N master:M".
                "shared" | "rshared" => e.optional.iter().any(|o| o.starts_with("shared:")),
                "slave" | "rslave" | "private" | "rprivate" | "unbindable" | "runbindable" => {
                    propagation(e) == o.trim_start_matches('r')
                }
                _ => true,
            };
            if !ok {
                bad.push(*o);
            }
        }
        t.check(
            &format!("{desc}: options {}", opts.join(",")),
            bad.is_empty(),
            format!(
                "not in effect: {bad:?} (mountinfo: {} {})",
                e.opts.join(","),
                e.optional.join(" ")
            ),
        );
        if typ == "tmpfs" {
            if let Some(mode) = opts.iter().find_map(|o| o.strip_prefix("mode=")) {
                let got = std::fs::metadata(&dest)
                    .map(|m| format!("{:o}", m.mode() & 0o7777))
                    .unwrap_or_default();
                let want = u32::from_str_radix(mode, 8)
                    .map(|m| format!("{m:o}"))
                    .unwrap_or_default();
                t.eq(&format!("{desc}: mode"), got, want);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_cleaned_lexically() {
        assert_eq!(clean("/a/b/../c"), "/a/c");
        assert_eq!(clean("a//./b/"), "/a/b");
        assert_eq!(clean("/../../x"), "/x");
    }
}
