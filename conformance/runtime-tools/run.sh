#!/usr/bin/env bash
# run.sh [RUNTIME]: the opencontainers runtime-tools validation suite
# (validation/*/*.go, each a TAP program driving $RUNTIME from outside and
# cmd/runtimetest inside) against carte, or RUNTIME (runc, crun ...).
#
# Debian's golang-github-opencontainers-runtime-tools-dev ships only the
# library packages (generate, specerror, validate...), not validation/,
# cmd/runtimetest nor the rootfs tarball, and mndrix/tap-go is not packaged.
# Give a runtime-tools source tree (matching Debian's library snapshot) as
# RUNTIME_TOOLS_SRC and, if tap-go is not in it, a GOPATH holding it as
# RUNTIME_TOOLS_GOPATH. Without them the suite is skipped (and says so).
#
# Builds offline in GOPATH mode against /usr/share/gocode, once (cached in
# target/runtime-tools), makes the rootfs from busybox, gives the runtime a
# private --root through a wrapper, runs each test under a timeout, deletes
# whatever the test left, and prints per-test TAP and `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
runtime=${1:-${RUNTIME:-$repo/target/x86_64-unknown-linux-gnu/debug/carte}}
per_test_timeout=${RUNTIME_TOOLS_TIMEOUT:-60}
cache=$repo/target/runtime-tools

need=()
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/opencontainers/runtime-tools/generate ] ||
    need+=(golang-github-opencontainers-runtime-tools-dev)
command -v prove >/dev/null || need+=(perl)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

src=${RUNTIME_TOOLS_SRC:-}
if [ -z "$src" ]; then
    for d in "$cache/src" /usr/share/gocode/src/github.com/opencontainers/runtime-tools; do
        [ -d "$d/validation" ] && [ -d "$d/cmd/runtimetest" ] && { src=$d; break; }
    done
fi
if [ -z "$src" ] || [ ! -d "$src/validation" ]; then
    echo "1..0 # SKIP runtime-tools: no validation sources (Debian ships only the library; set RUNTIME_TOOLS_SRC)"
    echo "runtime-tools: 0 passed, 0 failed"
    exit 0
fi

# Build once per source tree: GOPATH mode, no network.
export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE=$cache/gocache
gopath=$cache/gopath
export GOPATH=$gopath${RUNTIME_TOOLS_GOPATH:+:$RUNTIME_TOOLS_GOPATH}:/usr/share/gocode
stamp=$(cd "$src" && find validation cmd -name '*.go' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
bin=$cache/bin-$stamp
if [ ! -x "$bin/runtimetest" ]; then
    rm -rf "$gopath/src/github.com/opencontainers/runtime-tools"
    mkdir -p "$gopath/src/github.com/opencontainers" "$bin.tmp"
    cp -a "$src" "$gopath/src/github.com/opencontainers/runtime-tools"
    rm -rf "$gopath/src/github.com/opencontainers/runtime-tools/vendor"
    cd "$gopath/src/github.com/opencontainers/runtime-tools"
    ok=1
    go build -o "$bin.tmp/runtimetest" ./cmd/runtimetest || ok=0
    for d in validation/*/; do
        name=$(basename "$d")
        [ "$name" = util ] && continue
        ls "$d"*.go >/dev/null 2>&1 || continue
        go build -o "$bin.tmp/$name" "./$d" || { echo "# build of $name failed" >&2; ok=0; }
    done
    cd "$repo"
    [ "$ok" = 1 ] || { echo "not ok 1 - runtime-tools: build failed"; echo "runtime-tools: 0 passed, 1 failed"; exit 1; }
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi

# The tests untar rootfs-<arch>.tar.gz and copy runtimetest from their cwd.
work=$(mktemp -d /tmp/carte-rt-XXXXXX)
state=$work/state
trap 'rm -rf "$work"' EXIT
if [ ! -s "$cache/rootfs-amd64.tar.gz" ]; then
    bundle-examples/mkrootfs.sh "$cache/rootfs" >/dev/null
    tar -C "$cache/rootfs" -czf "$cache/rootfs-amd64.tar.gz" .
fi
cp "$cache/rootfs-amd64.tar.gz" "$bin/runtimetest" "$work/"
# A private --root for every runtime call the tests make.
cat > "$work/runtime" <<W
#!/bin/sh
exec "$runtime" --root "$state" "\$@"
W
chmod +x "$work/runtime"

# Deletes every container a test left, then its state root.
cleanup() {
    for dir in "$state"/*/; do
        [ -d "$dir" ] || continue
        "$work/runtime" delete --force "$(basename "$dir")" >/dev/null 2>&1
    done
    rm -rf "$state"
}

passed=0 failed=0 n=0
tests=$(cd "$bin" && ls | grep -v '^runtimetest$' | sort)
echo "1..$(echo "$tests" | wc -w)"
for name in $tests; do
    n=$((n + 1))
    out=$work/$name.out
    (cd "$work" && RUNTIME=$work/runtime timeout -k 5 "$per_test_timeout" "$bin/$name") >"$out" 2>&1
    rc=$?
    cleanup
    if [ "$rc" = 0 ] && grep -q '^ok ' "$out" && ! grep -q '^not ok' "$out"; then
        passed=$((passed + 1))
        echo "ok $n - $name"
    else
        failed=$((failed + 1))
        why=""
        [ "$rc" = 124 ] && why=" (timed out after ${per_test_timeout}s)"
        echo "not ok $n - $name$why"
        grep -E '^not ok|^#|rror' "$out" | head -5 | sed 's/^/#   /'
    fi
done
echo "runtime-tools: $passed passed, $failed failed"
[ "$failed" = 0 ]
