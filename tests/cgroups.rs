//! linux.resources, `update` and `events` on this host's cgroups: each
//! value is read back from the host's cgroup file and from inside the
//! container (its cgroup namespace makes its cgroup the root of the
//! /sys/fs/cgroup mount). Written for the hybrid host CI runs on (v1
//! controllers); fields the host lacks are checked to fail clearly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const MIB: i64 = 1 << 20;

/// The host's file for container `id` under controller `ctrl`.
fn host(ctrl: &str, id: &str, file: &str) -> String {
    let path = format!("/sys/fs/cgroup/{ctrl}/{id}/{file}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_string()
}

fn has_host_file(ctrl: &str, file: &str) -> bool {
    std::path::Path::new(&format!("/sys/fs/cgroup/{ctrl}/{file}")).exists()
}

/// A bundle running `args`, with a cgroup namespace and a cgroup mount so
/// the container can read its own limits, and `resources` merged into the
/// default device rules.
fn bundle(env: &TestEnv, args: &[&str], resources: Value) -> Bundle {
    let mut b = env.bundle("b");
    b.set_args(args);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    for (k, v) in resources.as_object().unwrap() {
        b.config["linux"]["resources"][k] = v.clone();
    }
    b.write();
    b
}

/// What the container reads from its own /sys/fs/cgroup/<ctrl>/<file>.
fn inside(env: &TestEnv, id: &str, ctrl: &str, file: &str) -> String {
    let out = env.carte(&["exec", id, "cat", &format!("/sys/fs/cgroup/{ctrl}/{file}")]);
    out.assert_ok();
    out.stdout.trim().to_string()
}

/// Checks that the host's file and the container's view both hold `want`.
#[track_caller]
fn assert_limit(env: &TestEnv, id: &str, ctrl: &str, file: &str, want: &str) {
    assert_eq!(host(ctrl, id, file), want, "host {ctrl}/{file}");
    assert_eq!(inside(env, id, ctrl, file), want, "inside {ctrl}/{file}");
}

fn recorded(env: &TestEnv, id: &str) -> Value {
    let text = std::fs::read(env.root.join(id).join("state.json")).unwrap();
    serde_json::from_slice::<Value>(&text).unwrap()["resources"].clone()
}

fn run_detached(env: &TestEnv, b: &Bundle, id: &str) {
    env.carte(&["run", "-d", "--bundle", b.path(), id])
        .assert_ok();
    env.wait_status(id, "running");
}

fn finish(env: &TestEnv, id: &str) {
    env.carte(&["delete", "--force", id]).assert_ok();
    env.assert_no_leaks(id);
}

#[test]
fn config_limits_land_and_the_container_sees_them() {
    let env = TestEnv::new("cgcreate");
    let mut resources = json!({
        "memory": {"limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB,
                   "swappiness": 30, "disableOOMKiller": false, "useHierarchy": true,
                   "kernelTCP": 16 * MIB, "checkBeforeUpdate": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimePeriod": 500000, "realtimeRuntime": 0, "cpus": "0", "mems": "0", "idle": 0},
        "pids": {"limit": 50},
        "blockIO": {"weight": 300,
                    "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                    "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}],
                    "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200}]}
    });
    if !std::path::Path::new("/sys/dev/block/254:0").exists() {
        resources["blockIO"] = json!({"weight": 300});
    }
    let b = bundle(&env, &["sleep", "1000"], resources.clone());
    let id = env.id("c");
    run_detached(&env, &b, &id);

    let mem = |f: &str, want: i64| assert_limit(&env, &id, "memory", f, &want.to_string());
    mem("memory.limit_in_bytes", 64 * MIB);
    mem("memory.soft_limit_in_bytes", 32 * MIB);
    mem("memory.memsw.limit_in_bytes", 96 * MIB);
    mem("memory.swappiness", 30);
    mem("memory.use_hierarchy", 1);
    mem("memory.kmem.tcp.limit_in_bytes", 16 * MIB);
    assert!(host("memory", &id, "memory.oom_control").contains("oom_kill_disable 0"));
    let cpu = |f: &str, want: &str| assert_limit(&env, &id, "cpu", f, want);
    cpu("cpu.shares", "512");
    cpu("cpu.cfs_quota_us", "50000");
    cpu("cpu.cfs_period_us", "100000");
    cpu("cpu.cfs_burst_us", "1000");
    cpu("cpu.rt_period_us", "500000");
    cpu("cpu.rt_runtime_us", "0");
    cpu("cpu.idle", "0");
    assert_limit(&env, &id, "cpuset", "cpuset.cpus", "0");
    assert_limit(&env, &id, "cpuset", "cpuset.mems", "0");
    assert_limit(&env, &id, "pids", "pids.max", "50");
    assert_limit(&env, &id, "blkio", "blkio.bfq.weight", "300");
    if resources["blockIO"].get("throttleReadBpsDevice").is_some() {
        for (file, want) in [
            ("read_bps_device", "254:0 1048576"),
            ("write_bps_device", "254:0 2097152"),
            ("read_iops_device", "254:0 100"),
            ("write_iops_device", "254:0 200"),
        ] {
            assert_limit(&env, &id, "blkio", &format!("blkio.throttle.{file}"), want);
        }
    }
    // The device rules: deny all, then the defaults (/dev/null is c 1:3).
    let devices = host("devices", &id, "devices.list");
    assert!(devices.contains("c 1:3 rwm"), "{devices}");
    assert!(!devices.contains("a *:* rwm"), "{devices}");
    // state.json keeps what was applied.
    assert_eq!(recorded(&env, &id)["pids"]["limit"], 50);
    finish(&env, &id);
}

#[test]
fn update_from_a_file_from_stdin_and_from_flags() {
    let env = TestEnv::new("cgupdate");
    let b = bundle(
        &env,
        &["sleep", "1000"],
        json!({"memory": {"limit": 64 * MIB, "swap": 64 * MIB}, "pids": {"limit": 40}}),
    );
    let id = env.id("c");
    run_detached(&env, &b, &id);

    // podman: --resources=FILE
    let file = env.dir.join("resources.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 48 * MIB, "swap": 80 * MIB, "reservation": 16 * MIB},
               "cpu": {"shares": 256, "quota": 20000, "period": 50000, "cpus": "1"},
               "pids": {"limit": 30}, "blockIO": {"weight": 500}})
        .to_string(),
    )
    .unwrap();
    env.carte(&["update", &format!("--resources={}", file.display()), &id])
        .assert_ok();
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.limit_in_bytes",
        &(48 * MIB).to_string(),
    );
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.memsw.limit_in_bytes",
        &(80 * MIB).to_string(),
    );
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.soft_limit_in_bytes",
        &(16 * MIB).to_string(),
    );
    assert_limit(&env, &id, "cpu", "cpu.shares", "256");
    assert_limit(&env, &id, "cpu", "cpu.cfs_quota_us", "20000");
    assert_limit(&env, &id, "cpu", "cpu.cfs_period_us", "50000");
    assert_limit(&env, &id, "cpuset", "cpuset.cpus", "1");
    assert_limit(&env, &id, "pids", "pids.max", "30");
    assert_limit(&env, &id, "blkio", "blkio.bfq.weight", "500");

    // containerd: --resources - with the JSON on stdin; the memory limit
    // grows past the old swap limit, so swap must be written first.
    let json = json!({"memory": {"limit": 128 * MIB, "swap": 160 * MIB},
                      "cpu": {"cpus": "", "mems": "", "idle": 1}, "pids": {"limit": 0}});
    env.carte_with_input(
        &["update", "--resources", "-", &id],
        json.to_string().as_bytes(),
    )
    .assert_ok();
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.limit_in_bytes",
        &(128 * MIB).to_string(),
    );
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.memsw.limit_in_bytes",
        &(160 * MIB).to_string(),
    );
    assert_limit(&env, &id, "cpu", "cpu.idle", "1");
    // Empty cpus and a 0 pids limit leave those as they were.
    assert_limit(&env, &id, "cpuset", "cpuset.cpus", "1");
    assert_limit(&env, &id, "pids", "pids.max", "30");

    // runc's single-value flags, both --flag value and --flag=value.
    env.carte(&[
        "update",
        "--memory-swap",
        "200m",
        "--memory=150M",
        "--memory-reservation",
        "8m",
        "--kernel-memory-tcp",
        "4m",
        "--cpu-share",
        "1024",
        "--cpu-quota",
        "-1",
        "--cpu-period=100000",
        "--cpu-burst",
        "0",
        "--cpu-idle",
        "0",
        "--cpu-rt-period",
        "400000",
        "--cpu-rt-runtime",
        "0",
        "--cpuset-cpus",
        "0-1",
        "--cpuset-mems",
        "0",
        "--pids-limit",
        "20",
        "--blkio-weight",
        "700",
        &id,
    ])
    .assert_ok();
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.limit_in_bytes",
        &(150 * MIB).to_string(),
    );
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.memsw.limit_in_bytes",
        &(200 * MIB).to_string(),
    );
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.soft_limit_in_bytes",
        &(8 * MIB).to_string(),
    );
    assert_limit(
        &env,
        &id,
        "memory",
        "memory.kmem.tcp.limit_in_bytes",
        &(4 * MIB).to_string(),
    );
    assert_limit(&env, &id, "cpu", "cpu.shares", "1024");
    assert_limit(&env, &id, "cpu", "cpu.cfs_quota_us", "-1");
    assert_limit(&env, &id, "cpu", "cpu.cfs_period_us", "100000");
    assert_limit(&env, &id, "cpu", "cpu.idle", "0");
    assert_limit(&env, &id, "cpu", "cpu.rt_period_us", "400000");
    assert_limit(&env, &id, "cpuset", "cpuset.cpus", "0-1");
    assert_limit(&env, &id, "pids", "pids.max", "20");
    assert_limit(&env, &id, "blkio", "blkio.bfq.weight", "700");
    env.carte(&["update", "--pids-limit", "-1", &id])
        .assert_ok();
    assert_limit(&env, &id, "pids", "pids.max", "max");

    // state.json records the merged result.
    let r = recorded(&env, &id);
    assert_eq!(r["memory"]["limit"], 150 * MIB);
    assert_eq!(r["memory"]["swap"], 200 * MIB);
    assert_eq!(r["cpu"]["shares"], 1024);
    assert_eq!(r["cpu"]["cpus"], "0-1");
    assert_eq!(r["pids"]["limit"], -1);
    assert_eq!(r["blockIO"]["weight"], 700);
    // The device rules of the config may be sent again, unchanged.
    let devices = json!({"devices": b.config["linux"]["resources"]["devices"]});
    env.carte_with_input(&["update", "-r", "-", &id], devices.to_string().as_bytes())
        .assert_ok();
    finish(&env, &id);
}

#[test]
fn update_refuses_what_it_cannot_do() {
    let env = TestEnv::new("cgupbad");
    let b = bundle(
        &env,
        &["sleep", "1000"],
        json!({"memory": {"limit": 64 * MIB}}),
    );
    let id = env.id("c");
    run_detached(&env, &b, &id);
    let update = |json: Value| {
        env.carte_with_input(
            &["update", "--resources", "-", &id],
            json.to_string().as_bytes(),
        )
    };
    update(json!({"devices": [{"allow": true, "access": "rwm"}]}))
        .assert_fails_with(&["linux.resources.devices", "cannot change device rules"]);
    update(json!({"unified": {"memory.high": "100000"}}))
        .assert_fails_with(&["linux.resources.unified.memory.high", "not cgroup v2 only"]);
    update(json!({"memory": {"swappiness": 101}}))
        .assert_fails_with(&["linux.resources.memory.swappiness", "above 100"]);
    update(json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}))
        .assert_fails_with(&["linux.resources.memory.limit", "current usage"]);
    update(json!({"cpu": {"shares": 1}}))
        .assert_fails_with(&["linux.resources.cpu.shares", "out of the kernel's range"]);
    // More realtime budget than the parent (the root, 950000 of 1000000
    // us) has to give: the kernel's refusal, named.
    update(json!({"cpu": {"realtimeRuntime": 990000}}))
        .assert_fails_with(&["linux.resources.cpu.realtimeRuntime", "cpu.rt_runtime_us"]);
    update(json!({"memory": "lots"})).assert_fails_with(&["stdin", "memory"]);
    update(json!({"blockIO": {"throttleReadIopsDevice": [{"major": 254, "minor": 0, "rate": 1}]}}))
        .assert_fails_with(&["unknown field blockIO.throttleReadIopsDevice"]);
    // Nothing of a refused update was applied or recorded.
    assert_eq!(
        host("memory", &id, "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert_eq!(recorded(&env, &id)["memory"]["limit"], 64 * MIB);
    env.carte(&["update", "--l3-cache-schema", "L3:0=f", &id])
        .assert_fails_with(&["Intel RDT"]);
    env.carte(&["update", "--memory", "12x", &id])
        .assert_fails_with(&["--memory", "12x"]);
    env.carte(&["update", "-r", "/nonexistent.json", &id])
        .assert_fails_with(&["/nonexistent.json", "no such file"]);
    env.carte(&["update", "--memory", "1m", "-r", "-", &id])
        .assert_fails_with(&["--resources"]);
    // A kernel memory limit is what the kernel dropped: a warning, as runc's.
    let out = env.carte(&["update", "--kernel-memory", "64m", &id]);
    out.assert_ok();
    assert!(
        out.stderr.contains("memory.kernel: ignored"),
        "{}",
        out.stderr
    );

    // Stopped and unknown containers.
    env.carte(&["kill", &id, "KILL"]).assert_ok();
    env.wait_status(&id, "stopped");
    env.carte(&["update", "--memory", "100m", &id])
        .assert_fails_with(&[&format!("cannot update container {id}: it is stopped")]);
    env.carte(&["update", "--memory", "100m", "nosuch"])
        .assert_fails_with(&["container nosuch does not exist"]);
    env.carte(&["events", "--stats", &id])
        .assert_fails_with(&[&id, "stopped"]);
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn fields_this_host_lacks_fail_create_cleanly() {
    let env = TestEnv::new("cgnohost");
    let mut cases = vec![
        (
            json!({"unified": {"pids.max": "10"}}),
            vec!["linux.resources.unified.pids.max", "not cgroup v2 only"],
        ),
        (
            json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}),
            vec!["linux.resources.rdma", "no rdma controller"],
        ),
        (
            json!({"blockIO": {"leafWeight": 300}}),
            vec!["linux.resources.blockIO.leafWeight", "blkio.leaf_weight"],
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}),
            vec!["linux.resources.hugepageLimits[3MB]"],
        ),
    ];
    let vda_sched =
        std::fs::read_to_string("/sys/dev/block/254:0/queue/scheduler").unwrap_or_default();
    if !vda_sched.is_empty() && !vda_sched.contains("[bfq]") {
        cases.push((
            json!({"blockIO": {"weightDevice": [{"major": 254, "minor": 0, "weight": 200}]}}),
            vec![
                "linux.resources.blockIO.weightDevice[254:0]",
                "does not use the BFQ",
            ],
        ));
    }
    if !has_host_file("net_cls", "net_cls.classid") {
        cases.push((
            json!({"network": {"classID": 1048577}}),
            vec!["linux.resources.network.classID", "net_cls"],
        ));
    }
    if !has_host_file("hugetlb", "") {
        cases.push((
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
            vec!["linux.resources.hugepageLimits[2MB]", "hugetlb"],
        ));
    }
    for (i, (resources, needles)) in cases.into_iter().enumerate() {
        let b = bundle(&env, &["true"], resources);
        let id = env.id(&format!("c{i}"));
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_fails_with(&needles);
        env.assert_no_leaks(&id);
    }
}

#[test]
fn a_memory_limit_stops_an_allocation_and_events_reports_the_oom() {
    let env = TestEnv::new("cgoom");
    // swap = limit: no swapping around the limit (the host has zram swap).
    let b = bundle(
        &env,
        &["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"],
        json!({"memory": {"limit": 16 * MIB, "swap": 16 * MIB}}),
    );
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let mut events = env
        .command(&["events", "--interval", "100ms", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let events register its eventfd before the process starts eating.
    std::thread::sleep(Duration::from_millis(300));
    env.carte(&["start", &id]).assert_ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    let mut reader = BufReader::new(events.stdout.take().unwrap());
    let mut line = String::new();
    while Instant::now() < deadline && reader.read_line(&mut line).unwrap_or(0) > 0 {
        lines.push(serde_json::from_str::<Value>(line.trim()).expect("one JSON object a line"));
        line.clear();
    }
    // The stream ended by itself: the container stopped.
    let status = events.wait().unwrap();
    assert!(status.success(), "events: {status:?}");
    assert!(
        lines.iter().any(|e| e == &json!({"type": "oom", "id": id})),
        "no oom event in {lines:?}"
    );
    assert!(lines
        .iter()
        .filter(|e| e["type"] == "stats")
        .all(|e| e["id"] == id.as_str() && e["data"]["memory"]["usage"]["limit"] == 16 * MIB));
    env.wait_status(&id, "stopped");
    let oom = host("memory", &id, "memory.oom_control");
    assert!(
        oom.contains("oom_kill 1") || oom.contains("oom_kill 2"),
        "{oom}"
    );
    finish(&env, &id);
}

#[test]
fn a_pids_limit_stops_a_fork_bomb() {
    let env = TestEnv::new("cgpids");
    let mut b = bundle(&env, &["true"], json!({"pids": {"limit": 8}}));
    let out = env.sh(
        &mut b,
        // The subshell dies at its first failed fork, as sh does; the
        // reads are builtins, since no fork is left for the outer shell.
        "(for i in $(seq 20); do sleep 2 & done) 2>/tmp/err; \
         read running < /sys/fs/cgroup/pids/pids.current; read max < /sys/fs/cgroup/pids/pids.max; \
         sleep 3; echo running=$running; echo max=$max; echo fork=$(grep -c \"can't fork\" /tmp/err)",
    );
    let v = kv(&out);
    assert_eq!(v["max"], "8", "{out}");
    assert!(v["running"].parse::<u32>().unwrap() <= 8, "{out}");
    assert!(v["running"].parse::<u32>().unwrap() >= 6, "{out}");
    assert_eq!(v["fork"], "1", "the fork past the limit failed: {out}");
}

#[test]
fn events_stats_prints_runc_shaped_json() {
    let env = TestEnv::new("cgstats");
    let b = bundle(
        &env,
        &["sh", "-c", "sleep 1000 & sleep 1000"],
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 30}}),
    );
    let id = env.id("c");
    run_detached(&env, &b, &id);
    let out = env.carte(&["events", "--stats", &id]);
    out.assert_ok();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let e: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], id.as_str());
    let d = &e["data"];
    for key in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
    ] {
        assert!(d[key].is_object(), "{key} in {d}");
    }
    assert!(d["network_interfaces"].is_null());
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    assert!(!d["cpu"]["usage"]["percpu"].as_array().unwrap().is_empty());
    assert!(d["cpu"]["usage"]["user"].is_u64() && d["cpu"]["usage"]["kernel"].is_u64());
    assert_eq!(d["memory"]["usage"]["limit"], 64 * MIB);
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(d["memory"]["raw"]["rss"].is_u64(), "{d}");
    assert!(d["memory"]["kernelTCP"]["limit"].is_u64());
    // sh and its sleeps (busybox may exec the last sleep in place of sh).
    let current = d["pids"]["current"].as_u64().unwrap();
    assert!((2..=3).contains(&current), "{d}");
    assert_eq!(d["pids"]["limit"], 30);

    // The stream: one stats object an interval, in the same shape.
    let mut child = env
        .command(&["events", "--interval", "200ms", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let started = Instant::now();
    for _ in 0..2 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let e: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(e["type"], "stats");
        assert_eq!(e["data"]["pids"]["current"], current);
    }
    assert!(started.elapsed() >= Duration::from_millis(350));
    // It ends when the container stops.
    env.carte(&["kill", &id, "KILL"]).assert_ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "events outlived the container");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.carte(&["events", "--interval", "0s", &id])
        .assert_fails_with(&["--interval"]);
    finish(&env, &id);
}

#[test]
fn kernel_memory_is_a_warning_as_in_runc() {
    let env = TestEnv::new("cgkmem");
    let b = bundle(&env, &["true"], json!({"memory": {"kernel": 64 * MIB}}));
    let id = env.id("c");
    let out = env.carte(&["run", "--bundle", b.path(), &id]);
    out.assert_ok();
    assert!(
        out.stderr
            .contains("linux.resources.memory.kernel: ignored"),
        "{}",
        out.stderr
    );
    env.assert_no_leaks(&id);
}

#[test]
fn default_device_rules_keep_their_wildcards() {
    // mknod of any device and every pty are allowed by runc's default
    // rules; a wildcard written as 0 would allow only c 0:0 and pts/0
    // (the second pty is checked through `exec -t` in tests/inside.rs).
    let env = TestEnv::new("devwild");
    let mut b = env.bundle("b");
    b.set_args(&[
        "sh",
        "-c",
        "{ mknod /tmp/n c 1 3 && echo mknod-ok; mknod /tmp/b b 7 0 && echo mknod-b-ok; } >/result 2>&1",
    ]);
    let caps = ["CAP_MKNOD"];
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.write();
    let id = env.id("c");
    env.carte(&["create", "--bundle", b.path(), &id])
        .assert_ok();
    let list =
        std::fs::read_to_string(format!("/sys/fs/cgroup/devices/{id}/devices.list")).unwrap();
    assert!(list.contains("c *:* m"), "{list}");
    assert!(list.contains("c 136:* rwm"), "{list}");
    let out = env.carte(&["start", &id]);
    out.assert_ok();
    env.wait_status(&id, "stopped");
    let result = std::fs::read_to_string(b.rootfs().join("result")).unwrap();
    assert!(result.contains("mknod-ok"), "{result}");
    assert!(result.contains("mknod-b-ok"), "{result}");
    env.carte(&["delete", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// linux.devices only makes nodes; access is linux.resources.devices' and
/// runc's default devices'. A container that denies every device and lists
/// /dev/kmsg in linux.devices could write it (carte added `c 1:11 rwm`
/// for each linux.devices entry). Seen from inside: each open's error.
#[test]
fn linux_devices_grant_no_access() {
    let env = TestEnv::new("sec-dev");
    let probe = "for d in kmsg null zero full random urandom tty ptmx; do \
                   r=$( (: > /dev/$d) 2>&1 ); echo \"$d=${r##*: }\"; done > /result";
    let kmsg = json!({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11});
    let dev_null = json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 3});
    let check = |name: &str, devices: Value, resources: Option<Value>| {
        let mut b = env.bundle(name);
        b.set_args(&["sh", "-c", probe]);
        b.config["linux"]["devices"] = devices;
        match resources {
            Some(r) => b.config["linux"]["resources"] = r,
            None => {
                b.config["linux"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resources");
            }
        }
        b.write();
        let id = env.id(name);
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_ok();
        let list = host("devices", &id, "devices.list");
        env.carte(&["start", &id]).assert_ok();
        env.wait_status(&id, "stopped");
        let out = std::fs::read_to_string(b.rootfs().join("result")).unwrap();
        env.carte(&["delete", &id]).assert_ok();
        env.assert_no_leaks(&id);
        eprintln!("{name}: devices.list:\n{list}\ninside:\n{out}");
        assert!(!list.contains("a *:*"), "{name}: {list}");
        (list, kv(&out))
    };
    let denied = "Operation not permitted";
    let defaults_open = |name: &str, v: &std::collections::HashMap<String, String>| {
        for d in ["zero", "full", "random", "urandom", "ptmx"] {
            assert_eq!(v[d], "", "{name}: /dev/{d}");
        }
        // No controlling terminal: the driver's ENXIO, past the cgroup.
        assert_eq!(v["tty"], "No such device or address", "{name}");
    };
    // Every device denied, /dev/kmsg made: made, not granted.
    let deny_all = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let (list, v) = check("denyall", json!([kmsg]), Some(deny_all.clone()));
    assert!(!list.contains("c 1:11"), "{list}");
    assert_eq!(v["kmsg"], denied);
    assert_eq!(v["null"], "");
    defaults_open("denyall", &v);
    // No linux.resources at all: runc's allow list still holds, and a
    // default node linux.devices lists by path (/dev/null) loses its rule.
    let (list, v) = check("nores", json!([kmsg, dev_null]), None);
    assert!(
        !list.contains("c 1:11") && !list.contains("c 1:3 "),
        "{list}"
    );
    assert_eq!(v["kmsg"], denied);
    assert_eq!(v["null"], denied);
    defaults_open("nores", &v);
    // linux.resources.devices grants it: open.
    let mut grant = deny_all;
    grant["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}));
    let (list, v) = check("grant", json!([kmsg]), Some(grant));
    assert!(list.contains("c 1:11 w"), "{list}");
    assert_eq!(v["kmsg"], "");
}

/// A cgroup frozen before carte starts (cgroupsPath pointing at it), or
/// frozen while create waits for init: init can make no progress, and
/// carte waited for it forever. As runc: "container's cgroup unexpectedly
/// frozen", at once, and nothing left of the container.
#[test]
fn a_frozen_cgroup_fails_create_fast() {
    let env = TestEnv::new("sec-frozen");
    let cg = format!("/sec-frozen-{}", std::process::id());
    let freezer = std::path::PathBuf::from(format!("/sys/fs/cgroup/freezer{cg}"));
    let state = freezer.join("freezer.state");
    std::fs::create_dir(&freezer).unwrap();
    std::fs::write(&state, "FROZEN").unwrap();
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "100"]);
    b.config["linux"]["cgroupsPath"] = json!(cg);
    b.write();
    let frozen = "container's cgroup unexpectedly frozen";
    for verb in [&["run", "-d"][..], &["create"]] {
        let id = env.id(verb[0]);
        let mut args = verb.to_vec();
        args.extend(["--bundle", b.path(), &id]);
        let started = Instant::now();
        let out = env.carte_within(env.command(&args), 20);
        out.assert_fails_with(&[frozen, &cg]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{verb:?} took {:?}",
            started.elapsed()
        );
        env.assert_no_leaks(&id);
        // carte made no cgroup of its own there.
        for ctrl in ["memory", "pids", "devices", "cpu"] {
            let dir = format!("/sys/fs/cgroup/{ctrl}{cg}");
            assert!(!std::path::Path::new(&dir).exists(), "{dir} made");
        }
    }
    std::fs::write(&state, "THAWED").unwrap();
    std::fs::remove_dir(&freezer).unwrap();
    // Frozen mid-create, by a createRuntime hook (init is in the cgroup
    // and waits for the hooks): create fails as soon as it sees it, and
    // the cgroup it made is thawed and removed.
    let hook = format!("echo FROZEN > {}", state.display());
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    b.write();
    let id = env.id("mid");
    let started = Instant::now();
    let out = env.carte_within(env.command(&["run", "-d", "--bundle", b.path(), &id]), 20);
    out.assert_fails_with(&[frozen, &cg]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    env.assert_no_leaks(&id);
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join(cg.trim_start_matches('/'));
        assert!(!dir.exists(), "{} left", dir.display());
    }
}
