//! Container escapes, really attempted against carte. Each test plays the
//! attack of one CVE (or class) from inside a container, or through a
//! hostile image or config, and checks that the host did not change.
//! docs/security.md maps each test to the defence it proves.

mod common;

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

/// Runs carte with a stderr pipe that is already full, so the carte
/// process that `#!/proc/self/exe` starts in the container blocks on its
/// error message (the attacker's timing, made certain) until `hold` is over.
fn run_stalled(env: &TestEnv, bin: &Path, args: &[&str], hold: Duration) -> bool {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    // SAFETY: fcntl on a pipe fd this test owns.
    unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    while writer.write(&[b'.'; 4096]).is_ok() {}
    // SAFETY: as above; back to blocking for the child.
    unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, 0) };
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
    let carte: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("exe-denied ") || l.starts_with("exe "))
        .collect();
    assert!(
        !carte.is_empty(),
        "the attacker saw no carte process\n{log}"
    );
    for line in carte {
        assert!(
            line.starts_with("exe-denied ") || line.contains("/memfd:carte"),
            "the attacker holds a carte binary: {line}\n{log}"
        );
    }
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
    assert!(
        log.lines()
            .any(|l| l.starts_with("exe-denied 1 ") || l.starts_with("exe 1 /memfd:carte")),
        "{log}"
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
