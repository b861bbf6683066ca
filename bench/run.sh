#!/usr/bin/env bash
# End-to-end benchmarks on loopback, all measured in one run at the same concurrency:
#   1. limit    : a minimal upstream echo server (`wbauth bench-echo`) hit directly
#   2. builtin  : the gateway answering by itself (sandbox built-in balance), window mode
#   3. nginx    : nginx as a plain reverse proxy (no authentication) in front of the echo server
#   3b. njs     : nginx + njs verifying the same signature (HMAC-SHA512 over WebCrypto) and
#                 proxying: what a user might run instead of the gateway (no nonce store)
#   4. gateway  : `wbauth serve` authenticating in front of the echo server, window mode, with
#                 each nonce store: embedded journal, Redis, PostgreSQL; then Redis with one
#                 replica and nonce_replicas_ack = 1 (WAIT 1), and PostgreSQL with a
#                 synchronous standby (README "Running highly available")
#   5. TLS      : nginx terminating TLS in front of the echo server, and the gateway with
#                 `[listen] tls` (embedded store): the same certificate (dist/make-test-ca.sh),
#                 TLS 1.3, session resumption on, keep-alive, the generator speaking HTTP/1.1
#                 over TLS to both (`--http1`)
# then memory: RSS of a gateway holding 100,000 keys, and RSS after two full-rate window-mode
# runs (window state must stay bounded).
#
# Servers are pinned to CPU 0 and the load generator to CPU 1 when there are two or more.
# Every run also reports the CPU time per answered request of each server process involved
# (user + system of all its threads, from /proc/PID/stat at the start and the end of the
# measured phase: `wbauth bench --watch NAME=PID`): echo server, nginx worker, gateway, Redis
# or PostgreSQL (the postmaster and every backend). Ticks are 10 ms: over a 10 s run that is
# well under 0.1 us per request.
# Installs nginx, its njs module (libnginx-mod-http-js), redis-server and postgresql when
# missing, with apt-get.
#
# Usage: bench/run.sh [--duration 10s] [--connections 32] [--keys 256] [--memory-run 30s]
#                     [--only "limit builtin nginx njs gateway-embedded gateway-redis gateway-postgres
#                              gateway-redis-wait1 gateway-postgres-sync nginx-tls gateway-tls
#                              memory"]
#        BENCH_SKIP_MEMORY=1 skips the memory part (so does --only without "memory").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=10s
connections=32
keys=256
memory_run=30s
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --keys) keys=$2; shift 2 ;;
        --memory-run) memory_run=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ] || missing+=(libnginx-mod-http-js)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
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
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

echo "==> building release binaries"
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --locked -p wbauth
# BENCH_WBAUTH: another build of wbauth to measure (e.g. a copy of an earlier commit).
wbauth="${BENCH_WBAUTH:-$root/target/release/wbauth}"

cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
    pinning="servers on CPU 0, load generator on CPU 1"
else
    server_cpu=()
    client_cpu=()
    pinning="not pinned (one CPU)"
fi

work=$(mktemp -d /tmp/wbauth-bench-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "${pg_data:-}" ] && [ -f "$pg_data/postmaster.pid" ] && kill -INT "$(head -1 "$pg_data/postmaster.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_line, totp, provision_keys.
source bench/lib.sh

# Waits (bounded) until a TCP port accepts connections.
wait_port() {
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "port $1 never opened" >&2
    return 1
}

# RSS in MB of a process.
rss_mb() {
    awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"
}

results="$work/results.jsonl"
: >"$results"
# wanted NAME: whether the run NAME is part of this invocation (--only).
wanted() {
    [ -z "$only" ] || [[ " $only " == *" $1 "* ]]
}

# The server processes whose CPU the next bench run reads (--watch NAME=PID each).
watch=()
# children PID: the child processes of PID (nginx's workers, PostgreSQL's backends).
children() {
    pgrep -P "$1" || true
}

# bench NAME URL [ARGS…]: one measured run (reading the CPU of the processes in $watch), its
# JSON appended to the results.
bench() {
    local name=$1 url=$2
    shift 2
    echo "==> $name"
    "${client_cpu[@]}" "$wbauth" bench "$url" --connections "$connections" --duration "$duration" \
        --warmup 2s --quiet --json "${watch[@]}" "$@" >"$work/$name.json"
    python3 - "$name" "$work/$name.json" >>"$results" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
r["name"] = name
print(json.dumps(r))
PY
}

PATH_BALANCE=/api/v4/trade-account/balance

# ---------------------------------------------------------------------------------------------
# 1. The limit: the echo server directly
# ---------------------------------------------------------------------------------------------
"${server_cpu[@]}" "$wbauth" bench-echo --listen 127.0.0.1:0 >"$work/echo.out" 2>&1 &
pids+=($!)
echo_url=$(wait_line "$work/echo.out" listening)
echo_addr=${echo_url#http://}
echo_pid=${pids[-1]}
watch=(--watch "echo=$echo_pid")
wanted limit && bench limit "$echo_url$PATH_BALANCE" --plain

# ---------------------------------------------------------------------------------------------
# 2. The gateway answering by itself (sandbox built-in balance), embedded store, window mode
# ---------------------------------------------------------------------------------------------
if wanted builtin; then
    "${server_cpu[@]}" "$wbauth" sandbox --listen 127.0.0.1:0 --extra-keys "$((keys - 1))" \
        --keys-out "$work/sandbox-keys.csv" >"$work/sandbox.out" 2>&1 &
    sandbox_pid=$!
    pids+=("$sandbox_pid")
    sandbox_url=$(wait_line "$work/sandbox.out" listening)
    watch=(--watch "gateway=$sandbox_pid")
    bench builtin "$sandbox_url$PATH_BALANCE" --keys "$work/sandbox-keys.csv" --mode window
    kill "$sandbox_pid"
fi

# ---------------------------------------------------------------------------------------------
# 3. nginx as a plain reverse proxy in front of the echo server (docs/design-decisions.md 34)
# ---------------------------------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx"
# nginx_head DIR: what both nginx configurations start with, up to inside `http {`: one
# worker, its files in DIR, no access log.
nginx_head() {
    cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}
# nginx_proxy DIR LISTEN [LINES]: the whole configuration of a plain reverse proxy to the echo
# server (keep-alive both ways) listening on LISTEN, LINES added to its server block.
nginx_proxy() {
    nginx_head "$1"
    cat <<EOF
    upstream echo {
        server $echo_addr;
        keepalive 64;
    }
    server {
        listen $2;
        keepalive_requests 1000000;
${3:-}
        location / {
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}
# bench_nginx NAME PORT URL [ARGS…]: starts nginx with $work/NAME/nginx.conf (listening on
# PORT), runs the bench NAME against URL watching its workers and the echo server, stops it.
bench_nginx() {
    local name=$1 port=$2 url=$3
    shift 3
    "${server_cpu[@]}" "$nginx_bin" -c "$work/$name/nginx.conf" >"$work/$name/out.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port "$port"
    watch=(--watch "echo=$echo_pid")
    for worker in $(children "$pid"); do watch+=(--watch "nginx=$worker"); done
    bench "$name" "$url" "$@"
    kill "$pid"
}
nginx_proxy "$work/nginx" "127.0.0.1:$nginx_port" >"$work/nginx/nginx.conf"
if wanted nginx; then
    bench_nginx nginx "$nginx_port" "http://127.0.0.1:$nginx_port$PATH_BALANCE" --plain
fi

# ---------------------------------------------------------------------------------------------
# 3b. nginx + njs verifying the same signature, then proxying to the echo server
# ---------------------------------------------------------------------------------------------
# The check a user might write in njs 0.7 (Debian's libnginx-mod-http-js): the key known,
# X-TXC-PAYLOAD the base64 of the body, the body's `request` the path and a nonce present,
# X-TXC-SIGNATURE the hex HMAC-SHA512 of the payload (WebCrypto: njs 0.7's `crypto` module
# has no SHA-512). No nonce store (njs 0.7 keeps no state between requests), no rate limits,
# no clock window: it does less than the gateway.
if wanted njs; then
    njs_port=$(free_port)
    mkdir -p "$work/njs"
    python3 "$root/bench/njs_peer.py" "$keys" "$work/njs"
    {
        echo "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;"
        nginx_head "$work/njs"
        cat <<EOF
    client_body_buffer_size 64k;
    js_path "$work/njs";
    js_import main from verify.js;
    upstream echo {
        server $echo_addr;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$njs_port;
        keepalive_requests 1000000;
        location / {
            js_content main.verify;
        }
        location @upstream {
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$work/njs/nginx.conf"
    bench_nginx njs "$njs_port" "http://127.0.0.1:$njs_port$PATH_BALANCE" \
        --keys "$work/njs/keys.csv" --mode window
fi

# ---------------------------------------------------------------------------------------------
# 4. The gateway authenticating in front of the echo server, one run per nonce store
# ---------------------------------------------------------------------------------------------
redis_port=$(free_port)
mkdir -p "$work/redis"
"${server_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
    --appendonly yes --appendfsync always --save "" --daemonize no >"$work/redis/out.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port"

pg_port=$(free_port)
pg_data="$work/pg/data"
mkdir -p "$work/pg"
run_pg=()
if [ "$(id -u)" -eq 0 ]; then
    id -u wbauth-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin wbauth-pg
    chown wbauth-pg "$work/pg"
    run_pg=(runuser -u wbauth-pg --)
fi
chmod 700 "$work/pg"
"${run_pg[@]}" "$pg_bin/initdb" -D "$pg_data" --username=postgres --auth=trust --locale=C \
    --encoding=UTF8 --no-instructions >"$work/pg-initdb.log" 2>&1
"${server_cpu[@]}" "${run_pg[@]}" "$pg_bin/postgres" -D "$pg_data" -p "$pg_port" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories="$work/pg" \
    -c max_connections=200 >"$work/pg/out.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
    "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 0.1
done
"$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE wbauth" postgres

export WBAUTH_ADMIN_TOKEN=bench-admin-token-0123456789abcdef
export WBAUTH_MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

# serve_gateway NAME NONCES [STORE_TOML] [LISTEN_TOML]: starts `wbauth serve`, provisions
# KEYS keys, runs the bench (with the arguments in bench_more). STORE_TOML: more lines of the
# [store] section; LISTEN_TOML: of [listen].
bench_more=()
serve_gateway() {
    local name=$1 nonces=$2 store_more=${3:-} listen_more=${4:-}
    local dir="$work/$name"
    mkdir -p "$dir"
    gateway_toml "$dir/data" "http://$echo_addr" "$listen_more" "nonces = \"$nonces\"
$store_more" >"$dir/gateway.toml"
    "${server_cpu[@]}" "$wbauth" serve --config "$dir/gateway.toml" >"$dir/out.log" 2>"$dir/err.log" &
    local pid=$!
    pids+=("$pid")
    local url admin
    url=$(wait_line "$dir/out.log" listening)
    admin=$(wait_line "$dir/out.log" admin)
    provision_keys "$wbauth" "$admin" bench "$keys" "$dir/keys.csv"
    # A short unmeasured run first: the upstream connections, the store's pool and
    # PostgreSQL's backends exist before the processes to watch are listed.
    "${client_cpu[@]}" "$wbauth" bench "$url$PATH_BALANCE" --keys "$dir/keys.csv" --mode window \
        --connections "$connections" --duration 1s --warmup 0s --quiet --json "${bench_more[@]}" \
        >/dev/null
    watch=(--watch "gateway=$pid" --watch "echo=$echo_pid")
    case "$nonces" in
        redis://*) watch+=(--watch "redis=$redis_pid") ;;
        postgres://*)
            local postmaster
            postmaster=$(head -1 "$pg_data/postmaster.pid")
            watch+=(--watch "postgres=$postmaster")
            for backend in $(children "$postmaster"); do watch+=(--watch "postgres=$backend"); done
            ;;
    esac
    bench "$name" "$url$PATH_BALANCE" --keys "$dir/keys.csv" --mode window "${bench_more[@]}"
    echo "$pid" >"$dir/pid"
}

if wanted gateway-embedded; then
    serve_gateway gateway-embedded embedded
    kill "$(cat "$work/gateway-embedded/pid")"
fi
if wanted gateway-redis; then
    serve_gateway gateway-redis "redis://127.0.0.1:$redis_port/0"
    kill "$(cat "$work/gateway-redis/pid")"
fi
if wanted gateway-postgres; then
    serve_gateway gateway-postgres "postgres://postgres@127.0.0.1:$pg_port/wbauth"
    kill "$(cat "$work/gateway-postgres/pid")"
fi
if wanted gateway-redis-wait1; then
    # A replica of the Redis above; every nonce waits until it holds it (WAIT 1).
    replica_port=$(free_port)
    mkdir -p "$work/redis-replica"
    "${server_cpu[@]}" redis-server --port "$replica_port" --bind 127.0.0.1 \
        --dir "$work/redis-replica" --appendonly yes --appendfsync always --save "" \
        --daemonize no --replicaof 127.0.0.1 "$redis_port" >"$work/redis-replica/out.log" 2>&1 &
    pids+=($!)
    wait_port "$replica_port"
    for _ in $(seq 1 600); do
        redis-cli -p "$redis_port" INFO replication | grep -q '^connected_slaves:1' && break
        sleep 0.1
    done
    serve_gateway gateway-redis-wait1 "redis://127.0.0.1:$redis_port/1" "nonce_replicas_ack = 1"
    kill "$(cat "$work/gateway-redis-wait1/pid")"
fi
if wanted gateway-postgres-sync; then
    # A standby of the PostgreSQL above, made synchronous (synchronous_commit = on).
    standby_port=$(free_port)
    mkdir -p "$work/pg-standby"
    [ "$(id -u)" -ne 0 ] || chown wbauth-pg "$work/pg-standby"
    chmod 700 "$work/pg-standby"
    "${run_pg[@]}" "$pg_bin/pg_basebackup" -D "$work/pg-standby/data" -X stream -R -c fast \
        -d "host=127.0.0.1 port=$pg_port user=postgres application_name=standby1" \
        >"$work/pg-basebackup.log" 2>&1
    "${server_cpu[@]}" "${run_pg[@]}" "$pg_bin/postgres" -D "$work/pg-standby/data" \
        -p "$standby_port" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$work/pg-standby" -c max_connections=200 \
        >"$work/pg-standby/out.log" 2>&1 &
    pids+=($!)
    psql_primary=("$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -At)
    "${psql_primary[@]}" -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)'" postgres
    "${psql_primary[@]}" -c "SELECT pg_reload_conf()" postgres >/dev/null
    for _ in $(seq 1 600); do
        [ "$("${psql_primary[@]}" -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'" postgres)" = 1 ] && break
        sleep 0.1
    done
    "${psql_primary[@]}" -c "CREATE DATABASE wbauth_sync" postgres
    serve_gateway gateway-postgres-sync "postgres://postgres@127.0.0.1:$pg_port/wbauth_sync" \
        "require_sync_standby = true"
    kill "$(cat "$work/gateway-postgres-sync/pid")"
fi

# ---------------------------------------------------------------------------------------------
# 5. TLS: nginx terminating TLS, and the gateway's own, with the same certificate
# ---------------------------------------------------------------------------------------------
if wanted nginx-tls || wanted gateway-tls; then
    "$root/dist/make-test-ca.sh" "$work/pki" >/dev/null
    # The generator trusts the run's CA (`wbauth bench --cacert`, read from the environment).
    export WBAUTH_CACERT="$work/pki/ca.pem"
fi
if wanted nginx-tls; then
    nginx_tls_port=$(free_port)
    mkdir -p "$work/nginx-tls"
    nginx_proxy "$work/nginx-tls" "127.0.0.1:$nginx_tls_port ssl" "\
        ssl_certificate $work/pki/cert.pem;
        ssl_certificate_key $work/pki/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;" >"$work/nginx-tls/nginx.conf"
    bench_nginx nginx-tls "$nginx_tls_port" "https://127.0.0.1:$nginx_tls_port$PATH_BALANCE" \
        --plain --http1
fi
if wanted gateway-tls; then
    bench_more=(--http1)
    serve_gateway gateway-tls embedded "" \
        "tls = { cert = \"$work/pki/cert.pem\", key = \"$work/pki/key.pem\" }"
    kill "$(cat "$work/gateway-tls/pid")"
    bench_more=()
fi

# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------
memory_lines=""
if [ -n "$only" ] && ! wanted memory; then
    BENCH_SKIP_MEMORY=1
fi
if [ -z "${BENCH_SKIP_MEMORY:-}" ]; then
    echo "==> memory: a gateway holding 100,000 keys"
    "${server_cpu[@]}" "$wbauth" sandbox --listen 127.0.0.1:0 --extra-keys 99999 \
        --keys-out "$work/mem-keys.csv" >"$work/mem.out" 2>&1 &
    mem_pid=$!
    pids+=("$mem_pid")
    mem_url=$(wait_line "$work/mem.out" listening)
    rss_idle=$(rss_mb "$mem_pid")
    head -n "$((keys + 1))" "$work/mem-keys.csv" >"$work/mem-load-keys.csv"
    echo "==> memory: two full-rate window-mode runs of $memory_run"
    "${client_cpu[@]}" "$wbauth" bench "$mem_url$PATH_BALANCE" --keys "$work/mem-load-keys.csv" \
        --connections "$connections" --duration "$memory_run" --quiet --json >"$work/mem1.json"
    rss_first=$(rss_mb "$mem_pid")
    "${client_cpu[@]}" "$wbauth" bench "$mem_url$PATH_BALANCE" --keys "$work/mem-load-keys.csv" \
        --connections "$connections" --duration "$memory_run" --quiet --json >"$work/mem2.json"
    rss_second=$(rss_mb "$mem_pid")
    kill "$mem_pid"
    memory_lines="100000 keys, idle: ${rss_idle} MB RSS (target <= 150 MB)
after a first ${memory_run} full-rate window run: ${rss_first} MB RSS
after a second ${memory_run} full-rate window run: ${rss_second} MB RSS"
fi

# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------
echo
echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $pinning"
echo "Load: $connections keep-alive connections, $duration per run (after a 2 s warm-up), $keys keys, window mode"
python3 - "$results" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["name"]] = r
baseline = {
    "limit": None,
    "builtin": "limit",
    "nginx": "limit",
    "njs": "nginx",
    "gateway-embedded": "nginx",
    "gateway-redis": "gateway-embedded",
    "gateway-postgres": "gateway-embedded",
    "gateway-redis-wait1": "gateway-redis",
    "gateway-postgres-sync": "gateway-postgres",
    "nginx-tls": "nginx",
    "gateway-tls": "nginx-tls",
}
what = {
    "limit": "echo server directly (the limit)",
    "builtin": "gateway answering by itself",
    "nginx": "nginx reverse proxy, no auth",
    "njs": "nginx + njs verifying, -> echo",
    "gateway-embedded": "gateway -> echo, embedded store",
    "gateway-redis": "gateway -> echo, Redis store",
    "gateway-postgres": "gateway -> echo, PostgreSQL store",
    "gateway-redis-wait1": "gateway -> echo, Redis + 1 replica, WAIT 1",
    "gateway-postgres-sync": "gateway -> echo, PostgreSQL + synchronous standby",
    "nginx-tls": "nginx terminating TLS, no auth",
    "gateway-tls": "gateway with TLS -> echo, embedded store",
}
print("| run | req/s | p50 ms | p99 ms | non-2xx | ratio (req/s) | p99 vs baseline | generator CPU |")
print("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
for name, base in baseline.items():
    r = rows.get(name)
    if r is None:
        continue
    rps = r["rps"]
    p50 = r["latency_us"]["p50"] / 1000
    p99 = r["latency_us"]["p99"] / 1000
    non2xx = sum(v for k, v in r["status"].items() if not k.startswith("2")) + r.get("transport_errors", 0)
    ratio = delta = "—"
    if base and base in rows:
        b = rows[base]
        ratio = "%.2f × %s" % (rps / b["rps"], base)
        delta = "%+.2f ms" % (p99 - b["latency_us"]["p99"] / 1000)
    cpu = "%.0f %%%s" % (100 * r["cpu"]["fraction"], "" if r.get("valid", True) else " INVALID")
    print("| %s | %.0f | %.2f | %.2f | %d | %s | %s | %s |" % (what[name], rps, p50, p99, non2xx, ratio, delta, cpu))

# CPU per answered request of each server process (all threads; /proc/PID/stat over the
# measured phase).
procs = ["echo", "nginx", "gateway", "redis", "postgres"]
def per(r, proc):
    s = r.get("servers", {}).get(proc)
    return None if s is None else s.get("cpu_us_per_request")
print()
print("CPU time per answered request, per server process (µs; user + system, all threads):")
print()
print("| run | " + " | ".join(procs) + " | all servers |")
print("| --- |" + " ---: |" * (len(procs) + 1))
for name in baseline:
    r = rows.get(name)
    if r is None:
        continue
    cells, total = [], 0.0
    for proc in procs:
        v = per(r, proc)
        cells.append("—" if v is None else "%.1f" % v)
        total += v or 0.0
    print("| %s | %s | %.1f |" % (what[name], " | ".join(cells), total))

def check(label, ok, detail):
    print("- %s: %s (%s)" % (label, "met" if ok else "MISSED", detail))
print()
print("Targets:")
g, n, j = rows.get("gateway-embedded"), rows.get("nginx"), rows.get("njs")
b, e = rows.get("builtin"), rows.get("limit")
if g and n:
    check("gateway->echo >= 0.8 x nginx req/s", g["rps"] >= 0.8 * n["rps"], "%.2f x" % (g["rps"] / n["rps"]))
    dp99 = (g["latency_us"]["p99"] - n["latency_us"]["p99"]) / 1000
    check("p99 within 1 ms of nginx's", dp99 <= 1.0, "%+.2f ms" % dp99)
    gc, nc = per(g, "gateway"), per(n, "nginx")
    if gc is not None and nc is not None:
        check("gateway CPU per proxied request <= nginx's + 4 us", gc <= nc + 4, "%.1f vs %.1f us" % (gc, nc))
if b and e:
    bc, ec = per(b, "gateway"), per(e, "echo")
    if bc is not None and ec is not None:
        check("answering by itself <= echo server's + 4 us", bc <= ec + 4, "%.1f vs %.1f us" % (bc, ec))
if g and j:
    check("gateway->echo >= 4 x nginx+njs req/s", g["rps"] >= 4 * j["rps"], "%.2f x" % (g["rps"] / j["rps"]))
gt, nt = rows.get("gateway-tls"), rows.get("nginx-tls")
if gt and nt:
    check("gateway with TLS >= 0.8 x nginx with TLS req/s", gt["rps"] >= 0.8 * nt["rps"], "%.2f x" % (gt["rps"] / nt["rps"]))
PY
if [ -n "$memory_lines" ]; then
    echo
    echo "$memory_lines"
fi
