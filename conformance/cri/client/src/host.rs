//! What the host shows of a pod: carte's state, mounts, cgroups, processes.

use std::path::Path;

/// `carte --root ROOT state ID`: the status carte reports.
pub fn carte_status(carte: &str, root: &str, id: &str) -> Result<String, String> {
    let out = std::process::Command::new(carte)
        .args(["--root", root, "state", id])
        .output()
        .map_err(|e| format!("run {carte}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("state JSON: {e}"))?;
    Ok(v["status"].as_str().unwrap_or("").to_string())
}

/// The mountinfo lines that name any of `ids`.
pub fn mounts_naming(ids: &[String]) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter(|l| ids.iter().any(|id| l.contains(id.as_str())))
        .map(|l| l.split(' ').nth(4).unwrap_or(l).to_string())
        .collect()
}

/// The cgroup directories, in every hierarchy, of a pod's cgroup parent.
pub fn cgroup_dirs(parent: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(hier) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for h in hier.flatten() {
        let dir = h.path().join(parent.trim_start_matches('/'));
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    found.push(c.path().display().to_string());
                }
            }
        }
    }
    found
}

/// PIDs whose cgroup lies under `parent`, or whose command line names one of `ids`.
pub fn processes_of(parent: &str, ids: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    let needle = format!("{parent}/");
    for p in procs.flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cgroup = std::fs::read_to_string(p.path().join("cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cgroup.contains(&needle) || ids.iter().any(|id| cmdline.contains(id.as_str())) {
            found.push(format!("{name} ({})", cmdline.trim()));
        }
    }
    found
}

/// Host interface names, from /proc/net/dev of a process in the host netns.
pub fn interfaces(proc_net_dev: &str) -> Vec<String> {
    proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect()
}

/// The interface the host's default route leaves by.
pub fn default_route_interface() -> Option<String> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[1] == "00000000")
        .map(|f| f[0].to_string())
}

/// A `Key:\tvalue` line of /proc/<pid>/status text.
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

/// A masked /proc file this kernel has, and that has content to hide.
pub fn masked_probe() -> &'static str {
    ["/proc/timer_list", "/proc/sched_debug", "/proc/kcore"]
        .into_iter()
        .find(|p| exists(p))
        .unwrap_or("/proc/timer_list")
}

pub fn exists(path: &str) -> bool {
    Path::new(path).exists()
}
