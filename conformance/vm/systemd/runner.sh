#!/bin/bash
# runner.sh: inside the systemd VM, started by carte-tests.service with the
# test disk mounted at /carte-tests. Runs each suites/NN-*.sh in order,
# shows its lines, counts its `ok` / `not ok` lines and prints the total
# `N passed, M failed` for the host. The unit powers off when this exits.
T=/carte-tests
. "$T/env"
export T CARTE=$T/carte IMAGES=$T/images PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The paths the pure v2 VM's bundles and tests-v2.sh use.
ln -s "$T/carte" /carte
ln -s "$T/lib.sh" /lib.sh
ln -s "$T/tests-v2.sh" /tests-v2.sh
mkdir -p /rootfs /bundles
mount --bind "$T/rootfs" /rootfs
mount --bind "$T/bundles" /bundles

echo "=== vm begin: kernel $(uname -r), $(systemctl --version | head -1), $(stat -fc %T /sys/fs/cgroup), up $(cut -d' ' -f1 /proc/uptime) s, system $(systemctl is-system-running)"
[ -n "$VM_DEBUG" ] && journalctl -b -o short-monotonic --no-pager | grep -E 'Started|Finished|Reached|Mounted|kernel: Run|systemd 2' | cut -c1-110
passed=0
failed=0
for s in "$T"/suites/[0-9]*.sh; do
    name=$(basename "$s" .sh)
    echo "--- suite $name"
    start=$(date +%s)
    timeout -k 10 "$SUITE_TIMEOUT" bash "$s" </dev/null 2>&1 | tee "/run/suite-$name.out"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^ok ' "/run/suite-$name.out")
    f=$(grep -c '^not ok ' "/run/suite-$name.out")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "not ok - suite $name: timed out after $SUITE_TIMEOUT s"
        f=$((f + 1))
    elif [ "$p" = 0 ]; then
        echo "not ok - suite $name: no check passed (exit $rc)"
        f=$((f + 1))
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    # Not in the `N passed, M failed` shape: the host's runner adds those up.
    echo "--- suite $name: $p ok, $f not ok in $(($(date +%s) - start)) s"
done
echo "$passed passed, $failed failed"
echo "=== vm end"
# The root disk is a throwaway overlay: off at once, nothing to stop.
sync
systemctl poweroff --force --force
