#!/usr/bin/env bash
# The whole test suite: format and lint, unit tests, the integration tests
# (real namespaces, mounts and cgroups; needs root), then a leak check.
# Installs what it needs from Debian when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "run-tests: the integration tests need root (namespaces, mounts, cgroups)" >&2
    exit 1
fi
need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v script >/dev/null || need+=(bsdutils)
command -v tmux >/dev/null || need+=(tmux)
command -v ps >/dev/null || need+=(procps)
# The real callers, for conformance/podman and conformance/containerd.
command -v podman >/dev/null || need+=(podman)
command -v conmon >/dev/null || need+=(conmon)
command -v containerd >/dev/null || need+=(containerd)
command -v dockerd >/dev/null || need+=(docker.io)
# conformance/vm boots Debian's kernel under qemu.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
# tests/seccomp.rs builds a small static helper (tests/helpers/sc.c).
command -v cc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# What machine this is: a failure log then says what host it came from.
conformance/host-summary.sh
cargo fmt --all -- --check
cargo clippy --all-targets -q -- -D warnings
cargo build -q
# Test binaries run one after another; tests inside one binary run in
# parallel. --no-fail-fast: every binary runs even after one fails.
log=$(mktemp)
before=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$before" "$skips"' EXIT
conformance/check-leaks.sh --snapshot "$before"
set +e
CARTE_SKIP_LOG=$skips cargo test -q --no-fail-fast -- --test-threads=4 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
# A test binary that died without its `test result:` line (a crash, a
# build failure) counts as one failure: cargo lists it among the failed
# targets, and no FAILED result line accounts for it.
failed_targets=$(sed -n 's/^error: \([0-9]*\) targets\? failed:$/\1/p' "$log" | tail -1)
result_failures=$(grep -c '^test result: FAILED' "$log")
crashed=$(( ${failed_targets:-0} - result_failures ))
[ "$crashed" -gt 0 ] || crashed=0
[ "$crashed" = 0 ] || echo "run-tests: $crashed test binaries ended without a result line"
# docs/conformance.md has one row per MUST and SHOULD of the spec.
echo "== conformance table"
conformance/spec-rows.sh || tests_rc=1
# The committed man pages and completions match the clap definitions.
echo "== man pages and completions"
cargo clippy -q -p carte-gen-docs --all-targets -- -D warnings 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
cargo test -q -p carte-gen-docs 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
# The fault walk: every failpoint of src/failpoint.rs set in turn, in a
# build of its own (the feature is off in the binary above and in releases).
echo "== fault injection"
cargo clippy -q --features failpoints --target-dir target/failpoints --all-targets -- -D warnings 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
CARTE_SKIP_LOG=$skips cargo test -q --features failpoints --target-dir target/failpoints --test faults -- --test-threads=2 --nocapture 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
# podman (through conmon), containerd (through its runc shim), docker
# (through containerd) and containerd's CRI plugin (a Kubernetes node's
# path) drive the same binary; each suite prints its own `N passed, M failed`.
for suite in podman containerd docker cri; do
    echo "== $suite driving carte"
    CARTE=$PWD/target/x86_64-unknown-linux-gnu/debug/carte "conformance/$suite/run.sh" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
done
# Concurrent create/start/kill/delete with a host leak check (a few
# seconds; the debug build, which is already there, instead of a release build).
echo "== churn"
CARTE=$PWD/target/x86_64-unknown-linux-gnu/debug/carte conformance/churn.sh 40 4 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
# The cgroup checks on a pure v2 and a pure v1 host, and the systemd host
# (systemd as PID 1, cgroup v2, both cgroup drivers, podman and
# containerd with their defaults there): qemu VMs (TCG).
for mode in v2 v1 systemd; do
    echo "== $mode VM"
    conformance/vm/run.sh $mode 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || tests_rc=1
done
conformance/check-leaks.sh "$before"
leaks_rc=$?
set -e
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
[ "$leaks_rc" = 0 ] || failed=$((failed + 1))
failed=$((failed + crashed))
# What the host lacked, each with the test that left it out and why.
if [ -s "$skips" ]; then
    echo "== left out for this host ($(sort -u "$skips" | wc -l))"
    sort -u "$skips"
fi
# A runner that died before printing its totals still counts as a failure.
[ "$tests_rc" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "$passed passed, $failed failed"
[ "$tests_rc" = 0 ] && [ "$leaks_rc" = 0 ]
