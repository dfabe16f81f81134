#!/usr/bin/env bash
# Fuzzes carte's input parsers, one target after another, each for SECONDS
# (default 60): config (config.json as create loads and validates it),
# channel (the init-pipe decoder), process (exec --process FILE) and dbus
# (the systemd driver's D-Bus message parser).
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
# Starts from the committed corpus (corpus/<target>, read-only here); new
# inputs go to work/<target>, crashes to artifacts/<target>. One libFuzzer
# process per target (no -jobs/-workers: a single in-process fuzzer).
# Prints per target: seconds, executions, crashes; exits 1 on any crash.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=(config channel process dbus)

# cargo-fuzz's default build: optimised, with debug assertions and overflow
# checks on, so an arithmetic overflow is a crash too.
cargo +nightly fuzz build --fuzz-dir . >/dev/null 2>&1 ||
    cargo +nightly fuzz build --fuzz-dir . || exit 1

total_crashes=0
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    log=$(mktemp)
    start=$(date +%s.%N)
    # -timeout: an input that runs for 10 s counts as a crash (a hang).
    cargo +nightly fuzz run --fuzz-dir . "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    elapsed=$(echo "$(date +%s.%N) - $start" | bc)
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
    # A failing run that saved nothing (a build or harness error) still counts.
    [ "$rc" = 0 ] || [ "$crashes" -gt 0 ] || crashes=1
    printf 'fuzz %-8s %6.1f s  %12s executions  %d crashes\n' "$t" "$elapsed" "${execs:-?}" "$crashes"
    if [ "$crashes" -gt 0 ]; then
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    fi
    total_crashes=$((total_crashes + crashes))
    rm -f "$log"
done
[ "$total_crashes" = 0 ]
