#!/bin/bash
# carte's systemd cgroup driver (--systemd-cgroup) on a real systemd: the
# scope's name and slice, its properties in `systemctl show`, in the cgroup
# files and from inside, update, daemon-reload, pause, exec, kill --all,
# delete leaving no unit, a create killed half-way; the same limits checks
# with both drivers; podman with cgroup_manager=systemd; and `run` timed
# beside runc and crun, each with --systemd-cgroup.
. "$T/suites/lib.sh"
R=/run/carte-sd
C="/carte --root $R"
cg=/sys/fs/cgroup
mkdir -p /tmp/out
show() { systemctl show -P "$2" "$1" 2>&1; }
pid_of() { $C state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
stopped() {
    for _ in $(seq 200); do
        $C state "$1" 2>/dev/null | grep -q '"status": *"stopped"' && return 0
        sleep 0.05
    done
    return 1
}
unit_gone() { ! systemctl list-units --all --no-legend 2>/dev/null | grep -q "$1"; }

# --- The same limits, through each driver (the bundle has no cgroupsPath).
for driver in cgroupfs systemd; do
    id=vmsd-$driver
    if [ $driver = systemd ]; then
        flag=--systemd-cgroup path=/system.slice/carte-$id.scope
    else
        flag= path=/$id
    fi
    $C $flag run -d -b /bundles/limits $id >/dev/null 2>&1
    expect_eq "$driver: init's cgroup" "0::$path" "$(cat /proc/$(pid_of $id)/cgroup 2>&1)"
    expect "$driver: state.json records the driver" "\"cgroupDriver\":\"$driver\"" "$(cat $R/$id/state.json 2>&1)"
    expect_eq "$driver: memory.max" "67108864" "$(cat $cg$path/memory.max 2>&1)"
    expect_eq "$driver: memory.low" "33554432" "$(cat $cg$path/memory.low 2>&1)"
    expect_eq "$driver: pids.max" "50" "$(cat $cg$path/pids.max 2>&1)"
    expect_eq "$driver: cpu.max" "50000 100000" "$(cat $cg$path/cpu.max 2>&1)"
    expect_eq "$driver: cpu.weight" "20" "$(cat $cg$path/cpu.weight 2>&1)"
    expect_eq "$driver: cpuset.cpus" "0" "$(cat $cg$path/cpuset.cpus 2>&1)"
    expect_eq "$driver: seen inside" "67108864" "$($C exec $id cat /sys/fs/cgroup/memory.max 2>&1)"
    out=$($C exec $id sh -c 'echo x > /dev/null && echo null-ok; mknod /dev/blk b 8 0 && cat /dev/blk' 2>&1)
    expect "$driver: /dev/null allowed" "null-ok" "$out"
    expect "$driver: an unlisted block device denied" "Operation not permitted" "$out"
    $C update --memory 100m --pids-limit 40 $id
    expect_eq "$driver: update -> memory.max" "104857600" "$(cat $cg$path/memory.max 2>&1)"
    expect_eq "$driver: update seen inside" "104857600" "$($C exec $id cat /sys/fs/cgroup/memory.max 2>&1)"
    $C pause $id
    expect_eq "$driver: pause freezes" "1" "$(cat $cg$path/cgroup.freeze 2>&1)"
    $C resume $id
    expect "$driver: resume" '"running"' "$($C state $id 2>&1)"
    expect "$driver: events --stats" '"type":"stats"' "$($C events --stats $id 2>&1)"
    $C kill --all $id KILL
    stopped $id && ok "$driver: kill --all stops it" || not_ok "$driver: kill --all stops it" "still $($C state $id 2>&1)"
    $C delete $id
    [ ! -e $cg$path ] && ok "$driver: delete removes $path" || not_ok "$driver: delete removes $path" "still there"
done
unit_gone carte-vmsd-systemd.scope && ok "systemd: no unit left" || not_ok "systemd: no unit left" "$(systemctl list-units --all | grep vmsd)"

# --- A scope in machine.slice, from cgroupsPath machine.slice:libpod:vmsd-m.
u=libpod-vmsd-m.scope path=/machine.slice/$u
$C --systemd-cgroup run -d -b /bundles/sd-machine vmsd-m >/dev/null 2>&1
pid=$(pid_of vmsd-m)
expect_eq "scope: init in $path" "0::$path" "$(cat /proc/$pid/cgroup 2>&1)"
expect_eq "scope: active" "active" "$(systemctl is-active $u 2>&1)"
expect_eq "scope: Slice" "machine.slice" "$(show $u Slice)"
expect_eq "scope: Delegate" "yes" "$(show $u Delegate)"
expect_eq "scope: ControlGroup" "$path" "$(show $u ControlGroup)"
expect_eq "scope: MemoryMax" "67108864" "$(show $u MemoryMax)"
expect_eq "scope: MemoryLow" "33554432" "$(show $u MemoryLow)"
expect_eq "scope: TasksMax" "50" "$(show $u TasksMax)"
expect_eq "scope: CPUQuotaPerSecUSec" "500ms" "$(show $u CPUQuotaPerSecUSec)"
expect_eq "scope: CPUQuotaPeriodUSec" "100ms" "$(show $u CPUQuotaPeriodUSec)"
expect_eq "scope: CPUWeight (from shares 512)" "20" "$(show $u CPUWeight)"
expect_eq "scope: AllowedCPUs" "0" "$(show $u AllowedCPUs)"
expect_eq "scope: DevicePolicy" "strict" "$(show $u DevicePolicy)"
expect "scope: DeviceAllow" "/dev/char/1:3 rwm" "$(show $u DeviceAllow)"
expect_eq "scope: TimeoutStopUSec from org.systemd.property.TimeoutStopSec" "7s" "$(show $u TimeoutStopUSec)"
expect_eq "scope: memory.max file" "67108864" "$(cat $cg$path/memory.max 2>&1)"
expect_eq "scope: cpu.max file" "50000 100000" "$(cat $cg$path/cpu.max 2>&1)"
expect_eq "scope: pids.max file" "50" "$(cat $cg$path/pids.max 2>&1)"
expect_eq "scope: seen inside" "67108864" "$($C exec vmsd-m cat /sys/fs/cgroup/memory.max 2>&1)"
systemctl daemon-reload
expect_eq "daemon-reload: memory.max kept" "67108864" "$(cat $cg$path/memory.max 2>&1)"
expect_eq "daemon-reload: cpu.max kept" "50000 100000" "$(cat $cg$path/cpu.max 2>&1)"
expect_eq "daemon-reload: pids.max kept" "50" "$(cat $cg$path/pids.max 2>&1)"
expect_eq "daemon-reload: init still in the scope" "0::$path" "$(cat /proc/$pid/cgroup 2>&1)"
out=$($C exec vmsd-m sh -c 'echo x > /dev/null && echo null-ok' 2>&1)
expect "daemon-reload: /dev/null still allowed" "null-ok" "$out"
$C update --memory 128m --pids-limit 100 --cpu-quota 25000 vmsd-m
expect_eq "update: MemoryMax" "134217728" "$(show $u MemoryMax)"
expect_eq "update: TasksMax" "100" "$(show $u TasksMax)"
expect_eq "update: CPUQuotaPerSecUSec" "250ms" "$(show $u CPUQuotaPerSecUSec)"
expect_eq "update: memory.max file" "134217728" "$(cat $cg$path/memory.max 2>&1)"
expect_eq "update: cpu.max file" "25000 100000" "$(cat $cg$path/cpu.max 2>&1)"
systemctl daemon-reload
expect_eq "update, daemon-reload: memory.max kept" "134217728" "$(cat $cg$path/memory.max 2>&1)"
expect_eq "update, daemon-reload: pids.max kept" "100" "$(cat $cg$path/pids.max 2>&1)"
expect_eq "update: seen inside" "134217728" "$($C exec vmsd-m cat /sys/fs/cgroup/memory.max 2>&1)"
$C pause vmsd-m
expect "pause" '"paused"' "$($C state vmsd-m 2>&1)"
expect "pause freezes the scope" "frozen 1" "$(cat $cg$path/cgroup.events 2>&1)"
$C resume vmsd-m
expect "resume" '"running"' "$($C state vmsd-m 2>&1)"
$C exec -d --pid-file /tmp/vmsd-exec.pid vmsd-m sleep 1000
expect_eq "exec lands in the scope" "0::$path" "$(cat /proc/$(cat /tmp/vmsd-exec.pid)/cgroup 2>&1)"
expect "ps lists init and the exec" "$(cat /tmp/vmsd-exec.pid)" "$($C ps --format json vmsd-m 2>&1)"
expect "systemd counts both" "2" "$(show $u TasksCurrent)"
$C kill --all vmsd-m KILL
stopped vmsd-m && ok "kill --all stops the container" || not_ok "kill --all stops the container" "$($C state vmsd-m 2>&1)"
$C delete vmsd-m
unit_gone $u && ok "delete: no unit left (list-units --all)" || not_ok "delete: no unit left" "$(systemctl list-units --all | grep $u)"
[ ! -e $cg$path ] && ok "delete: no cgroup left" || not_ok "delete: no cgroup left" "$path"

# --- delete --force of a running container; a create killed in its hook.
$C --systemd-cgroup run -d -b /bundles/limits vmsd-f >/dev/null 2>&1
$C delete --force vmsd-f
unit_gone carte-vmsd-f.scope && [ ! -e $cg/system.slice/carte-vmsd-f.scope ] &&
    ok "delete --force: no unit, no cgroup" || not_ok "delete --force: no unit, no cgroup" "$(systemctl list-units --all | grep vmsd-f)"
$C --systemd-cgroup create -b /bundles/sd-hook vmsd-k >/dev/null 2>&1 &
create=$!
for _ in $(seq 100); do systemctl is-active -q carte-vmsd-k.scope && break; sleep 0.1; done
sleep 0.3
kill -9 $create; wait $create 2>/dev/null
# (The hook, orphaned, ends by itself within 5 s.)
$C delete --force vmsd-k
unit_gone carte-vmsd-k.scope && [ ! -e $cg/system.slice/carte-vmsd-k.scope ] && [ ! -e $R/vmsd-k ] &&
    ok "a create killed in its hook: delete --force leaves nothing" || not_ok "a create killed in its hook" "$(systemctl list-units --all | grep vmsd-k)"

# --- Without systemd's /run/systemd/system: one line, nothing left.
out=$(unshare -m sh -c "mount -t tmpfs tmpfs /run/systemd && $C --systemd-cgroup run -b /bundles/sd-true vmsd-n" 2>&1)
expect_eq "no systemd: one clear line" "carte: --systemd-cgroup: systemd is not running on this host (no /run/systemd/system)" "$out"
[ ! -e $R/vmsd-n ] && ok "no systemd: nothing left" || not_ok "no systemd: nothing left" "state dir"

# --- podman with cgroup_manager=systemd.
work=/var/tmp/vmsd-podman-sd
mkdir -p "$work"
image=localhost/busybox:carte
cat > "$work/containers.conf" <<EOF
[containers]
netns = "none"
[engine]
runtime_supports_json = ["carte", "crun", "runc"]
events_logger = "file"
cgroup_manager = "systemd"
[engine.runtimes]
carte = ["$CARTE"]
EOF
export CONTAINERS_CONF=$work/containers.conf
P=(podman --root "$work/root" --runroot "$work/runroot" --cgroup-manager=systemd --runtime carte)
p() { timeout 120 "${P[@]}" "$@"; }
p import "$IMAGES/busybox-rootfs.tar" "$image" >/dev/null 2>&1
expect "podman info: systemd manager, carte" "systemd v2 carte" "$(p info --format '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Host.OCIRuntime.Name}}' 2>&1)"
out=$(p run --rm "$image" echo hello 2>&1); expect "podman run (systemd manager)" "hello" "$out"
p run -d --name sd1 --memory 64m --cpus 0.5 --pids-limit 32 "$image" sleep 1000 >/dev/null 2>&1
cid=$(p inspect -f '{{.Id}}' sd1 2>&1)
pu=libpod-$cid.scope
expect_eq "podman: the container's scope is active" "active" "$(systemctl is-active $pu 2>&1)"
expect_eq "podman: scope in machine.slice" "machine.slice" "$(show $pu Slice)"
expect_eq "podman --memory: MemoryMax" "67108864" "$(show $pu MemoryMax)"
expect_eq "podman --cpus: CPUQuotaPerSecUSec" "500ms" "$(show $pu CPUQuotaPerSecUSec)"
expect_eq "podman --pids-limit: TasksMax" "32" "$(show $pu TasksMax)"
expect_eq "podman --memory seen inside" "67108864" "$(p exec sd1 cat /sys/fs/cgroup/memory.max 2>&1)"
expect_eq "podman --cpus seen inside" "50000 100000" "$(p exec sd1 cat /sys/fs/cgroup/cpu.max 2>&1)"
expect_eq "podman --pids-limit seen inside" "32" "$(p exec sd1 cat /sys/fs/cgroup/pids.max 2>&1)"
p update --memory 96m sd1 >/dev/null 2>&1
expect_eq "podman update: MemoryMax" "100663296" "$(show $pu MemoryMax)"
p pause sd1 >/dev/null 2>&1; expect "podman pause" "paused" "$(p inspect -f '{{.State.Status}}' sd1 2>&1)"
p unpause sd1 >/dev/null 2>&1; expect "podman unpause" "running" "$(p inspect -f '{{.State.Status}}' sd1 2>&1)"
p rm -f -t 1 sd1 >/dev/null 2>&1
unit_gone "$pu" && ok "podman rm -f: no unit left" || not_ok "podman rm -f: no unit left" "$(systemctl list-units --all | grep libpod)"
p rmi -f "$image" >/dev/null 2>&1
rm -rf "$work"
unset CONTAINERS_CONF

# --- run timed under the systemd driver, beside runc and crun (and the
# cgroupfs driver for scale): N runs of `true` each, one after another.
N=${SD_TIMING_RUNS:-20}
timeit() {
    local name=$1; shift
    local t0 t1 i fails=0
    out=$("$@" run -b /bundles/sd-true warm-$name 2>&1) || echo "# timing $name: the first run failed: $out"
    t0=$EPOCHREALTIME
    for i in $(seq $N); do "$@" run -b /bundles/sd-true t$i-$name >/dev/null 2>&1 || fails=$((fails + 1)); done
    t1=$EPOCHREALTIME
    awk -v a=$t0 -v b=$t1 -v n=$N -v who="$name" -v f=$fails 'BEGIN {printf "# timing %-18s %7.1f ms a run (%d runs, %d failed)\n", who, (b - a) * 1000 / n, n, f}'
}
timing=$( {
    timeit carte-systemd /carte --root $R --systemd-cgroup
    timeit runc-systemd runc --root /run/runc-sd --systemd-cgroup
    timeit crun-systemd crun --root /run/crun-sd --systemd-cgroup
    timeit carte-cgroupfs /carte --root $R
} )
echo "$timing"
expect "timing: every run succeeded" "0 failed" "$(echo "$timing" | grep carte-systemd)"
echo "$timing" | awk '/# timing/ {t[$3] = $4} END {
    if (t["carte-systemd"] > 0) printf "# timing ratio runc/carte %.2f, crun/carte %.2f (systemd driver)\n", t["runc-systemd"] / t["carte-systemd"], t["crun-systemd"] / t["carte-systemd"] }'
left=$(systemctl list-units --all --no-legend | grep -cE '(carte|runc|crun)-(t[0-9]+|warm)-' || true)
expect_eq "no scope left after the timed runs" "0" "$left"
expect_eq "no carte state left in $R" "" "$(ls -A $R 2>&1)"
