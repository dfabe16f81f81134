#!/usr/bin/env bash
# conformance.sh [--no-checker]: carte against the runtime-spec.
#   0. docs/conformance.md against the spec's MUSTs and SHOULDs
#      (spec-rows.sh: one row each; counted as one check);
#   1. the checker-driven suite (tests/conformance.rs: carte-checker inside
#      containers built from configs that exercise each requirement, and the
#      outside checks), through cargo test;
#   2. opencontainers runtime-tools' validation suite (runtime-tools/run.sh).
# Prints each suite's results and a final `N passed, M failed`.
# --no-checker skips 1 (run-tests.sh runs it with the other cargo tests) and
# leaves the total to runtime-tools' own line, so nothing is counted twice.
# CARTE=/path/to/runtime runs both against another runtime (runc).
set -uo pipefail
cd "$(dirname "$0")/.."
checker=1
[ "${1:-}" = --no-checker ] && checker=0
cargo build -q || exit 1
carte=${CARTE:-$PWD/target/x86_64-unknown-linux-gnu/debug/carte}
passed=0 failed=0 rc=0
echo "== the conformance table (conformance/spec-rows.sh)"
if conformance/spec-rows.sh; then passed=1; else failed=1 rc=1; fi
if [ "$checker" = 1 ]; then
    echo "== checker-driven conformance suite (tests/conformance.rs)"
    log=$(mktemp)
    CARTE_BIN=$carte cargo test -q --test conformance -- --test-threads=4 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    line=$(grep -E '^test result:' "$log" | tail -1)
    p=$(echo "$line" | grep -Eo '[0-9]+ passed' | cut -d' ' -f1)
    f=$(echo "$line" | grep -Eo '[0-9]+ failed' | cut -d' ' -f1)
    [ -n "$p" ] || { p=0; f=1; }
    passed=$((passed + p)) failed=$((failed + ${f:-0}))
    rm -f "$log"
fi
echo "== runtime-tools validation suite"
log=$(mktemp)
conformance/runtime-tools/run.sh "$carte" 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
p=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | cut -d' ' -f1)
f=$(grep -Eo '[0-9]+ failed' "$log" | tail -1 | cut -d' ' -f1)
passed=$((passed + ${p:-0})) failed=$((failed + ${f:-1}))
rm -f "$log"
[ "$checker" = 1 ] && echo "$passed passed, $failed failed"
exit $rc
