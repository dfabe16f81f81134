#!/usr/bin/env bash
# docker driving carte: a private dockerd (own socket, data root, exec root
# and pidfile; no bridge, no iptables) with carte added as a runtime, the
# way docs/integration.md tells users to, and a busybox image imported from
# a tarball. Prints `N passed, M failed`. Stops only the daemon it started,
# by PID, and removes all it made.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CARTE=${CARTE:-$repo/target/x86_64-unknown-linux-gnu/release/carte}
[ -x "$CARTE" ] || { echo "docker suite: no carte binary at $CARTE" >&2; exit 1; }
if ! command -v dockerd >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

work=$(mktemp -d /tmp/carte-docker.XXXXXX)
sock=$work/docker.sock
image=localhost/busybox:carte
daemon=
d() { docker -H "unix://$sock" "$@"; }

cleanup() {
    d ps -aq 2>/dev/null | xargs -r docker -H "unix://$sock" rm -f >/dev/null 2>&1
    if [ -n "$daemon" ]; then
        kill "$daemon" 2>/dev/null
        wait "$daemon" 2>/dev/null
    fi
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    for dir in /sys/fs/cgroup/*/docker /sys/fs/cgroup/docker; do [ -d "$dir" ] && rmdir "$dir" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/daemon.json" <<JSON
{"runtimes": {"carte": {"path": "$CARTE"}}, "default-runtime": "carte"}
JSON
dockerd --config-file "$work/daemon.json" -H "unix://$sock" --data-root "$work/data" \
    --exec-root "$work/exec" --pidfile "$work/docker.pid" --bridge none --iptables=false \
    --ip6tables=false --ip-masq=false --storage-driver vfs >"$work/dockerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do d version >/dev/null 2>&1 && break; sleep 0.2; done
d version >/dev/null 2>&1 || { echo "dockerd did not start:" >&2; tail -20 "$work/dockerd.log" >&2; echo "0 passed, 1 failed"; exit 1; }

"$repo/bundle-examples/mkrootfs.sh" "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -c . | d import - "$image" >/dev/null 2>&1 || { echo "image import failed" >&2; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
run() { timeout 60 docker -H "unix://$sock" run --rm --network none "$@" 2>&1; }

expect "the default runtime is carte" "carte" "$(d info --format '{{.DefaultRuntime}}' 2>&1)"
# dockerd runs `carte --version` and reads it as runc's: the runtime's
# name and version (docker version's components) and its commit (docker
# info's "runc version" line, .RuncCommit.ID).
commit=$("$CARTE" --version | sed -n 's/^commit: //p')
version=$("$CARTE" --version | sed -n 's/^carte version //p')
expect "docker info shows carte's commit" "$commit" "$(d info --format '{{.RuncCommit.ID}}' 2>&1)"
expect "docker version shows carte's version" "carte $version $commit" \
    "$(d version --format '{{range .Server.Components}}{{.Name}} {{.Version}} {{.Details.GitCommit}};{{end}}' 2>&1)"
out=$(run "$image" echo hello); expect "run echo" "hello" "$out"
run "$image" sh -c 'exit 3' >/dev/null; expect "exit code" "3" "$?"
out=$(run -e FOO=bar -w /tmp --user 1000:1000 "$image" sh -c 'echo $FOO $(pwd) $(id -u)'); expect "-e, -w, --user" "bar /tmp 1000" "$out"
out=$(run --read-only "$image" sh -c 'touch /x 2>/dev/null && echo rw || echo ro'); expect "--read-only" "ro" "$out"
mkdir -p "$work/vol" && echo from-host > "$work/vol/f"
out=$(run -v "$work/vol:/data:ro" "$image" cat /data/f); expect "-v bind mount" "from-host" "$out"
out=$(run --memory 64m "$image" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'); expect "--memory" "67108864" "$out"
out=$(run "$image" grep '^Seccomp:' /proc/self/status); expect "docker's default seccomp profile" "2" "$out"
out=$(TERM=xterm timeout 60 script -qec "docker -H unix://$sock run --rm -t --network none $image sh -c 'sleep 0.2; tty'" /dev/null 2>&1)
expect "run -t" "/dev/pts/" "$out"

d run -d --name d1 --network none "$image" sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1
expect "run -d" "running" "$(d inspect -f '{{.State.Status}}' d1 2>&1)"
d exec d1 sh -c 'exit 4' >/dev/null 2>&1; expect "exec exit code" "4" "$?"
out=$(d exec -u 1000 -w /tmp d1 sh -c 'echo $(id -u) $(pwd)' 2>&1); expect "exec user, workdir" "1000 /tmp" "$out"
d pause d1 >/dev/null 2>&1; expect "pause" "paused" "$(d inspect -f '{{.State.Status}}' d1 2>&1)"
d unpause d1 >/dev/null 2>&1; expect "unpause" "running" "$(d inspect -f '{{.State.Status}}' d1 2>&1)"
out=$(d top d1 2>&1); expect "top" "sleep" "$out"
d stop -t 5 d1 >/dev/null 2>&1; expect "stop" "exited" "$(d inspect -f '{{.State.Status}}' d1 2>&1)"
d rm d1 >/dev/null 2>&1; expect "rm" "0" "$?"
d run -d --name d2 --network none "$image" sleep 1000 >/dev/null 2>&1
d rm -f d2 >/dev/null 2>&1; expect "rm -f of a running container" "0" "$?"

left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/docker/*' 2>/dev/null)
expect "no container cgroups left" "" "$left"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
