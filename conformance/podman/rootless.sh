#!/usr/bin/env bash
# Rootless podman (through conmon) driving carte, as a real user: run as
# root, it makes the user carte-rl with /etc/subuid and /etc/subgid ranges,
# runs podman as that user (vfs storage, the cgroupfs manager, no systemd,
# no network, runtime = carte) and removes the user and everything else on
# exit. carte runs as root of podman's user namespace there, so
# `--rootless auto` makes it rootless: no cgroup (this v1 host's are root's),
# state under $XDG_RUNTIME_DIR/carte. Prints `ok`/`not ok` lines and
# `N passed, M failed`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CARTE=${CARTE:-$repo/target/x86_64-unknown-linux-gnu/release/carte}
[ -x "$CARTE" ] || { echo "podman rootless suite: no carte binary at $CARTE" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "podman rootless suite: run as root (it makes the test user)" >&2; exit 1; }
if ! command -v podman >/dev/null || ! command -v conmon >/dev/null || ! command -v newuidmap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman conmon uidmap >/dev/null
fi
user=carte-rl
userdel -r -f "$user" >/dev/null 2>&1
useradd -M -s /bin/sh "$user" || exit 1
usermod --del-subuids 1-4294967294 --del-subgids 1-4294967294 "$user"
usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$user" || exit 1
uid=$(id -u "$user")

work=$(mktemp -d /tmp/carte-podman-rl.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/xdg" "$work/home"
chmod 700 "$work/xdg"
cat > "$work/containers.conf" <<EOC
[containers]
netns = "none"
default_ulimits = []
[engine]
runtime_supports_json = ["carte", "crun", "runc"]
events_logger = "file"
cgroup_manager = "cgroupfs"
[engine.runtimes]
carte = ["$CARTE"]
EOC
cat > "$work/storage.conf" <<EOC
[storage]
driver = "vfs"
graphroot = "$work/root"
runroot = "$work/runroot"
EOC
"$repo/bundle-examples/mkrootfs.sh" "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
chown -R "$user:" "$work"

# podman as the user; cd into the work dir, which the user can reach.
as_user() {
    (cd "$work" && setpriv --reuid="$user" --regid="$user" --init-groups \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work/home" USER="$user" \
        XDG_RUNTIME_DIR="$work/xdg" CONTAINERS_CONF="$work/containers.conf" \
        CONTAINERS_STORAGE_CONF="$work/storage.conf" "$@")
}
p() { as_user timeout 60 podman --runtime carte "$@"; }

cleanup() {
    p rm -af -t 0 >/dev/null 2>&1
    as_user podman system reset -f >/dev/null 2>&1
    # podman's pause process and conmons are the user's: by pid, never by name.
    for pid in $(ps -o pid= -u "$uid" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    sleep 0.2
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    userdel -r -f "$user" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

image=localhost/busybox:carte
out=$(p import "$work/rootfs.tar" "$image" 2>&1) || { echo "image import failed: $out" >&2; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
run() { p run --rm "$@" 2>&1; }
pty() { as_user env TERM=xterm timeout 60 script -qec "podman --runtime carte $1" /dev/null 2>&1; }

out=$(run "$image" echo hello); expect "run echo" "hello" "$out"
run "$image" sh -c 'exit 3' >/dev/null; expect "exit code" "3" "$?"
out=$(run "$image" sh -c 'echo $(id -u) $(cat /proc/self/uid_map | head -1)')
expect "root inside is the user outside" "0 0 $uid 1" "$(echo $out | tr -s ' ')"
out=$(run --user 1000:1000 "$image" sh -c 'echo $(id -u):$(id -g)'); expect "--user" "1000:1000" "$out"
out=$(run --userns=keep-id "$image" id -u); expect "--userns=keep-id" "$uid" "$out"
out=$(pty "run --rm -it $image tty"); expect "run -it" "/dev/pts/" "$out"
out=$(run -e FOO=bar -w /tmp "$image" sh -c 'echo $FOO $(pwd)'); expect "-e, -w" "bar /tmp" "$out"
# podman itself drops limits on a rootless v1 host (with a warning): carte
# gets no resources and runs the container.
out=$(run --memory 64m "$image" echo ran); expect "--memory (dropped by podman on v1)" "ran" "$out"

p run -d --name d1 "$image" sh -c 'trap "exit 0" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1
expect "run -d" "running" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
out=$(p exec d1 sh -c 'echo in-exec $(id -u)' 2>&1); expect "exec" "in-exec 0" "$out"
p exec d1 sh -c 'exit 4' >/dev/null 2>&1; expect "exec exit code" "4" "$?"
out=$(p exec -u 1000 d1 id -u 2>&1); expect "exec --user" "1000" "$out"
out=$(pty "exec -it d1 sh -c 'sleep 0.2; tty'"); expect "exec -it" "/dev/pts/" "$out"
out=$(p ps --format '{{.Names}} {{.Status}}' 2>&1); expect "ps" "d1 Up" "$out"
out=$(p top d1 2>&1); expect "top" "while" "$out"
state=$(ls "$work/xdg/carte" 2>&1)
expect "state under \$XDG_RUNTIME_DIR/carte" "$(p inspect -f '{{.Id}}' d1 2>&1)" "$state"
id=$(p inspect -f '{{.Id}}' d1 2>&1)
if [ -e "/run/carte/$id" ]; then not_ok "nothing under /run/carte" "/run/carte/$id exists"; else ok "nothing under /run/carte"; fi
left=$(ls -d /sys/fs/cgroup/*/*"$id"* /sys/fs/cgroup/*/*/*"$id"* 2>/dev/null)
if [ -n "$left" ]; then not_ok "no cgroup made" "$left"; else ok "no cgroup made"; fi
p stop -t 5 d1 >/dev/null 2>&1; expect "stop" "exited" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p start d1 >/dev/null 2>&1; expect "start again" "running" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p kill d1 >/dev/null 2>&1; p wait d1 >/dev/null 2>&1
expect "kill" "exited" "$(p inspect -f '{{.State.Status}}' d1 2>&1)"
p rm d1 >/dev/null 2>&1; expect "rm" "no such object" "$(p inspect d1 2>&1)"
p run -d --name d2 "$image" sleep 60 >/dev/null 2>&1
p rm -f -t 0 d2 >/dev/null 2>&1; expect "rm -f of a running container" "no such object" "$(p inspect d2 2>&1)"
left=$(ls "$work/xdg/carte" 2>/dev/null)
if [ -n "$left" ]; then not_ok "state removed" "$left"; else ok "state removed"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
