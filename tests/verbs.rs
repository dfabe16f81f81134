//! list, ps, pause and resume.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn pause_freezes_and_resume_thaws() {
    let env = TestEnv::new("pause");
    let mut b = env.bundle("b");
    b.set_args(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.02; done",
    ]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let tick = b.rootfs().join("tmp/tick");
    let read = || std::fs::read_to_string(&tick).unwrap_or_default();
    // Running for sure before the pause (a loaded host starts it late).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    env.carte(&["pause", &id]).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("paused"));
    // May be empty: frozen between echo's truncate and its write.
    let frozen = read();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(read(), frozen, "the container kept running while paused");
    env.carte(&["pause", &id])
        .assert_fails_with(&[&id, "paused"]);
    env.carte(&["resume", &id]).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("running"));
    std::thread::sleep(Duration::from_millis(200));
    assert_ne!(read(), frozen, "the container did not resume");
    env.carte(&["resume", &id])
        .assert_fails_with(&[&id, "running"]);
    // A paused container can still be force-deleted.
    env.carte(&["pause", &id]).assert_ok();
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn list_shows_every_container() {
    let env = TestEnv::new("list");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    b.write();
    let running = env.id("running");
    let created = env.id("created");
    env.carte(&["run", "-d", "--bundle", b.path(), &running])
        .assert_ok();
    env.carte(&["create", "--bundle", b.path(), &created])
        .assert_ok();
    let out = env.carte(&["list"]);
    out.assert_ok();
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .any(|r| r[0] == created && r[2] == "created" && r[3] == b.path()));
    assert!(rows.iter().any(|r| r[0] == running && r[2] == "running"));
    let quiet = env.carte(&["list", "--quiet"]);
    let mut ids: Vec<&str> = quiet.stdout.lines().collect();
    ids.sort();
    let mut want = vec![created.as_str(), running.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let json: serde_json::Value =
        serde_json::from_str(&env.carte(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    for c in [&running, &created] {
        env.carte(&["delete", "--force", c]).assert_ok();
        env.assert_no_leaks(c);
    }
    let out = env.carte(&["list", "-q"]);
    assert_eq!(out.stdout, "");
}

#[test]
fn ps_lists_the_container_processes() {
    let env = TestEnv::new("ps");
    let mut b = env.bundle("b");
    b.set_args(&["sh", "-c", "sleep 1000 & sleep 1001 & wait"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    std::thread::sleep(Duration::from_millis(100));
    let json: serde_json::Value =
        serde_json::from_str(&env.carte(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3, "{json}");
    let table = env.carte(&["ps", &id]);
    table.assert_ok();
    assert!(table.stdout.starts_with("UID"), "{}", table.stdout);
    assert!(
        table.stdout.contains("sleep 1000") && table.stdout.contains("sleep 1001"),
        "{}",
        table.stdout
    );
    assert_eq!(table.stdout.lines().count(), 4);
    let custom = env.carte(&["ps", &id, "-o", "pid,comm"]);
    assert!(
        custom
            .stdout
            .lines()
            .filter(|l| l.contains("sleep"))
            .count()
            == 2,
        "{}",
        custom.stdout
    );
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn features_tells_the_truth() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("features");
    let out = env.carte(&["features"]);
    out.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["ociVersionMax"], "1.3.0");
    let seccomp = &doc["linux"]["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    for (list, item) in [
        ("actions", "SCMP_ACT_NOTIFY"),
        ("operators", "SCMP_CMP_MASKED_EQ"),
        ("archs", "SCMP_ARCH_X86"),
        ("knownFlags", "SECCOMP_FILTER_FLAG_TSYNC"),
    ] {
        let items = seccomp[list].as_array().unwrap();
        assert!(items.iter().any(|i| i == item), "{list}: {items:?}");
    }
    let namespaces = doc["linux"]["namespaces"].as_array().unwrap();
    assert!(namespaces.iter().any(|n| n == "time"));
    let options: Vec<&str> = doc["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(options.contains(&"rro") && options.contains(&"tmpcopyup"));
    // Intel RDT only where create can do it: with a resctrl mounted.
    let resctrl = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    assert_eq!(doc["linux"]["intelRdt"]["enabled"], resctrl);
    assert_eq!(doc["linux"]["intelRdt"]["schemata"], resctrl);
}

/// `carte --version` and `-v` in runc's shape: docker takes the name and
/// version from the line holding "version" and the commit from "commit:",
/// so no other line may hold "version".
#[test]
fn version_in_runc_shape() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("pkgver");
    for flag in ["--version", "-v"] {
        let out = env.carte(&[flag]);
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{flag}: {lines:?}");
        assert_eq!(
            lines[0],
            concat!("carte version ", env!("CARGO_PKG_VERSION"))
        );
        let commit = lines[1].strip_prefix("commit: ").expect("a commit line");
        assert!(!commit.is_empty() && !commit.contains(' '), "{commit:?}");
        assert_eq!(lines[2], "spec: 1.3.0");
        assert_eq!(lines[3], "seccomp: built in (seccompiler)");
        assert!(
            !lines[1..].iter().any(|l| l.contains("version")),
            "{lines:?}"
        );
    }
}
