#!/usr/bin/env bash
# build-image.sh: the systemd VM's base image, built once per machine and
# cached outside the repo. Prints the cache directory, which holds
#   base.qcow2   Debian bookworm with systemd as init (ext4, no partitions)
#   vmlinuz      the image's own kernel (/boot/vmlinuz-*)
#   initrd.img   its initramfs: just virtio_pci, virtio_blk and ext4
# How: mmdebstrap installs PACKAGES below from the host's apt sources into a
# directory (in a private mount namespace, so its /proc, /sys and /dev
# binds die with it); hooks mask what slows boot and install
# carte-tests.service; `mkfs.ext4 -d` turns the directory into a filesystem
# image with no loop mount, and qemu-img makes it a qcow2. The directory is
# keyed by a hash of the package list and this script: change either and the
# next run builds afresh (old keys can be removed by hand). It is built in a
# temporary directory beside it and renamed into place, under a flock, so
# concurrent runs build once and an interrupted build leaves nothing used.
# Each run boots a throwaway qcow2 overlay over base.qcow2, never base itself.
set -euo pipefail
cache_root=${CARTE_VM_CACHE:-/var/cache/carte-vm}
PACKAGES=(
    systemd systemd-sysv dbus udev kmod
    linux-image-amd64 initramfs-tools
    podman conmon catatonit golang-github-containers-common
    containerd runc crun uidmap criu
    containernetworking-plugins slirp4netns
    busybox-static iproute2 procps util-linux bsdutils psmisc
)

# Before the kernel is installed: an initramfs of only what a virtio disk
# with ext4 needs (MODULES=most is ten times larger, slow to unpack in TCG).
essential_hook='
mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"
echo MODULES=list > "$1/etc/initramfs-tools/conf.d/carte-vm.conf"
cat > "$1/etc/initramfs-tools/hooks/carte-vm" <<"H"
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_pci virtio_blk ext4 crc32c_generic
printf "%s\n" virtio_pci virtio_blk ext4 >> "$DESTDIR/conf/modules"
H
chmod +x "$1/etc/initramfs-tools/hooks/carte-vm"
'

customize_hook='
set -e
echo carte-vm > "$1/etc/hostname"
echo 0a5e1c0ffee0c0ffee0c0ffee0c0ffee > "$1/etc/machine-id"
: > "$1/etc/fstab"
mkdir -p "$1/etc/systemd/journald.conf.d" "$1/carte-tests"
printf "[Journal]\nStorage=volatile\n" > "$1/etc/systemd/journald.conf.d/carte-vm.conf"
# Units that slow the boot or have nothing to do in a test VM. containerd
# is started by its suite with a private config.
systemctl --root="$1" mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer logrotate.timer man-db.timer \
    getty@tty1.service serial-getty@ttyS0.service console-getty.service \
    systemd-timesyncd.service containerd.service podman-auto-update.timer podman-restart.service \
    podman-clean-transient.service systemd-networkd-wait-online.service remote-fs.target \
    systemd-pstore.service systemd-journal-catalog-update.service podman.service podman.socket \
    modprobe@drm.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
    sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
    sys-fs-fuse-connections.mount systemd-journal-flush.service systemd-logind.service \
    systemd-user-sessions.service systemd-update-utmp.service \
    systemd-ask-password-console.path systemd-ask-password-wall.path >/dev/null 2>&1
cat > "$1/etc/systemd/system/carte-tests.service" <<"U"
[Unit]
Description=carte test suites from the second disk
After=multi-user.target
ConditionPathExists=/dev/vdb

[Service]
Type=oneshot
ExecStart=/bin/sh -c "mount /dev/vdb /carte-tests && exec /carte-tests/runner.sh"
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no
TimeoutStartSec=40min
# The overlay is thrown away: no need to stop or unmount anything.
ExecStopPost=/bin/sync
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate

[Install]
WantedBy=multi-user.target
U
systemctl --root="$1" enable carte-tests.service >/dev/null 2>&1
cp "$1"/boot/vmlinuz-* "$2/vmlinuz"
cp "$1"/boot/initrd.img-* "$2/initrd.img"
rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*
'

MMDEBSTRAP_OPTS=(--mode=root --variant=apt
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*')
# The key: all that goes into the image (not this script's comments, nor
# how the result is reported), so a cosmetic edit costs no rebuild.
key=$({ printf '%s\n' bookworm "${PACKAGES[@]}" "${MMDEBSTRAP_OPTS[@]}"; echo "$essential_hook$customize_hook";
    sed -n '/^# >>> image/,/^# <<< image/p' "$0"; } | sha256sum | cut -c1-16)
dir=$cache_root/systemd-bookworm-$key
if [ -f "$dir/base.qcow2" ]; then echo "$dir"; exit 0; fi

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
if [ -f "$dir/base.qcow2" ]; then echo "$dir"; exit 0; fi
tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "systemd vm: building the base image in $dir (once per machine)" >&2
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && sources+=("$f")
done
root=$tmp/root
include=$(IFS=,; echo "${PACKAGES[*]}")
started=$(date +%s)
# >>> image
unshare --mount --propagation private mmdebstrap --quiet "${MMDEBSTRAP_OPTS[@]}" --include="$include" \
    --essential-hook="$essential_hook" \
    --customize-hook="sh -c '$customize_hook' -- \"\$1\" $tmp" \
    bookworm "$root" "${sources[@]}" >&2
size=$(( $(du -sm "$root" | cut -f1) + 1536 ))
mkfs.ext4 -q -L carte-vm -d "$root" "$tmp/base.raw" "${size}M" >/dev/null
qemu-img convert -O qcow2 "$tmp/base.raw" "$tmp/base.qcow2"
# <<< image
rm -rf "$root" "$tmp/base.raw"
chmod 755 "$tmp"
mv "$tmp" "$dir"
trap - EXIT
echo "systemd vm: built $dir ($(du -sh "$dir" | cut -f1)) in $(( $(date +%s) - started )) s" >&2
echo "$dir"
