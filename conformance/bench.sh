#!/usr/bin/env bash
# One command: benchmark carte against crun and runc on this machine and
# write docs/performance.md (with docs/performance.svg) from the real run.
#
# All three runtimes run inside one private mount namespace in which the
# hybrid host's cgroup2 `cgroup.controllers` is masked (crun 1.8 refuses
# hybrid hosts otherwise), so none pays for a wrapper in its figures.
#
#   conformance/bench.sh           full run (a few minutes)
#   BENCH_QUICK=1 conformance/bench.sh   fewer runs, for a smoke test
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ "${CARTE_BENCH_INSIDE:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
    need=()
    for tool in runc crun hyperfine; do command -v "$tool" >/dev/null || need+=("$tool"); done
    [ -x /usr/bin/time ] || need+=(time)
    [ -x /bin/busybox ] || need+=(busybox-static)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    (cd "$repo" && cargo build --release -q)
    export CARTE_BENCH_INSIDE=1
    exec unshare -m --propagation private "$0" "$@"
fi

work=$(mktemp -d /tmp/carte-bench.XXXXXX)
trap 'umount /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; rm -rf "$work"' EXIT
if [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then
    : > "$work/empty"
    mount --bind "$work/empty" /sys/fs/cgroup/unified/cgroup.controllers
fi
exec python3 "$repo/conformance/bench.py" "$repo" "$work"
