#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target for a bounded time and prints, per target, the runs, exec/s,
# coverage, corpus size and crashes. Exits non-zero when any target crashed.
#
#   fuzz/run.sh [SECONDS]        # default 60 s per target (or FUZZ_SECONDS)
#   FUZZ_TARGETS="request jwt" fuzz/run.sh 10
#   FUZZ_CMIN=1 fuzz/run.sh      # afterwards, minimise (cargo fuzz cmin) into fuzz/corpus/
#   FUZZ_TOOLCHAIN=stable fuzz/run.sh   # force the stable path even when nightly is installed
#
# Fuzzing needs nightly features (sanitizers): the nightly toolchain when it is installed,
# else stable with RUSTC_BOOTSTRAP=1 (docs/design-decisions.md 32). Not part of CI: CI replays the
# committed corpus on stable (crates/fuzzing/tests/corpus.rs).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-${FUZZ_SECONDS:-60}}"
targets=(${FUZZ_TARGETS:-request jwt config service})
declare -A max_len=([request]=8192 [jwt]=2048 [config]=8192 [service]=4096)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
choice="${FUZZ_TOOLCHAIN:-auto}"
if [ "$choice" = nightly ] || { [ "$choice" = auto ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; }; then
    cargo_tc=(cargo +nightly)
    toolchain=nightly
else
    export RUSTC_BOOTSTRAP=1
    cargo_tc=(cargo)
    toolchain="stable with RUSTC_BOOTSTRAP=1"
fi
fuzz=("${cargo_tc[@]}" fuzz)
echo "toolchain: $toolchain ($("${cargo_tc[@]}" --version)), $(cargo fuzz --version), $seconds s per target"

# The service target keeps its SQLite and journal stores under TMPDIR: one scratch dir for the
# whole run, removed at the end.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"

echo "==> building the targets (release, debug assertions, address sanitizer)"
"${fuzz[@]}" build -O -a

failed=()
summary=()
for t in "${targets[@]}"; do
    work="corpus-work/$t"
    mkdir -p "$work" "corpus/$t" "artifacts/$t"
    cp -n "corpus/$t/"* "$work/" 2>/dev/null || true
    before=$(find "artifacts/$t" -type f | wc -l)
    log="$scratch/$t.log"
    echo "==> fuzzing $t for $seconds s (max_len ${max_len[$t]:-4096})"
    status=0
    "${fuzz[@]}" run -O -a "$t" "$work" -- \
        -max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(find "$work" -type f | wc -l)
    crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
    line=$(printf '%-8s runs=%s exec/s=%s cov=%s ft=%s corpus=%s peak_rss_mb=%s crashes=%s exit=%s' \
        "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "${rss:-?}" "$crashes" "$status")
    echo "$line"
    summary+=("$line")
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        failed+=("$t")
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 20 || true
    fi
    if [ "${FUZZ_CMIN:-0}" = 1 ] && [ "$status" -eq 0 ]; then
        # Edges only (no hit counters): a few hundred files per target instead of thousands.
        "${fuzz[@]}" cmin -O -a "$t" "$work" -- -max_len="${max_len[$t]:-4096}" -use_counters=0 \
            -rss_limit_mb=2048 -timeout=10 >"$scratch/$t.cmin.log" 2>&1
        rm -rf "corpus/$t"
        cp -r "$work" "corpus/$t"
        echo "    minimised into fuzz/corpus/$t: $(find "corpus/$t" -type f | wc -l) files, $(du -sb "corpus/$t" | cut -f1) bytes"
    fi
done

echo "==> summary ($seconds s per target, $toolchain)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]} (reproducers under fuzz/artifacts/)" >&2
    exit 1
fi
