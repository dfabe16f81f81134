//! The six hook kinds: when they run, in which namespace, with what state.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const HOOK: &str = "#!/bin/sh\n# $1: hook kind, $2: log file\nstate=$(cat)\necho \"$1 $HOOKVAR $(readlink /proc/self/ns/mnt) $state\" >> \"$2\"\n";

fn write_script(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn hook(path: &str, kind: &str, log: &str) -> Value {
    json!({"path": path, "args": ["hook.sh", kind, log], "env": ["HOOKVAR=set"]})
}

#[test]
fn every_kind_runs_once_in_order_with_its_state() {
    let env = TestEnv::new("hooks");
    let mut b = env.bundle("b");
    let host_hook = b.dir.join("hook.sh");
    write_script(&host_hook, HOOK);
    // startContainer resolves in the container: its script lives in the rootfs.
    write_script(&b.rootfs().join("hook.sh"), HOOK);
    let host_log = b.rootfs().join("hooks.log");
    let (h, log) = (host_hook.to_str().unwrap(), host_log.to_str().unwrap());
    b.config["hooks"] = json!({
        "prestart": [hook(h, "prestart", log)],
        "createRuntime": [hook(h, "createRuntime", log)],
        "createContainer": [hook(h, "createContainer", log)],
        "startContainer": [hook("/hook.sh", "startContainer", "/hooks.log")],
        "poststart": [hook(h, "poststart", log)],
        "poststop": [hook(h, "poststop", log)]
    });
    b.set_args(&["sleep", "1000"]);
    b.write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    env.carte(&["start", &id]).assert_ok();
    env.carte(&["kill", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);

    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let text = std::fs::read_to_string(&host_log).unwrap();
    let lines: Vec<(&str, &str, &str, Value)> = text
        .lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let (kind, var, mnt) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            (
                kind,
                var,
                mnt,
                serde_json::from_str(parts.next().unwrap()).unwrap(),
            )
        })
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l.0).collect();
    assert_eq!(
        kinds,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let expect = [
        ("prestart", "created", false),
        ("createRuntime", "created", false),
        ("createContainer", "created", true),
        ("startContainer", "created", true),
        ("poststart", "running", false),
        ("poststop", "stopped", false),
    ];
    for ((kind, var, mnt, state), (want_kind, want_status, in_container)) in
        lines.iter().zip(expect)
    {
        assert_eq!(*kind, want_kind);
        assert_eq!(*var, "set", "{kind}: hook env");
        assert_eq!(state["id"], id.as_str(), "{kind}");
        assert_eq!(state["ociVersion"], "1.2.0", "{kind}");
        assert_eq!(state["bundle"], b.path(), "{kind}");
        if !is_runc() {
            assert_eq!(state["status"], want_status, "{kind}");
        }
        if kind != &"poststop" {
            assert_eq!(state["pid"], pid, "{kind}: the pid as the runtime sees it");
        }
        let want_mnt = if in_container {
            &container_mnt
        } else {
            &host_mnt
        };
        assert_eq!(*mnt, want_mnt.to_str().unwrap(), "{kind}: namespace");
    }
}

#[test]
fn a_hook_that_outlives_its_timeout_fails_create() {
    let env = TestEnv::new("hooktimeout");
    let mut b = env.bundle("b");
    let marker = env.dir.join("hook-pid");
    let script = b.dir.join("slow.sh");
    write_script(
        &script,
        &format!("#!/bin/sh\necho $$ > {}\nexec sleep 30\n", marker.display()),
    );
    b.config["hooks"] = json!({"createRuntime": [{"path": script, "timeout": 1}]});
    b.write();
    let id = env.id("c");
    let started = Instant::now();
    let out = env.carte(&["create", "--bundle", b.path(), &id]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout was not honoured"
    );
    out.assert_fails_with(&["createRuntime", "timed out"]);
    env.assert_no_leaks(&id);
    // The hook itself was killed.
    let hook_pid = std::fs::read_to_string(&marker).unwrap().trim().to_string();
    let stat = std::fs::read_to_string(format!("/proc/{hook_pid}/stat")).unwrap_or_default();
    assert!(
        !stat.contains("sleep") || stat.contains(") Z"),
        "hook still running: {stat}"
    );
}

#[test]
fn failing_hooks() {
    let env = TestEnv::new("hookfail");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    // A failing prestart hook fails create, naming the hook.
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    b.write();
    let id = env.id("pre");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_fails_with(&["prestart", "/bin/false"]);
    env.assert_no_leaks(&id);

    // A failing poststart hook fails start (runtime.md, lifecycle step 9,
    // since spec 1.2; runc kills the container too): the hooks after it do
    // not run, the container is stopped and destroyed, and its poststop
    // hooks run (steps 12 and 13). A failing poststop hook is logged; the
    // ones after it and delete go on.
    let log = env.dir.join("post.log");
    let after = |kind: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {kind} >> {}", log.display())]});
    b.config["hooks"] = json!({
        "poststart": [{"path": "/bin/false"}, after("poststart")],
        "poststop": [{"path": "/bin/false"}, after("poststop")]
    });
    b.write();
    let id = env.id("post");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let start = env.carte(&["start", &id]);
    assert!(!start.ok(), "{start:?}");
    if !is_runc() {
        let last = start.stderr.lines().last().unwrap_or_default();
        assert!(last.contains("poststart hook /bin/false"), "{start:?}");
        assert!(
            start.stderr.contains("poststop hook /bin/false"),
            "{start:?}"
        );
        assert_eq!(env.status(&id), None, "destroyed");
        env.assert_no_leaks(&id);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap_or_default(),
            "poststop\n"
        );
    }
    env.carte(&["delete", "--force", &id]);
    env.assert_no_leaks(&id);

    b.config["hooks"] = json!({"poststop": [{"path": "/bin/false"}, after("poststop")]});
    b.write();
    let id = env.id("poststop");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["start", &id]).assert_ok();
    let delete = env.carte(&["delete", "--force", &id]);
    delete.assert_ok();
    assert!(
        delete.stderr.contains("poststop hook /bin/false"),
        "{delete:?}"
    );
    env.assert_no_leaks(&id);

    // A failing startContainer hook fails start (runtime.md, lifecycle
    // step 7): the user's process never runs, and the container stops.
    b.set_args(&["sh", "-c", "echo ran > /ran; exec sleep 1000"]);
    b.config["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
        "poststart": [{"path": "/bin/true"}]
    });
    b.write();
    let id = env.id("startc");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["start", &id])
        .assert_fails_with(&["startContainer", "/bin/sh"]);
    env.wait_status(&id, "stopped");
    assert!(!b.rootfs().join("ran").exists(), "the process ran");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);

    // The same without poststart hooks: start still waits for the verdict.
    b.config["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]});
    b.write();
    let id = env.id("startc2");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["start", &id])
        .assert_fails_with(&["startContainer"]);
    env.wait_status(&id, "stopped");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// A failing prestart, createRuntime or createContainer hook fails create,
/// and the lifecycle goes on at step 12 (runtime.md): the container is
/// undone, then the poststop hooks run, with status "stopped".
#[test]
fn a_failing_create_hook_runs_the_poststop_hooks() {
    let env = TestEnv::new("hookpoststop");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    let log = b.dir.join("poststop.log");
    let script = b.dir.join("log.sh");
    write_script(&script, "#!/bin/sh\ncat >> \"$1\"; echo >> \"$1\"\n");
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let _ = std::fs::remove_file(&log);
        b.config["hooks"] = json!({
            kind: [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}],
            "poststop": [{"path": script, "args": ["log.sh", log]}]
        });
        b.write();
        let id = env.id(kind);
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_fails_with(&[kind]);
        env.assert_no_leaks(&id);
        let text = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{kind}: no poststop hook ran: {e}"));
        let state: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(state["id"], id.as_str(), "{kind}");
        assert_eq!(state["status"], "stopped", "{kind}");
    }
}

/// Hooks of one kind run in the order they are listed (config.md, Hooks).
#[test]
fn hooks_of_one_kind_run_in_the_listed_order() {
    let env = TestEnv::new("hookorder");
    let mut b = env.bundle("b");
    b.set_args(&["true"]);
    let log = b.rootfs().join("order.log");
    let step = |kind: &str, n: u32| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {kind}{n} >> {}", log.display())]});
    let hooks: serde_json::Map<String, Value> =
        ["prestart", "createRuntime", "poststart", "poststop"]
            .iter()
            .map(|k| (k.to_string(), json!([step(k, 1), step(k, 2), step(k, 3)])))
            .collect();
    b.config["hooks"] = Value::Object(hooks);
    b.write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["start", &id]).assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
    let text = std::fs::read_to_string(&log).unwrap();
    let got: Vec<&str> = text.lines().collect();
    let mut want = Vec::new();
    for k in ["prestart", "createRuntime", "poststart", "poststop"] {
        for n in 1..=3 {
            want.push(format!("{k}{n}"));
        }
    }
    assert_eq!(got, want);
}
