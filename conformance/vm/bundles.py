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
