use std::path::Path;
use std::process::ExitCode;

use super::CreateArgs;
use crate::container::{self, CreateOptions};

pub fn options(
    args: &CreateArgs,
    driver: crate::cgroups::Driver,
    rootless: crate::rootless::Rootless,
) -> CreateOptions {
    CreateOptions {
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        console_fd: None,
        loaded: None,
        preserve_fds: args.preserve_fds,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        start_now: false,
        cgroup_driver: driver,
        rootless,
    }
}

pub fn run(
    root: &Path,
    args: &CreateArgs,
    driver: crate::cgroups::Driver,
    rootless: crate::rootless::Rootless,
) -> anyhow::Result<ExitCode> {
    container::create(root, &args.id, options(args, driver, rootless))?;
    Ok(ExitCode::SUCCESS)
}
