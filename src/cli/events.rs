use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::container::{parse_interval, Container, Event};

/// runc's `events`: with --stats one stats object, else a stream of them
/// every --interval and an "oom" object on each OOM, until the container
/// stops.
pub fn run(root: &Path, id: &str, stats: bool, interval: &str) -> anyhow::Result<ExitCode> {
    let interval = parse_interval(interval).map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    if interval.is_zero() {
        bail!("--interval: the interval must be greater than 0");
    }
    let container = Container::load(root, id)?;
    if stats {
        let event = Event::Stats(Box::new(container.stats()?));
        super::output(&format!("{}\n", event.json(id)));
        return Ok(ExitCode::SUCCESS);
    }
    container.events(interval, &mut |event| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A reader that went away ends the stream.
        writeln!(out, "{}", event.json(id)).is_ok() && out.flush().is_ok()
    })?;
    Ok(ExitCode::SUCCESS)
}
