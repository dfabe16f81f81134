#!/bin/bash
# carte's cgroupfs driver on a systemd host: the pure v2 VM's checks
# (tests-v2.sh) as they are, with no cgroupsPath making /<id> beside
# systemd's slices, then what a systemd host adds: a shared root mount, and
# a service manager that owns the root cgroup.
. "$T/suites/lib.sh"
C="/carte --root /run/carte"
cg=/sys/fs/cgroup
sh /tests-v2.sh | grep -Ev '^[0-9]+ passed, [0-9]+ failed$'
# tests-v2.sh checks that /mypod/abs goes; its parent is left, as runc does.
rmdir $cg/mypod 2>/dev/null

# systemd makes / shared: no mount made for a container may reach the
# host. (A rootfsPropagation of "slave", not "rslave", leaves the rootfs's
# own mount shared unless carte makes it private, as runc does.)
# The runner's one bind at /rootfs is all there should be.
leaks() {
    awk '$5 ~ "^/carte-tests/rootfs(/|$)|^/rootfs/" {print $5}' /proc/self/mountinfo
    awk '$5 == "/rootfs" {print $5}' /proc/self/mountinfo | tail -n +2
}
expect_eq "no container mount propagates to the host (chk-mounts: rootfsPropagation slave)" "" "$(leaks | sort -u | tr '\n' ' ')"
for _ in 1 2 3; do leaks | tac | while read -r m; do umount -l "$m" 2>/dev/null; done; done

$C run -d -b /bundles/limits vmsd-cg >/dev/null 2>&1
pid=$($C state vmsd-cg 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
expect_eq "the container's init is in /<id>, beside systemd's slices" "0::/vmsd-cg" "$(cat /proc/$pid/cgroup 2>&1)"
expect "the runner itself stays in its service" "carte-tests.service" "$(cat /proc/self/cgroup)"
expect "carte enabled cpuset at the root, which systemd leaves off" "cpuset" "$(cat $cg/cgroup.subtree_control)"
systemctl daemon-reload
expect_eq "daemon-reload leaves the container in its cgroup" "0::/vmsd-cg" "$(cat /proc/$pid/cgroup 2>&1)"
expect_eq "daemon-reload leaves its memory.max" "67108864" "$(cat $cg/vmsd-cg/memory.max 2>&1)"
expect "systemd leaves the container out of its units" "does not belong to any loaded unit" "$(systemctl status "$pid" 2>&1)"
$C delete --force vmsd-cg
[ ! -e $cg/vmsd-cg ] && ok "delete --force removes /vmsd-cg" || not_ok "delete --force removes /vmsd-cg" "still there"
