//! The third driver: no cgroup at all, for a rootless container that has
//! no writable (delegated) cgroup to go in (rootless.rs decides, once, at
//! create; state.json records driver "none" and an empty path). Its
//! processes stay in the caller's cgroup. Resources were refused up front
//! (`rootless::Rootless::check`), so making, joining and setting do
//! nothing; freezing, updating and statistics are one clear error; the
//! container's processes are found through init's PID namespace.

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::{CgroupError, Init, Manager, OomWatch, SelfJoin, Stats};

pub(super) struct NoCgroup {
    init: Init,
}

impl NoCgroup {
    pub(super) fn new(init: Init) -> NoCgroup {
        NoCgroup { init }
    }

    fn refuse(op: &'static str) -> CgroupError {
        CgroupError::NoCgroup { op }
    }
}

impl Manager for NoCgroup {
    fn path(&self) -> &str {
        ""
    }

    fn apply(&mut self, _pid: i32) -> Result<SelfJoin, CgroupError> {
        Ok(SelfJoin::default())
    }

    /// Device rules stay unapplied, as in runc without a cgroup: the nodes
    /// a rootless container gets are bind mounts the kernel already guards.
    fn set(&mut self, _: &LinuxResources, _: &[LinuxDevice]) -> Result<(), CgroupError> {
        Ok(())
    }

    fn update(&mut self, _: &LinuxResources) -> Result<(), CgroupError> {
        Err(Self::refuse("update"))
    }

    /// A pids limit is a resource: refused before anything was made.
    fn forbid_new_tasks(&self) -> Result<(), CgroupError> {
        Ok(())
    }

    /// An exec'd process stays in the caller's cgroup, as init did.
    fn enter(&mut self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        Err(Self::refuse(if frozen { "pause" } else { "resume" }))
    }

    fn is_frozen(&self) -> bool {
        false
    }

    fn kill(&self, signal: i32) {
        for pid in self.pids() {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(pid, signal) };
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        Err(Self::refuse("get the statistics of"))
    }

    fn oom_watch(&self) -> Result<OomWatch, CgroupError> {
        Err(Self::refuse("watch the events of"))
    }

    /// The processes in init's PID namespace when it has one of its own,
    /// else init alone; none once init is gone (its pid may be reused).
    fn pids(&self) -> Vec<i32> {
        let Init { pid, start_time } = self.init;
        if pid <= 0 || !crate::sys::process_alive(pid, start_time) {
            return Vec::new();
        }
        crate::sys::pid_ns_members(pid)
    }

    /// The caller's cgroup is not the container's to hand over.
    fn delegate(&self, _uid: u32, _gid: u32) -> Result<(), CgroupError> {
        Ok(())
    }

    /// Nothing was made; init's death ends its PID namespace.
    fn destroy(&mut self) -> Result<(), CgroupError> {
        Ok(())
    }
}
