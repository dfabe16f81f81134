//! process.scheduler, process.ioPriority and linux.personality, checked
//! from inside the container for `run` and `exec`: the policy and priority
//! in /proc/self/sched, the I/O class through ionice, the machine through
//! uname.

mod common;

use common::*;
use serde_json::{json, Value};

/// A real-time policy needs a real-time budget in the container's cgroup
/// where the kernel has one per cgroup (CONFIG_RT_GROUP_SCHED: v1's
/// cpu.rt_runtime_us); a new cgroup has none.
fn rt_budget(b: &mut Bundle) {
    if host().v1_file("cpu", "cpu.rt_runtime_us") {
        b.config["linux"]["resources"]["cpu"] =
            json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    }
}

/// `field : value` lines of /proc/<pid>/sched, as a lookup.
fn sched_fields(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn every_scheduler_policy_is_seen_inside() {
    let env = TestEnv::new("sched-pol");
    // (scheduler, policy number, kernel prio: 120+nice, or 99-priority)
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"policy": "SCHED_OTHER", "nice": 3}), "0", "123"),
        (json!({"policy": "SCHED_BATCH", "nice": 5}), "3", "125"),
        (json!({"policy": "SCHED_IDLE"}), "5", "120"),
        (json!({"policy": "SCHED_FIFO", "priority": 10}), "1", "89"),
        (json!({"policy": "SCHED_RR", "priority": 20}), "2", "79"),
        (
            json!({"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 10000000, "period": 10000000}),
            "6",
            "-1",
        ),
    ];
    for (i, (scheduler, policy, prio)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{i}"));
        // No fork: a SCHED_DEADLINE task may not fork without reset-on-fork.
        b.set_args(&["cat", "/proc/self/sched"]);
        b.config["process"]["scheduler"] = scheduler.clone();
        if policy == "1" || policy == "2" {
            rt_budget(&mut b);
        }
        let id = env.id(&format!("c{i}"));
        let out = env.run(&b, &id);
        out.assert_ok();
        let f = sched_fields(&out.stdout);
        assert_eq!(f["policy"], policy, "{scheduler}: {}", out.stdout);
        assert_eq!(f["prio"], prio, "{scheduler}: {}", out.stdout);
        env.assert_no_leaks(&id);
    }
}

#[test]
fn reset_on_fork_gives_children_the_default_policy() {
    let env = TestEnv::new("sched-rof");
    let mut b = env.bundle("b");
    b.config["process"]["scheduler"] =
        json!({"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    rt_budget(&mut b);
    // The subshell is a forked child; busybox runs grep inside it.
    let out = env.sh(
        &mut b,
        "grep -E '^policy' /proc/1/sched; (grep -E '^policy' /proc/self/sched); true",
    );
    let policies: Vec<&str> = out.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(policies, ["1", "0"], "{out}");
}

#[test]
fn scheduler_io_priority_and_personality_for_run_and_exec() {
    let env = TestEnv::new("sched-exec");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    env.wait_status(&id, "running");
    // The container's init: the config's values.
    let out = env.carte(&[
        "exec",
        &id,
        "sh",
        "-c",
        "grep -E '^(policy|prio) ' /proc/1/sched; ionice -p 1",
    ]);
    out.assert_ok();
    let f = sched_fields(&out.stdout);
    assert_eq!(f["policy"], "3", "{}", out.stdout);
    assert_eq!(f["prio"], "127", "{}", out.stdout);
    assert!(out.stdout.contains("best-effort: prio 6"), "{}", out.stdout);
    // An exec'd process: its own process.json's scheduler and I/O
    // priority, and the container's personality.
    let process = json!({"args": ["sh", "-c", "grep -E '^(policy|prio) ' /proc/self/sched; ionice -p $$; uname -m"],
        "cwd": "/", "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0},
        "scheduler": {"policy": "SCHED_IDLE"},
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}});
    let file = env.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = env.carte(&["exec", "--process", file.to_str().unwrap(), &id]);
    out.assert_ok();
    let f = sched_fields(&out.stdout);
    assert_eq!(f["policy"], "5", "{}", out.stdout);
    assert!(out.stdout.contains("idle"), "{}", out.stdout);
    assert!(out.stdout.contains("i686"), "{}", out.stdout);
    // A plain exec: the default scheduler, the personality still.
    let out = env.carte(&["exec", &id, "uname", "-m"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "i686");
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

#[test]
fn personality_linux32_and_its_flags_warned_as_runc() {
    let env = TestEnv::new("sched-pers");
    let mut b = env.bundle("b");
    b.set_args(&["uname", "-m"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["SOMEFLAG"]});
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "i686");
    assert!(
        out.stderr.contains("linux.personality.flags: ignored"),
        "{}",
        out.stderr
    );
    b.config["linux"]["personality"] = json!({"domain": "LINUX"});
    let id = env.id("d");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "x86_64");
    env.assert_no_leaks(&id);
}

#[test]
fn bad_scheduling_values_fail_create_cleanly() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("sched-bad");
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "scheduler",
            json!({"policy": "SCHED_OTHER", "nice": 30}),
            &["config.json", "process.scheduler.nice", "out of range"],
        ),
        (
            "scheduler",
            json!({"policy": "SCHED_BATCH", "priority": 3}),
            &["process.scheduler.priority", "SCHED_FIFO or SCHED_RR"],
        ),
        (
            "scheduler",
            json!({"policy": "SCHED_FIFO", "flags": ["SCHED_RESET_ON_FORK"]}),
            &["process.scheduler.flags", "SCHED_RESET_ON_FORK"],
        ),
        (
            "ioPriority",
            json!({"class": "IOPRIO_CLASS_RT", "priority": 9}),
            &["process.ioPriority.priority", "0 to 7"],
        ),
    ];
    for (i, (field, value, needles)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{i}"));
        b.config["process"][field] = value;
        b.write();
        let id = env.id(&format!("c{i}"));
        env.carte(&["create", "--bundle", b.path(), &id])
            .assert_fails_with(needles);
        env.assert_no_leaks(&id);
    }
    // A real-time policy without a real-time budget, where the kernel
    // keeps one per cgroup: the kernel's refusal, with the way out.
    if host().v1_file("cpu", "cpu.rt_runtime_us") {
        let mut b = env.bundle("rt");
        b.config["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 5});
        let id = env.id("rt");
        env.run(&b, &id).assert_fails_with(&[
            "process.scheduler",
            "operation not permitted",
            "realtimeRuntime",
        ]);
        env.assert_no_leaks(&id);
    } else {
        skip(
            "sched::bad_scheduling_values_fail_create_cleanly",
            "no per-cgroup real-time budget on this kernel (no cpu.rt_runtime_us)",
        );
    }
}

/// The policy numa_maps shows for the first mapping of a process (the
/// task's policy, which every mapping without its own falls back to).
fn numa_policy(out: &str) -> String {
    out.lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_memory_policy_is_seen_inside() {
    let env = TestEnv::new("sched-mpol");
    let node = host().mems[0];
    let n = node.to_string();
    // (memoryPolicy, what /proc/self/numa_maps shows)
    let cases: Vec<(Value, String)> = vec![
        (json!({"mode": "MPOL_DEFAULT"}), "default".into()),
        (
            json!({"mode": "MPOL_BIND", "nodes": n}),
            format!("bind:{node}"),
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": n}),
            format!("interleave:{node}"),
        ),
        (
            json!({"mode": "MPOL_PREFERRED", "nodes": n}),
            format!("prefer:{node}"),
        ),
        (json!({"mode": "MPOL_PREFERRED"}), "local".into()),
        (json!({"mode": "MPOL_LOCAL"}), "local".into()),
        (
            json!({"mode": "MPOL_BIND", "nodes": n, "flags": ["MPOL_F_STATIC_NODES"]}),
            format!("bind=static:{node}"),
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": n, "flags": ["MPOL_F_RELATIVE_NODES"]}),
            format!("interleave=relative:{node}"),
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": n, "flags": ["MPOL_F_NUMA_BALANCING"]}),
            format!("bind=balancing:{node}"),
        ),
    ];
    for (i, (policy, want)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{i}"));
        b.set_args(&["cat", "/proc/self/numa_maps"]);
        b.config["linux"]["memoryPolicy"] = policy.clone();
        let id = env.id(&format!("c{i}"));
        let out = env.run(&b, &id);
        out.assert_ok();
        assert_eq!(numa_policy(&out.stdout), want, "{policy}");
        env.assert_no_leaks(&id);
    }
    // Newer modes, where the kernel has them (6.4 and 6.9).
    for (mode, shown) in [
        ("MPOL_PREFERRED_MANY", "prefer"),
        ("MPOL_WEIGHTED_INTERLEAVE", "weighted"),
    ] {
        let mut b = env.bundle(mode);
        b.set_args(&["cat", "/proc/self/numa_maps"]);
        b.config["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": n});
        let id = env.id(&mode.to_lowercase().replace('_', "-"));
        let out = env.run(&b, &id);
        if out.ok() {
            assert!(
                numa_policy(&out.stdout).starts_with(shown),
                "{mode}: {}",
                out.stdout
            );
        } else {
            out.assert_fails_with(&["linux.memoryPolicy", mode, "invalid argument"]);
            skip(
                "sched::every_memory_policy_is_seen_inside",
                &format!("{mode}: this kernel does not have it"),
            );
        }
        env.assert_no_leaks(&id);
    }
}

#[test]
fn memory_policy_reaches_exec_and_bad_ones_fail_cleanly() {
    let env = TestEnv::new("sched-mpol2");
    let node = host().mems[0];
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": node.to_string()});
    b.write();
    let id = env.id("c");
    env.carte(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let out = env.carte(&["exec", &id, "cat", "/proc/self/numa_maps"]);
    out.assert_ok();
    assert_eq!(numa_policy(&out.stdout), format!("bind:{node}"));
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
    if is_runc() {
        return;
    }
    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"mode": "MPOL_BIND"}),
            &[
                "config.json",
                "linux.memoryPolicy.nodes",
                "at least one node",
            ],
        ),
        (
            json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            &["linux.memoryPolicy.nodes", "takes no nodes"],
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "1-0"}),
            &["linux.memoryPolicy.nodes", "backwards"],
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
            &["linux.memoryPolicy.flags", "exclude each other"],
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}),
            &["linux.memoryPolicy.flags", "MPOL_F_NOPE"],
        ),
        // A node the host does not have: the kernel's refusal, named.
        (
            json!({"mode": "MPOL_BIND", "nodes": "1000"}),
            &["linux.memoryPolicy", "set_mempolicy", "invalid argument"],
        ),
    ];
    for (i, (policy, needles)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("bad{i}"));
        b.config["linux"]["memoryPolicy"] = policy;
        let id = env.id(&format!("bad{i}"));
        env.run(&b, &id).assert_fails_with(needles);
        env.assert_no_leaks(&id);
    }
}

/// Cpus_allowed_list of /proc/<pid>/status.
fn allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
}

/// carte run with an affinity of one CPU (as under a systemd unit's
/// CPUAffinity): the container's processes get every CPU of their cpuset
/// all the same, init and exec'd processes (runc 1.3.1's reset); an exec
/// with execCPUAffinity gets `final`, or keeps `initial` without one.
#[test]
fn cpu_affinity_is_reset_and_exec_cpu_affinity_applies() {
    let cpus = &host().cpus;
    if cpus.len() < 2 {
        skip(
            "sched::cpu_affinity_is_reset_and_exec_cpu_affinity_applies",
            "one CPU: no affinity to tell apart",
        );
        return;
    }
    let all = format_list(cpus);
    let (first, last) = (cpus[0].to_string(), cpus[cpus.len() - 1].to_string());
    let env = TestEnv::new("sched-aff");
    let mut b = env.bundle("b");
    b.set_args(&["sleep", "1000"]);
    b.write();
    let id = env.id("c");
    let pinned = |args: &[&str]| {
        let mut cmd = std::process::Command::new("taskset");
        cmd.args(["-c", &first]).arg(carte_bin());
        cmd.arg("--root").arg(&env.root).args(args);
        env.carte_cmd(cmd)
    };
    pinned(&["run", "-d", "--bundle", b.path(), &id]).assert_ok();
    let out = pinned(&["exec", &id, "cat", "/proc/1/status", "/proc/self/status"]);
    out.assert_ok();
    let (init, exec) = out.stdout.split_at(out.stdout.rfind("Name:").unwrap());
    assert_eq!(allowed(init), all, "init");
    assert_eq!(allowed(exec), all, "exec");
    // execCPUAffinity: final wins; initial alone is kept (config.md:
    // "SHOULD NOT change process' CPU affinity").
    for (affinity, want) in [
        (json!({"initial": first, "final": last}), last.clone()),
        (json!({"final": last}), last.clone()),
        (json!({"initial": last}), last.clone()),
    ] {
        let process = json!({"args": ["cat", "/proc/self/status"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}, "execCPUAffinity": affinity});
        let file = env.dir.join("p.json");
        std::fs::write(&file, process.to_string()).unwrap();
        let out = env.carte(&["exec", "--process", file.to_str().unwrap(), &id]);
        out.assert_ok();
        assert_eq!(allowed(&out.stdout), want, "{affinity}");
    }
    env.carte(&["delete", "--force", &id]).assert_ok();
    env.assert_no_leaks(&id);
}

/// `features` claims no memory policy mode that a container cannot get.
#[test]
fn features_lists_the_memory_policies_that_work() {
    if is_runc() {
        return;
    }
    let env = TestEnv::new("sched-feat");
    let out = env.carte(&["features"]);
    out.assert_ok();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let modes = doc["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
    assert!(modes.iter().any(|m| m == "MPOL_BIND"), "{doc}");
    let node = host().mems[0].to_string();
    for (i, mode) in modes.iter().enumerate() {
        let mode = mode.as_str().unwrap();
        let mut b = env.bundle(&format!("b{i}"));
        b.set_args(&["true"]);
        b.config["linux"]["memoryPolicy"] = match mode {
            "MPOL_DEFAULT" | "MPOL_LOCAL" => json!({"mode": mode}),
            _ => json!({"mode": mode, "nodes": node}),
        };
        let id = env.id(&format!("c{i}"));
        env.run(&b, &id).assert_ok();
        env.assert_no_leaks(&id);
    }
    assert_eq!(doc["linux"]["netDevices"]["enabled"], true);
}
