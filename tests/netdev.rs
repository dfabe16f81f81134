//! linux.netDevices with a veth pair (this kernel may load no modules, so
//! no dummy device): the device is moved into the container, renamed, with
//! its permanent global addresses, and up; what cannot be done fails create
//! with one line and moves nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

/// A veth pair on the host, removed on drop (a moved end goes with the
/// container's namespace, and its peer with it).
struct Veth {
    a: String,
    b: String,
}

impl Veth {
    fn new(tag: &str) -> Veth {
        let n = std::process::id() % 100000;
        let v = Veth {
            a: format!("cnd{tag}{n}a"),
            b: format!("cnd{tag}{n}b"),
        };
        let _ = ip(&["link", "del", &v.a]);
        assert!(ip(&[
            "link", "add", &v.a, "type", "veth", "peer", "name", &v.b
        ]));
        v
    }

    fn exists(name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.a]);
        let _ = ip(&["link", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_device_moves_in_renamed_with_its_addresses_and_up() {
    let env = TestEnv::new("nd-move");
    let v = Veth::new("m");
    assert!(ip(&["addr", "add", "10.213.0.1/24", "dev", &v.a]));
    assert!(ip(&["addr", "add", "fd00:213::1/64", "dev", &v.a, "nodad"]));
    assert!(ip(&["addr", "add", "10.213.0.2/24", "dev", &v.b]));
    assert!(ip(&["link", "set", &v.b, "up"]));
    let mut b = env.bundle("b");
    b.config["linux"]["netDevices"] = json!({ &v.a: {"name": "ctr0"} });
    let caps = ["CAP_NET_RAW"];
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let out = env.sh(
        &mut b,
        "ip addr show dev ctr0; echo flags=$(cat /sys/class/net/ctr0/flags); \
         ping -c 1 -W 5 10.213.0.2 >/dev/null && echo ping=ok",
    );
    assert!(out.contains("inet 10.213.0.1/24"), "{out}");
    assert!(out.contains("inet6 fd00:213::1/64"), "{out}");
    let flags = kv(&out)["flags"].clone();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP: {out}");
    assert!(out.contains("ping=ok"), "the host's end answers: {out}");
    // The container's namespace is gone, and the veth with it (the spec:
    // never moved back out).
    // The kernel tears a namespace down in the background: give it time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (Veth::exists(&v.a) || Veth::exists(&v.b)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!Veth::exists(&v.a) && !Veth::exists(&v.b));
}

#[test]
fn a_name_template_lets_the_kernel_number_it() {
    let env = TestEnv::new("nd-tmpl");
    let v = Veth::new("t");
    let mut b = env.bundle("b");
    b.config["linux"]["netDevices"] = json!({ &v.a: {"name": "eth%d"} });
    let out = env.sh(&mut b, "ls /sys/class/net");
    let names: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(names, ["eth0", "lo"], "{out}");
    // Without a name, the host's name is kept.
    let v2 = Veth::new("k");
    b.config["linux"]["netDevices"] = json!({ &v2.a: {} });
    let out = env.sh(&mut b, "ls /sys/class/net");
    assert!(out.split_whitespace().any(|n| n == v2.a), "{out}");
}

#[test]
fn what_cannot_be_moved_fails_create_and_moves_nothing() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("nd-bad");
    let v = Veth::new("x");
    let cases: Vec<(serde_json::Value, bool, Vec<String>)> = vec![
        (
            json!({ &v.a: {"name": "ctr0"} }),
            false,
            vec![
                "config.json".into(),
                "linux.netDevices".into(),
                "no network namespace of its own".into(),
            ],
        ),
        (
            json!({"nosuchdev0": {}}),
            true,
            vec![
                "linux.netDevices[nosuchdev0]".into(),
                "no such device on the host".into(),
            ],
        ),
        (
            json!({ &v.a: {"name": "lo"} }),
            true,
            vec![
                format!("linux.netDevices[{}]", v.a),
                "lo already exists in the container's network namespace".into(),
            ],
        ),
        (
            json!({ &v.a: {"name": "a/b"} }),
            true,
            vec![
                format!("linux.netDevices[{}].name", v.a),
                "not a valid device name".into(),
            ],
        ),
    ];
    for (i, (devices, netns, needles)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{i}"));
        b.config["linux"]["netDevices"] = devices;
        if !netns {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "network");
        }
        b.write();
        let id = env.id(&format!("c{i}"));
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_fails_with(&needles);
        env.assert_no_leaks(&id);
        assert!(Veth::exists(&v.a), "case {i}: the device left the host");
    }
}
