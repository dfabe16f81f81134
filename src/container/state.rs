//! `<root>/<id>/state.json`: what carte remembers of a container between calls.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hooks, LinuxMemoryPolicy, LinuxPersonality, LinuxResources, LinuxSeccomp};
use serde::{Deserialize, Serialize};

use crate::sys;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// The OCI state as runc prints it: ociVersion, id, pid, status, bundle,
/// rootfs, created, annotations (when there are any), owner.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
    pub owner: std::borrow::Cow<'a, str>,
}

/// The saved record. The live status is derived from it (see `Container::status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Start time of the init process (/proc/<pid>/stat field 22), so a
    /// reused pid is never taken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    /// The cgroup the container was put in, relative to each hierarchy's
    /// root; empty for a rootless container that got none (driver "none").
    pub cgroup_path: String,
    /// Who made the cgroup (`--systemd-cgroup` at create): every later
    /// verb goes through the same driver, without the flag.
    #[serde(default)]
    pub cgroup_driver: crate::cgroups::Driver,
    /// Kept so delete can run poststop hooks even if the bundle is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// Set by start once the fifo has been consumed.
    #[serde(default)]
    pub started: bool,
    /// linux.seccomp as created, for the processes `exec` starts: kept
    /// here so a changed or removed bundle cannot drop the filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<LinuxSeccomp>,
    /// linux.personality as created: `exec`'d processes get it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<LinuxPersonality>,
    /// linux.memoryPolicy as created: `exec`'d processes get it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<LinuxMemoryPolicy>,
    /// The resctrl group of linux.intelRdt: `exec` joins it, delete
    /// removes what create made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<crate::intelrdt::Group>,
    /// linux.resources as applied: config.json's, with every `update`
    /// folded in, so the record stays true after the bundle changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<LinuxResources>,
    /// carte's processes for this container run from the read-only binary
    /// (CVE-2019-5736; see cloned_binary.rs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed_binary: bool,
    /// Without a user namespace and without `sealed_binary`: the user's
    /// processes are exec'd by the trampoline (see cloned_binary.rs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trampoline: bool,
    /// The binary init runs until it execs the user's process (carte's
    /// own): while /proc/<pid>/exe is still this file, init has not been
    /// started, whatever a killed `start` left behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_exe: Option<FileId>,
    /// Without a mount namespace of its own (see rootfs/shared.rs): the
    /// mount the rootfs path resolved to before create. The mounts above it
    /// there are the container's, and go with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_mount_base: Option<u64>,
}

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
    #[error("read {path}: {}", crate::sys::reason(.source))]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Decode {
        path: String,
        source: serde_json::Error,
    },
    #[error("write {path}: {}", crate::sys::reason(.source))]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl State {
    pub fn load(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(STATE_FILE);
        let shown = || path.display().to_string();
        let text = fs::read(&path).map_err(|source| StateError::Read {
            path: shown(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| StateError::Decode {
            path: shown(),
            source,
        })
    }

    /// Writes to a temp file and puts it in place of state.json (see
    /// `Prepared::commit`), so a reader sees the old state or the new one,
    /// never half of one.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        self.save_to(dir, None).map(drop)
    }

    /// The file made for it by `prepare`, or a new one. What it returns
    /// holds the replaced copy until dropped (see `Superseded`).
    pub fn save_to(
        &self,
        dir: &Path,
        prepared: Option<Prepared>,
    ) -> Result<Superseded, StateError> {
        failpoint!("state.write");
        let json = serde_json::to_vec(self).expect("state serializes");
        let path = dir.join(STATE_FILE);
        prepared
            .map_or_else(|| Prepared::new(&path, 0o600), Ok)
            .and_then(|p| p.commit(&json))
            .map_err(|source| StateError::Write {
                path: path.display().to_string(),
                source,
            })
    }

    /// A state.json write made ready ahead of `save_to`.
    pub fn prepare(dir: &Path) -> Option<Prepared> {
        Prepared::new(&dir.join(STATE_FILE), 0o600).ok()
    }

    /// The OCI state object that `state` prints and hooks read on stdin.
    pub fn oci(&self, status: Status) -> serde_json::Value {
        serde_json::to_value(self.oci_ordered(status)).expect("plain data serializes")
    }

    /// The state as one line of JSON, for hooks.
    pub fn oci_json(&self, status: Status) -> String {
        serde_json::to_string(&self.oci_ordered(status)).expect("plain data serializes")
    }

    /// The state in runc's key order (its containerState struct), for
    /// what carte prints and hands to hooks.
    pub fn oci_ordered(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: self.annotations.as_ref(),
            owner: std::borrow::Cow::Borrowed(&self.owner),
        }
    }

    /// Init is alive: the saved pid has the saved start time and sits in
    /// the container's cgroup (a reused pid is a stranger). Without a
    /// cgroup (driver "none") the path is empty, which every process is in.
    pub fn alive(&self) -> bool {
        self.pid > 0
            && sys::process_alive(self.pid, self.pid_start_time)
            && sys::process_in_cgroup(self.pid, &self.cgroup_path)
    }
}

pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    Prepared::new(path, mode)?.commit(data).map(drop)
}

/// A temporary file made ahead of an atomic write, so that only the write
/// and the rename are left for when the data is known (create makes the
/// one for init's state.json while init sets itself up).
pub struct Prepared {
    tmp: PathBuf,
    path: PathBuf,
    file: fs::File,
}

impl Prepared {
    pub fn new(path: &Path, mode: u32) -> std::io::Result<Prepared> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        Ok(Prepared {
            tmp,
            path: path.to_path_buf(),
            file,
        })
    }

    /// Writes the data and puts the file in place in one step, for readers.
    /// An existing file is swapped out (RENAME_EXCHANGE), not renamed over:
    /// ext4 flushes a file renamed over another (auto_da_alloc), about
    /// 0.1 ms, and an unlink of the old one then waits for that writeback.
    pub fn commit(mut self, data: &[u8]) -> std::io::Result<Superseded> {
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        let result = self.file.write_all(data).and_then(|()| {
            match renameat2(
                AT_FDCWD,
                &self.tmp,
                AT_FDCWD,
                &self.path,
                RenameFlags::RENAME_EXCHANGE,
            ) {
                Ok(()) => Ok(Superseded(Some(std::mem::take(&mut self.tmp)))),
                // Nothing to swap with, or a file system without exchange.
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => {
                    fs::rename(&self.tmp, &self.path).map(|()| Superseded(None))
                }
                Err(e) => Err(e.into()),
            }
        });
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }
}

/// The copy a commit replaced, under the temporary name, removed on drop:
/// create drops it once init is on its way, off the path to exec.
#[must_use]
pub struct Superseded(Option<PathBuf>);

impl Drop for Superseded {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = fs::remove_file(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_swaps_out_the_old_copy_and_removes_it_on_drop() {
        let dir = std::env::temp_dir().join(format!("carte-commit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let path = dir.join(STATE_FILE);

        // New file: a plain rename, nothing superseded.
        let first = Prepared::new(&path, 0o600).unwrap().commit(b"one").unwrap();
        assert!(first.0.is_none());
        assert_eq!(fs::read(&path).unwrap(), b"one");

        // Existing file: readers see the new data at once; the old copy
        // stays under the temporary name until dropped.
        let second = Prepared::new(&path, 0o600).unwrap().commit(b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&dir).len(), 2);
        drop(second);
        assert_eq!(names(&dir), vec![STATE_FILE.to_string()]);

        write_atomic(&path, b"three", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(names(&dir), vec![STATE_FILE.to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
