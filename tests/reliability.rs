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
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/carte/{id}/freezer.state"))
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
            // What survived still works: a created container starts.
            if status.as_deref() == Some("created") {
                env.carte(&["start", &id]).assert_ok();
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
