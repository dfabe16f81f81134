//! Rootless carte, run by a real unprivileged user: `carte-rl`, made for
//! each test (useradd, with /etc/subuid and /etc/subgid ranges) and removed
//! after it (userdel -r), also when the test fails. The tests hold one lock,
//! as they share the user. carte runs through setpriv with the user's ids
//! and groups, and with XDG_RUNTIME_DIR set to a dir the user owns in the
//! test's dir; no --root, so the default state root is what is checked.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::*;
use serde_json::{json, Value};

const USER: &str = "carte-rl";
const SUB_START: u32 = 200000;
const SUB_COUNT: u32 = 65536;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The test user, removed on drop.
struct TestUser {
    uid: u32,
    gid: u32,
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

impl TestUser {
    fn new() -> TestUser {
        // A user left by a killed run goes first.
        let _ = sh(&format!("userdel -r -f {USER} 2>/dev/null"));
        let (ok, text) = sh(&format!("useradd -M -s /bin/sh {USER}"));
        assert!(ok, "useradd: {text}");
        // useradd may or may not have given ranges (login.defs): set ours.
        let end = SUB_START + SUB_COUNT - 1;
        let user = TestUser {
            uid: id_of("-u"),
            gid: id_of("-g"),
        };
        let (ok, text) = sh(&format!(
            "usermod --del-subuids 1-4294967294 --del-subgids 1-4294967294 {USER} && \
             usermod --add-subuids {SUB_START}-{end} --add-subgids {SUB_START}-{end} {USER}"
        ));
        assert!(ok, "usermod: {text}");
        user
    }

    fn drop_ranges(&self) {
        let (ok, text) = sh(&format!(
            "usermod --del-subuids 1-4294967294 --del-subgids 1-4294967294 {USER}"
        ));
        assert!(ok, "usermod: {text}");
    }
}

fn id_of(flag: &str) -> u32 {
    let (ok, text) = sh(&format!("id {flag} {USER}"));
    assert!(ok, "id: {text}");
    text.trim().parse().unwrap()
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let (ok, text) = sh(&format!("userdel -r -f {USER} 2>&1"));
        // -r complains that there is no home (useradd -M): not a failure.
        assert!(
            ok || text.contains("not found") || text.contains("home"),
            "userdel: {text}"
        );
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = fs::read_to_string(file).unwrap_or_default();
            assert!(!text.contains(USER), "{file} still names {USER}");
        }
    }
}

/// One test's world: the user, a TestEnv dir, the user's runtime dir.
/// Drops in order: the containers (deleted as the user), then the user.
struct Rl {
    ids: Vec<String>,
    xdg: PathBuf,
    env: TestEnv,
    /// Removed after the containers, before the user.
    delegated: Option<Delegated>,
    user: TestUser,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Rl {
    fn new(name: &str) -> Rl {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let user = TestUser::new();
        let env = TestEnv::new(name);
        let xdg = env.dir.join("xdg");
        fs::create_dir(&xdg).unwrap();
        chown(&xdg, &user);
        fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Rl {
            ids: Vec::new(),
            xdg,
            env,
            delegated: None,
            user,
            _lock: lock,
        }
    }

    fn id(&mut self, suffix: &str) -> String {
        let id = format!("rl-{suffix}-{}", std::process::id());
        self.ids.push(id.clone());
        id
    }

    /// A busybox bundle owned by the user, with `carte spec --rootless`'s
    /// config (written by the user), process.terminal off.
    fn bundle(&self, name: &str) -> (PathBuf, Value) {
        let dir = self.env.dir.join(name);
        fs::create_dir(&dir).unwrap();
        let ok = Command::new("cp")
            .arg("-a")
            .arg(base_rootfs())
            .arg(dir.join("rootfs"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let ok = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.user.uid, self.user.gid)])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        self.carte(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
            .assert_ok();
        let mut config: Value =
            serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["root"]["readonly"] = json!(false);
        (dir, config)
    }

    /// carte as the user (no --root: the default state root).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={}", self.user.uid),
            &format!("--regid={}", self.user.gid),
            "--init-groups",
            "--",
        ])
        .arg(carte_bin())
        .args(args)
        .env("XDG_RUNTIME_DIR", &self.xdg)
        .current_dir(&self.env.dir);
        cmd
    }

    fn carte(&self, args: &[&str]) -> Out {
        self.env.carte_cmd(self.command(args))
    }

    fn run(&self, dir: &Path, config: &Value, id: &str) -> Out {
        write_config(dir, config);
        self.carte(&["run", "--bundle", dir.to_str().unwrap(), id])
    }

    fn state_root(&self) -> PathBuf {
        self.xdg.join("carte")
    }

    /// Nothing of `id` anywhere: no state dir under the user's runtime dir,
    /// nothing under root's /run/carte, no cgroup, no process.
    #[track_caller]
    fn assert_nothing_left(&self, id: &str) {
        assert!(
            !self.state_root().join(id).exists(),
            "state dir of {id} left"
        );
        assert!(
            !Path::new("/run/carte").join(id).exists(),
            "{id} under /run/carte"
        );
        let cgroups = host().cgroup_dirs(id);
        assert!(cgroups.is_empty(), "cgroups of {id}: {cgroups:?}");
        // A killed init is reaped by the host's init: give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let procs = user_processes(self.user.uid);
            if procs.is_empty() {
                break;
            }
            let state = |p: &i32| {
                fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit(") ").next().map(|r| r.starts_with('Z')))
                    .unwrap_or(true)
            };
            let live: Vec<i32> = procs.iter().copied().filter(|p| !state(p)).collect();
            assert!(
                live.is_empty() || std::time::Instant::now() < deadline,
                "processes of {USER} left: {live:?}"
            );
            if live.is_empty() && std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Rl {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.command(&["delete", "--force", id]).output();
        }
    }
}

fn chown(path: &Path, user: &TestUser) {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).unwrap();
}

fn write_config(dir: &Path, config: &Value) {
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .unwrap();
}

/// Pids whose real uid is `uid`.
fn user_processes(uid: u32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (e.metadata().ok()?.uid() == uid).then_some(pid)
        })
        .collect()
}

fn set_args(config: &mut Value, script: &str) {
    config["process"]["args"] = json!(["sh", "-c", script]);
}

/// `carte spec --rootless` is runc's shape, and `run` maps root inside to
/// the user outside, with the state under $XDG_RUNTIME_DIR/carte and no
/// cgroup made.
#[test]
fn rl_run_maps_root_to_the_user() {
    let mut rl = Rl::new("rl-run");
    let (dir, mut config) = rl.bundle("b");
    let ns: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert!(config["linux"].get("resources").is_none());
    let sys = config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(
        sys["options"],
        json!(["rbind", "nosuid", "noexec", "nodev", "ro"])
    );
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": rl.user.uid, "size": 1}])
    );
    // The state root appears while the container lives.
    set_args(
        &mut config,
        "id -u; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
         ls $XDG/carte; echo null=$(echo x > /dev/null && echo ok); \
         echo net=$(readlink /proc/self/ns/net)",
    );
    config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("XDG=/xdg"));
    // The runtime dir, seen from inside through a bind mount.
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/xdg", "type": "bind", "source": rl.xdg, "options": ["rbind", "ro"]
    }));
    let id = rl.id("run");
    let out = rl.run(&dir, &config, &id);
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let uid = rl.user.uid.to_string();
    let gid = rl.user.gid.to_string();
    assert_eq!(lines[0], ["0"], "{}", out.stdout);
    assert_eq!(lines[1], ["0", uid.as_str(), "1"], "{}", out.stdout);
    assert_eq!(lines[2], ["0", gid.as_str(), "1"], "{}", out.stdout);
    assert_eq!(lines[3], ["deny"], "{}", out.stdout);
    assert_eq!(lines[4], [id.as_str()], "{}", out.stdout);
    assert!(out.stdout.contains("null=ok"), "{}", out.stdout);
    // No network namespace in the config: the caller's.
    let net = fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        out.stdout.contains(&format!("net={}", net.display())),
        "{}",
        out.stdout
    );
    let meta = fs::metadata(rl.state_root()).unwrap();
    assert_eq!(meta.uid(), rl.user.uid, "state root owned by the user");
    rl.assert_nothing_left(&id);
}

/// create, start, state, list, exec, ps, kill, delete as the user.
#[test]
fn rl_lifecycle() {
    let mut rl = Rl::new("rl-life");
    let (dir, mut config) = rl.bundle("b");
    config["process"]["args"] = json!(["sleep", "60"]);
    write_config(&dir, &config);
    let id = rl.id("life");
    let bundle = dir.to_str().unwrap();
    rl.carte(&["create", "--bundle", bundle, &id]).assert_ok();
    let state = |rl: &Rl| -> Value {
        let out = rl.carte(&["state", &id]);
        out.assert_ok();
        serde_json::from_str(&out.stdout).unwrap()
    };
    assert_eq!(state(&rl)["status"], "created");
    assert!(rl.state_root().join(&id).join("state.json").exists());
    // Init is not dumpable until it execs: closed to a user's exec.
    rl.carte(&["exec", &id, "true"]).assert_fails_with(&[
        "/ns/",
        "permission denied",
        "once it runs",
    ]);
    rl.carte(&["start", &id]).assert_ok();
    // Right after start: init may not have exec'd yet; exec waits for it.
    rl.carte(&["exec", &id, "true"]).assert_ok();
    assert_eq!(state(&rl)["status"], "running");
    let pid = state(&rl)["pid"].as_i64().unwrap();
    let list = rl.carte(&["list", "--quiet"]);
    list.assert_ok();
    assert_eq!(list.stdout.trim(), id);
    let exec = rl.carte(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    exec.assert_ok();
    assert!(exec.stdout.starts_with("0\n"), "{}", exec.stdout);
    let ps = rl.carte(&["ps", "--format", "json", &id]);
    ps.assert_ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap();
    assert_eq!(pids, [pid]);
    let table = rl.carte(&["ps", &id]);
    table.assert_ok();
    assert!(table.stdout.contains("sleep 60"), "{}", table.stdout);
    // Pausing needs a freezer: no cgroup, one clear line.
    rl.carte(&["pause", &id])
        .assert_fails_with(&["pause", "no cgroup"]);
    rl.carte(&["kill", &id, "KILL"]).assert_ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state(&rl)["status"] != "stopped" {
        assert!(std::time::Instant::now() < deadline, "never stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rl.carte(&["delete", &id]).assert_ok();
    rl.assert_nothing_left(&id);
}

/// kill --all without a cgroup signals every process of the container's
/// PID namespace; delete --force of a running one leaves nothing.
#[test]
fn rl_kill_all_and_force_delete() {
    let mut rl = Rl::new("rl-killall");
    let (dir, mut config) = rl.bundle("b");
    set_args(&mut config, "sleep 60 & sleep 61 & wait");
    let id = rl.id("ka");
    write_config(&dir, &config);
    rl.carte(&["run", "--detach", "--bundle", dir.to_str().unwrap(), &id])
        .assert_ok();
    let ps = rl.carte(&["ps", "--format", "json", &id]);
    ps.assert_ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    rl.carte(&["kill", "--all", &id, "KILL"]).assert_ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !user_processes(rl.user.uid).is_empty() {
        assert!(std::time::Instant::now() < deadline, "processes left");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rl.carte(&["delete", &id]).assert_ok();

    let id = rl.id("force");
    config["process"]["args"] = json!(["sleep", "60"]);
    write_config(&dir, &config);
    rl.carte(&["run", "--detach", "--bundle", dir.to_str().unwrap(), &id])
        .assert_ok();
    rl.carte(&["delete", "--force", &id]).assert_ok();
    rl.assert_nothing_left(&id);
}

/// Without a writable cgroup, resources are refused (one line naming the
/// field) and nothing is made; device rules alone are no resources.
#[test]
fn rl_resources_need_a_cgroup() {
    let mut rl = Rl::new("rl-res");
    let (dir, mut config) = rl.bundle("b");
    let id = rl.id("res");
    config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    rl.run(&dir, &config, &id)
        .assert_fails_with(&["linux.resources.memory", "cgroup"]);
    rl.assert_nothing_left(&id);
    config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    rl.run(&dir, &config, &id).assert_ok();
    rl.assert_nothing_left(&id);
}

/// What needs privilege fails up front with one line naming the field.
#[test]
fn rl_privileged_settings_are_refused() {
    let mut rl = Rl::new("rl-priv");
    let (dir, config) = rl.bundle("b");
    let id = rl.id("priv");
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "process.oomScoreAdj",
            Box::new(|c: &mut Value| c["process"]["oomScoreAdj"] = json!(-500)),
        ),
        (
            "process.rlimits[0]",
            Box::new(|c: &mut Value| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "hard": 1u64 << 40, "soft": 1024}])
            }),
        ),
        (
            "linux.sysctl.net.ipv4.ip_forward",
            Box::new(|c: &mut Value| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})),
        ),
        (
            "process.user.additionalGids",
            Box::new(|c: &mut Value| c["process"]["user"]["additionalGids"] = json!([5])),
        ),
        (
            "linux.namespaces",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"] =
                    json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
                let linux = c["linux"].as_object_mut().unwrap();
                linux.remove("uidMappings");
                linux.remove("gidMappings");
            }),
        ),
    ];
    for (field, change) in cases {
        let mut c = config.clone();
        change(&mut c);
        rl.run(&dir, &c, &id).assert_fails_with(&[field]);
        rl.assert_nothing_left(&id);
    }
}

/// A map wider than the user's own id goes through newuidmap/newgidmap,
/// within the user's /etc/subuid and /etc/subgid ranges.
#[test]
fn rl_wider_maps_through_newuidmap() {
    if !Path::new("/usr/bin/newuidmap").exists() {
        skip(
            "rl_wider_maps_through_newuidmap",
            "newuidmap (package uidmap) is not installed",
        );
        return;
    }
    let mut rl = Rl::new("rl-newuidmap");
    let (dir, mut config) = rl.bundle("b");
    let own = |id: u32| {
        json!([{"containerID": 0, "hostID": id, "size": 1},
                               {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}])
    };
    config["linux"]["uidMappings"] = own(rl.user.uid);
    config["linux"]["gidMappings"] = own(rl.user.gid);
    config["process"]["user"]["additionalGids"] = json!([5, 100]);
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    set_args(
        &mut config,
        "cat /proc/self/uid_map /proc/self/gid_map; id -G; \
         touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f",
    );
    let id = rl.id("wide");
    let out = rl.run(&dir, &config, &id);
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (uid, gid, start, count) = (
        rl.user.uid.to_string(),
        rl.user.gid.to_string(),
        SUB_START.to_string(),
        SUB_COUNT.to_string(),
    );
    assert_eq!(lines[0], ["0", uid.as_str(), "1"], "{}", out.stdout);
    assert_eq!(
        lines[1],
        ["1", start.as_str(), count.as_str()],
        "{}",
        out.stdout
    );
    assert_eq!(lines[2], ["0", gid.as_str(), "1"], "{}", out.stdout);
    assert_eq!(
        lines[3],
        ["1", start.as_str(), count.as_str()],
        "{}",
        out.stdout
    );
    assert_eq!(lines[4], ["0", "5", "100"], "{}", out.stdout);
    assert_eq!(lines[5], ["1000:1000"], "{}", out.stdout);
    // From outside, that file belongs to a subordinate id.
    let f = dir.join("rootfs/tmp/f");
    assert_eq!(fs::metadata(&f).unwrap().uid(), SUB_START + 999);
    rl.assert_nothing_left(&id);

    // Ids outside the user's ranges: refused before anything is made.
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": rl.user.uid, "size": 1},
                                            {"containerID": 1, "hostID": 500000, "size": 10}]);
    rl.run(&dir, &config, &id)
        .assert_fails_with(&["linux.uidMappings", "/etc/subuid"]);
    rl.assert_nothing_left(&id);
}

/// A user with no range in /etc/subuid gets one clear line for a wider map.
#[test]
fn rl_missing_subuid_range() {
    let mut rl = Rl::new("rl-nosub");
    rl.user.drop_ranges();
    let (dir, mut config) = rl.bundle("b");
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": rl.user.uid, "size": 1},
                                            {"containerID": 1, "hostID": SUB_START, "size": 10}]);
    let id = rl.id("nosub");
    rl.run(&dir, &config, &id)
        .assert_fails_with(&["linux.uidMappings", "/etc/subuid", "has none"]);
    rl.assert_nothing_left(&id);
}

/// `--rootless auto` as root of a user namespace that maps only the user
/// (as rootless podman runs its runtime): rootless, so no cgroup, though
/// carte's euid is 0; `--rootless false` there tries the cgroup and fails.
#[test]
fn rl_auto_in_a_user_namespace() {
    let mut rl = Rl::new("rl-userns");
    let (dir, mut config) = rl.bundle("b");
    // podman's shape: no user namespace of the container's own.
    config["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("uidMappings");
    config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("gidMappings");
    set_args(&mut config, "id -u; cat /proc/self/uid_map");
    write_config(&dir, &config);
    let id = rl.id("auto");
    let state = rl.xdg.join("ns-root");
    let run = |flag: &str| {
        // unshare -r: uid 0 inside, the user's uid outside.
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={}", rl.user.uid),
            &format!("--regid={}", rl.user.gid),
            "--init-groups",
            "--",
            "unshare",
            "--user",
            "--map-root-user",
        ])
        .arg(carte_bin())
        .args(["--root", state.to_str().unwrap(), "--rootless", flag])
        .args(["run", "--bundle", dir.to_str().unwrap(), &id])
        .env("XDG_RUNTIME_DIR", &rl.xdg)
        .current_dir(&rl.env.dir);
        rl.env.carte_cmd(cmd)
    };
    let out = run("auto");
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let uid = rl.user.uid.to_string();
    assert_eq!(lines[0], ["0"], "{}", out.stdout);
    // The namespace carte ran in: 0 is the user.
    assert_eq!(lines[1], ["0", uid.as_str(), "1"], "{}", out.stdout);
    rl.assert_nothing_left(&id);
    run("false").assert_fails_with(&["cgroup"]);
    rl.assert_nothing_left(&id);
    let _ = fs::remove_dir_all(&state);
}

/// Without a writable cgroup the container gets the "none" cgroup driver,
/// recorded in state.json, and every verb that needs a cgroup says so in
/// one line; `--systemd-cgroup` is refused for a rootless container.
#[test]
fn rlm_no_cgroup_driver() {
    let mut rl = Rl::new("rlm-none");
    let (dir, mut config) = rl.bundle("b");
    config["process"]["args"] = json!(["sleep", "60"]);
    write_config(&dir, &config);
    let bundle = dir.to_str().unwrap();
    let id = rl.id("rlm-none");
    rl.carte(&["run", "--detach", "--bundle", bundle, &id])
        .assert_ok();
    let state: Value =
        serde_json::from_slice(&fs::read(rl.state_root().join(&id).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["cgroupDriver"], "none", "{state}");
    assert_eq!(state["cgroupPath"], "", "{state}");
    rl.carte(&["update", "--pids-limit", "10", &id])
        .assert_fails_with(&["update", "no cgroup"]);
    rl.carte(&["events", "--stats", &id])
        .assert_fails_with(&["statistics", "no cgroup"]);
    rl.carte(&["exec", "--cgroup", "sub", &id, "true"])
        .assert_fails_with(&["--cgroup", "no cgroup"]);
    rl.carte(&["delete", "--force", &id]).assert_ok();
    rl.assert_nothing_left(&id);
    let sd = rl.id("rlm-sd");
    rl.carte(&["--systemd-cgroup", "run", "--bundle", bundle, &sd])
        .assert_fails_with(&["--systemd-cgroup", "rootless"]);
    rl.assert_nothing_left(&sd);
}

/// A cgroup subtree delegated to the user (here by root chowning one
/// directory per v1 hierarchy): carte makes the container's cgroup below
/// it, as the user, and applies resources there; pause works.
#[test]
fn rl_delegated_cgroup_holds_resources() {
    let mut rl = Rl::new("rl-deleg");
    let parent = format!("rl-parent-{}", std::process::id());
    let delegated = Delegated::new(&parent, &rl.user);
    let dirs = delegated.dirs.clone();
    rl.delegated = Some(delegated);
    let (dir, mut config) = rl.bundle("b");
    config["linux"]["cgroupsPath"] = json!(format!("/{parent}/c"));
    config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    config["process"]["args"] = json!(["sleep", "60"]);
    write_config(&dir, &config);
    let id = rl.id("deleg");
    rl.carte(&["run", "--detach", "--bundle", dir.to_str().unwrap(), &id])
        .assert_ok();
    let exec = rl.carte(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    exec.assert_ok();
    assert_eq!(exec.stdout, "67108864\n50\n");
    let mine = dirs.iter().all(|d| d.join("c").is_dir());
    assert!(mine, "cgroup c not made in every hierarchy");
    rl.carte(&["pause", &id]).assert_ok();
    rl.carte(&["resume", &id]).assert_ok();
    rl.carte(&["delete", "--force", &id]).assert_ok();
    assert!(dirs.iter().all(|d| !d.join("c").exists()));
    rl.assert_nothing_left(&id);
}

/// One directory per v1 hierarchy (or the unified one) handed to the
/// user; removed on drop.
struct Delegated {
    dirs: Vec<PathBuf>,
}

impl Delegated {
    fn new(name: &str, user: &TestUser) -> Delegated {
        let mut points: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(" - cgroup "))
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .collect();
        if points.is_empty() {
            points.push(PathBuf::from("/sys/fs/cgroup"));
        }
        let dirs: Vec<PathBuf> = points.iter().map(|p| p.join(name)).collect();
        let made = Delegated { dirs };
        for d in &made.dirs {
            fs::create_dir(d).unwrap();
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(d.parent().unwrap().join(f)) {
                    fs::write(d.join(f), v.trim()).unwrap();
                }
            }
            chown(d, user);
            for e in fs::read_dir(d).unwrap().flatten() {
                chown(&e.path(), user);
            }
        }
        made
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = fs::remove_dir(d.join("c"));
            let _ = fs::remove_dir(d);
        }
    }
}

/// A network namespace joined by path: one made in the user namespace
/// carte runs in (as rootless podman makes one for slirp4netns), joined
/// by a container that has no user namespace of its own.
#[test]
fn rl_joins_a_network_namespace_by_path() {
    let mut rl = Rl::new("rl-netns");
    let (dir, mut config) = rl.bundle("b");
    config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "mount"}, {"type": "network", "path": "NETPATH"}]);
    let linux = config["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    set_args(
        &mut config,
        "readlink /proc/self/ns/net; cat /proc/net/dev | grep -c :",
    );
    write_config(&dir, &config.clone());
    fs::rename(dir.join("config.json"), dir.join("config.tmpl")).unwrap();
    let id = rl.id("netns");
    let state = rl.xdg.join("ns-root");
    let script = format!(
        "unshare --net sleep 30 & pid=$!; sleep 0.3; readlink /proc/$pid/ns/net; \
         sed \"s|NETPATH|/proc/$pid/ns/net|\" {b}/config.tmpl > {b}/config.json; \
         {carte} --root {state} run --bundle {b} {id}; rc=$?; kill $pid; exit $rc",
        b = dir.display(),
        carte = carte_bin().display(),
        state = state.display(),
    );
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={}", rl.user.uid),
        &format!("--regid={}", rl.user.gid),
        "--init-groups",
        "--",
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        &script,
    ])
    .env("XDG_RUNTIME_DIR", &rl.xdg)
    .current_dir(&rl.env.dir);
    let out = rl.env.carte_cmd(cmd);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(lines[0], lines[1], "the joined netns: {}", out.stdout);
    assert_eq!(lines[2], "1", "only lo in the new netns: {}", out.stdout);
    rl.assert_nothing_left(&id);
    let _ = fs::remove_dir_all(&state);
}
