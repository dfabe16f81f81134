//! `--log FILE` and `--log-format text|json`.
//!
//! JSON lines have runc's shape, `{"level":"error","msg":"...","time":"..."}`,
//! because containerd shows its user the last error line of the log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("open log file {path}: {}", crate::sys::reason(.source))]
    Open {
        path: String,
        source: std::io::Error,
    },
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once, before any verb runs. Without `--log`, warnings
/// and debug lines (`--debug`) go to stderr; errors are printed by the
/// caller.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<(), LogError> {
    let file = match path {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .mode(0o644)
                .open(path)
                .map_err(|source| LogError::Open {
                    path: path.display().to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        if level >= Level::Warn {
            eprintln!("carte: {}: {msg}", level.as_str());
        }
        return;
    };
    if level == Level::Debug && !logger.debug {
        return;
    }
    match &logger.file {
        // One write per line, so concurrent writers (O_APPEND) never interleave.
        Some(file) => {
            let mut file: &File = file;
            let _ = file
                .write_all(format_line(logger.format, level, msg, SystemTime::now()).as_bytes());
        }
        // Debug lines have runc's shape on stderr too (logrus's, in the
        // --log-format asked for).
        None if level == Level::Debug => {
            eprint!(
                "{}",
                format_line(logger.format, level, msg, SystemTime::now())
            )
        }
        None if level != Level::Error => eprintln!("carte: {}: {msg}", level.as_str()),
        None => {}
    }
}

pub fn error(msg: &str) {
    log(Level::Error, msg);
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg);
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

/// Times the phases of a verb for `--debug`: each `mark` logs the time
/// since the previous one. Costs one clock read per mark when debug is off.
pub struct Phases {
    last: std::time::Instant,
}

impl Phases {
    pub fn start() -> Phases {
        Phases {
            last: std::time::Instant::now(),
        }
    }

    pub fn mark(&mut self, phase: &str) {
        if debug_enabled() {
            let now = std::time::Instant::now();
            debug(&format!(
                "{phase}: {:.3} ms",
                (now - self.last).as_secs_f64() * 1000.0
            ));
            self.last = now;
        }
    }
}

fn format_line(format: Format, level: Level, msg: &str, now: SystemTime) -> String {
    let time = rfc3339(now, false);
    match format {
        Format::Json => {
            let line = serde_json::json!({ "level": level.as_str(), "msg": msg, "time": time });
            format!("{line}\n")
        }
        Format::Text => format!("time={time:?} level={} msg={msg:?}\n", level.as_str()),
    }
}

/// RFC 3339 in UTC, with nanoseconds if asked (the state's `created`).
pub fn rfc3339(t: SystemTime, nanos: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos {
        format!(
            "{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{:09}Z",
            d.subsec_nanos()
        )
    } else {
        format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_795_305_600, 5);
        assert_eq!(rfc3339(t, true), "2026-11-22T00:00:00.000000005Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t, false), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn json_line_shape() {
        let line = format_line(Format::Json, Level::Error, "exec \"/x\": boom", UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "exec \"/x\": boom");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_line_shape() {
        let line = format_line(Format::Text, Level::Warn, "hi", UNIX_EPOCH);
        assert_eq!(
            line,
            "time=\"1970-01-01T00:00:00Z\" level=warning msg=\"hi\"\n"
        );
    }
}
