#!/usr/bin/env bash
# run.sh [RUNTIME [TEST...]]: the opencontainers runtime-tools validation
# suite (validation/*/*.go, each a TAP program driving RUNTIME from outside
# and cmd/runtimetest inside) against carte, or RUNTIME (runc, crun ...);
# every test, or the TESTs named.
#
# Debian's golang-github-opencontainers-runtime-tools-dev ships only the
# library packages (generate, specerror, validate...), not validation/,
# cmd/runtimetest nor the rootfs tarball, and mndrix/tap-go is not packaged.
# Give a runtime-tools source tree (matching Debian's library snapshot,
# 0.9.0+git20220423) as RUNTIME_TOOLS_SRC and, if tap-go is not in it, a
# GOPATH holding github.com/mndrix/tap-go as RUNTIME_TOOLS_GOPATH. Without
# them the suite is skipped (and says so).
#
# Builds offline in GOPATH mode against /usr/share/gocode, once per source
# tree (cached in target/runtime-tools), makes the rootfs from busybox, gives
# the runtime a private --root through a wrapper, runs each test under a
# timeout, deletes whatever the test left, and prints per-test TAP and
# `N passed, M failed`. Each test's output stays in
# target/runtime-tools/out-<runtime>/<test>.out.
#
# A test passes when it exits 0, prints no `not ok`, and prints no YAML
# block with an "error" outside a test line: hooks, prestart, poststart,
# poststop and the *_fail tests report a broken MUST only that way (a bare
# YAML block after the header), and the *_fail tests print nothing at all
# when the runtime rightly refuses the config.
#
# Tests listed in known-failures.txt (beside this file) fail for every
# runtime here: they need what this host lacks (net_cls, hugetlb in v1,
# blkio leaf weights, kernel memory limits, AppArmor, CAP_SYS_RESOURCE) or
# the test is wrong. They still run and count, but only an unlisted failure
# makes the exit status 1. RUNTIME_TOOLS_STRICT=1 makes every failure count.
#
# crun 1.8 refuses a hybrid cgroup host whose v2 hierarchy has controllers;
# for crun (or with RUNTIME_TOOLS_HIDE_V2=1) the suite runs in its own mount
# namespace where /sys/fs/cgroup/unified/cgroup.controllers is an empty file.
set -uo pipefail
caller=$PWD
cd "$(dirname "$0")/../.."
repo=$PWD
runtime=${1:-${RUNTIME:-$repo/target/x86_64-unknown-linux-gnu/debug/carte}}
[ $# -gt 0 ] && shift
only=("$@")
per_test_timeout=${RUNTIME_TOOLS_TIMEOUT:-90}
cache=$repo/target/runtime-tools
here=$repo/conformance/runtime-tools

case "$runtime" in
/*) ;;
*/*) runtime=$caller/$runtime ;;
*)
    found=$(command -v "$runtime") || {
        echo "runtime-tools: no runtime $runtime" >&2
        exit 1
    }
    runtime=$found
    ;;
esac

# crun on a hybrid host: re-run this script where the v2 controllers are hidden.
controllers=/sys/fs/cgroup/unified/cgroup.controllers
if [ -z "${RUNTIME_TOOLS_IN_NS:-}" ] && [ -n "$(cat "$controllers" 2>/dev/null)" ] &&
    { [ "${RUNTIME_TOOLS_HIDE_V2:-}" = 1 ] || [[ $("$runtime" --version 2>/dev/null) == crun* ]]; }; then
    export RUNTIME_TOOLS_IN_NS=1
    exec unshare -m --propagation slave sh -c \
        'e=$(mktemp) && mount --bind "$e" "$1" && shift && exec "$@"' \
        sh "$controllers" "$here/run.sh" "$runtime" "${only[@]}"
fi

need=()
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/opencontainers/runtime-tools/generate ] ||
    need+=(golang-github-opencontainers-runtime-tools-dev)
[ -d /usr/share/gocode/src/github.com/google/uuid ] || need+=(golang-github-google-uuid-dev)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

src=${RUNTIME_TOOLS_SRC:-}
case "$src" in /* | "") ;; *) src=$caller/$src ;; esac
if [ -z "$src" ]; then
    for d in "$cache/src" /usr/share/gocode/src/github.com/opencontainers/runtime-tools; do
        [ -d "$d/validation" ] && [ -d "$d/cmd/runtimetest" ] && {
            src=$d
            break
        }
    done
fi
if [ -z "$src" ] || [ ! -d "$src/validation" ]; then
    echo "1..0 # SKIP runtime-tools: no validation sources (Debian ships only the library; set RUNTIME_TOOLS_SRC)"
    echo "runtime-tools: 0 passed, 0 failed"
    exit 0
fi
src=$(cd "$src" && pwd)

# Build once per source tree: GOPATH mode, no network. The tree is copied
# into its import path; Debian's library fills in what it does not hold.
export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE=$cache/gocache
gopath=$cache/gopath
export GOPATH=$gopath${RUNTIME_TOOLS_GOPATH:+:$RUNTIME_TOOLS_GOPATH}:/usr/share/gocode
stamp=$( (
    cd "$src" && find validation cmd -name '*.go' -print0 | sort -z | xargs -0 cat
    [ -n "${RUNTIME_TOOLS_GOPATH:-}" ] && find "$RUNTIME_TOOLS_GOPATH" -name '*.go' -print0 | sort -z | xargs -0 cat
) | sha256sum | cut -c1-16)
bin=$cache/bin-$stamp
if [ ! -x "$bin/runtimetest" ]; then
    rm -rf "$gopath/src/github.com/opencontainers/runtime-tools" "$bin.tmp"
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
        go build -o "$bin.tmp/$name" "./$d" || {
            echo "# build of $name failed" >&2
            ok=0
        }
    done
    cd "$repo"
    [ "$ok" = 1 ] || {
        echo "not ok 1 - runtime-tools: build failed"
        echo "runtime-tools: 0 passed, 1 failed"
        exit 1
    }
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi

# The tests untar rootfs-<arch>.tar.gz and copy runtimetest from their cwd;
# their bundles go to $TMPDIR, here under $work.
work=$(mktemp -d /tmp/carte-rt-XXXXXX)
state=$work/state
# Like /tmp: a container's root in a user namespace must reach its bundle.
chmod 0711 "$work"
mkdir -p -m 1777 "$work/tmp"
# A runtime that mounts in its own mount namespace (a config without one)
# may leave mounts in a bundle, some of them binds of host directories:
# detach them, deepest first, before anything under $work is removed.
mounts_under() { awk -v dir="$1/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo; }
unmount_under() {
    mounts_under "$1" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    # A bind of a host directory is on the same file system: never let rm
    # walk into one that is still there.
    if [ -n "$(mounts_under "$1")" ]; then
        echo "# mounts left under $1, not removed:" >&2
        mounts_under "$1" | sed 's/^/#   /' >&2
        return 1
    fi
}
remove_work() {
    unmount_under "$work" && rm -rf --one-file-system "$work"
}
trap remove_work EXIT
if [ ! -s "$cache/rootfs-amd64.tar.gz" ]; then
    bundle-examples/mkrootfs.sh "$cache/rootfs" >/dev/null
    tar -C "$cache/rootfs" -czf "$cache/rootfs-amd64.tar.gz" .
fi
cp "$cache/rootfs-amd64.tar.gz" "$bin/runtimetest" "$work/"
# A private --root for every runtime call the tests make.
cat >"$work/runtime" <<W
#!/bin/sh
exec "$runtime" --root "$state" "\$@"
W
chmod +x "$work/runtime"
out_dir=$cache/out-$(basename "$runtime")
mkdir -p "$out_dir"

# Deletes every container a test left, its state root and its bundles.
cleanup() {
    for dir in "$state"/*/; do
        [ -d "$dir" ] || continue
        "$work/runtime" delete --force "$(basename "$dir")" >/dev/null 2>&1
    done
    unmount_under "$work/tmp" && rm -rf --one-file-system "$state" "$work/tmp"
    mkdir -p -m 1777 "$work/tmp"
}

# judge OUT RC: empty when the test passed, else why it failed.
judge() {
    local out=$1 rc=$2
    [ "$rc" = 124 ] && {
        echo "timed out after ${per_test_timeout}s"
        return
    }
    [ "$rc" = 0 ] || {
        echo "exit status $rc"
        return
    }
    grep -q '^not ok' "$out" && {
        echo "not ok lines"
        return
    }
    # A YAML block (tap-go writes JSON, one key a line) holding "error" and
    # not following a test line reports a failure.
    awk '/^(not )?ok / { attached = 1; next }
         /^  ---/ { yaml = 1; next }
         /^  \.\.\./ { yaml = 0; attached = 0; next }
         yaml && !attached && /^    "error":/ { bad = 1 }
         END { exit !bad }' "$out" && echo "error reported outside a test line"
}

# known NAME: why NAME is expected to fail ("host: ..." or "suite: ..."), if it is.
known() { sed -n "s/^$1[[:space:]]*#[[:space:]]*//p" "$here/known-failures.txt" 2>/dev/null; }

passed=0 failed=0 unexpected=0 n=0
if [ ${#only[@]} -gt 0 ]; then
    tests=${only[*]}
else
    tests=$(cd "$bin" && ls | grep -v '^runtimetest$' | sort)
fi
echo "1..$(echo "$tests" | wc -w)"
for name in $tests; do
    n=$((n + 1))
    out=$out_dir/$name.out
    if [ ! -x "$bin/$name" ]; then
        echo "no such test" >"$out"
        rc=127
    else
        (cd "$work" && TMPDIR=$work/tmp RUNTIME=$work/runtime timeout -k 5 "$per_test_timeout" "$bin/$name") >"$out" 2>&1
        rc=$?
    fi
    cleanup
    why=$(judge "$out" "$rc")
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "ok $n - $name"
        continue
    fi
    failed=$((failed + 1))
    note=""
    expected=$(known "$name")
    if [ -n "$expected" ] && [ "${RUNTIME_TOOLS_STRICT:-}" != 1 ]; then
        note=" # TODO known: $expected"
    else
        unexpected=$((unexpected + 1))
    fi
    echo "not ok $n - $name: $why$note"
    grep -E '^not ok|"error"|rror' "$out" | head -5 | cut -c1-300 | sed 's/^/#   /'
done
echo "# output of each test: $out_dir"
[ "$unexpected" = "$failed" ] || echo "# $((failed - unexpected)) of the failures are known ones (known-failures.txt), $unexpected not"
echo "runtime-tools: $passed passed, $failed failed"
[ "$unexpected" = 0 ]
