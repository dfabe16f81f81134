//! Every command line of shared/CALLERS.md, as podman (through conmon) and
//! containerd's runc shim send them, run against carte in the order the
//! callers use them, with their effects checked. The lines are kept here
//! verbatim; when shared/CALLERS.md is beside the repository, the test fails
//! if it lists a line this file does not run.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// containerd-shim-runc-v2's lines.
const CONTAINERD: &[&str] = &[
    "--root <PATH> --log <PATH> --log-format json create --bundle <PATH> --pid-file <PATH> <ID>",
    "--root <PATH> --log <PATH> --log-format json create --bundle <PATH> --pid-file <PATH> --console-socket <PATH> <ID>",
    "--root <PATH> --log <PATH> --log-format json start <ID>",
    "--root <PATH> --log <PATH> --log-format json delete <ID>",
    "--root <PATH> --log <PATH> --log-format json delete --force <ID>",
    "--root <PATH> --log <PATH> --log-format json exec --process <PATH> --detach --pid-file <PATH> <ID>",
    "--root <PATH> --log <PATH> --log-format json exec --process <PATH> --console-socket <PATH> --detach --pid-file <PATH> <ID>",
    "--root <PATH> --log <PATH> --log-format json ps --format json <ID>",
    "--root <PATH> --log <PATH> --log-format json kill <ID> 9",
    "--root <PATH> --log <PATH> --log-format json kill <ID> 15",
    "--root <PATH> --log <PATH> --log-format json kill --all <ID> 9",
    "--root <PATH> --log <PATH> --log-format json pause <ID>",
    "--root <PATH> --log <PATH> --log-format json resume <ID>",
];

/// podman's and conmon's lines (they pass no --root; the test adds a
/// private one in front).
const PODMAN: &[&str] = &[
    "--log-format=json --log <PATH> create --bundle <PATH> --pid-file <PATH> <ID>",
    "--log-format=json --log <PATH> create --bundle <PATH> --pid-file <PATH> --console-socket <PATH> <ID>",
    "start <ID>",
    "delete --force <ID>",
    "--log-format=json --log <PATH> exec --pid-file <PATH> --process <PATH> --detach <ID>",
    "--log-format=json --log <PATH> exec --pid-file <PATH> --process <PATH> --detach --tty --console-socket <PATH> <ID>",
    "kill <ID> 9",
    "kill <ID> 15",
    "kill <ID> 10",
    "pause <ID>",
    "resume <ID>",
    "update --resources=<PATH> <ID>",
];

/// The shim's client library's extra lines (CALLERS.md names them in prose).
const SHIM_EXTRA: &[&str] = &[
    "--root <PATH> --log <PATH> --log-format json update --resources - <ID>",
    "--root <PATH> --log <PATH> --log-format json features",
];

/// One caller's world: its log file and the container being driven.
struct Caller<'a> {
    env: &'a TestEnv,
    log: String,
    with_root: bool,
}

impl Caller<'_> {
    /// Runs the line `template` (which must be one of the lists above) with
    /// `<ID>` and each `<PATH>`, in order, replaced.
    #[track_caller]
    fn run(&self, template: &str, id: &str, paths: &[&str], stdin: Option<&str>) -> Out {
        assert!(
            CONTAINERD.contains(&template)
                || PODMAN.contains(&template)
                || SHIM_EXTRA.contains(&template),
            "not a caller's line: {template}"
        );
        let root = self.env.root.to_str().unwrap().to_string();
        let mut paths = paths.iter();
        let mut args: Vec<String> = Vec::new();
        if self.with_root {
            args.extend(["--root".to_string(), root.clone()]);
        }
        for word in template.split(' ') {
            let word = word.replace("<ID>", id);
            let word = if word.contains("<PATH>") {
                let path = if word.starts_with("--root")
                    || args.last().is_some_and(|a| a == "--root")
                {
                    &root
                } else if args.last().is_some_and(|a| a == "--log") || word.starts_with("--log=") {
                    &self.log
                } else {
                    *paths
                        .next()
                        .unwrap_or_else(|| panic!("too few paths for {template}"))
                };
                word.replace("<PATH>", path)
            } else {
                word
            };
            args.push(word);
        }
        assert!(paths.next().is_none(), "unused paths for {template}");
        let mut cmd = Command::new(carte_bin());
        cmd.args(&args);
        match stdin {
            Some(text) => {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut child = cmd.spawn().unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                Out {
                    status: out.status,
                    stdout: String::from_utf8_lossy(&out.stdout).into(),
                    stderr: String::from_utf8_lossy(&out.stderr).into(),
                }
            }
            None => self.env.carte_cmd(cmd),
        }
    }
}

/// PID 1 of a PID namespace ignores signals it has no handler for, so the
/// container's process traps the ones the callers stop it with.
const TRAPPING: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM USR1; while :; do sleep 0.05; done",
];

fn process_file(env: &TestEnv, name: &str, terminal: bool, args: &[&str]) -> String {
    let path = env.dir.join(name);
    let process = json!({
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
    });
    std::fs::write(&path, process.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn pid_in(path: &str) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn every_line_of_callers_md_is_here() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/CALLERS.md");
    let Ok(text) = std::fs::read_to_string(&doc) else {
        eprintln!("no {} here: nothing to compare", doc.display());
        return;
    };
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block || line.trim().is_empty() {
            continue;
        }
        let line = line
            .trim_start_matches("conmon: ")
            .trim_start_matches("podman: ");
        assert!(
            CONTAINERD.contains(&line) || PODMAN.contains(&line),
            "CALLERS.md has a line this test does not run: {line}"
        );
    }
}

#[test]
fn containerd_lines() {
    let env = TestEnv::new("ctrd");
    let shim = Caller {
        env: &env,
        log: env.dir.join("log.json").to_str().unwrap().into(),
        with_root: false,
    };
    let mut b = env.bundle("b");
    b.set_args(TRAPPING);
    b.write();
    let pid = env.dir.join("pid");
    let pid = pid.to_str().unwrap();

    // A task: create, start, two execs, ps, pause/resume, update, kill 15.
    let id = env.id("task");
    shim.run(CONTAINERD[0], &id, &[b.path(), pid], None)
        .assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("created"));
    shim.run(CONTAINERD[2], &id, &[], None).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("running"));
    let init = pid_in(pid);

    let exec_pid = env.dir.join("exec.pid");
    let exec_pid = exec_pid.to_str().unwrap();
    let sleeper = process_file(&env, "p1.json", false, &["sleep", "1000"]);
    shim.run(CONTAINERD[5], &id, &[&sleeper, exec_pid], None)
        .assert_ok();
    let exec = pid_in(exec_pid);

    let sock = env.dir.join("exec.sock");
    let console = console_socket(&sock);
    let tty = process_file(&env, "p2.json", true, &["sh", "-c", "tty; sleep 1000"]);
    let tty_pid = env.dir.join("tty.pid");
    let tty_pid = tty_pid.to_str().unwrap();
    shim.run(
        CONTAINERD[6],
        &id,
        &[&tty, sock.to_str().unwrap(), tty_pid],
        None,
    )
    .assert_ok();
    let _master = console.join().unwrap();

    let ps = shim.run(CONTAINERD[7], &id, &[], None);
    ps.assert_ok();
    let pids: Vec<i32> = serde_json::from_str(ps.stdout.trim()).unwrap();
    for p in [init, exec, pid_in(tty_pid)] {
        assert!(pids.contains(&p), "ps --format json {pids:?} lacks {p}");
    }

    shim.run(CONTAINERD[11], &id, &[], None).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("paused"));
    shim.run(CONTAINERD[12], &id, &[], None).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("running"));

    let resources = json!({"pids": {"limit": 77}}).to_string();
    shim.run(SHIM_EXTRA[0], &id, &[], Some(&resources))
        .assert_ok();
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{id}/pids.max"));
    assert_eq!(max.unwrap().trim(), "77");

    let features: Value =
        serde_json::from_str(&shim.run(SHIM_EXTRA[1], "", &[], None).stdout).unwrap();
    assert!(features["ociVersionMax"].is_string(), "{features}");

    shim.run(CONTAINERD[9], &id, &[], None).assert_ok();
    env.wait_status(&id, "stopped");
    shim.run(CONTAINERD[3], &id, &[], None).assert_ok();
    // containerd sends a second, forced delete for a container now gone.
    shim.run(CONTAINERD[4], &id, &[], None).assert_ok();
    env.assert_no_leaks(&id);

    // A task with a terminal, killed with 9.
    let id = env.id("tty");
    let mut tb = env.bundle("tb");
    tb.config["process"]["terminal"] = json!(true);
    tb.set_args(&["sleep", "1000"]);
    tb.write();
    let sock = env.dir.join("create.sock");
    let console = console_socket(&sock);
    shim.run(
        CONTAINERD[1],
        &id,
        &[tb.path(), pid, sock.to_str().unwrap()],
        None,
    )
    .assert_ok();
    let _master = console.join().unwrap();
    shim.run(CONTAINERD[2], &id, &[], None).assert_ok();
    shim.run(CONTAINERD[8], &id, &[], None).assert_ok();
    env.wait_status(&id, "stopped");
    shim.run(CONTAINERD[4], &id, &[], None).assert_ok();
    env.assert_no_leaks(&id);

    // kill --all, then the forced delete containerd sends.
    let id = env.id("all");
    let mut kb = env.bundle("kb");
    kb.set_args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    kb.write();
    shim.run(CONTAINERD[0], &id, &[kb.path(), pid], None)
        .assert_ok();
    shim.run(CONTAINERD[2], &id, &[], None).assert_ok();
    shim.run(CONTAINERD[10], &id, &[], None).assert_ok();
    env.wait_status(&id, "stopped");
    shim.run(CONTAINERD[4], &id, &[], None).assert_ok();
    env.assert_no_leaks(&id);

    // The log holds only JSON lines in runc's shape.
    let log = std::fs::read_to_string(&shim.log).unwrap_or_default();
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["level"].is_string() && v["msg"].is_string() && v["time"].is_string());
    }
}

#[test]
fn podman_lines() {
    let env = TestEnv::new("podman");
    let conmon = Caller {
        env: &env,
        log: env.dir.join("log.json").to_str().unwrap().into(),
        with_root: true,
    };
    let mut b = env.bundle("b");
    b.set_args(TRAPPING);
    b.write();
    let pid = env.dir.join("pid");
    let pid = pid.to_str().unwrap();

    let id = env.id("c");
    conmon
        .run(PODMAN[0], &id, &[b.path(), pid], None)
        .assert_ok();
    conmon.run(PODMAN[2], &id, &[], None).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("running"));

    let exec_pid = env.dir.join("exec.pid");
    let exec_pid = exec_pid.to_str().unwrap();
    let sleeper = process_file(&env, "p1.json", false, &["sleep", "1000"]);
    conmon
        .run(PODMAN[4], &id, &[exec_pid, &sleeper], None)
        .assert_ok();
    assert!(pid_in(exec_pid) > 0);
    let sock = env.dir.join("exec.sock");
    let console = console_socket(&sock);
    let tty = process_file(&env, "p2.json", true, &["sleep", "1000"]);
    conmon
        .run(
            PODMAN[5],
            &id,
            &[exec_pid, &tty, sock.to_str().unwrap()],
            None,
        )
        .assert_ok();
    let _master = console.join().unwrap();

    conmon.run(PODMAN[9], &id, &[], None).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("paused"));
    conmon.run(PODMAN[10], &id, &[], None).assert_ok();
    let resources = env.dir.join("resources.json");
    std::fs::write(&resources, json!({"pids": {"limit": 66}}).to_string()).unwrap();
    conmon
        .run(PODMAN[11], &id, &[resources.to_str().unwrap()], None)
        .assert_ok();
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{id}/pids.max"));
    assert_eq!(max.unwrap().trim(), "66");
    conmon.run(PODMAN[8], &id, &[], None).assert_ok();
    env.wait_status(&id, "stopped");
    conmon.run(PODMAN[3], &id, &[], None).assert_ok();
    env.assert_no_leaks(&id);

    // With a terminal; stopped with 15, then 9 for a second one.
    for (n, kill) in [(1, PODMAN[7]), (2, PODMAN[6])] {
        let id = env.id(&format!("tty{n}"));
        let mut tb = env.bundle(&format!("tb{n}"));
        tb.config["process"]["terminal"] = json!(true);
        tb.set_args(TRAPPING);
        tb.write();
        let sock = env.dir.join(format!("create{n}.sock"));
        let console = console_socket(&sock);
        conmon
            .run(
                PODMAN[1],
                &id,
                &[tb.path(), pid, sock.to_str().unwrap()],
                None,
            )
            .assert_ok();
        let _master = console.join().unwrap();
        conmon.run(PODMAN[2], &id, &[], None).assert_ok();
        conmon.run(kill, &id, &[], None).assert_ok();
        env.wait_status(&id, "stopped");
        conmon.run(PODMAN[3], &id, &[], None).assert_ok();
        env.assert_no_leaks(&id);
    }
}
