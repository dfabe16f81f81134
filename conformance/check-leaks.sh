#!/usr/bin/env bash
# Leak check for the suite. `check-leaks.sh --snapshot FILE` records what is
# already on the machine (leftovers of manual runs are not the suite's);
# `check-leaks.sh [FILE]` then fails, listing them, if the suite left mounts,
# cgroups, state dirs or processes that the snapshot did not have.
set -u

current() {
    grep -E '/tmp/carte-tests|/carte/' /proc/self/mountinfo | awk '{print "mount " $5}'
    # carte's own (/carte/...) and the tests' containers without a
    # cgroupsPath, which carte puts at /<id> (test ids start with "t-").
    find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d \( -iname '*carte*' -o -name 't-*' \) 2>/dev/null |
        sed 's/^/cgroup /'
    ls -d /tmp/carte-tests/*/state/* 2>/dev/null | sed 's/^/state-dir /'
    # Container processes read "/" as their root from here; their cgroup tells.
    for p in /proc/[0-9]*; do
        if grep -qE '/carte/|:/t-' "$p/cgroup" 2>/dev/null; then
            echo "process ${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
        fi
    done
}

if [ "${1:-}" = --snapshot ]; then
    current | sort >"$2"
    if [ -s "$2" ]; then
        echo "check-leaks: already on this machine before the suite (not counted):" >&2
        sed 's/^/  /' "$2" >&2
    fi
    exit 0
fi

baseline=${1:-/dev/null}
new=$(comm -13 <(sort "$baseline") <(current | sort))
if [ -n "$new" ]; then
    echo "$new" | sed 's/^/leak: /' >&2
    exit 1
fi
echo "check-leaks: no mounts, cgroups, state dirs or processes left"
rmdir /tmp/carte-tests 2>/dev/null  # each test removes its own dir
exit 0
