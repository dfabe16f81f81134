//! `create`: the state dir, the exec fifo, the cgroup, then the fork chain.
//! Until create returns, a guard undoes whatever was made if any step fails.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use super::state::{write_atomic, FileId, State, Status, EXEC_FIFO};
use super::{io_err, validate_id, Container, ContainerError, Lock};
use crate::cgroups::{self, Driver};
use crate::cloned_binary::{Defence, Trampoline};
use crate::process::{self, InitArgs, Release, Stage};
use crate::{config, hooks, logging, sys};
use oci_spec::runtime::LinuxNamespaceType;

#[derive(Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A console socket already connected (run's own pty).
    pub console_fd: Option<OwnedFd>,
    /// The bundle, when the caller has loaded it already (run reads
    /// process.terminal first): config.json is read and checked once.
    pub loaded: Option<config::Bundle>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `run`: init execs the process as soon as it is created, released
    /// through a pipe `start` reads instead of the exec fifo.
    pub start_now: bool,
    /// Who makes the cgroup (the global `--systemd-cgroup`); rootless
    /// may turn it into "none" (`Rootless::cgroup_driver`).
    pub cgroup_driver: Driver,
    /// The rootless decisions, taken once by the caller (root mode by
    /// default).
    pub rootless: crate::rootless::Rootless,
}

/// Undoes a failed create: kills init, detaches what it mounted in carte's
/// mount namespace, removes the cgroup and the state dir. Once the
/// create-time hooks have begun, the poststop hooks follow: a failing
/// prestart, createRuntime or createContainer hook stops the container and
/// goes on at lifecycle step 12 (runtime.md), whose step 13 runs them.
struct Undo {
    dir: PathBuf,
    cgroup: Option<(Driver, String)>,
    /// The resctrl group create made or joined (linux.intelRdt).
    rdt: Option<crate::intelrdt::Group>,
    init_pid: Option<i32>,
    /// The rootfs and the mount under carte's, without a mount namespace.
    shared_mounts: Option<(PathBuf, u64)>,
    armed: bool,
    poststop: Vec<oci_spec::runtime::Hook>,
    /// The state given to the create-time hooks, set when they begin.
    hooks_began: Rc<RefCell<Option<String>>>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init_pid {
            // SAFETY: kill(2) with plain integers; pid is our init, still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some((rootfs, base)) = &self.shared_mounts {
            if let Err(e) = crate::rootfs::shared::detach_above(rootfs, *base) {
                logging::warn(&format!(
                    "cleanup after failed create: unmount {}: {}",
                    rootfs.display(),
                    sys::reason(&e)
                ));
            }
        }
        if let Some((driver, path)) = &self.cgroup {
            if let Err(e) = cgroups::open(*driver, path, cgroups::Init::default()).destroy() {
                logging::warn(&format!("cleanup after failed create: {e}"));
            }
        }
        if let Some(group) = &self.rdt {
            group.remove();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(json) = self.hooks_began.borrow().as_deref() {
            let stopped = json.replacen("\"status\":\"created\"", "\"status\":\"stopped\"", 1);
            hooks::run_logged("poststop", &self.poststop, &stopped);
        }
    }
}

pub fn create(root: &Path, id: &str, mut opts: CreateOptions) -> Result<Container, ContainerError> {
    let mut phases = logging::Phases::start();
    validate_id(id)?;
    super::check_preserve_fds(opts.preserve_fds)?;
    let bundle = match opts.loaded.take() {
        Some(bundle) => bundle,
        None => config::load(&opts.bundle)?,
    };
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let caps = crate::capabilities::resolve(
        spec.process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref()),
    )
    .map_err(|e| config::ConfigError::Invalid {
        path: bundle.config_path().display().to_string(),
        field: "process.capabilities".into(),
        reason: e.to_string(),
    })?;
    let namespaces = crate::namespaces::Plan::from_spec(linux);
    // In a user namespace init's bounding set is a full one (the kernel
    // gives one with the namespace), whatever carte's own lacks.
    if !caps.left_out.is_empty() && !namespaces.has(LinuxNamespaceType::User) {
        let names: Vec<String> = caps.left_out.iter().map(|c| c.to_string()).collect();
        logging::warn(&format!(
            "process.capabilities: {} cannot be granted here (not in carte's own bounding set): left out",
            names.join(", ")
        ));
    }
    if let Some(w) = linux
        .personality()
        .as_ref()
        .and_then(crate::process::sched::personality_warning)
    {
        logging::warn(&w);
    }
    check_terminal(spec, &opts, &bundle.config_path())?;
    // Rootless: which cgroup driver (none without a writable cgroup), who
    // writes the id maps, and what needs privilege, all settled before
    // anything is made.
    let driver = opts.rootless.cgroup_driver(opts.cgroup_driver, spec, id)?;
    let id_maps = opts.rootless.id_maps(spec, &bundle.config_path())?;
    opts.rootless.check(
        spec,
        &bundle.config_path(),
        driver != Driver::None,
        &id_maps,
    )?;
    // CVE-2019-5736, before anything is made, the seccomp filter included:
    // the re-exec starts this create over. Only a trampoline's fit depends
    // on the profile; where it does not fit, or cannot be made, the re-exec
    // comes after the compile.
    let mut defence = crate::cloned_binary::defence_for(spec, None);
    if defence == Defence::ReadOnlyExe {
        crate::cloned_binary::ensure()?;
    }
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()?;
    let mut trampoline = None;
    if defence == Defence::Trampoline {
        if seccomp
            .as_ref()
            .is_none_or(crate::cloned_binary::trampoline_calls_allowed)
        {
            trampoline = Trampoline::new()
                .map_err(|e| {
                    logging::debug(&format!("{e}: re-exec from the read-only binary instead"))
                })
                .ok();
        }
        if trampoline.is_none() {
            defence = Defence::ReadOnlyExe;
            crate::cloned_binary::ensure()?;
        }
    }
    if let Some(filter) = &seccomp {
        if !filter.skipped.is_empty() {
            logging::warn(&format!(
                "seccomp: unknown syscalls skipped: {}",
                filter.skipped.join(", ")
            ));
        }
    }
    // The driver checks cgroupsPath in its own syntax before anything exists.
    let device_rules = opts.rootless.device_rules();
    let mut cgroup = cgroups::for_create(driver, spec, id, device_rules).map_err(|e| match e {
        cgroups::CgroupError::Invalid { field, reason } => config::ConfigError::Invalid {
            path: bundle.config_path().display().to_string(),
            field,
            reason,
        }
        .into(),
        e => ContainerError::from(e),
    })?;
    let cgroup_path = cgroup.path().to_string();
    let net_devices = linux.net_devices().as_ref().filter(|d| !d.is_empty());
    if let Some(devices) = net_devices {
        crate::netdev::check_host(devices)?;
    }
    phases.mark("load and validate config.json, compile seccomp");
    // Before anything is made, where runc checks.
    cgroups::refuse_frozen(&cgroup_path)?;
    // Idmapped mounts are made here, detached, by a process still
    // privileged over their filesystems (rootfs/idmap.rs); init attaches
    // them. Nothing else exists yet that a failure would have to undo.
    let idmapped = crate::rootfs::idmap::prepare(spec)?;
    if !idmapped.mounts.is_empty() {
        phases.mark("idmapped mounts");
    }

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(io_err("create state root", root))?;
    let dir = Container::dir_for(root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ContainerError::Exists(id.into()))
        }
        Err(e) => return Err(io_err("create state dir", &dir)(e)),
    }
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: None,
        rdt: None,
        init_pid: None,
        shared_mounts: None,
        armed: true,
        poststop: spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .unwrap_or_default(),
        hooks_began: Rc::new(RefCell::new(None)),
    };
    failpoint!("create.state_dir");
    failpoint!("create.lock");
    let _lock = Lock::acquire(&dir).map_err(io_err("lock", &dir))?;
    // Without a mount namespace, init mounts in carte's: note what the
    // rootfs path is before, to tell the container's mounts from the rest.
    let own_mount_ns = namespaces.has(LinuxNamespaceType::Mount);
    let shared_mount_base = if own_mount_ns {
        None
    } else {
        Some(
            crate::rootfs::shared::mount_id(&bundle.rootfs)
                .map_err(io_err("find the mount of rootfs", &bundle.rootfs))?,
        )
    };
    undo.shared_mounts = shared_mount_base.map(|base| (bundle.rootfs.clone(), base));
    // The resctrl group, checked and set up before any process exists.
    if let Some(rdt) = linux.intel_rdt() {
        let group = crate::intelrdt::Resctrl::find()?.prepare(rdt, id)?;
        undo.rdt = Some(group);
    }
    // Recorded without a pid as soon as the intermediate is forked, before
    // the cgroup is made (see `meanwhile` below).
    let mut state = State {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: logging::rfc3339(SystemTime::now(), true),
        owner: String::new(),
        annotations: spec.annotations().clone(),
        cgroup_path: cgroup_path.clone(),
        cgroup_driver: driver,
        hooks: spec.hooks().clone(),
        started: false,
        seccomp: linux.seccomp().clone(),
        personality: linux.personality().clone(),
        memory_policy: linux.memory_policy().clone(),
        intel_rdt: undo.rdt.clone(),
        resources: linux.resources().clone(),
        sealed_binary: defence == Defence::ReadOnlyExe,
        trampoline: defence == Defence::Trampoline,
        init_exe: std::fs::metadata("/proc/self/exe")
            .ok()
            .map(|m| FileId::of(&m)),
        shared_mount_base,
    };

    // `run` starts at once: a pipe it reads instead of the fifo, which
    // would make init wait for a `start` that is this same process.
    let (fifo, pipe_reader) = if opts.start_now {
        let (reader, writer) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| io_err("create the release pipe", &dir)(e.into()))?;
        (writer, Some(reader))
    } else {
        (open_exec_fifo(&dir)?, None)
    };

    let console: Option<OwnedFd> = match (&opts.console_fd, &opts.console_socket) {
        (Some(_), _) => None,
        (None, Some(path)) => Some(
            UnixStream::connect(path)
                .map_err(io_err("connect console socket", path))?
                .into(),
        ),
        (None, None) => None,
    };
    let console_ref = opts.console_fd.as_ref().or(console.as_ref());

    phases.mark("state dir, lock and exec fifo");
    failpoint!("cgroup.create");

    let args = InitArgs {
        id,
        spec,
        rootfs: &bundle.rootfs,
        release: if opts.start_now {
            Release::Pipe(&fifo)
        } else {
            Release::Fifo(&fifo)
        },
        console_socket: console_ref,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        cgroup_path: &cgroup_path,
        id_maps: &id_maps,
        in_userns: opts.rootless.in_userns,
        seccomp: seccomp.as_ref(),
        trampoline: trampoline.as_ref(),
        idmapped: &idmapped.mounts,
    };
    // The hooks of lifecycle steps 3 to 5 run once the environment of step 2
    // exists: the spec's `created` ("after step 2 in the lifecycle ... has
    // neither exited nor executed the user-specified program"); it was also
    // `created` for prestart when spec 1.0 ran it at start.
    let hooks_began = Rc::clone(&undo.hooks_began);
    let mut runtime_hooks = |pid: i32| -> Result<String, String> {
        let mut created = state.clone();
        created.pid = pid;
        let json = created.oci_json(Status::Created);
        *hooks_began.borrow_mut() = Some(json.clone());
        if let Some(h) = spec.hooks() {
            hooks::run(
                "prestart",
                h.prestart().as_deref().unwrap_or_default(),
                &json,
            )
            .map_err(|e| e.to_string())?;
            hooks::run(
                "createRuntime",
                h.create_runtime().as_deref().unwrap_or_default(),
                &json,
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(json)
    };
    let mut on_listener = |pid: i32, fd: OwnedFd| -> Result<(), String> {
        let mut creating = state.clone();
        creating.pid = pid;
        let filter = seccomp
            .as_ref()
            .ok_or("seccomp listener without a filter")?;
        filter
            .send_listener(pid, creating.oci(Status::Creating), fd)
            .map_err(|e| e.to_string())
    };
    phases.mark("open cgroup");
    let mut prepared = None;
    let mut init_start_time = None;
    // The state.json writes overlap the intermediate's namespaces and
    // init's setup. The first goes before the cgroup is made: a create
    // killed from there on leaves a container that `state` calls stopped
    // and `delete` removes, cgroup included (it may be anywhere, by
    // cgroupsPath). Before it, only the intermediate exists, which dies
    // with this process.
    let rdt_group = undo.rdt.clone();
    let mut meanwhile = |stage| {
        match stage {
            Stage::Forked => {
                // delete kills whatever is in the container's cgroup: never
                // take one that holds processes already (cgroupsPath "/" or
                // a service's). Checked here, beside the intermediate's
                // namespaces, which take longer than the cgroup work.
                let strangers =
                    cgroups::open(driver, &cgroup_path, cgroups::Init::default()).pids();
                if !strangers.is_empty() {
                    return Err(config::ConfigError::Invalid {
                        path: bundle.config_path().display().to_string(),
                        field: "linux.cgroupsPath".into(),
                        reason: format!(
                            "cgroup {cgroup_path} already holds {} processes",
                            strangers.len()
                        ),
                    }
                    .to_string());
                }
                // Only now: undoing a failed create kills what is in it.
                undo.cgroup = Some((driver, cgroup_path.clone()));
                state.save(&dir).map_err(|e| e.to_string())?
            }
            Stage::Started => prepared = State::prepare(&dir),
            Stage::InitForked(pid) => {
                init_start_time = sys::proc_stat(pid).map(|s| s.start_time);
                // Init's network namespace exists: the devices go in while
                // it sets up, before anything of the user's runs.
                if let Some(devices) = net_devices {
                    crate::netdev::move_all(devices, pid).map_err(|e| e.to_string())?;
                }
                // Before init execs: every process of the container is in
                // the group.
                if let Some(group) = &rdt_group {
                    group.join(pid).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    };
    let init = process::spawn(
        &args,
        cgroup.as_mut(),
        &mut runtime_hooks,
        &mut on_listener,
        &mut meanwhile,
    )?;
    let pid = init.pid;
    phases.mark("fork chain until init is ready");
    undo.init_pid = Some(pid);
    let no_new_tasks = linux
        .resources()
        .as_ref()
        .and_then(|r| r.pids().as_ref())
        .is_some_and(|p| p.limit() == 0);
    if no_new_tasks {
        cgroup.forbid_new_tasks()?;
    }
    if let Some((uid, gid)) = cgroup_owner(spec, cgroups::is_unified()) {
        cgroup.delegate(uid, gid)?;
    }
    state.pid = pid;
    state.pid_start_time = init_start_time.ok_or_else(|| {
        ContainerError::Process(process::ProcessError::Child(
            "container init exited right after it was ready".into(),
        ))
    })?;
    // Init goes on to exec as soon as it is Created: recorded started
    // now, with no second write from `start`.
    state.started = opts.start_now;
    let superseded = state.save_to(&dir, prepared)?;
    if let Some(pid_file) = &opts.pid_file {
        write_atomic(pid_file, pid.to_string().as_bytes(), 0o644)
            .map_err(io_err("write pid file", pid_file))?;
    }
    // The pipe hangs up when init's end closes at its execve: no copy here.
    drop(fifo);
    init.created()?;
    drop(superseded);
    phases.mark("write state.json and pid file");
    undo.armed = false;
    Ok(Container {
        dir,
        state,
        locked: false,
        release_pipe: pipe_reader,
    })
}

/// Makes exec.fifo in the state dir and opens it O_PATH, for init to
/// reopen for writing (which blocks until `start`).
fn open_exec_fifo(dir: &Path) -> Result<OwnedFd, ContainerError> {
    let fifo_path = dir.join(EXEC_FIFO);
    failpoint!("fifo.create");
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| io_err("create exec fifo", &fifo_path)(e.into()))?;
    // Past the umask: init may run as any user, even in a user namespace.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(io_err("chmod exec fifo", &fifo_path))?;
    failpoint!("fifo.open");
    Ok(std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(io_err("open exec fifo", &fifo_path))?
        .into())
}

/// The host uid and gid the container's cgroup goes to, when the spec says
/// it should change hands: cgroup v2 (delegation is not safe on v1), a new
/// user and a new cgroup namespace, and a read-write cgroup mount at
/// /sys/fs/cgroup (config-linux.md, Cgroup ownership).
fn cgroup_owner(spec: &oci_spec::runtime::Spec, unified: bool) -> Option<(u32, u32)> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    if !unified {
        return None;
    }
    let linux = spec.linux().as_ref()?;
    let new = |t: T| {
        linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    if !new(T::User) || !new(T::Cgroup) {
        return None;
    }
    let rw_cgroup_mount = spec.mounts().iter().flatten().any(|m| {
        m.source().as_deref() == Some(Path::new("cgroup"))
            && m.destination() == Path::new("/sys/fs/cgroup")
            && !m.options().iter().flatten().any(|o| o == "ro")
    });
    if !rw_cgroup_mount {
        return None;
    }
    let user = spec.process().as_ref()?.user();
    let host = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, id: u32| {
        maps.iter().flatten().find_map(|m| {
            let off = id.checked_sub(m.container_id())?;
            (off < m.size()).then(|| m.host_id() + off)
        })
    };
    Some((
        host(linux.uid_mappings(), user.uid())?,
        host(linux.gid_mappings(), user.gid())?,
    ))
}

/// runc's rule: a terminal needs a console socket under create, and a
/// console socket needs a terminal.
fn check_terminal(
    spec: &oci_spec::runtime::Spec,
    opts: &CreateOptions,
    config: &Path,
) -> Result<(), ContainerError> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let has_socket = opts.console_socket.is_some() || opts.console_fd.is_some();
    let reason = match (terminal, has_socket) {
        (true, false) => "process.terminal is true but no --console-socket was given",
        (false, true) => "--console-socket was given but process.terminal is false",
        _ => return Ok(()),
    };
    Err(config::ConfigError::Invalid {
        path: config.display().to_string(),
        field: "process.terminal".into(),
        reason: reason.into(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(userns: bool, cgroupns: bool, ro: bool) -> oci_spec::runtime::Spec {
        let mut ns = vec![serde_json::json!({"type": "mount"})];
        if userns {
            ns.push(serde_json::json!({"type": "user"}));
        }
        if cgroupns {
            ns.push(serde_json::json!({"type": "cgroup"}));
        }
        let opts = if ro {
            vec!["nosuid", "ro"]
        } else {
            vec!["nosuid"]
        };
        let v = serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 5, "gid": 7}},
            "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": opts}],
            "linux": {"namespaces": ns,
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}
        });
        serde_json::from_value(v).unwrap()
    }

    /// config-linux.md, Cgroup ownership: only on v2, with a new user and
    /// cgroup namespace and a read-write cgroup mount; to the host ids of
    /// process.user.
    #[test]
    fn cgroup_owner_follows_the_spec_rules() {
        assert_eq!(
            cgroup_owner(&spec(true, true, false), true),
            Some((100005, 200007))
        );
        assert_eq!(cgroup_owner(&spec(true, true, false), false), None, "v1");
        assert_eq!(
            cgroup_owner(&spec(true, false, false), true),
            None,
            "no cgroupns"
        );
        assert_eq!(
            cgroup_owner(&spec(false, true, false), true),
            None,
            "no userns"
        );
        assert_eq!(
            cgroup_owner(&spec(true, true, true), true),
            None,
            "ro mount"
        );
    }
}
