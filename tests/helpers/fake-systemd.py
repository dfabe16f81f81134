#!/usr/bin/python3
"""A stand-in for systemd's D-Bus manager, for tests/systemd.rs on a host
without systemd: it owns org.freedesktop.systemd1 on a private bus and
does what systemd does for a transient scope, as far as carte sees it. It
makes the scope's cgroup in the v1 hierarchies systemd manages (memory,
pids, cpu,cpuacct, blkio, devices, name=systemd) or the v2 one, moves the
PIDs in, answers with a job and sends JobRemoved; StopUnit kills and
removes it. Every call is appended to LOG as one JSON line, so the test
sees exactly what carte asked for (the properties as D-Bus types).

usage: fake-systemd.py BUS_ADDRESS LOG (FAKE_SYSTEMD_VERSION: its Version)
"""
import json
import os
import signal
import sys
import time

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.systemd1.Manager"
MANAGED = ["memory", "pids", "cpu,cpuacct", "cpu", "blkio", "devices", "systemd"]


def plain(v):
    """A dbus-python value as JSON, with its D-Bus type kept."""
    if isinstance(v, dbus.Boolean):
        return {"b": bool(v)}
    if isinstance(v, dbus.Byte):
        return {"y": int(v)}
    if isinstance(v, dbus.UInt64):
        return {"t": int(v)}
    if isinstance(v, dbus.UInt32):
        return {"u": int(v)}
    if isinstance(v, (dbus.Int32, dbus.Int64, dbus.Int16, dbus.UInt16)):
        return {"i": int(v)}
    if isinstance(v, dbus.Double):
        return {"d": float(v)}
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    if isinstance(v, dbus.Struct):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Array):
        return [plain(x) for x in v]
    return repr(v)


def expand_slice(slice_name):
    base = slice_name[: -len(".slice")]
    if base == "-":
        return ""
    path, prefix = "", ""
    for part in base.split("-"):
        path += "/" + prefix + part + ".slice"
        prefix += part + "-"
    return path


def dirs(rel):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return ["/sys/fs/cgroup" + rel]
    out = []
    for name in MANAGED:
        root = "/sys/fs/cgroup/" + name
        if os.path.isdir(root) and not os.path.islink(root):
            out.append(root + rel)
    return out


class Manager(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, "/org/freedesktop/systemd1")
        self.log = log
        self.units = {}
        self.job = 0

    def record(self, **entry):
        with open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def new_job(self, unit):
        self.job += 1
        job_id = self.job
        path = "/org/freedesktop/systemd1/job/%d" % job_id
        # After the reply, as systemd sends it.
        GLib.timeout_add(5, lambda: self.JobRemoved(job_id, path, unit, "done") and False)
        return dbus.ObjectPath(path)

    @dbus.service.method(IFACE, in_signature="ssa(sv)a(sa(sv))", out_signature="o")
    def StartTransientUnit(self, name, mode, props, aux):
        props = [[str(k), plain(v)] for k, v in props]
        self.record(call="StartTransientUnit", name=str(name), mode=str(mode), props=props)
        if name in self.units:
            raise dbus.exceptions.DBusException(
                "Unit %s already exists." % name, name="org.freedesktop.systemd1.UnitExists"
            )
        slice_name = next((v for k, v in props if k == "Slice"), "system.slice")
        pids = next((v for k, v in props if k == "PIDs"), [])
        rel = expand_slice(slice_name) + "/" + name
        for d in dirs(rel):
            os.makedirs(d, exist_ok=True)
            for pid in pids:
                with open(d + "/cgroup.procs", "w") as f:
                    f.write(str(pid["u"]))
        self.units[str(name)] = rel
        return self.new_job(name)

    @dbus.service.method(IFACE, in_signature="ss", out_signature="o")
    def StopUnit(self, name, mode):
        self.record(call="StopUnit", name=str(name))
        rel = self.units.pop(str(name), None)
        if rel is None:
            raise dbus.exceptions.DBusException(
                "Unit %s not loaded." % name, name="org.freedesktop.systemd1.NoSuchUnit"
            )
        for d in dirs(rel):
            for _ in range(500):
                try:
                    for pid in open(d + "/cgroup.procs").read().split():
                        os.kill(int(pid), signal.SIGKILL)
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        return self.new_job(name)

    @dbus.service.method(IFACE, in_signature="s", out_signature="")
    def ResetFailedUnit(self, name):
        self.record(call="ResetFailedUnit", name=str(name))
        if name not in self.units:
            raise dbus.exceptions.DBusException(
                "Unit %s not loaded." % name, name="org.freedesktop.systemd1.NoSuchUnit"
            )

    @dbus.service.method(IFACE, in_signature="sba(sv)", out_signature="")
    def SetUnitProperties(self, name, runtime, props):
        self.record(
            call="SetUnitProperties",
            name=str(name),
            runtime=bool(runtime),
            props=[[str(k), plain(v)] for k, v in props],
        )

    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        self.record(call="Get", interface=str(interface), name=str(name))
        if interface == IFACE and name == "Version":
            return dbus.String(os.environ.get("FAKE_SYSTEMD_VERSION", "252.30-1~deb12u1"))
        raise dbus.exceptions.DBusException(
            "Unknown property", name="org.freedesktop.DBus.Error.UnknownProperty"
        )

    @dbus.service.signal(IFACE, signature="uoss")
    def JobRemoved(self, job_id, path, unit, result):
        pass


def main():
    address, log = sys.argv[1], sys.argv[2]
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    name = dbus.service.BusName("org.freedesktop.systemd1", bus)
    Manager(bus, log)
    open(log, "a").close()
    print("ready", flush=True)
    GLib.MainLoop().run()
    del name


if __name__ == "__main__":
    main()
