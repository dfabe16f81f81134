use std::process::ExitCode;

use crate::rootfs::options;
use crate::seccomp;

/// The runtime-spec features document (features.md): what this build of
/// carte really supports. Whatever config validation refuses is false here.
pub fn document() -> serde_json::Value {
    let capabilities: Vec<String> = {
        let mut all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        all.sort();
        all
    };
    let known_flags: Vec<&str> = seccomp::FLAGS
        .iter()
        .map(|f| seccomp::flag_name(*f))
        .collect();
    let supported_flags: Vec<&str> = seccomp::FLAGS
        .iter()
        .filter(|f| seccomp::flag_supported(**f))
        .map(|f| seccomp::flag_name(*f))
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::ACTIONS,
                "operators": seccomp::OPERATORS,
                "archs": seccomp::ARCHS,
                "knownFlags": known_flags,
                "supportedFlags": supported_flags
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": crate::process::sched::memory_policy_modes_supported(),
                "flags": crate::process::sched::MEMORY_POLICY_FLAGS
            },
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"org.carte.version": env!("CARGO_PKG_VERSION")}
    })
}

pub fn run() -> anyhow::Result<ExitCode> {
    super::output(&(serde_json::to_string_pretty(&document())? + "\n"));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_as_the_spec_features_type() {
        let doc = super::document();
        let parsed: oci_spec::runtime::Features = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(parsed.oci_version_max(), "1.2.0");
        let caps = doc["linux"]["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let sc = parsed.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        assert_eq!(*sc.enabled(), Some(true));
        assert_eq!(sc.actions().as_ref().unwrap().len(), 9);
        assert_eq!(sc.archs().as_ref().unwrap().len(), 3);
        assert_eq!(sc.known_flags().as_ref().unwrap().len(), 4);
    }
}
