# Shared by tests-v2.sh and tests-v1.sh (busybox sh, inside the VM).
C="/carte --root /run/carte"
cg=/sys/fs/cgroup
mkdir -p /tmp/out
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
# wait_stopped ID: polls `state` until the container has stopped (10 s).
wait_stopped() {
    for _ in $(seq 200); do
        $C state "$1" 2>/dev/null | grep -q '"status": *"stopped"' && return 0
        sleep 0.05
    done
    return 1
}

