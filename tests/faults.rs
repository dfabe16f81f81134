//! The fault-injection walk: every failpoint in `carte::failpoint::ALL` is
//! set in turn (CARTE_FAILPOINT) while the verbs that reach it run on a
//! busybox bundle. Each must fail with one line naming the failpoint and
//! leave nothing behind: no state dir, cgroup, mount, process or open
//! exec.fifo; and a create of the same id must then succeed.
//!
//! Run with `cargo test --features failpoints --target-dir target/failpoints
//! --test faults` (a separate target dir keeps the normal binary as is).
#![cfg(feature = "failpoints")]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// No carte call may take longer than this: a hang is a failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The bundle a failpoint needs to be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Config {
    /// runc's defaults: pid, network, ipc, uts and mount namespaces.
    Default,
    /// Every hook kind, a bind and a cgroup mount, a device, a sysctl, a
    /// readonly root, a seccomp profile and a cgroup namespace.
    Full,
    /// A user namespace (identity maps), cgroup and time namespaces.
    Userns,
    /// Every namespace joined by path, those of a holder container.
    Join,
}

/// Where the failpoint fires, which decides what the walk expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `create` fails.
    Create,
    /// `create` succeeds, `start` fails; the container is still there.
    Start,
    /// `create` succeeds, `exec` fails; the container is intact.
    Exec,
    /// `create` succeeds, `delete --force` fails; nothing is left after a
    /// second `delete --force`.
    Delete,
    /// poststart: `start` fails and destroys the container (runtime.md,
    /// lifecycle step 9); a caller's `delete --force` then succeeds.
    Poststart,
    /// poststop: a warning too; `delete` succeeds.
    WarnDelete,
    /// init fails after `create` has recorded the container and returned:
    /// init reports on its stderr and exits, so the container ends stopped.
    AfterCreate,
    /// startContainer runs in init after `start` has released it: init
    /// reports on the exec fifo, `start` fails with it, and init exits, so
    /// the container ends stopped.
    AfterStart,
}

fn plan(name: &str) -> (Config, Phase) {
    let phase = match name {
        "hook.poststart" => Phase::Poststart,
        "hook.poststop" => Phase::WarnDelete,
        "pipe.recv.created" => Phase::AfterCreate,
        n if n.starts_with("start.") => Phase::Start,
        "hook.startContainer" => Phase::AfterStart,
        n if n.starts_with("exec.") => Phase::Exec,
        n if n.starts_with("delete.") || n == "cgroup.destroy" => Phase::Delete,
        _ => Phase::Create,
    };
    let config = match name {
        // Without hooks, init does not ask the parent to run them.
        n if n.starts_with("hook.") || n.contains("hooks") => Config::Full,
        n if n.starts_with("ns.setns.") => Config::Join,
        n if n.contains("maps") => Config::Userns,
        "ns.unshare.user" | "ns.unshare.cgroup" | "ns.unshare.time" | "ns.time_offsets" => {
            Config::Userns
        }
        "exec.setns.user" | "exec.setns.cgroup" | "exec.setns.time" => Config::Userns,
        "rootfs.mount.bind"
        | "rootfs.mount.cgroup"
        | "rootfs.devices"
        | "rootfs.sysctl"
        | "rootfs.readonly_root"
        | "attrs.seccomp" => Config::Full,
        _ => Config::Default,
    };
    (config, phase)
}

fn namespaces(b: &mut Bundle) -> &mut Vec<serde_json::Value> {
    b.config["linux"]["namespaces"].as_array_mut().unwrap()
}

fn make_bundle(env: &TestEnv, name: &str, config: Config, holder: Option<i32>) -> Bundle {
    let mut b = env.bundle(name);
    b.set_args(&["sleep", "1000"]);
    match config {
        Config::Default => {}
        Config::Full => {
            let hook = json!([{"path": "/bin/true"}]);
            b.config["hooks"] = json!({
                "prestart": hook, "createRuntime": hook, "createContainer": hook,
                "startContainer": hook, "poststart": hook, "poststop": hook,
            });
            let data = b.dir.join("data");
            fs::create_dir_all(&data).unwrap();
            let mounts = b.config["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "bind",
                "source": data, "options": ["rbind", "ro"]}));
            mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
                "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}));
            namespaces(&mut b).push(json!({"type": "cgroup"}));
            b.config["linux"]["devices"] =
                json!([{"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3}]);
            b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]});
            b.config["root"]["readonly"] = json!(true);
        }
        Config::Userns => {
            namespaces(&mut b).extend([json!({"type": "user"}), json!({"type": "cgroup"})]);
            if host().time_namespace {
                namespaces(&mut b).push(json!({"type": "time"}));
                b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400}});
            }
            let identity = json!([{"containerID": 0, "hostID": 0, "size": 4294967295u32}]);
            b.config["linux"]["uidMappings"] = identity.clone();
            b.config["linux"]["gidMappings"] = identity;
        }
        Config::Join => {
            let pid = holder.expect("a holder container");
            // The mount namespace last: joining it is never done for real
            // (its failpoint fires first), as its root is the holder's.
            *namespaces(&mut b) = [
                ("user", "user"),
                ("ipc", "ipc"),
                ("uts", "uts"),
                ("network", "net"),
                ("pid", "pid"),
                ("cgroup", "cgroup"),
                ("time", "time"),
                ("mount", "mnt"),
            ]
            .iter()
            .filter(|(kind, _)| *kind != "time" || host().time_namespace)
            .map(|(kind, file)| json!({"type": kind, "path": format!("/proc/{pid}/ns/{file}")}))
            .collect();
        }
    }
    b.write();
    b
}

/// One carte call's outcome, or a hang.
struct Call {
    ok: bool,
    stderr: String,
}

fn call(env: &TestEnv, args: &[&str], fp: Option<&str>, hits: &Path, err_file: &Path) -> Call {
    let mut cmd = env.command(args);
    match fp {
        Some(name) => cmd.env("CARTE_FAILPOINT", name),
        None => cmd.env_remove("CARTE_FAILPOINT"),
    };
    cmd.env("CARTE_FAILPOINT_HITS", hits)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(err_file).unwrap());
    let mut child = cmd.spawn().expect("spawn carte");
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Call {
                ok: status.success(),
                stderr: fs::read_to_string(err_file).unwrap_or_default(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Call {
                ok: false,
                stderr: format!(
                    "HANG: carte {} did not end in {CALL_TIMEOUT:?}",
                    args.join(" ")
                ),
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// One line naming the failpoint; `ok` is whether the verb should succeed.
fn check_line(what: &str, c: &Call, name: &str, ok: bool) -> Result<(), String> {
    if c.stderr.starts_with("HANG") {
        return Err(c.stderr.clone());
    }
    if c.ok != ok {
        return Err(format!(
            "{what}: expected {}, got {}: {:?}",
            if ok { "success" } else { "failure" },
            if c.ok { "success" } else { "failure" },
            c.stderr
        ));
    }
    let ls = lines(&c.stderr);
    let needle = format!("failpoint {name}");
    if ls.len() != 1 || !ls[0].contains(&needle) {
        return Err(format!(
            "{what}: expected one line naming {needle:?}, got {:?}",
            c.stderr
        ));
    }
    Ok(())
}

fn expect_ok(what: &str, c: &Call) -> Result<(), String> {
    if c.ok {
        Ok(())
    } else {
        Err(format!("{what} failed: {}", c.stderr.trim()))
    }
}

/// What is left of container `id`, if anything.
fn leftovers(env: &TestEnv, id: &str, bundle: &Path, hits: &Path) -> Vec<String> {
    let mut left = Vec::new();
    if env.root.join(id).exists() {
        left.push(format!("state dir {}", env.root.join(id).display()));
    }
    for entry in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for cg in [entry.path().join("carte").join(id), entry.path().join(id)] {
            if cg.exists() {
                left.push(format!("cgroup {}", cg.display()));
            }
        }
    }
    let bundle_s = bundle.to_string_lossy().into_owned();
    for line in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        if line.contains(&bundle_s) {
            left.push(format!("mount {line}"));
        }
    }
    let env_needle = format!("CARTE_FAILPOINT_HITS={}", hits.display());
    let cg_needle = format!(":/{id}\n");
    let fifo = env.root.join(id).join("exec.fifo");
    let me = std::process::id().to_string();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let p = entry.path();
        let in_bundle =
            |link: &str| fs::read_link(p.join(link)).is_ok_and(|t| t.starts_with(bundle));
        let environ = fs::read(p.join("environ")).unwrap_or_default();
        let cmdline = fs::read(p.join("cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&environ)
            .split('\0')
            .any(|v| v == env_needle)
            || String::from_utf8_lossy(&cmdline).contains(&bundle_s)
            || in_bundle("cwd")
            || in_bundle("root")
            || fs::read_to_string(p.join("cgroup")).is_ok_and(|c| c.contains(&cg_needle));
        if ours {
            let comm = fs::read_to_string(p.join("comm")).unwrap_or_default();
            left.push(format!("process {pid} ({})", comm.trim()));
        }
        for fd in fs::read_dir(p.join("fd")).into_iter().flatten().flatten() {
            if fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(&fifo)) {
                left.push(format!("exec.fifo open in process {pid}"));
            }
        }
    }
    left
}

/// Nothing left, allowing a moment for killed processes to be reaped.
fn nothing_left(env: &TestEnv, id: &str, bundle: &Path, hits: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = leftovers(env, id, bundle, hits);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("left behind: {left:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The container still exists and its init lives.
fn intact(env: &TestEnv, id: &str) -> Result<(), String> {
    match env.status(id).as_deref() {
        Some("created" | "running") => Ok(()),
        other => Err(format!(
            "container not intact after the failure: status {other:?}"
        )),
    }
}

/// Processes in the container's PID namespace besides its init: a failed
/// exec must leave none, not even a zombie (it would hold up delete).
fn strays(env: &TestEnv, id: &str) -> Result<(), String> {
    let state = env.state(id).ok_or("no state")?;
    let init = state["pid"].as_i64().unwrap_or(0);
    let ns = fs::read_link(format!("/proc/{init}/ns/pid")).map_err(|e| e.to_string())?;
    let mut left = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == init.to_string() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if fs::read_link(entry.path().join("ns/pid")).is_ok_and(|l| l == ns) {
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            left.push(stat.split(' ').take(3).collect::<Vec<_>>().join(" "));
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "processes left in the container after a failed exec: {left:?}"
        ))
    }
}

struct Walk {
    env: TestEnv,
    holder_pid: i32,
    counter: AtomicUsize,
}

impl Walk {
    fn case(&self, name: &'static str) -> Result<(), String> {
        let (config, phase) = plan(name);
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let env = &self.env;
        let id = env.id(&format!("f{n}"));
        let b = make_bundle(env, &format!("b{n}"), config, Some(self.holder_pid));
        let hits = env.dir.join(format!("hits-{n}"));
        let err = env.dir.join(format!("err-{n}"));
        let bundle = b.dir.clone();
        let fp = Some(name);
        let create = |fp| call(env, &["create", "--bundle", b.path(), &id], fp, &hits, &err);
        let force_delete = |fp| call(env, &["delete", "--force", &id], fp, &hits, &err);
        match phase {
            Phase::Create => check_line("create", &create(fp), name, false)?,
            Phase::Start => {
                expect_ok("create", &create(fp))?;
                check_line(
                    "start",
                    &call(env, &["start", &id], fp, &hits, &err),
                    name,
                    false,
                )?;
                intact(env, &id)?;
                expect_ok("delete --force", &force_delete(None))?;
            }
            Phase::Exec => {
                expect_ok("create", &create(fp))?;
                let c = call(env, &["exec", &id, "true"], fp, &hits, &err);
                check_line("exec", &c, name, false)?;
                intact(env, &id)?;
                strays(env, &id)?;
                // Intact: a second exec works.
                expect_ok(
                    "exec",
                    &call(env, &["exec", &id, "true"], None, &hits, &err),
                )?;
                expect_ok("delete --force", &force_delete(None))?;
            }
            Phase::Delete => {
                expect_ok("create", &create(fp))?;
                check_line("delete --force", &force_delete(fp), name, false)?;
                // "Nothing left" holds after the caller's retry.
                expect_ok("second delete --force", &force_delete(None))?;
            }
            Phase::Poststart => {
                expect_ok("create", &create(fp))?;
                check_line(
                    "start",
                    &call(env, &["start", &id], fp, &hits, &err),
                    name,
                    false,
                )?;
                expect_ok("delete --force", &force_delete(None))?;
            }
            Phase::WarnDelete => {
                expect_ok("create", &create(fp))?;
                check_line("delete --force", &force_delete(fp), name, true)?;
            }
            Phase::AfterStart | Phase::AfterCreate => {
                // init keeps create's stderr: its line lands there.
                let init_err = env.dir.join(format!("init-err-{n}"));
                let c = call(
                    env,
                    &["create", "--bundle", b.path(), &id],
                    fp,
                    &hits,
                    &init_err,
                );
                expect_ok("create", &c)?;
                if phase == Phase::AfterStart {
                    let start = call(env, &["start", &id], fp, &hits, &err);
                    check_line("start", &start, name, false)?;
                }
                let deadline = Instant::now() + Duration::from_secs(5);
                while env.status(&id).as_deref() != Some("stopped") {
                    if Instant::now() > deadline {
                        return Err("the container never stopped".into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let c = Call {
                    ok: false,
                    stderr: fs::read_to_string(&init_err).unwrap_or_default(),
                };
                check_line("init after start", &c, name, false)?;
                expect_ok("delete", &call(env, &["delete", &id], None, &hits, &err))?;
            }
        }
        nothing_left(env, &id, &bundle, &hits)?;
        let hit = fs::read_to_string(&hits).unwrap_or_default();
        if !hit.lines().any(|l| l == name) {
            return Err("never hit".into());
        }
        // The same id again, without the failpoint (a joining bundle would
        // enter the holder's mount namespace for real: the defaults instead).
        let again = if config == Config::Join {
            make_bundle(env, &format!("b{n}-again"), Config::Default, None)
        } else {
            b
        };
        let c = call(
            env,
            &["create", "--bundle", again.path(), &id],
            None,
            &hits,
            &err,
        );
        expect_ok("create again", &c)?;
        expect_ok("delete again", &force_delete(None))?;
        nothing_left(env, &id, &again.dir, &hits)
    }
}

#[test]
fn every_failpoint_fails_cleanly() {
    let started = Instant::now();
    let env = TestEnv::new("faults");
    // The holder whose namespaces the joining bundle enters.
    let holder = make_bundle(&env, "holder", Config::Userns, None);
    let holder_id = env.id("holder");
    env.carte(&["create", "--bundle", holder.path(), &holder_id])
        .assert_ok();
    let holder_pid = env.state(&holder_id).unwrap()["pid"].as_i64().unwrap() as i32;
    let walk = Walk {
        env,
        holder_pid,
        counter: AtomicUsize::new(0),
    };
    let only = std::env::var("FAULTS_ONLY").ok();
    let timens = host().time_namespace;
    if !timens {
        skip(
            "faults::every_failpoint_fails_cleanly",
            "the time namespace failpoints left out: this kernel has no time namespace",
        );
    }
    let names: Vec<&'static str> = carte::failpoint::ALL
        .iter()
        .copied()
        .filter(|n| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == *n))
        })
        .filter(|n| timens || !n.contains("time"))
        .collect();
    // FAULTS_VERBOSE=1: a line per failpoint with its phase and time.
    let verbose = std::env::var_os("FAULTS_VERBOSE").is_some();
    let next = AtomicUsize::new(0);
    let results: Mutex<HashMap<&'static str, Result<(), String>>> = Default::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&name) = names.get(i) else { break };
                let t = Instant::now();
                let r = walk.case(name);
                if r.is_err() || verbose {
                    eprintln!(
                        "failpoint {name:32} {:?} {:>5} ms{}",
                        plan(name),
                        t.elapsed().as_millis(),
                        r.as_ref()
                            .err()
                            .map(|e| format!("  FAIL: {e}"))
                            .unwrap_or_default()
                    );
                }
                results.lock().unwrap().insert(name, r);
            });
        }
    });
    walk.env
        .carte(&["delete", "--force", &holder_id])
        .assert_ok();
    let results = results.into_inner().unwrap();
    let failed: Vec<String> = names
        .iter()
        .filter_map(|n| match &results[n] {
            Err(e) => Some(format!("{n}: {e}")),
            Ok(()) => None,
        })
        .collect();
    println!(
        "failpoints covered ({} of {} in {:.1} s): {}",
        names.len() - failed.len(),
        names.len(),
        started.elapsed().as_secs_f64(),
        names.join(" ")
    );
    assert!(
        failed.is_empty(),
        "{} failpoints failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Every `failpoint!("...")` in src/ is in ALL, and every name in ALL is in src/.
#[test]
fn all_lists_every_failpoint_in_the_sources() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut in_src = BTreeSet::new();
    let marker = "failpoint!(\"";
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (i, _) in text.match_indices(marker) {
            let rest = &text[i + marker.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            // The macro's own documentation shows it with a placeholder.
            if name != "area.step" && name != "..." {
                assert!(
                    in_src.insert(name.to_string()),
                    "{name} appears twice in src/"
                );
            }
        }
    }
    let all: BTreeSet<String> = carte::failpoint::ALL
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(all.len(), carte::failpoint::ALL.len(), "ALL has duplicates");
    let missing: Vec<_> = in_src.difference(&all).collect();
    let stale: Vec<_> = all.difference(&in_src).collect();
    assert!(missing.is_empty(), "in src/ but not in ALL: {missing:?}");
    assert!(stale.is_empty(), "in ALL but not in src/: {stale:?}");
}
