//! What config.json asked for, checked from inside the container.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn identity_cwd_env_umask_and_pid1() {
    let env = TestEnv::new("ident");
    let mut b = env.bundle("b");
    b.config["hostname"] = json!("box-one");
    b.config["domainname"] = json!("example.org");
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 23});
    b.config["process"]["cwd"] = json!("/home/user");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="]);
    let out = env.sh(
        &mut b,
        "echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname); echo uid=$(id -u); echo gid=$(id -g); \
         echo groups=$(grep ^Groups: /proc/self/status | cut -f2); echo cwd=$(pwd); echo foo=$FOO; echo empty=[$EMPTY]; \
         echo path=$PATH; echo home=$HOME; echo umask=$(umask); echo pid=$$; echo envcount=$(env | grep -cv '^PWD=\\|^SHLVL=\\|^_=')",
    );
    let v = kv(&out);
    assert_eq!(v["host"], "box-one");
    assert_eq!(v["domain"], "example.org");
    assert_eq!(v["uid"], "1000");
    assert_eq!(v["gid"], "1000");
    assert_eq!(v["groups"], "5 100");
    assert_eq!(v["cwd"], "/home/user");
    assert_eq!(v["foo"], "bar baz");
    assert_eq!(v["empty"], "[]");
    assert_eq!(v["path"], "/bin");
    assert_eq!(v["home"], "/home/user", "HOME from /etc/passwd, as runc");
    assert_eq!(v["umask"], "0027");
    assert_eq!(v["pid"], "1", "the process is PID 1");
    assert_eq!(
        v["envcount"], "4",
        "only the configured env (and HOME) reaches the process: {out}"
    );
}

/// All five capability sets, read from /proc/self/status, are exactly the
/// config's, for the container's process (create + start) and for an exec,
/// as root and as a user. The configs are ones the kernel keeps as they
/// are across execve: for root, permitted = effective = bounding (a root
/// exec gains its bounding set); for a user, permitted = effective =
/// ambient (all a user keeps across exec).
#[test]
fn capability_sets_equal_the_config_for_create_and_exec() {
    let env = TestEnv::new("capsets");
    let caps = |names: &[&str]| json!(names);
    // CHOWN=0, DAC_OVERRIDE=1, KILL=5, NET_RAW=13.
    let cases = [
        (
            json!({"uid": 0, "gid": 0}),
            json!({
                "bounding": caps(&["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"]),
                "permitted": caps(&["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"]),
                "effective": caps(&["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"]),
                "inheritable": caps(&["CAP_KILL", "CAP_NET_RAW"]),
                "ambient": caps(&["CAP_KILL"])
            }),
            [
                ("CapBnd", vec![0, 1, 5, 13]),
                ("CapPrm", vec![0, 1, 5, 13]),
                ("CapEff", vec![0, 1, 5, 13]),
                ("CapInh", vec![5, 13]),
                ("CapAmb", vec![5]),
            ],
        ),
        (
            json!({"uid": 1000, "gid": 1000}),
            json!({
                "bounding": caps(&["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"]),
                "permitted": caps(&["CAP_KILL", "CAP_NET_RAW"]),
                "effective": caps(&["CAP_KILL", "CAP_NET_RAW"]),
                "inheritable": caps(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]),
                "ambient": caps(&["CAP_KILL", "CAP_NET_RAW"])
            }),
            [
                ("CapBnd", vec![0, 1, 5, 13]),
                ("CapPrm", vec![5, 13]),
                ("CapEff", vec![5, 13]),
                ("CapInh", vec![0, 5, 13]),
                ("CapAmb", vec![5, 13]),
            ],
        ),
    ];
    let read = "grep ^Cap /proc/self/status | tr -d '\\t' | tr : = > /tmp/caps.$$; mv /tmp/caps.$$ /tmp/caps";
    for (n, (user, capabilities, want)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{n}"));
        b.config["process"]["user"] = user;
        b.config["process"]["capabilities"] = capabilities;
        b.config["process"]["noNewPrivileges"] = json!(false);
        b.set_args(&["sh", "-c", &format!("{read}; exec sleep 100")]);
        b.write();
        let id = env.id(&format!("c{n}"));
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_ok();
        env.carte(&["start", &id]).assert_ok();
        let file = b.rootfs().join("tmp/caps");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !file.exists() {
            assert!(std::time::Instant::now() < deadline, "no /tmp/caps");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let created = kv(&std::fs::read_to_string(&file).unwrap());
        let out = env.carte(&["exec", &id, "grep", "^Cap", "/proc/self/status"]);
        out.assert_ok();
        let execd = kv(&out.stdout.replace(":\t", "="));
        for (set, bits) in &want {
            assert_eq!(created[*set], cap_mask(bits), "case {n}, create: {set}");
            assert_eq!(execd[*set], cap_mask(bits), "case {n}, exec: {set}");
        }
        env.carte(&["delete", "--force", &id]).assert_ok();
        env.assert_no_leaks(&id);
    }
}

#[test]
fn capabilities_and_no_new_privs() {
    let env = TestEnv::new("caps");
    let mut b = env.bundle("b");
    let status = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | tr -d '\\t' | tr : =";
    let v = kv(&env.sh(&mut b, status));
    // CAP_KILL=5, CAP_NET_BIND_SERVICE=10, CAP_AUDIT_WRITE=29.
    let default = cap_mask(&[5, 10, 29]);
    assert_eq!(v["CapEff"], default);
    assert_eq!(v["CapPrm"], default);
    assert_eq!(v["CapBnd"], default);
    assert_eq!(v["CapInh"], cap_mask(&[]));
    assert_eq!(v["CapAmb"], cap_mask(&[]));
    assert_eq!(v["NoNewPrivs"], "1");

    // Every set different, as a non-root user with an ambient capability.
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_SYS_ADMIN"],
        "ambient": ["CAP_KILL"]
    });
    let v = kv(&env.sh(&mut b, status));
    // CHOWN=0, KILL=5, NET_RAW=13, SYS_ADMIN=21. The shell runs after exec,
    // so effective = permitted-after-exec = ambient for a non-root user.
    assert_eq!(v["CapBnd"], cap_mask(&[0, 5, 13, 21]));
    assert_eq!(v["CapInh"], cap_mask(&[5, 21]));
    assert_eq!(v["CapAmb"], cap_mask(&[5]));
    assert_eq!(v["CapPrm"], cap_mask(&[5]));
    assert_eq!(v["CapEff"], cap_mask(&[5]));
    assert_eq!(v["NoNewPrivs"], "0");
}

/// The container's processes get every CPU of their cpuset: create moves
/// its intermediate process to another CPU for a while (so the two work at
/// once), and that must not reach init or an exec'd process (nor carte's
/// own affinity: `sched::cpu_affinity_is_reset_and_exec_cpu_affinity_applies`).
#[test]
fn cpu_affinity_is_the_cpusets() {
    let env = TestEnv::new("affinity");
    let mut b = env.bundle("b");
    let all = format_list(&host().cpus);
    let allowed = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
    };
    for _ in 0..5 {
        let out = env.sh(&mut b, "cat /proc/self/status");
        assert_eq!(allowed(&out), all, "{out}");
    }
    b.set_args(&["sleep", "100"]);
    b.write();
    let id = env.id("exec");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let out = env.carte(&["exec", &id, "cat", "/proc/1/status", "/proc/self/status"]);
    out.assert_ok();
    for status in out.stdout.split("Name:").filter(|s| !s.trim().is_empty()) {
        assert_eq!(allowed(status), all, "{status}");
    }
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn rlimits_and_oom_score_adj() {
    let env = TestEnv::new("rlimit");
    let mut b = env.bundle("b");
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    b.config["process"]["oomScoreAdj"] = json!(345);
    let out = env.sh(&mut b, "grep -E 'open files|processes|core file' /proc/self/limits; echo oom=$(cat /proc/self/oom_score_adj)");
    let line = |name: &str| {
        let l = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {out}"));
        l.split_whitespace()
            .filter(|w| w.parse::<u64>().is_ok())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(line("Max open files"), ["512", "768"]);
    assert_eq!(line("Max processes"), ["100", "200"]);
    assert_eq!(line("Max core file size"), ["0", "0"]);
    assert_eq!(kv(&out)["oom"], "345");
}

#[test]
fn mounts_with_their_flags() {
    let env = TestEnv::new("mounts");
    let host_dir = env.dir.join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello.txt"), "from the host\n").unwrap();
    let host_file = env.dir.join("single.txt");
    std::fs::write(&host_file, "one file\n").unwrap();
    let mut b = env.bundle("b");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["ro", "nosuid", "nodev", "noexec", "mode=750", "size=1m"]}),
    );
    mounts.push(json!({"destination": "/mnt/host", "type": "bind", "source": host_dir, "options": ["rbind", "ro"]}));
    mounts.push(json!({"destination": "/etc/single.txt", "type": "none", "source": host_file, "options": ["bind"]}));
    mounts.push(json!({"destination": "/deep/new/dir", "type": "tmpfs", "source": "tmpfs", "options": ["noatime"]}));
    let out = env.sh(
        &mut b,
        "grep -E ' /data | /mnt/host | /etc/single.txt | /deep/new/dir | /proc | /dev ' /proc/self/mountinfo; \
         cat /mnt/host/hello.txt /etc/single.txt; \
         touch /mnt/host/x 2>/dev/null && echo hostdir=writable || echo hostdir=readonly; \
         touch /data/x 2>/dev/null && echo data=writable || echo data=readonly; \
         touch /deep/new/dir/x && echo deep=writable",
    );
    let mount = |dest: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}:\n{out}"))
            .to_string()
    };
    let opts = |line: &str| {
        line.split_whitespace()
            .nth(5)
            .unwrap()
            .split(',')
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let data = mount("/data");
    for flag in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            opts(&data).contains(&flag.to_string()),
            "/data lacks {flag}: {data}"
        );
    }
    assert!(
        data.contains(" - tmpfs ") && data.contains("size=1024k") && data.contains("mode=750"),
        "{data}"
    );
    assert!(opts(&mount("/mnt/host")).contains(&"ro".to_string()));
    assert!(opts(&mount("/deep/new/dir")).contains(&"noatime".to_string()));
    assert!(mount("/proc").contains(" - proc "));
    assert!(mount("/dev").contains(" - tmpfs "));
    mount("/etc/single.txt");
    assert!(out.contains("from the host\none file\n"), "{out}");
    assert!(out.contains("hostdir=readonly"));
    assert!(out.contains("data=readonly"));
    assert!(out.contains("deep=writable"));
    // Mounts in the container never show up on the host.
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains("/deep/new/dir"));
}

#[test]
fn masked_and_readonly_paths() {
    let env = TestEnv::new("mask");
    let mut b = env.bundle("b");
    let out = env.sh(
        &mut b,
        "echo keys=[$(cat /proc/keys | wc -c)]; echo firmware=[$(ls /sys/firmware | wc -l)]; \
         echo timer=[$(cat /proc/timer_list | wc -c)]; \
         (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys=writable || echo sys=readonly; \
         (echo x > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=writable || echo sysrq=readonly; \
         grep -E ' /proc/sys | /proc/keys ' /proc/self/mountinfo",
    );
    let v = kv(&out);
    assert_eq!(v["keys"], "[0]", "{out}");
    assert_eq!(v["firmware"], "[0]", "{out}");
    assert_eq!(v["timer"], "[0]", "{out}");
    assert_eq!(v["sys"], "readonly");
    assert_eq!(v["sysrq"], "readonly");
    let sys = out
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/proc/sys"))
        .expect("/proc/sys mount");
    assert!(
        sys.split_whitespace()
            .nth(5)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{sys}"
    );
}

#[test]
fn readonly_root() {
    let env = TestEnv::new("roroot");
    let mut b = env.bundle("b");
    b.config["root"]["readonly"] = json!(true);
    let out = env.sh(
        &mut b,
        "touch /newfile 2>/dev/null && echo root=writable || echo root=readonly; \
         touch /dev/shm/x && echo shm=writable",
    );
    assert!(out.contains("root=readonly"), "{out}");
    assert!(out.contains("shm=writable"), "{out}");
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn devices_default_and_configured() {
    let env = TestEnv::new("devices");
    let mut b = env.bundle("b");
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 416, "uid": 1000, "gid": 5},
        {"path": "/dev/sub/myloop", "type": "b", "major": 7, "minor": 0},
        {"path": "/dev/myfifo", "type": "p"}
    ]);
    let out = env.sh(
        &mut b,
        "for d in null zero full random urandom tty mynull sub/myloop myfifo; do \
           echo $d=$(stat -c '%F %t:%T %a %u:%g' /dev/$d); done; \
         for l in fd stdin stdout stderr ptmx; do echo link-$l=$(readlink /dev/$l); done; \
         echo data > /dev/null && echo write-null=ok; head -c 4 /dev/zero | wc -c",
    );
    let v = kv(&out);
    for (dev, maj_min) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        assert_eq!(
            v[dev],
            format!("character special file {maj_min} 666 0:0"),
            "{dev}: {out}"
        );
    }
    assert_eq!(v["mynull"], "character special file 1:3 640 1000:5");
    assert_eq!(v["sub/myloop"], "block special file 7:0 666 0:0");
    assert!(v["myfifo"].starts_with("fifo"), "{out}");
    assert_eq!(v["link-fd"], "/proc/self/fd");
    assert_eq!(v["link-stdin"], "/proc/self/fd/0");
    assert_eq!(v["link-stdout"], "/proc/self/fd/1");
    assert_eq!(v["link-stderr"], "/proc/self/fd/2");
    assert_eq!(v["link-ptmx"], "pts/ptmx");
    assert_eq!(v["write-null"], "ok");
    assert!(out.ends_with("4\n"));
}

#[test]
fn sysctl_is_set_in_the_container_only() {
    let env = TestEnv::new("sysctl");
    let mut b = env.bundle("b");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = env.sh(
        &mut b,
        "echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo shm=$(cat /proc/sys/kernel/shmmni)",
    );
    assert_eq!(kv(&out)["fwd"], "1");
    assert_eq!(kv(&out)["shm"], "1234");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
}

#[test]
fn user_namespace_mappings() {
    let env = TestEnv::new("userns");
    let mut b = env.bundle("b");
    let status = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(status.success());
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = env.sh(
        &mut b,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/f; stat -c %u /tmp/f",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[2], ["1000"]);
    assert_eq!(lines[3], ["1000"]);
    // On the host the file belongs to the mapped uid.
    assert_eq!(
        std::fs::metadata(b.rootfs().join("tmp/f")).unwrap().uid(),
        101000
    );
}

#[test]
fn time_namespace_offsets() {
    if !host().time_namespace {
        skip(
            "inside::time_namespace_offsets",
            "this kernel has no time namespace",
        );
        return;
    }
    let env = TestEnv::new("timens");
    let mut b = env.bundle("b");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] =
        json!({"boottime": {"secs": 1000000}, "monotonic": {"secs": 500000}});
    let out = env.sh(&mut b, "cut -d. -f1 /proc/uptime");
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside: f64 = out.trim().parse().unwrap();
    assert!(
        inside >= 1_000_000.0 + host - 5.0,
        "uptime inside {inside}, host {host}"
    );
}

#[test]
fn no_host_fd_reaches_the_container() {
    let env = TestEnv::new("fds");
    let mut b = env.bundle("b");
    // `ls` holds one fd of its own (the directory it lists).
    let out = env.sh(&mut b, "ls /proc/self/fd | wc -l");
    assert_eq!(out.trim(), "4", "fds: {out}");
}

#[test]
fn preserve_fds_passes_exactly_those() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("preserve");
    let mut b = env.bundle("b");
    b.set_args(&["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l"]);
    b.write();
    let id = env.id("c");
    let file = std::fs::File::open("/etc/hostname").unwrap();
    let mut cmd = env.command(&["run", "--preserve-fds", "1", "--bundle", b.path(), &id]);
    // Put the file at fd 3 in the child, and an extra fd 4 that must not pass.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // SAFETY: dup2 in the child before exec, on fds it owns.
            libc::dup2(fd, 3);
            // dup2 onto itself keeps close-on-exec: clear it.
            libc::fcntl(3, libc::F_SETFD, 0);
            libc::dup2(3, 4);
            Ok(())
        });
    }
    let out = env.carte_cmd(cmd);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        format!("{}5\n", std::fs::read_to_string("/etc/hostname").unwrap())
    );
    env.assert_no_leaks(&id);
}

#[test]
fn no_pivot_and_cwd_inside() {
    let env = TestEnv::new("nopivot");
    let mut b = env.bundle("b");
    b.set_args(&["sh", "-c", "pwd; ls /; cat /etc/hostname"]);
    b.config["process"]["cwd"] = json!("/tmp");
    b.write();
    let id = env.id("c");
    let out = env.carte(&["run", "--no-pivot", "--bundle", b.path(), &id]);
    out.assert_ok();
    assert!(out.stdout.starts_with("/tmp\n"));
    assert!(out.stdout.contains("carte\n"));
    env.assert_no_leaks(&id);
}

#[test]
fn joins_a_namespace_by_path() {
    let env = TestEnv::new("join");
    let mut holder = env.bundle("holder");
    holder.set_args(&["sleep", "1000"]);
    holder.write();
    let hid = env.id("holder");
    env.carte(&["run", "-d", "--bundle", holder.path(), &hid])
        .assert_ok();
    let pid = env.state(&hid).unwrap()["pid"].as_i64().unwrap();
    let holder_uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    let holder_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let mut b = env.bundle("b");
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")}
    ]);
    b.config.as_object_mut().unwrap().remove("hostname");
    let out = env.sh(
        &mut b,
        "readlink /proc/self/ns/uts; readlink /proc/self/ns/net; hostname",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], holder_uts.to_str().unwrap());
    assert_eq!(lines[1], holder_net.to_str().unwrap());
    assert_eq!(
        lines[2], "carte-test",
        "the joined uts namespace's hostname"
    );
    env.carte(&["delete", "--force", &hid]).assert_ok();
    env.assert_no_leaks(&hid);
}

#[test]
fn terminal_through_the_console_socket() {
    use std::io::Read;

    let env = TestEnv::new("console");
    let mut b = env.bundle("b");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    b.set_args(&["sh", "-c", "tty; stty size; sleep 0.2"]);
    b.write();
    let sock_path = env.dir.join("console.sock");
    let console = console_socket(&sock_path);
    let id = env.id("c");
    let mut child = env.spawn(&[
        "create",
        "--bundle",
        b.path(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ]);
    let master = console.join().unwrap();
    assert!(child.wait().unwrap().success());
    env.carte(&["start", &id]).assert_ok();
    let mut out = Vec::new();
    let mut file = std::fs::File::from(master);
    // Reads until the container closes the pty (EIO on Linux).
    let _ = file.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("33 111"), "{text:?}");
    env.wait_status(&id, "stopped");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn run_with_a_terminal_and_no_console_socket() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("ownpty");
    let mut b = env.bundle("b");
    b.config["process"]["terminal"] = json!(true);
    b.set_args(&["sh", "-c", "tty; echo pty-ok"]);
    b.write();
    let id = env.id("c");
    // `script` gives carte a terminal of its own, as a user's shell would.
    let command = format!(
        "{} --root {} run --bundle {} {}",
        carte_bin().display(),
        env.root.display(),
        b.path(),
        id
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"]);
    let out = env.carte_cmd(cmd);
    out.assert_ok();
    assert!(out.stdout.contains("/dev/pts/0"), "{out:?}");
    assert!(out.stdout.contains("pty-ok"), "{out:?}");
    env.assert_no_leaks(&id);
}

#[test]
fn state_dir_and_fifo_permissions() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("perms");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "100"]);
    b.write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&env.root), 0o700);
    assert_eq!(mode(&env.root.join(&id).join("exec.fifo")), 0o622);
    assert_eq!(mode(&env.root.join(&id).join("state.json")), 0o600);
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn propagation_of_root_and_mounts() {
    let env = TestEnv::new("prop");
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let mut b = env.bundle("b");
    b.config["linux"]["rootfsPropagation"] = json!("shared");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/m-shared", "type": "bind", "source": shared, "options": ["rbind", "rshared"]}));
    mounts.push(json!({"destination": "/m-private", "type": "bind", "source": shared, "options": ["rbind", "rprivate"]}));
    let out = env.sh(&mut b, "cut -d' ' -f5,7 /proc/self/mountinfo");
    let optional = |dest: &str| {
        out.lines()
            .find_map(|l| {
                l.split_once(' ')
                    .filter(|(d, _)| *d == dest)
                    .map(|(_, o)| o.to_string())
            })
            .unwrap_or_else(|| panic!("{dest} in {out}"))
    };
    assert!(optional("/").starts_with("shared:"), "{out}");
    assert!(optional("/m-shared").starts_with("shared:"), "{out}");
    assert!(!optional("/m-private").starts_with("shared:"), "{out}");
}

/// rootfsPropagation "unbindable" (and "runbindable"): the rootfs is still
/// bound onto itself while the host's / is made a slave, and the new root
/// ends up unbindable.
#[test]
fn unbindable_root() {
    let env = TestEnv::new("unbind");
    for prop in ["unbindable", "runbindable"] {
        let mut b = env.bundle(prop);
        b.config["linux"]["rootfsPropagation"] = json!(prop);
        let out = env.sh(
            &mut b,
            "grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo",
        );
        assert!(out.contains(" unbindable "), "{prop}: {out}");
    }
}

#[test]
fn cgroup_mount_and_namespace() {
    let env = TestEnv::new("cgmount");
    let mut b = env.bundle("b");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
        "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    let out = env.sh(
        &mut b,
        "grep -E ':(memory|pids):' /proc/self/cgroup; ls /sys/fs/cgroup/pids/cgroup.procs; \
         grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f6; \
         touch /sys/fs/cgroup/x 2>/dev/null && echo cg=writable || echo cg=readonly",
    );
    // The cgroup namespace makes the container's cgroup its root.
    assert!(out.lines().any(|l| l.ends_with(":memory:/")), "{out}");
    assert!(out.lines().any(|l| l.ends_with(":pids:/")), "{out}");
    assert!(out.contains("/sys/fs/cgroup/pids/cgroup.procs"), "{out}");
    assert!(out.contains("cg=readonly"), "{out}");
}

#[test]
fn cgroup_mount_without_a_cgroup_namespace() {
    // podman's default on v1: the container's own cgroup dirs are bound in.
    let env = TestEnv::new("cgbind");
    let mut b = env.bundle("b");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
        "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    let out = env.sh(
        &mut b,
        "ls /sys/fs/cgroup/pids/cgroup.procs; cat /sys/fs/cgroup/pids/cgroup.procs | wc -l; \
         grep ' /sys/fs/cgroup/pids ' /proc/self/mountinfo | cut -d' ' -f6",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/sys/fs/cgroup/pids/cgroup.procs", "{out}");
    // Only the container's own processes: the shell and its pipeline.
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 4, "{out}");
    assert!(lines[2].split(',').any(|o| o == "ro"), "{out}");
}

#[test]
fn tmpfs_copy_up() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("copyup");
    let mut b = env.bundle("b");
    let data = b.rootfs().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/file"), "from the image\n").unwrap();
    std::os::unix::fs::symlink("sub/file", data.join("link")).unwrap();
    std::fs::set_permissions(data.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    b.config["root"]["readonly"] = json!(true);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]}),
    );
    let out = env.sh(
        &mut b,
        "cat /data/link; stat -c %a /data/sub; echo new > /data/sub/file && cat /data/sub/file; \
         grep ' /data ' /proc/self/mountinfo | grep -c tmpfs",
    );
    assert_eq!(out, "from the image\n750\nnew\n1\n");
    // The image's copy is untouched.
    assert_eq!(
        std::fs::read_to_string(data.join("sub/file")).unwrap(),
        "from the image\n"
    );
}

/// A session keyring of the container's own, named _ses.<id>, unless
/// --no-new-keyring; read with keyctl from a static helper.
#[test]
fn session_keyring() {
    let env = TestEnv::new("keyring");
    let helper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-evil-keyring");
    let status = std::process::Command::new("cc")
        .args(["-static", "-O", "-o"])
        .arg(&helper)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/evil.c"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut b = env.bundle("b");
    std::fs::copy(&helper, b.rootfs().join("bin/evil")).unwrap();
    b.set_args(&["/bin/evil", "keyring"]);
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    let v = kv(&out.stdout);
    assert!(
        v["desc"].ends_with(&format!(";_ses.{id}")),
        "{}",
        out.stdout
    );
    env.assert_no_leaks(&id);
    let id2 = env.id("n");
    b.write();
    let out = env.carte(&["run", "--no-new-keyring", "--bundle", b.path(), &id2]);
    out.assert_ok();
    assert!(
        !kv(&out.stdout)["desc"].contains("_ses.t-"),
        "{}",
        out.stdout
    );
    env.assert_no_leaks(&id2);
}

/// process.apparmorProfile where AppArmor is off is an error at create;
/// SELinux labels are ignored with a warning.
#[test]
fn lsm_labels_without_the_lsm() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("lsm");
    let mut b = env.bundle("b");
    if host().apparmor {
        skip(
            "inside::lsm_labels_without_the_lsm",
            "AppArmor is enabled on this host",
        );
    } else {
        b.config["process"]["apparmorProfile"] = json!("myprofile");
        let id = env.id("a");
        env.run(&b, &id)
            .assert_fails_with(&["process.apparmorProfile", "AppArmor is not enabled"]);
        env.assert_no_leaks(&id);
        b.config["process"]["apparmorProfile"] = json!(null);
    }
    if host().selinux {
        skip(
            "inside::lsm_labels_without_the_lsm",
            "SELinux is enabled on this host",
        );
    } else {
        b.config["process"]["selinuxLabel"] = json!("system_u:system_r:svirt_lxc_net_t:s0:c1,c2");
        b.config["linux"]["mountLabel"] = json!("system_u:object_r:svirt_sandbox_file_t:s0:c1,c2");
        let id = env.id("s");
        let out = env.run(&b, &id);
        out.assert_ok();
        assert!(
            out.stderr.contains("process.selinuxLabel"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("linux.mountLabel"), "{}", out.stderr);
        env.assert_no_leaks(&id);
    }
}

#[test]
fn foreground_pty_passes_on_size_and_sigwinch() {
    // tmux gives carte a real terminal of a chosen size, then resizes it:
    // the container must see both sizes, through `run` and `exec -t`.
    if is_runc() {
        return;
    }
    let env = TestEnv::new("winch");
    let mut b = env.bundle("b");
    b.config["process"]["terminal"] = json!(true);
    b.set_args(&[
        "sh",
        "-c",
        "echo run $(stty size); trap 'echo run winch $(stty size)' WINCH; while :; do sleep 0.05; done",
    ]);
    b.write();
    let id = env.id("c");
    let sock = format!("carte-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &sock])
            .args(args)
            .output()
            .unwrap()
    };
    let run = format!(
        "{} --root {} run --bundle {} {}",
        carte_bin().display(),
        env.root.display(),
        b.path(),
        id
    );
    let exec = format!(
        "{} --root {} exec -t {} sh -c \"echo exec \\$(stty size); trap 'echo exec winch \\$(stty size)' WINCH; while :; do sleep 0.05; done\"",
        carte_bin().display(),
        env.root.display(),
        id
    );
    let started = tmux(&["new-session", "-d", "-x", "100", "-y", "30", &run]);
    assert!(started.status.success(), "{started:?}");
    env.wait_status(&id, "running");
    // A failed exec leaves its pane, and its error, on the screen.
    tmux(&["set-option", "-g", "remain-on-exit", "on"]);
    let split = tmux(&["split-window", "-h", &exec]);
    assert!(split.status.success(), "{split:?}");
    let screen = || {
        let run = tmux(&["capture-pane", "-p", "-t", "0.0"]);
        let exec = tmux(&["capture-pane", "-p", "-t", "0.1"]);
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&exec.stdout)
    };
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !screen().contains(needle) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        screen()
    };
    let text = wait_for("exec ");
    let panes = tmux(&["list-panes"]);
    assert!(
        text.contains("exec "),
        "exec printed nothing: {text}\n{panes:?}"
    );
    assert!(text.contains("run 30 100"), "{text}");
    tmux(&["resize-window", "-x", "140", "-y", "40"]);
    let text = wait_for("exec winch");
    let _ = wait_for("run winch");
    let text = text + &screen();
    assert!(text.contains("run winch 40"), "run saw no resize: {text}");
    assert!(text.contains("exec winch 40"), "exec saw no resize: {text}");
    env.carte(&["kill", &id, "KILL"]).assert_ok();
    // The foreground `run` deletes the container once its process is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.state(&id).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    tmux(&["kill-server"]);
    env.assert_no_leaks(&id);
}
