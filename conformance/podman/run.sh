#!/usr/bin/env bash
# podman (through conmon) driving carte: private storage, a private
# containers.conf naming carte in runtime_supports_json, the cgroupfs
# manager and no network. Prints `N passed, M failed`; removes all it made.
# Containers get podman's default seccomp profile, as they would anywhere.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CARTE=${CARTE:-$repo/target/x86_64-unknown-linux-gnu/release/carte}
[ -x "$CARTE" ] || { echo "podman suite: no carte binary at $CARTE" >&2; exit 1; }
if ! command -v podman >/dev/null || ! command -v conmon >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman conmon >/dev/null
fi

work=$(mktemp -d /tmp/carte-podman.XXXXXX)
image=localhost/busybox:carte
cat > "$work/containers.conf" <<EOF
[containers]
netns = "none"
# This host lacks CAP_SYS_RESOURCE: podman's default 1048576 can't be set
# by any runtime here (runc fails the same way).
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime_supports_json = ["carte", "crun", "runc"]
events_logger = "file"
cgroup_manager = "cgroupfs"
[engine.runtimes]
carte = ["$CARTE"]
EOF
export CONTAINERS_CONF=$work/containers.conf
p() { podman --root "$work/root" --runroot "$work/runroot" --runtime carte "$@"; }

# --userns=auto takes its ranges from the subordinate ids of the user
# "containers": made here (and removed on exit) if the host has none.
made_user=
if ! getent passwd containers >/dev/null; then
    useradd -M -r -s /usr/sbin/nologin containers &&
        usermod --add-subuids 400000-465535 --add-subgids 400000-465535 containers &&
        made_user=1
fi

cleanup() {
    [ -n "$made_user" ] && userdel containers >/dev/null 2>&1
    p rm -af -t 0 >/dev/null 2>&1
    p system reset -f >/dev/null 2>&1
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    for d in /sys/fs/cgroup/*/libpod_parent; do
        [ -d "$d" ] && { rmdir "$d/conmon" 2>/dev/null; rmdir "$d" 2>/dev/null; }
    done
    rm -rf "$work"
}
trap cleanup EXIT

"$repo/bundle-examples/mkrootfs.sh" "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -c . | p import - "$image" >/dev/null 2>&1 || { echo "image import failed" >&2; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
run() { timeout 60 podman --root "$work/root" --runroot "$work/runroot" --runtime carte run --rm "$@" 2>&1; }
pty() { TERM=xterm timeout 60 script -qec "podman --root $work/root --runroot $work/runroot --runtime carte $1" /dev/null 2>&1; }

out=$(run "$image" echo hello); expect "run echo" "hello" "$out"
run "$image" sh -c 'exit 3' >/dev/null; expect "exit code" "3" "$?"
out=$(run -e FOO=bar "$image" sh -c 'echo $FOO'); expect "-e" "bar" "$out"
out=$(run --hostname box1 "$image" hostname); expect "--hostname" "box1" "$out"
out=$(run --user 1000:1000 "$image" sh -c 'echo $(id -u):$(id -g)'); expect "--user" "1000:1000" "$out"
out=$(run -w /tmp "$image" pwd); expect "-w" "/tmp" "$out"
out=$(run --read-only "$image" sh -c 'touch /x 2>/dev/null && echo rw || echo ro; touch /tmp/y && echo tmp-ok')
expect "--read-only" "ro
tmp-ok" "$out"
mkdir -p "$work/vol" && echo from-host > "$work/vol/f"
out=$(run -v "$work/vol:/data" "$image" cat /data/f); expect "-v bind mount" "from-host" "$out"
# An idmapped volume in a user namespace podman picks (the kind of
# mount containerd gives a hostUsers: false pod): host root's file shows as
# the container's root, and root's new file is host root's.
if grep -q '^containers:' /etc/subuid 2>/dev/null; then
    out=$(run --userns=auto -v "$work/vol:/idm:idmap" "$image" sh -c 'stat -c %u:%g /idm/f; awk "{print \$2}" /proc/self/uid_map; touch /idm/new && stat -c %u /idm/new')
    expect "--userns=auto with an :idmap volume" "0:0" "$out"
    host_map=$(echo "$out" | sed -n 2p)
    [ -n "$host_map" ] && [ "$host_map" != 0 ] && [ "$(stat -c %u "$work/vol/new" 2>&1)" = 0 ] &&
        ok "an :idmap volume writes as host root" ||
        not_ok "an :idmap volume writes as host root" "map $host_map, $(stat -c %u "$work/vol/new" 2>&1)"
else
    echo "skip - --userns=auto: the user containers has no subordinate ids here"
fi
out=$(run --memory 64m "$image" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'); expect "--memory" "67108864" "$out"
out=$(run --pids-limit 50 "$image" sh -c 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max'); expect "--pids-limit" "50" "$out"
out=$(run --cap-drop ALL "$image" grep CapEff /proc/self/status); expect "--cap-drop ALL" "0000000000000000" "$out"
out=$(run --cap-drop ALL --cap-add SYS_ADMIN "$image" grep CapEff /proc/self/status); expect "--cap-add" "0000000000200000" "$out"

p run -d --name d1 "$image" sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1
expect "-d" "running" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p exec d1 sh -c 'exit 4' >/dev/null 2>&1; expect "exec exit code" "4" "$?"
out=$(p exec -e A=1 -u 1000 -w /tmp d1 sh -c 'echo "$A $(id -u) $(pwd)"' 2>&1); expect "exec env, user, workdir" "1 1000 /tmp" "$out"
out=$(pty "exec -it d1 sh -c 'sleep 0.2; tty'"); expect "exec -t" "/dev/pts/" "$out"
out=$(p ps --format '{{.Names}} {{.Status}}' 2>&1); expect "ps" "d1 Up" "$out"
out=$(p top d1 2>&1); expect "top" "while" "$out"
p pause d1 >/dev/null 2>&1; expect "pause" "paused" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p unpause d1 >/dev/null 2>&1; expect "unpause" "running" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p stop -t 5 d1 >/dev/null 2>&1; expect "stop (SIGTERM)" "exited" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p rm d1 >/dev/null 2>&1; expect "rm" "0" "$?"

p run -d --name d2 "$image" sh -c 'trap "exit 7" USR1; while :; do sleep 0.05; done' >/dev/null 2>&1
sleep 0.3
p kill -s USR1 d2 >/dev/null 2>&1; p wait d2 >/dev/null 2>&1
expect "kill -s USR1" "7" "$(p inspect -f '{{.State.ExitCode}}' d2 2>&1)"
p rm d2 >/dev/null 2>&1
p run -d --name d3 "$image" sleep 1000 >/dev/null 2>&1
started=$(date +%s)
p stop -t 1 d3 >/dev/null 2>&1
expect "stop falls back to SIGKILL" "exited" "$(p inspect -f '{{.State.Status}}' d3 2>&1)"
[ $(($(date +%s) - started)) -lt 10 ] && ok "stop timeout honoured" || not_ok "stop timeout honoured" "took too long"
p rm d3 >/dev/null 2>&1
p run -d --name d4 "$image" sleep 1000 >/dev/null 2>&1
p rm -f -t 0 d4 >/dev/null 2>&1; expect "rm -f of a running container" "0" "$?"

# podman 4.3 attaches to conmon after the start, so output a process writes
# at once can be lost before anyone reads it: runc loses it too (2 in 30
# runs here, carte 8 in 30 as it starts sooner). A short pause first
# makes this a check of the pty, not of that race.
out=$(pty "run --rm -it $image sh -c 'sleep 0.2; tty; echo it-ok'"); expect "run -it" "it-ok" "$out"
p create --name c1 "$image" echo attached >/dev/null 2>&1
out=$(timeout 60 podman --root "$work/root" --runroot "$work/runroot" --runtime carte start --attach c1 2>&1); expect "create + start --attach" "attached" "$out"
out=$(p logs c1 2>&1); expect "logs" "attached" "$out"
p rm c1 >/dev/null 2>&1
out=$(run --init "$image" sh -c 'cat /proc/1/cmdline | tr "\0" " "'); expect "--init" "podman-init" "$out"
# Every capability the host itself has (this one lacks CAP_SYS_RESOURCE).
out=$(run --privileged "$image" grep CapEff /proc/self/status); expect "--privileged" "$(awk '/^CapBnd/ {print $2}' /proc/self/status)" "$out"
out=$(run --ulimit nofile=512:512 --ulimit nproc=1000:1000 "$image" sh -c 'ulimit -n; ulimit -u'); expect "--ulimit" "512
1000" "$out"
out=$(run --sysctl net.ipv4.ip_forward=1 "$image" cat /proc/sys/net/ipv4/ip_forward); expect "--sysctl" "1" "$out"
expect "default seccomp profile" "Seccomp:	2" "$(run "$image" grep '^Seccomp:' /proc/self/status)"
cat > "$work/seccomp.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
EOF
out=$(run --security-opt seccomp="$work/seccomp.json" "$image" sh -c 'mkdir /tmp/x 2>&1; echo rc=$?')
expect "a seccomp profile (--security-opt seccomp=FILE)" "Operation not permitted" "$out"

left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -name 'libpod-*' 2>/dev/null)
[ -z "$left" ] && ok "no container cgroups left" || not_ok "no container cgroups left" "$left"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
