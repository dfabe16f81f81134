#!/usr/bin/env bash
# Builds the Debian package of carte with dpkg-buildpackage from debian/
# (which builds and installs through the Makefile) into target/deb/.
# Installs the Debian tools it needs with apt. The build runs in a copy of
# the tracked tree under target/deb/build (dpkg-buildpackage writes its
# results beside the source tree), with cargo's target dir shared so the
# crates.io dependencies are not rebuilt. Prints the .deb's path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
need=()
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
command -v fakeroot >/dev/null || need+=(fakeroot)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
version=$(dpkg-parsechangelog -S Version)
out=$repo/target/deb
build=$out/build
src=$build/carte-$version
rm -rf "$build" && mkdir -p "$src"
# The tracked files plus new ones not ignored: what a commit would hold.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
export CARTE_COMMIT=${CARTE_COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}
export CARGO_TARGET_DIR=$repo/target
(cd "$src" && dpkg-buildpackage -b -us -uc) >"$build/build.log" 2>&1 || {
    tail -30 "$build/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed, log in $build/build.log" >&2
    exit 1
}
rm -f "$out"/carte_*.deb
mv "$build"/carte_"$version"_*.deb "$out"/
rm -rf "$src"
ls "$out"/carte_"$version"_*.deb
