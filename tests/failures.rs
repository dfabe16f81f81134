//! Bad bundles and bad calls: each fails with one clear line naming what is
//! wrong, exits non-zero, and leaves nothing behind.

mod common;

use common::*;
use serde_json::{json, Value};

/// (name, how to break the bundle, words the error line must hold)
type Case = (&'static str, fn(&mut Bundle), &'static [&'static str]);

fn set(b: &mut Bundle, pointer: &str, value: Value) {
    *b.config
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
}

const CASES: &[Case] = &[
    (
        "missing rootfs",
        |b| set(b, "/root/path", json!("nope")),
        &["root.path", "nope", "no such file or directory"],
    ),
    (
        "rootfs is a file",
        |b| {
            std::fs::write(b.dir.join("afile"), "x").unwrap();
            set(b, "/root/path", json!("afile"));
        },
        &["root.path", "not a directory"],
    ),
    (
        "unknown namespace",
        |b| {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "bogus"}));
        },
        &["config.json", "linux.namespaces[5].type", "bogus"],
    ),
    (
        "missing executable",
        |b| b.set_args(&["/bin/nosuch"]).write(),
        &["exec", "/bin/nosuch", "no such file or directory"],
    ),
    (
        "executable not in PATH",
        |b| b.set_args(&["nosuch-cmd"]).write(),
        &["nosuch-cmd", "not found in $PATH"],
    ),
    (
        "not executable",
        |b| {
            std::fs::write(b.rootfs().join("notexec"), "#!/bin/sh\n").unwrap();
            b.set_args(&["/notexec"]).write();
        },
        &["/notexec", "permission denied"],
    ),
    (
        // A missing cwd is made (as runc does); one below a file cannot be.
        "cwd cannot be made",
        |b| set(b, "/process/cwd", json!("/etc/passwd/sub")),
        &["cwd", "/etc/passwd/sub", "not a directory"],
    ),
    (
        "cwd is relative",
        |b| set(b, "/process/cwd", json!("tmp")),
        &["process.cwd", "absolute"],
    ),
    (
        "args missing",
        |b| set(b, "/process/args", json!([])),
        &["process.args"],
    ),
    (
        "wrong type",
        |b| set(b, "/process/user/uid", json!("zero")),
        &["process.user.uid"],
    ),
    (
        "negative number",
        |b| set(b, "/process/user/uid", json!(-1)),
        &["process.user.uid"],
    ),
    (
        "huge rlimit soft above hard",
        |b| {
            set(
                b,
                "/process/rlimits",
                json!([{"type": "RLIMIT_NOFILE", "soft": 18446744073709551615u64, "hard": 10}]),
            );
        },
        &["process.rlimits[0]", "soft"],
    ),
    (
        "hostname without uts",
        |b| {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "uts");
        },
        &["hostname", "uts"],
    ),
    (
        "host sysctl",
        |b| {
            set(b, "/linux", {
                let mut l = b.config["linux"].clone();
                l["sysctl"] = json!({"kernel.panic": "1"});
                l
            })
        },
        &["linux.sysctl.kernel.panic", "namespaced"],
    ),
    (
        "userns without mappings",
        |b| {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
        },
        &["uidMappings"],
    ),
    (
        "bind mount source missing",
        |b| {
            b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}));
        },
        &["mounts[6]", "/nonexistent-src", "no such file or directory"],
    ),
    (
        "unknown capability",
        |b| {
            b.config["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NOT_A_CAP"));
        },
        &["process.capabilities.bounding", "CAP_NOT_A_CAP"],
    ),
    (
        "terminal without console socket",
        |b| set(b, "/process/terminal", json!(true)),
        &["process.terminal", "console"],
    ),
    (
        "relative hook path",
        |b| {
            b.config["hooks"] = json!({"prestart": [{"path": "bin/true"}]});
        },
        &["hooks.prestart[0].path"],
    ),
];

#[test]
fn bad_bundles_fail_cleanly() {
    let env = TestEnv::new("bad");
    for (i, (name, breaker, needles)) in CASES.iter().enumerate() {
        if is_runc() && (name.contains("capability") || name.contains("rlimit")) {
            continue;
        }
        let mut b = env.bundle(&format!("b{i}"));
        breaker(&mut b);
        b.write();
        let id = env.id(&format!("case{i}"));
        let out = env.carte(&["create", "--bundle", b.path(), &id]);
        eprintln!("{name}: {}", out.stderr.trim());
        out.assert_fails_with(needles);
        env.assert_no_leaks(&id);
        // And the id is free again afterwards.
        assert!(env.state(&id).is_none(), "{name}: state exists");
    }
}

#[test]
fn malformed_and_missing_config() {
    let env = TestEnv::new("malformed");
    let b = env.bundle("b");
    std::fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.2.0\", \"process\": ",
    )
    .unwrap();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_fails_with(&["config.json", "EOF"]);
    env.assert_no_leaks(&id);
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_fails_with(&["config.json", "no such file or directory"]);
    env.carte(&["create", "--bundle", "/nonexistent-bundle", &id])
        .assert_fails_with(&["/nonexistent-bundle"]);
    env.assert_no_leaks(&id);
}

#[test]
fn a_failed_create_frees_the_id() {
    let env = TestEnv::new("retry");
    let mut b = env.bundle("b");
    b.set_args(&["/bin/nosuch"]).write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_fails_with(&["/bin/nosuch"]);
    b.set_args(&["true"]).write();
    let out = env.run(&b, &id);
    out.assert_ok();
    env.assert_no_leaks(&id);
}

/// A cwd with `..` above the root is made inside the rootfs (a missing
/// cwd is made, as runc does), never on the host.
#[test]
fn cwd_above_the_root_stays_inside_the_rootfs() {
    let env = TestEnv::new("cwdout");
    let mut b = env.bundle("b");
    b.set_args(&["pwd"]);
    b.config["process"]["cwd"] = json!("/../../../../../../../etc/carte-cwd-outside");
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "/etc/carte-cwd-outside");
    assert!(b.rootfs().join("etc/carte-cwd-outside").is_dir());
    assert!(!std::path::Path::new("/etc/carte-cwd-outside").exists());
    env.assert_no_leaks(&id);
}
