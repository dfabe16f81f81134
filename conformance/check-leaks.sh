#!/usr/bin/env bash
# After the suite: fails, listing them, if tests left mounts, cgroups, state
# dirs or processes behind.
set -u
problems=0
report() { echo "leak: $*" >&2; problems=1; }

mounts=$(grep -E '/tmp/carte-tests|/carte/' /proc/self/mountinfo | awk '{print $5}')
[ -n "$mounts" ] && report "mounts: $(echo $mounts)"
cgroups=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -iname '*carte*' 2>/dev/null)
[ -n "$cgroups" ] && report "cgroups: $(echo $cgroups)"
states=$(ls -d /tmp/carte-tests/*/state/* 2>/dev/null)
[ -n "$states" ] && report "state dirs: $(echo $states)"
# Container processes read "/" as their root from here; their cgroup tells.
for p in /proc/[0-9]*; do
    if grep -q '/carte/' "$p/cgroup" 2>/dev/null; then
        report "process ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)"
    fi
done
if [ $problems = 0 ]; then
    echo "check-leaks: no mounts, cgroups, state dirs or processes left"
    rm -rf /tmp/carte-tests
fi
exit $problems
