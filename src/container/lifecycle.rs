//! start, kill and delete on an existing container.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::state::{Status, EXEC_FIFO};
use super::{io_err, Container, ContainerError};
use crate::{cgroups, hooks, logging, sys};

impl Container {
    /// Lets init exec the user's process: opens the exec fifo, which init
    /// is blocked on, and reads the byte it writes. Then poststart hooks.
    pub fn start(&mut self) -> Result<(), ContainerError> {
        // `run`'s own container: init is released already; the pipe says
        // how its exec went, as the fifo would.
        let pipe = self.release_pipe.take();
        let from_run = pipe.is_some();
        let status = self.status();
        if status != Status::Created && pipe.is_none() {
            return Err(ContainerError::WrongState {
                op: "start",
                id: self.id().into(),
                status,
            });
        }
        let fifo_path = self.dir.join(EXEC_FIFO);
        // Before the fifo opens: once it does, init may exec, run and exit
        // before this process runs again (seen under load with podman).
        // `run`'s init needs no release and may be gone already: the pipe
        // then holds all it has to say.
        let pidfd = match sys::pidfd_open(self.state.pid) {
            Ok(fd) => Some(fd),
            Err(e) if from_run && e.raw_os_error() == Some(libc::ESRCH) => None,
            Err(e) => return Err(io_err("watch init", &fifo_path)(e)),
        };
        failpoint!("start.fifo");
        let fifo = match pipe {
            Some(pipe) => std::fs::File::from(pipe),
            None => std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&fifo_path)
                .map_err(io_err("open exec fifo", &fifo_path))?,
        };
        // First the byte init writes once released. With poststart hooks,
        // then the hang-up when init's end closes at execve: they must run
        // after the process started and after the startContainer hooks.
        // Without them, return at once, as runc does: conmon loses the
        // output and exit of a process that ends before `start` returns.
        let hooks = self.state.hooks.as_ref();
        let poststart = hooks
            .and_then(|h| h.poststart().clone())
            .unwrap_or_default();
        // A failing startContainer hook must fail start: init writes why
        // on the fifo before it exits, instead of hanging up at execve.
        let wait_for_exec = hooks::start_waits_for_exec(hooks);
        let mut released = false;
        let mut failure = Vec::new();
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: fifo.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    // poll skips a negative fd.
                    fd: pidfd.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: fds is a valid pollfd array of length 2.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
                continue;
            }
            if fds[0].revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 512];
                let want = if released { buf.len() } else { 1 };
                // SAFETY: reads at most `want` bytes into a buffer we own.
                let n = unsafe { libc::read(fifo.as_raw_fd(), buf.as_mut_ptr().cast(), want) };
                if n > 0 {
                    if released {
                        failure.extend_from_slice(&buf[..n as usize]);
                    }
                    released = true;
                }
                if released && !wait_for_exec {
                    break;
                }
                continue;
            } else if fds[0].revents & libc::POLLHUP != 0 && released {
                break;
            }
            let init_gone = pidfd.is_none() && fds[0].revents & libc::POLLHUP != 0;
            if fds[1].revents != 0 || init_gone {
                if released {
                    // Init is gone: what it wrote may still be in the fifo.
                    let mut buf = [0u8; 512];
                    loop {
                        // SAFETY: reads into a buffer we own (O_NONBLOCK).
                        let n = unsafe {
                            libc::read(fifo.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                        };
                        if n <= 0 {
                            break;
                        }
                        failure.extend_from_slice(&buf[..n as usize]);
                    }
                    break;
                }
                return Err(ContainerError::Process(
                    crate::process::ProcessError::Child(
                        "container init exited before start".into(),
                    ),
                ));
            }
        }
        drop(fifo);
        if !failure.is_empty() {
            let _ = std::fs::remove_file(&fifo_path);
            return Err(ContainerError::Process(
                crate::process::ProcessError::Child(
                    String::from_utf8_lossy(&failure).trim().to_string(),
                ),
            ));
        }
        logging::debug("init released from exec.fifo");
        if !from_run {
            let _ = std::fs::remove_file(&fifo_path);
            self.state.started = true;
            failpoint!("start.state");
            self.state.save(&self.dir)?;
        }
        if wait_for_exec {
            hooks::run_logged(
                "poststart",
                &poststart,
                &self.state.oci(Status::Running).to_string(),
            );
        }
        Ok(())
    }

    /// Sends `signal` to init, or with `all` to every process in the cgroup.
    pub fn kill(&self, signal: i32, all: bool) -> Result<(), ContainerError> {
        // `--all` is runc's extension, not the spec's kill: like runc it
        // signals whatever is left in the cgroup, whatever the status.
        // containerd's `delete --force` sends it to stopped containers.
        if all {
            match self.state.cgroup() {
                Some(cgroup) => cgroups::kill_all(cgroup, signal),
                None => {
                    for pid in self.processes() {
                        // SAFETY: kill(2) with plain integers.
                        unsafe { libc::kill(pid, signal) };
                    }
                }
            }
            return Ok(());
        }
        let status = self.status();
        if status == Status::Stopped {
            return Err(ContainerError::WrongState {
                op: "kill",
                id: self.id().into(),
                status,
            });
        }
        // Through a pidfd taken before the check: if the pid is reused
        // meanwhile, the check fails or the signal goes nowhere, never to
        // the process that took the pid.
        let proc_path = format!("/proc/{}", self.state.pid);
        let stopped = || ContainerError::WrongState {
            op: "kill",
            id: self.id().into(),
            status: Status::Stopped,
        };
        let pidfd = match sys::pidfd_open(self.state.pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(stopped()),
            Err(e) => return Err(io_err("signal init", Path::new(&proc_path))(e)),
        };
        if !self.state.alive() {
            return Err(stopped());
        }
        match sys::pidfd_send_signal(pidfd.as_fd(), signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(stopped()),
            Err(e) => Err(io_err("signal init", Path::new(&proc_path))(e)),
        }
    }

    /// Removes a stopped container; with `force`, kills a live one first.
    /// Runs poststop hooks, removes the cgroup and the state dir.
    pub fn delete(self, force: bool) -> Result<(), ContainerError> {
        let status = self.status();
        if status != Status::Stopped {
            if !force {
                return Err(ContainerError::WrongState {
                    op: "delete",
                    id: self.id().into(),
                    status,
                });
            }
            failpoint!("delete.kill");
            self.kill_and_wait();
        }
        // Init is gone, but without a PID namespace its children may not
        // be, nor processes moved into the cgroup from outside: the cgroup
        // cannot go while they live, and they are killed first.
        failpoint!("cgroup.destroy");
        if let Some(cgroup) = self.state.cgroup() {
            cgroups::kill_and_destroy(cgroup)?;
        }
        if let Some(base) = self.state.shared_mount_base {
            crate::rootfs::shared::detach_above(&self.state.rootfs, base).map_err(io_err(
                "unmount the container's mounts on",
                &self.state.rootfs,
            ))?;
        }
        // A container whose create was killed before init was ready never
        // existed for its hooks.
        let hooks = self.state.hooks.as_ref().filter(|_| self.state.pid != 0);
        if let Some(list) = hooks.and_then(|h| h.poststop().clone()) {
            hooks::run_logged(
                "poststop",
                &list,
                &self.state.oci(Status::Stopped).to_string(),
            );
        }
        failpoint!("delete.state_dir");
        remove_state_dir(&self.dir)
    }

    /// Freezes (pause) or thaws (resume) the container.
    pub fn set_paused(&self, paused: bool) -> Result<(), ContainerError> {
        let status = self.status();
        let (op, from) = if paused {
            ("pause", Status::Running)
        } else {
            ("resume", Status::Paused)
        };
        if status != from {
            return Err(ContainerError::WrongState {
                op,
                id: self.id().into(),
                status,
            });
        }
        cgroups::Cgroup::open(self.cgroup_for(op)?)?.set_frozen(paused)?;
        Ok(())
    }

    /// SIGKILLs everything in the container and waits until init is gone.
    fn kill_and_wait(&self) {
        let pidfd = sys::pidfd_open(self.state.pid)
            .ok()
            .filter(|_| self.state.alive());
        match self.state.cgroup() {
            Some(cgroup) => {
                cgroups::kill_all(cgroup, libc::SIGKILL);
                // Frozen processes die only once thawed.
                if cgroups::is_frozen(cgroup) {
                    if let Ok(cg) = cgroups::Cgroup::open(cgroup) {
                        let _ = cg.set_frozen(false);
                    }
                }
            }
            // Without a cgroup: init, whose death ends its PID namespace.
            None => {
                for pid in self.processes() {
                    // SAFETY: kill(2) with plain integers.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if self.state.alive() {
            // SAFETY: kill(2) with plain integers on our checked-alive init.
            unsafe { libc::kill(self.state.pid, libc::SIGKILL) };
        }
        if let Some(fd) = pidfd {
            let _ = sys::pidfd_wait(fd.as_fd(), 10_000);
        }
    }
}

/// Removes the state dir with state.json last, so a delete killed half-way
/// leaves either a whole record or none (and `delete --force` clears a dir
/// without one).
fn remove_state_dir(dir: &Path) -> Result<(), ContainerError> {
    for entry in std::fs::read_dir(dir)
        .map_err(io_err("remove state dir", dir))?
        .flatten()
    {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
        } else if entry.file_name() != super::state::STATE_FILE {
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    let state = dir.join(super::state::STATE_FILE);
    match std::fs::remove_file(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_err("remove", &state)(e))
        }
        _ => {}
    }
    std::fs::remove_dir(dir).map_err(io_err("remove state dir", dir))
}
