#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, all tests, fault drills (short form), the
# examples, the console's browser journey, docs, dependency audit.
# Installs what the checks need when it is missing. Prints the time of each stage.
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# One build profile for every stage that compiles tests (docs/design-decisions.md 32).
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

started=$(date +%s)
stage_start=$started
stage() {
    local now
    now=$(date +%s)
    if [ -n "${current_stage:-}" ]; then
        printf '==> %-28s done in %4ss\n' "$current_stage" "$((now - stage_start))"
    fi
    current_stage="$1"
    stage_start=$now
    [ -n "$1" ] && printf '==> %s\n' "$1"
    return 0
}

ensure_component() {
    if ! cargo "$1" --version >/dev/null 2>&1; then
        rustup component add "$2"
    fi
}

stage "toolchain"
ensure_component fmt rustfmt
ensure_component clippy clippy
cargo --version

stage "services"
# The distributed-store tests start their own throw-away Redis and PostgreSQL servers, and the
# path tests an nginx, on free loopback ports (crates/testkit); install them when missing.
missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
# The sandbox's client tests (crates/cli/tests/teaching/clients.rs) run python-requests and
# Node's fetch against it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
python3 -c 'import requests' 2>/dev/null || missing+=(python3-requests)
# dist/'s Prometheus rules and the gateway's /metrics text are checked with promtool
# (crates/cli/tests/dist.rs).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The TLS tests and the console journey make their throw-away CA with dist/make-test-ca.sh.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    # Packages must not start their own services (the tests start theirs on free ports).
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod 755 "$policy"
        added_policy=1
    fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "$added_policy" -eq 0 ] || "${sudo_cmd[@]}" rm -f "$policy"
fi
redis-server --version
"$(command -v nginx || echo /usr/sbin/nginx)" -v
ls -d /usr/lib/postgresql/*/bin 2>/dev/null || command -v initdb

stage "fmt"
cargo fmt --all -- --check

stage "clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

stage "test"
# test-clock (docs/design-decisions.md 29) is compiled into test builds only, never into releases.
cargo test --workspace --all-features --locked

stage "drills"
# The fault drills of drills/ in their short form (the same test binaries: nothing rebuilds).
drills/run.sh --short

stage "examples"
# The quick-start examples in eleven languages against a real `wbauth sandbox` on a free port
# (examples/run.sh installs each missing toolchain with apt-get). It runs the wbauth binary the
# test stage built (asking cargo, which rebuilds nothing, for its path): a separate
# `cargo build -p wbauth` resolves features differently and would compile the gateway again.
# That build has the test clock, which the console journey below needs.
WBAUTH_BIN=$(cargo test --workspace --all-features --locked --no-run --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\/wbauth\)".*/\1/p' | tail -1)
export WBAUTH_BIN
examples/run.sh

stage "soak"
# Two minutes of bench/soak.sh (the full form is an hour): steady load at half the measured
# capacity; fails on a failed request or on memory, open files, threads or data still growing.
bench/soak.sh 2m

stage "console"
# The web console in a real browser: Debian's chromium driven by playwright-core (run.sh
# installs chromium with apt-get and playwright-core with npm ci when missing); screenshots of
# every page go to console-e2e/artifacts/.
console-e2e/run.sh

stage "doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

stage "package"
# What `cargo publish` would ship of each publishable crate: its README and both licence
# texts, every dependency with a version, nothing left by builds or test runs.
for crate in whitebit-auth whitebit-client wbauth-store whitebit-gateway wbauth-conformance wbauth; do
    files=$(cargo package --list --locked --allow-dirty -p "$crate")
    for needed in Cargo.toml README.md LICENSE-MIT LICENSE-APACHE; do
        grep -qx "$needed" <<<"$files" || { echo "$crate: $needed is missing from its package"; exit 1; }
    done
    if grep -E '(^|/)(target|node_modules|artifacts)/|\.(log|tmp)$' <<<"$files"; then
        echo "$crate: build or test output in its package"
        exit 1
    fi
done

stage "audit"
if ! cargo audit --version >/dev/null 2>&1; then
    cargo install cargo-audit --locked
fi
# The RustSec snapshot shipped beside the repository (docs/design-decisions.md 30), else the live database.
advisory_db="${WBAUTH_ADVISORY_DB:-../shared/advisory-db}"
if [ -d "$advisory_db" ]; then
    cargo audit --db "$advisory_db" --no-fetch --deny warnings
elif ! audit_out=$(cargo audit --deny warnings 2>&1); then
    printf '%s\n' "$audit_out"
    if printf '%s' "$audit_out" | grep -q "couldn't fetch advisory database"; then
        # No snapshot and no network: an environment limit, not a finding. Say so loudly.
        echo "==> WARNING: cargo audit skipped: no advisory database here and none could be fetched"
    else
        exit 1
    fi
else
    printf '%s\n' "$audit_out"
fi

stage ""
echo "==> all checks passed in $(( $(date +%s) - started ))s"
