#!/usr/bin/env bash
# Soak test: `wbauth serve` (embedded stores, proxying to `wbauth bench-echo`) under a steady
# signed load at half the capacity measured at the start of the same run, for DURATION
# (default 1h). Every INTERVAL it samples the gateway's RSS, open files, threads and the size
# of its data directory. It fails when any request fails, or when a figure still grows once
# warmed up: the samples after the warm-up (5 minutes, or the first quarter of a shorter run)
# are split in two halves, and the larger value of the second half may exceed the larger value
# of the first by at most 10 % (and by at least a small absolute slack: 2 threads, 4 open
# files; the data directory may fill up to the nonce journal's compaction point, 64 MiB, plus
# its snapshot, 16 MiB, wherever it stands when the run starts).
#
# Usage: bench/soak.sh [DURATION]        e.g. 1h (the default), 10m, 2m (what ./test.sh runs)
# Environment: WBAUTH_BIN=path (default: builds and uses target/release/wbauth),
#              SOAK_INTERVAL=seconds between samples (default 30; 5 for runs under 10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

to_seconds() {
    case "$1" in
        *h) echo $((${1%h} * 3600)) ;;
        *m) echo $((${1%m} * 60)) ;;
        *s) echo "${1%s}" ;;
        *[!0-9]* | "") echo "bad duration $1 (give e.g. 1h, 10m, 90s)" >&2; exit 2 ;;
        *) echo "$1" ;;
    esac
}
duration=$(to_seconds "${1:-1h}")
[ "$duration" -ge 60 ] || { echo "the soak needs at least 60s" >&2; exit 2; }
if [ "$duration" -ge 600 ]; then
    interval=${SOAK_INTERVAL:-30}
    warmup=300
else
    interval=${SOAK_INTERVAL:-5}
    warmup=$((duration / 4))
fi

if [ -n "${WBAUTH_BIN:-}" ]; then
    wbauth=$WBAUTH_BIN
else
    echo "==> building the release binary"
    cargo build --release --locked -p wbauth
    wbauth="$root/target/release/wbauth"
fi

server_cpu=()
client_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
fi

work=$(mktemp -d /tmp/wbauth-soak-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

source bench/lib.sh

"${server_cpu[@]}" "$wbauth" bench-echo --listen 127.0.0.1:0 >"$work/echo.out" 2>&1 &
pids+=($!)
echo_url=$(wait_line "$work/echo.out" listening)

export WBAUTH_ADMIN_TOKEN=soak-admin-token-0123456789abcdef
gateway_toml "$work/data" "$echo_url" >"$work/gateway.toml"
"${server_cpu[@]}" "$wbauth" serve --config "$work/gateway.toml" >"$work/gw.out" 2>"$work/gw.err" &
gw_pid=$!
pids+=("$gw_pid")
url=$(wait_line "$work/gw.out" listening)/api/v4/trade-account/balance
admin=$(wait_line "$work/gw.out" admin)

provision_keys "$wbauth" "$admin" soak 64 "$work/keys.csv"

echo "==> capacity (10 s, closed loop)"
"${client_cpu[@]}" "$wbauth" bench "$url" --keys "$work/keys.csv" --duration 10s --warmup 2s \
    --quiet --json >"$work/capacity.json"
capacity=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["rps"]))' "$work/capacity.json")
rate=$((capacity / 2))
[ "$rate" -ge 1 ] || rate=1
echo "capacity=$capacity req/s; soak at rate=$rate req/s for ${duration}s, a sample every ${interval}s, warm-up ${warmup}s"

"${client_cpu[@]}" "$wbauth" bench "$url" --keys "$work/keys.csv" --rate "$rate" \
    --duration "${duration}s" --warmup 0s --quiet --json >"$work/soak.json" &
load_pid=$!
pids+=("$load_pid")

samples="$work/samples.tsv"
printf 't_s\trss_kib\tfds\tthreads\tdata_bytes\n' >"$samples"
started=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
    now=$(($(date +%s) - started))
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$gw_pid/status")
    threads=$(awk '/^Threads/ {print $2}' "/proc/$gw_pid/status")
    fds=$(find "/proc/$gw_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    data=$(du -sb "$work/data" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$now" "$rss" "$fds" "$threads" "$data" | tee -a "$samples"
    # Sleep in short steps so the end of the load is noticed at once.
    for _ in $(seq 1 "$interval"); do
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 1
    done
done
wait "$load_pid"
kill -0 "$gw_pid" 2>/dev/null || { echo "the gateway died" >&2; cat "$work/gw.err" >&2; exit 1; }

python3 - "$samples" "$work/soak.json" "$warmup" "$capacity" "$rate" <<'PY'
import json, sys
samples_path, report_path, warmup, capacity, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [line.rstrip("\n").split("\t") for line in open(samples_path)][1:]
rows = [[int(x) for x in r] for r in rows if len(r) == 5]
report = json.load(open(report_path))
failures = []
status = report.get("status", {})
bad = {k: v for k, v in status.items() if not k.startswith("2")}
if bad or report.get("transport_errors", 0):
    failures.append(f"requests failed: status {bad}, transport errors {report.get('transport_errors')}")
after = [r for r in rows if r[0] >= warmup]
if len(after) < 4:
    failures.append(f"only {len(after)} samples after the warm-up: run longer")
names = ["rss_kib", "fds", "threads", "data_bytes"]
# The journal grows until it is compacted at 64 MiB (JournalConfig::compact_after_bytes).
slack = {"rss_kib": 0, "fds": 4, "threads": 2, "data_bytes": 80 << 20}
verdicts = []
if len(after) >= 4:
    half = len(after) // 2
    first, second = after[:half], after[half:]
    for i, name in enumerate(names, start=1):
        a, b = max(r[i] for r in first), max(r[i] for r in second)
        limit = max(a * 1.10, a + slack[name])
        grew = b > limit
        verdicts.append(f"{name}: first half max {a}, second half max {b} (limit {int(limit)}){' GROWS' if grew else ''}")
        if grew:
            failures.append(f"{name} still grows: {a} -> {b}")
start, end = rows[0], rows[-1]
print("==> soak summary")
print(f"duration_s={end[0]} capacity_rps={capacity} rate_rps={rate} requests={report.get('requests')} "
      f"achieved_rps={report.get('rps', 0):.0f} p99_us={report.get('latency_us', {}).get('p99')} "
      f"failed={sum(bad.values()) + report.get('transport_errors', 0)}")
print(f"rss_mib {start[1]/1024:.1f} -> {end[1]/1024:.1f}; fds {start[2]} -> {end[2]}; "
      f"threads {start[3]} -> {end[3]}; data_dir_mib {start[4]/2**20:.2f} -> {end[4]/2**20:.2f}")
for v in verdicts:
    print("  " + v)
if failures:
    print("==> soak FAILED: " + "; ".join(failures))
    sys.exit(1)
print("==> soak passed")
PY
