#!/bin/bash
# Runs last: nothing the suites ran is left on the VM. No carte or libpod
# unit, no cgroup outside systemd's own units, no mount of a container or
# of podman's and containerd's storage, no process of the tests, no carte
# state.
. "$T/suites/lib.sh"
# Loaded units only (containerd.service is masked); the test disk's own
# units hold "carte" too.
units=$(systemctl list-units --all --no-legend --plain | awk '$2 == "loaded" {print $1}' \
    | grep -Ei 'carte|libpod|vmsd|containerd' | grep -Evx 'carte-tests.service|carte\\x2dtests.mount|dev-disk-by.*|rootfs.mount|bundles.mount')
expect_eq "no carte, libpod or containerd unit left" "" "$(echo $units)"
failed_units=$(systemctl list-units --failed --no-legend --plain | awk '{print $1}')
expect_eq "no failed unit" "" "$failed_units"
# systemd's units are *.slice, *.scope, *.service, *.mount ...; a cgroup
# of another name was made by a runtime.
# (udevd's own sub-cgroup aside.)
cgs=$(find /sys/fs/cgroup -mindepth 1 -type d ! -name '*.slice' ! -name '*.scope' \
    ! -name '*.service' ! -name '*.mount' ! -name '*.socket' ! -name '*.swap' \
    ! -path '*/systemd-udevd.service/udev' 2>/dev/null)
expect_eq "no cgroup left outside systemd's units" "" "$cgs"
mounts=$(cut -d' ' -f5 /proc/self/mountinfo | grep -E 'overlay|/containers/|containerd|/run/carte|netns|vmsd|^(/carte-tests)?/rootfs/')
expect_eq "no container or storage mount left" "" "$mounts"
procs=$(ps -eo pid=,comm= | awk '$2 ~ /^(carte|conmon|containerd|containerd-shim|containerd-shim-runc-v2|sleep|podman|catatonit)$/')
expect_eq "no runtime, shim or test process left" "" "$procs"
# podman's /run/libpod and /run/containers/storage are made at boot.
state=$(find /run/carte /run/containerd/runc -mindepth 1 2>/dev/null)
expect_eq "no carte or runtime state left" "" "$state"
