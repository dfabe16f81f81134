#!/usr/bin/env bash
# churn.sh [COUNT] [WORKERS]: COUNT containers (default 1000) created,
# started, killed and deleted by WORKERS concurrent workers (default 4),
# with the release build, a private --root and one shared busybox bundle.
# Any non-zero exit of carte is a failure (its error is printed). The host
# is compared before and after: mounts, cgroups, open files, processes and
# state dirs. Exits non-zero on any failure or leak. Needs root.
set -uo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
workers=${2:-4}

if [ "$(id -u)" != 0 ]; then
    echo "churn: needs root (namespaces, mounts, cgroups)" >&2
    exit 1
fi
if [ -z "${CARTE:-}" ]; then
    cargo build --release -q || exit 1
    CARTE=$PWD/target/x86_64-unknown-linux-gnu/release/carte
fi
work=$(mktemp -d /tmp/carte-churn.XXXXXX)
root=$work/root
bundle=$work/bundle
# Unique per run, so what this run leaves behind can be told from what
# other users of the machine do meanwhile.
prefix=churn$$
cleanup() {
    for id in $("$CARTE" --root "$root" list -q 2>/dev/null); do
        "$CARTE" --root "$root" delete --force "$id" >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

bundle-examples/make-bundle.sh hello "$bundle" >/dev/null || exit 1
python3 - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["args"] = ["sleep", "1000"]
json.dump(config, open(path, "w"), indent=2)
EOF

# What is on the host: each line "KIND NAME", sorted.
snapshot() {
    awk '{print "mount " $5}' /proc/self/mountinfo
    find /sys/fs/cgroup/*/ -type d 2>/dev/null | sed 's/^/cgroup /'
}
# Processes of this run: carte itself (its command line names $work) or a
# container (its cgroup names $prefix).
our_processes() {
    local p
    for p in /proc/[0-9]*; do
        [ "$p" = "/proc/$$" ] || [ "$p" = "/proc/$BASHPID" ] && continue
        if grep -qs "$prefix" "$p/cgroup" || tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "$work/"; then
            echo "process ${p#/proc/} $(tr '\0' ' ' 2>/dev/null <"$p/cmdline")"
        fi
    done
}
files_open() { cut -f1 /proc/sys/fs/file-nr; }

snapshot | sort >"$work/before"
files_before=$(files_open)

# One worker: containers worker, worker+workers, ... Each step's failure is
# one line in $work/failures.W; the container is then force-deleted so the
# next one starts clean.
worker() {
    local w=$1 i id err=$work/err.$w fails=$work/failures.$w status t
    : >"$fails"
    c() { "$CARTE" --root "$root" "$@" </dev/null >/dev/null 2>"$err"; }
    fail() {
        echo "$1 $id: $(tr '\n' ' ' <"$err")" >>"$fails"
        "$CARTE" --root "$root" delete --force "$id" >/dev/null 2>&1
    }
    for ((i = w; i < count; i += workers)); do
        id=$prefix-$i
        c create --bundle "$bundle" "$id" || { fail create; continue; }
        c start "$id" || { fail start; continue; }
        c kill "$id" KILL || { fail kill; continue; }
        # The kill is asynchronous: wait (up to 10 s) until init is gone.
        for ((t = 0; t < 1000; t++)); do
            status=$("$CARTE" --root "$root" state "$id" 2>"$err") || break
            [[ $status == *'"status": "stopped"'* || $status == *'"status":"stopped"'* ]] && break
            sleep 0.01
        done
        [ -n "${status:-}" ] || { fail state; continue; }
        c delete "$id" || { fail delete; continue; }
    done
}

start=$(date +%s.%N)
for ((w = 0; w < workers; w++)); do
    worker "$w" &
done
wait
elapsed=$(echo "$(date +%s.%N) - $start" | bc)

failures=$(cat "$work"/failures.* | wc -l)
if [ "$failures" -gt 0 ]; then
    sed 's/^/failure: /' "$work"/failures.* | head -20 >&2
    [ "$failures" -le 20 ] || echo "failure: ... $((failures - 20)) more" >&2
fi

# Leaks: anything new on the host that is this run's (names $prefix or
# $work), processes of this run, state dirs left in the private root. The
# host is shared, so new entries that are not ours are shown, not counted.
leaks=$work/leaks
: >"$leaks"
for ((t = 0; t < 50; t++)); do
    snapshot | sort >"$work/after"
    comm -13 "$work/before" "$work/after" | grep -E "$prefix|$work" >"$leaks"
    our_processes >>"$leaks"
    ls -A "$root" 2>/dev/null | sed 's/^/state-dir /' >>"$leaks"
    [ -s "$leaks" ] || break
    sleep 0.1  # give exits and cgroup removal a moment before calling it a leak
done
others=$(comm -13 "$work/before" "$work/after" | grep -vcE "$prefix|$work")
mounts_before=$(grep -c '^mount ' "$work/before")
mounts_after=$(grep -c '^mount ' "$work/after")
cgroups_before=$(grep -c '^cgroup ' "$work/before")
cgroups_after=$(grep -c '^cgroup ' "$work/after")
files_after=$(files_open)
# Open files: the host-wide count (file-nr) moves with everything else on
# the machine and is read from per-CPU counters that lag; a leak of one file
# per container would show as COUNT more, so anything up to max(256,
# COUNT/4) is taken as noise.
files_slack=$((count / 4 > 256 ? count / 4 : 256))
if [ $((files_after - files_before)) -gt "$files_slack" ]; then
    echo "open files $files_before -> $files_after (more than $files_slack up)" >>"$leaks"
fi
nleaks=$(wc -l <"$leaks")
sed 's/^/leak: /' "$leaks" >&2
echo "host: mounts $mounts_before -> $mounts_after, cgroups $cgroups_before -> $cgroups_after," \
    "open files $files_before -> $files_after (slack $files_slack);" \
    "$others new entries not from this run (others on the host)"
printf 'churn: %d containers, %d workers, %d failures, %d leaks, %.1f s\n' \
    "$count" "$workers" "$failures" "$nleaks" "$elapsed"
[ "$failures" = 0 ] && [ "$nleaks" = 0 ]
