//! Container escapes, really attempted against carte. Each test plays the
//! attack of one CVE (or class) from inside a container, or through a
//! hostile image or config, and checks that the host did not change.
//! docs/security.md maps each test to the defence it proves.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The attacker (tests/helpers/evil.c), built once per test binary.
fn evil() -> &'static PathBuf {
    static EVIL: OnceLock<PathBuf> = OnceLock::new();
    EVIL.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = repo.join("target/test-evil");
        let status = Command::new("cc")
            .args(["-static", "-O", "-o"])
            .arg(&out)
            .arg(repo.join("tests/helpers/evil.c"))
            .status()
            .expect("cc (gcc and libc6-dev) is needed to build tests/helpers/evil.c");
        assert!(status.success(), "building tests/helpers/evil.c failed");
        out
    })
}

/// A bundle with the attacker at /bin/evil.
fn bundle(env: &TestEnv, name: &str) -> Bundle {
    let b = env.bundle(name);
    std::fs::copy(evil(), b.rootfs().join("bin/evil")).unwrap();
    b
}

/// A private copy of the binary under test, so that if a defence fails the
/// attack overwrites only the copy.
fn carte_copy(env: &TestEnv) -> PathBuf {
    let copy = env.dir.join("carte-under-attack");
    std::fs::copy(carte_bin(), &copy).unwrap();
    copy
}

fn with(env: &TestEnv, bin: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(&env.root).args(args);
    env.carte_cmd(cmd)
}

/// A file on the host that an escaped process would read, as the attacker
/// names it: relative to "/".
fn host_secret(env: &TestEnv) -> (PathBuf, String) {
    let path = env.dir.join("host-secret");
    std::fs::write(&path, "host only\n").unwrap();
    let rel = path.to_str().unwrap().trim_start_matches('/').to_string();
    (path, rel)
}

/// Waits until the attacker's log says "done" and returns it.
#[track_caller]
fn attacker_log(log: &Path, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l == "done") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the attacker never finished: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nothing in the attacker's log shows a write to a carte binary or a
/// read through a host fd, and the binary is byte for byte what it was.
#[track_caller]
fn assert_not_escaped(log: &str, bin: &Path, before: &[u8]) {
    eprintln!("attacker's log:\n{log}");
    for line in log.lines() {
        assert!(
            !line.starts_with("wrote ") && !line.starts_with("host-reached "),
            "escape: {line}\nwhole log:\n{log}"
        );
    }
    assert!(
        std::fs::read(bin).unwrap() == before,
        "the carte binary changed\n{log}"
    );
}

/// A pipe whose buffer is full: a write to it blocks until the reader
/// drains it.
fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let (reader, mut writer) = std::io::pipe().unwrap();
    // SAFETY: fcntl on a pipe fd this test owns.
    unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    while writer.write(&[b'.'; 4096]).is_ok() {}
    // SAFETY: as above; back to blocking for the child.
    unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, 0) };
    (reader, writer)
}

/// Runs carte with a stderr pipe that is already full, so the carte
/// process that `#!/proc/self/exe` starts in the container blocks on its
/// error message (the attacker's timing, made certain) until `hold` is over.
fn run_stalled(env: &TestEnv, bin: &Path, args: &[&str], hold: Duration) -> bool {
    use std::io::Read;
    let (mut reader, writer) = full_pipe();
    let mut child = Command::new(bin)
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(writer)
        .spawn()
        .unwrap();
    std::thread::sleep(hold);
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    let status = child.wait().unwrap();
    drain.join().unwrap();
    status.success()
}

/// The attacker did find carte's process in the container (the exec'd or
/// init process before its execve, or carte's exe run by `#!/proc/self/exe`
/// on kernels that allow it), and all it got was a refusal or the sealed copy.
#[track_caller]
fn assert_saw_carte(log: &str) {
    assert!(
        log.lines()
            .any(|l| l.starts_with("exe-denied ") || l.starts_with("exe ")),
        "the attacker saw no carte process\n{log}"
    );
}

fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// CVE-2019-5736 through `exec`: the image's program is `#!/proc/self/exe`,
/// so the process carte execs runs carte's own exe inside the container,
/// where the attacker grabs /proc/<pid>/exe and, once carte is gone,
/// reopens it for writing.
#[test]
fn cve_2019_5736_exec_of_a_proc_self_exe_script() {
    let env = TestEnv::new("x5736exec");
    let bin = carte_copy(&env);
    let before = std::fs::read(&bin).unwrap();
    let (_secret, secret_rel) = host_secret(&env);
    let mut b = bundle(&env, "b");
    script(&b.rootfs().join("bin/victim"), "#!/proc/self/exe\n");
    b.set_args(&["/bin/evil", "watch", "5", "/tmp/evil.log", &secret_rel]);
    b.write();
    let id = env.id("c");
    with(&env, &bin, &["run", "-d", "--bundle", b.path(), &id]).assert_ok();
    let ok = run_stalled(
        &env,
        &bin,
        &["exec", &id, "/bin/victim"],
        Duration::from_millis(1500),
    );
    assert!(!ok, "carte's CLI refuses /bin/victim as a verb");
    // Where the exec'd carte's execve of `#!/proc/self/exe` fails (ENOENT
    // on this 6.18 host: its /proc/self/exe is the host binary, outside
    // the container's mounts), the target is that process before its
    // execve: a few more execs give the attacker its chance.
    for _ in 0..5 {
        // An overwritten copy no longer runs: the assertion below says why.
        let _ = Command::new(&bin)
            .arg("--root")
            .arg(&env.root)
            .args(["exec", &id, "/bin/victim"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let log = attacker_log(&b.rootfs().join("tmp/evil.log"), Duration::from_secs(15));
    assert_not_escaped(&log, &bin, &before);
    assert_saw_carte(&log);
    with(&env, &bin, &["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// CVE-2019-5736 and CVE-2016-9962 through a created container: between
/// create and start, init is carte and PID 1; a process exec'd into the
/// container grabs /proc/1/exe and tries init's fds (init holds the host's
/// /proc) before start lets init exec the user's program.
#[test]
fn cve_2019_5736_init_before_start() {
    let env = TestEnv::new("x5736init");
    let bin = carte_copy(&env);
    let before = std::fs::read(&bin).unwrap();
    let (_secret, secret_rel) = host_secret(&env);
    // A host process the container's root may inspect (same uid, no
    // capabilities): through init's host /proc, its root is the host's "/".
    let mut host_proc = Command::new("setpriv")
        .args(["--securebits", "+noroot,+noroot_locked,+no_setuid_fixup"])
        .args([
            "--bounding-set",
            "-all",
            "--inh-caps",
            "-all",
            "sleep",
            "20",
        ])
        .spawn()
        .expect("setpriv (util-linux)");
    let secret_rel = format!("{}/root/{secret_rel}", host_proc.id());
    let mut b = bundle(&env, "b");
    b.set_args(&["sleep", "3"]);
    b.write();
    let id = env.id("c");
    with(&env, &bin, &["create", "--bundle", b.path(), &id]).assert_ok();
    with(
        &env,
        &bin,
        &[
            "exec",
            "-d",
            &id,
            "/bin/evil",
            "watch",
            "3",
            "/tmp/evil.log",
            &secret_rel,
        ],
    )
    .assert_ok();
    std::thread::sleep(Duration::from_millis(700));
    with(&env, &bin, &["start", &id]).assert_ok();
    let log = attacker_log(&b.rootfs().join("tmp/evil.log"), Duration::from_secs(15));
    let _ = host_proc.kill();
    let _ = host_proc.wait();
    assert_not_escaped(&log, &bin, &before);
    // Init was there to attack, and refused the attacker.
    assert!(log.lines().any(|l| l.starts_with("exe-denied 1 ")), "{log}");
    with(&env, &bin, &["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// CVE-2019-5736 through init: the entrypoint is `#!/proc/self/exe` and
/// the attacker, exec'd into the created container, waits for `start`.
/// Init's execve of the script runs the interpreter /proc/self/exe: the
/// sealed trampoline here, which only exits; were it init's own exe,
/// carte's binary would run in the container as a dumpable image.
#[test]
fn cve_2019_5736_start_of_a_proc_self_exe_entrypoint() {
    use std::io::Read;
    let env = TestEnv::new("x5736start");
    let bin = carte_copy(&env);
    let before = std::fs::read(&bin).unwrap();
    let (_secret, secret_rel) = host_secret(&env);
    let mut b = bundle(&env, "b");
    script(&b.rootfs().join("bin/victim"), "#!/proc/self/exe\n");
    b.set_args(&["/bin/victim", "no-such-verb"]);
    b.write();
    let id = env.id("c");
    // The container's stderr is a full pipe: carte's image, if it runs,
    // blocks on its usage error and stays there for the attacker.
    let (mut reader, writer) = full_pipe();
    let status = Command::new(&bin)
        .arg("--root")
        .arg(&env.root)
        .args(["create", "--bundle", b.path(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    assert!(status.success());
    let watch = [
        "exec",
        "-d",
        &id,
        "/bin/evil",
        "watch",
        "4",
        "/tmp/evil.log",
        &secret_rel,
    ];
    with(&env, &bin, &watch).assert_ok();
    std::thread::sleep(Duration::from_millis(700));
    with(&env, &bin, &["start", &id]).assert_ok();
    std::thread::sleep(Duration::from_millis(1500));
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    // Init's end (the attacker dies with it, maybe before its "done").
    let deadline = Instant::now() + Duration::from_secs(15);
    while env.state(&id).is_some_and(|s| s["status"] != "stopped") {
        assert!(Instant::now() < deadline, "the container never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    drain.join().unwrap();
    let log = std::fs::read_to_string(b.rootfs().join("tmp/evil.log")).unwrap_or_default();
    assert_not_escaped(&log, &bin, &before);
    assert_saw_carte(&log);
    // The pid namespace dies with init, so the attacker cannot outlive the
    // image to write it here; what it must never get is the image's exe.
    let carte = bin.to_str().unwrap();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("exe ") && l.contains(carte)),
        "the attacker opened carte's binary:\n{log}"
    );
    with(&env, &bin, &["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// CVE-2019-5736 through `run`: a container whose entrypoint is
/// `#!/proc/self/exe` joins the PID namespace of one where the attacker
/// waits, so its init (carte, then carte's exe again) is in sight.
#[test]
fn cve_2019_5736_run_of_a_proc_self_exe_entrypoint() {
    let env = TestEnv::new("x5736run");
    let bin = carte_copy(&env);
    let before = std::fs::read(&bin).unwrap();
    let (_secret, secret_rel) = host_secret(&env);
    let mut a = bundle(&env, "a");
    a.set_args(&["/bin/evil", "watch", "4", "/tmp/evil.log", &secret_rel]);
    a.write();
    let ida = env.id("a");
    with(&env, &bin, &["run", "-d", "--bundle", a.path(), &ida]).assert_ok();
    let pid = env.state(&ida).unwrap()["pid"].as_i64().unwrap();
    let mut v = bundle(&env, "v");
    script(&v.rootfs().join("bin/victim"), "#!/proc/self/exe\n");
    v.set_args(&["/bin/victim"]);
    for ns in v.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{pid}/ns/pid"));
        }
    }
    v.write();
    let idv = env.id("v");
    let ok = run_stalled(
        &env,
        &bin,
        &["run", "--bundle", v.path(), &idv],
        Duration::from_millis(1500),
    );
    assert!(!ok, "carte's CLI refuses /bin/victim as a verb");
    let log = attacker_log(&a.rootfs().join("tmp/evil.log"), Duration::from_secs(15));
    assert_not_escaped(&log, &bin, &before);
    assert_saw_carte(&log);
    env.assert_no_leaks(&idv);
    with(&env, &bin, &["delete", "--force", &ida]).assert_ok();
    env.assert_no_leaks(&ida);
}

/// Host paths no test may ever create: where an escaped mountpoint would go.
fn canary(env: &TestEnv, name: &str) -> PathBuf {
    let path = PathBuf::from("/tmp").join(format!(
        "carte-escape-{name}-{}",
        env.dir.file_name().unwrap().to_str().unwrap()
    ));
    let _ = std::fs::remove_dir_all(&path);
    path
}

/// CVE-2021-30465 class and `..`: mount destinations through a symlink to
/// "/" (absolute and relative) or climbing with "..". carte creates missing
/// mountpoints; had it followed them out of the rootfs, the directories
/// would appear on the host.
#[test]
fn mount_destinations_stay_in_the_rootfs() {
    let env = TestEnv::new("xmountdest");
    let mut b = env.bundle("b");
    std::os::unix::fs::symlink("/", b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", b.rootfs().join("evil2")).unwrap();
    let (c1, c2, c3) = (
        canary(&env, "abs"),
        canary(&env, "rel"),
        canary(&env, "dots"),
    );
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for (dest, c) in [("/evil", &c1), ("/evil2", &c2), ("/../../../..", &c3)] {
        mounts.push(json!({"destination": format!("{dest}{}/x", c.display()),
            "type": "tmpfs", "source": "tmpfs"}));
    }
    let names: Vec<String> = [&c1, &c2, &c3]
        .iter()
        .map(|c| c.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let out = env.sh(
        &mut b,
        &format!(
            "grep -c ' /tmp/carte-escape-' /proc/self/mountinfo; ls /tmp | grep -c {}",
            names[0]
        ),
    );
    for c in [&c1, &c2, &c3] {
        assert!(!c.exists(), "{} appeared on the host", c.display());
        assert!(b
            .rootfs()
            .join(c.strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
    }
    assert!(
        out.starts_with("3\n"),
        "the three mounts are in the container: {out}"
    );
}

/// CVE-2021-30465 proper: the destination is swapped between a directory
/// and a symlink to "/" while carte mounts.
#[test]
fn mount_destination_swapped_mid_way() {
    let env = TestEnv::new("xswap");
    let mut b = env.bundle("b");
    let c = canary(&env, "swap");
    let (dir, link, tmp) = (
        b.rootfs().join("race"),
        b.rootfs().join("race-link"),
        b.rootfs().join("race-tmp"),
    );
    std::fs::create_dir_all(dir.join(c.strip_prefix("/").unwrap())).unwrap();
    std::os::unix::fs::symlink("/", &link).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for i in 0..40 {
        mounts.push(json!({"destination": format!("/race{}/m{i}", c.display()),
            "type": "tmpfs", "source": "tmpfs"}));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&dir, &tmp);
                let _ = std::fs::rename(&link, &dir);
                let _ = std::fs::rename(&dir, &link);
                let _ = std::fs::rename(&tmp, &dir);
            }
        })
    };
    for n in 0..5 {
        b.set_args(&["true"]);
        let id = env.id(&format!("c{n}"));
        let _ = env.run(&b, &id); // may fail cleanly when it loses the race
        env.assert_no_leaks(&id);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(!c.exists(), "{} appeared on the host", c.display());
}

/// A global sysctl that is harmless to change, standing in for
/// kernel.core_pattern; put back if a defence fails.
const GLOBAL_SYSCTL: &str = "/proc/sys/kernel/printk_ratelimit";

/// Restores GLOBAL_SYSCTL when dropped, so a failing test leaves the host
/// as it was.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        if std::fs::read_to_string(GLOBAL_SYSCTL).unwrap() != self.0 {
            std::fs::write(GLOBAL_SYSCTL, &self.0).unwrap();
        }
    }
}

/// CVE-2025-31133 class: the image's /dev/null is a symlink to a global
/// sysctl; masking binds "/dev/null" over /proc paths, which would give the
/// container that sysctl, writable, at /proc/timer_list. With /dev from the
/// image (no tmpfs), carte must refuse rather than bind it.
#[test]
fn dev_null_must_be_the_null_device() {
    let env = TestEnv::new("xdevnull");
    let mut b = env.bundle("b");
    let dev = b.rootfs().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let _ = std::fs::remove_file(dev.join("null"));
    std::os::unix::fs::symlink(GLOBAL_SYSCTL, dev.join("null")).unwrap();
    let host_value = std::fs::read_to_string(GLOBAL_SYSCTL).unwrap();
    let _restore = Restore(host_value.clone());
    b.config["linux"]["readonlyPaths"] = json!([]);
    // /dev bound from the image itself: carte makes no device nodes then.
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    mounts
        .push(json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}));
    b.set_args(&["sh", "-c", "echo 17 > /proc/timer_list"]);
    let id = env.id("c");
    let out = env.run(&b, &id);
    let now = std::fs::read_to_string(GLOBAL_SYSCTL).unwrap();
    assert_eq!(now, host_value, "the container wrote a host sysctl");
    out.assert_fails_with(&["/dev/null", "not the null device"]);
    env.assert_no_leaks(&id);
}

/// CVE-2025-52881 class: a config mount covers /proc/sys with a tmpfs (or
/// binds another proc file over the sysctl) before the sysctl is written;
/// the write must not land elsewhere.
#[test]
fn sysctl_writes_cannot_be_redirected() {
    let env = TestEnv::new("xsysctl");
    let host_value = std::fs::read_to_string(GLOBAL_SYSCTL).unwrap();
    let _restore = Restore(host_value.clone());
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    // /proc/sys/net/ipv4/ip_forward overlaid by a global sysctl (a bind of
    // a proc file): the write must not land in the host's sysctl.
    let mut b = env.bundle("b2");
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
        "source": GLOBAL_SYSCTL, "options": ["bind"]}));
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "17"});
    let id = env.id("c");
    let out = env.run(&b, &id);
    assert_eq!(
        std::fs::read_to_string(GLOBAL_SYSCTL).unwrap(),
        host_value,
        "the sysctl landed in the host's"
    );
    // carte writes through its own procfs, past whatever covers /proc/sys.
    out.assert_ok();
    env.assert_no_leaks(&id);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    // A tmpfs over /proc/sys: the sysctl must not go into it.
    let mut b = env.bundle("b");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}));
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["linux"]["readonlyPaths"] = json!([]);
    let out = env.sh(&mut b, "ls /proc/sys | wc -l");
    assert_eq!(out.trim(), "0", "the tmpfs stays empty: {out}");
}

/// What `evil fds` or `evil cwd` printed shows no way to the host: no
/// leaked fd, no "host-reached" line, and a cwd inside the root.
#[track_caller]
fn assert_no_host_fd_or_cwd(what: &str, out: &str) {
    assert!(!out.contains("host-reached"), "{what}: escaped\n{out}");
    let v = kv(out);
    if let Some(leaked) = v.get("leaked") {
        assert_eq!(leaked, "0", "{what}: fds leaked\n{out}");
    }
    if let Some(cwd) = v.get("cwd") {
        assert!(
            cwd.starts_with('/') && !cwd.contains("unreachable"),
            "{what}: cwd outside the root\n{out}"
        );
    }
}

/// Polls for a file the container writes, and returns it.
#[track_caller]
fn read_when_there(path: &Path) -> String {
    wait_for(path);
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_to_string(path).unwrap()
}

/// CVE-2024-21626: no carte fd reaches the process, looked at from inside
/// (/proc/self/fd, each fd tried as a way to a host file) under
/// create+start, run, run -d, exec and exec -d; and a cwd of
/// /proc/self/fd/N (N = 3..10: where a leaked fd would be) under
/// create+start, run and exec never leaves the container.
#[test]
fn cve_2024_21626_no_fd_and_no_host_cwd() {
    let env = TestEnv::new("x21626");
    let (_secret, secret) = host_secret(&env);
    let mut b = bundle(&env, "b");
    let fds_to = |file: &str| format!("exec /bin/evil fds {secret} > {file}");
    // create + start
    b.set_args(&["sh", "-c", &fds_to("/tmp/fds-create")]);
    b.write();
    let id = env.id("cs");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["start", &id]).assert_ok();
    let out = read_when_there(&b.rootfs().join("tmp/fds-create"));
    assert_no_host_fd_or_cwd("create+start", &out);
    assert!(out.contains("leaked=0"), "{out}");
    env.carte(&["delete", "--force", &id]).assert_ok();
    // run, in the foreground
    b.set_args(&["/bin/evil", "fds", &secret]);
    let id = env.id("run");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_no_host_fd_or_cwd("run", &out.stdout);
    assert!(out.stdout.contains("leaked=0"), "{out:?}");
    // run -d, exec, exec -d
    let script = format!("/bin/evil fds {secret} > /tmp/fds-run-d; exec sleep 100");
    b.set_args(&["sh", "-c", &script]);
    b.write();
    let id = env.id("rund");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let out = read_when_there(&b.rootfs().join("tmp/fds-run-d"));
    assert_no_host_fd_or_cwd("run -d", &out);
    assert!(out.contains("leaked=0"), "{out}");
    let out = env.carte(&["exec", &id, "/bin/evil", "fds", &secret]);
    out.assert_ok();
    assert_no_host_fd_or_cwd("exec", &out.stdout);
    assert!(out.stdout.contains("leaked=0"), "{out:?}");
    env.carte(&["exec", "-d", &id, "sh", "-c", &fds_to("/tmp/fds-exec-d")])
        .assert_ok();
    let out = read_when_there(&b.rootfs().join("tmp/fds-exec-d"));
    assert_no_host_fd_or_cwd("exec -d", &out);
    assert!(out.contains("leaked=0"), "{out}");
    // exec --cwd /proc/self/fd/N
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = env.carte(&["exec", "--cwd", &cwd, &id, "/bin/evil", "cwd", &secret]);
        if out.ok() {
            assert_no_host_fd_or_cwd(&format!("exec cwd {cwd}"), &out.stdout);
        } else {
            out.assert_fails_with(&["cwd"]);
        }
    }
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
    // process.cwd /proc/self/fd/N, under run and under create+start
    for n in 3..=10 {
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.set_args(&["/bin/evil", "cwd", &secret]);
        let id = env.id(&format!("cwd{n}"));
        let out = env.run(&b, &id);
        if out.ok() {
            assert_no_host_fd_or_cwd(&format!("run cwd {n}"), &out.stdout);
        } else {
            out.assert_fails_with(&["cwd"]);
        }
        env.assert_no_leaks(&id);
        let file = format!("/tmp/cwd-create-{n}");
        b.set_args(&["sh", "-c", &format!("exec /bin/evil cwd {secret} > {file}")]);
        b.write();
        let id = env.id(&format!("cwdc{n}"));
        let out = env.carte(&["create", "--bundle", b.path(), &id]);
        if out.ok() {
            env.carte(&["start", &id]).assert_ok();
            let seen = read_when_there(&b.rootfs().join(file.trim_start_matches('/')));
            assert_no_host_fd_or_cwd(&format!("create+start cwd {n}"), &seen);
            env.carte(&["delete", "--force", &id]).assert_ok();
        } else {
            out.assert_fails_with(&["cwd"]);
        }
        env.assert_no_leaks(&id);
    }
}

/// An image that ships a node of the host's disk: the device cgroup (the
/// default config denies every device) keeps it closed.
#[test]
fn host_disk_node_in_the_image_is_denied() {
    // The image ships a node for a host block device. A scratch loop device
    // stands in for the host's disk: the defence is the same, and were it
    // ever to fail, the write lands in a temp file, not on the machine's disk.
    let env = TestEnv::new("xdisk");
    let backing = env.dir.join("disk.img");
    std::fs::write(&backing, vec![0u8; 1 << 20]).unwrap();
    let losetup = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&backing)
        .output()
        .unwrap();
    assert!(losetup.status.success(), "{losetup:?}");
    let loop_dev = String::from_utf8(losetup.stdout)
        .unwrap()
        .trim()
        .to_string();
    let detach = || {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &loop_dev])
            .status();
    };
    let dev = std::fs::metadata(&loop_dev).unwrap().rdev();
    let mut b = env.bundle("b");
    let node = b.rootfs().join("hostdisk");
    let cpath = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: mknod on a path this test owns.
    assert_eq!(
        unsafe { libc::mknod(cpath.as_ptr(), libc::S_IFBLK | 0o666, dev) },
        0
    );
    let out = env.sh(
        &mut b,
        "head -c 512 /hostdisk > /dev/null 2>&1 && echo read=yes || echo read=no; \
         (echo escaped > /hostdisk) 2>/dev/null && echo write=yes || echo write=no",
    );
    detach();
    assert_eq!(kv(&out)["read"], "no", "{out}");
    assert_eq!(kv(&out)["write"], "no", "{out}");
    let disk = std::fs::read(&backing).unwrap();
    assert!(
        !disk.starts_with(b"escaped"),
        "the container wrote the device"
    );
}

/// Hostile rootfs: /proc a symlink to "/" (proc would be mounted over the
/// rootfs root, or wherever the image points), and directories owned by
/// another user with no permissions.
#[test]
fn hostile_rootfs_ownership_and_proc_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new("xhostile");
    let b = env.bundle("b");
    std::fs::remove_dir_all(b.rootfs().join("proc")).unwrap();
    std::os::unix::fs::symlink("/", b.rootfs().join("proc")).unwrap();
    let id = env.id("c");
    env.run(&b, &id).assert_fails_with(&["/proc", "symlink"]);
    env.assert_no_leaks(&id);
    // Directories owned by someone else, mode 000: root in the container
    // still sets up, and nothing changes owner on the host.
    let mut b = env.bundle("b2");
    for d in ["dev", "tmp", "etc"] {
        let p = b.rootfs().join(d);
        std::os::unix::fs::chown(&p, Some(4242), Some(4242)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o0)).unwrap();
    }
    let out = env.sh(&mut b, "cat /proc/self/status | grep -c ^Cap");
    assert_eq!(out.trim(), "5");
    let meta = std::fs::metadata(b.rootfs().join("etc")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (4242, 0));
}

/// CVE-2019-5736 with CAP_SYS_PTRACE in the container: non-dumpable no
/// longer hides init's exe, so the attacker holds it; what it holds is the
/// read-only re-exec of carte, and reopening it for writing fails.
#[test]
fn cve_2019_5736_with_cap_sys_ptrace() {
    let env = TestEnv::new("x5736ptrace");
    let bin = carte_copy(&env);
    let before = std::fs::read(&bin).unwrap();
    let mut b = bundle(&env, "b");
    b.set_args(&["sleep", "6"]);
    let caps = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_PTRACE"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = caps.clone();
    }
    b.write();
    let id = env.id("c");
    with(&env, &bin, &["create", "--bundle", b.path(), &id]).assert_ok();
    with(
        &env,
        &bin,
        &[
            "exec",
            "-d",
            &id,
            "/bin/evil",
            "watch",
            "3",
            "/tmp/evil.log",
            "nothing",
        ],
    )
    .assert_ok();
    std::thread::sleep(Duration::from_millis(700));
    with(&env, &bin, &["start", &id]).assert_ok();
    let log = attacker_log(&b.rootfs().join("tmp/evil.log"), Duration::from_secs(15));
    assert_not_escaped(&log, &bin, &before);
    // It held init's exe and the reopen for writing failed: EROFS (30)
    // from the read-only mount, or EPERM/EACCES for a sealed copy.
    assert!(log.lines().any(|l| l.starts_with("exe 1 ")), "{log}");
    assert!(log.lines().any(|l| l.starts_with("open-failed ")), "{log}");
    with(&env, &bin, &["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// Which defence each config gets. Without a user namespace, a container
/// that has its own PID namespace and cannot hold CAP_SYS_PTRACE has its
/// programs exec'd by the sealed trampoline, and carte runs its own binary
/// (nothing in the container can open a non-dumpable process's exe); one
/// that holds CAP_SYS_PTRACE, or whose seccomp profile would stop the
/// trampoline, runs from the read-only re-exec. In a user namespace (the
/// binary's owner unmapped) the kernel keeps carte's exe out of reach and
/// neither is needed, until an exec grants CAP_SYS_PTRACE.
#[test]
fn cve_2019_5736_defence_per_config() {
    let env = TestEnv::new("x5736cost");
    let bin = std::fs::canonicalize(carte_bin()).unwrap();
    let exe_of_init = |id: &str| {
        let state = env.state(id).unwrap();
        let pid = state["pid"].as_i64().unwrap();
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap()
    };
    let saved = |id: &str| std::fs::read_to_string(env.root.join(id).join("state.json")).unwrap();
    let create = |b: &mut Bundle, name: &str| {
        b.set_args(&["sleep", "100"]);
        b.write();
        let id = env.id(name);
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_ok();
        id
    };
    let remove = |id: &str| {
        env.carte(&["delete", "--force", id]).assert_ok();
        env.assert_no_leaks(id);
    };

    let mut plain = bundle(&env, "plain");
    let id = create(&mut plain, "plain");
    assert_eq!(exe_of_init(&id), bin, "the trampoline needs no re-exec");
    assert!(saved(&id).contains("\"trampoline\":true"), "{}", saved(&id));
    env.carte(&["start", &id]).assert_ok();
    let exe = exe_of_init(&id);
    assert!(
        exe.ends_with("bin/busybox"),
        "init runs the program: {exe:?}"
    );
    let out = env.carte(&["exec", &id, "sh", "-c", "readlink /proc/self/exe"]);
    out.assert_ok();
    assert!(out.stdout.trim().ends_with("busybox"), "{}", out.stdout);
    remove(&id);

    let mut ptrace = bundle(&env, "ptrace");
    let caps = json!(["CAP_KILL", "CAP_SYS_PTRACE"]);
    for set in ["bounding", "effective", "permitted"] {
        ptrace.config["process"]["capabilities"][set] = caps.clone();
    }
    let id = create(&mut ptrace, "ptrace");
    assert_ne!(exe_of_init(&id), bin, "CAP_SYS_PTRACE without the re-exec");
    assert!(
        saved(&id).contains("\"sealedBinary\":true"),
        "{}",
        saved(&id)
    );
    remove(&id);

    let mut filtered = bundle(&env, "filtered");
    filtered.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}]
    });
    let id = create(&mut filtered, "filtered");
    assert_ne!(
        exe_of_init(&id),
        bin,
        "a profile without execveat, no re-exec"
    );
    env.carte(&["start", &id]).assert_ok();
    assert!(exe_of_init(&id).ends_with("bin/busybox"));
    remove(&id);

    let mut userns = bundle(&env, "userns");
    userns.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    userns.config["linux"]["uidMappings"] = map.clone();
    userns.config["linux"]["gidMappings"] = map;
    let id = create(&mut userns, "userns");
    assert_eq!(exe_of_init(&id), bin, "a user namespace re-exec'd");
    assert!(!saved(&id).contains("\"trampoline\""), "{}", saved(&id));
    // An exec that grants CAP_SYS_PTRACE: later execs must be sealed.
    let out = env.carte(&["exec", "--cap", "CAP_SYS_PTRACE", &id, "true"]);
    out.assert_ok();
    assert!(
        saved(&id).contains("\"sealedBinary\":true"),
        "{}",
        saved(&id)
    );
    remove(&id);
}

/// The trampoline's own failure path: a program the kernel will not run
/// (no ELF, no `#!`) passes create's checks, and the execve fails in the
/// trampoline, which reports it as carte does: on stderr for `run`, as
/// the error of `exec`, and as the error of `start` when start waits for
/// the exec (poststart hooks).
#[test]
fn trampoline_reports_a_failed_exec() {
    let env = TestEnv::new("xtrampfail");
    let mut b = bundle(&env, "b");
    script(&b.rootfs().join("bin/garbage"), "\x01\x02 not a program\n");
    let want = ["exec \"/bin/garbage\": exec format error"];
    b.set_args(&["/bin/garbage"]);
    b.write();
    let id = env.id("run");
    let out = env.run(&b, &id);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(out.stderr.contains(want[0]), "{out:?}");
    env.assert_no_leaks(&id);

    b.set_args(&["sleep", "100"]);
    b.write();
    let id = env.id("exec");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["exec", &id, "/bin/garbage"])
        .assert_fails_with(&want);
    env.carte(&["exec", "-d", &id, "/bin/garbage"])
        .assert_fails_with(&want);
    let out = env.carte(&["exec", &id, "echo", "still", "fine"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "still fine");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);

    b.set_args(&["/bin/garbage"]);
    b.config["hooks"] = json!({"poststart": [{"path": "/bin/true"}]});
    b.write();
    // `run` waits for the exec as `start` does, on its pipe.
    let id = env.id("runhook");
    env.run(&b, &id).assert_fails_with(&want);
    env.assert_no_leaks(&id);
    let id = env.id("start");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    env.carte(&["start", &id]).assert_fails_with(&want);
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// CVE-2024-45310 / CVE-2025-31133 class: maskedPaths and readonlyPaths
/// entries with a symlink anywhere on them (the image's, here; a volume
/// the container writes to could hold the same). carte opens each entry
/// with no symlink allowed and mounts onto that fd; a symlink is an error
/// naming the entry (runc follows it: docs/spec-vs-runc.md).
#[test]
fn masked_and_readonly_paths_refuse_symlinks() {
    let env = TestEnv::new("xmasklink");
    let mut b = env.bundle("b");
    let data = b.rootfs().join("data");
    std::fs::create_dir_all(data.join("real/hidden")).unwrap();
    std::fs::write(data.join("real/secret"), "s3cret\n").unwrap();
    std::fs::write(data.join("real/hidden/file"), "s3cret\n").unwrap();
    std::os::unix::fs::symlink("real", data.join("link")).unwrap();
    std::os::unix::fs::symlink("/", b.rootfs().join("root-link")).unwrap();
    std::os::unix::fs::symlink("/data/real/secret", b.rootfs().join("secret-link")).unwrap();
    let cases: [(&str, &str); 5] = [
        ("maskedPaths", "/data/link/secret"),
        ("maskedPaths", "/secret-link"),
        ("maskedPaths", "/data/link/hidden"),
        ("readonlyPaths", "/root-link"),
        ("readonlyPaths", "/root-link/data/real"),
    ];
    for (n, (field, path)) in cases.iter().enumerate() {
        b.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
        b.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
        b.config["linux"][*field]
            .as_array_mut()
            .unwrap()
            .push(json!(path));
        b.set_args(&["sh", "-c", "echo started > /started"]);
        let id = env.id(&format!("c{n}"));
        env.run(&b, &id)
            .assert_fails_with(&[field, path, "symlink"]);
        env.assert_no_leaks(&id);
        assert!(!b.rootfs().join("started").exists(), "{path}: it started");
    }
    // The same entries without the symlinks: masked and read-only, and a
    // missing entry skipped, as the spec allows.
    b.config["linux"]["maskedPaths"] = json!([
        "/proc/kcore",
        "/data/real/secret",
        "/data/real/hidden",
        "/data/nonexistent"
    ]);
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys", "/data", "/nonexistent/x"]);
    let out = env.sh(
        &mut b,
        "echo secret=[$(cat /data/real/secret)]; echo hidden=[$(ls /data/real/hidden)]; \
         touch /data/new 2>/dev/null && echo data=writable || echo data=readonly; \
         touch /data/real/hidden/new 2>/dev/null && echo hidden_w=writable || echo hidden_w=readonly",
    );
    let v = kv(&out);
    assert_eq!(v["secret"], "[]", "{out}");
    assert_eq!(v["hidden"], "[]", "{out}");
    assert_eq!(v["data"], "readonly", "{out}");
    assert_eq!(v["hidden_w"], "readonly", "{out}");
    assert_eq!(
        std::fs::read_to_string(data.join("real/secret")).unwrap(),
        "s3cret\n"
    );
    assert!(!data.join("new").exists());
}

/// Accepts one connection on a console socket at `path` and returns the
/// pty master it carries, or None if nobody connects within 10 s (a
/// create that failed before its console).
fn console_master(path: &Path) -> std::thread::JoinHandle<Option<std::os::fd::OwnedFd>> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return None,
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .ok()?;
        let fd = msg.cmsgs().ok()?.find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })?;
        // SAFETY: the fd was just received over SCM_RIGHTS and is ours.
        Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
    })
}

/// "major:minor st_dev" (hex major and minor, as busybox `stat -c '%t:%T
/// %d'` prints them) of the pty slave behind `master`, opened from the
/// master itself.
fn peer_of(master: &std::os::fd::OwnedFd) -> String {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: TIOCGPTPEER on a pty master returns a new fd we own.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "TIOCGPTPEER: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let peer = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let meta = peer.metadata().unwrap();
    let rdev = meta.rdev();
    format!(
        "{:x}:{:x} {}",
        libc::major(rdev),
        libc::minor(rdev),
        meta.dev()
    )
}

/// CVE-2025-52565: with process.terminal, /dev/console is the pty slave
/// whose master went to the console socket (same device, same devpts
/// instance). Then the attack: /dev comes from the image, and the host
/// keeps exchanging the image's /dev/pts (where the container's devpts is
/// mounted) with a directory whose entries 0..31 are symlinks to a global
/// sysctl. A runtime that binds /dev/pts/N by path onto /dev/console hands
/// the container the sysctl, writable; carte takes the slave from the
/// master (TIOCGPTPEER) and binds it fd to fd.
#[test]
fn console_is_the_real_pty() {
    let env = TestEnv::new("xconsole");
    let host_value = std::fs::read_to_string(GLOBAL_SYSCTL).unwrap();
    let _restore = Restore(host_value.clone());
    let console_run = |b: &Bundle, id: &str, sock: &Path| {
        let master = console_master(sock);
        b.write();
        let out = env.carte(&[
            "run",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path(),
            id,
        ]);
        (out, master.join().unwrap())
    };
    let script = "stat -c '%t:%T %d' /dev/console > /tmp/console; \
                  stat -L -c '%t:%T %d' /proc/self/fd/0 >> /tmp/console; \
                  echo 17 > /dev/console";
    let mut b = env.bundle("b");
    b.config["process"]["terminal"] = json!(true);
    b.set_args(&["sh", "-c", script]);
    let id = env.id("plain");
    let (out, master) = console_run(&b, &id, &env.dir.join("plain.sock"));
    out.assert_ok();
    let peer = peer_of(&master.expect("the pty master"));
    let seen = std::fs::read_to_string(b.rootfs().join("tmp/console")).unwrap();
    assert_eq!(
        seen,
        format!("{peer}\n{peer}\n"),
        "/dev/console, then stdin"
    );
    env.assert_no_leaks(&id);

    // The attack.
    let mut b = env.bundle("a");
    let dev = b.rootfs().join("dev");
    let null = std::ffi::CString::new(dev.join("null").to_str().unwrap()).unwrap();
    // SAFETY: mknod on a path this test owns.
    assert_eq!(
        unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) },
        0
    );
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    for d in ["pts", "pts-evil"] {
        std::fs::create_dir(dev.join(d)).unwrap();
        // Whichever of the two is not under the devpts mount shows these.
        std::os::unix::fs::symlink("../pts-evil/ptmx", dev.join(d).join("ptmx")).unwrap();
        for n in 0..32 {
            std::os::unix::fs::symlink(GLOBAL_SYSCTL, dev.join(d).join(n.to_string())).unwrap();
        }
    }
    b.config["process"]["terminal"] = json!(true);
    b.set_args(&["sh", "-c", script]);
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            *m =
                json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]});
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (a, b) = (
            std::ffi::CString::new(dev.join("pts").to_str().unwrap()).unwrap(),
            std::ffi::CString::new(dev.join("pts-evil").to_str().unwrap()).unwrap(),
        );
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: renameat2 on two NUL-terminated paths this test owns.
                let rc = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                swaps += (rc == 0) as u64;
            }
            swaps
        })
    };
    let (mut started, mut refused) = (0, 0);
    for n in 0..30 {
        let id = env.id(&format!("a{n}"));
        let _ = std::fs::remove_file(b.rootfs().join("tmp/console"));
        let (out, master) = console_run(&b, &id, &env.dir.join(format!("a{n}.sock")));
        assert_eq!(
            std::fs::read_to_string(GLOBAL_SYSCTL).unwrap(),
            host_value,
            "run {n}: the container wrote the host's sysctl through /dev/console\n{out:?}"
        );
        if out.ok() {
            started += 1;
            let peer = peer_of(&master.expect("the pty master"));
            let seen = std::fs::read_to_string(b.rootfs().join("tmp/console")).unwrap();
            assert_eq!(seen.lines().next().unwrap(), peer, "run {n}");
        } else {
            refused += 1;
            eprintln!("run {n} refused: {}", out.stderr.trim());
        }
        env.assert_no_leaks(&id);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("{started} started, {refused} refused cleanly, {swaps} exchanges");
    assert!(swaps > 1000 && started > 0, "the race did not run");
}

/// Waits up to 10 s for `path` to exist.
#[track_caller]
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// CVE-2024-45310 / CVE-2025-31133 class, raced: container A shares a
/// volume (a host directory) with container B and keeps exchanging, in
/// it, B's readonlyPaths directory `ro` and maskedPaths directory `m` with
/// symlinks to B's /etc while B sets up. A runtime that resolves those
/// paths more than once, or follows the symlink, puts the read-only mount
/// or the mask on /etc and leaves the host directories writable and
/// readable: B's process then writes into the host's `ro` and reads the
/// secret in `m`. carte opens each once, with no symlink allowed, and
/// mounts onto that fd: it refuses (the symlink was there) or protects
/// the real directory.
#[test]
fn readonly_paths_swapped_mid_way() {
    let env = TestEnv::new("xroswap");
    let vol = env.dir.join("vol");
    for d in ["ro", "m"] {
        std::fs::create_dir_all(vol.join(d)).unwrap();
        std::os::unix::fs::symlink("/etc", vol.join(format!("{d}-link"))).unwrap();
    }
    std::fs::write(vol.join("m/secret"), "s3cret\n").unwrap();
    let volume =
        json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]});
    let mut a = bundle(&env, "a");
    a.set_args(&["/bin/evil", "swap", "/vol", "ro", "m"]);
    a.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(volume.clone());
    a.write();
    let ida = env.id("a");
    env.carte(&["run", "-d", "--bundle", a.path(), &ida])
        .assert_ok();
    wait_for(&vol.join("idle"));
    std::fs::write(vol.join("go"), "").unwrap();

    let mut b = env.bundle("b");
    b.config["mounts"].as_array_mut().unwrap().push(volume);
    b.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/vol/ro"));
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/vol/m"));
    // While A still swaps, /vol/ro is the real directory about half the
    // time: a write or read that gets through shows on the host.
    b.set_args(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo pwned > /vol/ro/pwned 2>/dev/null; \
         cat /vol/m/secret 2>/dev/null; i=$((i+1)); done; echo finished",
    ]);
    let (mut started, mut refused) = (0, 0);
    let (mut read, mut other_errors) = (Vec::new(), Vec::new());
    for n in 0..30 {
        let id = env.id(&format!("b{n}"));
        let out = env.run(&b, &id);
        if out.ok() {
            started += 1;
            assert!(out.stdout.contains("finished"), "run {n}: {out:?}");
            if out.stdout.contains("s3cret") {
                read.push(n);
            }
        } else {
            refused += 1;
            // One line naming the entry and the symlink, checked after the
            // race so that a run that got through still shows.
            let err = out.stderr.trim().to_string();
            if err.lines().count() != 1 || !err.contains("/vol/") || !err.contains("symlink") {
                other_errors.push(err);
            }
        }
        env.assert_no_leaks(&id);
    }
    std::fs::remove_file(vol.join("go")).unwrap();
    wait_for(&vol.join("idle"));
    env.carte(&["delete", "--force", &ida]).assert_ok();
    env.assert_no_leaks(&ida);
    eprintln!("{started} started, {refused} refused cleanly");
    assert!(vol.join("ro").is_dir() && vol.join("m").is_dir());
    let wrote = vol.join("ro/pwned").exists();
    assert!(
        read.is_empty() && !wrote,
        "B read the masked host directory in runs {read:?}; \
         B wrote into the host's read-only directory: {wrote}"
    );
    assert!(other_errors.is_empty(), "{other_errors:#?}");
    assert!(started > 0, "the race never let B start");
}

/// CVE-2023-27561 / CVE-2019-16884 class: /proc in the container is not
/// procfs, so a runtime that writes sysctls (or LSM labels) through the
/// container's /proc writes into whatever the image put there. Here the
/// fake's `sys/net/ipv4/ip_forward` is a hard link to a host file: once
/// bound over the real proc by a config mount, once as the image's own
/// /proc with no proc mount at all. carte writes through its verified
/// procfs handle only: the host file stays as it was, and the sysctl lands
/// in the container's network namespace.
#[test]
fn fake_procfs_is_never_written() {
    let env = TestEnv::new("xfakeproc");
    let host_file = env.dir.join("host-file");
    std::fs::write(&host_file, "host only\n").unwrap();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let fake = |b: &Bundle, dir: &str| {
        let ipv4 = b.rootfs().join(dir).join("sys/net/ipv4");
        std::fs::create_dir_all(&ipv4).unwrap();
        std::fs::hard_link(&host_file, ipv4.join("ip_forward")).unwrap();
    };
    let check = |b: &mut Bundle, id: &str| {
        b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        b.set_args(&["sleep", "100"]);
        b.write();
        let out = env.carte(&["run", "-d", "--bundle", b.path(), id]);
        assert_eq!(
            std::fs::read_to_string(&host_file).unwrap(),
            "host only\n",
            "the sysctl went into the fake procfs, a host file"
        );
        out.assert_ok();
        let pid = env.state(id).unwrap()["pid"].as_i64().unwrap();
        let real = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["cat", "/proc/sys/net/ipv4/ip_forward"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&real.stdout), "1\n", "{real:?}");
        env.carte(&["delete", "--force", id]).assert_ok();
        env.assert_no_leaks(id);
    };
    // A config mount lays the image's fake over the real /proc.
    let mut b = env.bundle("over");
    fake(&b, "fakeproc");
    let source = b.rootfs().join("fakeproc");
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/proc", "type": "bind", "source": source, "options": ["rbind"]}),
    );
    check(&mut b, &env.id("over"));
    // No proc mount: /proc is the image's own directory.
    let mut b = env.bundle("image");
    fake(&b, "proc");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "proc");
    check(&mut b, &env.id("image"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
}

/// `cmd` with `fds` at 3, 4, ... in the child (not close-on-exec), and
/// nothing else above stdio.
fn with_fds(cmd: &mut Command, fds: &[std::os::fd::RawFd]) {
    use std::os::unix::process::CommandExt;
    let fds = fds.to_vec();
    // SAFETY: only dup and fcntl in the child before exec, on its own fds.
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way first, so a source is not overwritten by a target.
            let high: Vec<i32> = fds
                .iter()
                .map(|&fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 200))
                .collect();
            for (i, fd) in high.into_iter().enumerate() {
                libc::dup2(fd, 3 + i as i32);
            }
            Ok(())
        });
    }
}

/// The fd numbers `evil fds` listed, and whether it reached the host.
fn fds_seen(out: &str) -> Vec<String> {
    assert!(!out.contains("host-reached"), "escaped:\n{out}");
    out.lines()
        .filter_map(|l| l.strip_prefix("fd="))
        .map(|l| l.to_string())
        .collect()
}

/// `--preserve-fds N` with fewer than N fds passed: carte's own fds (its
/// lock on the state dir, the state dir itself, the trampoline, its pipes)
/// sit in 3..3+N and were handed to the container, which read host files
/// through the state dir and held the lock `start` waits for. create, run
/// and exec now refuse the range, at once; the caller's fds still arrive,
/// and only those.
#[test]
fn preserve_fds_hands_over_only_the_callers() {
    use std::os::fd::AsRawFd;
    let env = TestEnv::new("sec-pfds");
    let (_secret, secret) = host_secret(&env);
    let mut b = bundle(&env, "b");
    let passed = env.dir.join("passed");
    std::fs::write(&passed, "passed by the caller\n").unwrap();
    let file = std::fs::File::open(&passed).unwrap();
    let (reader, _writer) = std::io::pipe().unwrap();
    let two = [file.as_raw_fd(), reader.as_raw_fd()];
    let script = format!("/bin/evil fds {secret} > /tmp/fds; cat <&3 >> /tmp/fds; sleep 100");
    b.set_args(&["sh", "-c", &script]);
    b.write();
    // Two fds passed, 100 asked for: create fails, nothing is left.
    let id = env.id("create");
    let mut cmd = env.command(&["create", "--preserve-fds", "100", "--bundle", b.path(), &id]);
    with_fds(&mut cmd, &two);
    env.carte_within(cmd, 20)
        .assert_fails_with(&["preserve-fds", "fd 5"]);
    env.assert_no_leaks(&id);
    // None passed: run (foreground and -d) fails the same way.
    for detach in [false, true] {
        let id = env.id(if detach { "rund" } else { "run" });
        let mut args = vec!["run", "--preserve-fds", "6", "--bundle", b.path(), &id];
        if detach {
            args.insert(1, "-d");
        }
        env.carte_within(env.command(&args), 20)
            .assert_fails_with(&["preserve-fds", "fd 3"]);
        env.assert_no_leaks(&id);
    }
    // The two passed, two asked for: create and start (which used to block
    // on the lock init held) go through; the container has exactly them.
    let id = env.id("ok");
    let mut cmd = env.command(&["create", "--preserve-fds", "2", "--bundle", b.path(), &id]);
    with_fds(&mut cmd, &two);
    env.carte_within(cmd, 20).assert_ok();
    env.carte_within(env.command(&["start", &id]), 20)
        .assert_ok();
    let out = read_when_there(&b.rootfs().join("tmp/fds"));
    let seen = fds_seen(&out);
    assert_eq!(seen.len(), 2, "{out}");
    assert!(
        seen[0].starts_with("3 ") && seen[0].ends_with("/passed"),
        "{out}"
    );
    assert!(seen[1].starts_with("4 pipe:"), "{out}");
    assert!(out.ends_with("passed by the caller\n"), "{out}");
    // exec: the same rule.
    let exec = |count: &str, fds: &[i32]| {
        let mut cmd = env.command(&[
            "exec",
            "--preserve-fds",
            count,
            &id,
            "/bin/evil",
            "fds",
            &secret,
        ]);
        with_fds(&mut cmd, fds);
        env.carte_within(cmd, 20)
    };
    exec("3", &two[..1]).assert_fails_with(&["preserve-fds", "fd 4"]);
    let out = exec("1", &two[..1]);
    out.assert_ok();
    let seen = fds_seen(&out.stdout);
    assert_eq!(seen.len(), 1, "{out:?}");
    assert!(
        seen[0].starts_with("3 ") && seen[0].ends_with("/passed"),
        "{out:?}"
    );
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// `--no-pivot`: the container is only MS_MOVE'd onto / and chrooted, so
/// the host's whole /proc and /sys mounts stay in its mount namespace,
/// out of sight. The kernel lets a process in a new user namespace mount
/// procfs or sysfs where a whole one is visible in its mount namespace, so
/// with them left there a nested user namespace mounted a fresh procfs
/// (and sysfs). As runc, carte detaches them before the chroot: the mounts
/// fail with EPERM, as they do in a pivot_root container.
#[test]
fn no_pivot_leaves_no_host_proc_or_sys_to_mount_again() {
    let env = TestEnv::new("sec-nopivot");
    let mut b = bundle(&env, "b");
    // Docker's default capabilities: CAP_SETFCAP lets root in the
    // container map itself as root of the new user namespace.
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let script = "\
        r=$(unshare -Urmpf --mount-proc sh -c 'echo mounted' 2>&1); echo \"proc=$r\"; \
        r=$(unshare -Umpf --mount-proc sh -c 'echo mounted' 2>&1); echo \"proc-unmapped=$r\"; \
        r=$(unshare -Urmn sh -c 'mount -t sysfs sysfs /sys && echo mounted' 2>&1); \
        echo \"sysfs=$r\"";
    b.set_args(&["sh", "-c", script]);
    b.write();
    for no_pivot in [true, false] {
        let id = env.id(if no_pivot { "nopivot" } else { "pivot" });
        let mut args = vec!["run", "--bundle", b.path(), &id];
        if no_pivot {
            args.insert(1, "--no-pivot");
        }
        let out = env.carte(&args);
        out.assert_ok();
        eprintln!("no_pivot={no_pivot}:\n{}", out.stdout);
        let v = kv(&out.stdout);
        for fs in ["proc", "proc-unmapped", "sysfs"] {
            // busybox mount says "permission denied (are you root?)" for EPERM.
            let refused = ["Operation not permitted", "permission denied"];
            assert!(
                v[fs] != "mounted" && refused.iter().any(|r| v[fs].contains(r)),
                "no_pivot={no_pivot}: {fs} mounted again in a nested user namespace\n{}",
                out.stdout
            );
        }
        env.assert_no_leaks(&id);
    }
}
