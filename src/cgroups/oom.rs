//! OOM notifications for `events`. v1: an eventfd registered on
//! memory.oom_control through cgroup.event_control; the kernel signals it
//! on each OOM of the cgroup, and once more when the cgroup is removed.
//! v2: inotify on memory.events, whose `oom_kill` counter is compared.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{controller_dir, is_unified, CgroupError};

enum Source {
    V1 {
        eventfd: EventFd,
        /// Kept open: the registration lives as long as this file.
        _oom_control: File,
    },
    V2 {
        inotify: Inotify,
        events: PathBuf,
        seen: u64,
    },
}

/// What one wake-up of the watch brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Oom {
    /// This many new OOMs.
    Events(u64),
    /// The cgroup is gone.
    Gone,
}

pub struct OomWatch {
    source: Source,
    dir: PathBuf,
}

fn watch_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.display().to_string();
    move |source| CgroupError::Watch { path, source }
}

impl OomWatch {
    pub fn new(cgroup_path: &str) -> Result<OomWatch, CgroupError> {
        let dir = controller_dir(cgroup_path, "memory").ok_or_else(|| CgroupError::Manager {
            path: cgroup_path.into(),
            reason: "no memory controller on this host".into(),
        })?;
        if is_unified() {
            let events = dir.join("memory.events");
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(|e| watch_err(&events)(e.into()))?;
            inotify
                .add_watch(&events, AddWatchFlags::IN_MODIFY)
                .map_err(|e| watch_err(&events)(e.into()))?;
            let seen = oom_kills(&events);
            return Ok(OomWatch {
                source: Source::V2 {
                    inotify,
                    events,
                    seen,
                },
                dir,
            });
        }
        let control = dir.join("memory.oom_control");
        let oom_control = File::open(&control).map_err(watch_err(&control))?;
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| watch_err(&control)(e.into()))?;
        let register = dir.join("cgroup.event_control");
        std::fs::write(
            &register,
            format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd()),
        )
        .map_err(watch_err(&register))?;
        Ok(OomWatch {
            source: Source::V1 {
                eventfd,
                _oom_control: oom_control,
            },
            dir,
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::V1 { eventfd, .. } => eventfd.as_fd(),
            Source::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Reads what is pending without blocking.
    pub fn read(&mut self) -> Oom {
        let gone = !self.dir.exists();
        let count = match &mut self.source {
            Source::V1 { eventfd, .. } => eventfd.read().unwrap_or(0),
            Source::V2 {
                inotify,
                events,
                seen,
            } => {
                let _ = inotify.read_events();
                let now = oom_kills(events);
                let new = now.saturating_sub(*seen);
                *seen = now;
                new
            }
        };
        // v1 signals the eventfd once more when the cgroup is removed.
        if gone {
            return Oom::Gone;
        }
        Oom::Events(count)
    }
}

fn oom_kills(events: &std::path::Path) -> u64 {
    std::fs::read_to_string(events)
        .map(|t| {
            super::stats::keyed(&t)
                .get("oom_kill")
                .copied()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}
