use std::path::Path;
use std::process::ExitCode;

use crate::container::Container;

pub fn run(root: &Path, id: &str, signal: &str, all: bool) -> anyhow::Result<ExitCode> {
    let signal = crate::signal::parse(signal)?;
    // Under the lock: a concurrent delete can't reap and free the pid
    // between the liveness check and the signal.
    let (container, _lock) = Container::load_locked(root, id)?;
    container.kill(signal, all)?;
    Ok(ExitCode::SUCCESS)
}
