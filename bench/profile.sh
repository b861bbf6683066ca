#!/usr/bin/env bash
# Where the proxying gateway's time goes, per request: `wbauth serve` (embedded store, one
# worker) in front of `wbauth bench-echo`, loaded by `wbauth bench`, on loopback.
#
# Usage: bench/profile.sh instructions|switches|perf [WBAUTH]
#   instructions  callgrind (valgrind): instructions per proxied request, 3,000 requests after
#                 1,000 of warm-up, 8 connections; prints the total and writes the inclusive
#                 and self profiles next to the callgrind output
#   switches      voluntary and involuntary context switches per request of the gateway and of
#                 the echo server (from /proc/PID/task/*/status), 5 s at 32 connections,
#                 servers on CPU 0 and the generator on CPU 1 as in bench/run.sh
#   perf          `perf record -e cpu-clock -g` of the gateway over the same 5 s; prints the
#                 split between the kernel, the binary and libc
# WBAUTH: the binary to profile (default: target/release/wbauth, built when missing).
# Needs valgrind (instructions) or perf (perf): `apt-get install valgrind` / `linux-perf`.
# The output directory is printed at the end (kept for reading).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bench/profile.sh instructions|switches|perf [WBAUTH]}
wbauth=${2:-target/release/wbauth}
[ -x "$wbauth" ] || cargo build --release -p wbauth
wbauth=$(realpath "$wbauth")
case "$mode" in
    instructions) command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; } ;;
    perf) command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; } ;;
    switches) ;;
    *) echo "unknown mode $mode: instructions, switches or perf" >&2; exit 2 ;;
esac
out=$(mktemp -d /tmp/wbauth-profile.XXXXXX)
source bench/lib.sh
export WBAUTH_ADMIN_TOKEN=bench-admin-token-0123456789abcdef
WBAUTH_MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export WBAUTH_MASTER_KEY
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

pin_server=()
pin_client=()
if [ "$mode" != instructions ] && command -v taskset >/dev/null; then
    pin_server=(taskset -c 0)
    pin_client=(taskset -c 1)
fi
"${pin_server[@]}" "$wbauth" bench-echo --listen 127.0.0.1:0 >"$out/echo.out" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")
echo_url=$(wait_line "$out/echo.out" listening)
gateway_toml "$out/data" "$echo_url" "" 'nonces = "embedded"' "[runtime]
workers = 1" >"$out/gateway.toml"
serve=("$wbauth" serve --config "$out/gateway.toml")
if [ "$mode" = instructions ]; then
    serve=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out" "${serve[@]}")
fi
"${pin_server[@]}" "${serve[@]}" >"$out/out.log" 2>"$out/err.log" &
gateway_pid=$!
pids+=("$gateway_pid")
url=$(wait_line "$out/out.log" listening)
admin=$(wait_line "$out/out.log" admin)
provision_keys "$wbauth" "$admin" bench 256 "$out/keys.csv"

# load CONNECTIONS ARGS…: one `wbauth bench` run against the gateway, its JSON in $out/bench.json.
load() {
    local connections=$1
    shift
    "${pin_client[@]}" "$wbauth" bench "$url/api/v4/trade-account/balance" --keys "$out/keys.csv" \
        --mode window --connections "$connections" --warmup 0s --quiet --json "$@" >"$out/bench.json"
}
requests() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$out/bench.json"
}
# switches PID: "voluntary involuntary" context switches of all threads of PID.
switches() {
    cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v, n}'
}

case "$mode" in
    instructions)
        load 8 --requests 1000
        callgrind_control -i on >/dev/null
        load 8 --requests 3000
        callgrind_control -i off >/dev/null
        callgrind_control -d >/dev/null
        # The dump is written asynchronously: wait (bounded) until it is there.
        for _ in $(seq 1 100); do
            ls "$out"/callgrind.out.* >/dev/null 2>&1 && break
            sleep 0.1
        done
        kill "$gateway_pid"
        wait "$gateway_pid" 2>/dev/null || true
        dump=$(ls -S "$out"/callgrind.out.* | head -1)
        callgrind_annotate --inclusive=yes "$dump" >"$out/inclusive.txt"
        callgrind_annotate "$dump" >"$out/self.txt"
        total=$(grep -m1 "PROGRAM TOTALS" "$out/self.txt" | awk '{gsub(",", "", $1); print $1}')
        echo "instructions per proxied request: $((total / 3000)) ($total for 3000)"
        echo "profiles: $out/inclusive.txt, $out/self.txt"
        ;;
    switches)
        load 32 --duration 2s
        read -r gv gn <<<"$(switches "$gateway_pid")"
        read -r ev en <<<"$(switches "$echo_pid")"
        load 32 --duration 5s
        read -r gv2 gn2 <<<"$(switches "$gateway_pid")"
        read -r ev2 en2 <<<"$(switches "$echo_pid")"
        n=$(requests)
        python3 - "$n" "$((gv2 - gv))" "$((gn2 - gn))" "$((ev2 - ev))" "$((en2 - en))" <<'PY'
import sys
n, gv, gn, ev, en = map(int, sys.argv[1:])
print(f"{n} requests; per request: gateway {gv / n:.3f} voluntary, {gn / n:.3f} involuntary; "
      f"echo {ev / n:.3f} voluntary, {en / n:.3f} involuntary")
PY
        ;;
    perf)
        load 32 --duration 2s
        perf record -F 2000 -e cpu-clock -g -p "$gateway_pid" -o "$out/perf.data" >/dev/null 2>&1 &
        recorder=$!
        load 32 --duration 5s
        kill -INT "$recorder"
        wait "$recorder" || true
        echo "$(requests) requests"
        perf report -i "$out/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -5
        echo "perf data: $out/perf.data (perf report -i $out/perf.data --children)"
        ;;
esac
echo "output: $out"
