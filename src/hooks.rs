//! OCI hooks: each runs with the container state JSON on stdin, its own args
//! and env, and is killed if it outlives its timeout.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
    #[error("{kind} hook {path}: {reason}")]
    Failed {
        kind: &'static str,
        path: String,
        reason: String,
    },
}

/// Whether `start` waits until the user's program is exec'd (and so
/// reports a failure to exec it): only with poststart hooks, which must
/// run after it, or startContainer hooks, whose failure must fail it.
/// Without them it returns at once, as runc does.
pub fn start_waits_for_exec(hooks: Option<&oci_spec::runtime::Hooks>) -> bool {
    hooks.is_some_and(|h| {
        h.poststart().as_ref().is_some_and(|l| !l.is_empty())
            || h.start_container().as_ref().is_some_and(|l| !l.is_empty())
    })
}

/// Whether the config has hooks that run in the container's namespaces
/// (createContainer, startContainer): carte execs them from init itself.
pub fn run_in_container(hooks: Option<&oci_spec::runtime::Hooks>) -> bool {
    hooks.is_some_and(|h| {
        h.create_container().as_ref().is_some_and(|l| !l.is_empty())
            || h.start_container().as_ref().is_some_and(|l| !l.is_empty())
    })
}

/// Whether the config has a hook of any kind. Without one, create skips
/// the parent's turn for prestart and createRuntime (and the poststop
/// hooks that a failure after it would run).
pub fn any(hooks: Option<&oci_spec::runtime::Hooks>) -> bool {
    hooks.is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
            h.poststart(),
            h.poststop(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    })
}

/// Runs `hooks` in order; the first failure stops the rest.
pub fn run(kind: &'static str, hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    injection(kind, hooks)?;
    for hook in hooks {
        run_one(hook, state_json).map_err(|reason| failed(kind, hook, reason))?;
    }
    Ok(())
}

/// Runs hooks whose failure must not stop the lifecycle (poststop): each
/// failure is logged as a warning and the remaining hooks
/// still run, "as if the hook had succeeded" (config.md).
pub fn run_logged(kind: &'static str, hooks: &[Hook], state_json: &str) {
    if let Err(e) = injection(kind, hooks) {
        crate::logging::warn(&e.to_string());
        return;
    }
    for hook in hooks {
        if let Err(reason) = run_one(hook, state_json) {
            crate::logging::warn(&failed(kind, hook, reason).to_string());
        }
    }
}

fn injection(kind: &'static str, hooks: &[Hook]) -> Result<(), HookError> {
    if !hooks.is_empty() {
        match kind {
            "prestart" => failpoint!("hook.prestart"),
            "createRuntime" => failpoint!("hook.createRuntime"),
            "createContainer" => failpoint!("hook.createContainer"),
            "startContainer" => failpoint!("hook.startContainer"),
            "poststart" => failpoint!("hook.poststart"),
            "poststop" => failpoint!("hook.poststop"),
            _ => {}
        }
    }
    Ok(())
}

fn failed(kind: &'static str, hook: &Hook, reason: String) -> HookError {
    HookError::Failed {
        kind,
        path: hook.path().display().to_string(),
        reason,
    }
}

fn run_one(hook: &Hook, state_json: &str) -> Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    // Without `env` a hook inherits the runtime's environment (runc's
    // exec.Cmd with a nil Env); with one, even empty, it gets just that.
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| crate::sys::reason(&e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout_ms = hook
        .timeout()
        .map(|s| (s.clamp(0, i64::from(i32::MAX) / 1000) * 1000) as i32)
        .unwrap_or(-1);
    let pidfd = sys::pidfd_open(child.id() as i32).map_err(|e| sys::reason(&e))?;
    let exited = sys::pidfd_wait(pidfd.as_fd(), timeout_ms).map_err(|e| sys::reason(&e))?;
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "timed out after {}s",
            hook.timeout().unwrap_or_default()
        ));
    }
    let status = child.wait().map_err(|e| sys::reason(&e))?;
    if status.success() {
        return Ok(());
    }
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".into(),
    })
}
