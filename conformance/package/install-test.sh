#!/usr/bin/env bash
# carte installed as a system runtime: `make install` into a temporary
# DESTDIR puts the binary, man pages, completions and docs where they
# belong and `make uninstall` takes away every file it put there; then,
# when target/deb holds the package (conformance/package/build-deb.sh),
# `dpkg -i` installs it on this host and `dpkg -r` removes every path it
# listed. Prints `N passed, M failed`. The package part is skipped when a
# carte package or a /usr/bin/carte is already there (not ours to touch).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
expect_none() { if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "left: $(echo $2)"; fi; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1" "failed: $2"; fi; }
command -v man >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq man-db >/dev/null; }

make -s build >/dev/null || { echo "make build failed"; echo "0 passed, 1 failed"; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
pages=$(ls man/*.8 | wc -l)

dest=$(mktemp -d /tmp/carte-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
make -s install DESTDIR="$dest" PREFIX=/usr >/dev/null
u=$dest/usr
check "binary installed, executable" "[ -x $u/bin/carte ]"
expect "installed binary runs" "carte version $version" "$("$u/bin/carte" --version | head -1)"
expect "man pages under share/man/man8" "$pages" "$(ls "$u"/share/man/man8/*.8 | wc -l)"
out=$(MANWIDTH=80 man -l "$u/share/man/man8/carte-create.8" 2>&1)
expect "man -l carte-create.8 renders" "--console-socket" "$out"
check "bash completion" "[ -f $u/share/bash-completion/completions/carte ]"
out=$(bash -c "source $u/share/bash-completion/completions/carte && complete -p carte" 2>&1)
expect "bash completion registers for carte" "complete" "$out"
check "zsh completion" "[ -f $u/share/zsh/vendor-completions/_carte ]"
check "fish completion" "[ -f $u/share/fish/vendor_completions.d/carte.fish ]"
check "docs" "[ -f $u/share/doc/carte/README.md ] && [ -f $u/share/doc/carte/integration.md ]"
installed=$(find "$dest" -type f | wc -l)
make -s uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null
left=$(find "$dest" ! -type d)
expect_none "uninstall removed all $installed files" "$left"
check "uninstall removed share/doc/carte" "[ ! -e $u/share/doc/carte ]"

deb=$(ls target/deb/carte_"$version"_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
    echo "# no target/deb/carte_${version}_*.deb: package part skipped (conformance/package/build-deb.sh)"
elif dpkg -s carte >/dev/null 2>&1 || [ -e /usr/bin/carte ]; then
    echo "# a carte package or /usr/bin/carte is already here: package part skipped"
else
    expect_none "package depends on nothing" "$(dpkg-deb -f "$deb" Depends)"
    expect "package suggests criu, uidmap" "criu, uidmap" "$(dpkg-deb -f "$deb" Suggests)"
    dpkg -i "$deb" >/dev/null 2>&1; expect "dpkg -i" "0" "$?"
    paths=$(dpkg -L carte 2>/dev/null)
    expect "/usr/bin/carte runs" "carte version $version" "$(/usr/bin/carte --version 2>&1 | head -1)"
    out=$(MANWIDTH=80 man 8 carte-run 2>&1)
    expect "man 8 carte-run" "--detach" "$out"
    for p in /usr/share/bash-completion/completions/carte /usr/share/zsh/vendor-completions/_carte \
        /usr/share/fish/vendor_completions.d/carte.fish /usr/share/doc/carte/copyright; do
        expect "package holds $p" "$p" "$paths"
    done
    dpkg -r carte >/dev/null 2>&1; expect "dpkg -r" "0" "$?"
    # With no conffiles, dpkg -r forgets the package altogether.
    check "dpkg knows carte no more" "! dpkg -s carte >/dev/null 2>&1"
    # Every file and link the package listed is gone (directories are
    # shared with other packages: dpkg removes them when empty).
    left=$(while read -r p; do [ -e "$p" ] && [ ! -d "$p" ] && echo "$p"; done <<<"$paths")
    expect_none "dpkg -r removed all $(wc -l <<<"$paths") listed paths" "$left"
    check "/usr/share/doc/carte gone" "[ ! -e /usr/share/doc/carte ]"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
