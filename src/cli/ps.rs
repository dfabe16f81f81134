use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::ListFormat;
use crate::container::Container;

/// runc's `ps`: json prints the pids; table runs ps(1) with the given
/// arguments (default -ef) and keeps the header and the container's lines.
pub fn run(
    root: &Path,
    id: &str,
    format: ListFormat,
    ps_args: &[String],
) -> anyhow::Result<ExitCode> {
    let container = Container::load(root, id)?;
    let pids = container.processes();
    if let ListFormat::Json = format {
        if !ps_args.is_empty() {
            bail!("ps: arguments for ps(1) make no sense with --format json");
        }
        super::output(&format!("{}\n", serde_json::json!(pids)));
        return Ok(ExitCode::SUCCESS);
    }
    let args: Vec<&str> = if ps_args.is_empty() {
        vec!["-ef"]
    } else {
        ps_args.iter().map(String::as_str).collect()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| anyhow::anyhow!("run ps: {}", crate::sys::reason(&e)))?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow::anyhow!("ps {}: no PID column in its output", args.join(" ")))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    super::output(&out);
    Ok(ExitCode::SUCCESS)
}
