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
for p in /proc/[0-9]*; do
    for link in root cwd; do
        t=$(readlink "$p/$link" 2>/dev/null) || continue
        case "$t" in /tmp/carte-tests/*) report "process ${p#/proc/} ($link $t)";; esac
    done
done
if [ $problems = 0 ]; then
    echo "check-leaks: no mounts, cgroups, state dirs or processes left"
    rm -rf /tmp/carte-tests
fi
exit $problems
