//! Crashes, races, PID reuse and hostile input: `carte` killed with SIGKILL
//! at random moments of create, start and delete; five verbs at once on one
//! container; a container's pid taken by a stranger; bundles built to hurt.
//! After each: the state tells the truth and `delete --force` leaves nothing.
//!
//! The random delays come from a seeded generator: a failure prints the seed,
//! and CARTE_SEED=<seed> replays it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// xorshift64*: enough randomness for delays, and replayable.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("CARTE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{test}: CARTE_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..max.
    fn below(&mut self, max: Duration) -> Duration {
        let micros = max.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % micros)
    }
}

fn quiet(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn carte")
}

/// How long `args` takes, the median of three runs (spawn to exit), after
/// `before` set the scene and followed by `after`.
fn measure(env: &TestEnv, verb: &str, mut each: impl FnMut(&str) -> Vec<String>) -> Duration {
    let mut times = Vec::new();
    for i in 0..3 {
        let id = env.id(&format!("measure-{verb}-{i}"));
        let args = each(&id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let status = quiet(env.command(&args)).wait().unwrap();
        times.push(t.elapsed());
        assert!(status.success(), "{verb} {id} failed while measuring");
        env.carte(&["delete", "--force", &id]).assert_ok();
    }
    times.sort();
    times[1]
}

/// Processes whose command line names `id` (a carte verb, or an
/// intermediate or init that has not exec'd yet: they are forks of `create`).
fn pids_naming(id: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn frozen(id: &str) -> bool {
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/{id}/freezer.state"))
        .is_ok_and(|s| s.trim() == "FROZEN")
}

/// Checks once that `state` and `list` agree with what runs. Returns the
/// status (None: the container does not exist) or what is wrong.
fn truth_once(env: &TestEnv, id: &str) -> Result<Option<String>, String> {
    let procs: BTreeSet<i32> = processes_of(id)
        .into_iter()
        .chain(pids_naming(id))
        .collect();
    let out = env.carte(&["state", id]);
    let list = env.carte(&["list", "--format", "json"]);
    if !list.ok() {
        return Err(format!("list failed: {}", list.stderr));
    }
    let listed: Vec<Value> = serde_json::from_str(&list.stdout)
        .map_err(|e| format!("list printed bad JSON ({e}): {}", list.stdout))?;
    let in_list = listed
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["status"].as_str().unwrap_or("?").to_string());
    if !out.ok() {
        let line = out.stderr.trim();
        if !line.contains("does not exist") || line.lines().count() != 1 {
            return Err(format!("state failed oddly: {line:?}"));
        }
        if !procs.is_empty() {
            return Err(format!("no container, but processes {procs:?} remain"));
        }
        if in_list.is_some() {
            return Err(format!("state says no container, list says {in_list:?}"));
        }
        return Ok(None);
    }
    let state: Value =
        serde_json::from_str(&out.stdout).map_err(|e| format!("state bad JSON ({e})"))?;
    let status = state["status"].as_str().unwrap_or("?").to_string();
    let pid = state["pid"].as_i64().unwrap_or(-1) as i32;
    if in_list.as_deref() != Some(&status) {
        return Err(format!("state says {status}, list says {in_list:?}"));
    }
    let extra: Vec<i32> = procs.iter().copied().filter(|p| *p != pid).collect();
    match status.as_str() {
        "stopped" if !procs.is_empty() => Err(format!("stopped, but {procs:?} remain")),
        "stopped" => Ok(Some(status)),
        "created" | "running" | "paused" if !extra.is_empty() => Err(format!(
            "{status} with pid {pid}, but also {extra:?}: {:?}",
            extra.iter().map(|p| cmdline(*p)).collect::<Vec<_>>()
        )),
        "created" if !cmdline(pid).contains(" create ") => {
            Err(format!("created, but pid {pid} runs {:?}", cmdline(pid)))
        }
        "running" if !cmdline(pid).starts_with("sleep") => {
            Err(format!("running, but pid {pid} runs {:?}", cmdline(pid)))
        }
        "paused" if !frozen(id) => Err("paused, but the freezer is thawed".into()),
        "created" | "running" | "paused" => Ok(Some(status)),
        other => Err(format!("status {other} after the caller died")),
    }
}

/// `truth_once`, retried for a while: orphans take a moment to notice.
#[track_caller]
fn assert_truth(env: &TestEnv, id: &str, what: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match truth_once(env, id) {
            Ok(status) => return status,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Kills `child` with SIGKILL after `delay` (unless it ended first).
fn kill_after(mut child: Child, delay: Duration) {
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn crash_consistency() {
    const TRIALS: [(&str, usize); 3] = [("create", 80), ("start", 60), ("delete", 60)];
    let env = TestEnv::new("crash");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]).write();
    let mut rng = Rng::new("crash_consistency");
    let create = |id: &str| -> Vec<String> {
        ["create", "--bundle", b.path(), id]
            .map(String::from)
            .to_vec()
    };
    let t_create = measure(&env, "create", create);
    let t_start = measure(&env, "start", |id| {
        env.carte(&create(id).iter().map(String::as_str).collect::<Vec<_>>())
            .assert_ok();
        vec!["start".into(), id.into()]
    });
    let t_delete = measure(&env, "delete", |id| {
        env.carte(&create(id).iter().map(String::as_str).collect::<Vec<_>>())
            .assert_ok();
        env.carte(&["start", id]).assert_ok();
        vec!["delete".into(), "--force".into(), id.into()]
    });
    eprintln!("durations: create {t_create:?}, start {t_start:?}, delete {t_delete:?}");
    let margin = Duration::from_millis(2);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for (verb, trials) in TRIALS {
        for i in 0..trials {
            let id = env.id(&format!("{verb}{i}"));
            let create_args = create(&id);
            let create_args: Vec<&str> = create_args.iter().map(String::as_str).collect();
            let (args, span) = match verb {
                "create" => (create_args.clone(), t_create),
                "start" => {
                    env.carte(&create_args).assert_ok();
                    (vec!["start", &id], t_start)
                }
                _ => {
                    env.carte(&create_args).assert_ok();
                    env.carte(&["start", &id]).assert_ok();
                    (vec!["delete", "--force", &id], t_delete)
                }
            };
            let delay = rng.below(span * 5 / 4 + margin);
            kill_after(quiet(env.command(&args)), delay);
            let what = format!("{verb} killed after {delay:?} (trial {i}, seed above)");
            let status = assert_truth(&env, &id, &what);
            let key = format!("{verb}: {}", status.as_deref().unwrap_or("gone"));
            *outcomes.entry(key).or_default() += 1;
            if verb == "delete" {
                // Killed between freeze and thaw, a delete leaves it paused.
                assert!(
                    status.as_deref() != Some("created"),
                    "{what}: created after start"
                );
            }
            // What survived still works: a created container starts. A
            // start killed after it released init leaves a container that
            // goes on to run by itself: "created" may turn "running" between
            // two looks, and `start` then says so.
            if status.as_deref() == Some("created") {
                let out = env.carte(&["start", &id]);
                if !out.ok() {
                    assert!(
                        verb == "start" && out.stderr.contains("it is running"),
                        "{what}: start: {}",
                        out.stderr
                    );
                }
                assert_eq!(assert_truth(&env, &id, &what).as_deref(), Some("running"));
            }
            let out = env.carte(&["delete", "--force", &id]);
            assert!(out.ok(), "{what}: delete --force: {}", out.stderr);
            env.assert_no_leaks(&id);
        }
    }
    eprintln!("outcomes: {outcomes:?}");
}

/// clone3(2)'s arguments, up to set_tid (CLONE_ARGS_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// Starts `sleep 30` as process `pid` (clone3 with set_tid): the stranger
/// that takes a dead container's pid.
fn stranger_with_pid(pid: i32) -> std::io::Result<i32> {
    use std::ffi::CString;
    let path = CString::new("/bin/sleep").unwrap();
    let arg1 = CString::new("30").unwrap();
    let argv = [path.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let tid = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM is a fork; the child only calls
    // execve and _exit (async-signal-safe) with memory prepared before.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc == 0 {
        // SAFETY: see above.
        unsafe {
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc as i32)
}

fn exited(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on our own child, WNOHANG.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

#[test]
fn reused_pid_is_not_the_container() {
    let env = TestEnv::new("pidreuse");
    let mut b = env.bundle("b");
    b.set_args(&["true"]).write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let state = env.state(&id).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    env.carte(&["start", &id]).assert_ok();
    // The process ends and is reaped (by whoever inherited it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "pid {pid} never went away");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stranger = stranger_with_pid(pid).expect("clone3 with the container's pid");
    assert_eq!(stranger, pid);
    let stopped = |what: &str| {
        let state = env.state(&id).expect("state");
        assert_eq!(state["status"], "stopped", "{what}: {state}");
        assert_eq!(state["pid"], 0, "{what}");
        env.carte(&["kill", &id, "KILL"])
            .assert_fails_with(&["kill", &id, "stopped"]);
        env.carte(&["kill", "--all", &id, "KILL"]).assert_ok();
        env.carte(&["pause", &id]).assert_fails_with(&["stopped"]);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!exited(stranger), "{what}: carte signalled the stranger");
    };
    stopped("reused pid");
    // A pid reused within the same clock tick (10 ms) has the same start
    // time: carte must still tell the stranger by its cgroup.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let start_time: u64 = after_comm.split(' ').nth(19).unwrap().parse().unwrap();
    let path = env.root.join(&id).join("state.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    saved["pidStartTime"] = start_time.into();
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    stopped("reused pid with the same start time");
    // SAFETY: kill and reap our own child.
    unsafe {
        libc::kill(stranger, libc::SIGKILL);
        libc::waitpid(stranger, std::ptr::null_mut(), 0);
    }
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// Waits for `child` up to `limit`; kills it and fails if it hangs.
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn concurrent_verbs_on_one_container() {
    const TRIALS: usize = 50;
    let env = TestEnv::new("race");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]).write();
    let mut rng = Rng::new("concurrent_verbs_on_one_container");
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..TRIALS {
        let id = env.id(&format!("r{i}"));
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_ok();
        let r = rng.next();
        let signal = if r & 1 == 0 { "KILL" } else { "TERM" };
        let delete: &[&str] = if r & 2 == 0 {
            &["delete", &id]
        } else {
            &["delete", "--force", &id]
        };
        let calls: [&[&str]; 6] = [
            &["start", &id],
            &["kill", &id, signal],
            delete,
            &["state", &id],
            &["pause", &id],
            &["list", "--format", "json"],
        ];
        let mut running = Vec::new();
        for (n, args) in calls.iter().enumerate() {
            let out = env.dir.join(format!("race-{i}-{n}.out"));
            let err = env.dir.join(format!("race-{i}-{n}.err"));
            let child = env
                .command(args)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(std::fs::File::create(&err).unwrap())
                .spawn()
                .unwrap();
            running.push((args, child, out, err));
        }
        for (args, mut child, out, err) in running {
            let what = format!("trial {i}: {args:?}");
            let status = wait_within(&mut child, Duration::from_secs(20), &what);
            let stdout = std::fs::read_to_string(&out).unwrap();
            let stderr = std::fs::read_to_string(&err).unwrap();
            let verb = args[0];
            if status.success() {
                *counts.entry(format!("{verb} ok")).or_default() += 1;
                if verb == "state" || verb == "list" {
                    let v: Value = serde_json::from_str(&stdout)
                        .unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {stdout:?}"));
                    if verb == "state" {
                        let s = v["status"].as_str().unwrap_or_default();
                        assert!(
                            ["creating", "created", "running", "paused", "stopped"].contains(&s),
                            "{what}: status {s:?}"
                        );
                    }
                }
                assert!(stderr.is_empty() || verb == "delete", "{what}: {stderr}");
            } else {
                *counts.entry(format!("{verb} refused")).or_default() += 1;
                let lines: Vec<&str> = stderr.lines().collect();
                assert!(
                    lines.len() == 1 && lines[0].starts_with("carte: "),
                    "{what}: not one clean error line: {stderr:?}"
                );
                assert!(!stderr.contains("panick"), "{what}: {stderr}");
            }
        }
        // Whatever happened, the state tells the truth about it.
        assert_truth(&env, &id, &format!("trial {i}"));
        let out = env.carte(&["delete", "--force", &id]);
        assert!(out.ok(), "trial {i}: delete --force: {}", out.stderr);
        env.assert_no_leaks(&id);
    }
    eprintln!("outcomes: {counts:?}");
}

/// What a hostile bundle must give: one error line holding these words,
/// or a run whose output holds this text.
enum Expect {
    Fails(&'static [&'static str]),
    Prints(&'static str),
}

/// (name, how to make the bundle hostile, what must come of it). Cases in
/// tests/failures.rs are not repeated here.
type Hostile = (&'static str, fn(&mut Bundle), Expect);

fn raw_config(b: &mut Bundle, text: &[u8]) {
    // Keep `write` from overwriting it: the case writes the file itself.
    b.config = Value::Null;
    std::fs::write(b.dir.join("config.json"), text).unwrap();
}

fn push_mount(b: &mut Bundle, mount: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(mount);
}

fn sh(b: &mut Bundle, script: &str) {
    b.set_args(&["sh", "-c", script]);
}

/// A scratch path on the host, unique to this test process.
fn host_scratch(name: &str) -> String {
    format!("/tmp/carte-hostile-{}-{name}", std::process::id())
}

const CGROUP_MOUNT: fn() -> Value =
    || serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"});

const HOSTILE: &[Hostile] = &[
    (
        "empty config.json",
        |b| raw_config(b, b""),
        Expect::Fails(&["config.json", "EOF"]),
    ),
    (
        "config.json is an array",
        |b| raw_config(b, b"[1, 2]"),
        Expect::Fails(&["config.json", "invalid type"]),
    ),
    (
        "garbage after the object",
        |b| {
            let text = serde_json::to_vec(&b.config).unwrap();
            raw_config(b, &[&text[..], b" }{ garbage"].concat());
        },
        Expect::Fails(&["config.json", "trailing characters"]),
    ),
    (
        "not UTF-8",
        |b| {
            let text = serde_json::to_string(&b.config).unwrap();
            let text = text.replace("carte-test", "carte-\u{1}").into_bytes();
            let text: Vec<u8> = text
                .iter()
                .map(|&c| if c == 1 { 0xff } else { c })
                .collect();
            raw_config(b, &text);
        },
        Expect::Fails(&["config.json", "hostname"]),
    ),
    (
        "mounts is an object",
        |b| b.config["mounts"] = serde_json::json!({}),
        Expect::Fails(&["config.json", "mounts", "invalid type"]),
    ),
    (
        "memory limit is a string",
        |b| b.config["linux"]["resources"]["memory"] = serde_json::json!({"limit": "1G"}),
        Expect::Fails(&[
            "config.json",
            "linux.resources.memory.limit",
            "invalid type",
        ]),
    ),
    (
        "args are numbers",
        |b| b.config["process"]["args"] = serde_json::json!([1, 2]),
        Expect::Fails(&["config.json", "process.args[0]", "invalid type"]),
    ),
    (
        "memory limit past u64",
        |b| {
            b.config["linux"]["resources"]["memory"] = serde_json::json!({"limit": 424242});
            let text = serde_json::to_string(&b.config).unwrap();
            raw_config(b, text.replace("424242", "18446744073709551616").as_bytes());
        },
        Expect::Fails(&["config.json", "linux.resources.memory.limit"]),
    ),
    (
        "rlimit of 1e400",
        |b| {
            let text = serde_json::to_string(&b.config).unwrap();
            raw_config(
                b,
                text.replace("\"hard\":1024", "\"hard\":1e400").as_bytes(),
            );
        },
        Expect::Fails(&["config.json", "process.rlimits[0].hard", "out of range"]),
    ),
    (
        "cpu shares of 1e400",
        |b| {
            b.config["linux"]["resources"]["cpu"] = serde_json::json!({"shares": 424242});
            let text = serde_json::to_string(&b.config).unwrap();
            raw_config(b, text.replace("424242", "1e400").as_bytes());
        },
        Expect::Fails(&["config.json", "linux.resources.cpu.shares", "out of range"]),
    ),
    (
        "gid of 2^32",
        |b| b.config["process"]["user"]["gid"] = 4294967296u64.into(),
        Expect::Fails(&["config.json", "process.user.gid", "u32"]),
    ),
    (
        "oomScoreAdj of 5000",
        |b| b.config["process"]["oomScoreAdj"] = 5000.into(),
        Expect::Fails(&["config.json", "process.oomScoreAdj", "-1000..1000"]),
    ),
    (
        "uid mapping past 2^32",
        |b| {
            let linux = &mut b.config["linux"];
            linux["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            linux["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 4294967295u64}]);
            linux["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        },
        Expect::Fails(&["config.json", "linux.uidMappings[0]", "largest id"]),
    ),
    (
        "memory limit of -5",
        |b| b.config["linux"]["resources"]["memory"] = serde_json::json!({"limit": -5}),
        Expect::Fails(&[
            "config.json",
            "linux.resources.memory.limit",
            "-1 (unlimited)",
        ]),
    ),
    (
        "relative cgroupsPath with ..",
        |b| b.config["linux"]["cgroupsPath"] = "../../../etc".into(),
        Expect::Fails(&["config.json", "linux.cgroupsPath", ".."]),
    ),
    (
        "absolute cgroupsPath with ..",
        |b| b.config["linux"]["cgroupsPath"] = "/carte/../../x".into(),
        Expect::Fails(&["config.json", "linux.cgroupsPath", ".."]),
    ),
    (
        "hostname of 100 bytes",
        |b| b.config["hostname"] = "h".repeat(100).into(),
        Expect::Fails(&["config.json", "hostname", "64"]),
    ),
    (
        "hostname with a NUL",
        |b| b.config["hostname"] = "a\u{0}b".into(),
        Expect::Fails(&["config.json", "hostname", "NUL"]),
    ),
    (
        "env with a NUL",
        |b| {
            b.config["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push("A=b\u{0}c".into());
        },
        Expect::Fails(&["config.json", "process.env[2]", "NUL"]),
    ),
    (
        "a 1 MB env var",
        |b| {
            let big = format!("BIG={}", "x".repeat(1 << 20));
            b.config["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(big.into());
        },
        Expect::Fails(&["config.json", "process.env[2]", "131071"]),
    ),
    (
        "rootfs is a dangling symlink",
        |b| {
            std::os::unix::fs::symlink("/nonexistent-rootfs", b.dir.join("dangling")).unwrap();
            b.config["root"]["path"] = "dangling".into();
        },
        Expect::Fails(&["config.json", "root.path", "no such file or directory"]),
    ),
    (
        "rootfs is /dev/null",
        |b| b.config["root"]["path"] = "/dev/null".into(),
        Expect::Fails(&["config.json", "root.path", "not a directory"]),
    ),
    (
        "namespace path that does not exist",
        |b| {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "cgroup", "path": "/nonexistent/ns"}));
        },
        Expect::Fails(&["/nonexistent/ns", "no such file or directory"]),
    ),
    (
        "pids limit of -5 is unlimited",
        |b| {
            b.config["linux"]["resources"]["pids"] = serde_json::json!({"limit": -5});
            push_mount(b, CGROUP_MOUNT());
            sh(b, "echo pids=$(cat /sys/fs/cgroup/pids/pids.max)");
        },
        Expect::Prints("pids=max"),
    ),
    (
        "cpu quota of -5 and memory limit of -1 are unlimited",
        |b| {
            b.config["linux"]["resources"]["cpu"] =
                serde_json::json!({"quota": -5, "period": 100000});
            b.config["linux"]["resources"]["memory"] = serde_json::json!({"limit": -1});
            push_mount(b, CGROUP_MOUNT());
            sh(b, "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes)");
        },
        Expect::Prints("-1 9223372036854771712"),
    ),
    (
        "mount destination with .. stays in the rootfs",
        |b| {
            let dest = format!("/../../../..{}", host_scratch("dotdot"));
            push_mount(
                b,
                serde_json::json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}),
            );
            sh(
                b,
                &format!(
                    "grep -c ' {} ' /proc/self/mountinfo",
                    host_scratch("dotdot")
                ),
            );
        },
        Expect::Prints("1\n"),
    ),
    (
        "absolute symlink out of the rootfs under a mount",
        |b| {
            std::fs::create_dir_all(host_scratch("target")).unwrap();
            std::os::unix::fs::symlink(host_scratch("target"), b.rootfs().join("evil")).unwrap();
            push_mount(
                b,
                serde_json::json!({"destination": "/evil/inner", "type": "tmpfs", "source": "tmpfs"}),
            );
        },
        // Resolved in the rootfs, where the target does not exist.
        Expect::Fails(&["mounts[6]", "/evil/inner", "no such file or directory"]),
    ),
    (
        "device and masked paths with ..",
        |b| {
            b.config["linux"]["devices"] = serde_json::json!([{"path": "/dev/../../../tmp/hostile-null", "type": "c", "major": 1, "minor": 3}]);
            b.config["linux"]["maskedPaths"] = serde_json::json!(["/../../../etc/passwd"]);
            sh(
                b,
                "test -c /tmp/hostile-null && echo passwd=$(wc -c < /etc/passwd)",
            );
        },
        Expect::Prints("passwd=0"),
    ),
    (
        "root.path through ..",
        |b| {
            let name = b.dir.file_name().unwrap().to_str().unwrap().to_string();
            b.config["root"]["path"] = format!("../{name}/rootfs").into();
            sh(b, "echo ran");
        },
        Expect::Prints("ran"),
    ),
    (
        "10 000 bind mounts",
        |b| {
            std::fs::create_dir_all(b.dir.join("src")).unwrap();
            let source = b.dir.join("src").display().to_string();
            for i in 0..10_000 {
                push_mount(
                    b,
                    serde_json::json!({"destination": format!("/m/{i}"), "type": "bind", "source": source, "options": ["bind"]}),
                );
            }
            sh(b, "grep -c ' /m/' /proc/self/mountinfo");
        },
        Expect::Prints("10000"),
    ),
    (
        "300 kB annotation reaches the hooks whole",
        |b| {
            b.config["annotations"] = serde_json::json!({"big": "x".repeat(300_000)});
            let out = b.dir.join("hook-state.json").display().to_string();
            let hook = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {out}")]});
            b.config["hooks"] = serde_json::json!({"createContainer": [hook]});
            sh(b, "echo ran");
        },
        Expect::Prints("ran"),
    ),
];

/// Runs carte, failing the test if it takes longer than `limit`.
fn carte_within(env: &TestEnv, args: &[&str], limit: Duration) -> Out {
    let out_path = env.dir.join("hostile.out");
    let err_path = env.dir.join("hostile.err");
    let mut child = env
        .command(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status = wait_within(&mut child, limit, &format!("{args:?}"));
    Out {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

#[test]
fn hostile_bundles() {
    let env = TestEnv::new("hostile");
    for (i, (name, make, expect)) in HOSTILE.iter().enumerate() {
        let mut b = env.bundle(&format!("b{i}"));
        make(&mut b);
        if !b.config.is_null() {
            b.write();
        }
        let id = env.id(&format!("h{i}"));
        let t = Instant::now();
        let out = carte_within(
            &env,
            &["run", "--bundle", b.path(), &id],
            Duration::from_secs(60),
        );
        eprintln!("{name} ({:?}): {}", t.elapsed(), out.stderr.trim());
        match expect {
            Expect::Fails(words) => {
                out.assert_fails_with(words);
            }
            Expect::Prints(text) => {
                assert!(out.ok(), "{name}: {}", out.stderr);
                assert!(
                    out.stdout.contains(text),
                    "{name}: printed {:?}",
                    out.stdout
                );
            }
        }
        env.assert_no_leaks(&id);
    }
    // What the cases with paths out of the rootfs must not have touched.
    assert!(!Path::new(&host_scratch("dotdot")).exists());
    assert!(!Path::new(&host_scratch("target")).join("inner").exists());
    assert!(!Path::new("/tmp/hostile-null").exists());
    let _ = std::fs::remove_dir_all(host_scratch("target"));
    let hook_state = env
        .dir
        .join(format!("b{}", HOSTILE.len() - 1))
        .join("hook-state.json");
    let state: Value = serde_json::from_slice(&std::fs::read(hook_state).unwrap())
        .expect("the hook got whole JSON");
    assert_eq!(state["annotations"]["big"].as_str().unwrap().len(), 300_000);
}

#[test]
fn hostile_ids() {
    let env = TestEnv::new("hostile-ids");
    let b = env.bundle("b");
    let long = "i".repeat(1000);
    let cases: [(&str, &[&str]); 5] = [
        (
            &long,
            &["invalid container id", "1000 bytes", "longer than 255"],
        ),
        ("a/b", &["invalid container id", "\"a/b\"", "allowed"]),
        ("..", &["invalid container id", "relative path"]),
        ("../escape", &["invalid container id", "allowed"]),
        ("a\nb", &["invalid container id", "allowed"]),
    ];
    for (id, words) in cases {
        for args in [
            &["create", "--bundle", b.path(), id][..],
            &["state", id],
            &["kill", id, "KILL"],
            &["delete", "--force", id],
        ] {
            carte_within(&env, args, Duration::from_secs(10)).assert_fails_with(words);
        }
    }
    assert!(!env.dir.join("escape").exists());
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state dirs left: {left:?}");
}

/// delete kills whatever is in the container's cgroup, so create refuses a
/// cgroupsPath whose cgroup holds processes already (a service's, or "/").
#[test]
fn cgroup_with_strangers_is_refused() {
    let env = TestEnv::new("foreign-cgroup");
    let mut b = env.bundle("b");
    let name = format!("carte-foreign-{}", std::process::id());
    let dir = Path::new("/sys/fs/cgroup/pids").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut stranger = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(dir.join("cgroup.procs"), stranger.id().to_string()).unwrap();
    b.config["linux"]["cgroupsPath"] = format!("/{name}").into();
    b.write();
    let id = env.id("c");
    let out = carte_within(
        &env,
        &["create", "--bundle", b.path(), &id],
        Duration::from_secs(10),
    );
    let _ = env.carte(&["delete", "--force", &id]);
    let alive = stranger.try_wait().unwrap().is_none();
    let _ = stranger.kill();
    let _ = stranger.wait();
    let _ = std::fs::remove_dir(&dir);
    out.assert_fails_with(&[
        "config.json",
        "linux.cgroupsPath",
        "already holds 1 processes",
    ]);
    assert!(alive, "carte killed a process of a cgroup it does not own");
    env.assert_no_leaks(&id);
}
