use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use super::CreateArgs;
use crate::container::{self, Container};
use crate::process::foreground;

/// `keep`: the container stays, stopped, after its process exits (runc's
/// `--keep`), for `state` and then `delete`.
pub fn run(
    root: &Path,
    args: &CreateArgs,
    detach: bool,
    keep: bool,
    driver: crate::cgroups::Driver,
    rootless: crate::rootless::Rootless,
) -> anyhow::Result<ExitCode> {
    let mut opts = super::create::options(args, driver, rootless);
    opts.start_now = true;
    // With process.terminal and no console socket, carte holds the pty itself.
    let mut own_pty = false;
    if !detach && args.console_socket.is_none() {
        let mut bundle = crate::config::load(&args.bundle)?;
        own_pty = bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
        if own_pty {
            if let Some(process) = bundle.spec.process_mut() {
                foreground::take_terminal_size(process);
            }
        }
        opts.loaded = Some(bundle);
    }
    let pty_socket = if own_pty {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        opts.console_fd = Some(theirs.into());
        Some(ours)
    } else {
        None
    };
    if !detach {
        foreground::become_subreaper();
    }
    let mut container = container::create(root, &args.id, opts)?;
    let pty = match &pty_socket {
        Some(sock) => Some(crate::tty::recv_fd(sock.as_fd())?),
        None => None,
    };
    // Signals are caught before start, so none is lost before the wait loop.
    let sigfd = if detach {
        None
    } else {
        Some(foreground::catch_signals()?)
    };
    let mut phases = crate::logging::Phases::start();
    if let Err(e) = container.start() {
        if !keep {
            let _ = container.delete(true);
        }
        return Err(e.into());
    }
    let Some(sigfd) = sigfd else {
        return Ok(ExitCode::SUCCESS);
    };
    phases.mark("start");
    let code = foreground::wait(container.state.pid, sigfd, pty);
    phases.mark("wait for the container's exit");
    if !keep {
        let (container, _lock) = Container::load_locked(root, &args.id)?;
        container.delete(true)?;
        phases.mark("delete");
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
