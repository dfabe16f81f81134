#!/usr/bin/env bash
# make-bundle.sh NAME OUTDIR: a ready bundle (config.json + rootfs/) for one
# of the examples here: hello, shell, readonly, userns, default.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: make-bundle.sh NAME OUTDIR}
out=${2:?usage: make-bundle.sh NAME OUTDIR}
mkdir -p "$out"
"$here/mkrootfs.sh" "$out/rootfs"
case "$name" in
    default)
        rm -f "$out/config.json"
        carte=${CARTE:-$here/../target/x86_64-unknown-linux-gnu/release/carte}
        [ -x "$carte" ] || carte=$here/../target/x86_64-unknown-linux-gnu/debug/carte
        "$carte" spec --bundle "$out"
        ;;
    hello|shell|readonly|userns)
        cp "$here/$name/config.json" "$out/config.json"
        ;;
    *)
        echo "make-bundle.sh: unknown example $name (hello, shell, readonly, userns, default)" >&2
        exit 1
        ;;
esac
# The userns example maps container root to host uid/gid 100000.
if [ "$name" = userns ]; then
    chown -R 100000:100000 "$out/rootfs"
fi
echo "bundle ready: $out"
