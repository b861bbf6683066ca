# Shared by the drill scripts (sourced, not run). One function: run_drill NAME TEST...
# runs the named integration tests of crates/cli/tests at the scale chosen on the command line
# (`--short`, else full), with the same build settings as ./test.sh (so nothing recompiles
# after it), prints every one-line `drill=…` summary, and on failure the tail of the log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scale=full
for arg in "$@"; do
    case "$arg" in
        --short) scale=short ;;
        --full) scale=full ;;
        -h | --help)
            echo "usage: $0 [--short | --full]   (WBAUTH_DRILL_SEED=N repeats a run)"
            exit 0
            ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
done
export WBAUTH_DRILL_SCALE=$scale
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

# run_drill NAME TEST [TEST…]: `cargo test -p wbauth --all-features --locked --test TEST`.
run_drill() {
    local name=$1
    shift
    local log status=0 started
    log=$(mktemp "${TMPDIR:-/tmp}/wbauth-drill-$name.XXXXXX")
    started=$(date +%s)
    local tests=()
    for t in "$@"; do tests+=(--test "$t"); done
    # One test at a time in the full form: each drill loads the machine by itself.
    local threads=()
    [ "$scale" = full ] && threads=(--test-threads=1)
    cargo test -q -p wbauth --all-features --locked "${tests[@]}" -- --nocapture "${threads[@]}" \
        >"$log" 2>&1 || status=$?
    # The test harness may print on the same line first (`test … ... `): match anywhere.
    grep -oE 'drill(=| \().*' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "==> drill $name FAILED ($scale); last lines of $log:" >&2
        tail -n 60 "$log" >&2
        return "$status"
    fi
    echo "==> drill $name passed ($scale) in $(($(date +%s) - started))s"
    rm -f "$log"
}
