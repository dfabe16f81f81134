//! The systemd cgroup driver against a stand-in systemd on this host, which
//! has none: a private dbus-daemon, and tests/helpers/fake-systemd.py
//! owning org.freedesktop.systemd1 on it (it makes the scope's cgroup where
//! systemd would, moves the PIDs in, sends JobRemoved, and logs each call
//! with its D-Bus types). carte runs in a private mount namespace with
//! /run/systemd/system present, and reaches the bus through
//! DBUS_SYSTEM_BUS_ADDRESS. What this proves: carte's D-Bus client against
//! the reference bus daemon, the calls and properties it sends, and every
//! verb on a scope's cgroup. The real systemd is the VM's to test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

struct FakeSystemd {
    dir: PathBuf,
    address: String,
    log: PathBuf,
    children: Vec<Child>,
    /// The slices this test's scopes go in, removed at the end.
    slices: Vec<&'static str>,
}

impl FakeSystemd {
    /// None where dbus-daemon or python3's dbus and gi modules are missing.
    fn start(env: &TestEnv, slices: &[&'static str], version: &str) -> Option<FakeSystemd> {
        let python_ok = Command::new("/usr/bin/python3")
            .args(["-c", "import dbus, gi.repository.GLib"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !Path::new("/usr/bin/dbus-daemon").exists() || !python_ok {
            eprintln!("skipped: needs dbus-daemon, python3-dbus and python3-gi");
            return None;
        }
        let dir = env.dir.join("bus");
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("bus.sock");
        std::fs::write(
            dir.join("bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"#,
                sock.display()
            ),
        )
        .unwrap();
        let mut fake = FakeSystemd {
            address: format!("unix:path={}", sock.display()),
            log: dir.join("calls.jsonl"),
            dir,
            children: Vec::new(),
            slices: slices.to_vec(),
        };
        fake.children.push(
            Command::new("/usr/bin/dbus-daemon")
                .arg(format!(
                    "--config-file={}",
                    fake.dir.join("bus.conf").display()
                ))
                .args(["--nofork", "--nopidfile"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon made no socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/fake-systemd.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&fake.address)
            .arg(&fake.log)
            .env("FAKE_SYSTEMD_VERSION", version)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "fake systemd did not start");
        fake.children.push(child);
        Some(fake)
    }

    /// carte in a mount namespace where /run/systemd/system exists, on the
    /// private bus. The global flag goes only where it is given.
    fn carte(&self, env: &TestEnv, args: &[&str]) -> Out {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec \"$@\"")
            .arg("sh")
            .arg(carte_bin())
            .arg("--root")
            .arg(&env.root)
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address);
        env.carte_cmd(cmd)
    }

    /// Every call carte made, in order.
    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn calls_named(&self, call: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["call"] == call)
            .collect()
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        for child in &mut self.children {
            // Our own children, by pid.
            let _ = child.kill();
            let _ = child.wait();
        }
        // The slices systemd would own, made here by the stand-in and by
        // carte in the hierarchies systemd leaves alone: gone once empty
        // (each test uses its own).
        for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            for slice in &self.slices {
                let _ = std::fs::remove_dir(entry.path().join(slice));
            }
        }
    }
}

/// The value of property `name` in a call's list, as the fake logged it.
fn prop(call: &Value, name: &str) -> Value {
    call["props"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|p| p[0] == name)
        .map(|p| p[1].clone())
        .unwrap_or(Value::Null)
}

fn v1_or_v2_file(ctrl: &str, cgroup: &str, v1: &str, v2: &str) -> PathBuf {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from(format!("/sys/fs/cgroup{cgroup}/{v2}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{cgroup}/{v1}"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Nothing of the scope left in any hierarchy.
#[track_caller]
fn assert_scope_gone(cgroup: &str) {
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = PathBuf::from(format!("{}{cgroup}", entry.path().display()));
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn a_scope_through_every_verb() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("sd-scope");
    let Some(sd) = FakeSystemd::start(&env, &["machine.slice"], "252.30-1~deb12u1") else {
        return;
    };
    let id = env.id("c");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("machine.slice:libpod:{id}"));
    b.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 32});
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    b.config["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "5"});
    b.write();
    let cgroup = format!("/machine.slice/libpod-{id}.scope");

    sd.carte(&env, &["--systemd-cgroup", "create", "-b", b.path(), &id])
        .assert_ok();
    let state: Value = serde_json::from_str(&read(&env.root.join(&id).join("state.json"))).unwrap();
    assert_eq!(state["cgroupDriver"], "systemd");
    assert_eq!(state["cgroupPath"], cgroup.as_str());
    let pid = state["pid"].as_i64().unwrap();

    // What carte asked systemd for.
    let start = &sd.calls_named("StartTransientUnit")[0];
    assert_eq!(start["name"], format!("libpod-{id}.scope"));
    assert_eq!(start["mode"], "replace");
    assert_eq!(prop(start, "Slice"), "machine.slice");
    assert_eq!(prop(start, "Delegate"), json!({"b": true}));
    assert_eq!(prop(start, "DefaultDependencies"), json!({"b": false}));
    assert_eq!(prop(start, "PIDs").as_array().unwrap().len(), 1);
    assert_eq!(prop(start, "CPUQuotaPerSecUSec"), json!({"t": 500000}));
    assert_eq!(prop(start, "CPUQuotaPeriodUSec"), json!({"t": 100000}));
    assert_eq!(prop(start, "TasksMax"), json!({"t": 32}));
    assert_eq!(prop(start, "TimeoutStopUSec"), json!({"t": 5_000_000}));
    assert_eq!(prop(start, "DevicePolicy"), "strict");
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let memory_prop = if unified { "MemoryMax" } else { "MemoryLimit" };
    assert_eq!(prop(start, memory_prop), json!({"t": 64 << 20}));
    let allowed = prop(start, "DeviceAllow");
    assert!(
        allowed
            .as_array()
            .unwrap()
            .contains(&json!(["/dev/char/1:3", "rwm"])),
        "{allowed}"
    );

    // The files agree, and init is in the scope in every hierarchy.
    let mem = v1_or_v2_file("memory", &cgroup, "memory.limit_in_bytes", "memory.max");
    assert_eq!(read(&mem), (64 << 20).to_string());
    assert_eq!(
        read(&v1_or_v2_file("pids", &cgroup, "pids.max", "pids.max")),
        "32"
    );
    let init_cgroups = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for line in init_cgroups.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        if line.contains("memory") || line.contains("freezer") || line.starts_with("0::") && unified
        {
            assert_eq!(path, cgroup, "{init_cgroups}");
        }
    }

    // Later verbs without the flag follow state.json.
    sd.carte(&env, &["start", &id]).assert_ok();
    env.wait_status(&id, "running");
    let pid_file = env.dir.join("exec.pid");
    sd.carte(
        &env,
        &[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "1000",
        ],
    )
    .assert_ok();
    let exec_pid: i64 = read(&pid_file).parse().unwrap();
    let exec_cgroups = read(Path::new(&format!("/proc/{exec_pid}/cgroup")));
    assert!(
        exec_cgroups.contains(&format!(":{cgroup}")),
        "exec outside the scope: {exec_cgroups}"
    );
    let ps = sd.carte(&env, &["ps", "--format", "json", &id]);
    ps.assert_ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&exec_pid), "{pids:?}");

    sd.carte(
        &env,
        &["update", "--memory", "128m", "--pids-limit", "64", &id],
    )
    .assert_ok();
    let set = sd.calls_named("SetUnitProperties");
    assert_eq!(set.len(), 1, "{set:?}");
    assert_eq!(set[0]["name"], format!("libpod-{id}.scope"));
    assert_eq!(set[0]["runtime"], true);
    assert_eq!(prop(&set[0], memory_prop), json!({"t": 128 << 20}));
    assert_eq!(prop(&set[0], "TasksMax"), json!({"t": 64}));
    assert_eq!(read(&mem), (128 << 20).to_string());
    // A refused update changes neither the files nor the unit.
    if !Path::new(&v1_or_v2_file(
        "blkio",
        "",
        "blkio.bfq.weight",
        "io.bfq.weight",
    ))
    .exists()
        && !Path::new(&v1_or_v2_file("blkio", "", "blkio.weight", "io.weight")).exists()
    {
        sd.carte(
            &env,
            &["update", "--memory", "96m", "--blkio-weight", "500", &id],
        )
        .assert_fails_with(&["blockIO.weight"]);
        assert_eq!(sd.calls_named("SetUnitProperties").len(), 1);
        assert_eq!(read(&mem), (128 << 20).to_string());
    }

    sd.carte(&env, &["pause", &id]).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("paused"));
    sd.carte(&env, &["resume", &id]).assert_ok();
    assert_eq!(env.status(&id).as_deref(), Some("running"));
    let stats = sd.carte(&env, &["events", "--stats", &id]);
    stats.assert_ok();
    let stats: Value = serde_json::from_str(&stats.stdout).unwrap();
    assert_eq!(stats["data"]["pids"]["current"], 2, "{stats}");

    sd.carte(&env, &["kill", "--all", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    sd.carte(&env, &["delete", &id]).assert_ok();
    let stop = sd.calls_named("StopUnit");
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0]["name"], format!("libpod-{id}.scope"));
    assert_scope_gone(&cgroup);
    env.assert_no_leaks(&id);
}

/// The default scope, a delete --force of a created container, a create
/// whose unit name is taken, and a cgroupsPath not in the driver's form.
#[test]
fn default_scope_force_delete_and_bad_paths() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("sd-edge");
    let Some(sd) = FakeSystemd::start(&env, &["system.slice"], "241") else {
        return;
    };
    let b = env.bundle("b");
    let mut b2 = env.bundle("b2");
    b2.set_args(&["sleep", "1000"]);
    b2.write();
    let id = env.id("d");
    sd.carte(&env, &["--systemd-cgroup", "create", "-b", b2.path(), &id])
        .assert_ok();
    let cgroup = format!("/system.slice/carte-{id}.scope");
    assert_eq!(env.state(&id).unwrap()["status"], "created");
    assert_eq!(
        sd.calls_named("StartTransientUnit")[0]["name"],
        format!("carte-{id}.scope")
    );

    // A second container on the same scope: refused, the first untouched.
    let mut same = env.bundle("same");
    same.config["linux"]["cgroupsPath"] = json!(format!("system.slice:carte:{id}"));
    same.write();
    let other = env.id("o");
    sd.carte(
        &env,
        &["--systemd-cgroup", "create", "-b", same.path(), &other],
    )
    .assert_fails_with(&["already holds"]);
    assert!(!env.root.join(&other).exists());
    assert_eq!(env.status(&id).as_deref(), Some("created"));

    sd.carte(&env, &["delete", "--force", &id]).assert_ok();
    assert_scope_gone(&cgroup);
    env.assert_no_leaks(&id);

    let mut bad = env.bundle("bad");
    for path in ["/abs/path", "a:b", "nosuffix:p:n", "system.slice:p:x y"] {
        bad.config["linux"]["cgroupsPath"] = json!(path);
        bad.write();
        let bid = env.id("bad");
        sd.carte(&env, &["--systemd-cgroup", "run", "-b", bad.path(), &bid])
            .assert_fails_with(&["config.json", "linux.cgroupsPath"]);
        assert!(!env.root.join(&bid).exists());
    }
    assert_eq!(sd.calls_named("StartTransientUnit").len(), 1);

    // A create killed while its scope exists (in a prestart hook): delete
    // --force stops the unit and leaves nothing.
    let mut hooked = env.bundle("hooked");
    hooked.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "100"]}]});
    hooked.write();
    let kid = env.id("k");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec \"$@\"")
        .arg("sh")
        .arg(carte_bin())
        .arg("--root")
        .arg(&env.root)
        .args(["--systemd-cgroup", "create", "-b", hooked.path(), &kid])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &sd.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut create = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sd.calls_named("StartTransientUnit").len() < 2 {
        assert!(Instant::now() < deadline, "no scope for the hooked create");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    create.kill().unwrap();
    create.wait().unwrap();
    let kcgroup = format!("/system.slice/carte-{kid}.scope");
    sd.carte(&env, &["delete", "--force", &kid]).assert_ok();
    assert!(sd
        .calls_named("StopUnit")
        .iter()
        .any(|c| c["name"] == format!("carte-{kid}.scope")));
    assert_scope_gone(&kcgroup);
    env.assert_no_leaks(&kid);

    // run under the driver: in and out, nothing left. This systemd (241)
    // predates CPUQuotaPeriodUSec and AllowedCPUs: only the files get them.
    let mut b = b;
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 50000, "cpus": "0"});
    b.write();
    let rid = env.id("r");
    sd.carte(&env, &["--systemd-cgroup", "run", "-b", b.path(), &rid])
        .assert_ok();
    let start = sd.calls_named("StartTransientUnit").pop().unwrap();
    assert_eq!(start["name"], format!("carte-{rid}.scope"));
    assert_eq!(prop(&start, "CPUQuotaPerSecUSec"), json!({"t": 400000}));
    assert_eq!(prop(&start, "CPUQuotaPeriodUSec"), Value::Null);
    assert_eq!(prop(&start, "AllowedCPUs"), Value::Null);
    assert_scope_gone(&format!("/system.slice/carte-{rid}.scope"));
    env.assert_no_leaks(&rid);
}
