# suites/lib.sh: sourced by the VM's suites for their check helpers.
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; }
# expect NAME WANT GOT: passes when GOT contains WANT.
expect() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "wanted '$2', got '$3'" ;; esac
}
# expect_eq NAME WANT GOT: passes when GOT is WANT.
expect_eq() {
    [ "$3" = "$2" ] && ok "$1" || not_ok "$1" "wanted '$2', got '$3'"
}
