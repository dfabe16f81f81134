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
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --all-targets -q -- -D warnings
cargo build -q
# Test binaries run one after another; tests inside one binary run in parallel.
cargo test -q -- --test-threads=4
conformance/check-leaks.sh
