#!/usr/bin/env bash
# Runs every quick-start example against a fresh `wbauth sandbox` on a free loopback port.
# Each example must print both 200 answers (balance, JWT) with the demo key, and with a wrong
# secret exit non-zero printing the exact error messages of both endpoints.
# Installs missing toolchains with apt-get; compiled examples build under target/examples (the
# Rust ones in the workspace's target dir, reusing its compiled dependencies).
# Usage: examples/run.sh [python node go php ruby java shell csharp kotlin kotlin-maven cpp rust rust-bytes]
set -euo pipefail
cd "$(dirname "$0")/.."

all=(python node go php ruby java shell csharp kotlin kotlin-maven cpp rust rust-bytes)
if [ "$#" -gt 0 ]; then selected=("$@"); else selected=("${all[@]}"); fi
# kotlin-maven is examples/kotlin/Example.kt again, built by Maven from examples/kotlin/pom.xml.
declare -A file=(
    [python]=examples/python/example.py [node]=examples/node/example.mjs
    [go]=examples/go/example.go [php]=examples/php/example.php [ruby]=examples/ruby/example.rb
    [java]=examples/java/Example.java [shell]=examples/shell/example.sh
    [csharp]=examples/csharp/Example.cs [kotlin]=examples/kotlin/Example.kt
    [kotlin-maven]=examples/kotlin/Example.kt [cpp]=examples/cpp/example.cpp
    [rust]=examples/rust/client/src/main.rs [rust-bytes]=examples/rust/bytes/src/main.rs
)
# Build outputs (gitignored). The Kotlin jar is named after its source's hash: kotlinc takes
# seconds, so an unchanged Example.kt is not compiled again.
build=target/examples
kotlin_jar=$build/kotlin/example-$(sha256sum "${file[kotlin]}" | cut -c1-16).jar
rust_target=${CARGO_TARGET_DIR:-target}
declare -A cmd=(
    [python]="python3 ${file[python]}" [node]="node ${file[node]}" [go]="go run ${file[go]}"
    [php]="php ${file[php]}" [ruby]="ruby ${file[ruby]}" [java]="java ${file[java]}"
    [shell]="bash ${file[shell]}" [csharp]="mono $build/csharp/Example.exe"
    [kotlin]="java -jar $kotlin_jar" [cpp]="$build/cpp/example"
    [rust]="$rust_target/debug/client-example" [rust-bytes]="$rust_target/debug/bytes-example"
    # [kotlin-maven]: set once the toolchains are in place (it names Debian's plugin versions).
)
# The no-library Rust example spells out what whitebit-client does for you: it may take 80.
declare -A max_lines=([rust-bytes]=80)
for lang in "${selected[@]}"; do
    [ -n "${file[$lang]:-}" ] || { echo "unknown example '$lang' (known: ${all[*]})" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------------
# The shape every example keeps: under 60 lines, a three-line header (Requires/Run/Shows).
# ---------------------------------------------------------------------------------------------
for lang in "${selected[@]}"; do
    f=${file[$lang]}
    lines=$(wc -l <"$f")
    limit=${max_lines[$lang]:-60}
    [ "$lines" -lt "$limit" ] || { echo "$f: $lines lines (must stay under $limit)" >&2; exit 1; }
    header=$(grep -v -e '^#!' -e '^<?php' "$f" | head -3 | sed -E 's@^(//|#) ?@@' | cut -d: -f1 | tr '\n' ' ')
    [ "$header" = "Requires Run Shows " ] || { echo "$f: no Requires/Run/Shows header" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------
# Toolchains: install what is missing (Debian 12 package names).
# ---------------------------------------------------------------------------------------------
want() { [[ " ${selected[*]} " == *" $1 "* ]]; }
pkgs=()
command -v curl >/dev/null 2>&1 || pkgs+=(curl)
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
if want python; then
    if ! command -v python3 >/dev/null 2>&1; then
        pkgs+=(python3 python3-requests)
    elif ! python3 -c 'import requests' 2>/dev/null && [ "$(command -v python3)" = /usr/bin/python3 ]; then
        pkgs+=(python3-requests)
    fi
fi
if want node && ! node -e 'process.exit(typeof fetch === "function" ? 0 : 1)' 2>/dev/null; then
    pkgs+=(nodejs)
fi
if want go && ! command -v go >/dev/null 2>&1; then pkgs+=(golang-go); fi
if want php; then
    command -v php >/dev/null 2>&1 || pkgs+=(php-cli)
    php -r 'exit(function_exists("curl_init") ? 0 : 1);' 2>/dev/null || pkgs+=(php-curl)
fi
if want ruby && ! command -v ruby >/dev/null 2>&1; then pkgs+=(ruby); fi
# java.net.http, HexFormat and the single-file source launcher: a JDK 17+ with its compiler
# (Kotlin compiles against the same JDK's classes and runs on it).
if { want java || want kotlin || want kotlin-maven; } &&
    ! { java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' &&
        java --list-modules 2>/dev/null | grep -q '^jdk.compiler@'; }; then
    pkgs+=(openjdk-17-jdk-headless)
fi
# Mono's C# compiler and runtime; HttpClient's assembly is a package of its own.
if want csharp; then
    command -v mcs >/dev/null 2>&1 || pkgs+=(mono-mcs)
    command -v mono >/dev/null 2>&1 || pkgs+=(mono-runtime)
    [ -f /usr/lib/mono/4.5/System.Net.Http.dll ] || pkgs+=(libmono-system-net-http4.0-cil)
fi
if want kotlin && ! command -v kotlinc >/dev/null 2>&1; then pkgs+=(kotlin); fi
# Maven with the plugins from Debian's /usr/share/maven-repo: kotlin brings kotlin-maven-plugin
# and kotlin-stdlib; two of the plugin's dependencies are not among kotlin's (junit5 has the
# junit-bom its descriptors import, libkotlinx-coroutines-java kotlinx-coroutines-core).
maven_repo=/usr/share/maven-repo
if want kotlin-maven; then
    command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
    [ -d "$maven_repo/org/jetbrains/kotlin/kotlin-maven-plugin" ] || pkgs+=(kotlin)
    [ -d "$maven_repo/org/junit/junit-bom" ] || pkgs+=(junit5)
    [ -d "$maven_repo/org/jetbrains/kotlinx/kotlinx-coroutines-core" ] || pkgs+=(libkotlinx-coroutines-java)
    [ -d "$maven_repo/org/codehaus/mojo/exec-maven-plugin" ] || pkgs+=(libexec-maven-plugin-java)
fi
if want cpp; then
    command -v g++ >/dev/null 2>&1 || pkgs+=(g++)
    has_header() { printf '#include <%s>\n' "$1" | g++ -E -x c++ - >/dev/null 2>&1; }
    has_header curl/curl.h || pkgs+=(libcurl4-openssl-dev)
    has_header openssl/hmac.h || pkgs+=(libssl-dev)
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    echo "installing: ${pkgs[*]}"
    started=$(date +%s)
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq -o DPkg::Lock::Timeout=600
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -o DPkg::Lock::Timeout=600 "${pkgs[@]}" >/dev/null
    echo "installed in $(($(date +%s) - started)) s"
fi
# A python3 that is not Debian's (pyenv, a venv, ...) gets requests from PyPI.
if want python && ! python3 -c 'import requests' 2>/dev/null; then
    python3 -m pip install --quiet requests
fi
# `go run` builds with the standard library only: never fetch a toolchain or a module.
export GOTOOLCHAIN=local GOPROXY=off
# The newest kotlin-maven-plugin and exec-maven-plugin Debian ships (pom.xml names Maven Central's).
newest() { find "$1" -mindepth 1 -maxdepth 1 -type d ! -name debian -printf '%f\n' | sort -V | tail -1; }
if want kotlin-maven; then
    mvn_args=(-q -B -f "$build/kotlin-maven/pom.xml" -s "$build/kotlin-maven/settings.xml"
        "-Dkotlin.version=$(newest "$maven_repo/org/jetbrains/kotlin/kotlin-maven-plugin")"
        "-Dexec-maven-plugin.version=$(newest "$maven_repo/org/codehaus/mojo/exec-maven-plugin")")
    cmd[kotlin-maven]="mvn ${mvn_args[*]} exec:exec"
    # Debian's Maven 3.8 writes an ANSI reset (ESC[0m) before the program's first line, even
    # with -q -B; this keeps the lines as the program printed them.
    export MAVEN_OPTS="${MAVEN_OPTS:+$MAVEN_OPTS }-Djansi.noreset=true"
fi
# The Rust examples build into the workspace's target dir with test.sh's debug setting, so the
# dependencies test.sh compiled (reqwest, rustls, aws-lc-sys, ...) are reused where features match.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

# ---------------------------------------------------------------------------------------------
# The sandbox, with a demo key and secret picked here.
# ---------------------------------------------------------------------------------------------
if [ -n "${WBAUTH_BIN:-}" ]; then
    bin=$WBAUTH_BIN
else
    # Reuses test.sh's debug build; honours CARGO_TARGET_DIR (cargo reports the path it built).
    bin=$(cargo build -p wbauth --locked --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\/wbauth\)".*/\1/p' | tail -1)
fi
[ -x "$bin" ] || { echo "no wbauth binary (got '$bin')" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wbauth-examples-XXXXXX")
# `go run` caches its builds under $HOME; without a home, in the work dir.
if want go && [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ]; then export GOCACHE=$work/go-cache; fi
sandbox_pid=
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$sandbox_pid" ]; then
        kill "$sandbox_pid" 2>/dev/null || true # SIGTERM: it stops and removes its data dir
        for _ in $(seq 100); do kill -0 "$sandbox_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

key=demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
"$bin" sandbox --listen 127.0.0.1:0 --demo-key "$key" --demo-secret "$secret" \
    >"$work/sandbox.out" 2>"$work/sandbox.log" &
sandbox_pid=$!
base=
for _ in $(seq 600); do # bounded wait (60 s) for the `listening=` line
    base=$(sed -n 's/^listening=//p' "$work/sandbox.out")
    [ -n "$base" ] && break
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then
        echo "wbauth sandbox exited before listening:" >&2
        cat "$work/sandbox.log" >&2
        exit 1
    fi
    sleep 0.1
done
[ -n "$base" ] || { echo "wbauth sandbox printed no listening= line within 60 s" >&2; exit 1; }
echo "sandbox: $base ($bin)"

# ---------------------------------------------------------------------------------------------
# Every example: one run with the right secret, one with a wrong one.
# ---------------------------------------------------------------------------------------------
balance='{"BTC":{"available":"0.5","freeze":"0"},"USDT":{"available":"1000","freeze":"0"}}'
jwt_ok='^POST /api/v4/jwt 200 \{"data":\{"token":"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+","expires_at":[0-9]+\}\}$'
# With a wrong secret: the exact bodies of docs/errors.md (row 12 and the JWT endpoint's 401).
balance_denied='POST /api/v4/trade-account/balance 401 {"code":10,"message":"Unauthorized request."}'
jwt_denied='POST /api/v4/jwt 401 {"code":0,"message":"Invalid API key, signature, or nonce"}'

# build_example LANG: compiles what LANG needs before its runs (output in $work/LANG/build.log).
build_example() {
    case $1 in
    csharp)
        mkdir -p "$build/csharp"
        mcs -r:System.Net.Http -out:"$build/csharp/Example.exe" "${file[csharp]}"
        ;;
    kotlin)
        [ ! -f "$kotlin_jar" ] || return 0
        mkdir -p "$build/kotlin"
        rm -f "$build"/kotlin/*.jar
        kotlinc "${file[kotlin]}" -include-runtime -d "$build/kotlin/partial.jar"
        mv "$build/kotlin/partial.jar" "$kotlin_jar"
        ;;
    kotlin-maven)
        # A copy of pom.xml and Example.kt (Maven's own target/ stays out of examples/), and
        # Maven's local repository in the work dir, filled from Debian's: nothing is downloaded.
        mkdir -p "$build/kotlin-maven"
        cp examples/kotlin/pom.xml "${file[kotlin-maven]}" "$build/kotlin-maven/"
        printf '<settings><localRepository>%s</localRepository><mirrors><mirror><id>debian</id>%s%s</mirror></mirrors></settings>\n' \
            "$work/m2" '<mirrorOf>*</mirrorOf>' "<url>file://$maven_repo</url>" >"$build/kotlin-maven/settings.xml"
        mvn "${mvn_args[@]}" compile
        ;;
    cpp)
        mkdir -p "$build/cpp"
        g++ -std=c++17 -Wall -Wextra -Werror "${file[cpp]}" -o "$build/cpp/example" -lcurl -lcrypto
        ;;
    rust | rust-bytes)
        # Both at once (the second call finds them built): building one with -p would resolve
        # the shared dependencies' features differently and compile them twice.
        cargo build --locked --manifest-path examples/rust/Cargo.toml --target-dir "$rust_target"
        ;;
    esac
}

# run_example DIR SECRET CMD...: runs one example in its own TMPDIR (the shell and PHP examples
# keep their last nonce there), bounded by a timeout; leaves out, err and rc in DIR.
run_example() {
    local dir=$1 use_secret=$2 rc=0
    shift 2
    mkdir -p "$dir/tmp"
    env TMPDIR="$dir/tmp" WBAUTH_API_KEY="$key" WBAUTH_API_SECRET="$use_secret" \
        WBAUTH_BASE_URL="$base" timeout 300 "$@" >"$dir/out" 2>"$dir/err" </dev/null || rc=$?
    echo "$rc" >"$dir/rc"
}

passed=0
failed=0
for lang in "${selected[@]}"; do
    started=$(date +%s%N)
    mkdir -p "$work/$lang"
    if ! build_example "$lang" >"$work/$lang/build.log" 2>&1; then
        failed=$((failed + 1))
        printf '%-12s %-32s FAIL  (build failed) %6d ms\n' "$lang" "${file[$lang]}" \
            "$((($(date +%s%N) - started) / 1000000))"
        sed 's/^/    build| /' "$work/$lang/build.log"
        continue
    fi
    built=$(($(date +%s%N) - started))
    read -r -a argv <<<"${cmd[$lang]}"
    run_example "$work/$lang/ok" "$secret" "${argv[@]}"
    run_example "$work/$lang/bad" "wrong-$secret" "${argv[@]}"
    problems=()
    ok=$work/$lang/ok bad=$work/$lang/bad
    [ "$(cat "$ok/rc")" = 0 ] || problems+=("exit $(cat "$ok/rc") with the right secret")
    grep -qxF "POST /api/v4/trade-account/balance 200 $balance" "$ok/out" || problems+=("no balance 200")
    grep -qxE "$jwt_ok" "$ok/out" || problems+=("no JWT 200 with a token")
    [ "$(cat "$bad/rc")" != 0 ] || problems+=("exit 0 with a wrong secret")
    grep -qxF "$balance_denied" "$bad/err" || problems+=("no 'Unauthorized request.'")
    grep -qxF "$jwt_denied" "$bad/err" || problems+=("no 'Invalid API key, signature, or nonce'")
    ms=$((($(date +%s%N) - started) / 1000000))
    built_note= # of which building (the compiled languages; go and java compile as they run)
    case $lang in csharp | kotlin* | cpp | rust*) built_note=" (build $((built / 1000000)) ms)" ;; esac
    if [ "${#problems[@]}" -eq 0 ]; then
        passed=$((passed + 1))
        printf '%-12s %-32s ok    (200 balance + 200 jwt; wrong secret: both 401s, exit %s) %6d ms%s\n' \
            "$lang" "${file[$lang]}" "$(cat "$bad/rc")" "$ms" "$built_note"
    else
        failed=$((failed + 1))
        printf '%-12s %-32s FAIL  (%s) %6d ms%s\n' "$lang" "${file[$lang]}" \
            "$(printf '%s; ' "${problems[@]}" | sed 's/; $//')" "$ms" "$built_note"
        for run in ok bad; do
            for stream in out err; do
                sed "s/^/    $run.$stream| /" "$work/$lang/$run/$stream"
            done
        done
    fi
done

# Concurrency: shell and PHP processes started together share one nonce file (flock), so every
# call must still get its 200; a repeated nonce would answer 429 "Too many requests.".
if want shell || want php; then
    dir=$work/concurrent
    mkdir -p "$dir/tmp"
    started=$(date +%s%N)
    pids=()
    for i in 1 2 3 4; do
        for lang in shell php; do
            want "$lang" || continue
            read -r -a argv <<<"${cmd[$lang]}"
            env TMPDIR="$dir/tmp" WBAUTH_API_KEY="$key" WBAUTH_API_SECRET="$secret" \
                WBAUTH_BASE_URL="$base" timeout 300 "${argv[@]}" >"$dir/$lang.$i" 2>&1 </dev/null &
            pids+=("$!")
        done
    done
    exits=0
    for pid in "${pids[@]}"; do wait "$pid" || exits=$((exits + 1)); done
    n=${#pids[@]}
    pids=()
    calls=$(cat "$dir"/*.[0-9] | grep -c '^POST /api/v4/[a-z/-]* 200 ' || true)
    ms=$((($(date +%s%N) - started) / 1000000))
    label="$n processes at once, one nonce file"
    if [ "$exits" -eq 0 ] && [ "$calls" -eq $((2 * n)) ]; then
        passed=$((passed + 1))
        printf '%-12s %-32s ok    (%s: %s/%s calls 200) %6d ms\n' concur "shell+php" "$label" "$calls" \
            "$((2 * n))" "$ms"
    else
        failed=$((failed + 1))
        printf '%-12s %-32s FAIL  (%s: %s/%s calls 200, %s non-zero exits) %6d ms\n' concur "shell+php" \
            "$label" "$calls" "$((2 * n))" "$exits" "$ms"
        cat "$dir"/*.[0-9] | grep -v ' 200 ' | sed 's/^/    | /'
    fi
fi
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
