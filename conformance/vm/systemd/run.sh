#!/usr/bin/env bash
# systemd/run.sh (as `conformance/vm/run.sh systemd`): carte's suites on a
# Debian bookworm VM with systemd as PID 1 and cgroup v2 only. Boots the
# cached base image (build-image.sh) under qemu TCG with a throwaway overlay
# and a second disk, made here with `mkfs.ext4 -d` (no mount on the host),
# holding a static carte and carte-checker, the busybox rootfs and bundles,
# the image archives for podman and ctr, runner.sh and the suites.
# carte-tests.service in the image mounts that disk, runs runner.sh, which
# prints to the serial console, and powers off. This prints the suites'
# lines, the boot and suite times, and `N passed, M failed`; it exits 0 only
# when the VM printed a result and nothing failed.
#
# Suites: every systemd/suites/NN-name.sh runs in NN order in one boot, as
# root, with bash. To add one, drop a file there: it prints `ok - WHAT` and
# `not ok - WHAT: WHY` lines (anything else is shown but not counted), cleans
# up all it made (99-leaks.sh runs last and checks), and may source
# $T/suites/lib.sh for ok/not_ok/expect and $CARTE (the carte binary), $T
# (the test disk, writable) and $IMAGES. A suite that prints no `ok`, or
# outlives SUITE_TIMEOUT (default 600 s), counts as one failure.
# VM_SUITES="cgroupfs podman" runs only the suites whose names hold those
# words (99-leaks.sh always runs). VM_KEEP=1 keeps the work dir (console.log).
# VM_PROFILE=release puts a release carte on the test disk (40-systemd-driver
# times `run` beside runc and crun).
# VM_TMP=DIR makes the work dir there instead of /tmp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vm=$(dirname "$here")
repo=$(cd "$vm/../.." && pwd)

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v python3 >/dev/null || need+=(python3)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# VM_IMAGE=DIR boots another cache directory (one build-image.sh made).
image=${VM_IMAGE:-$("$here/build-image.sh")}

# VM_PROFILE=release: carte built as it ships (for timings); debug else.
profile=${VM_PROFILE:-debug}
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q \
    $([ "$profile" = release ] && echo --release) \
    -p carte -p carte-checker --target x86_64-unknown-linux-gnu --target-dir target/static)
bin=$repo/target/static/x86_64-unknown-linux-gnu/$profile

work=$(mktemp -d "${VM_TMP:-/tmp}/carte-vmsd.XXXXXX")
trap '[ -n "${VM_KEEP:-}" ] || rm -rf "$work"' EXIT
t=$work/tests
mkdir -p "$t/suites" "$t/images"
cp "$bin/carte" "$bin/carte-checker" "$t/"
cp "$vm/lib.sh" "$vm/tests-v2.sh" "$here/runner.sh" "$t/"
cp "$here/suites/lib.sh" "$t/suites/"
for s in "$here"/suites/[0-9]*.sh; do
    name=$(basename "$s" .sh)
    keep=${VM_SUITES:+no}
    for w in ${VM_SUITES:-}; do case "$name" in *"$w"*) keep=yes ;; esac; done
    case "$name" in *-leaks) keep=yes ;; esac
    [ "$keep" = no ] || cp "$s" "$t/suites/"
done
"$repo/bundle-examples/mkrootfs.sh" "$t/rootfs" >/dev/null
tar -C "$t/rootfs" -cf "$t/images/busybox-rootfs.tar" .
"$repo/conformance/containerd/make-image.py" "$t/rootfs" "$t/images/busybox-oci.tar" localhost/busybox:carte
cp "$bin/carte-checker" "$t/rootfs/carte-checker"
"$bin/carte" spec --bundle "$work"
python3 "$vm/bundles.py" "$work/config.json" "$t/bundles"
printf 'SUITE_TIMEOUT=%s\nVM_DEBUG=%s\n' "${SUITE_TIMEOUT:-600}" "${VM_DEBUG:-}" > "$t/env"
mkfs.ext4 -q -L carte-tests -d "$t" "$work/tests.img" "$(( $(du -sm "$t" | cut -f1) + 256 ))M" >/dev/null
qemu-img create -q -f qcow2 -b "$image/base.qcow2" -F qcow2 "$work/root.qcow2"

log=$work/console.log
echo "systemd vm: booting $image (suites: $(cd "$t/suites" && ls [0-9]*.sh | tr '\n' ' '))"
t0=$EPOCHREALTIME
# The VM powers itself off after the result; should it hang there, it is
# stopped 30 s after its last line.
timeout 1200 qemu-system-x86_64 -m 2048 -smp 2 -accel tcg,thread=multi -nographic -no-reboot \
    -pidfile "$work/qemu.pid" -nic none -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -drive file="$work/root.qcow2",if=virtio,format=qcow2 \
    -drive file="$work/tests.img",if=virtio,format=raw \
    -append "root=/dev/vda rw rootfstype=ext4 console=ttyS0 quiet loglevel=3 panic=-1 fsck.mode=skip \
systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all systemd.show_status=0" \
    </dev/null 2>&1 | while IFS= read -r line; do
        printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"
        case "$line" in "=== vm end"*) (sleep 30; kill "$(cat "$work/qemu.pid")") 2>/dev/null & ;; esac
    done >"$log" || true
t1=$EPOCHREALTIME

# The VM's own total is printed once, below (the host's runner adds up
# every `N passed, M failed` line it sees).
sed -n '/=== vm begin/,/=== vm end/p' "$log" | cut -d' ' -f2- | sed 's/^.*=== vm begin/=== vm begin/' |
    grep -Ev '^[0-9]+ passed, [0-9]+ failed$'
began=$(awk '/=== vm begin/ {print $1; exit}' "$log")
result_line=$(grep -E '^[0-9.]+ [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
if [ -n "$began" ]; then
    echo "systemd vm: boot $(secs "$t0" "$began") s (qemu start to the suites' start)"
fi
if [ -z "$result_line" ]; then
    echo "systemd vm: the VM printed no result ($(secs "$t0" "$t1") s); its console:" >&2
    tail -40 "$log" | cut -d' ' -f2- >&2
    echo "0 passed, 1 failed"
    exit 1
fi
echo "systemd vm: suites $(secs "$began" "${result_line%% *}") s, total $(secs "$t0" "$t1") s"
result=${result_line#* }
echo "$result"
case "$result" in *" 0 failed") exit 0 ;; *) exit 1 ;; esac
