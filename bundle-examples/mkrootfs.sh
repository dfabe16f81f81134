#!/usr/bin/env bash
# mkrootfs.sh DIR: a busybox rootfs from Debian's busybox-static, with every
# applet linked, and /etc/passwd and /etc/group holding root and `user`
# (1000:1000). Idempotent; installs busybox-static when it is missing.
set -euo pipefail
dir=${1:?usage: mkrootfs.sh DIR}
if [ ! -x /bin/busybox ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
mkdir -p "$dir"/{bin,proc,sys,dev,tmp,etc,root,home/user,var,run}
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sfn busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
tty:x:5:
users:x:100:user
user:x:1000:
nogroup:x:65534:
G
echo carte > "$dir/etc/hostname"
chown 1000:1000 "$dir/home/user"
