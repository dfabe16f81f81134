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

out=$(run "$image" echo hello); expect "run echo" "hello" "$out"
run "$image" sh -c 'exit 3' >/dev/null; expect_eq "run: exit code" "3" "$?"
out=$(run -e FOO=bar "$image" sh -c 'echo $FOO'); expect "run -e" "bar" "$out"
out=$(run --hostname box1 "$image" hostname); expect "run --hostname" "box1" "$out"
out=$(run --user 1000:1000 "$image" sh -c 'echo $(id -u):$(id -g)'); expect "run --user" "1000:1000" "$out"
out=$(run -w /tmp "$image" pwd); expect "run -w" "/tmp" "$out"
out=$(run --read-only "$image" sh -c 'touch /x 2>/dev/null && echo rw || echo ro; touch /tmp/y && echo tmp-ok')
expect "run --read-only" "ro
tmp-ok" "$out"
mkdir -p "$work/vol" && echo from-host > "$work/vol/f"
out=$(run -v "$work/vol:/data" "$image" cat /data/f); expect "run -v bind mount" "from-host" "$out"
out=$(run --memory 64m "$image" cat /sys/fs/cgroup/memory.max); expect "--memory seen inside (memory.max)" "67108864" "$out"
out=$(run --cpus 0.5 "$image" cat /sys/fs/cgroup/cpu.max); expect "--cpus seen inside (cpu.max)" "50000 100000" "$out"
out=$(run --pids-limit 50 "$image" cat /sys/fs/cgroup/pids.max); expect "--pids-limit seen inside (pids.max)" "50" "$out"
out=$(run "$image" cat /proc/self/cgroup); expect "a private cgroup namespace" "0::/" "$out"
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
out=$(run --init "$image" sh -c 'cat /proc/1/cmdline | tr "\0" " "'); expect "--init" "init" "$out"
out=$(run --privileged "$image" grep CapEff /proc/self/status); expect "--privileged" "$(awk '/^CapBnd/ {print $2}' /proc/self/status)" "$out"
out=$(run --ulimit nofile=512:512 --ulimit nproc=1000:1000 "$image" sh -c 'ulimit -n; ulimit -u'); expect "--ulimit" "512
1000" "$out"
out=$(run --sysctl net.ipv4.ip_forward=1 "$image" cat /proc/sys/net/ipv4/ip_forward); expect "--sysctl" "1" "$out"
expect "default seccomp profile" "Seccomp:	2" "$(run "$image" grep '^Seccomp:' /proc/self/status)"

p rm -af -t 0 >/dev/null 2>&1
left=$(p ps -aq 2>&1); expect_eq "no container left in podman" "" "$left"
p system reset -f >/dev/null 2>&1
grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
rm -rf "$work"
# conmon's own cgroup and the parent are podman's; remove them if empty.
rmdir /sys/fs/cgroup/libpod_parent/conmon /sys/fs/cgroup/libpod_parent 2>/dev/null
left=$(find /sys/fs/cgroup -type d -name 'libpod-*' 2>/dev/null)
expect_eq "no container cgroup left" "" "$left"
