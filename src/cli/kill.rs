use std::path::Path;
use std::process::ExitCode;

use crate::container::Container;

pub fn run(root: &Path, id: &str, signal: &str, all: bool) -> anyhow::Result<ExitCode> {
    let signal = crate::signal::parse(signal)?;
    let container = Container::load(root, id)?;
    container.kill(signal, all)?;
    Ok(ExitCode::SUCCESS)
}
