use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use oci_spec::runtime::{Capabilities, Capability, Process};

use crate::container::{Container, ExecOptions};
use crate::process::foreground;

/// runc's `exec` flags.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// An OCI process object (JSON) to run instead of the command line
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE, added to the config's environment (repeatable)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile for the process (an error where AppArmor is off)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (ignored with a warning where SELinux is off)
    #[arg(long)]
    pub process_label: Option<String>,
    /// Exec even into a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup of the container's:
    /// [CONTROLLER[,CONTROLLER...]:]PATH (repeatable, as runc 1.1)
    #[arg(long = "cgroup", value_name = "[CTRL:]PATH")]
    pub cgroup: Vec<String>,
    pub id: String,
    /// The command and its arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(root: &Path, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let container = Container::load(root, &args.id)?;
    let mut process = build_process(&container, args)?;
    let terminal = process.terminal().unwrap_or(false);
    let own_pty = terminal && args.console_socket.is_none();
    if own_pty && args.detach {
        bail!("--tty with --detach needs --console-socket");
    }
    if own_pty {
        foreground::take_terminal_size(&mut process);
    }
    let pty_socket = if own_pty {
        Some(std::os::unix::net::UnixStream::pair()?)
    } else {
        None
    };
    let (ours, theirs) = match pty_socket {
        Some((ours, theirs)) => (Some(ours), Some(theirs.into())),
        None => (None, None),
    };
    let sigfd = if args.detach {
        None
    } else {
        foreground::become_subreaper();
        Some(foreground::catch_signals()?)
    };
    let pid = container.exec(ExecOptions {
        process,
        console_socket: args.console_socket.clone(),
        console_fd: theirs,
        pid_file: args.pid_file.clone(),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        sub_cgroups: parse_sub_cgroups(&args.cgroup)?,
    })?;
    let Some(sigfd) = sigfd else {
        return Ok(ExitCode::SUCCESS);
    };
    let pty = match &ours {
        Some(sock) => Some(crate::tty::recv_fd(sock.as_fd())?),
        None => None,
    };
    let code = foreground::wait(pid, sigfd, pty);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The process to run: --process FILE as is, or the container's own
/// process object with the command line's changes (runc's behaviour).
fn build_process(container: &Container, args: &ExecArgs) -> anyhow::Result<Process> {
    if let Some(path) = &args.process {
        if !args.command.is_empty() {
            bail!("exec: give either --process or a command, not both");
        }
        let text = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("open {}: {}", path.display(), crate::sys::reason(&e)))?;
        let mut process = crate::config::process_from_bytes(&text, &path.display().to_string())?;
        if args.tty {
            process.set_terminal(Some(true));
        }
        set_labels(&mut process, args);
        return Ok(process);
    }
    if args.command.is_empty() {
        bail!("exec: no command given (and no --process)");
    }
    let mut process = container.config_process().unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    let mut env = process.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    process.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        process.user_mut().set_uid(uid);
        if let Some(gid) = gid {
            process.user_mut().set_gid(gid);
        }
    }
    if !args.additional_gids.is_empty() {
        process
            .user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let added: Capabilities = args
            .cap
            .iter()
            .map(|c| parse_cap(c))
            .collect::<anyhow::Result<_>>()?;
        let grow = |set: &Option<Capabilities>| {
            Some(
                set.clone()
                    .unwrap_or_default()
                    .union(&added)
                    .copied()
                    .collect(),
            )
        };
        // Never the inheritable set (CVE-2022-29162).
        caps.set_bounding(grow(caps.bounding()));
        caps.set_effective(grow(caps.effective()));
        caps.set_permitted(grow(caps.permitted()));
        // As runc: ambient too, but only when the config has an inheritable
        // set; the kernel keeps an ambient cap only if it is inheritable,
        // so this never widens what an exec'd program inherits.
        if caps.inheritable().is_some() {
            caps.set_ambient(grow(caps.ambient()));
        }
        process.set_capabilities(Some(caps));
    }
    set_labels(&mut process, args);
    crate::config::check_process_args(&process)
        .map_err(|(field, reason)| anyhow::anyhow!("exec: {field}: {reason}"))?;
    Ok(process)
}

/// --apparmor and --process-label override the process object's own.
fn set_labels(process: &mut Process, args: &ExecArgs) {
    if let Some(profile) = &args.apparmor {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        process.set_selinux_label(Some(label.clone()));
    }
}

/// `--cgroup` arguments as runc 1.1 reads them: one PATH alone (every
/// controller; cgroup v2), or CTRL[,CTRL...]:PATH ones, each controller
/// once. Pairs of controller ("" for all) and a path relative to the
/// container's cgroup that stays inside it.
fn parse_sub_cgroups(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some(("", _)) => bail!("--cgroup {arg:?}: empty <controller> prefix"),
            Some((ctrls, path)) => (ctrls, path),
            None if args.len() == 1 => ("", arg.as_str()),
            None => bail!("--cgroup {arg:?}: missing <controller>: prefix"),
        };
        let path = path.trim_start_matches('/');
        if path.is_empty() || path.split('/').any(|c| c == "..") {
            bail!("--cgroup {arg:?}: the path must name a sub-cgroup, without \"..\"");
        }
        if ctrls.is_empty() {
            out.push((String::new(), path.to_string()));
            continue;
        }
        for ctrl in ctrls.split(',') {
            if ctrl.is_empty() {
                bail!("--cgroup {arg:?}: empty <controller> prefix");
            }
            if out.iter().any(|(c, _)| c == ctrl) {
                bail!("--cgroup: controller {ctrl} given more than once");
            }
            out.push((ctrl.to_string(), path.to_string()));
        }
    }
    Ok(out)
}

fn parse_user(user: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let bad = || anyhow::anyhow!("--user {user:?}: expected UID[:GID] as numbers");
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

fn parse_cap(name: &str) -> anyhow::Result<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| anyhow::anyhow!("--cap {name:?}: unknown capability"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert!(parse_user("bob").is_err());
        assert!(parse_user("1:x").is_err());
    }

    #[test]
    fn sub_cgroups() {
        let v =
            |a: &[&str]| parse_sub_cgroups(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["sub"]).unwrap(), [("".into(), "sub".into())]);
        assert_eq!(
            v(&["cpu,memory:/a/b", "pids:c"]).unwrap(),
            [
                ("cpu".to_string(), "a/b".to_string()),
                ("memory".into(), "a/b".into()),
                ("pids".into(), "c".into())
            ]
        );
        for bad in [
            &["a", "b"][..],
            &[":x"],
            &["cpu:x", "cpu:y"],
            &["../up"],
            &["cpu:a/../.."],
            &["/"],
        ] {
            assert!(v(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn caps() {
        assert!(parse_cap("CAP_SYS_ADMIN").is_ok());
        assert!(parse_cap("CAP_NOPE").is_err());
    }
}
