use std::path::Path;
use std::process::ExitCode;

use crate::container::Container;

pub fn run(root: &Path, id: &str) -> anyhow::Result<ExitCode> {
    let (mut container, _lock) = Container::load_locked(root, id)?;
    container.start()?;
    Ok(ExitCode::SUCCESS)
}
