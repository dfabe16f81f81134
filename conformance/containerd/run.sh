#!/usr/bin/env bash
# containerd, through its runc shim, driving carte: a private containerd
# daemon (own socket, root and state), a busybox image imported from an OCI
# archive, and `ctr run --runc-binary carte`. Prints `N passed, M failed`.
# Stops only the daemon it started, by PID, and removes all it made.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CARTE=${CARTE:-$repo/target/x86_64-unknown-linux-gnu/release/carte}
[ -x "$CARTE" ] || { echo "containerd suite: no carte binary at $CARTE" >&2; exit 1; }
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd >/dev/null
fi

work=$(mktemp -d /tmp/carte-containerd.XXXXXX)
sock=$work/containerd.sock
image=localhost/busybox:carte
daemon=
ids=()

cleanup() {
    for id in "${ids[@]}"; do
        ctr --address "$sock" task kill --all -s SIGKILL "$id" >/dev/null 2>&1
        ctr --address "$sock" task delete --force "$id" >/dev/null 2>&1
        ctr --address "$sock" container rm "$id" >/dev/null 2>&1
    done
    if [ -n "$daemon" ]; then
        kill "$daemon" 2>/dev/null
        wait "$daemon" 2>/dev/null
    fi
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    # The namespace's parent cgroup carte made under each hierarchy.
    for d in /sys/fs/cgroup/*/default; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
EOF
containerd --config "$work/config.toml" > "$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
ctr_bin=$(command -v ctr)
ctr() { "$ctr_bin" --address "$sock" "$@"; }

"$repo/bundle-examples/mkrootfs.sh" "$work/rootfs" >/dev/null
"$here/make-image.py" "$work/rootfs" "$work/image.tar" "$image"
ctr images import --base-name localhost/busybox "$work/image.tar" >/dev/null || { echo "image import failed" >&2; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }
# expect NAME WANT GOT: passes when GOT contains WANT.
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
# Ids are unique even when made in a subshell ($(...)).
newid() { id="carte-ctr-$$-$(date +%s%N)"; ids+=("$id"); }
# run ARGS...: `ctr run --rm` with @ID@ replaced by a fresh container id.
run() {
    newid
    local args=() a
    for a in "$@"; do args+=("${a//@ID@/$id}"); done
    timeout 60 "$ctr_bin" --address "$sock" run --rm --runc-binary "$CARTE" --runc-root "$work/carte" "${args[@]}" 2>&1
}
task_status() { ctr task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
wait_status() {
    for _ in $(seq 100); do [ "$(task_status "$1")" = "$2" ] && return 0; sleep 0.05; done
    return 1
}

out=$(run "$image" @ID@ echo hello); expect "run echo" "hello" "$out"
run "$image" @ID@ sh -c 'exit 5' >/dev/null; expect "exit code passes through" "5" "$?"
out=$(run --env FOO=bar --cwd /tmp "$image" @ID@ sh -c 'echo "$FOO $(pwd)"'); expect "env and cwd" "bar /tmp" "$out"
mkdir -p "$work/vol" && echo from-host > "$work/vol/f"
out=$(run --mount "type=bind,src=$work/vol,dst=/data,options=rbind:ro" "$image" @ID@ \
    sh -c 'cat /data/f; touch /data/x 2>/dev/null && echo writable || echo readonly')
expect "read-only bind mount" "from-host
readonly" "$out"
newid
out=$(TERM=xterm timeout 30 script -qec "ctr --address $sock run --rm -t --runc-binary $CARTE --runc-root $work/carte $image $id sh -c 'tty; echo tty-ok'" /dev/null 2>&1)
expect "tty" "/dev/pts/0" "$out"

# A detached task and what the shim does with it.
newid; task=$id
ctr run -d --runc-binary "$CARTE" --runc-root "$work/carte" --memory-limit 67108864 "$image" "$task" \
    sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1
wait_status "$task" RUNNING && ok "detached task runs" || not_ok "detached task runs" "$(task_status "$task")"
limit=$(cat /sys/fs/cgroup/memory/default/"$task"/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/default/"$task"/memory.max 2>/dev/null)
expect "memory limit" "67108864" "$limit"
ctr task exec --exec-id e1 "$task" sh -c 'exit 6' >/dev/null 2>&1; expect "exec exit code" "6" "$?"
out=$(ctr task exec --exec-id e2 --user 1000 --cwd /tmp "$task" sh -c 'echo "$(id -u) $(pwd)"' 2>&1)
expect "exec user and cwd" "1000 /tmp" "$out"
out=$(TERM=xterm timeout 30 script -qec "ctr --address $sock task exec -t --exec-id e3 $task sh -c 'tty; sleep 0.2'" /dev/null 2>&1)
expect "exec tty" "/dev/pts/" "$out"
ctr task exec -d --exec-id e4 "$task" sleep 500 >/dev/null 2>&1
out=$(ctr task ps "$task" 2>&1); expect "task ps" "$(ctr task ls | awk -v id="$task" '$1 == id {print $2}')" "$out"
[ "$(echo "$out" | tail -n +2 | wc -l)" -ge 2 ] && ok "task ps lists the exec" || not_ok "task ps lists the exec" "$out"
ctr task kill --exec-id e4 -s SIGKILL "$task" >/dev/null 2>&1; expect "kill an exec" "0" "$?"
ctr task pause "$task" && wait_status "$task" PAUSED && ok "pause" || not_ok "pause" "$(task_status "$task")"
ctr task resume "$task" && wait_status "$task" RUNNING && ok "resume" || not_ok "resume" "$(task_status "$task")"
ctr task kill -s SIGTERM "$task" && wait_status "$task" STOPPED && ok "kill SIGTERM" || not_ok "kill SIGTERM" "$(task_status "$task")"
ctr task delete "$task" >/dev/null 2>&1; expect "task delete" "0" "$?"
ctr container rm "$task" >/dev/null 2>&1; expect "container rm" "0" "$?"

newid; task=$id
ctr run -d --runc-binary "$CARTE" --runc-root "$work/carte" "$image" "$task" sh -c 'sleep 1000 & sleep 1000 & wait' >/dev/null 2>&1
wait_status "$task" RUNNING
ctr task kill --all -s SIGKILL "$task" >/dev/null 2>&1
wait_status "$task" STOPPED && ok "kill --all" || not_ok "kill --all" "$(task_status "$task")"
ctr task delete --force "$task" >/dev/null 2>&1; expect "task delete --force" "0" "$?"
ctr container rm "$task" >/dev/null 2>&1

# Nothing of any container is left.
left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -name "carte-ctr-$$-*" 2>/dev/null)
[ -z "$left" ] && ok "no cgroups left" || not_ok "no cgroups left" "$left"
left=$(find "$work/carte" -mindepth 2 -maxdepth 2 2>/dev/null)
[ -z "$left" ] && ok "no state dirs left" || not_ok "no state dirs left" "$left"
left=$(grep -c "$work/state" /proc/self/mountinfo)
[ "$left" = 0 ] && ok "no mounts left" || not_ok "no mounts left" "$left mounts under $work/state"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
