//! A container on disk: its state dir under --root, its lock, its live
//! status, and the lifecycle operations the verbs call.

mod create;
mod events;
mod exec;
mod lifecycle;
pub mod state;
mod update;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use create::{create, CreateOptions};
pub use events::{parse_interval, Event};
pub use exec::ExecOptions;
pub use state::{State, Status};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("invalid container id {}: {reason}", shorten(.id))]
    InvalidId { id: String, reason: &'static str },
    #[error("cannot {op} container {id}: it is {status}")]
    WrongState {
        op: &'static str,
        id: String,
        status: Status,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Netdev(#[from] crate::netdev::NetdevError),
    #[error(transparent)]
    IntelRdt(#[from] crate::intelrdt::RdtError),
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    ClonedBinary(#[from] crate::cloned_binary::ClonedBinaryError),
    #[error("{0}")]
    Usage(String),
    #[error("--preserve-fds {count}: fd {fd} was not passed to carte")]
    PreserveFds { count: u32, fd: i32 },
    #[error("{what} {path}: {}", crate::sys::reason(.source))]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// An id as an error shows it: quoted, cut after 64 characters.
fn shorten(id: &str) -> String {
    match id.char_indices().nth(64) {
        Some((end, _)) => format!("{:?}... ({} bytes)", &id[..end], id.len()),
        None => format!("{id:?}"),
    }
}

pub(crate) fn io_err(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.display().to_string();
    move |source| ContainerError::Io { what, path, source }
}

/// `--preserve-fds count` hands over fds 3..3+count: each must be one the
/// caller passed, or carte would hand the container one of its own (its
/// lock, whose holder would then block `start`; a host directory). As
/// runc, which refuses an fd it cannot find.
pub(crate) fn check_preserve_fds(count: u32) -> Result<(), ContainerError> {
    match crate::sys::first_unpassed_fd(count) {
        Some(fd) => Err(ContainerError::PreserveFds { count, fd }),
        None => Ok(()),
    }
}

/// Container ids name a directory under --root, so they must be one plain
/// path component. Same rule as runc: [\w+-\.]+, and not "." or "..".
pub fn validate_id(id: &str) -> Result<(), ContainerError> {
    let invalid = |reason| {
        Err(ContainerError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("it is empty");
    }
    if id == "." || id == ".." {
        return invalid("it is a relative path");
    }
    // It names the state dir and the cgroup: one file name each.
    if id.len() > 255 {
        return invalid("it is longer than 255 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return invalid("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// An exclusive flock on the container's state dir, held for the length of
/// an operation so concurrent start, kill and delete never interleave.
pub struct Lock(#[allow(dead_code)] File);

impl Lock {
    /// True while another open of `dir` holds the lock (a `create` that is
    /// still running, for a state.json without a pid yet).
    pub fn is_held(dir: &Path) -> bool {
        let Ok(file) = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
        else {
            return false;
        };
        // SAFETY: flock on an fd we own; it is released when `file` closes.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
    }

    pub fn acquire(dir: &Path) -> std::io::Result<Lock> {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Lock(file))
    }
}

pub struct Container {
    pub dir: PathBuf,
    pub state: State,
    /// This process holds the container's lock (so no `create` is running).
    pub locked: bool,
    /// `run`'s end of the pipe that stands in for exec.fifo (see
    /// CreateOptions::start_now).
    pub release_pipe: Option<std::os::fd::OwnedFd>,
}

impl Container {
    pub fn dir_for(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    pub fn load(root: &Path, id: &str) -> Result<Container, ContainerError> {
        validate_id(id)?;
        let dir = Self::dir_for(root, id);
        match State::load(&dir) {
            Ok(state) => Ok(Container {
                dir,
                state,
                locked: false,
                release_pipe: None,
            }),
            Err(state::StateError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(ContainerError::NotFound(id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Loads under the container's lock. The state is re-read after the lock
    /// is taken, since a concurrent delete may have removed it meanwhile.
    pub fn load_locked(root: &Path, id: &str) -> Result<(Container, Lock), ContainerError> {
        validate_id(id)?;
        let dir = Self::dir_for(root, id);
        let lock = match Lock::acquire(&dir) {
            Ok(lock) => lock,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err("lock", &dir)(e)),
        };
        let mut container = Self::load(root, id)?;
        container.locked = true;
        Ok((container, lock))
    }

    /// `delete --force` of a state dir with no usable state.json (a create
    /// that crashed half-way): kill what is in the default cgroup and
    /// remove both. Returns false if there was no such dir.
    pub fn remove_remains(root: &Path, id: &str) -> Result<bool, ContainerError> {
        validate_id(id)?;
        let dir = Self::dir_for(root, id);
        let _lock = match Lock::acquire(&dir) {
            Ok(lock) => lock,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("lock", &dir)(e)),
        };
        // No record of another driver or path: the default of create
        // without --systemd-cgroup, which is all that can be there.
        let cgroup = crate::cgroups::path_for(None, id);
        // A rootless create makes no cgroup where it cannot write: the
        // default one there is someone else's (root's), never to be killed.
        if crate::cgroups::can_create(&cgroup) {
            let init = crate::cgroups::Init::default();
            crate::cgroups::open(crate::cgroups::Driver::Cgroupfs, &cgroup, init).destroy()?;
        }
        std::fs::remove_dir_all(&dir).map_err(io_err("remove state dir", &dir))?;
        Ok(true)
    }

    /// The container's cgroup, through the driver that made it ("none"
    /// for a rootless container that got no cgroup).
    pub fn cgroup(&self) -> Box<dyn crate::cgroups::Manager> {
        let init = crate::cgroups::Init {
            pid: self.state.pid,
            start_time: self.state.pid_start_time,
        };
        crate::cgroups::open(self.state.cgroup_driver, &self.state.cgroup_path, init)
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The live status: creating while a `create` still writes it (no pid
    /// yet, the lock held); stopped once init is gone (by pid, start time
    /// and cgroup); created while init still waits on the exec fifo, else
    /// running.
    pub fn status(&self) -> Status {
        if self.state.pid == 0 {
            // A create killed before init was ready left this record.
            if !self.locked && Lock::is_held(&self.dir) {
                Status::Creating
            } else {
                Status::Stopped
            }
        } else if !self.state.alive() {
            Status::Stopped
        } else if !self.state.started && self.init_waits_on_fifo() {
            Status::Created
        } else if self.cgroup().is_frozen() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Init has not passed the exec fifo: the fifo is there and init is
    /// still carte's binary, not the user's process. A `start` killed after
    /// it released init leaves the fifo but a process that runs.
    fn init_waits_on_fifo(&self) -> bool {
        if !self.dir.join(state::EXEC_FIFO).exists() {
            return false;
        }
        let Some(carte) = &self.state.init_exe else {
            return true;
        };
        match std::fs::metadata(format!("/proc/{}/exe", self.state.pid)) {
            Ok(exe) => state::FileId::of(&exe) == *carte,
            Err(_) => true,
        }
    }

    pub fn oci_state(&self) -> state::OciState<'_> {
        self.state.oci_ordered(self.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-123", "x_y.z+1", "A"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "a\0b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(255)).is_ok());
        assert!(validate_id(&"x".repeat(256)).is_err());
        assert_eq!(
            shorten(&"x".repeat(1000)).len(),
            66 + " (1000 bytes)".len() + 3
        );
    }
}
