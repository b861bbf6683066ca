#!/usr/bin/env bash
# The web console's browser journey (console-e2e/journey.mjs): Debian's chromium driven by
# playwright-core (no browser download). Installs chromium (apt-get) and node/npm when missing,
# runs `npm ci`, starts a bench-echo upstream and `wbauth serve` with the console over HTTPS on
# free loopback ports (a test-clock build: WBAUTH_BIN, else built here), and saves a screenshot of
# each page to console-e2e/artifacts/.
set -euo pipefail
# A relative WBAUTH_BIN names a file from the caller's directory.
if [ -n "${WBAUTH_BIN:-}" ]; then
    WBAUTH_BIN=$(realpath "$WBAUTH_BIN")
fi
cd "$(dirname "$0")"

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund
fi

if [ -z "${WBAUTH_BIN:-}" ]; then
    cargo build -p wbauth --features test-clock --locked
    WBAUTH_BIN="${CARGO_TARGET_DIR:-../target}/debug/wbauth"
fi
WBAUTH_BIN=$(realpath "$WBAUTH_BIN")
export WBAUTH_BIN

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Reads KEY=value lines from a process's stdout file until KEY appears (bounded wait).
wait_for_line() {
    local file=$1 key=$2 i
    for i in $(seq 1 600); do
        if grep -q "^$key=" "$file" 2>/dev/null; then
            sed -n "s/^$key=//p" "$file" | head -1
            return 0
        fi
        sleep 0.1
    done
    echo "no $key= line in $file" >&2
    cat "$work"/*.err >&2 || true
    return 1
}

# The console is served over HTTPS (a throw-away CA from dist/make-test-ca.sh), so its session
# cookie is `Secure` as in production; the browser trusts exactly that certificate.
../dist/make-test-ca.sh "$work/pki" >/dev/null
CONSOLE_SPKI=$(openssl x509 -in "$work/pki/cert.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
export CONSOLE_SPKI

"$WBAUTH_BIN" bench-echo --listen 127.0.0.1:0 >"$work/echo.out" 2>"$work/echo.err" &
pids+=($!)
upstream=$(wait_for_line "$work/echo.out" listening)

cat >"$work/gateway.toml" <<TOML
[listen]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[store]
data_dir = "$work/data"

[[route]]
prefix = "/api/v4"
upstream = "$upstream"

[[kind]]
name = "trade"
paths = ["/api/v4/trade-account/*", "/api/v4/order/*"]

[[kind]]
name = "main"
paths = ["/api/v4/main-account/*"]

[console]
listen = "127.0.0.1:0"
tls = { cert = "$work/pki/cert.pem", key = "$work/pki/key.pem" }

# Test only: the journey's proxy on 127.0.0.1 names the client in X-Forwarded-For.
[proxy]
trusted = ["127.0.0.1/32"]
TOML

export ADMIN_TOKEN="console-e2e-admin-token-0123456789"
T0=1750000020000
WBAUTH_ADMIN_TOKEN=$ADMIN_TOKEN WBAUTH_TEST_CLOCK_MS=$T0 \
    "$WBAUTH_BIN" serve --config "$work/gateway.toml" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
CONSOLE=$(wait_for_line "$work/serve.out" console)
export CONSOLE T0
ADMIN=$(wait_for_line "$work/serve.out" admin)
PUBLIC=$(wait_for_line "$work/serve.out" listening)
export ADMIN PUBLIC

rm -rf artifacts
mkdir -p artifacts
if ! node journey.mjs; then
    echo "--- gateway stderr (last 40 lines)" >&2
    tail -40 "$work/serve.err" >&2
    exit 1
fi
ls artifacts
