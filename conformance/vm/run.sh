#!/usr/bin/env bash
# run.sh systemd: a Debian VM with systemd as PID 1 on cgroup v2, with
# podman and containerd; see systemd/run.sh, which says how to add a suite
# (a file systemd/suites/NN-name.sh printing `ok -` / `not ok -` lines) and
# how the image is built and cached (systemd/build-image.sh).
# run.sh v2|v1: the cgroup suite on a pure v2 or a pure v1 host. Boots
# Debian's kernel under qemu (TCG) with an initramfs of busybox, a static
# carte and the test bundles; /init mounts only that cgroup version, runs
# tests-<mode>.sh and this prints its `N passed, M failed`.
# Installs qemu, cpio and busybox-static when missing; caches the kernel in
# target/vm. Leaves nothing on the host but that cache.
set -euo pipefail
mode=${1:-v2}
case "$mode" in
v2) cmdline="cgroup_no_v1=all carte.cgroups=v2" ;;
v1) cmdline="carte.cgroups=v1" ;;
systemd) exec "$(dirname "$0")/systemd/run.sh" ;;
*) echo "usage: run.sh v2|v1|systemd" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=$repo/target/vm

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian's current kernel package, unpacked once.
mkdir -p "$cache"
if ! ls "$cache"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    (cd "$cache" && rm -f linux-image-*.deb && apt-get download -qq "$pkg" 2>/dev/null)
    dpkg -x "$cache"/linux-image-*.deb "$cache/kernel"
    rm -f "$cache"/linux-image-*.deb
fi
kernel=$(ls "$cache"/kernel/boot/vmlinuz-* | head -1)

# A static carte: the initramfs has no libc.
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q \
    -p carte -p carte-checker --target x86_64-unknown-linux-gnu --target-dir target/static)
carte=$repo/target/static/x86_64-unknown-linux-gnu/debug/carte
checker=$repo/target/static/x86_64-unknown-linux-gnu/debug/carte-checker

work=$(mktemp -d /tmp/carte-vm.XXXXXX)
trap '[ -n "${V2VM_KEEP:-}" ] || rm -rf "$work"' EXIT
img=$work/img
mkdir -p "$img"/{bin,proc,sys,dev,newroot,etc}
cp /bin/busybox "$img/bin/busybox"
cp "$carte" "$img/carte"
cp "$here/init" "$img/init"
cp "$here/lib.sh" "$here/tests-v1.sh" "$here/tests-v2.sh" "$img/"
chmod +x "$img/init"
"$repo/bundle-examples/mkrootfs.sh" "$img/rootfs" >/dev/null
cp "$checker" "$img/rootfs/carte-checker"
"$carte" spec --bundle "$work"
python3 "$here/bundles.py" "$work/config.json" "$img/bundles"
(cd "$img" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

log=$work/console.log
timeout 900 qemu-system-x86_64 -m 1024 -smp 2 -accel tcg,thread=multi -nographic -no-reboot \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 $cmdline" </dev/null >"$log" 2>&1 || true
tr -d '\r' <"$log" | sed -n '/=== vm begin/,/=== vm end/p' | sed 's/^.*=== vm/=== vm/'
result=$(tr -d '\r' <"$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
if [ -z "$result" ]; then
    echo "vm $mode: the VM printed no result; its console:" >&2
    tail -40 "$log" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
case "$result" in *" 0 failed") exit 0 ;; *) exit 1 ;; esac
