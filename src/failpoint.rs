//! Named failpoints for the fault-injection walk (tests/faults.rs).
//!
//! With the cargo feature `failpoints`, `failpoint!("area.step")` makes the
//! enclosing function return the error "failpoint area.step" when the
//! environment variable CARTE_FAILPOINT names that step (read once), and
//! appends the name to the file CARTE_FAILPOINT_HITS names, so the walk
//! knows the step was reached. Without the feature the macro is empty:
//! release builds carry no failpoint.
//!
//! The error reaches the caller through the module's own error type, each
//! of which converts from [`Injected`]; child stages send it up the init
//! pipe as text, like any other cause.

/// Every failpoint in the sources; tests/faults.rs checks both directions.
pub const ALL: &[&str] = &[
    // create, in the parent
    "create.state_dir",
    "create.lock",
    "fifo.create",
    "fifo.open",
    "cgroup.create",
    "cgroup.join",
    "cgroup.apply",
    "state.write",
    // the init pipe, each message sent and received
    "pipe.send.start",
    "pipe.send.maps_request",
    "pipe.send.maps_done",
    "pipe.send.init_pid",
    "pipe.send.create_runtime_hooks",
    "pipe.send.hooks_done",
    "pipe.send.ready",
    "pipe.send.created",
    "pipe.recv.start",
    "pipe.recv.maps_request",
    "pipe.recv.maps_done",
    "pipe.recv.init_pid",
    "pipe.recv.create_runtime_hooks",
    "pipe.recv.hooks_done",
    "pipe.recv.ready",
    "pipe.recv.created",
    // namespaces, in the intermediate (the maps in the parent)
    "ns.unshare.user",
    "ns.unshare.pid",
    "ns.unshare.network",
    "ns.unshare.ipc",
    "ns.unshare.uts",
    "ns.unshare.mount",
    "ns.unshare.cgroup",
    "ns.unshare.time",
    "ns.setns.user",
    "ns.setns.pid",
    "ns.setns.network",
    "ns.setns.ipc",
    "ns.setns.uts",
    "ns.setns.mount",
    "ns.setns.cgroup",
    "ns.setns.time",
    "ns.id_maps",
    "ns.time_offsets",
    "ns.loopback",
    // the rootfs, in init
    "rootfs.propagation",
    "rootfs.bind",
    "rootfs.mount.proc",
    "rootfs.mount.sysfs",
    "rootfs.mount.tmpfs",
    "rootfs.mount.devpts",
    "rootfs.mount.mqueue",
    "rootfs.mount.bind",
    "rootfs.mount.cgroup",
    "rootfs.dev",
    "rootfs.devices",
    "rootfs.pivot_root",
    "rootfs.sysctl",
    "rootfs.hostname",
    "rootfs.readonly_paths",
    "rootfs.masked_paths",
    "rootfs.readonly_root",
    // hooks, each kind
    "hook.prestart",
    "hook.createRuntime",
    "hook.createContainer",
    "hook.startContainer",
    "hook.poststart",
    "hook.poststop",
    // the process attributes, in init
    "init.keyring",
    "attrs.rlimits",
    "attrs.seccomp",
    "attrs.caps",
    "attrs.user",
    "attrs.cwd",
    "attrs.no_new_privs",
    // start
    "start.fifo",
    "start.state",
    // exec
    "exec.namespaces",
    "exec.cgroup.join",
    "exec.setns.user",
    "exec.setns.ipc",
    "exec.setns.uts",
    "exec.setns.network",
    "exec.setns.pid",
    "exec.setns.cgroup",
    "exec.setns.time",
    "exec.setns.mount",
    "exec.process",
    // delete
    "delete.kill",
    "cgroup.destroy",
    "delete.state_dir",
];

/// The error a failpoint injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected(pub &'static str);

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failpoint {}", self.0)
    }
}

impl std::error::Error for Injected {}

impl From<Injected> for String {
    fn from(i: Injected) -> String {
        i.to_string()
    }
}

impl From<Injected> for std::io::Error {
    fn from(i: Injected) -> std::io::Error {
        std::io::Error::other(i.to_string())
    }
}

#[cfg(feature = "failpoints")]
mod active {
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::sync::OnceLock;

    struct Config {
        name: Option<String>,
        hits: Option<OwnedFd>,
    }

    fn config() -> &'static Config {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| {
            let name = std::env::var("CARTE_FAILPOINT")
                .ok()
                .filter(|n| !n.is_empty());
            // Opened once, in the parent: init still reaches it after pivot_root.
            let hits = std::env::var_os("CARTE_FAILPOINT_HITS").and_then(|path| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .ok()
                    .map(OwnedFd::from)
            });
            Config { name, hits }
        })
    }

    /// True when `name` is the failpoint asked for; records the hit.
    pub fn hit(name: &str) -> bool {
        let config = config();
        if config.name.as_deref() != Some(name) {
            return false;
        }
        if let Some(fd) = &config.hits {
            let line = format!("{name}\n");
            // SAFETY: writes our own buffer to an fd we own (O_APPEND).
            unsafe { libc::write(fd.as_raw_fd(), line.as_ptr().cast(), line.len()) };
        }
        true
    }

    pub fn hits_fd() -> Option<RawFd> {
        config().hits.as_ref().map(|fd| fd.as_raw_fd())
    }
}

#[cfg(feature = "failpoints")]
pub use active::hit;

/// The fd hits are recorded to, which the children must keep open.
pub fn hits_fd() -> Option<std::os::fd::RawFd> {
    #[cfg(feature = "failpoints")]
    return active::hits_fd();
    #[cfg(not(feature = "failpoints"))]
    None
}

/// `failpoint!("area.step")`: returns `Err(Injected("area.step").into())`
/// from the enclosing function when that failpoint is set.
#[cfg(feature = "failpoints")]
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {{
        if $crate::failpoint::hit($name) {
            return Err($crate::failpoint::Injected($name).into());
        }
    }};
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {{}};
}
