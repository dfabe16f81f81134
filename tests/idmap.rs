//! Idmapped mounts (config.md: `idmap`, `ridmap`, a mount's uidMappings
//! and gidMappings), checked from inside the container and from the host.
//!
//! The kernel reads a mount's mapping as a user namespace's: an id on disk
//! is a containerID, and shows as its hostID (which the container then sees
//! through its own user namespace, if it has one); a file written through
//! the mount gets the containerID of the writer's hostID. Each test first
//! asks the host whether its kernel and /tmp's filesystem idmap at all
//! (`host::idmap_probe`), and records a skip where they do not.

mod common;

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::host::{idmap_probe, idmap_tmpfs_probe};
use common::*;
use serde_json::{json, Value};

/// The container's own user namespace: 0-65535 at host 100000.
const CONTAINER_HOST_ID: u32 = 100000;

/// runc 1.1 (this host's) idmaps only with the container's own mappings
/// and has no `idmap` option: these tests are carte's alone.
fn runc_lacks_it(test: &str) -> bool {
    if is_runc() {
        skip(test, "runc 1.1 has no idmap/ridmap options");
    }
    is_runc()
}

fn supported(test: &str, path: &Path) -> bool {
    if runc_lacks_it(test) {
        return false;
    }
    match idmap_probe(path) {
        Ok(()) => true,
        Err(why) => {
            skip(
                test,
                &format!("no idmapped mount of {}: {why}", path.display()),
            );
            false
        }
    }
}

fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{"containerID": container, "hostID": host, "size": size}])
}

/// A user namespace for the container, its rootfs owned by its root.
fn user_namespace(b: &mut Bundle) {
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{CONTAINER_HOST_ID}:{CONTAINER_HOST_ID}")])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(status.success());
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = map(0, CONTAINER_HOST_ID, 65536);
    b.config["linux"]["gidMappings"] = map(0, CONTAINER_HOST_ID, 65536);
}

/// A directory holding `f`, both owned by `uid`:`uid` (the kernel lets
/// nobody write in a directory whose owner the mount does not map).
fn source(env: &TestEnv, name: &str, uid: u32) -> PathBuf {
    source_in(&env.dir, name, uid)
}

fn source_in(parent: &Path, name: &str, uid: u32) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(dir.join("f"), "x").unwrap();
    chown(dir.join("f"), Some(uid), Some(uid)).unwrap();
    chown(&dir, Some(uid), Some(uid)).unwrap();
    dir
}

fn push_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

/// The brief's case: a file of host uid 1000 shows as the container's
/// root through the mapping containerID 1000 -> hostID 100000 (the
/// container's root on the host), and what root writes lands as 1000.
#[test]
fn mount_mappings_in_a_user_namespace() {
    let env = TestEnv::new("idm-userns");
    if !supported("idmap::mount_mappings_in_a_user_namespace", &env.dir) {
        return;
    }
    let src = source(&env, "src", 1000);
    let mut b = env.bundle("b");
    user_namespace(&mut b);
    push_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": &src, "options": ["bind", "idmap"],
               "uidMappings": map(1000, CONTAINER_HOST_ID, 1),
               "gidMappings": map(1000, CONTAINER_HOST_ID, 1)}),
    );
    let out = env.sh(
        &mut b,
        "stat -c %u:%g /m/f; id -u; echo y > /m/new && stat -c %u:%g /m/new",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["0:0", "0", "0:0"], "{out}");
    // Outside, the new file belongs to host uid 1000.
    assert_eq!(owner(&src.join("new")), (1000, 1000));
    assert_eq!(owner(&src.join("f")), (1000, 1000));
}

/// `idmap` without mappings of its own takes the container's user
/// namespace's (config.md: MAY): host root's files show as root inside,
/// and root's writes land as host root, not as host uid 100000.
#[test]
fn idmap_alone_takes_the_containers_mappings() {
    let env = TestEnv::new("idm-implied");
    if !supported("idmap::idmap_alone_takes_the_containers_mappings", &env.dir) {
        return;
    }
    let src = source(&env, "src", 0);
    let plain = source(&env, "plain", 0);
    let mut b = env.bundle("b");
    user_namespace(&mut b);
    push_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": &src, "options": ["rbind", "idmap"]}),
    );
    push_mount(
        &mut b,
        json!({"destination": "/p", "type": "bind", "source": &plain, "options": ["rbind"]}),
    );
    let out = env.sh(
        &mut b,
        "stat -c %u /m/f /p/f; touch /m/new /p/new; stat -c %u /m/new /p/new",
    );
    let lines: Vec<&str> = out.lines().collect();
    // The plain bind shows host root as the overflow id.
    assert_eq!(lines, ["0", "65534", "0", "0"], "{out}");
    assert_eq!(owner(&src.join("new")).0, 0);
    assert_eq!(owner(&plain.join("new")).0, CONTAINER_HOST_ID);
}

/// `idmap` alone in a container that joins a user namespace by path: that
/// namespace is the mapping (here another container's, 0 at host 100000).
#[test]
fn idmap_alone_in_a_joined_user_namespace() {
    let env = TestEnv::new("idm-joined");
    if !supported("idmap::idmap_alone_in_a_joined_user_namespace", &env.dir) {
        return;
    }
    let mut holder = env.bundle("holder");
    user_namespace(&mut holder);
    holder.set_args(&["sleep", "1000"]);
    holder.write();
    let hid = env.id("holder");
    env.carte(&["run", "-d", "--bundle", holder.path(), &hid])
        .assert_ok();
    let pid = env.state(&hid).unwrap()["pid"].as_i64().unwrap();
    let src = source(&env, "src", 0);
    let mut b = env.bundle("b");
    user_namespace(&mut b);
    let linux = b.config["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    let namespaces = linux["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "user");
    namespaces.push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    push_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": &src, "options": ["bind", "idmap"]}),
    );
    let out = env.sh(&mut b, "stat -c %u:%g /m/f; cat /proc/self/uid_map");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0:0"], "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out}");
    env.carte(&["delete", "--force", &hid]).assert_ok();
    env.assert_no_leaks(&hid);
}

/// A container without a mount namespace of its own: the idmapped mount
/// lands in carte's namespace, on the rootfs, and goes with the container.
#[test]
fn idmapped_mount_without_a_mount_namespace() {
    let env = TestEnv::new("idm-nomntns");
    if !supported("idmap::idmapped_mount_without_a_mount_namespace", &env.dir) {
        return;
    }
    let src = source(&env, "src", 1000);
    let mut b = env.bundle("b");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    push_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": &src, "options": ["bind", "idmap"],
               "uidMappings": map(1000, 0, 1), "gidMappings": map(1000, 0, 1)}),
    );
    // sh asserts that no mount under the test's dir is left.
    let out = env.sh(&mut b, "stat -c %u:%g /m/f");
    assert_eq!(out.trim(), "0:0");
}

/// Without a user namespace the mount's mappings still apply (runc does
/// the same): uid 1000 on disk is root inside, root writes as 1000.
#[test]
fn mount_mappings_without_a_user_namespace() {
    let env = TestEnv::new("idm-nouserns");
    if !supported("idmap::mount_mappings_without_a_user_namespace", &env.dir) {
        return;
    }
    let src = source(&env, "src", 1000);
    let mut b = env.bundle("b");
    push_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": &src, "options": ["bind", "idmap", "ro"],
               "uidMappings": map(1000, 0, 1), "gidMappings": map(1000, 0, 1)}),
    );
    push_mount(
        &mut b,
        json!({"destination": "/w", "type": "bind", "source": &src, "options": ["bind", "idmap"],
               "uidMappings": map(1000, 0, 1), "gidMappings": map(1000, 0, 1)}),
    );
    // A single file, idmapped too.
    push_mount(
        &mut b,
        json!({"destination": "/file", "type": "bind", "source": src.join("f"), "options": ["bind", "idmap"],
               "uidMappings": map(1000, 0, 1), "gidMappings": map(1000, 0, 1)}),
    );
    let out = env.sh(
        &mut b,
        "stat -c %u:%g /m/f; touch /m/ro 2>/dev/null || echo read-only; touch /w/new; stat -c %u /w/new; stat -c '%F %u' /file",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["0:0", "read-only", "0", "regular file 0"], "{out}");
    assert_eq!(owner(&src.join("new")), (1000, 1000));
}

/// A source tree with a host mount in it, outside the test's dir (whose
/// mounts the leak check counts as the container's); unmounted and removed
/// even when the test fails.
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.join("src/sub"))
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ridmap` maps the mounts below the source too; `idmap` on an rbind, and
/// mappings without either option (as runc), only the top one.
#[test]
fn ridmap_reaches_submounts() {
    let env = TestEnv::new("idm-ridmap");
    if !supported("idmap::ridmap_reaches_submounts", &env.dir) {
        return;
    }
    let outside = PathBuf::from(format!(
        "/tmp/carte-tests/idm-ridmap-{}",
        std::process::id()
    ));
    let guard = HostMount(outside.clone());
    let src = source_in(&outside, "src", 1000);
    let below = source_in(&outside, "below", 1000);
    std::fs::create_dir(src.join("sub")).unwrap();
    let status = std::process::Command::new("mount")
        .arg("--bind")
        .arg(&below)
        .arg(src.join("sub"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut b = env.bundle("b");
    let maps = |options: Value| {
        json!({"type": "bind", "source": &src, "options": options,
               "uidMappings": map(1000, 0, 1), "gidMappings": map(1000, 0, 1)})
    };
    for (dest, options) in [
        ("/r", json!(["rbind", "ridmap"])),
        ("/i", json!(["rbind", "idmap"])),
        ("/p", json!(["rbind"])),
    ] {
        let mut m = maps(options);
        m["destination"] = json!(dest);
        push_mount(&mut b, m);
    }
    let out = env.sh(
        &mut b,
        "for d in r i p; do echo $d $(stat -c %u /$d/f) $(stat -c %u /$d/sub/f); done",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["r 0 0", "i 0 1000", "p 0 1000"], "{out}");
    drop(guard);
    assert!(!outside.exists());
}

/// A tmpfs idmapped where the kernel allows it (Linux 6.3): its root,
/// owned by root on the new filesystem, shows as the mapped id; its data
/// options still apply.
#[test]
fn tmpfs_where_the_kernel_allows() {
    if runc_lacks_it("idmap::tmpfs_where_the_kernel_allows") {
        return;
    }
    let env = TestEnv::new("idm-tmpfs");
    let mut b = env.bundle("b");
    let tmpfs = |options: Value, dest: &str| {
        json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options,
               "uidMappings": map(0, 1000, 1), "gidMappings": map(0, 1000, 1)})
    };
    push_mount(&mut b, tmpfs(json!(["idmap", "mode=750", "nosuid"]), "/t"));
    if let Err(why) = idmap_tmpfs_probe() {
        b.write();
        let id = env.id("refused");
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_fails_with(&["mounts[", "tmpfs", "idmapped"]);
        env.assert_no_leaks(&id);
        skip(
            "idmap::tmpfs_where_the_kernel_allows",
            &format!("no idmapped tmpfs here ({why}); checked the error instead"),
        );
        return;
    }
    let out = env.sh(&mut b, "stat -c '%u %g %a' /t; grep ' /t ' /proc/mounts");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1000 1000 750"), "{out}");
    let mount = lines.next().unwrap_or_default();
    assert!(mount.contains("tmpfs") && mount.contains("nosuid"), "{out}");
    assert!(mount.contains("idmapped"), "{out}");
}

/// The errors config.md asks for, and the kernel's, as one line naming the
/// mount, with nothing left behind.
#[test]
fn idmap_errors_are_one_line() {
    if runc_lacks_it("idmap::idmap_errors_are_one_line") {
        return;
    }
    let env = TestEnv::new("idm-errors");
    let src = source(&env, "src", 1000);
    let b = env.bundle("b");
    let n = b.config["mounts"].as_array().unwrap().len();
    let field = format!("mounts[{n}]");
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "nogid",
            json!({"type": "bind", "source": &src, "options": ["bind", "idmap"],
                   "uidMappings": map(1000, 0, 1)}),
            vec![format!("{field}.gidMappings"), "uidMappings".into()],
        ),
        (
            "nouserns",
            json!({"type": "bind", "source": &src, "options": ["bind", "ridmap"]}),
            vec![
                format!("{field}.options"),
                "ridmap".into(),
                "user namespace".into(),
            ],
        ),
        (
            "proc",
            json!({"type": "proc", "source": "proc", "options": ["idmap"],
                   "uidMappings": map(0, 1000, 1), "gidMappings": map(0, 1000, 1)}),
            vec![format!("{field}.type"), "bind".into()],
        ),
        (
            "size0",
            json!({"type": "bind", "source": &src, "options": ["bind", "idmap"],
                   "uidMappings": map(0, 1000, 0), "gidMappings": map(0, 1000, 1)}),
            vec![format!("{field}.uidMappings[0].size")],
        ),
        (
            "nosource",
            json!({"type": "bind", "source": env.dir.join("nosuch"), "options": ["bind", "idmap"],
                   "uidMappings": map(0, 1000, 1), "gidMappings": map(0, 1000, 1)}),
            vec![field.clone(), "nosuch".into(), "no such file".into()],
        ),
    ];
    for (name, mut m, needles) in cases {
        let mut b = env.bundle(name);
        m["destination"] = json!("/m");
        push_mount(&mut b, m);
        b.write();
        let id = env.id(name);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        let out = env.carte(&["create", "--bundle", b.path(), &id]);
        out.assert_fails_with(&needles);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        env.assert_no_leaks(&id);
    }
    // A filesystem without idmap support (procfs, where the probe says so):
    // the kernel's EINVAL, worded.
    if idmap_probe(Path::new("/proc")).is_ok() {
        skip(
            "idmap::idmap_errors_are_one_line",
            "/proc takes idmapped mounts here: no filesystem to refuse one",
        );
        return;
    }
    let mut b = env.bundle("procfs");
    push_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": "/proc", "options": ["bind", "idmap"],
               "uidMappings": map(0, 1000, 1), "gidMappings": map(0, 1000, 1)}),
    );
    b.write();
    let id = env.id("procfs");
    let out = env.carte(&["create", "--bundle", b.path(), &id]);
    out.assert_fails_with(&[&field, "/proc", "does not support idmapped mounts"]);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    env.assert_no_leaks(&id);
}

/// `features` says idmapped mounts are there, as containerd asks before it
/// gives a user-namespaced pod an idmapped volume.
#[test]
fn features_report_idmap() {
    if runc_lacks_it("idmap::features_report_idmap") {
        return;
    }
    let env = TestEnv::new("idm-features");
    let out = env.carte(&["features"]);
    out.assert_ok();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        doc["linux"]["mountExtensions"]["idmap"]["enabled"],
        json!(true)
    );
    let opts = doc["mountOptions"].as_array().unwrap();
    assert!(opts.contains(&json!("idmap")) && opts.contains(&json!("ridmap")));
}
