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
fn host_file(ctrl: &str, id: &str, file: &str) -> String {
    let root = common::host::host()
        .v1(ctrl)
        .unwrap_or_else(|| panic!("no v1 {ctrl} hierarchy"));
    let path = format!("{}/{id}/{file}", root.display());
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_string()
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
    assert_eq!(host_file(ctrl, id, file), want, "host {ctrl}/{file}");
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

/// These checks read the v1 files; on a host without v1 controllers the
/// test records a skip (conformance/vm runs the cgroup v2 checks).
fn v1_host(test: &str) -> bool {
    if host().has_v1() {
        return true;
    }
    skip(
        test,
        "no cgroup v1 controllers on this host (conformance/vm checks cgroup v2)",
    );
    false
}

/// The v1 controllers a test reads; a skip with the reason when one is
/// not mounted.
fn v1_controllers(test: &str, ctrls: &[&str]) -> bool {
    if !v1_host(test) {
        return false;
    }
    match ctrls.iter().find(|c| host().v1(c).is_none()) {
        None => true,
        Some(c) => {
            skip(test, &format!("no v1 {c} hierarchy on this host"));
            false
        }
    }
}

/// Resources built from what this host offers: each field goes in only
/// where the host has its file, with the value its file must then hold;
/// a field left out is a skip with the reason.
struct Limits {
    test: &'static str,
    resources: Value,
    want: Vec<(String, String, String)>,
}

impl Limits {
    fn new(test: &'static str) -> Limits {
        Limits {
            test,
            resources: json!({}),
            want: Vec::new(),
        }
    }

    /// `field` ("memory.limit") = `value`, which `ctrl`/`file` then reads
    /// as `expect`.
    fn set(&mut self, field: &str, value: Value, ctrl: &str, file: &str, expect: impl ToString) {
        if !host().v1_file(ctrl, file) {
            skip(
                self.test,
                &format!("linux.resources.{field} left out: this host has no {ctrl}/{file}"),
            );
            return;
        }
        let (a, b) = field.split_once('.').unwrap();
        if !self.resources[a].is_object() {
            self.resources[a] = json!({});
        }
        self.resources[a][b] = value;
        self.want
            .push((ctrl.into(), file.into(), expect.to_string()));
    }

    /// The block IO weight, where the kernel has a weight file (BFQ's or
    /// CFQ's; a kernel without BFQ has neither).
    fn weight(&mut self, w: u16) {
        match host().blkio_weight_file() {
            Some(file) => self.set("blockIO.weight", json!(w), "blkio", file, w),
            None => skip(
                self.test,
                "linux.resources.blockIO.weight left out: no blkio.weight or blkio.bfq.weight (no BFQ)",
            ),
        }
    }

    fn has(&self, ctrl: &str, file: &str) -> bool {
        self.want.iter().any(|(c, f, _)| c == ctrl && f == file)
    }

    /// Every value landed, on the host and as the container sees it.
    #[track_caller]
    fn assert_landed(&self, env: &TestEnv, id: &str) {
        for (ctrl, file, want) in &self.want {
            assert_limit(env, id, ctrl, file, want);
        }
    }
}

#[test]
fn config_limits_land_and_the_container_sees_them() {
    const T: &str = "cgroups::config_limits_land_and_the_container_sees_them";
    if !v1_host(T) {
        return;
    }
    let h = host();
    let env = TestEnv::new("cgcreate");
    let mut l = Limits::new(T);
    l.set(
        "memory.limit",
        json!(64 * MIB),
        "memory",
        "memory.limit_in_bytes",
        64 * MIB,
    );
    l.set(
        "memory.reservation",
        json!(32 * MIB),
        "memory",
        "memory.soft_limit_in_bytes",
        32 * MIB,
    );
    l.set(
        "memory.swap",
        json!(96 * MIB),
        "memory",
        "memory.memsw.limit_in_bytes",
        96 * MIB,
    );
    l.set(
        "memory.swappiness",
        json!(30),
        "memory",
        "memory.swappiness",
        30,
    );
    l.set(
        "memory.useHierarchy",
        json!(true),
        "memory",
        "memory.use_hierarchy",
        1,
    );
    l.set(
        "memory.kernelTCP",
        json!(16 * MIB),
        "memory",
        "memory.kmem.tcp.limit_in_bytes",
        16 * MIB,
    );
    if l.has("memory", "memory.limit_in_bytes") {
        l.resources["memory"]["disableOOMKiller"] = json!(false);
        l.resources["memory"]["checkBeforeUpdate"] = json!(true);
    }
    l.set("cpu.shares", json!(512), "cpu", "cpu.shares", 512);
    l.set("cpu.quota", json!(50000), "cpu", "cpu.cfs_quota_us", 50000);
    l.set(
        "cpu.period",
        json!(100000),
        "cpu",
        "cpu.cfs_period_us",
        100000,
    );
    l.set("cpu.burst", json!(1000), "cpu", "cpu.cfs_burst_us", 1000);
    l.set(
        "cpu.realtimePeriod",
        json!(500000),
        "cpu",
        "cpu.rt_period_us",
        500000,
    );
    l.set(
        "cpu.realtimeRuntime",
        json!(0),
        "cpu",
        "cpu.rt_runtime_us",
        0,
    );
    l.set("cpu.idle", json!(0), "cpu", "cpu.idle", 0);
    let (cpu, mem) = (h.cpus[0], h.mems[0]);
    l.set(
        "cpu.cpus",
        json!(cpu.to_string()),
        "cpuset",
        "cpuset.cpus",
        cpu,
    );
    l.set(
        "cpu.mems",
        json!(mem.to_string()),
        "cpuset",
        "cpuset.mems",
        mem,
    );
    l.set("pids.limit", json!(50), "pids", "pids.max", 50);
    l.weight(300);
    match h.block_device() {
        Some((maj, min)) => {
            let dev = format!("{maj}:{min}");
            for (field, file, rate) in [
                ("throttleReadBpsDevice", "read_bps_device", 1048576),
                ("throttleWriteBpsDevice", "write_bps_device", 2097152),
                ("throttleReadIOPSDevice", "read_iops_device", 100),
                ("throttleWriteIOPSDevice", "write_iops_device", 200),
            ] {
                l.set(
                    &format!("blockIO.{field}"),
                    json!([{"major": maj, "minor": min, "rate": rate}]),
                    "blkio",
                    &format!("blkio.throttle.{file}"),
                    format!("{dev} {rate}"),
                );
            }
        }
        None => skip(T, "blockIO throttles left out: no disk in /sys/block"),
    }
    let b = bundle(&env, &["sleep", "1000"], l.resources.clone());
    let id = env.id("c");
    run_detached(&env, &b, &id);

    l.assert_landed(&env, &id);
    if l.has("memory", "memory.limit_in_bytes") {
        assert!(host_file("memory", &id, "memory.oom_control").contains("oom_kill_disable 0"));
    }
    // The device rules: deny all, then the defaults (/dev/null is c 1:3).
    if h.v1("devices").is_some() {
        let devices = host_file("devices", &id, "devices.list");
        assert!(devices.contains("c 1:3 rwm"), "{devices}");
        assert!(!devices.contains("a *:* rwm"), "{devices}");
    }
    // state.json keeps what was applied.
    if l.has("pids", "pids.max") {
        assert_eq!(recorded(&env, &id)["pids"]["limit"], 50);
    }
    finish(&env, &id);
}

#[test]
fn update_from_a_file_from_stdin_and_from_flags() {
    const T: &str = "cgroups::update_from_a_file_from_stdin_and_from_flags";
    if !v1_host(T) {
        return;
    }
    let h = host();
    let swap = h.swap_accounting();
    if !swap {
        skip(T, "memory.swap left out: this kernel does not account swap");
    }
    let env = TestEnv::new("cgupdate");
    let mut first = json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 40}});
    if swap {
        first["memory"]["swap"] = json!(64 * MIB);
    }
    let b = bundle(&env, &["sleep", "1000"], first);
    let id = env.id("c");
    run_detached(&env, &b, &id);
    let last_cpu = h.cpus[h.cpus.len() - 1].to_string();

    // podman: --resources=FILE
    let mut l = Limits::new(T);
    l.set(
        "memory.limit",
        json!(48 * MIB),
        "memory",
        "memory.limit_in_bytes",
        48 * MIB,
    );
    l.set(
        "memory.swap",
        json!(80 * MIB),
        "memory",
        "memory.memsw.limit_in_bytes",
        80 * MIB,
    );
    l.set(
        "memory.reservation",
        json!(16 * MIB),
        "memory",
        "memory.soft_limit_in_bytes",
        16 * MIB,
    );
    l.set("cpu.shares", json!(256), "cpu", "cpu.shares", 256);
    l.set("cpu.quota", json!(20000), "cpu", "cpu.cfs_quota_us", 20000);
    l.set(
        "cpu.period",
        json!(50000),
        "cpu",
        "cpu.cfs_period_us",
        50000,
    );
    l.set(
        "cpu.cpus",
        json!(last_cpu),
        "cpuset",
        "cpuset.cpus",
        &last_cpu,
    );
    l.set("pids.limit", json!(30), "pids", "pids.max", 30);
    l.weight(500);
    let file = env.dir.join("resources.json");
    std::fs::write(&file, l.resources.to_string()).unwrap();
    env.carte(&["update", &format!("--resources={}", file.display()), &id])
        .assert_ok();
    l.assert_landed(&env, &id);

    // containerd: --resources - with the JSON on stdin; the memory limit
    // grows past the old swap limit, so swap must be written first.
    let mut l = Limits::new(T);
    l.set(
        "memory.limit",
        json!(128 * MIB),
        "memory",
        "memory.limit_in_bytes",
        128 * MIB,
    );
    l.set(
        "memory.swap",
        json!(160 * MIB),
        "memory",
        "memory.memsw.limit_in_bytes",
        160 * MIB,
    );
    l.set("cpu.idle", json!(1), "cpu", "cpu.idle", 1);
    // Empty cpus and a 0 pids limit leave those as they were.
    l.set("cpu.cpus", json!(""), "cpuset", "cpuset.cpus", &last_cpu);
    l.set("cpu.mems", json!(""), "cpuset", "cpuset.mems", h.mems[0]);
    l.set("pids.limit", json!(0), "pids", "pids.max", 30);
    env.carte_with_input(
        &["update", "--resources", "-", &id],
        l.resources.to_string().as_bytes(),
    )
    .assert_ok();
    l.assert_landed(&env, &id);

    // runc's single-value flags, both --flag value and --flag=value; each
    // where the host has its file.
    let all_cpus = format_list(&h.cpus);
    let mut args: Vec<String> = vec!["update".into()];
    let mut want: Vec<(&str, &str, String)> = Vec::new();
    let mut flag = |ctrl: &'static str, file: &'static str, flag: &[&str], expect: String| {
        if h.v1_file(ctrl, file) {
            args.extend(flag.iter().map(|s| s.to_string()));
            want.push((ctrl, file, expect));
        } else {
            skip(
                T,
                &format!("{} left out: this host has no {ctrl}/{file}", flag[0]),
            );
        }
    };
    flag(
        "memory",
        "memory.memsw.limit_in_bytes",
        &["--memory-swap", "200m"],
        (200 * MIB).to_string(),
    );
    flag(
        "memory",
        "memory.limit_in_bytes",
        &["--memory=150M"],
        (150 * MIB).to_string(),
    );
    flag(
        "memory",
        "memory.soft_limit_in_bytes",
        &["--memory-reservation", "8m"],
        (8 * MIB).to_string(),
    );
    flag(
        "memory",
        "memory.kmem.tcp.limit_in_bytes",
        &["--kernel-memory-tcp", "4m"],
        (4 * MIB).to_string(),
    );
    flag("cpu", "cpu.shares", &["--cpu-share", "1024"], "1024".into());
    flag(
        "cpu",
        "cpu.cfs_quota_us",
        &["--cpu-quota", "-1"],
        "-1".into(),
    );
    flag(
        "cpu",
        "cpu.cfs_period_us",
        &["--cpu-period=100000"],
        "100000".into(),
    );
    flag("cpu", "cpu.cfs_burst_us", &["--cpu-burst", "0"], "0".into());
    flag("cpu", "cpu.idle", &["--cpu-idle", "0"], "0".into());
    flag(
        "cpu",
        "cpu.rt_period_us",
        &["--cpu-rt-period", "400000"],
        "400000".into(),
    );
    flag(
        "cpu",
        "cpu.rt_runtime_us",
        &["--cpu-rt-runtime", "0"],
        "0".into(),
    );
    flag(
        "cpuset",
        "cpuset.cpus",
        &["--cpuset-cpus", &all_cpus],
        all_cpus.clone(),
    );
    flag(
        "cpuset",
        "cpuset.mems",
        &["--cpuset-mems", &h.mems[0].to_string()],
        h.mems[0].to_string(),
    );
    flag("pids", "pids.max", &["--pids-limit", "20"], "20".into());
    if let Some(file) = h.blkio_weight_file() {
        flag("blkio", file, &["--blkio-weight", "700"], "700".into());
    } else {
        skip(T, "--blkio-weight left out: no blkio weight file (no BFQ)");
    }
    args.push(id.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.carte(&args).assert_ok();
    for (ctrl, file, expect) in &want {
        assert_limit(&env, &id, ctrl, file, expect);
    }
    env.carte(&["update", "--pids-limit", "-1", &id])
        .assert_ok();
    assert_limit(&env, &id, "pids", "pids.max", "max");

    // state.json records the merged result.
    let r = recorded(&env, &id);
    assert_eq!(r["memory"]["limit"], 150 * MIB);
    if swap {
        assert_eq!(r["memory"]["swap"], 200 * MIB);
    }
    assert_eq!(r["cpu"]["shares"], 1024);
    assert_eq!(r["cpu"]["cpus"], all_cpus.as_str());
    assert_eq!(r["pids"]["limit"], -1);
    if h.blkio_weight_file().is_some() {
        assert_eq!(r["blockIO"]["weight"], 700);
    }
    // The device rules of the config may be sent again, unchanged.
    let devices = json!({"devices": b.config["linux"]["resources"]["devices"]});
    env.carte_with_input(&["update", "-r", "-", &id], devices.to_string().as_bytes())
        .assert_ok();
    finish(&env, &id);
}

#[test]
fn update_refuses_what_it_cannot_do() {
    if !v1_controllers(
        "cgroups::update_refuses_what_it_cannot_do",
        &["memory", "cpu"],
    ) {
        return;
    }
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
        .assert_fails_with(&["linux.resources.unified.memory.high", "v1 hierarchy"]);
    update(json!({"memory": {"swappiness": 101}}))
        .assert_fails_with(&["linux.resources.memory.swappiness", "above 100"]);
    update(json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}))
        .assert_fails_with(&["linux.resources.memory.limit", "current usage"]);
    update(json!({"cpu": {"shares": 1}}))
        .assert_fails_with(&["linux.resources.cpu.shares", "out of the kernel's range"]);
    // More realtime budget than the parent (the root, 950000 of 1000000
    // us) has to give: the kernel's refusal, named.
    if host().v1_file("cpu", "cpu.rt_runtime_us") {
        update(json!({"cpu": {"realtimeRuntime": 990000}}))
            .assert_fails_with(&["linux.resources.cpu.realtimeRuntime", "cpu.rt_runtime_us"]);
    } else {
        // A kernel without CONFIG_RT_GROUP_SCHED has no such file at all.
        update(json!({"cpu": {"realtimeRuntime": 990000}}))
            .assert_fails_with(&["linux.resources.cpu.realtimeRuntime"]);
    }
    update(json!({"memory": "lots"})).assert_fails_with(&["stdin", "memory"]);
    // A key is matched in any case, as Go's decoder does
    // (throttleReadIopsDevice is throttleReadIOPSDevice); one that is no
    // field is refused.
    update(json!({"blockIO": {"throttleReadOpsDevice": [{"major": 254, "minor": 0, "rate": 1}]}}))
        .assert_fails_with(&["unknown field blockIO.throttleReadOpsDevice"]);
    // Nothing of a refused update was applied or recorded.
    assert_eq!(
        host_file("memory", &id, "memory.limit_in_bytes"),
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
    if !v1_host("cgroups::fields_this_host_lacks_fail_create_cleanly") {
        return;
    }
    let env = TestEnv::new("cgnohost");
    let h = host();
    let mut cases = vec![
        (
            json!({"unified": {"pids.max": "10"}}),
            vec![
                "linux.resources.unified.pids.max",
                "pids is in a v1 hierarchy",
            ],
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}),
            vec!["linux.resources.hugepageLimits[3MB]"],
        ),
    ];
    if h.v1("rdma").is_none() {
        cases.push((
            json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}),
            vec!["linux.resources.rdma", "no rdma controller"],
        ));
    }
    if !h.v1_file("blkio", "blkio.leaf_weight") {
        cases.push((
            json!({"blockIO": {"leafWeight": 300}}),
            vec!["linux.resources.blockIO.leafWeight", "blkio.leaf_weight"],
        ));
    }
    let dev = h.block_device();
    match (h.blkio_weight_file(), dev) {
        (None, _) => {
            cases.push((
                json!({"blockIO": {"weight": 300}}),
                vec!["linux.resources.blockIO.weight", "no I/O weight file"],
            ));
            if let Some((maj, min)) = dev {
                cases.push((
                    json!({"blockIO": {"weightDevice": [{"major": maj, "minor": min, "weight": 200}]}}),
                    vec![
                        &*format!("linux.resources.blockIO.weightDevice[{maj}:{min}]").leak(),
                        "no I/O weight file",
                    ],
                ));
            }
        }
        // BFQ's per-device file takes only the devices BFQ schedules.
        (Some("blkio.bfq.weight"), Some((maj, min)))
            if !std::fs::read_to_string(format!("/sys/dev/block/{maj}:{min}/queue/scheduler"))
                .unwrap_or_default()
                .contains("[bfq]") =>
        {
            cases.push((
                json!({"blockIO": {"weightDevice": [{"major": maj, "minor": min, "weight": 200}]}}),
                vec![
                    &*format!("linux.resources.blockIO.weightDevice[{maj}:{min}]").leak(),
                    "does not use the BFQ",
                ],
            ));
        }
        _ => {}
    }
    if h.has_v1() && !h.swap_accounting() {
        cases.push((
            json!({"memory": {"limit": 64 * MIB, "swap": 96 * MIB}}),
            vec!["linux.resources.memory.swap", "does not account swap"],
        ));
    }
    if !h.v1_file("net_cls", "net_cls.classid") {
        cases.push((
            json!({"network": {"classID": 1048577}}),
            vec!["linux.resources.network.classID", "net_cls"],
        ));
    }
    if h.v1("hugetlb").is_none() && !h.unified_controllers.contains("hugetlb") {
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
    if !v1_controllers(
        "cgroups::a_memory_limit_stops_an_allocation_and_events_reports_the_oom",
        &["memory"],
    ) {
        return;
    }
    let env = TestEnv::new("cgoom");
    // swap = limit: no swapping around the limit (the host may have
    // swap); without swap accounting, a swappiness of 0 does the same.
    let memory = if host().swap_accounting() {
        json!({"limit": 16 * MIB, "swap": 16 * MIB})
    } else {
        json!({"limit": 16 * MIB, "swappiness": 0})
    };
    let b = bundle(
        &env,
        &["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"],
        json!({ "memory": memory }),
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
    let oom = host_file("memory", &id, "memory.oom_control");
    assert!(
        oom.contains("oom_kill 1") || oom.contains("oom_kill 2"),
        "{oom}"
    );
    finish(&env, &id);
}

#[test]
fn a_pids_limit_stops_a_fork_bomb() {
    if !v1_controllers("cgroups::a_pids_limit_stops_a_fork_bomb", &["pids"]) {
        return;
    }
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
    if !v1_controllers(
        "cgroups::events_stats_prints_runc_shaped_json",
        &["memory", "pids", "cpu", "cpuacct"],
    ) {
        return;
    }
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
    if !v1_controllers(
        "cgroups::kernel_memory_is_a_warning_as_in_runc",
        &["memory"],
    ) {
        return;
    }
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
    if !v1_controllers(
        "cgroups::default_device_rules_keep_their_wildcards",
        &["devices"],
    ) {
        return;
    }
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
    let list = host_file("devices", &id, "devices.list");
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
        let list = host_file("devices", &id, "devices.list");
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

/// A hybrid host (v1 controllers and a cgroup2 hierarchy beside them): the
/// container joins the cgroup2 hierarchy too, as runc does, and what only
/// that hierarchy holds lands there (hugepageLimits where hugetlb is in
/// cgroup2, `unified` keys of its controllers); delete removes it.
#[test]
fn a_hybrid_host_puts_the_container_in_its_cgroup2_hierarchy_too() {
    const T: &str = "cgroups::a_hybrid_host_puts_the_container_in_its_cgroup2_hierarchy_too";
    let h = host();
    let Some(unified) = h.unified.clone().filter(|_| h.has_v1()) else {
        skip(T, "not a hybrid host");
        return;
    };
    let env = TestEnv::new("cghybrid");
    let mut resources = json!({"pids": {"limit": 20}});
    let cgroup2_hugetlb = h.unified_controllers.contains("hugetlb") && h.v1("hugetlb").is_none();
    // Limits are whole pages: 2 MB pages, where the host has them.
    let size = h.hugepage_sizes.iter().find(|s| *s == "2MB").cloned();
    match (&size, cgroup2_hugetlb) {
        (Some(size), true) => {
            resources["hugepageLimits"] = json!([{"pageSize": size, "limit": 4 * MIB}]);
            resources["unified"] =
                json!({format!("hugetlb.{size}.rsvd.max"): (8 * MIB).to_string()});
        }
        _ => skip(
            T,
            "hugetlb is not (only) in this host's cgroup2 hierarchy, or no huge pages",
        ),
    }
    let b = bundle(&env, &["sleep", "1000"], resources);
    let id = env.id("c");
    run_detached(&env, &b, &id);
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgroup.lines().any(|l| l == format!("0::/{id}")), "{cgroup}");
    let dir = unified.join(&id);
    if let (Some(size), true) = (&size, cgroup2_hugetlb) {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read(&format!("hugetlb.{size}.max")), (4 * MIB).to_string());
        assert_eq!(
            read(&format!("hugetlb.{size}.rsvd.max")),
            (8 * MIB).to_string()
        );
        // update lands there too.
        env.carte_with_input(
            &["update", "-r", "-", &id],
            json!({"hugepageLimits": [{"pageSize": size, "limit": 2 * MIB}]})
                .to_string()
                .as_bytes(),
        )
        .assert_ok();
        assert_eq!(read(&format!("hugetlb.{size}.max")), (2 * MIB).to_string());
    }
    finish(&env, &id);
    assert!(!dir.exists(), "{} left", dir.display());
}
