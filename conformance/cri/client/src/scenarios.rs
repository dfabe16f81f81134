//! The scenarios, in the order a node sees them: pods and their
//! containers, exec, resources, stats, stop, security contexts, restart,
//! and the teardown that must leave nothing behind.

use std::time::{Duration, Instant};

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;

use crate::cri::{self, sh, Rt};
use crate::host;
use crate::Args;

/// The kubelet's default masked and read-only paths (ProcMount Default).
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
const SLEEP: &[&str] = &["sleep", "100000"];
const MIB: i64 = 1024 * 1024;

struct Pod {
    id: String,
    config: PodSandboxConfig,
    containers: Vec<String>,
    netns: Option<String>,
    ip: String,
}

struct Suite {
    rt: Rt,
    a: Args,
    failed: u32,
    pods: Vec<Pod>,
}

pub async fn run(rt: Rt, a: Args) -> u32 {
    let mut s = Suite {
        rt,
        a,
        failed: 0,
        pods: Vec::new(),
    };
    s.all().await;
    s.failed
}

/// Runs a check: `$s.$f(args).await` gives Result<(), String>.
macro_rules! check {
    ($s:ident, $name:expr, $e:expr) => {{
        let r = $e;
        $s.report($name, r);
    }};
}

impl Suite {
    fn report(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => println!("ok - {name}"),
            Err(e) => {
                self.failed += 1;
                println!("not ok - {name}: {e}");
            }
        }
    }

    async fn all(&mut self) {
        check!(
            self,
            "Version: containerd serves CRI runtime.v1",
            self.version().await
        );
        check!(
            self,
            "Status: RuntimeReady and NetworkReady",
            self.status().await
        );
        let a = match self.pod_a().await {
            Ok(p) => p,
            Err(e) => return self.report("RunPodSandbox (pod a) and its containers", Err(e)),
        };
        self.pods.push(a);
        check!(
            self,
            "RunPodSandbox on the carte handler: carte runs the sandbox",
            self.handler_is_carte(0).await
        );
        check!(
            self,
            "cgroupfs: the pod's containers are under its cgroup_parent",
            self.cgroup_placement()
        );
        let (a1, a2) = (
            self.pods[0].containers[0].clone(),
            self.pods[0].containers[1].clone(),
        );
        check!(
            self,
            "one pod, two containers: one network (nc over localhost)",
            self.share_net(&a1, &a2).await
        );
        check!(
            self,
            "one pod, two containers: one IPC namespace and /dev/shm",
            self.share_ipc(&a1, &a2).await
        );
        check!(
            self,
            "one pod, two containers: one UTS namespace, the pod's hostname",
            self.share_uts(&a1, &a2).await
        );
        check!(
            self,
            "shareProcessNamespace (pid=POD): a2 sees a1's processes, pause is PID 1",
            self.share_pid(&a2).await
        );
        check!(
            self,
            "the pod's CNI address is on eth0 inside",
            self.pod_ip(&a1).await
        );
        check!(
            self,
            "pod sysctls (net and ipc) are seen inside",
            self.sysctls(&a1).await
        );

        match self.pod_b().await {
            Ok(b) => {
                self.pods.push(b);
                check!(
                    self,
                    "two pods reach each other over the bridge",
                    self.across_pods(&a2).await
                );
                check!(
                    self,
                    "pid=CONTAINER: a container sees only its own processes",
                    self.own_pids().await
                );
                check!(
                    self,
                    "tty: true: the process has a terminal, its output in the CRI log",
                    self.tty().await
                );
                check!(
                    self,
                    "a container past its memory limit is OOMKilled",
                    self.oom().await
                );
            }
            Err(e) => self.report("RunPodSandbox (pod b) and its container", Err(e)),
        }
        match self.pod_c().await {
            Ok(c) => {
                self.pods.push(c);
                let c1 = self.pods.last().unwrap().containers[0].clone();
                check!(
                    self,
                    "hostNetwork pod sees the host's interfaces",
                    self.host_network(&c1).await
                );
                check!(
                    self,
                    "privileged: the host's capabilities, /sys writable, masks off",
                    self.privileged(&c1).await
                );
            }
            Err(e) => self.report("RunPodSandbox (pod c, hostNetwork, privileged)", Err(e)),
        }

        check!(
            self,
            "ExecSync passes the exit code",
            self.exec_code(&a2).await
        );
        check!(
            self,
            "ExecSync returns stdout and stderr apart",
            self.exec_output(&a2).await
        );
        check!(
            self,
            "ExecSync timeout ends the command",
            self.exec_timeout(&a2).await
        );

        match self.resources_container().await {
            Ok(res) => {
                check!(
                    self,
                    "resources at create seen inside (memory, cpu quota, shares)",
                    self.limits(&res, 64 * MIB, 20000, 256).await
                );
                check!(
                    self,
                    "UpdateContainerResources: new memory and CPU seen inside",
                    self.update(&res).await
                );
                check!(
                    self,
                    "ContainerStats reports CPU and memory",
                    self.stats(&res).await
                );
                check!(
                    self,
                    "ListContainerStats lists the pod's running containers",
                    self.list_stats(&[&a1, &a2, &res]).await
                );
            }
            Err(e) => self.report("a container with resources", Err(e)),
        }

        check!(
            self,
            "StopContainer: SIGTERM ignored, SIGKILL when the 2 s grace period ends",
            self.stop_grace().await
        );
        check!(
            self,
            "StopContainer: a container that handles SIGTERM exits at once",
            self.stop_polite().await
        );

        self.security().await;
        self.restart().await;
        self.teardown().await;
    }

    fn pod(&self, i: usize) -> &Pod {
        &self.pods[i]
    }

    async fn version(&mut self) -> Result<(), String> {
        let v = self
            .rt
            .version(VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner();
        let got = format!(
            "{} {} (CRI {})",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        );
        println!("# {got}");
        (v.runtime_name == "containerd" && v.runtime_api_version.starts_with("v1"))
            .then_some(())
            .ok_or(got)
    }

    async fn status(&mut self) -> Result<(), String> {
        let s = self
            .rt
            .status(StatusRequest { verbose: false })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner()
            .status
            .ok_or("no status")?;
        let ready = |t: &str| s.conditions.iter().any(|c| c.r#type == t && c.status);
        (ready("RuntimeReady") && ready("NetworkReady"))
            .then_some(())
            .ok_or_else(|| format!("{:?}", s.conditions))
    }

    /// Runs a pod and starts its containers; records everything for teardown.
    async fn start_pod(
        &mut self,
        spec: cri::PodSpec<'_>,
        containers: Vec<ContainerConfig>,
    ) -> Result<Pod, String> {
        let config = cri::pod_config(&spec, &self.a.logs, &self.a.cgroup_parent);
        let id = cri::run_pod(&mut self.rt, &config).await?;
        let mut pod = Pod {
            id,
            config,
            containers: Vec::new(),
            netns: None,
            ip: String::new(),
        };
        let (status, info) = cri::pod_info(&mut self.rt, &pod.id).await?;
        pod.ip = status.network.map(|n| n.ip).unwrap_or_default();
        pod.netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .and_then(|v| v.iter().find(|n| n["type"] == "network"))
            .and_then(|n| n["path"].as_str())
            .map(str::to_string);
        for c in containers {
            match cri::start_container(&mut self.rt, &pod.id, &pod.config, c).await {
                Ok(cid) => pod.containers.push(cid),
                Err(e) => {
                    // Still torn down with the rest.
                    self.pods.push(pod);
                    return Err(e);
                }
            }
        }
        Ok(pod)
    }

    fn container(&self, name: &str, cmd: &[&str], pod: &PodSandboxConfig) -> ContainerConfig {
        cri::container_config(name, 0, &self.a.image, cmd, pod)
    }

    async fn pod_a(&mut self) -> Result<Pod, String> {
        use NamespaceMode::Pod as P;
        let spec = cri::PodSpec {
            name: "cri-pod-a",
            ns: cri::ns(P, P, P),
            privileged: false,
            sysctls: &[
                ("net.ipv4.ip_unprivileged_port_start", "222"),
                ("kernel.shm_rmid_forced", "1"),
            ],
        };
        let pod = cri::pod_config(&spec, &self.a.logs, &self.a.cgroup_parent);
        let a1 = self.container(
            "a1",
            &[
                "sh",
                "-c",
                "(while :; do echo from-a1 | nc -l -p 8081; done) & echo shared > /dev/shm/a1; exec sleep 31337",
            ],
            &pod,
        );
        let a2 = self.container("a2", SLEEP, &pod);
        self.start_pod(spec, vec![a1, a2]).await
    }

    async fn pod_b(&mut self) -> Result<Pod, String> {
        use NamespaceMode::{Container as C, Pod as P};
        let spec = cri::PodSpec {
            name: "cri-pod-b",
            ns: cri::ns(P, C, P),
            privileged: false,
            sysctls: &[],
        };
        let pod = cri::pod_config(&spec, &self.a.logs, &self.a.cgroup_parent);
        let b1 = self.container(
            "b1",
            &["sh", "-c", "while :; do echo from-b1 | nc -l -p 8082; done"],
            &pod,
        );
        // tty: true, as `kubectl run -t`: the shim hands carte a console socket.
        let mut tty = self.container("tty", &["sh", "-c", "tty; exec sleep 100000"], &pod);
        tty.tty = true;
        self.start_pod(spec, vec![b1, tty]).await
    }

    async fn pod_c(&mut self) -> Result<Pod, String> {
        use NamespaceMode::{Container as C, Node as N, Pod as P};
        let spec = cri::PodSpec {
            name: "cri-pod-c",
            ns: cri::ns(N, C, P),
            privileged: true,
            sysctls: &[],
        };
        let pod = cri::pod_config(&spec, &self.a.logs, &self.a.cgroup_parent);
        let c1 = self.container("c1", SLEEP, &pod);
        self.start_pod(spec, vec![c1]).await
    }

    async fn handler_is_carte(&mut self, i: usize) -> Result<(), String> {
        let id = self.pod(i).id.clone();
        let (_, info) = cri::pod_info(&mut self.rt, &id).await?;
        if info["runtimeHandler"] != "carte" {
            return Err(format!("runtimeHandler {}", info["runtimeHandler"]));
        }
        let opts = info["runtimeOptions"].to_string();
        if !opts.contains(&self.a.carte) {
            return Err(format!("runtimeOptions {opts}"));
        }
        for cid in std::iter::once(&id).chain(&self.pod(i).containers) {
            let st = host::carte_status(&self.a.carte, &self.a.carte_root, cid)?;
            if st != "running" {
                return Err(format!("carte state {cid}: {st}"));
            }
        }
        Ok(())
    }

    fn cgroup_placement(&self) -> Result<(), String> {
        let pod = self.pod(0);
        let dirs = host::cgroup_dirs(&format!("{}/cri-pod-a", self.a.cgroup_parent));
        let missing: Vec<&String> = std::iter::once(&pod.id)
            .chain(&pod.containers)
            .filter(|id| {
                !dirs
                    .iter()
                    .any(|d| d.ends_with(&format!("memory{}/cri-pod-a/{id}", self.a.cgroup_parent)))
            })
            .collect();
        missing
            .is_empty()
            .then_some(())
            .ok_or(format!("no memory cgroup for {missing:?}"))
    }

    async fn ns_link(&mut self, id: &str, ns: &str) -> Result<String, String> {
        sh(&mut self.rt, id, &format!("readlink /proc/self/ns/{ns}")).await
    }

    async fn same_ns(&mut self, a: &str, b: &str, ns: &str) -> Result<(), String> {
        let (x, y) = (self.ns_link(a, ns).await?, self.ns_link(b, ns).await?);
        (x == y && x.starts_with(ns))
            .then_some(())
            .ok_or(format!("{ns}: {x} vs {y}"))
    }

    async fn connect(&mut self, from: &str, host: &str, port: u16) -> Result<String, String> {
        let script = format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do o=$(nc -w 1 {host} {port} </dev/null 2>&1) && [ -n \"$o\" ] && break; sleep 0.1; done; echo \"$o\""
        );
        sh(&mut self.rt, from, &script).await
    }

    async fn share_net(&mut self, a1: &str, a2: &str) -> Result<(), String> {
        self.same_ns(a1, a2, "net").await?;
        let got = self.connect(a2, "127.0.0.1", 8081).await?;
        got.contains("from-a1").then_some(()).ok_or(got)
    }

    async fn share_ipc(&mut self, a1: &str, a2: &str) -> Result<(), String> {
        self.same_ns(a1, a2, "ipc").await?;
        let got = sh(&mut self.rt, a2, "cat /dev/shm/a1").await?;
        (got == "shared").then_some(()).ok_or(got)
    }

    async fn share_uts(&mut self, a1: &str, a2: &str) -> Result<(), String> {
        self.same_ns(a1, a2, "uts").await?;
        let h1 = sh(&mut self.rt, a1, "hostname").await?;
        let h2 = sh(&mut self.rt, a2, "hostname").await?;
        (h1 == "cri-pod-a" && h2 == h1)
            .then_some(())
            .ok_or(format!("{h1} / {h2}"))
    }

    async fn share_pid(&mut self, a2: &str) -> Result<(), String> {
        let ps = sh(&mut self.rt, a2, "cat /proc/1/cmdline; echo; ps -o args").await?;
        (ps.starts_with("/pause") && ps.contains("sleep 31337"))
            .then_some(())
            .ok_or(ps)
    }

    async fn pod_ip(&mut self, a1: &str) -> Result<(), String> {
        let ip = self.pod(0).ip.clone();
        let got = sh(&mut self.rt, a1, "ip -4 -o addr show eth0").await?;
        (!ip.is_empty() && got.contains(&format!("inet {ip}/")))
            .then_some(())
            .ok_or(format!("pod ip {ip:?}, eth0: {got}"))
    }

    async fn sysctls(&mut self, a1: &str) -> Result<(), String> {
        let got = sh(
            &mut self.rt,
            a1,
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced",
        )
        .await?;
        (got == "222\n1").then_some(()).ok_or(got)
    }

    async fn across_pods(&mut self, a2: &str) -> Result<(), String> {
        let (ip_a, ip_b) = (self.pod(0).ip.clone(), self.pod(1).ip.clone());
        let b1 = self.pod(1).containers[0].clone();
        let there = self.connect(a2, &ip_b, 8082).await?;
        let back = self.connect(&b1, &ip_a, 8081).await?;
        (there.contains("from-b1") && back.contains("from-a1"))
            .then_some(())
            .ok_or(format!("a->b {ip_b}: {there}; b->a {ip_a}: {back}"))
    }

    async fn own_pids(&mut self) -> Result<(), String> {
        let b1 = self.pod(1).containers[0].clone();
        let ps = sh(
            &mut self.rt,
            &b1,
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o args",
        )
        .await?;
        (ps.starts_with("sh -c while") && !ps.contains("pause") && !ps.contains("31337"))
            .then_some(())
            .ok_or(ps)
    }

    async fn tty(&mut self) -> Result<(), String> {
        let id = self.pod(1).containers[1].clone();
        let fd0 = sh(&mut self.rt, &id, "readlink /proc/1/fd/0").await?;
        let log = format!("{}/cri-pod-b/tty/0.log", self.a.logs);
        let mut text = String::new();
        for _ in 0..40 {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(" stdout ") && text.contains("/dev/pts/") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (fd0.starts_with("/dev/pts/") && text.contains("/dev/pts/"))
            .then_some(())
            .ok_or(format!("fd 0 {fd0:?}, log {text:?}"))
    }

    async fn oom(&mut self) -> Result<(), String> {
        let (pod_id, config) = (self.pod(1).id.clone(), self.pod(1).config.clone());
        // tail keeps a line that never ends: it grows until the limit.
        let mut c = self.container(
            "oom",
            &["sh", "-c", "head -c 200m /dev/zero | tail"],
            &config,
        );
        c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 * MIB,
            ..Default::default()
        });
        let id = cri::start_container(&mut self.rt, &pod_id, &config, c).await?;
        self.pods[1].containers.push(id.clone());
        let s = cri::wait_state(&mut self.rt, &id, ContainerState::ContainerExited, 20).await?;
        (s.reason == "OOMKilled")
            .then_some(())
            .ok_or(format!("reason {:?}, exit {}", s.reason, s.exit_code))
    }

    async fn host_network(&mut self, c1: &str) -> Result<(), String> {
        let inside = host::interfaces(&sh(&mut self.rt, c1, "cat /proc/net/dev").await?);
        let mut want = vec![self.a.bridge.clone(), "lo".to_string()];
        want.extend(host::default_route_interface());
        let missing: Vec<_> = want.iter().filter(|w| !inside.contains(w)).collect();
        missing
            .is_empty()
            .then_some(())
            .ok_or(format!("missing {missing:?} in {inside:?}"))
    }

    async fn privileged(&mut self, c1: &str) -> Result<(), String> {
        let ours = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let want = host::status_field(&ours, "CapEff");
        let theirs = sh(&mut self.rt, c1, "cat /proc/self/status").await?;
        let got = host::status_field(&theirs, "CapEff");
        if got != want {
            return Err(format!("CapEff {got:?}, host {want:?}"));
        }
        let sys = sh(
            &mut self.rt,
            c1,
            &format!(
                "exec 2>&1; grep ' /sys sysfs ' /proc/mounts; head -c 1 < {} | wc -c",
                host::masked_probe()
            ),
        )
        .await?;
        (sys.contains(" rw,") && !sys.ends_with("\n0"))
            .then_some(())
            .ok_or(sys)
    }

    async fn exec_code(&mut self, id: &str) -> Result<(), String> {
        let e = cri::exec(&mut self.rt, id, &["sh", "-c", "exit 7"], 10).await?;
        (e.code == 7)
            .then_some(())
            .ok_or(format!("exit {}", e.code))
    }

    async fn exec_output(&mut self, id: &str) -> Result<(), String> {
        let e = cri::exec(
            &mut self.rt,
            id,
            &["sh", "-c", "echo out; echo err >&2; exit 0"],
            10,
        )
        .await?;
        (e.stdout == "out\n" && e.stderr == "err\n" && e.code == 0)
            .then_some(())
            .ok_or(format!(
                "stdout {:?} stderr {:?} exit {}",
                e.stdout, e.stderr, e.code
            ))
    }

    async fn exec_timeout(&mut self, id: &str) -> Result<(), String> {
        let t = Instant::now();
        let r = cri::exec(&mut self.rt, id, &["sleep", "42"], 1).await;
        let took = t.elapsed();
        match r {
            Err(e) if e.contains("timeout") && took < Duration::from_secs(8) => {}
            Err(e) => return Err(format!("after {took:?}: {e}")),
            Ok(e) => return Err(format!("no timeout after {took:?}, exit {}", e.code)),
        }
        // The timed-out command is gone (the shim kills it).
        for _ in 0..40 {
            let ps = sh(&mut self.rt, id, "ps -o args").await?;
            if !ps.contains("sleep 42") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("sleep 42 still runs after the timeout".into())
    }

    async fn resources_container(&mut self) -> Result<String, String> {
        let mut c = self.container("res", SLEEP, &self.pod(0).config.clone());
        c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 20_000,
            cpu_shares: 256,
            memory_limit_in_bytes: 64 * MIB,
            ..Default::default()
        });
        let (pod_id, config) = (self.pod(0).id.clone(), self.pod(0).config.clone());
        let id = cri::start_container(&mut self.rt, &pod_id, &config, c).await?;
        self.pods[0].containers.push(id.clone());
        Ok(id)
    }

    /// The limits as the container reads them from its own cgroup mount.
    async fn limits(&mut self, id: &str, mem: i64, quota: i64, shares: i64) -> Result<(), String> {
        let got = sh(
            &mut self.rt,
            id,
            "cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.shares",
        )
        .await?;
        let want = format!("{mem}\n{quota}\n{shares}");
        if got == want {
            return Ok(());
        }
        let host = format!(
            "/sys/fs/cgroup/memory{}/cri-pod-a/{id}/memory.limit_in_bytes",
            self.a.cgroup_parent
        );
        let on_host = std::fs::read_to_string(&host).unwrap_or_default();
        Err(format!(
            "inside {got:?}, wanted {want:?}; host memory {}",
            on_host.trim()
        ))
    }

    async fn update(&mut self, id: &str) -> Result<(), String> {
        self.rt
            .update_container_resources(UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    cpu_shares: 512,
                    memory_limit_in_bytes: 96 * MIB,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("UpdateContainerResources: {}", e.message()))?;
        self.limits(id, 96 * MIB, 50_000, 512).await
    }

    async fn stats(&mut self, id: &str) -> Result<(), String> {
        // Some CPU time to account for.
        sh(
            &mut self.rt,
            id,
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
        )
        .await?;
        let s = self
            .rt
            .container_stats(ContainerStatsRequest {
                container_id: id.into(),
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner()
            .stats
            .ok_or("no stats")?;
        let cpu = s
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map(|v| v.value);
        let mem = s
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map(|v| v.value);
        let who = s.attributes.as_ref().map(|a| a.id.as_str()).unwrap_or("");
        (who == id && cpu.unwrap_or(0) > 0 && mem.unwrap_or(0) > 0)
            .then_some(())
            .ok_or(format!("id {who}, cpu {cpu:?}, working set {mem:?}"))
    }

    async fn list_stats(&mut self, want: &[&String]) -> Result<(), String> {
        let got: Vec<String> = self
            .rt
            .list_container_stats(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id: self.pods[0].id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner()
            .stats
            .into_iter()
            .filter(|s| s.memory.is_some() && s.cpu.is_some())
            .filter_map(|s| s.attributes.map(|a| a.id))
            .collect();
        want.iter()
            .all(|w| got.contains(w))
            .then_some(())
            .ok_or(format!("got {got:?}"))
    }

    /// Starts a container in pod a and returns its id.
    async fn in_pod_a(&mut self, c: ContainerConfig) -> Result<String, String> {
        let (pod_id, config) = (self.pod(0).id.clone(), self.pod(0).config.clone());
        let id = cri::start_container(&mut self.rt, &pod_id, &config, c).await?;
        self.pods[0].containers.push(id.clone());
        Ok(id)
    }

    async fn stop_timed(
        &mut self,
        name: &str,
        script: &str,
        grace: i64,
    ) -> Result<(Duration, i32), String> {
        let c = self.container(name, &["sh", "-c", script], &self.pod(0).config.clone());
        let id = self.in_pod_a(c).await?;
        // The trap is set once the script has printed.
        for _ in 0..40 {
            if sh(&mut self.rt, &id, "true").await.is_ok() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        self.rt
            .stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: grace,
            })
            .await
            .map_err(|e| format!("StopContainer: {}", e.message()))?;
        let took = t.elapsed();
        let s = cri::wait_state(&mut self.rt, &id, ContainerState::ContainerExited, 5).await?;
        Ok((took, s.exit_code))
    }

    async fn stop_grace(&mut self) -> Result<(), String> {
        let (took, code) = self
            .stop_timed("stubborn", "trap '' TERM; while :; do sleep 0.1; done", 2)
            .await?;
        (took >= Duration::from_millis(1900) && took < Duration::from_secs(8) && code == 137)
            .then_some(())
            .ok_or(format!("stopped after {took:?}, exit {code}"))
    }

    async fn stop_polite(&mut self) -> Result<(), String> {
        let (took, code) = self
            .stop_timed(
                "polite",
                "trap 'exit 0' TERM; while :; do sleep 0.1; done",
                10,
            )
            .await?;
        (took < Duration::from_secs(3) && code == 0)
            .then_some(())
            .ok_or(format!("stopped after {took:?}, exit {code}"))
    }

    async fn security(&mut self) {
        let pod = self.pod(0).config.clone();
        let mut user = self.container("user", SLEEP, &pod);
        {
            let sc = cri::sc(&mut user);
            sc.run_as_user = Some(Int64Value { value: 1000 });
            sc.run_as_group = Some(Int64Value { value: 1000 });
            sc.supplemental_groups = vec![2000, 3000];
            sc.readonly_rootfs = true;
            sc.no_new_privs = true;
            sc.seccomp = cri::profile(ProfileType::RuntimeDefault);
            sc.masked_paths = MASKED.iter().map(|s| s.to_string()).collect();
            sc.readonly_paths = READONLY.iter().map(|s| s.to_string()).collect();
        }
        let mut caps = self.container("caps", SLEEP, &pod);
        {
            let sc = cri::sc(&mut caps);
            sc.capabilities = Some(Capability {
                add_capabilities: vec!["NET_ADMIN".into()],
                drop_capabilities: vec!["CHOWN".into(), "NET_RAW".into()],
                ..Default::default()
            });
            sc.seccomp = cri::profile(ProfileType::Unconfined);
            sc.masked_paths = MASKED
                .iter()
                .chain(&["/etc/group"])
                .map(|s| s.to_string())
                .collect();
            sc.readonly_paths = READONLY
                .iter()
                .chain(&["/home"])
                .map(|s| s.to_string())
                .collect();
        }
        let user = match self.in_pod_a(user).await {
            Ok(id) => id,
            Err(e) => return self.report("securityContext: runAsUser and the rest", Err(e)),
        };
        let caps = match self.in_pod_a(caps).await {
            Ok(id) => id,
            Err(e) => return self.report("securityContext: capabilities and the rest", Err(e)),
        };
        let us = sh(&mut self.rt, &user, "id -u; id -g; cat /proc/self/status").await;
        let cs = sh(&mut self.rt, &caps, "cat /proc/self/status").await;
        let (us, cs) = match (us, cs) {
            (Ok(u), Ok(c)) => (u, c),
            (Err(e), _) | (_, Err(e)) => {
                return self.report("securityContext: reading /proc/self/status", Err(e))
            }
        };
        let field = |s: &str, k: &str| host::status_field(s, k).unwrap_or_default();
        let own = self.own_process(&user, &caps, &us, &cs).await;
        check!(
            self,
            "securityContext holds for the container's own process (host /proc/PID/status)",
            own
        );
        check!(
            self,
            "runAsUser 1000, runAsGroup 1000",
            us.starts_with("1000\n1000\n")
                .then_some(())
                .ok_or(us.lines().take(2).collect::<Vec<_>>().join(" "))
        );
        let groups = field(&us, "Groups");
        check!(
            self,
            "supplementalGroups 2000 and 3000",
            (groups.split_whitespace().any(|g| g == "2000")
                && groups.split_whitespace().any(|g| g == "3000"))
            .then_some(())
            .ok_or(groups)
        );
        let ro = sh(&mut self.rt, &user, "touch /x 2>&1; echo rc=$?").await;
        check!(
            self,
            "readOnlyRootFilesystem",
            match ro {
                Ok(o) if o.contains("Read-only file system") && o.ends_with("rc=1") => Ok(()),
                Ok(o) => Err(o),
                Err(e) => Err(e),
            }
        );
        let (nnp_user, nnp_caps) = (field(&us, "NoNewPrivs"), field(&cs, "NoNewPrivs"));
        check!(
            self,
            "allowPrivilegeEscalation false: NoNewPrivs 1 (0 where not asked)",
            (nnp_user == "1" && nnp_caps == "0")
                .then_some(())
                .ok_or(format!("{nnp_user} / {nnp_caps}"))
        );
        let (sc_user, sc_caps) = (field(&us, "Seccomp"), field(&cs, "Seccomp"));
        check!(
            self,
            "seccomp RuntimeDefault: a filter (Seccomp 2)",
            (sc_user == "2").then_some(()).ok_or(sc_user)
        );
        check!(
            self,
            "seccomp Unconfined: no filter (Seccomp 0)",
            (sc_caps == "0").then_some(()).ok_or(sc_caps)
        );
        let capeff = u64::from_str_radix(&field(&cs, "CapEff"), 16).unwrap_or(0);
        let (chown, net_admin, net_raw) = (
            capeff & 1 != 0,
            capeff & (1 << 12) != 0,
            capeff & (1 << 13) != 0,
        );
        let acts = sh(
            &mut self.rt,
            &caps,
            "chown 1000 /root 2>&1; ip link set lo mtu 65536 && echo mtu-ok",
        )
        .await;
        check!(
            self,
            "capabilities: NET_ADMIN added, CHOWN and NET_RAW dropped",
            match acts {
                Ok(o)
                    if net_admin
                        && !chown
                        && !net_raw
                        && o.contains("Operation not permitted")
                        && o.ends_with("mtu-ok") =>
                    Ok(()),
                Ok(o) => Err(format!("CapEff {capeff:x}: {o}")),
                Err(e) => Err(e),
            }
        );
        let probe = host::masked_probe();
        let masked = sh(
            &mut self.rt,
            &caps,
            &format!("exec 2>&1; head -c 1 < {probe} | wc -c; wc -c < /etc/group; ls /sys/firmware | wc -l"),
        )
        .await;
        check!(
            self,
            &format!("masked paths: {probe}, /sys/firmware and /etc/group show nothing"),
            match masked {
                Ok(o) if o.split_whitespace().collect::<Vec<_>>() == ["0", "0", "0"] => Ok(()),
                Ok(o) => Err(o),
                Err(e) => Err(e),
            }
        );
        let ro = sh(&mut self.rt, &caps, "exec 2>&1; touch /home/x; echo 1 > /proc/sys/kernel/shm_rmid_forced; touch /root/x && echo rootfs-rw").await;
        check!(
            self,
            "readonly paths: /home and /proc/sys refuse writes, the rootfs takes them",
            match ro {
                Ok(o)
                    if o.matches("Read-only file system").count() == 2
                        && o.ends_with("rootfs-rw") =>
                    Ok(()),
                Ok(o) => Err(o),
                Err(e) => Err(e),
            }
        );
    }

    /// The containers' first processes as the host sees them: the same
    /// identity and confinement that ExecSync showed from inside.
    async fn own_process(
        &mut self,
        user: &str,
        caps: &str,
        us: &str,
        cs: &str,
    ) -> Result<(), String> {
        let status =
            |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let u = status(cri::container_pid(&mut self.rt, user).await?);
        let c = status(cri::container_pid(&mut self.rt, caps).await?);
        let f = |s: &str, k: &str| host::status_field(s, k).unwrap_or_default();
        let ids = |s: &str, k: &str| {
            f(s, k)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let mut wrong = Vec::new();
        if ids(&u, "Uid") != ["1000"; 4] || ids(&u, "Gid") != ["1000"; 4] {
            wrong.push(format!(
                "user: Uid {:?} Gid {:?}",
                f(&u, "Uid"),
                f(&u, "Gid")
            ));
        }
        for k in ["Groups", "NoNewPrivs", "Seccomp", "CapEff"] {
            if f(&u, k) != f(us, k) {
                wrong.push(format!("user {k}: {:?}, exec saw {:?}", f(&u, k), f(us, k)));
            }
            if f(&c, k) != f(cs, k) {
                wrong.push(format!("caps {k}: {:?}, exec saw {:?}", f(&c, k), f(cs, k)));
            }
        }
        wrong.is_empty().then_some(()).ok_or(wrong.join("; "))
    }

    async fn restart(&mut self) {
        let pod = self.pod(0).config.clone();
        let first = cri::container_config(
            "crash",
            0,
            &self.a.image,
            &["sh", "-c", "echo attempt-0; exit 3"],
            &pod,
        );
        let old = match self.in_pod_a(first).await {
            Ok(id) => id,
            Err(e) => return self.report("a container that exits", Err(e)),
        };
        let exited = cri::wait_state(&mut self.rt, &old, ContainerState::ContainerExited, 5).await;
        check!(
            self,
            "a container that exits is EXITED with its code (3)",
            match &exited {
                Ok(s) if s.exit_code == 3 => Ok(()),
                Ok(s) => Err(format!("exit {}", s.exit_code)),
                Err(e) => Err(e.clone()),
            }
        );
        // The kubelet's restart: the same name, the next attempt, the same sandbox.
        let second = cri::container_config(
            "crash",
            1,
            &self.a.image,
            &["sh", "-c", "echo attempt-1; exec sleep 31338"],
            &pod,
        );
        let r = async {
            let new = self.in_pod_a(second).await?;
            cri::wait_state(&mut self.rt, &new, ContainerState::ContainerRunning, 5).await?;
            let a1 = self.pod(0).containers[0].clone();
            self.same_ns(&a1, &new, "net").await?;
            self.rt
                .remove_container(RemoveContainerRequest {
                    container_id: old.clone(),
                })
                .await
                .map_err(|e| format!("RemoveContainer: {}", e.message()))?;
            match host::carte_status(&self.a.carte, &self.a.carte_root, &old) {
                Ok(st) => Err(format!("the old attempt is still known to carte: {st}")),
                Err(_) => Ok(()),
            }
        }
        .await;
        check!(
            self,
            "restart: attempt 1 runs in the same sandbox, attempt 0 removed",
            r
        );
        let dir = format!("{}/cri-pod-a/crash", self.a.logs);
        let mut logs = (String::new(), String::new());
        for _ in 0..40 {
            logs = (
                std::fs::read_to_string(format!("{dir}/0.log")).unwrap_or_default(),
                std::fs::read_to_string(format!("{dir}/1.log")).unwrap_or_default(),
            );
            if logs.0.contains(" stdout F attempt-0") && logs.1.contains(" stdout F attempt-1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        check!(
            self,
            "the CRI log files hold each attempt's output",
            (logs.0.contains(" stdout F attempt-0") && logs.1.contains(" stdout F attempt-1"))
                .then_some(())
                .ok_or(format!("0.log {:?}, 1.log {:?}", logs.0, logs.1))
        );
    }

    async fn teardown(&mut self) {
        let pods = std::mem::take(&mut self.pods);
        let ids: Vec<String> = pods
            .iter()
            .flat_map(|p| std::iter::once(&p.id).chain(&p.containers).cloned())
            .collect();
        let sandboxes: Vec<String> = pods.iter().map(|p| p.id.clone()).collect();
        let pod_cgroups = |s: &Self| -> Vec<String> {
            pods.iter()
                .flat_map(|p| {
                    host::cgroup_dirs(&format!(
                        "{}/{}",
                        s.a.cgroup_parent,
                        p.config.metadata.as_ref().unwrap().name
                    ))
                })
                .collect()
        };
        // What there is before, so that "nothing left" is not vacuous.
        let before = (
            host::mounts_naming(&ids).len(),
            pod_cgroups(self).len(),
            host::processes_of(&self.a.cgroup_parent, &sandboxes).len(),
            pods.iter()
                .filter_map(|p| p.netns.as_ref())
                .filter(|n| host::exists(n))
                .count(),
        );
        println!(
            "# before teardown: {} mounts, {} cgroup dirs, {} processes, {} netns",
            before.0, before.1, before.2, before.3
        );
        let mut errors = Vec::new();
        for p in &pods {
            if let Err(e) = cri::remove_pod(&mut self.rt, &p.id).await {
                errors.push(e);
            }
        }
        check!(
            self,
            "StopPodSandbox and RemovePodSandbox for every pod",
            errors.is_empty().then_some(()).ok_or(errors.join("; "))
        );
        let listed = async {
            let c = self
                .rt
                .list_containers(ListContainersRequest { filter: None })
                .await
                .map_err(|e| e.message().to_string())?
                .into_inner()
                .containers;
            let p = self
                .rt
                .list_pod_sandbox(ListPodSandboxRequest { filter: None })
                .await
                .map_err(|e| e.message().to_string())?
                .into_inner()
                .items;
            let left: Vec<String> = c
                .into_iter()
                .map(|c| c.id)
                .chain(p.into_iter().map(|p| p.id))
                .filter(|id| ids.contains(id))
                .collect();
            left.is_empty().then_some(()).ok_or(format!("{left:?}"))
        }
        .await;
        check!(self, "no pod or container left in the CRI", listed);
        let state: Vec<&String> = ids
            .iter()
            .filter(|id| host::exists(&format!("{}/{id}", self.a.carte_root)))
            .collect();
        check!(
            self,
            "no carte state left",
            state.is_empty().then_some(()).ok_or(format!("{state:?}"))
        );
        let mounts = host::mounts_naming(&ids);
        check!(
            self,
            "no mount left",
            (mounts.is_empty() && before.0 > 0)
                .then_some(())
                .ok_or(format!("{mounts:?}"))
        );
        let cgroups = pod_cgroups(self);
        check!(
            self,
            "no container cgroup left",
            (cgroups.is_empty() && before.1 > 0)
                .then_some(())
                .ok_or(format!("{cgroups:?}"))
        );
        let netns: Vec<&String> = pods
            .iter()
            .filter_map(|p| p.netns.as_ref())
            .filter(|n| host::exists(n))
            .collect();
        check!(
            self,
            "no network namespace left",
            (netns.is_empty() && before.3 >= 2)
                .then_some(())
                .ok_or(format!("left {netns:?}"))
        );
        let mut procs = Vec::new();
        for _ in 0..50 {
            procs = host::processes_of(&self.a.cgroup_parent, &sandboxes);
            if procs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        check!(
            self,
            "no process left (containers, pause, shims)",
            (procs.is_empty() && before.2 > 0)
                .then_some(())
                .ok_or(format!("{procs:?}"))
        );
    }
}
