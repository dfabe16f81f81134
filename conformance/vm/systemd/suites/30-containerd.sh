#!/bin/bash
# containerd, through its runc shim (io.containerd.runc.v2), driving carte on
# the systemd host with cgroupfs: the scenarios of
# conformance/containerd/run.sh with cgroup v2 paths. A private daemon (its
# own config, socket, root and state); the busybox image imported from the
# OCI archive make-image.py made on the host. ctr passes the shim its
# options itself (BinaryName from --runc-binary, SystemdCgroup false as
# --runc-systemd-cgroup is not given); the config says the same for CRI.
. "$T/suites/lib.sh"
work=/var/tmp/vmsd-containerd
mkdir -p "$work"
sock=$work/containerd.sock
image=localhost/busybox:carte
cat > "$work/config.toml" <<C
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "$CARTE"
  SystemdCgroup = false
C
containerd --config "$work/config.toml" > "$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] && ok "a private containerd starts" || not_ok "a private containerd starts" "$(tail -3 "$work/daemon.log")"
ctr() { timeout 120 /usr/bin/ctr --address "$sock" "$@"; }
ids=()
newid() { id="vmsd-ctr-$(date +%s%N)"; ids+=("$id"); }
RUNC=(--runtime io.containerd.runc.v2 --runc-binary "$CARTE" --runc-root "$work/carte")
run() {
    newid
    local args=() a
    for a in "$@"; do args+=("${a//@ID@/$id}"); done
    ctr run --rm "${RUNC[@]}" "${args[@]}" 2>&1
}
task_status() { ctr task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
wait_status() {
    for _ in $(seq 200); do [ "$(task_status "$1")" = "$2" ] && return 0; sleep 0.05; done
    return 1
}

ctr images import --base-name localhost/busybox "$IMAGES/busybox-oci.tar" >/dev/null 2>&1
expect "ctr images import" "$image" "$(ctr images ls -q 2>&1)"
out=$(run "$image" @ID@ echo hello); expect "run echo" "hello" "$out"
run "$image" @ID@ sh -c 'exit 5' >/dev/null; expect_eq "exit code passes through" "5" "$?"
out=$(run --env FOO=bar --cwd /tmp "$image" @ID@ sh -c 'echo "$FOO $(pwd)"'); expect "env and cwd" "bar /tmp" "$out"
mkdir -p "$work/vol" && echo from-host > "$work/vol/f"
out=$(run --mount "type=bind,src=$work/vol,dst=/data,options=rbind:ro" "$image" @ID@ \
    sh -c 'cat /data/f; touch /data/x 2>/dev/null && echo writable || echo readonly')
expect "read-only bind mount" "from-host
readonly" "$out"
# ctr's default spec has no cgroup namespace nor cgroup mount: the task
# shows its cgroup in /proc/self/cgroup; the limit is read on the host below.
out=$(run "$image" @ID@ cat /proc/self/cgroup); expect "the task runs in /default/<id>" "0::/default/vmsd-ctr-" "$out"
newid
out=$(TERM=xterm timeout 60 script -qec "ctr --address $sock run --rm -t ${RUNC[*]} $image $id sh -c 'tty; echo tty-ok'" /dev/null 2>&1)
expect "tty" "/dev/pts/0" "$out"

newid; task=$id
ctr run -d "${RUNC[@]}" --memory-limit 67108864 "$image" "$task" \
    sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1
wait_status "$task" RUNNING && ok "detached task runs" || not_ok "detached task runs" "$(task_status "$task")"
pid=$(ctr task ls 2>/dev/null | awk -v id="$task" '$1 == id {print $2}')
cg=$(cut -d: -f3 "/proc/$pid/cgroup" 2>/dev/null)
expect_eq "the task's cgroup is /default/<id> (cgroupfs)" "/default/$task" "$cg"
expect "memory limit on the host (memory.max)" "67108864" "$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)"
ctr task exec --exec-id e1 "$task" sh -c 'exit 6' >/dev/null 2>&1; expect_eq "exec exit code" "6" "$?"
out=$(ctr task exec --exec-id e2 --user 1000 --cwd /tmp "$task" sh -c 'echo "$(id -u) $(pwd)"' 2>&1)
expect "exec user and cwd" "1000 /tmp" "$out"
out=$(TERM=xterm timeout 60 script -qec "ctr --address $sock task exec -t --exec-id e3 $task sh -c 'tty; sleep 0.2'" /dev/null 2>&1)
expect "exec tty" "/dev/pts/" "$out"
ctr task exec -d --exec-id e4 "$task" sleep 500 >/dev/null 2>&1
sleep 0.5
out=$(ctr task ps "$task" 2>&1); expect "task ps" "$pid" "$out"
[ "$(echo "$out" | tail -n +2 | wc -l)" -ge 2 ] && ok "task ps lists the exec" || not_ok "task ps lists the exec" "$out"
ctr task kill --exec-id e4 -s SIGKILL "$task" >/dev/null 2>&1; expect_eq "kill an exec" "0" "$?"
out=$(ctr task metrics "$task" 2>&1); expect "task metrics (carte events --stats)" "memory" "$out"
ctr task pause "$task" && wait_status "$task" PAUSED && ok "pause" || not_ok "pause" "$(task_status "$task")"
expect "pause freezes the cgroup" "frozen 1" "$(cat "/sys/fs/cgroup$cg/cgroup.events" 2>&1)"
ctr task resume "$task" && wait_status "$task" RUNNING && ok "resume" || not_ok "resume" "$(task_status "$task")"
ctr task kill -s SIGTERM "$task" && wait_status "$task" STOPPED && ok "kill SIGTERM" || not_ok "kill SIGTERM" "$(task_status "$task")"
ctr task delete "$task" >/dev/null 2>&1; expect_eq "task delete" "0" "$?"
[ ! -e "/sys/fs/cgroup$cg" ] && ok "task delete removes the cgroup" || not_ok "task delete removes the cgroup" "$cg still there"
ctr container rm "$task" >/dev/null 2>&1; expect_eq "container rm" "0" "$?"

newid; task=$id
ctr run -d "${RUNC[@]}" "$image" "$task" sh -c 'sleep 1000 & sleep 1000 & wait' >/dev/null 2>&1
wait_status "$task" RUNNING
ctr task kill --all -s SIGKILL "$task" >/dev/null 2>&1
wait_status "$task" STOPPED && ok "kill --all" || not_ok "kill --all" "$(task_status "$task")"
ctr task delete --force "$task" >/dev/null 2>&1; expect_eq "task delete --force" "0" "$?"
ctr container rm "$task" >/dev/null 2>&1

for id in "${ids[@]}"; do
    ctr task kill --all -s SIGKILL "$id" >/dev/null 2>&1
    ctr task delete --force "$id" >/dev/null 2>&1
    ctr container rm "$id" >/dev/null 2>&1
done
left=$(find /sys/fs/cgroup -type d -name 'vmsd-ctr-*' 2>/dev/null)
expect_eq "no task cgroups left" "" "$left"
left=$(find "$work/carte" -mindepth 2 -maxdepth 2 2>/dev/null)
expect_eq "no carte state dirs left" "" "$left"
left=$(grep -c "$work/state" /proc/self/mountinfo)
expect_eq "no task mounts left" "0" "$left"
kill "$daemon" 2>/dev/null
wait "$daemon" 2>/dev/null
grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
rmdir /sys/fs/cgroup/default 2>/dev/null
rm -rf "$work"
