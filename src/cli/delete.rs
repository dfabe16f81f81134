use std::path::Path;
use std::process::ExitCode;

use crate::container::{Container, ContainerError};

pub fn run(root: &Path, id: &str, force: bool) -> anyhow::Result<ExitCode> {
    match Container::load_locked(root, id) {
        Ok((container, _lock)) => container.delete(force)?,
        // containerd deletes, then deletes again with --force: the second must succeed.
        Err(ContainerError::NotFound(_)) if force => {}
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}
