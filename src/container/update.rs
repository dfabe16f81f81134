//! `update`: new resource limits for a live container.

use oci_spec::runtime::LinuxResources;

use super::state::Status;
use super::{Container, ContainerError};
use crate::cgroups::{self, Cgroup, CgroupError};

impl Container {
    /// Applies `changes` to the container's cgroup and records them in
    /// state.json. Fields left out keep their values. Device rules can't
    /// change (as in runc, which skips them): the same rules again are
    /// accepted, as containerd resends the whole resources object.
    pub fn update(&mut self, changes: &LinuxResources) -> Result<(), ContainerError> {
        let status = self.status();
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(ContainerError::WrongState {
                op: "update",
                id: self.id().into(),
                status,
            });
        }
        let recorded = self.state.resources.clone().unwrap_or_default();
        let mut changes = changes.clone();
        if let Some(devices) = changes.devices() {
            if !devices.is_empty() && Some(devices) != recorded.devices().as_ref() {
                return Err(CgroupError::Unsupported {
                    field: "devices".into(),
                    reason: "update cannot change device rules; they are set at create".into(),
                }
                .into());
            }
            changes.set_devices(None);
        }
        Cgroup::open(self.cgroup_for("update")?)?.update(&changes)?;
        let mut merged = recorded;
        cgroups::merge(&mut merged, &changes);
        self.state.resources = Some(merged);
        self.state.save(&self.dir)?;
        Ok(())
    }
}
