use std::path::Path;
use std::process::ExitCode;

use crate::container::{Container, ContainerError};

pub fn run(root: &Path, id: &str, force: bool) -> anyhow::Result<ExitCode> {
    match Container::load_locked(root, id) {
        Ok((container, _lock)) => container.delete(force)?,
        // containerd deletes, then deletes again with --force: the second
        // must succeed. A dir without a usable state.json is cleared too.
        Err(ContainerError::NotFound(_) | ContainerError::State(_)) if force => {
            if Container::remove_remains(root, id)? {
                crate::logging::warn(&format!(
                    "container {id}: removed a state dir without a usable state.json"
                ));
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}
