#!/bin/sh
# The cgroup v1 checks: the same kernel with only v1 hierarchies mounted (no
# cgroup2 anywhere), as on an older host. Prints `N passed, M failed`.
. /lib.sh
at() { echo "$cg/$1/$2"; }

out=$($C run -b /bundles/echo echo 2>&1)
expect "run on a v1-only host" "hello-v2 v2box" "$out"

$C run -d -b /bundles/limits lim >/dev/null 2>&1
expect "memory.limit -> memory.limit_in_bytes" "67108864" "$(cat $(at memory lim)/memory.limit_in_bytes 2>&1)"
expect "memory.reservation -> memory.soft_limit_in_bytes" "33554432" "$(cat $(at memory lim)/memory.soft_limit_in_bytes 2>&1)"
expect "pids.limit -> pids.max" "50" "$(cat $(at pids lim)/pids.max 2>&1)"
expect "cpu.quota -> cpu.cfs_quota_us" "50000" "$(cat $(at cpu lim)/cpu.cfs_quota_us 2>&1)"
expect "cpu.shares -> cpu.shares" "512" "$(cat $(at cpu lim)/cpu.shares 2>&1)"
expect "cpu.cpus -> cpuset.cpus" "0" "$(cat $(at cpuset lim)/cpuset.cpus 2>&1)"
expect "the container sees its memory limit" "67108864" "$($C exec lim cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
out=$($C exec lim sh -c 'echo x > /dev/null && echo null-ok; mknod /dev/blk b 8 0 && cat /dev/blk' 2>&1)
expect "devices: /dev/null is allowed" "null-ok" "$out"
expect "devices: an unlisted block device is denied" "Operation not permitted" "$out"
$C update --memory 33554432 --pids-limit 40 lim
expect "update --memory" "33554432" "$(cat $(at memory lim)/memory.limit_in_bytes 2>&1)"
expect "update --pids-limit" "40" "$(cat $(at pids lim)/pids.max 2>&1)"
expect "events --stats" '"type":"stats"' "$($C events --stats lim 2>&1)"
expect "ps lists the container's process" "sleep" "$($C ps lim 2>&1)"
$C delete --force lim
[ ! -e "$(at memory lim)" ] && ok "delete removes the cgroup" || not_ok "delete removes the cgroup" "still there"

$C run -d -b /bundles/counter ctr >/dev/null 2>&1
sleep 0.5
$C pause ctr
expect "pause: state paused" '"paused"' "$($C state ctr 2>&1)"
expect "pause: freezer.state FROZEN" "FROZEN" "$(cat $(at freezer ctr)/freezer.state 2>&1)"
a=$(cat /tmp/out/counter); sleep 0.5; b=$(cat /tmp/out/counter)
[ "$a" = "$b" ] && ok "pause: the counter stops" || not_ok "pause: the counter stops" "$a -> $b"
$C resume ctr
a=$(cat /tmp/out/counter); sleep 0.5; b=$(cat /tmp/out/counter)
[ "$a" != "$b" ] && ok "resume: the counter moves" || not_ok "resume: the counter moves" "stuck at $a"
$C delete --force ctr

$C run -d -b /bundles/killall ka >/dev/null 2>&1
sleep 0.3
$C kill --all ka KILL
wait_stopped ka
sleep 0.2
expect "kill --all leaves no process" "" "$(cat $(at pids ka)/cgroup.procs 2>&1)"
$C delete ka

$C create -b /bundles/oom-v1 oom >/dev/null 2>&1
$C events oom > /tmp/events.oom 2>&1 &
events_pid=$!
sleep 0.3
$C start oom
wait_stopped oom
sleep 0.3
kill $events_pid 2>/dev/null
expect "events reports the OOM" '"type":"oom"' "$(cat /tmp/events.oom)"
$C delete oom

expect "the pids limit stops a fork bomb" "can't fork" "$($C run -b /bundles/forkbomb fb 2>&1)"

# carte's own cgroups, and the containers' here (no cgroupsPath: /<id>).
left=$(find $cg \( -name '*carte*' -o -name lim -o -name ctr -o -name ka -o -name oom \) 2>/dev/null)
expect "no carte cgroup left" "" "$left"
echo "$passed passed, $failed failed"
