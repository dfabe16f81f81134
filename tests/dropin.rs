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
