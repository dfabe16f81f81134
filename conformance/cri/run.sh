#!/usr/bin/env bash
# Kubernetes' way to carte: containerd's CRI plugin with a `carte` runtime
# handler (the runc shim, BinaryName = carte), driven over the CRI socket by
# a client that speaks runtime.v1 as the kubelet does (client/, built once
# into target/cri-client). A private containerd (own config, root, state,
# socket), a pause and a busybox image imported from OCI archives, CNI
# bridge networking on a bridge and subnet of its own. Prints `ok - ` lines
# and `N passed, M failed` last; exits non-zero on a failure. Stops only the
# daemon and shims it started, by PID, and removes everything it made.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CARTE=${CARTE:-$repo/target/x86_64-unknown-linux-gnu/debug/carte}
[ -x "$CARTE" ] || { echo "cri suite: no carte binary at $CARTE" >&2; exit 1; }
CARTE=$(cd "$(dirname "$CARTE")" && pwd)/$(basename "$CARTE")
[ "$(id -u)" = 0 ] || { echo "cri suite: needs root" >&2; exit 1; }

need=()
command -v containerd >/dev/null || need+=(containerd)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# k8s-cri generates its gRPC code from the CRI .proto files at build time.
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The client: built once (a workspace of its own, so tokio and tonic stay
# out of carte's dependency tree); later runs only check it is up to date.
client_target=$repo/target/cri-client
(cd "$here/client" && cargo build -q --target-dir "$client_target") || { echo "cri suite: client build failed" >&2; exit 1; }
client=$(ls -t "$client_target"/*/debug/carte-cri-client "$client_target"/debug/carte-cri-client 2>/dev/null | head -1)
[ -x "$client" ] || { echo "cri suite: no client binary under $client_target" >&2; exit 1; }

start=$(date +%s)
work=$(mktemp -d /tmp/carte-cri-$$.XXXXXX)
sock=$work/containerd.sock
bridge=cri-br$$
net=10.250.$(( $$ % 200 + 20 ))
cgroup_parent=/cri-$$
daemon=
cni_cache=/var/lib/cni
cni_cache_made=0
[ -d "$cni_cache" ] || cni_cache_made=1

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }

# The PIDs with our socket as a whole argument: the runc shims (-address
# SOCK). The pattern's last letter in brackets keeps grep from finding itself.
shims() {
    grep -lzx -- "${sock%?}[${sock: -1}]" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
}

cleanup() {
    set +e
    # Pods first, through the CRI, so that the shims go away on their own.
    [ -n "$daemon" ] && [ -S "$sock" ] && timeout 60 "$client" cleanup "socket=$sock" >/dev/null 2>&1
    if [ -n "$daemon" ]; then
        kill "$daemon" 2>/dev/null
        wait "$daemon" 2>/dev/null
    fi
    # What the CRI could not remove: shims, then processes in our cgroups.
    for pid in $(shims); do kill -9 "$pid" 2>/dev/null; done
    for procs in $(find /sys/fs/cgroup/*"$cgroup_parent" -name cgroup.procs 2>/dev/null); do
        for pid in $(cat "$procs"); do kill -9 "$pid" 2>/dev/null; done
    done
    # Two things containerd 1.6 keeps outside its root and state, removed
    # as it would on a clean StopPodSandbox: the shim sockets
    # (/run/containerd/s/sha256(address/ns/id)) and libcni's result cache.
    for dir in "$work"/state/io.containerd.runtime.v2.task/k8s.io/*/; do
        [ -d "$dir" ] || continue
        id=$(basename "$dir")
        rm -f "/run/containerd/s/$(printf %s "$sock/k8s.io/$id" | sha256sum | cut -d' ' -f1)" \
            "$cni_cache/results/cni-loopback-$id-lo" "$cni_cache/results/cri-carte-$$-$id-eth0"
    done
    [ "$cni_cache_made" = 1 ] && rmdir "$cni_cache/results" "$cni_cache" 2>/dev/null
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    for d in /sys/fs/cgroup/*"$cgroup_parent"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    ip link del "$bridge" 2>/dev/null
    # The bridge plugin adds rules only with ipMasq (off here); remove any
    # that name our subnet or bridge all the same.
    if command -v iptables-save >/dev/null; then
        for table in filter nat; do
            iptables-save -t "$table" 2>/dev/null | grep -E -- "^-A .*($net\.|$bridge)" | sed 's/^-A //' |
                while read -r rule; do eval "iptables -t $table -D $rule" 2>/dev/null; done
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# CNI: a bridge of our own with host-local addresses on a private subnet;
# containerd adds the loopback plugin by itself.
mkdir -p "$work/cni" "$work/logs"
cat > "$work/cni/10-cri-carte.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "cri-carte-$$",
  "plugins": [{
    "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$net.0/24"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$work/cni-ipam"}
  }]
}
EOF

# containerd with its CRI plugin on and a `carte` runtime handler. The
# runc shim calls BinaryName for every OCI verb, with --root Root/<ns>.
cat > "$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:cri"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_tcp_service = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  # This host lacks CAP_SYS_RESOURCE: no runtime can lower oom_score_adj
  # below containerd's own (the sandbox asks -998), so containerd clamps it.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    # Pods without a runtimeClassName stay on runc, as on a real node.
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.carte]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.carte.options]
        BinaryName = "$CARTE"
        Root = "$work/carte"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni"
    max_conf_num = 1
EOF
containerd --config "$work/config.toml" > "$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "cri suite: containerd did not start:" >&2; tail -5 "$work/daemon.log" >&2; exit 1; }
ctr() { command ctr --address "$sock" -n k8s.io "$@"; }

# The images, into containerd's k8s.io namespace, where the CRI looks.
mkdir -p "$work/pause"
gcc -static -O2 -o "$work/pause/pause" "$here/pause.c" || exit 1
"$repo/conformance/containerd/make-image.py" "$work/pause" "$work/pause.tar" localhost/pause:cri /pause
"$repo/bundle-examples/mkrootfs.sh" "$work/rootfs" >/dev/null
"$repo/conformance/containerd/make-image.py" "$work/rootfs" "$work/busybox.tar" localhost/busybox:cri
for img in pause busybox; do
    ctr images import --base-name "localhost/$img" "$work/$img.tar" >/dev/null || { echo "cri suite: $img import failed" >&2; exit 1; }
done

# What containerd 2 reads from `carte features` (containerd 1.6 reads none
# of it): the OCI version range, rro among mountOptions for recursive
# read-only mounts, and linux.mountExtensions.idmap for user namespaces.
features=$("$CARTE" features 2>&1)
short=$(echo "$features" | tr -d '\n ' | head -c 300)
check_features() {
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if ($1) else 1)" "$features" 2>/dev/null
}
check_features 'd["ociVersionMin"] and d["ociVersionMax"]' && ok "features: ociVersionMin and ociVersionMax" ||
    not_ok "features: ociVersionMin and ociVersionMax" "$short"
check_features '"user" in d["linux"]["namespaces"] and {"cgroup","ipc","mount","network","pid","uts"} <= set(d["linux"]["namespaces"])' &&
    ok "features: linux.namespaces lists user and the other six" || not_ok "features: linux.namespaces" "$short"
check_features 'isinstance(d["linux"]["mountExtensions"]["idmap"]["enabled"], bool)' &&
    ok "features: linux.mountExtensions.idmap.enabled present" || not_ok "features: linux.mountExtensions" "$short"
check_features '"rro" in d["mountOptions"]' && ok "features: mountOptions lists rro" ||
    not_ok "features: mountOptions lists rro" "$short"

# The scenarios, through the CRI socket.
# --foreground: the client stays in our process group, so that ^C ends it.
out=$(timeout --foreground 300 "$client" run "socket=$sock" "carte=$CARTE" "carte-root=$work/carte/k8s.io" \
    "logs=$work/logs" "cgroup-parent=$cgroup_parent" "bridge=$bridge" \
    "image=localhost/busybox:cri" 2>&1)
rc=$?
echo "$out"
# Interrupted (^C, TERM): no summary, straight to the cleanup.
case $rc in 130 | 143) exit "$rc" ;; esac
passed=$((passed + $(echo "$out" | grep -c '^ok - ')))
failed=$((failed + $(echo "$out" | grep -c '^not ok - ')))
[ "$rc" = 0 ] || [ "$(echo "$out" | grep -c '^not ok - ')" != 0 ] || not_ok "client" "exited $rc"

# No shim of ours outlives its pods.
for _ in $(seq 100); do [ -z "$(shims)" ] && break; sleep 0.1; done
left=$(for pid in $(shims); do echo "$pid: $(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline")"; done)
[ -z "$left" ] && ok "no shim left after the pods are removed" || not_ok "no shim left" "$left"
if [ "$failed" != 0 ]; then
    echo "# containerd's errors:"
    grep -E 'level=error|failed to load plugin io.containerd.grpc.v1.cri' "$work/daemon.log" | tail -8 | sed 's/^/#   /'
fi
echo "# $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
