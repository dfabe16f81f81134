//! linux.seccomp in real containers, checked from inside with a small
//! static helper (tests/helpers/sc.c) that makes the calls with chosen
//! numbers and arguments.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::{json, Value};

const NR_GETPID: u32 = 39;
/// Neither busybox sh nor the helper's libc calls it on its own, so a
/// filter on it touches only the calls the tests make.
const NR_SCHED_YIELD: u32 = 24;
const NR_MKDIR: u32 = 83;
const NR_PERSONALITY: u32 = 135;
const I386_GETPID: u32 = 20;
const I386_MKDIR: u32 = 39;
const X32_BIT: u32 = 0x4000_0000;
const SIGSYS_EXIT: i32 = 128 + libc::SIGSYS;

/// The helper, built once per test binary.
fn helper() -> &'static PathBuf {
    static SC: OnceLock<PathBuf> = OnceLock::new();
    SC.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-sc");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sc.c");
        let status = Command::new("cc")
            .args(["-static", "-no-pie", "-O", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("cc (gcc and libc6-dev) is needed to build tests/helpers/sc.c");
        assert!(status.success(), "building tests/helpers/sc.c failed");
        out
    })
}

/// A bundle with the helper at /bin/sc and `seccomp` as linux.seccomp.
fn bundle(env: &TestEnv, seccomp: Value) -> Bundle {
    let mut b = env.bundle(&format!("b{}", rand_suffix()));
    std::fs::copy(helper(), b.rootfs().join("bin/sc")).unwrap();
    b.config["linux"]["seccomp"] = seccomp;
    b.write();
    b
}

/// Runs `script` in a fresh container and returns (exit code, stdout).
fn run_sh(env: &TestEnv, b: &mut Bundle, script: &str) -> (Option<i32>, String) {
    b.set_args(&["sh", "-c", script]);
    let id = env.id(&format!("c{}", rand_suffix()));
    let out = env.run(b, &id);
    env.assert_no_leaks(&id);
    (out.code(), out.stdout)
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn deny(names: &[&str], action: &str, extra: Value) -> Value {
    let mut call = json!({"names": names, "action": action});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            call[k] = v;
        }
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [call]})
}

#[test]
fn errno_with_errno_ret() {
    let env = TestEnv::new("sc-errno");
    let mut b = bundle(
        &env,
        deny(
            &["mkdir", "mkdirat"],
            "SCMP_ACT_ERRNO",
            json!({"errnoRet": 38}),
        ),
    );
    let (code, out) = run_sh(
        &env,
        &mut b,
        "sc mkdir /tmp/x; mkdir /tmp/y || echo busybox-failed",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ret=-1 errno=38"), "{out}");
    assert!(out.contains("busybox-failed"), "{out}");
    assert!(!b.rootfs().join("tmp/x").exists());
    // Without errnoRet, ERRNO means EPERM.
    let mut b = bundle(&env, deny(&["mkdir"], "SCMP_ACT_ERRNO", json!({})));
    let (_, out) = run_sh(&env, &mut b, "sc mkdir /tmp/x");
    assert!(out.contains("errno=1"), "{out}");
}

#[test]
fn kill_and_trap_give_sigsys() {
    let env = TestEnv::new("sc-kill");
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
    ] {
        let mut b = bundle(&env, deny(&["sched_yield"], action, json!({})));
        let (code, out) = run_sh(
            &env,
            &mut b,
            &format!("sc raw {NR_SCHED_YIELD}; echo status=$?"),
        );
        assert_eq!(code, Some(0), "{action}: {out}");
        assert_eq!(kv(&out)["status"], SIGSYS_EXIT.to_string(), "{action}");
        // The whole container dies when its init is killed.
        b.set_args(&["sc", "raw", &NR_SCHED_YIELD.to_string()]);
        let id = env.id(&format!("k{}", rand_suffix()));
        let out = env.run(&b, &id);
        assert_eq!(out.code(), Some(SIGSYS_EXIT), "{action}: {out:?}");
        env.assert_no_leaks(&id);
    }
    let mut b = bundle(&env, deny(&["sched_yield"], "SCMP_ACT_TRAP", json!({})));
    let (_, out) = run_sh(
        &env,
        &mut b,
        &format!("sc trap {NR_SCHED_YIELD}; sc raw {NR_SCHED_YIELD}; echo status=$?"),
    );
    assert!(out.contains("trapped"), "{out}");
    assert_eq!(kv(&out)["status"], SIGSYS_EXIT.to_string());
}

/// SCMP_ACT_LOG lets the call run and logs it: with no audit daemon the
/// kernel prints the audit record (type=1326, code 0x7ffc0000 =
/// SECCOMP_RET_LOG) to its log, where the helper's own name finds it.
#[test]
fn log_lets_the_call_run_and_logs_it() {
    let env = TestEnv::new("sc-log");
    let mut b = bundle(&env, deny(&["mkdir"], "SCMP_ACT_LOG", json!({})));
    let name = format!("sclog{}", std::process::id() % 10_000_000);
    std::fs::copy(helper(), b.rootfs().join("bin").join(&name)).unwrap();
    let record = format!("comm=\"{name}\"");
    let logged = || {
        let dmesg = Command::new("dmesg").output().expect("dmesg (util-linux)");
        String::from_utf8_lossy(&dmesg.stdout).lines().any(|l| {
            l.contains("type=1326")
                && l.contains(&record)
                && l.contains("syscall=83 ")
                && l.contains("code=0x7ffc0000")
        })
    };
    // The kernel prints audit records under printk_ratelimit (10 per 5 s),
    // which other tests' records may use up: try again past the window.
    for attempt in 0..3 {
        let _ = std::fs::remove_dir(b.rootfs().join("tmp/x"));
        let (code, out) = run_sh(
            &env,
            &mut b,
            &format!("{name} mkdir /tmp/x && test -d /tmp/x && echo made"),
        );
        assert_eq!(code, Some(0));
        assert!(out.contains("ret=0") && out.contains("made"), "{out}");
        if logged() {
            return;
        }
        eprintln!("attempt {attempt}: no audit record yet");
        std::thread::sleep(std::time::Duration::from_millis(5500));
    }
    panic!("no seccomp audit record with {record} in the kernel log");
}

/// SCMP_ACT_TRACE with no tracer attached: the kernel skips the call and
/// returns ENOSYS.
#[test]
fn trace_without_a_tracer_is_enosys() {
    let env = TestEnv::new("sc-trace");
    let mut b = bundle(
        &env,
        deny(&["mkdir"], "SCMP_ACT_TRACE", json!({"errnoRet": 42})),
    );
    let (code, out) = run_sh(&env, &mut b, "sc mkdir /tmp/x; echo done");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ret=-1 errno=38"), "{out}");
    assert!(!b.rootfs().join("tmp/x").exists());
}

/// SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD end only the thread that made
/// the call; SCMP_ACT_KILL_PROCESS ends the whole process.
#[test]
fn kill_thread_and_kill_process_from_a_thread() {
    let env = TestEnv::new("sc-killthr");
    for (action, survives) in [
        ("SCMP_ACT_KILL", true),
        ("SCMP_ACT_KILL_THREAD", true),
        ("SCMP_ACT_KILL_PROCESS", false),
    ] {
        let mut b = bundle(&env, deny(&["sched_yield"], action, json!({})));
        let (code, out) = run_sh(
            &env,
            &mut b,
            &format!("sc thread {NR_SCHED_YIELD}; echo status=$?"),
        );
        assert_eq!(code, Some(0), "{action}: {out}");
        assert!(!out.contains("ret="), "{action}: the call returned: {out}");
        if survives {
            assert!(out.contains("survived"), "{action}: {out}");
            assert_eq!(kv(&out)["status"], "0", "{action}: {out}");
        } else {
            assert!(!out.contains("survived"), "{action}: {out}");
            assert_eq!(kv(&out)["status"], SIGSYS_EXIT.to_string(), "{action}");
        }
    }
}

#[test]
fn default_action_with_an_allow_list() {
    let env = TestEnv::new("sc-default");
    // Whatever busybox sh, echo and the helper need, less mkdir.
    let x86_64: Vec<String> = allow_all_but(&["mkdir", "mkdirat"]);
    let mut b = bundle(
        &env,
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 95,
            "syscalls": [{"names": x86_64, "action": "SCMP_ACT_ALLOW"}]
        }),
    );
    let (code, out) = run_sh(&env, &mut b, "sc mkdir /tmp/x; sc raw 1000; echo ok");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ret=-1 errno=95\nret=-1 errno=95\nok"),
        "{out}"
    );
}

/// Every syscall name this machine's headers know, less `except`.
fn allow_all_but(except: &[&str]) -> Vec<String> {
    let header = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
        .expect("kernel headers (linux-libc-dev)");
    header
        .lines()
        .filter_map(|l| l.strip_prefix("#define __NR_"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| !except.contains(n))
        .map(String::from)
        .collect()
}

/// (operator, value, valueTwo, [(argument, matches)])
type OpCase = (&'static str, u64, u64, &'static [(u64, bool)]);

#[test]
fn every_operator_on_arguments() {
    let env = TestEnv::new("sc-ops");
    // sched_yield ignores its arguments, which seccomp still sees.
    let cases: &[OpCase] = &[
        ("SCMP_CMP_NE", 7, 0, &[(7, false), (8, true)]),
        ("SCMP_CMP_LT", 7, 0, &[(6, true), (7, false)]),
        ("SCMP_CMP_LE", 7, 0, &[(7, true), (8, false)]),
        ("SCMP_CMP_EQ", 7, 0, &[(7, true), (0x1_0000_0007, false)]),
        ("SCMP_CMP_GE", 7, 0, &[(7, true), (6, false)]),
        ("SCMP_CMP_GT", 7, 0, &[(8, true), (7, false)]),
        (
            "SCMP_CMP_MASKED_EQ",
            0xf0,
            0x30,
            &[(0x137, true), (0x147, false)],
        ),
    ];
    for (op, value, two, tries) in cases {
        let mut b = bundle(
            &env,
            deny(
                &["sched_yield"],
                "SCMP_ACT_ERRNO",
                json!({"errnoRet": 33, "args": [
                    {"index": 1, "value": value, "valueTwo": two, "op": op}]}),
            ),
        );
        let script: String = tries
            .iter()
            .map(|(arg, _)| format!("sc raw {NR_SCHED_YIELD} 0 {arg:#x}; "))
            .collect();
        let (_, out) = run_sh(&env, &mut b, &script);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), tries.len(), "{op}: {out}");
        for ((arg, hit), line) in tries.iter().zip(lines) {
            assert_eq!(line.contains("errno=33"), *hit, "{op} {arg:#x}: {line}");
        }
    }
    // Two args in a rule are ANDed; two rules for one syscall are ORed.
    // personality(0xffffffff) only reads the persona.
    let mut b = bundle(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 0, "value": 0xffffffffu32, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    let (_, out) = run_sh(
        &env,
        &mut b,
        &format!(
            "sc raw {NR_PERSONALITY} 0xffffffff 1; sc raw {NR_PERSONALITY} 0xffffffff 2; \
             sc raw {NR_PERSONALITY} 0xffffffff 9"
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("errno=5"), "{out}");
    assert!(!lines[1].contains("errno=5"), "{out}");
    assert!(lines[2].contains("errno=5"), "{out}");
}

#[test]
fn i386_and_x32_calls_are_filtered() {
    let env = TestEnv::new("sc-abi");
    // i386 and x32 listed: their own numbers for the same names.
    let mut b = bundle(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "syscalls": [{"names": ["mkdir", "getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]}),
    );
    let (_, out) = run_sh(
        &env,
        &mut b,
        &format!(
            "sc int80 {I386_MKDIR} 0x400000; sc int80 {I386_GETPID}; sc raw {}; sc raw {NR_MKDIR} 0x400000",
            NR_GETPID | X32_BIT
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in &lines {
        assert!(line.contains("errno=77"), "{out}");
    }
    // Not listed: a 32-bit call never gets past a deny list (ENOSYS), and
    // gets the refusing default of an allow list.
    let mut b = bundle(&env, deny(&["mkdir"], "SCMP_ACT_ERRNO", json!({})));
    let (_, out) = run_sh(
        &env,
        &mut b,
        &format!(
            "sc int80 {I386_MKDIR} 0x400000; sc int80 {I386_GETPID}; sc raw {}",
            NR_GETPID | X32_BIT
        ),
    );
    assert_eq!(out.matches("ret=-1 errno=38").count(), 3, "{out}");
    let mut b = bundle(
        &env,
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
               "syscalls": [{"names": allow_all_but(&[]), "action": "SCMP_ACT_ALLOW"}]}),
    );
    let (_, out) = run_sh(&env, &mut b, &format!("sc int80 {I386_GETPID}"));
    assert!(out.contains("ret=-1 errno=13"), "{out}");
}

#[test]
fn without_no_new_privs_and_with_flags() {
    let env = TestEnv::new("sc-nnp");
    let mut profile = deny(&["mkdir"], "SCMP_ACT_ERRNO", json!({"errnoRet": 40}));
    profile["flags"] = json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    ]);
    let mut b = bundle(&env, profile);
    // Installed before the capability drop, so CAP_SYS_ADMIN is not needed
    // in the final set and no_new_privs stays off.
    b.config["process"]["noNewPrivileges"] = json!(false);
    let (code, out) = run_sh(
        &env,
        &mut b,
        "sc mkdir /tmp/x; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t'",
    );
    assert_eq!(code, Some(0), "{out}");
    let v = kv(&out.replace(':', "="));
    assert!(out.contains("errno=40"), "{out}");
    assert_eq!(v["Seccomp"], "2");
    assert_eq!(v["NoNewPrivs"], "0");
}

/// A profile that does not know close_range or getcwd (runtime-tools'
/// default one answers EPERM to both): the container still starts, with
/// none of carte's fds, and its cwd is still checked to be inside the root.
#[test]
fn a_profile_denying_close_range_and_getcwd() {
    let env = TestEnv::new("sc-closerange");
    for (errno, nnp) in [(1, false), (38, true)] {
        let mut b = bundle(
            &env,
            deny(
                &["close_range", "getcwd"],
                "SCMP_ACT_ERRNO",
                json!({ "errnoRet": errno }),
            ),
        );
        // Without no_new_privs the filter goes in before the cwd check and
        // the fd sweep; with it, just before both.
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["process"]["cwd"] = json!("/tmp");
        let (code, out) = run_sh(&env, &mut b, "ls /proc/self/fd | wc -l; sc raw 436 3 3 0");
        assert_eq!(code, Some(0), "errno {errno}: {out}");
        let mut lines = out.lines();
        assert_eq!(
            lines.next().map(str::trim),
            Some("4"),
            "errno {errno}: stdio and ls's own directory fd only: {out}"
        );
        assert!(out.contains(&format!("errno={errno}")), "{out}");
    }
}

#[test]
fn exec_gets_the_containers_filter() {
    let env = TestEnv::new("sc-exec");
    let mut b = bundle(
        &env,
        deny(&["mkdir"], "SCMP_ACT_ERRNO", json!({"errnoRet": 39})),
    );
    b.set_args(&["sleep", "1000"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "running");
    let out = env.carte(&["exec", &id, "sc", "mkdir", "/tmp/x"]);
    out.assert_ok();
    assert!(out.stdout.contains("errno=39"), "{out:?}");
    // A --process file too: the process object has no seccomp of its own.
    let process = b.dir.join("process.json");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["sc", "mkdir", "/tmp/y"]);
    p["noNewPrivileges"] = json!(false);
    std::fs::write(&process, p.to_string()).unwrap();
    let out = env.carte(&["exec", "--process", process.to_str().unwrap(), &id]);
    out.assert_ok();
    assert!(out.stdout.contains("errno=39"), "{out:?}");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn unknown_syscall_names_are_skipped_with_a_warning() {
    let env = TestEnv::new("sc-unknown");
    let mut b = bundle(
        &env,
        deny(&["no_such_call", "mkdir"], "SCMP_ACT_ERRNO", json!({})),
    );
    b.set_args(&["sc", "mkdir", "/tmp/x"]);
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert!(out.stdout.contains("errno=1"), "{out:?}");
    if !is_runc() {
        assert!(out.stderr.contains("no_such_call"), "{out:?}");
    }
    env.assert_no_leaks(&id);
}

// SECCOMP_IOCTL_NOTIF_RECV / _SEND: _IOWR('!', 0|1, struct seccomp_notif[_resp]).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// The agent: takes one connection, then answers one notification with
/// `val`. Returns the state message and the syscall number it saw.
fn agent(listener: UnixListener, val: i64) -> (Value, i32) {
    let (conn, _) = listener.accept().unwrap();
    answer(conn, val)
}

fn answer(conn: std::os::unix::net::UnixStream, val: i64) -> (Value, i32) {
    let mut buf = vec![0u8; 64 * 1024];
    let (n, fd) = carte::tty::recv_with_fd(conn.as_fd(), &mut buf).unwrap();
    let msg: Value = serde_json::from_slice(&buf[..n]).unwrap();
    let fd: OwnedFd = fd.expect("the listener fd");
    let mut notif = Notif::default();
    // SAFETY: the ioctl fills a struct of the kernel's layout that we own.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut notif) };
    assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let resp = NotifResp {
        id: notif.id,
        val,
        error: 0,
        flags: 0,
    };
    // SAFETY: as above, the kernel reads our struct.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
    assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    (msg, notif.nr)
}

#[test]
fn notify_hands_the_listener_to_an_agent() {
    if is_runc() {
        return; // runc needs a build with libseccomp notify support
    }
    let env = TestEnv::new("sc-notify");
    let sock = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let thread = std::thread::spawn(move || agent(listener, 42));
    let mut b = bundle(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "listenerPath": sock, "listenerMetadata": "hello agent",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    b.set_args(&["sc", "mkdir", "/tmp/x"]);
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert!(out.stdout.contains("ret=42 errno=0"), "{out:?}");
    assert!(
        !b.rootfs().join("tmp/x").exists(),
        "the agent answered instead"
    );
    let (msg, nr) = thread.join().unwrap();
    assert_eq!(nr, NR_MKDIR as i32);
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "hello agent");
    assert_eq!(msg["state"]["id"], id.as_str());
    assert_eq!(msg["state"]["status"], "creating");
    assert_eq!(msg["pid"], msg["state"]["pid"]);
    env.assert_no_leaks(&id);
}

#[test]
fn notify_for_an_exec_process() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("sc-notify-exec");
    let sock = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // First init's listener (kept open: init never calls mkdir), then the
    // exec'd process's, which gets an answer.
    let thread = std::thread::spawn(move || {
        let (init_conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let (n, init_fd) = carte::tty::recv_with_fd(init_conn.as_fd(), &mut buf).unwrap();
        let init_msg: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let (msg, nr) = answer(conn, 7);
        drop(init_fd);
        (init_msg, msg, nr)
    });
    let mut b = bundle(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    b.set_args(&["sleep", "1000"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "running");
    let out = env.carte(&["exec", &id, "sc", "mkdir", "/tmp/x"]);
    out.assert_ok();
    assert!(out.stdout.contains("ret=7 errno=0"), "{out:?}");
    let (init_msg, msg, nr) = thread.join().unwrap();
    assert_eq!(nr, NR_MKDIR as i32);
    assert_eq!(msg["state"]["status"], "running");
    assert_eq!(msg["state"]["pid"], init_msg["pid"]);
    assert_ne!(msg["pid"], init_msg["pid"], "the exec'd process's own pid");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn bad_profiles_fail_create_and_leave_nothing() {
    let env = TestEnv::new("sc-bad");
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                                {"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]}),
            vec![
                "config.json",
                "linux.seccomp.syscalls[1].action",
                "unknown action \"SCMP_ACT_FOO\"",
            ],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}),
            vec!["linux.seccomp.syscalls[0].args[0].op", "unknown operator"],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            vec!["linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY"],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            vec!["linux.seccomp.syscalls[0].args[0].index"],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            vec![
                "seccomp: send the notify listener to /nonexistent/agent.sock",
                "no such file or directory",
            ],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO",
                   "syscalls": (0..1500).map(|i| json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 1, "value": i, "op": "SCMP_CMP_EQ"}]})).collect::<Vec<_>>()}),
            vec!["seccomp: the program is", "at most 4096"],
        ),
    ];
    for (i, (profile, needles)) in cases.into_iter().enumerate() {
        let b = bundle(&env, profile);
        let id = env.id(&format!("bad{i}"));
        let out = env.carte(&["create", "--bundle", b.path(), &id]);
        out.assert_fails_with(&needles);
        env.assert_no_leaks(&id);
    }
}

/// The x86_64 syscall names this machine's headers know, with numbers
/// below `below`.
fn names_below(below: u32) -> Vec<String> {
    let header = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
        .expect("kernel headers (linux-libc-dev)");
    header
        .lines()
        .filter_map(|l| l.strip_prefix("#define __NR_"))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, nr) = (w.next()?, w.next()?.parse::<u32>().ok()?);
            (nr < below).then(|| name.to_string())
        })
        .collect()
}

/// runc's -ENOSYS stub: a profile written before clone3 (435) allows
/// every older call. glibc's pthread_create tries clone3 and falls back to
/// clone only on ENOSYS; with the default action (EPERM) for every number
/// the profile does not name, threads could not start. Numbers above the
/// largest one the profile names, per listed ABI, now get ENOSYS; a known
/// call below it that the profile does not allow still gets the default.
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let env = TestEnv::new("sec-enosys");
    let older: Vec<String> = names_below(435)
        .into_iter()
        .filter(|n| n != "mkdir")
        .collect();
    let mut b = bundle(
        &env,
        json!({"defaultAction": "SCMP_ACT_ERRNO",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "syscalls": [{"names": older, "action": "SCMP_ACT_ALLOW"}]}),
    );
    let script = format!(
        "sc raw 435; sc raw 1000; sc raw {}; sc int80 1000; sc raw {NR_MKDIR} 0x400000; \
         sc thread {NR_GETPID}; echo rc=$?",
        1000 | X32_BIT
    );
    let (code, out) = run_sh(&env, &mut b, &script);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    for (what, line) in ["clone3", "1000", "x32 1000", "i386 1000"]
        .iter()
        .zip(&lines)
    {
        assert_eq!(*line, "ret=-1 errno=38", "{what}: {out}");
    }
    assert_eq!(lines[4], "ret=-1 errno=1", "mkdir gets the default: {out}");
    // The thread started (clone3's ENOSYS, then clone) and made its call.
    assert!(
        lines[5].starts_with("ret=") && lines[5].ends_with("errno=0"),
        "{out}"
    );
    assert_eq!(&lines[6..], ["survived", "rc=0"], "{out}");
}

/// carte's own last steps must not run under the container's filter. A
/// profile that refuses everything it does not list with ENXIO, and
/// lists what the program needs but not close_range: carte's marking of
/// its fds close-on-exec ran under the filter, got ENXIO and failed the
/// start (exit 127). Under create+start, run, and exec; with and without
/// no_new_privs (the filter goes in at two places).
#[test]
fn carte_needs_nothing_of_the_profile() {
    let env = TestEnv::new("sec-order");
    let names = allow_all_but(&["close_range", "mkdir", "mkdirat"]);
    let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::ENXIO,
                         "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]});
    for nnp in [true, false] {
        let mut b = bundle(&env, profile.clone());
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        // The filter holds: a call it does not list gets ENXIO.
        let (code, out) = run_sh(&env, &mut b, "sc mkdir /tmp/x; echo ok");
        assert_eq!(code, Some(0), "nnp={nnp}: {out}");
        assert_eq!(out, "ret=-1 errno=6\nok\n", "nnp={nnp}");
        b.set_args(&["sh", "-c", "echo started > /started; exec sleep 100"]);
        b.write();
        let id = env.id(&format!("cs{nnp}"));
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_ok();
        env.carte(&["start", &id]).assert_ok();
        env.wait_status(&id, "running");
        let out = env.carte(&["exec", &id, "sc", "mkdir", "/tmp/y"]);
        out.assert_ok();
        assert_eq!(out.stdout, "ret=-1 errno=6\n", "nnp={nnp}");
        env.carte(&["delete", "--force", &id]).assert_ok();
        env.assert_no_leaks(&id);
    }
}

/// SCMP_ACT_NOTIFY on a call carte itself makes once the filter is in:
/// `write` (runc refuses it; carte writes the start signal on the exec
/// fifo with it) and `sendmsg` (the listener's hand-off). A profile
/// notifying write was taken, and the container hung on an agent that
/// never answers carte's own write. Now create fails at once with one
/// line naming the field and the call, before any agent is called.
#[test]
fn notify_on_a_call_carte_needs_is_refused() {
    let env = TestEnv::new("sec-notify");
    let sock = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    // An agent that takes listeners and never answers: what an agent
    // interested only in mkdir does with a write.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let agent = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((conn, _)) = listener.accept() {
                conn.set_nonblocking(false).unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                if let Ok((_, fd)) = carte::tty::recv_with_fd(conn.as_fd(), &mut buf) {
                    held.push(fd);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        held.len()
    });
    for name in ["write", "sendmsg"] {
        let mut b = bundle(
            &env,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
                   "syscalls": [{"names": ["mkdir", name], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        b.set_args(&["true"]);
        b.write();
        let id = env.id(name);
        let out = env.carte_within(env.command(&["run", "--bundle", b.path(), &id]), 20);
        out.assert_fails_with(&[
            "linux.seccomp.syscalls[0].names[1]",
            &format!("SCMP_ACT_NOTIFY cannot be used for the {name} syscall"),
        ]);
        env.assert_no_leaks(&id);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(agent.join().unwrap(), 0, "an agent was given a listener");
}
