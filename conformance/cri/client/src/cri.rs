//! The CRI calls the kubelet makes, over a unix socket, and the request
//! shapes it sends (pod and container configs).

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub type Rt = RuntimeServiceClient<Channel>;

pub async fn connect(socket: &str) -> Result<Rt, tonic::transport::Error> {
    let path = socket.to_string();
    let channel = Endpoint::from_static("http://[::]:0")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}

pub fn ns(network: NamespaceMode, pid: NamespaceMode, ipc: NamespaceMode) -> NamespaceOption {
    NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: ipc as i32,
        ..Default::default()
    }
}

pub fn profile(t: security_profile::ProfileType) -> Option<SecurityProfile> {
    Some(SecurityProfile {
        profile_type: t as i32,
        localhost_ref: String::new(),
    })
}

/// A pod as the kubelet describes it: metadata, hostname, log directory,
/// cgroup parent (cgroupfs driver), namespaces, privilege and sysctls.
pub struct PodSpec<'a> {
    pub name: &'a str,
    pub ns: NamespaceOption,
    pub privileged: bool,
    pub sysctls: &'a [(&'a str, &'a str)],
}

pub fn pod_config(spec: &PodSpec, logs: &str, cgroup_parent: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: spec.name.into(),
            uid: format!("{}-uid", spec.name),
            namespace: "cri-carte".into(),
            attempt: 0,
        }),
        // As the kubelet: a hostNetwork pod keeps the node's hostname (and
        // has no UTS namespace of its own to set one in).
        hostname: if spec.ns.network == NamespaceMode::Node as i32 {
            String::new()
        } else {
            spec.name.into()
        },
        log_directory: format!("{logs}/{}", spec.name),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{cgroup_parent}/{}", spec.name),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(spec.ns.clone()),
                privileged: spec.privileged,
                ..Default::default()
            }),
            sysctls: spec
                .sysctls
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container as the kubelet sends it; the security context starts with
/// the pod's namespace options, as the kubelet's does.
pub fn container_config(
    name: &str,
    attempt: u32,
    image: &str,
    cmd: &[&str],
    pod: &PodSandboxConfig,
) -> ContainerConfig {
    let pod_sc = pod.linux.as_ref().and_then(|l| l.security_context.as_ref());
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/{attempt}.log"),
        linux: Some(LinuxContainerConfig {
            resources: None,
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: pod_sc.and_then(|s| s.namespace_options.clone()),
                privileged: pod_sc.map(|s| s.privileged).unwrap_or(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

pub fn sc(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    c.linux
        .as_mut()
        .unwrap()
        .security_context
        .get_or_insert_with(Default::default)
}

pub async fn run_pod(rt: &mut Rt, config: &PodSandboxConfig) -> Result<String, String> {
    std::fs::create_dir_all(&config.log_directory).map_err(|e| e.to_string())?;
    let r = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "carte".into(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox: {}", e.message()))?;
    Ok(r.into_inner().pod_sandbox_id)
}

pub async fn start_container(
    rt: &mut Rt,
    pod_id: &str,
    pod: &PodSandboxConfig,
    config: ContainerConfig,
) -> Result<String, String> {
    let name = config.metadata.as_ref().unwrap().name.clone();
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer {name}: {}", e.message()))?
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer {name}: {}", e.message()))?;
    Ok(id)
}

pub struct Exec {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

pub async fn exec(rt: &mut Rt, id: &str, cmd: &[&str], timeout: i64) -> Result<Exec, String> {
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        })
        .await
        .map_err(|e| format!("ExecSync {cmd:?}: {}", e.message()))?
        .into_inner();
    Ok(Exec {
        stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
        code: r.exit_code,
    })
}

/// `sh -c SCRIPT` in the container: its stdout and stderr, trimmed.
pub async fn sh(rt: &mut Rt, id: &str, script: &str) -> Result<String, String> {
    let e = exec(rt, id, &["sh", "-c", script], 10).await?;
    Ok(format!("{}{}", e.stdout, e.stderr).trim().to_string())
}

pub async fn container_status(rt: &mut Rt, id: &str) -> Result<ContainerStatus, String> {
    rt.container_status(ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .map_err(|e| format!("ContainerStatus: {}", e.message()))?
    .into_inner()
    .status
    .ok_or_else(|| "ContainerStatus: no status".into())
}

/// The host PID of a container's first process (containerd's verbose info).
pub async fn container_pid(rt: &mut Rt, id: &str) -> Result<u32, String> {
    let r = rt
        .container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .map_err(|e| format!("ContainerStatus: {}", e.message()))?
        .into_inner();
    r.info
        .get("info")
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v["pid"].as_u64())
        .map(|p| p as u32)
        .ok_or_else(|| "ContainerStatus: no pid in the verbose info".into())
}

/// Waits (up to `secs`) for a container to reach `state`.
pub async fn wait_state(
    rt: &mut Rt,
    id: &str,
    state: ContainerState,
    secs: u64,
) -> Result<ContainerStatus, String> {
    let mut last = None;
    for _ in 0..secs * 20 {
        let s = container_status(rt, id).await?;
        if s.state == state as i32 {
            return Ok(s);
        }
        last = Some(s.state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("state {last:?}, wanted {state:?}"))
}

/// The verbose pod status: containerd's `info` JSON (runtimeSpec,
/// runtimeHandler, runtimeOptions, ...).
pub async fn pod_info(
    rt: &mut Rt,
    id: &str,
) -> Result<(PodSandboxStatus, serde_json::Value), String> {
    let r = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        })
        .await
        .map_err(|e| format!("PodSandboxStatus: {}", e.message()))?
        .into_inner();
    let info = r
        .info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok((r.status.ok_or("PodSandboxStatus: no status")?, info))
}

pub async fn remove_pod(rt: &mut Rt, id: &str) -> Result<(), String> {
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .map_err(|e| format!("StopPodSandbox: {}", e.message()))?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .map_err(|e| format!("RemovePodSandbox: {}", e.message()))?;
    Ok(())
}

pub async fn remove_all_pods(mut rt: Rt) {
    let Ok(pods) = rt
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await
    else {
        return;
    };
    for p in pods.into_inner().items {
        let _ = remove_pod(&mut rt, &p.id).await;
    }
}
