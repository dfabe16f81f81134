//! The lifecycle verbs from outside: create, start, state, kill, delete, run.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn sleeper(env: &TestEnv) -> Bundle {
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    b.write();
    b
}

#[test]
fn create_start_kill_delete() {
    let env = TestEnv::new("life");
    let b = sleeper(&env);
    let id = env.id("c");
    let pid_file = env.dir.join("pid");
    env.carte(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ])
    .assert_ok();

    let state = env.state(&id).expect("state after create");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["bundle"], b.path());
    assert!(state["ociVersion"].is_string());
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    // Created: init is waiting and the user's process has not run yet.
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !cmdline.starts_with("sleep"),
        "process ran before start: {cmdline}"
    );

    env.carte(&["start", &id]).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("running"));
    // start returns once init is released; the exec follows at once.
    let mut cmdline = String::new();
    for _ in 0..100 {
        cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        if cmdline.starts_with("sleep") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cmdline.starts_with("sleep"), "{cmdline}");

    env.carte(&["kill", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["delete", &id]).assert_ok();
    assert!(env.state(&id).is_none(), "state after delete");
    env.assert_no_leaks(&id);
}

#[test]
fn kill_accepts_names_and_numbers() {
    let env = TestEnv::new("killforms");
    let mut b = env.bundle("b");
    // PID 1 ignores signals it has no handler for, so trap the polite ones.
    b.set_args(&[
        "sh",
        "-c",
        "trap 'exit 0' TERM USR1; while :; do sleep 0.05; done",
    ]);
    b.write();
    for (i, sig) in [
        "9", "KILL", "SIGKILL", "15", "TERM", "SIGTERM", "sigterm", "", "USR1", "10",
    ]
    .iter()
    .enumerate()
    {
        let id = env.id(&format!("k{i}"));
        env.carte(&["run", "-d", "--bundle", b.path(), &id])
            .assert_ok();
        env.wait_status(&id, "running");
        // The trap is set up by the shell a moment after exec.
        std::thread::sleep(Duration::from_millis(150));
        let mut args = vec!["kill", id.as_str()];
        if !sig.is_empty() {
            args.push(sig);
        }
        env.carte(&args).assert_ok();
        env.wait_status(&id, "stopped");
        env.carte(&["delete", &id]).assert_ok();
        env.assert_no_leaks(&id);
    }
    let id = env.id("bad");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["kill", &id, "NOSUCHSIG"])
        .assert_fails_with(&["NOSUCHSIG"]);
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn kill_all_reaches_every_process() {
    let env = TestEnv::new("killall");
    let mut b = env.bundle("b");
    b.set_args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "running");
    std::thread::sleep(Duration::from_millis(100));
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{id}/cgroup.procs"))
        .unwrap_or_default();
    if !is_runc() {
        assert_eq!(procs.lines().count(), 3, "sh and two sleeps: {procs}");
    }
    env.carte(&["kill", "--all", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn operations_in_the_wrong_state_fail() {
    let env = TestEnv::new("order");
    let b = sleeper(&env);
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    if !is_runc() {
        // The spec: deleting a container that is not stopped is an error.
        env.carte(&["delete", &id])
            .assert_fails_with(&[&id, "created"]);
        assert_eq!(env.status(&id).as_deref(), Some("created"));
    }
    env.carte(&["start", &id]).assert_ok();
    env.carte(&["start", &id])
        .assert_fails_with(&[&id, "running"]);
    env.carte(&["delete", &id])
        .assert_fails_with(&[&id, "running"]);
    assert_eq!(env.status(&id).as_deref(), Some("running"));
    env.carte(&["kill", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["start", &id])
        .assert_fails_with(&[&id, "stopped"]);
    env.carte(&["kill", &id, "KILL"]).assert_fails_with(&[&id]);
    env.carte(&["delete", &id]).assert_ok();
    env.carte(&["kill", &id, "KILL"])
        .assert_fails_with(&[&id, "does not exist"]);
    env.carte(&["state", &id])
        .assert_fails_with(&[&id, "does not exist"]);
    env.carte(&["start", &id])
        .assert_fails_with(&[&id, "does not exist"]);
    env.carte(&["delete", &id])
        .assert_fails_with(&[&id, "does not exist"]);
    env.assert_no_leaks(&id);
}

#[test]
fn delete_force_running_and_missing() {
    let env = TestEnv::new("force");
    let b = sleeper(&env);
    let created = env.id("created");
    env.carte(&["create", "--bundle", b.path(), &created])
        .assert_ok();
    env.carte(&["delete", "--force", &created]).assert_ok();
    env.assert_no_leaks(&created);
    let running = env.id("running");
    env.carte(&["run", "-d", "--bundle", b.path(), &running])
        .assert_ok();
    env.carte(&["delete", "-f", &running]).assert_ok();
    env.assert_no_leaks(&running);
    // containerd: delete, then delete --force of what is already gone.
    env.carte(&["delete", "--force", &running]).assert_ok();
    env.carte(&["delete", "--force", "never-existed"])
        .assert_ok();
}

#[test]
fn duplicate_id_fails_and_keeps_the_first() {
    let env = TestEnv::new("dup");
    let b = sleeper(&env);
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let pid = env.state(&id).unwrap()["pid"].clone();
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_fails_with(&[&id, "exists"]);
    let state = env.state(&id).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn invalid_ids_are_refused() {
    let env = TestEnv::new("ids");
    let b = sleeper(&env);
    for id in ["../x", "", "a/b", "..", "a b"] {
        env.carte(&["create", "--bundle", b.path(), id])
            .assert_fails_with(&["invalid container id"]);
    }
    assert!(!env.root.join("x").exists());
    assert!(
        std::fs::read_dir(&env.root).map(|d| d.count()).unwrap_or(0) == 0,
        "state dirs made for bad ids"
    );
}

#[test]
fn run_passes_on_exit_status() {
    let env = TestEnv::new("exit");
    let mut b = env.bundle("b");
    b.set_args(&["sh", "-c", "echo out; exit 3"]);
    let id = env.id("three");
    let out = env.run(&b, &id);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert_eq!(out.stdout, "out\n");
    env.assert_no_leaks(&id);

    // Killed by a signal: 128 + n.
    b.set_args(&["sleep", "1000"]);
    b.write();
    let id = env.id("signal");
    let mut child = env.spawn(&["run", "--bundle", b.path(), &id]);
    env.wait_status(&id, "running");
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) on the container's init, which this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    env.assert_no_leaks(&id);
}

#[test]
fn run_forwards_signals() {
    let env = TestEnv::new("fwd");
    let mut b = env.bundle("b");
    b.set_args(&[
        "sh",
        "-c",
        "trap 'exit 42' USR1; while :; do sleep 0.05; done",
    ]);
    b.write();
    let id = env.id("c");
    let mut child = env.spawn(&["run", "--bundle", b.path(), &id]);
    env.wait_status(&id, "running");
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) on the carte process this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    assert_eq!(child.wait().unwrap().code(), Some(42));
    env.assert_no_leaks(&id);
}

#[test]
fn annotations_round_trip_through_state() {
    let env = TestEnv::new("annot");
    let mut b = sleeper(&env);
    b.config["annotations"] = json!({"org.example.key": "value", "other": "x"});
    b.write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let state = env.state(&id).unwrap();
    assert_eq!(
        state["annotations"],
        json!({"org.example.key": "value", "other": "x"})
    );
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn callers_command_lines_parse() {
    // The forms of shared/CALLERS.md: flags with '=' and with a space,
    // global flags before the verb, json logging.
    let env = TestEnv::new("callers");
    let b = sleeper(&env);
    let id = env.id("c");
    let log = env.dir.join("log.json");
    let pid = env.dir.join("pid");
    let (log, pid) = (log.to_str().unwrap(), pid.to_str().unwrap());
    env.carte(&[
        "--log-format=json",
        "--log",
        log,
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pid,
        &id,
    ])
    .assert_ok();
    env.carte(&["--log", log, "--log-format", "json", "start", &id])
        .assert_ok();
    env.carte(&["--log", log, "--log-format", "json", "kill", &id, "15"])
        .assert_ok();
    env.carte(&[
        "--log",
        log,
        "--log-format",
        "json",
        "kill",
        "--all",
        &id,
        "9",
    ])
    .assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["--log", log, "--log-format", "json", "delete", &id])
        .assert_ok();
    env.carte(&[
        "--log",
        log,
        "--log-format",
        "json",
        "delete",
        "--force",
        &id,
    ])
    .assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn json_log_holds_the_error() {
    let env = TestEnv::new("log");
    let mut b = env.bundle("b");
    b.set_args(&["/bin/nosuch"]);
    b.write();
    let id = env.id("c");
    let log = env.dir.join("log.json");
    let out = env.carte(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.path(),
        &id,
    ]);
    assert!(!out.ok());
    let text = std::fs::read_to_string(&log).expect("log file written");
    let last = text
        .lines()
        .rfind(|l| l.contains("\"error\""))
        .expect("an error line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON line");
    assert_eq!(v["level"], "error");
    assert!(v["time"].is_string());
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("/bin/nosuch"), "{msg}");
    assert!(msg.contains("no such file or directory"), "{msg}");
    env.assert_no_leaks(&id);
}

#[test]
fn unsupported_global_flags_are_refused() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("sd-flags");
    // Rootless is supported (tests/rootless.rs); a value it does not know is not.
    env.carte(&["--rootless", "maybe", "state", "x"])
        .assert_fails_with(&["--rootless", "true, false or auto"]);
    env.carte(&["--rootless", "true", "state", "x"])
        .assert_fails_with(&["container x does not exist"]);
}

/// This host has no systemd: `create --systemd-cgroup` fails with one
/// line before anything exists, and a bad cgroupsPath for the driver is
/// named as a config error. Other verbs take the flag and ignore it (they
/// follow state.json), as runc's do.
#[test]
fn systemd_cgroup_without_systemd_fails_cleanly() {
    if is_runc() || std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    let env = TestEnv::new("sd-nosd");
    let bundle = env.bundle("b");
    for verb in ["create", "run"] {
        let id = env.id(verb);
        env.carte(&["--systemd-cgroup", verb, "-b", bundle.path(), &id])
            .assert_fails_with(&[
                "--systemd-cgroup",
                "systemd is not running",
                "/run/systemd/system",
            ]);
        env.assert_no_leaks(&id);
    }
    env.carte(&["--systemd-cgroup", "state", "nosuch"])
        .assert_fails_with(&["nosuch"]);
    // Without the flag the same bundle still runs, through cgroupfs, and
    // state.json says so.
    let id = env.id("fs");
    env.carte(&["create", "-b", bundle.path(), &id]).assert_ok();
    let state = std::fs::read_to_string(env.root.join(&id).join("state.json")).unwrap();
    assert!(state.contains("\"cgroupDriver\":\"cgroupfs\""), "{state}");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn spec_writes_a_config_that_runs() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("spec");
    let b = env.bundle("b");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    env.carte(&["spec", "--bundle", b.path()]).assert_ok();
    env.carte(&["spec", "--bundle", b.path()])
        .assert_fails_with(&["exists"]);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.dir.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] =
        json!(["sh", "-c", "hostname; cat /proc/self/cgroup | grep memory"]);
    let b = Bundle {
        dir: b.dir.clone(),
        config,
    };
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "carte");
    // The default config has a cgroup namespace: the container's cgroup is its root.
    assert!(lines[1].ends_with(":memory:/"), "{}", lines[1]);
    env.assert_no_leaks(&id);
}

#[test]
fn delete_force_clears_a_half_made_state_dir() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("remains");
    let half = env.id("half");
    let corrupt = env.id("corrupt");
    std::fs::create_dir_all(env.root.join(&half)).unwrap();
    std::fs::create_dir_all(env.root.join(&corrupt)).unwrap();
    std::fs::write(env.root.join(&corrupt).join("state.json"), "{bad").unwrap();
    env.carte(&["delete", &corrupt])
        .assert_fails_with(&["state.json"]);
    env.carte(&["delete", "--force", &half]).assert_ok();
    env.carte(&["delete", "--force", &corrupt]).assert_ok();
    env.assert_no_leaks(&half);
    env.assert_no_leaks(&corrupt);
}

#[test]
fn delete_kills_what_outlives_init_without_a_pid_namespace() {
    let env = TestEnv::new("nopidns");
    let mut b = env.bundle("b");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    // Init exits at once and leaves a child behind in the cgroup.
    b.set_args(&["sh", "-c", "sleep 1000 & exit 0"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "stopped");
    assert!(
        !processes_of(&id).is_empty(),
        "the orphaned sleep should still run"
    );
    env.carte(&["delete", &id]).assert_ok();
    std::thread::sleep(Duration::from_millis(100));
    env.assert_no_leaks(&id);
}

#[test]
fn kill_all_of_a_stopped_container_succeeds() {
    // containerd's `delete --force` sends `kill --all ID 9` to stopped
    // containers; plain kill of a stopped container stays an error (spec).
    let env = TestEnv::new("killallstopped");
    let mut b = env.bundle("b");
    b.set_args(&["true"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["kill", "--all", &id, "9"]).assert_ok();
    env.carte(&["kill", &id, "9"])
        .assert_fails_with(&[&id, "stopped"]);
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn kill_all_and_delete_reach_nested_cgroups() {
    // What systemd or a nested runtime does inside a container: a cgroup
    // below the container's, holding one of its processes.
    if is_runc() {
        return;
    }
    let env = TestEnv::new("nested");
    let mut b = env.bundle("b");
    b.set_args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "running");
    std::thread::sleep(Duration::from_millis(100));
    let dirs = host().cgroup_dirs(&id);
    let procs = std::fs::read_to_string(dirs[0].join("cgroup.procs")).unwrap();
    let moved = procs.lines().last().unwrap().to_string();
    let mut nested = Vec::new();
    for dir in dirs {
        let sub = dir.join("nested");
        std::fs::create_dir(&sub).unwrap();
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(dir.join(f)) {
                std::fs::write(sub.join(f), v.trim()).unwrap();
            }
        }
        std::fs::write(sub.join("cgroup.procs"), &moved).unwrap();
        nested.push(sub);
    }
    assert!(!nested.is_empty());
    env.carte(&["kill", "--all", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{moved}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !Path::new(&format!("/proc/{moved}/cgroup")).exists(),
        "the process in the nested cgroup survived kill --all"
    );
    env.carte(&["delete", &id]).assert_ok();
    for sub in nested {
        assert!(!sub.exists(), "{} left after delete", sub.display());
    }
    env.assert_no_leaks(&id);
}

/// No namespace listed: the container inherits carte's, its mount namespace
/// included (config-linux.md). Its root is then a chroot of the rootfs, the
/// config's mounts, masked and readonly paths are made in carte's mount
/// namespace, and delete (or a failed create) takes exactly those away: a
/// mount that was on the rootfs before stays.
#[test]
fn without_namespaces_the_container_shares_carte_s() {
    let env = TestEnv::new("nons");
    let mut b = sleeper(&env);
    b.config["linux"]["namespaces"] = json!([]);
    b.config["hostname"] = json!(null);
    b.config["root"]["readonly"] = json!(true);
    // Someone else's mount inside the rootfs, there before the container.
    let theirs = b.rootfs().join("mnt");
    std::fs::create_dir_all(&theirs).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "theirs"])
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(status.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Unmount(theirs.clone());
    std::fs::write(theirs.join("mark"), "theirs").unwrap();
    b.write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_eq!(
        ns(&pid.to_string()),
        ns("self"),
        "mount namespace inherited"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        b.rootfs().canonicalize().unwrap()
    );
    let out = env.carte(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /etc/hostname /mnt/mark; echo; wc -c < /proc/keys; \
         touch /x 2>/dev/null || echo root-ro; touch /proc/sys/x 2>/dev/null || echo sys-ro",
    ]);
    out.assert_ok();
    assert_eq!(
        out.stdout, "carte\ntheirs\n0\nroot-ro\nsys-ro\n",
        "exec runs in the container's root"
    );
    env.carte(&["start", &id]).assert_ok();
    env.carte(&["delete", "--force", &id]).assert_ok();
    let still_there = std::fs::read_to_string(theirs.join("mark"));
    drop(guard);
    assert_eq!(still_there.unwrap(), "theirs", "a mount not made by create");
    env.assert_no_leaks(&id);

    // A create that fails after the mounts leaves none behind.
    b.set_args(&["/no/such/program"]);
    b.write();
    let id = env.id("fail");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_fails_with(&["/no/such/program"]);
    env.assert_no_leaks(&id);
}
