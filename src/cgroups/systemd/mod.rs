//! The systemd driver (`--systemd-cgroup`): the container's cgroup is a
//! transient scope unit that systemd makes, with Delegate=yes, and the
//! resources systemd has a property for are unit properties, so that a
//! `systemctl daemon-reload` keeps them. The cgroup files are written as
//! well (runc does the same), through the cgroupfs driver on the scope's
//! path, which also does everything systemd has no say in: freezing,
//! signalling, statistics, the v1 hierarchies systemd does not manage.
//!
//! D-Bus is spoken only here, by `create` (StartTransientUnit), `update`
//! (SetUnitProperties) and `delete` (StopUnit), each with its own short
//! connection; no connection is open when carte forks.

pub mod dbus;
pub mod props;

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDevice, LinuxResources, Spec};

use super::fs::{self, Fs};
use super::{is_unified, CgroupError, Manager, SelfJoin, Stats};
use dbus::{Bus, DbusError, Value};
use props::Unit;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a method call or a job may take (runc waits 30 s for its job).
const TIMEOUT: Duration = Duration::from_secs(30);

/// systemd runs as the init system here (sd_booted: /run/systemd/system).
pub fn is_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

pub struct Systemd {
    unit: Unit,
    /// The scope's cgroup, written as files.
    fs: Fs,
    /// What StartTransientUnit is given at create, besides the unit's own.
    create_props: Vec<Value>,
}

fn dbus_err(unit: &str, what: &str) -> impl FnOnce(DbusError) -> CgroupError {
    let path = unit.to_string();
    let what = what.to_string();
    move |e| CgroupError::Manager {
        path,
        reason: format!("systemd {what}: {e}"),
    }
}

impl Systemd {
    /// For `create`: the unit of linux.cgroupsPath, its properties from
    /// linux.resources and the annotations, all checked before anything
    /// is made; and systemd must be there.
    pub fn for_create(spec: &Spec, id: &str) -> Result<Systemd, CgroupError> {
        if !is_running() {
            return Err(CgroupError::NoSystemd);
        }
        let linux = spec.linux().as_ref();
        let cgroups_path = linux.and_then(|l| l.cgroups_path().as_ref());
        let invalid = |field: &str| {
            let field = field.to_string();
            move |reason: String| CgroupError::Invalid { field, reason }
        };
        let unit = Unit::parse(cgroups_path.map(|p| p.to_str().unwrap_or("\u{fffd}")), id)
            .map_err(invalid("linux.cgroupsPath"))?;
        let resources = linux
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        let mut create_props =
            resource_properties(&resources, None).map_err(invalid("linux.resources"))?;
        let rules = fs::with_device_rules(&resources, &devices, true);
        if let Some(rules) = rules.devices() {
            let (devices, warning) = props::device_properties(rules);
            if let Some(w) = warning {
                crate::logging::warn(&format!("linux.resources.devices: {w}"));
            }
            create_props.extend(devices);
        }
        create_props.extend(
            props::annotation_properties(spec.annotations().as_ref())
                .map_err(invalid("annotations"))?,
        );
        Ok(Systemd {
            fs: Fs::open(&unit.cgroup_path()),
            unit,
            create_props,
        })
    }

    /// An existing container's scope, from the cgroup path state.json holds.
    pub fn open(path: &str) -> Systemd {
        Systemd {
            unit: Unit::from_cgroup_path(path),
            fs: Fs::open(path),
            create_props: Vec::new(),
        }
    }

    fn connect(&self) -> Result<Bus, CgroupError> {
        let mut bus = Bus::system(TIMEOUT).map_err(dbus_err(&self.unit.name, "connect"))?;
        // Before the call that makes the job, or its end could be missed.
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            vec![Value::str(&format!(
                "type='signal',sender='{SYSTEMD}',path='{SYSTEMD_PATH}',interface='{MANAGER}',member='JobRemoved'"
            ))],
        )
        .map_err(dbus_err(&self.unit.name, "AddMatch"))?;
        Ok(bus)
    }

    /// Waits for the JobRemoved of `job` and returns its result ("done",
    /// "failed", "canceled", ...).
    fn wait_job(&self, bus: &mut Bus, job: &str) -> Result<String, CgroupError> {
        let msg = bus
            .wait_signal(TIMEOUT, "JobRemoved", |m| {
                m.member.as_deref() == Some("JobRemoved")
                    && m.body.get(1).and_then(Value::as_str) == Some(job)
            })
            .map_err(dbus_err(&self.unit.name, "job"))?;
        Ok(msg
            .body
            .get(3)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    fn manager_call(
        &self,
        bus: &mut Bus,
        member: &str,
        body: Vec<Value>,
    ) -> Result<Vec<Value>, DbusError> {
        bus.call(SYSTEMD, SYSTEMD_PATH, MANAGER, member, body)
    }

    /// StartTransientUnit of the scope with `pid` in it, and its job's end.
    /// A unit of that name left by an earlier container (failed, not yet
    /// collected) is reset and the start tried once more, as runc does.
    fn start_scope(&self, pid: i32) -> Result<(), CgroupError> {
        let mut bus = self.connect()?;
        let mut props = vec![
            Value::property(
                "Description",
                Value::str(&format!("carte container {}", self.unit.name)),
            ),
            Value::property("Slice", Value::str(&self.unit.slice)),
            Value::property("Delegate", Value::Bool(true)),
            Value::property(
                "PIDs",
                Value::Array("u".into(), vec![Value::U32(pid as u32)]),
            ),
            // A scope ordered after nothing (runc's DefaultDependencies=no).
            Value::property("DefaultDependencies", Value::Bool(false)),
            Value::property("MemoryAccounting", Value::Bool(true)),
            Value::property("CPUAccounting", Value::Bool(true)),
            Value::property("TasksAccounting", Value::Bool(true)),
        ];
        if is_unified() {
            props.push(Value::property("IOAccounting", Value::Bool(true)));
        } else {
            props.push(Value::property("BlockIOAccounting", Value::Bool(true)));
        }
        props.extend(self.create_props.iter().cloned());
        let props = supported(&mut bus, props);
        let body = || {
            vec![
                Value::str(&self.unit.name),
                Value::str("replace"),
                Value::Array("(sv)".into(), props.clone()),
                Value::Array("(sa(sv))".into(), vec![]),
            ]
        };
        let mut reply = self.manager_call(&mut bus, "StartTransientUnit", body());
        if matches!(&reply, Err(DbusError::Remote { name, .. }) if name == "org.freedesktop.systemd1.UnitExists")
        {
            let _ = self.manager_call(
                &mut bus,
                "ResetFailedUnit",
                vec![Value::str(&self.unit.name)],
            );
            reply = self.manager_call(&mut bus, "StartTransientUnit", body());
        }
        let reply = reply.map_err(dbus_err(&self.unit.name, "StartTransientUnit"))?;
        let job = reply
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let result = self.wait_job(&mut bus, &job)?;
        if result != "done" {
            let _ = self.manager_call(
                &mut bus,
                "ResetFailedUnit",
                vec![Value::str(&self.unit.name)],
            );
            return Err(CgroupError::Manager {
                path: self.unit.name.clone(),
                reason: format!("systemd could not start the scope: job {result}"),
            });
        }
        Ok(())
    }

    /// StopUnit and its job's end; a unit already gone is fine. Then
    /// ResetFailedUnit, so that no failed unit stays listed.
    fn stop_scope(&self) -> Result<(), CgroupError> {
        let mut bus = self.connect()?;
        let name = Value::str(&self.unit.name);
        match self.manager_call(
            &mut bus,
            "StopUnit",
            vec![name.clone(), Value::str("replace")],
        ) {
            Ok(reply) => {
                let job = reply
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.wait_job(&mut bus, &job)?;
            }
            Err(DbusError::Remote { name, .. })
                if name == "org.freedesktop.systemd1.NoSuchUnit" => {}
            Err(e) => return Err(dbus_err(&self.unit.name, "StopUnit")(e)),
        }
        let _ = self.manager_call(&mut bus, "ResetFailedUnit", vec![name]);
        Ok(())
    }

    /// The memory limit in force, for a swap limit given alone.
    fn current_memory_limit(&self) -> Option<i64> {
        let file = super::controller_dir(&self.fs.path, "memory")?.join("memory.max");
        let text = std::fs::read_to_string(file).ok()?;
        match text.trim() {
            "max" => Some(-1),
            n => n.parse().ok(),
        }
    }
}

/// The properties this systemd knows: as runc does, CPUQuotaPeriodUSec
/// (systemd 242) and AllowedCPUs / AllowedMemoryNodes (244) are left out
/// on older ones, which would refuse the whole unit for them (the files
/// still get the values). The version is asked only when one is there.
fn supported(bus: &mut Bus, props: Vec<Value>) -> Vec<Value> {
    let name = |p: &Value| match p {
        Value::Struct(f) => f
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let minimum = |n: &str| match n {
        "CPUQuotaPeriodUSec" => 242,
        "AllowedCPUs" | "AllowedMemoryNodes" => 244,
        _ => 0,
    };
    if props.iter().all(|p| minimum(&name(p)) == 0) {
        return props;
    }
    let version = bus
        .call(
            SYSTEMD,
            SYSTEMD_PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
            vec![Value::str(MANAGER), Value::str("Version")],
        )
        .ok()
        .and_then(|body| match body.into_iter().next() {
            Some(Value::Variant(v)) => v.as_str().and_then(props::systemd_version),
            _ => None,
        });
    // Unknown: assume a current systemd, as the call failing says little.
    let Some(version) = version else {
        return props;
    };
    props
        .into_iter()
        .filter(|p| {
            let n = name(p);
            let ok = version >= minimum(&n);
            if !ok {
                crate::logging::debug(&format!(
                    "systemd {version} has no {n} property: only the file is written"
                ));
            }
            ok
        })
        .collect()
}

/// The unit properties of linux.resources for this host's cgroup version.
fn resource_properties(r: &LinuxResources, memory: Option<i64>) -> Result<Vec<Value>, String> {
    if is_unified() {
        props::v2_properties(r, memory)
    } else {
        props::v1_properties(r)
    }
}

impl Manager for Systemd {
    fn path(&self) -> &str {
        &self.fs.path
    }

    /// systemd moves `pid` into the new scope. On v1 the child also joins
    /// the scope's directory in each hierarchy systemd does not manage
    /// (freezer, net_cls...), made here as the cgroupfs driver makes them.
    fn apply(&mut self, pid: i32) -> Result<SelfJoin, CgroupError> {
        self.start_scope(pid)?;
        if is_unified() {
            return Ok(SelfJoin::default());
        }
        self.fs.self_join()
    }

    /// The properties went with StartTransientUnit; the files follow.
    fn set(
        &mut self,
        resources: &LinuxResources,
        devices: &[LinuxDevice],
    ) -> Result<(), CgroupError> {
        self.fs.set(resources, devices)
    }

    /// The files first, as the cgroupfs driver writes them (every field is
    /// checked before any is written, so a refused update changes
    /// nothing), then the unit's properties (runtime: they last until the
    /// scope goes), which systemd writes again, to the same values.
    fn update(&mut self, changes: &LinuxResources) -> Result<(), CgroupError> {
        let props =
            resource_properties(changes, self.current_memory_limit()).map_err(|reason| {
                CgroupError::Invalid {
                    field: "linux.resources".into(),
                    reason,
                }
            })?;
        self.fs.update(changes)?;
        if !props.is_empty() {
            let mut bus = Bus::system(TIMEOUT).map_err(dbus_err(&self.unit.name, "connect"))?;
            let props = supported(&mut bus, props);
            self.manager_call(
                &mut bus,
                "SetUnitProperties",
                vec![
                    Value::str(&self.unit.name),
                    Value::Bool(true),
                    Value::Array("(sv)".into(), props),
                ],
            )
            .map_err(dbus_err(&self.unit.name, "SetUnitProperties"))?;
        }
        Ok(())
    }

    fn forbid_new_tasks(&self) -> Result<(), CgroupError> {
        self.fs.forbid_new_tasks()
    }

    /// exec: into the scope's cgroup through its files.
    fn enter(&mut self, pid: i32) -> Result<(), CgroupError> {
        self.fs.enter(pid)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        self.fs.set_frozen(frozen)
    }

    fn is_frozen(&self) -> bool {
        self.fs.is_frozen()
    }

    fn kill(&self, signal: i32) {
        self.fs.kill(signal)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        self.fs.stats()
    }

    fn pids(&self) -> Vec<i32> {
        self.fs.pids()
    }

    /// Kills through the files first (a scope's StopUnit would wait 90 s
    /// for processes that ignore SIGTERM), stops the unit, waits until
    /// systemd has removed the cgroup, then removes what it left (the v1
    /// hierarchies it does not manage, cgroups the container made below).
    /// Without systemd (or its bus) the unit is gone with it: the files
    /// are still cleaned.
    fn destroy(&mut self) -> Result<(), CgroupError> {
        self.fs.kill(libc::SIGKILL);
        let stopped = if is_running() {
            self.stop_scope()
        } else {
            Ok(())
        };
        // The hierarchy systemd always manages: v2's, or v1's name=systemd.
        let dir = super::controller_dir(&self.fs.path, "name=systemd");
        let deadline = Instant::now() + Duration::from_secs(5);
        while dir.as_ref().is_some_and(|d| d.exists()) && Instant::now() < deadline {
            if stopped.is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.fs.destroy()?;
        stopped
    }
}
