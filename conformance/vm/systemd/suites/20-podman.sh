#!/bin/bash
# podman (through conmon) driving carte on the systemd host with the cgroupfs
# manager: the scenarios of conformance/podman/run.sh, with cgroup v2 paths,
# plus the limits seen from inside. Private storage and containers.conf,
# netns none, the busybox rootfs imported with `podman import`.
. "$T/suites/lib.sh"
work=/var/tmp/vmsd-podman
mkdir -p "$work"
image=localhost/busybox:carte
cat > "$work/containers.conf" <<C
[containers]
netns = "none"
[engine]
runtime_supports_json = ["carte", "crun", "runc"]
events_logger = "file"
cgroup_manager = "cgroupfs"
[engine.runtimes]
carte = ["$CARTE"]
C
export CONTAINERS_CONF=$work/containers.conf
P=(podman --root "$work/root" --runroot "$work/runroot" --cgroup-manager=cgroupfs --runtime carte)
p() { timeout 120 "${P[@]}" "$@"; }
run() { timeout 120 "${P[@]}" run --rm "$@" 2>&1; }
pty() { TERM=xterm timeout 60 script -qec "${P[*]} $1" /dev/null 2>&1; }
state() { p inspect -f '{{.State.Status}}' "$1" 2>&1; }

p import "$IMAGES/busybox-rootfs.tar" "$image" >/dev/null 2>&1
expect "podman import of the busybox rootfs" "$image" "$(p images --format '{{.Repository}}:{{.Tag}}' 2>&1)"
out=$(p info --format '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Host.OCIRuntime.Name}}' 2>&1)
expect "podman info: cgroupfs manager, cgroup v2, carte" "cgroupfs v2 carte" "$out"

# Each podman call costs seconds under TCG: one run checks what one config
# can show together.
out=$(run -e FOO=bar --hostname box1 -w /tmp --memory 64m --cpus 0.5 --pids-limit 50 "$image" \
    sh -c 'echo "hello env=$FOO host=$(hostname) cwd=$(pwd)"; cd /sys/fs/cgroup;
        echo "mem=$(cat memory.max) cpu=$(cat cpu.max) pids=$(cat pids.max) cg=$(cat /proc/self/cgroup)"')
expect "run echo" "hello" "$out"
expect "run -e" "env=bar" "$out"
expect "run --hostname" "host=box1" "$out"
expect "run -w" "cwd=/tmp" "$out"
expect "--memory seen inside (memory.max)" "mem=67108864" "$out"
expect "--cpus seen inside (cpu.max)" "cpu=50000 100000" "$out"
expect "--pids-limit seen inside (pids.max)" "pids=50" "$out"
expect "a private cgroup namespace" "cg=0::/" "$out"
run "$image" sh -c 'exit 3' >/dev/null; expect_eq "run: exit code" "3" "$?"
out=$(run --user 1000:1000 "$image" sh -c 'echo $(id -u):$(id -g)'); expect "run --user" "1000:1000" "$out"
mkdir -p "$work/vol" && echo from-host > "$work/vol/f"
out=$(run --read-only -v "$work/vol:/data" "$image" sh -c 'touch /x 2>/dev/null && echo rw || echo ro; touch /tmp/y && echo tmp-ok; cat /data/f')
expect "run --read-only" "ro
tmp-ok" "$out"
expect "run -v bind mount" "from-host" "$out"
out=$(run --cap-drop ALL "$image" grep CapEff /proc/self/status); expect "--cap-drop ALL" "0000000000000000" "$out"
out=$(run --cap-drop ALL --cap-add SYS_ADMIN "$image" grep CapEff /proc/self/status); expect "--cap-add" "0000000000200000" "$out"

p run -d --name d1 --memory 32m --pids-limit 40 "$image" sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1
expect "run -d" "running" "$(state d1)"
pid=$(p inspect -f '{{.State.Pid}}' d1 2>/dev/null)
cg=$(cut -d: -f3 "/proc/$pid/cgroup" 2>/dev/null)
expect "the cgroupfs manager puts the container under /libpod_parent" "/libpod_parent/libpod-" "$cg"
expect "run -d --memory: memory.max on the host" "33554432" "$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)"
expect "run -d --pids-limit: pids.max on the host" "40" "$(cat "/sys/fs/cgroup$cg/pids.max" 2>&1)"
p exec d1 sh -c 'exit 4' >/dev/null 2>&1; expect_eq "exec: exit code" "4" "$?"
out=$(p exec -e A=1 -u 1000 -w /tmp d1 sh -c 'echo "$A $(id -u) $(pwd)"' 2>&1); expect "exec env, user, workdir" "1 1000 /tmp" "$out"
out=$(p exec d1 cat /sys/fs/cgroup/memory.max 2>&1); expect "exec sees the memory limit" "33554432" "$out"
out=$(pty "exec -it d1 sh -c 'sleep 0.2; tty'"); expect "exec -t" "/dev/pts/" "$out"
out=$(p ps --format '{{.Names}} {{.Status}}' 2>&1); expect "ps" "d1 Up" "$out"
out=$(p top d1 2>&1); expect "top" "while" "$out"
p update --memory 48m d1 >/dev/null 2>&1 && expect "update --memory (carte update)" "50331648" "$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)" \
    || not_ok "update --memory (carte update)" "podman update failed"
p pause d1 >/dev/null 2>&1; expect "pause" "paused" "$(state d1)"
expect "pause freezes the cgroup" "frozen 1" "$(cat "/sys/fs/cgroup$cg/cgroup.events" 2>&1)"
p unpause d1 >/dev/null 2>&1; expect "unpause" "running" "$(state d1)"
p stop -t 5 d1 >/dev/null 2>&1; expect "stop (SIGTERM)" "exited" "$(state d1)"
[ ! -e "/sys/fs/cgroup$cg" ] && ok "stop removes the container's cgroup" || not_ok "stop removes the container's cgroup" "$cg still there"
p rm d1 >/dev/null 2>&1; expect_eq "rm" "0" "$?"

p run -d --name d2 "$image" sh -c 'echo log-line; trap "exit 7" USR1; while :; do sleep 0.05; done' >/dev/null 2>&1
sleep 0.5
expect "logs of a detached container" "log-line" "$(p logs d2 2>&1)"
p kill -s USR1 d2 >/dev/null 2>&1; p wait d2 >/dev/null 2>&1
expect "kill -s USR1" "7" "$(p inspect -f '{{.State.ExitCode}}' d2 2>&1)"
p rm d2 >/dev/null 2>&1
p run -d --name d3 "$image" sleep 1000 >/dev/null 2>&1
started=$(date +%s)
p stop -t 1 d3 >/dev/null 2>&1
expect "stop falls back to SIGKILL" "exited" "$(state d3)"
[ $(($(date +%s) - started)) -lt 20 ] && ok "stop timeout honoured" || not_ok "stop timeout honoured" "took $(($(date +%s) - started)) s"
p rm d3 >/dev/null 2>&1
p run -d --name d4 "$image" sleep 1000 >/dev/null 2>&1
p kill d4 >/dev/null 2>&1; p wait d4 >/dev/null 2>&1
expect "kill (SIGKILL)" "137" "$(p inspect -f '{{.State.ExitCode}}' d4 2>&1)"
p rm d4 >/dev/null 2>&1
p run -d --name d5 "$image" sleep 1000 >/dev/null 2>&1
p rm -f -t 0 d5 >/dev/null 2>&1; expect_eq "rm -f of a running container" "0" "$?"

out=$(pty "run --rm -it $image sh -c 'sleep 0.2; tty; echo it-ok'"); expect "run -it" "it-ok" "$out"
p create --name c1 "$image" echo attached >/dev/null 2>&1
out=$(p start --attach c1 2>&1); expect "create + start --attach" "attached" "$out"
out=$(p logs c1 2>&1); expect "logs" "attached" "$out"
p rm c1 >/dev/null 2>&1
out=$(run --init --ulimit nofile=512:512 --ulimit nproc=1000:1000 --sysctl net.ipv4.ip_forward=1 "$image" \
    sh -c 'echo "init=$(tr "\0" " " < /proc/1/cmdline) nofile=$(ulimit -n) nproc=$(ulimit -u) fwd=$(cat /proc/sys/net/ipv4/ip_forward) $(grep ^Seccomp: /proc/self/status)"')
expect "--init" "init=/run/podman-init" "$out"
expect "--ulimit nofile" "nofile=512" "$out"
expect "--ulimit nproc" "nproc=1000" "$out"
expect "--sysctl" "fwd=1" "$out"
expect "default seccomp profile" "Seccomp:	2" "$out"
out=$(run --privileged "$image" grep CapEff /proc/self/status); expect "--privileged" "$(awk '/^CapBnd/ {print $2}' /proc/self/status)" "$out"

p rm -af -t 0 >/dev/null 2>&1
left=$(p ps -aq 2>&1); expect_eq "no container left in podman" "" "$left"
grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
rm -rf "$work"
# conmon's own cgroup and the parent are podman's; remove them if empty.
rmdir /sys/fs/cgroup/libpod_parent/conmon /sys/fs/cgroup/libpod_parent 2>/dev/null
left=$(find /sys/fs/cgroup -type d -name 'libpod-*' 2>/dev/null)
expect_eq "no container cgroup left" "" "$left"
