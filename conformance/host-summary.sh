#!/usr/bin/env bash
# A short record of the host the suite runs on, printed before the tests so
# that a failure log says what machine it came from. Machines of one kind
# differ from run to run (kernel build, I/O scheduler, cgroup files,
# modules); the tests read the same facts (tests/common/host.rs).
set -u

yn() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }

echo "== host"
echo "kernel:      $(uname -r) ($(uname -m)), $(uname -v)"
v1=$(awk '$9 == "cgroup" {n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] !~ /^(rw|ro|relatime|noatime|nosuid|nodev|noexec|clone_children|xattr|nsdelegate)$/ && o[i] !~ /^release_agent=/) printf "%s ", o[i]}' /proc/self/mountinfo)
unified=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
if [ -n "$unified" ]; then
    v2="$unified [$(cat "$unified/cgroup.controllers" 2>/dev/null)]"
else
    v2=none
fi
if [ -z "$v1" ] && [ -n "$unified" ]; then
    layout="pure v2"
elif [ -n "$unified" ]; then
    layout=hybrid
else
    layout="v1 only"
fi
echo "cgroups:     $layout; v1: ${v1:-none}; cgroup2: $v2"
echo "init:        $(cat /proc/1/comm 2>/dev/null); systemd running: $(yn test -d /run/systemd/system)"
sched=""
for q in /sys/block/*/queue/scheduler; do
    [ -e "$q" ] || continue
    d=${q#/sys/block/}
    d=${d%%/*}
    case "$d" in loop* | ram*) continue ;; esac
    sched="$sched$d: $(cat "$q"); "
done
echo "I/O:         ${sched:-no disks}"
echo "cpus:        $(nproc) usable, online $(cat /sys/devices/system/cpu/online 2>/dev/null); NUMA nodes $(cat /sys/devices/system/node/online 2>/dev/null || echo '?')"
echo "memory:      $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo); swap $(awk '/SwapTotal/ {print $2 " kB"}' /proc/meminfo); swap accounting (memsw): $(yn test -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes)"
echo "hugepages:   $(ls /sys/kernel/mm/hugepages 2>/dev/null | sed 's/hugepages-//' | tr '\n' ' ')"
bfq=no
grep -qw bfq /sys/block/*/queue/scheduler 2>/dev/null && bfq=yes
weight=none
for f in blkio.weight blkio.bfq.weight; do
    [ -e "/sys/fs/cgroup/blkio/$f" ] && weight=$f
done
echo "blkio:       BFQ offered: $bfq; weight file: $weight"
echo "namespaces:  $(ls /proc/self/ns | tr '\n' ' ')(user max $(cat /proc/sys/user/max_user_namespaces 2>/dev/null))"
if [ -e /proc/modules ]; then
    mods="$(wc -l </proc/modules) loaded"
else
    mods="no module support"
fi
echo "modules:     $mods; loading $(grep -qw nomodule /proc/cmdline && echo 'off (nomodule)' || echo possible)"
echo "LSMs:        $(cat /sys/kernel/security/lsm 2>/dev/null || echo '?'); AppArmor on: $(grep -q Y /sys/module/apparmor/parameters/enabled 2>/dev/null && echo yes || echo no); SELinux on: $(yn test -e /sys/fs/selinux/enforce)"
echo "capabilities: CapEff $(awk '/CapEff/ {print $2}' /proc/self/status)"
echo "disk:        $(df -h --output=avail /tmp 2>/dev/null | tail -1 | tr -d ' ') free in /tmp"
