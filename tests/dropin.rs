//! runc's behaviour where other runtimes' test suites found carte
//! different (issue 16), checked from inside the container where it is
//! about the container.

mod common;

use common::*;
use serde_json::json;

fn running(env: &TestEnv, b: &mut Bundle) -> String {
    b.set_args(&["sleep", "1000"]);
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "running");
    id
}

/// HOME comes from the user's passwd entry in the rootfs when
/// process.env has none, `/` for a uid without one; a given HOME stays.
#[test]
fn home_from_the_containers_passwd() {
    let env = TestEnv::new("di-home");
    let mut b = env.bundle("b");
    for (uid, env_home, want) in [
        (0, None, "/root"),
        (1000, None, "/home/user"),
        (4321, None, "/"),
        (1000, Some("HOME=/given"), "/given"),
    ] {
        b.config["process"]["user"] = json!({"uid": uid, "gid": uid});
        let mut vars = vec!["PATH=/bin".to_string()];
        vars.extend(env_home.map(String::from));
        b.config["process"]["env"] = json!(vars);
        let out = env.sh(&mut b, "echo home=$HOME; env | grep -c ^HOME=");
        assert_eq!(out, format!("home={want}\n1\n"), "uid {uid}");
    }
    b.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    b.config["process"]["env"] = json!(["PATH=/bin"]);
    let id = running(&env, &mut b);
    for (user, want) in [("0", "/root"), ("1000", "/home/user"), ("77", "/")] {
        let out = env.carte(&["exec", "-u", user, &id, "sh", "-c", "echo $HOME"]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), want, "exec -u {user}");
    }
    let out = env.carte(&["exec", "-e", "HOME=/x", &id, "sh", "-c", "echo $HOME"]);
    assert_eq!(out.stdout.trim(), "/x");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// A new network namespace has `lo` up, as with runc and crun: 127.0.0.1
/// answers inside.
#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let env = TestEnv::new("di-lo");
    let mut b = env.bundle("b");
    let out = env.sh(
        &mut b,
        "cat /sys/class/net/lo/operstate; cat /sys/class/net/lo/flags; \
         timeout 3 nc -l -p 4242 > /tmp/got & sleep 0.2; echo hello | timeout 3 nc 127.0.0.1 4242; wait; cat /tmp/got",
    );
    let lines: Vec<&str> = out.lines().collect();
    // operstate of lo is "unknown" when up (it has no carrier), "down" when down.
    assert_eq!(lines[0], "unknown", "{out}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP: {out}");
    assert_eq!(lines.get(2), Some(&"hello"), "{out}");
}

/// A missing process.cwd is made (root's, 0755), even under a read-only
/// root, as runc does; exec into a missing one fails, as with runc.
#[test]
fn missing_cwd_is_created() {
    let env = TestEnv::new("di-mkcwd");
    let mut b = env.bundle("b");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["cwd"] = json!("/not/there/yet");
    let out = env.sh(&mut b, "pwd; stat -c '%u %a' /not/there/yet /not");
    assert_eq!(out, "/not/there/yet\n0 755\n0 755\n");
    b.config["process"]["cwd"] = json!("/ro/cwd");
    b.config["root"]["readonly"] = json!(true);
    assert_eq!(env.sh(&mut b, "pwd"), "/ro/cwd\n");
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["cwd"] = json!("/");
    let id = running(&env, &mut b);
    let out = env.carte(&["exec", "--cwd", "/nope", &id, "true"]);
    assert_eq!(out.code(), Some(255), "{out:?}");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// A cwd the user may not search (0700, another uid's) is entered while
/// carte still holds its privileges, as runc does since its PR #2086; for
/// run and for exec.
#[test]
fn cwd_the_user_cannot_search() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new("di-cwd700");
    let mut b = env.bundle("b");
    let dir = b.rootfs().join("secret");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(1000), Some(1000)).unwrap();
    b.config["process"]["user"] = json!({"uid": 2000, "gid": 2000});
    b.config["process"]["cwd"] = json!("/secret");
    let out = env.sh(&mut b, "pwd; id -u; ls . >/dev/null 2>&1 || echo denied");
    assert_eq!(out, "/secret\n2000\ndenied\n");
    b.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    b.config["process"]["cwd"] = json!("/");
    let id = running(&env, &mut b);
    let out = env.carte(&["exec", "-u", "2000:2000", "--cwd", "/secret", &id, "pwd"]);
    out.assert_ok();
    assert_eq!(out.stdout, "/secret\n");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// An exec'd process leads its own session and process group, with or
/// without a terminal, as runc's.
#[test]
fn exec_process_leads_its_process_group() {
    let env = TestEnv::new("di-pgrp");
    let mut b = env.bundle("b");
    let id = running(&env, &mut b);
    // /proc/self/stat fields 5 and 6: process group and session.
    let out = env.carte(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$ $(cut -d' ' -f5,6 /proc/self/stat)",
    ]);
    out.assert_ok();
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{out:?}");
    assert_eq!(f[0], f[1], "pgrp is the pid: {out:?}");
    assert_eq!(f[0], f[2], "sid is the pid: {out:?}");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// `exec --process` with a file that has no `user` runs as uid 0, gid 0;
/// every failure of exec exits 255; a paused container refuses an exec
/// in runc's words unless --ignore-paused.
#[test]
fn exec_process_without_user_failures_and_paused() {
    let env = TestEnv::new("di-execx");
    let mut b = env.bundle("b");
    let id = running(&env, &mut b);
    let p = env.dir.join("p.json");
    std::fs::write(
        &p,
        r#"{"args": ["/bin/sh", "-c", "id -u; id -g"], "cwd": "/", "env": ["PATH=/bin"]}"#,
    )
    .unwrap();
    let out = env.carte(&["exec", "--process", p.to_str().unwrap(), &id]);
    out.assert_ok();
    assert_eq!(out.stdout, "0\n0\n");
    for args in [
        vec!["exec", &id, "/bin/nosuch"],
        vec!["exec", "di-nosuch-container", "true"],
        vec!["exec", "--process", "/nonexistent.json", &id],
        vec!["exec", "--cwd", "/nonexistent", &id, "true"],
    ] {
        let out = env.carte(&args);
        assert_eq!(out.code(), Some(255), "{args:?}: {out:?}");
    }
    env.carte(&["pause", &id]).assert_ok();
    let out = env.carte(&["exec", &id, "true"]);
    out.assert_fails_with(&["cannot exec in a paused container"]);
    assert_eq!(out.code(), Some(255));
    let mut child = env
        .command(&["exec", "--ignore-paused", "-d", &id, "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.carte(&["resume", &id]).assert_ok();
    assert!(child.wait().unwrap().success());
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// `exec --cgroup PATH` and `--cgroup CTRL:PATH` (runc 1.1) put the
/// process in an existing sub-cgroup of the container's.
#[test]
fn exec_into_a_sub_cgroup() {
    let env = TestEnv::new("di-subcg");
    let mut b = env.bundle("b");
    let id = running(&env, &mut b);
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let own = |ctrl: &str| {
        let base = if v1 {
            format!("/sys/fs/cgroup/{ctrl}")
        } else {
            "/sys/fs/cgroup".to_string()
        };
        std::path::PathBuf::from(base).join(&id)
    };
    // In each hierarchy that holds the container's cgroup.
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if v1 && name != "unified" && own(&name).is_dir() {
            std::fs::create_dir(own(&name).join("sub")).unwrap();
            // A v1 cpuset holds no task until it has cpus and mems.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(own(&name).join(file)) {
                    std::fs::write(own(&name).join("sub").join(file), v).unwrap();
                }
            }
        }
    }
    if !v1 {
        std::fs::create_dir(own("").join("sub")).unwrap();
    }
    let cgroup_of = |out: &Out, ctrl: &str| -> String {
        out.stdout
            .lines()
            .find(|l| {
                let f: Vec<&str> = l.splitn(3, ':').collect();
                f[1].split(',').any(|c| c == ctrl) || (!v1 && f[1].is_empty())
            })
            .map(|l| l.splitn(3, ':').nth(2).unwrap().to_string())
            .unwrap_or_default()
    };
    let out = env.carte(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    out.assert_ok();
    // No cgroup namespace: the host's paths.
    let sub = format!("/{id}/sub");
    assert_eq!(cgroup_of(&out, "pids"), sub, "{}", out.stdout);
    assert_eq!(cgroup_of(&out, "memory"), sub, "{}", out.stdout);
    if v1 {
        let out = env.carte(&[
            "exec",
            "--cgroup",
            "pids:sub",
            &id,
            "cat",
            "/proc/self/cgroup",
        ]);
        out.assert_ok();
        assert_eq!(cgroup_of(&out, "pids"), sub, "{}", out.stdout);
        assert_eq!(
            cgroup_of(&out, "memory"),
            format!("/{id}"),
            "{}",
            out.stdout
        );
    }
    let out = env.carte(&["exec", "--cgroup", "nosuch", &id, "true"]);
    out.assert_fails_with(&["nosuch"]);
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}
