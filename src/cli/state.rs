use std::path::Path;
use std::process::ExitCode;

use crate::container::Container;

pub fn run(root: &Path, id: &str) -> anyhow::Result<ExitCode> {
    let container = Container::load(root, id)?;
    super::output(&(serde_json::to_string_pretty(&container.oci_state())? + "\n"));
    Ok(ExitCode::SUCCESS)
}
