//! `events`: the container's cgroup statistics and OOM notifications, one
//! JSON object a line, in runc's shape.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::state::Status;
use super::{Container, ContainerError};
use crate::cgroups::{Oom, Stats};
use crate::sys;

pub enum Event {
    Stats(Box<Stats>),
    Oom,
}

/// runc's event object, its keys in runc's order: `{"type":"stats",
/// "id":...,"data":{...}}` (a Value would sort them).
#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

impl Event {
    /// The event as one line of JSON, without the newline.
    pub fn json(&self, id: &str) -> String {
        let line = match self {
            Event::Stats(stats) => Line {
                kind: "stats",
                id,
                data: Some(stats),
            },
            Event::Oom => Line {
                kind: "oom",
                id,
                data: None,
            },
        };
        serde_json::to_string(&line).expect("plain data serializes")
    }
}

impl Container {
    fn check_watchable(&self) -> Result<(), ContainerError> {
        let status = self.status();
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(ContainerError::WrongState {
                op: "get events of",
                id: self.id().into(),
                status,
            });
        }
        Ok(())
    }

    /// The cgroup statistics now (`events --stats`).
    pub fn stats(&self) -> Result<Stats, ContainerError> {
        self.check_watchable()?;
        Ok(self.cgroup().stats()?)
    }

    /// Calls `emit` with the statistics every `interval` and with each OOM,
    /// until the container stops or `emit` returns false (its reader left).
    pub fn events(
        &self,
        interval: Duration,
        emit: &mut dyn FnMut(Event) -> bool,
    ) -> Result<(), ContainerError> {
        self.check_watchable()?;
        let cgroup = self.cgroup();
        let mut oom = cgroup.oom_watch()?;
        let init = sys::pidfd_open(self.state.pid).map_err(super::io_err(
            "watch init",
            std::path::Path::new(&format!("/proc/{}", self.state.pid)),
        ))?;
        let mut next = Instant::now() + interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            let timeout = PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX);
            let (oom_ready, init_gone) = {
                let mut fds = [
                    PollFd::new(oom.fd(), PollFlags::POLLIN),
                    PollFd::new(init.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        return Err(super::io_err("poll", std::path::Path::new("events"))(
                            e.into(),
                        ))
                    }
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            // OOMs first: an OOM kill of init wakes both at once.
            if oom_ready || init_gone {
                match oom.read() {
                    Oom::Gone => return Ok(()),
                    Oom::Events(n) => {
                        for _ in 0..n {
                            if !emit(Event::Oom) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            if init_gone {
                return Ok(());
            }
            if Instant::now() >= next {
                next += interval;
                if !emit(Event::Stats(Box::new(cgroup.stats()?))) {
                    return Ok(());
                }
            }
        }
    }
}

/// A Go duration, as runc's `--interval` takes: "5s", "500ms", "1m30s",
/// "1.5h", units ns, us (µs), ms, s, m, h.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}");
    let mut rest = text;
    let mut total = 0f64;
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        let value: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_interval("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert!(parse_interval("5").is_err());
        assert!(parse_interval("5x").is_err());
        assert!(parse_interval("").is_err());
    }
}
