#!/usr/bin/env python3
"""bundles.py BASE_CONFIG OUT_DIR: the test VM's bundles, each a
config.json from `carte spec` with its own args and resources. They share one
read-only rootfs (/rootfs in the VM); /out is a writable bind for results."""
import copy
import json
import os
import sys

base = json.load(open(sys.argv[1]))
out = sys.argv[2]
MIB = 1 << 20


def bundle(name, args, resources=None, cgroups_path=None, hostname=None):
    c = copy.deepcopy(base)
    c["root"] = {"path": "/rootfs", "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["mounts"].append({"destination": "/out", "source": "/tmp/out", "type": "bind",
                        "options": ["rbind", "rw"]})
    if resources:
        c["linux"].setdefault("resources", {}).update(resources)
    if cgroups_path:
        c["linux"]["cgroupsPath"] = cgroups_path
    if hostname:
        c["hostname"] = hostname
    os.makedirs(os.path.join(out, name))
    with open(os.path.join(out, name, "config.json"), "w") as f:
        json.dump(c, f, indent=1)


bundle("echo", ["sh", "-c", "echo hello-v2 $(hostname)"], hostname="v2box")
bundle("limits", ["sleep", "1000"], resources={
    "memory": {"limit": 64 * MIB, "reservation": 32 * MIB},
    "pids": {"limit": 50},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
})
bundle("counter", ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/counter; sleep 0.02; done"])
bundle("killall", ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
bundle("oom", ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>&1; echo survived"],
       resources={"memory": {"limit": 16 * MIB, "swap": 16 * MIB}})
# v1 without swap accounting has no memsw file: no swap limit there.
bundle("oom-v1", ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>&1; echo survived"],
       resources={"memory": {"limit": 16 * MIB}})
bundle("forkbomb", ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; echo done"],
       resources={"pids": {"limit": 8}})
bundle("abspath", ["sleep", "1000"], cgroups_path="/mypod/abs")


# carte-checker bundles: the checker (/carte-checker in the rootfs) checks
# the container against its own config.json, bound at /carte-config.json.
# The host's namespace inodes are filled in by the test script (@ns-TYPE@).
NAMESPACES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]


def checker_bundle(name, change):
    c = copy.deepcopy(base)
    c["root"] = {"path": "/rootfs", "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["/carte-checker", "/carte-config.json"]
    c["mounts"].append({"destination": "/carte-config.json", "type": "bind",
                        "source": f"/bundles/{name}/config.json",
                        "options": ["bind", "ro", "nosuid", "nodev"]})
    c["annotations"] = {f"org.carte.checker.host-ns.{t}": f"@ns-{t}@" for t in NAMESPACES}
    c["annotations"]["org.carte.checker.host-rootfs-propagation"] = "private"
    change(c)
    os.makedirs(os.path.join(out, name))
    with open(os.path.join(out, name, "config.json"), "w") as f:
        json.dump(c, f, indent=1)


def cgroup_ns_and_mount(c, ro=True):
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    c["linux"]["namespaces"].append({"type": "cgroup"})
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    opts = ["nosuid", "noexec", "nodev", "relatime"] + (["ro"] if ro else [])
    c["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                        "source": "cgroup", "options": opts})


def limits(c):
    cgroup_ns_and_mount(c)
    c["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 * MIB, "reservation": 32 * MIB},
        "pids": {"limit": 64},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    }


def pids_zero(c):
    cgroup_ns_and_mount(c)
    c["linux"]["resources"] = {"pids": {"limit": 0}}


def userns_delegated(c):
    # A new user and cgroup namespace with a read-write cgroup mount: the
    # container's cgroup is handed to its root (config-linux.md, Cgroup
    # ownership). The process sleeps so the test can look at it.
    cgroup_ns_and_mount(c, ro=False)
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["process"]["args"] = ["sleep", "1000"]


def mounts(c):
    # The mounts of tests/conformance.rs mounts_options_and_propagation:
    # every option of config.md's table, the listed order, a remount.
    c["linux"]["rootfsPropagation"] = "slave"
    host = "/tmp/out"
    tmpfs = lambda d, o: {"destination": d, "type": "tmpfs", "source": "tmpfs", "options": o}
    bind = lambda d, o: {"destination": d, "type": "bind", "source": host, "options": o}
    c["mounts"] += [
        tmpfs("/t/tmp", ["nosuid", "nodev", "noexec", "noatime", "mode=700", "size=1m"]),
        tmpfs("/t/strict", ["strictatime", "rw", "mode=1777"]),
        bind("/t/ro", ["rbind", "ro", "nosuid", "rprivate"]),
        bind("/t/shared", ["rbind", "rshared"]),
        bind("/t/unbindable", ["bind", "runbindable"]),
        tmpfs("/t/dirty/../clean", []),
        tmpfs("t/relative", []),
        tmpfs("/t/nosym", ["nosymfollow", "nodiratime"]),
        bind("/t/rec", ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime",
                        "rnosymfollow", "rnodiratime"]),
        bind("/t/rstrict", ["rbind", "rnoatime", "rstrictatime"]),
        bind("/t/rrelatime", ["rbind", "rnoatime", "ratime"]),
        tmpfs("/t/order", ["rw", "size=1m"]),
        tmpfs("/t/order", ["ro", "size=2m"]),
        tmpfs("/t/flags1", ["async", "atime", "defaults", "dev", "diratime", "exec", "iversion",
                            "nolazytime", "loud", "suid", "rw", "norelatime", "nostrictatime",
                            "noiversion"]),
        tmpfs("/t/flags2", ["sync", "dirsync", "lazytime", "silent", "nodiratime", "noexec",
                            "nodev", "nosuid", "relatime", "ro"]),
        tmpfs("/t/remount", []),
        tmpfs("/t/remount", ["remount", "ro", "nosuid"]),
        bind("/t/private", ["bind", "private"]),
        bind("/t/shared1", ["bind", "shared"]),
        bind("/t/slave", ["bind", "slave"]),
        bind("/t/rslave", ["rbind", "rslave"]),
        bind("/t/unbind1", ["bind", "unbindable"]),
        bind("/t/rec2", ["rbind", "rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow",
                         "symfollow"]),
        bind("/t/rnorel", ["rbind", "rnorelatime"]),
        bind("/t/rnostrict", ["rbind", "rstrictatime", "rnostrictatime"]),
        bind("/t/rrel", ["rbind", "rnoatime", "rrelatime"]),
    ]


def process_attrs(c):
    c["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 1000},
    ]
    c["process"]["oomScoreAdj"] = 200
    c["process"]["noNewPrivileges"] = False
    c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 63}
    c["process"]["cwd"] = "/home/user"
    c["process"]["env"] = ["PATH=/bin:/", "A=b c", "EMPTY="]
    c["process"]["args"] = ["carte-checker", "/carte-config.json"]
    c["hostname"] = "cf-host"
    c["domainname"] = "cf.example"


def devices(c):
    c["linux"]["devices"] = [
        {"path": "/dev/cf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 100},
        {"path": "/dev/cf-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o640},
        {"path": "/dev/cf-fifo", "type": "p", "fileMode": 0o620},
        {"path": "/dev/sub/cf-zero", "type": "c", "major": 1, "minor": 5},
    ]
    c["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                           {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}
    c["linux"]["sysctl"] = {"kernel.shmmax": "4194304", "net.ipv4.ip_forward": "1"}
    c["linux"]["maskedPaths"] = ["/proc/kcore", "/etc/passwd", "/nonexistent"]
    c["linux"]["readonlyPaths"] = ["/proc/sys", "/home", "/nonexistent"]


def time_ns(c):
    c["linux"]["namespaces"].append({"type": "time"})
    c["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 5000}}
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                             "syscalls": [{"names": ["kexec_load", "swapon"], "action": "SCMP_ACT_ERRNO"}]}


checker_bundle("chk-default", lambda c: None)
checker_bundle("chk-mounts", mounts)
checker_bundle("chk-process", process_attrs)
checker_bundle("chk-devices", devices)
checker_bundle("chk-timens", time_ns)
checker_bundle("chk-limits", limits)
checker_bundle("chk-pids0", pids_zero)
checker_bundle("delegated", userns_delegated)
bundle("unified", ["sleep", "1000"], resources={
    "unified": {"pids.max": "42", "memory.high": "50331648", "io.weight": "default 70"}})
bundle("unified-bad", ["true"], resources={"unified": {"nosuch.max": "1"}})


# The systemd driver's suite (systemd/suites/40-systemd-driver.sh): a scope
# in machine.slice with the limits, a stop timeout from an annotation, a
# container whose create blocks in a prestart hook, and `true` for timing.
def sd_machine(c):
    c["linux"]["cgroupsPath"] = "machine.slice:libpod:vmsd-m"
    c["annotations"] = {"org.systemd.property.TimeoutStopSec": "7"}


bundle("sd-machine", ["sleep", "1000"], resources={
    "memory": {"limit": 64 * MIB, "reservation": 32 * MIB},
    "pids": {"limit": 50},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
})
with open(os.path.join(out, "sd-machine", "config.json")) as f:
    c = json.load(f)
sd_machine(c)
with open(os.path.join(out, "sd-machine", "config.json"), "w") as f:
    json.dump(c, f, indent=1)
bundle("sd-hook", ["sleep", "1000"])
with open(os.path.join(out, "sd-hook", "config.json")) as f:
    c = json.load(f)
c["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"]}]}
with open(os.path.join(out, "sd-hook", "config.json"), "w") as f:
    json.dump(c, f, indent=1)
bundle("sd-true", ["true"])
# crun 1.8 (bookworm) refuses the spec version carte writes: one all know.
with open(os.path.join(out, "sd-true", "config.json")) as f:
    c = json.load(f)
c["ociVersion"] = "1.0.2"
with open(os.path.join(out, "sd-true", "config.json"), "w") as f:
    json.dump(c, f, indent=1)


# Rootless (carte run by uid 1000 through su): `carte spec --rootless`'s
# changes made to the base, the caller mapped to 0.
def rootless_bundle(name, args, resources=None, cgroups_path=None):
    c = copy.deepcopy(base)
    c["root"] = {"path": "/rootfs", "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"]
                                if n["type"] not in ("network", "user")] + [{"type": "user"}]
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    c["linux"].pop("resources", None)
    for m in c["mounts"]:
        if m["destination"] == "/sys":
            m.update({"type": "none", "source": "/sys",
                      "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        m["options"] = [o for o in m.get("options", [])
                        if not o.startswith(("uid=", "gid="))]
    if resources:
        c["linux"]["resources"] = resources
    if cgroups_path:
        c["linux"]["cgroupsPath"] = cgroups_path
    os.makedirs(os.path.join(out, name))
    with open(os.path.join(out, name, "config.json"), "w") as f:
        json.dump(c, f, indent=1)


rootless_bundle("rl-deleg", ["sh", "-c", "id -u; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"],
                resources={"memory": {"limit": 64 * MIB}, "pids": {"limit": 40}},
                cgroups_path="/deleg/c")
rootless_bundle("rl-nocg", ["sh", "-c", "id -u"])
rootless_bundle("rl-nocg-limits", ["true"], resources={"memory": {"limit": 64 * MIB}})
