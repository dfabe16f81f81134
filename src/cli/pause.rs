use std::path::Path;
use std::process::ExitCode;

use crate::container::Container;

/// `pause` (paused = true) and `resume` (false).
pub fn run(root: &Path, id: &str, paused: bool) -> anyhow::Result<ExitCode> {
    let (container, _lock) = Container::load_locked(root, id)?;
    container.set_paused(paused)?;
    Ok(ExitCode::SUCCESS)
}
