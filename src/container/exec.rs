//! `exec` on a container: checks its state, builds nothing itself (the
//! process object comes from the caller), and starts the process in the
//! container's namespaces and cgroup.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::state::{write_atomic, State, Status};
use super::{io_err, Container, ContainerError, Lock};
use crate::cloned_binary::Trampoline;
use crate::logging;
use crate::process::exec::{spawn, ExecArgs};

pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    /// A console socket already connected (exec's own pty).
    pub console_fd: Option<OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup`: (controller, "" for all; path under the container's).
    pub sub_cgroups: Vec<(String, String)>,
}

impl Container {
    /// Starts `opts.process` in the container and returns its pid.
    pub fn exec(&self, opts: ExecOptions) -> Result<i32, ContainerError> {
        let status = self.status();
        if status == Status::Paused && !opts.ignore_paused {
            // runc's words, which callers may look for.
            return Err(ContainerError::Usage(format!(
                "cannot exec in a paused container (use --ignore-paused to override): {}",
                self.id()
            )));
        }
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(ContainerError::WrongState {
                op: "exec in",
                id: self.id().into(),
                status,
            });
        }
        let sub_cgroups = sub_cgroup_dirs(&self.state.cgroup_path, &opts.sub_cgroups)?;
        super::check_preserve_fds(opts.preserve_fds)?;
        crate::lsm::check(&opts.process, None)?;
        let terminal = opts.process.terminal().unwrap_or(false);
        let has_socket = opts.console_socket.is_some() || opts.console_fd.is_some();
        if terminal != has_socket {
            let reason = if terminal {
                "a terminal needs --console-socket (or a foreground exec)"
            } else {
                "--console-socket needs --tty"
            };
            return Err(ContainerError::Usage(reason.into()));
        }
        // CVE-2019-5736: see cloned_binary.rs. Before anything outside this
        // process happens (the console socket's connection), and before the
        // profile is compiled: the re-exec starts the verb over. A process
        // that may hold CAP_SYS_PTRACE could open the exe of later exec
        // children: from now on they run from the read-only binary.
        if self.state.sealed_binary {
            crate::cloned_binary::ensure()?;
        }
        // The container's profile, as created; the process object has no
        // seccomp of its own in the runtime-spec.
        let seccomp = self
            .state
            .seccomp
            .as_ref()
            .map(crate::seccomp::compile)
            .transpose()?;
        let mut trampoline = None;
        if !self.state.sealed_binary && self.state.trampoline {
            if crate::cloned_binary::trampoline_fits_process(&opts.process, seccomp.as_ref()) {
                trampoline = Trampoline::new()
                    .map_err(|e| logging::debug(&format!("{e}: re-exec instead")))
                    .ok();
            }
            if trampoline.is_none() {
                crate::cloned_binary::ensure()?;
            }
        }
        if !self.state.sealed_binary && crate::cloned_binary::grants_ptrace(Some(&opts.process)) {
            let _lock = Lock::acquire(&self.dir).map_err(io_err("lock", &self.dir))?;
            let mut state = State::load(&self.dir)?;
            state.sealed_binary = true;
            state.trampoline = false;
            state.save(&self.dir)?;
        }
        let connected: Option<OwnedFd> = match (&opts.console_fd, &opts.console_socket) {
            (None, Some(path)) => Some(
                std::os::unix::net::UnixStream::connect(path)
                    .map_err(io_err("connect console socket", path))?
                    .into(),
            ),
            _ => None,
        };
        let mut cgroup = self.cgroup();
        let args = ExecArgs {
            init_pid: self.state.pid,
            process: &opts.process,
            container: crate::process::sched::Container {
                personality: self.state.personality.as_ref(),
                memory_policy: self.state.memory_policy.as_ref(),
            },
            rdt: self.state.intel_rdt.as_ref(),
            console_socket: opts.console_fd.as_ref().or(connected.as_ref()),
            preserve_fds: opts.preserve_fds,
            seccomp: seccomp.as_ref(),
            trampoline: trampoline.as_ref(),
            sub_cgroups: &sub_cgroups,
        };
        let state = self.state.oci(status);
        let mut on_listener = |pid: i32, fd: OwnedFd| -> Result<(), String> {
            let filter = seccomp
                .as_ref()
                .ok_or("seccomp listener without a filter")?;
            filter
                .send_listener(pid, state.clone(), fd)
                .map_err(|e| e.to_string())
        };
        let pid = spawn(&args, cgroup.as_mut(), &mut on_listener)?;
        if let Some(pid_file) = &opts.pid_file {
            write_atomic(pid_file, pid.to_string().as_bytes(), 0o644)
                .map_err(io_err("write pid file", pid_file))?;
        }
        Ok(pid)
    }

    /// The process object of the container's config.json, the base an exec
    /// with command-line arguments starts from (as runc does).
    pub fn config_process(&self) -> Option<Process> {
        let text = std::fs::read(self.state.bundle.join("config.json")).ok()?;
        crate::config::parse(&text).ok()?.process().clone()
    }
}

/// The directories of `exec --cgroup`'s sub-cgroups: on v2 the one path
/// under the container's cgroup; on v1 under the container's directory in
/// the hierarchy of each controller named, or in every hierarchy.
fn sub_cgroup_dirs(
    cgroup_path: &str,
    subs: &[(String, String)],
) -> Result<Vec<PathBuf>, ContainerError> {
    // The "none" driver's empty path would name the hierarchies' roots.
    if cgroup_path.is_empty() && !subs.is_empty() {
        return Err(ContainerError::Usage(
            "--cgroup: the container has no cgroup (rootless without a writable, delegated cgroup)"
                .into(),
        ));
    }
    let rel = cgroup_path.trim_start_matches('/');
    let mut dirs = Vec::new();
    for (ctrl, sub) in subs {
        if crate::cgroups::is_unified() {
            let dir = std::path::Path::new("/sys/fs/cgroup").join(rel).join(sub);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
            continue;
        }
        if ctrl.is_empty() {
            for h in crate::cgroups::host_hierarchies() {
                let own = h.mount_point.join(rel);
                if !h.v2 && own.is_dir() {
                    dirs.push(own.join(sub));
                }
            }
            continue;
        }
        let own = crate::cgroups::controller_dir(cgroup_path, ctrl).ok_or_else(|| {
            ContainerError::Usage(format!(
                "--cgroup {ctrl}:{sub}: no cgroup v1 hierarchy has {ctrl}"
            ))
        })?;
        dirs.push(own.join(sub));
    }
    if crate::cgroups::is_unified() && dirs.len() > 1 {
        return Err(ContainerError::Usage(
            "--cgroup: cgroup v2 has one hierarchy, so one path".into(),
        ));
    }
    Ok(dirs)
}
