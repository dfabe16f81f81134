#!/bin/sh
# The cgroup v2 checks, run by /init inside the VM (busybox sh). Each value
# is read back from the container's cgroup, and from inside where the
# container can see it. Prints `N passed, M failed`.
. /lib.sh
out=$($C run -b /bundles/echo echo 2>&1)
expect "run on a v2-only host" "hello-v2 v2box" "$out"

$C run -d -b /bundles/limits lim >/dev/null 2>&1
expect "memory.limit -> memory.max" "67108864" "$(cat $cg/lim/memory.max 2>&1)"
expect "memory.reservation -> memory.low" "33554432" "$(cat $cg/lim/memory.low 2>&1)"
expect "pids.limit -> pids.max" "50" "$(cat $cg/lim/pids.max 2>&1)"
expect "cpu quota/period -> cpu.max" "50000 100000" "$(cat $cg/lim/cpu.max 2>&1)"
expect "cpu.shares -> cpu.weight" "20" "$(cat $cg/lim/cpu.weight 2>&1)"
expect "cpu.cpus -> cpuset.cpus" "0" "$(cat $cg/lim/cpuset.cpus 2>&1)"
expect "the container sees its memory.max" "67108864" "$($C exec lim cat /sys/fs/cgroup/memory.max 2>&1)"
expect "the container sees its pids.max" "50" "$($C exec lim cat /sys/fs/cgroup/pids.max 2>&1)"
expect "the cgroup namespace root is the container's cgroup" "0::/" "$($C exec lim cat /proc/self/cgroup 2>&1)"
out=$($C exec lim sh -c 'echo x > /dev/null && echo null-ok; mknod /dev/blk b 8 0 && cat /dev/blk' 2>&1)
expect "device program: /dev/null is allowed" "null-ok" "$out"
expect "device program: an unlisted block device is denied" "Operation not permitted" "$out"
$C update --memory 33554432 --pids-limit 40 lim
expect "update --memory -> memory.max" "33554432" "$(cat $cg/lim/memory.max 2>&1)"
expect "update --pids-limit -> pids.max" "40" "$(cat $cg/lim/pids.max 2>&1)"
echo '{"cpu": {"quota": 20000, "period": 100000}}' | $C update --resources - lim
expect "update --resources - -> cpu.max" "20000 100000" "$(cat $cg/lim/cpu.max 2>&1)"
expect "the container sees the updated memory.max" "33554432" "$($C exec lim cat /sys/fs/cgroup/memory.max 2>&1)"
out=$($C events --stats lim 2>&1)
expect "events --stats" '"type":"stats"' "$out"
expect "events --stats: memory usage" '"usage"' "$out"
out=$($C ps lim 2>&1)
expect "ps lists the container's process" "sleep" "$out"
$C kill lim KILL
wait_stopped lim
$C delete lim
[ ! -e $cg/lim ] && ok "delete removes the cgroup" || not_ok "delete removes the cgroup" "still there"

$C run -d -b /bundles/counter ctr >/dev/null 2>&1
sleep 0.5
$C pause ctr
expect "pause: state paused" '"paused"' "$($C state ctr 2>&1)"
expect "pause: cgroup.events frozen 1" "frozen 1" "$(cat $cg/ctr/cgroup.events 2>&1)"
a=$(cat /tmp/out/counter); sleep 0.5; b=$(cat /tmp/out/counter)
[ "$a" = "$b" ] && ok "pause: the counter stops" || not_ok "pause: the counter stops" "$a -> $b"
$C resume ctr
expect "resume: state running" '"running"' "$($C state ctr 2>&1)"
a=$(cat /tmp/out/counter); sleep 0.5; b=$(cat /tmp/out/counter)
[ "$a" != "$b" ] && ok "resume: the counter moves" || not_ok "resume: the counter moves" "stuck at $a"
$C delete --force ctr
[ ! -e $cg/ctr ] && ok "delete --force of a running container removes the cgroup" || not_ok "delete --force removes the cgroup" "still there"

$C run -d -b /bundles/killall ka >/dev/null 2>&1
sleep 0.3
n=$(wc -l < $cg/ka/cgroup.procs)
[ "$n" -ge 3 ] && ok "kill --all: the container has $n processes" || not_ok "kill --all: processes" "$n"
$C kill --all ka KILL
wait_stopped ka
sleep 0.2
expect "kill --all leaves no process" "" "$(cat $cg/ka/cgroup.procs 2>&1)"
$C delete ka

$C create -b /bundles/oom oom >/dev/null 2>&1
$C events oom > /tmp/events.oom 2>&1 &
events_pid=$!
sleep 0.3
$C start oom
wait_stopped oom
sleep 0.3
kill $events_pid 2>/dev/null
expect "events reports the OOM" '"type":"oom"' "$(cat /tmp/events.oom)"
events=$(cat $cg/oom/memory.events 2>&1)
case "$events" in *"oom_kill 0"*|"") not_ok "the memory limit stops an allocation" "$events" ;;
    *oom_kill*) ok "the memory limit stops an allocation (OOM kill)" ;;
    *) not_ok "the memory limit stops an allocation" "$events" ;; esac
$C delete oom

out=$($C run -b /bundles/forkbomb fb 2>&1)
expect "the pids limit stops a fork bomb" "can't fork" "$out"

$C run -d -b /bundles/abspath abs >/dev/null 2>&1
[ -d $cg/mypod/abs ] && ok "an absolute cgroupsPath is used as given" || not_ok "absolute cgroupsPath" "no $cg/mypod/abs"
$C delete --force abs
[ ! -e $cg/mypod/abs ] && ok "delete removes an absolute-path cgroup" || not_ok "absolute cgroupsPath removed" "still there"

# carte-checker inside, against its config.json: namespaces, mounts,
# devices, process attributes, and the cgroup limits it sees.
for t in pid network mount ipc uts user cgroup time; do
    [ "$t" = network ] && n=net || { [ "$t" = mount ] && n=mnt || n=$t; }
    ino=$(stat -L -c %i /proc/self/ns/$n)
    for b in /bundles/chk-*; do sed -i "s/@ns-$t@/$ino/" $b/config.json; done
done
for b in chk-default chk-mounts chk-process chk-devices chk-timens chk-limits chk-pids0; do
    out=$($C run -b /bundles/$b $b </dev/null 2>&1)
    total=$(echo "$out" | grep -c '^ok ')
    bad=$(echo "$out" | grep '^not ok')
    if [ -z "$bad" ] && echo "$out" | grep -q '^1\.\.'; then
        ok "carte-checker in $b: $total checks"
    else
        not_ok "carte-checker in $b" "$bad $(echo "$out" | tail -3)"
    fi
done

# Cgroup ownership: handed to the container's root (host uid 100000).
$C run -d -b /bundles/delegated dlg >/dev/null 2>&1
expect "delegated cgroup: the directory belongs to the container's root" "100000" "$(stat -c %u $cg/dlg 2>&1)"
expect "delegated cgroup: cgroup.procs too" "100000" "$(stat -c %u $cg/dlg/cgroup.procs 2>&1)"
expect "delegated cgroup: memory.max stays the host's" "0" "$(stat -c %u $cg/dlg/memory.max 2>&1)"
expect "delegated cgroup: the container makes a sub-cgroup" "made" "$($C exec dlg sh -c 'mkdir /sys/fs/cgroup/sub && echo made' 2>&1)"
$C delete --force dlg
$C run -d -b /bundles/limits lim2 >/dev/null 2>&1
expect "no user namespace: the cgroup stays root's" "0" "$(stat -c %u $cg/lim2 2>&1)"
$C delete --force lim2

# linux.resources.unified: written as given, controllers enabled; a file
# of no controller is an error.
$C run -d -b /bundles/unified uni >/dev/null 2>&1
expect "unified pids.max" "42" "$(cat $cg/uni/pids.max 2>&1)"
expect "unified memory.high" "50331648" "$(cat $cg/uni/memory.high 2>&1)"
expect "unified io.weight" "default 70" "$(cat $cg/uni/io.weight 2>&1)"
$C delete --force uni
out=$($C run -b /bundles/unified-bad unibad 2>&1)
expect "unified: a file of no controller fails create" "nosuch" "$out"
[ ! -e $cg/unibad ] && ok "unified: the failed create leaves no cgroup" || not_ok "unified failure cleanup" "cgroup left"

# Rootless: carte run by uid 1000 (busybox su: no PAM, which on the systemd
# VM refuses a user with no shadow entry), state under its XDG_RUNTIME_DIR.
# With a delegated cgroup (uid 1000 owns /deleg, its shell sits in the
# leaf /deleg/sh) carte makes /deleg/c and sets the limits there; without
# one (the root cgroup is root's) it makes none and refuses limits.
mkdir -p /etc /run/rl $cg/deleg/sh
echo "rl:x:1000:1000::/tmp:/bin/sh" >> /etc/passwd
echo "rl:x:1000:" >> /etc/group
echo "+memory +pids" > $cg/deleg/cgroup.subtree_control
chown 1000:1000 /run/rl $cg/deleg $cg/deleg/cgroup.procs $cg/deleg/cgroup.subtree_control \
    $cg/deleg/cgroup.threads $cg/deleg/sh $cg/deleg/sh/cgroup.procs
chmod 700 /run/rl
cat > /tmp/rl.sh <<'EOS'
echo $$ > /sys/fs/cgroup/deleg/sh/cgroup.procs
exec busybox su rl -s /bin/sh -c "XDG_RUNTIME_DIR=/run/rl /carte $*"
EOS
out=$(sh /tmp/rl.sh run -b /bundles/rl-deleg rl1 2>&1)
expect "rootless, delegated cgroup: root inside, limits set" "0
67108864
40" "$out"
[ ! -e $cg/deleg/c ] && ok "rootless, delegated cgroup: removed" || not_ok "rootless, delegated cgroup: removed" "still there"
out=$(sh /tmp/rl.sh run -b /bundles/rl-nocg rl2 2>&1)
expect "rootless, no writable cgroup: runs" "0" "$out"
[ ! -e $cg/rl2 ] && ok "rootless, no writable cgroup: none made" || not_ok "rootless, no writable cgroup: none made" "$cg/rl2"
out=$(sh /tmp/rl.sh run -b /bundles/rl-nocg-limits rl3 2>&1)
expect "rootless, no writable cgroup: limits refused" "linux.resources.memory" "$out"
expect "rootless: the state root is the user's" "1000" "$(stat -c %u /run/rl/carte 2>&1)"
[ -z "$(ls /run/rl/carte)" ] && ok "rootless: no state left" || not_ok "rootless: no state left" "$(ls /run/rl/carte)"
rmdir $cg/deleg/sh $cg/deleg 2>/dev/null

# carte's own cgroups, and the containers' here (no cgroupsPath: /<id>).
left=$(find $cg \( -name '*carte*' -o -path "$cg/mypod/*" -o -name lim -o -name lim2 -o -name ctr -o -name ka -o -name oom -o -name dlg -o -name uni -o -name unibad \) 2>/dev/null)
expect "no carte cgroup left" "" "$left"
echo "$passed passed, $failed failed"
