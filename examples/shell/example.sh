#!/usr/bin/env bash
# Requires: bash, curl, openssl, flock, GNU date (Debian: apt install curl openssl util-linux).
# Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 bash example.sh
# Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
set -euo pipefail
: "${WBAUTH_API_KEY:?set WBAUTH_API_KEY}" "${WBAUTH_API_SECRET:?set WBAUTH_API_SECRET}"
base_url=${WBAUTH_BASE_URL:-https://whitebit.com}
nonce_file=${WBAUTH_NONCE_FILE:-${TMPDIR:-/tmp}/wbauth-nonce.$(id -u)}

# Unix ms, max(now_ms, last + 1). The last nonce lives in a file guarded by flock, so
# scripts running at the same time (even in the same millisecond) never share a nonce.
# shellcheck disable=SC2094 # fd 9 only holds the lock; the file is read and rewritten under it
next_nonce() (
    flock 9
    local now last
    now=$(date +%s%3N)
    last=$(cat "$nonce_file")
    local nonce=$((now > ${last:-0} ? now : ${last:-0} + 1))
    printf '%s' "$nonce" >"$nonce_file"
    printf '%s' "$nonce"
) 9>>"$nonce_file"

call() { # prints the answer; on failure prints the error message and returns non-zero
    local path=$1 body payload signature answer status
    # Build the body once; sign and send exactly these bytes (--data-binary keeps them as is).
    body="{\"request\":\"$path\",\"nonce\":$(next_nonce),\"nonceWindow\":true}"
    payload=$(printf '%s' "$body" | base64 -w0)
    # openssl takes the key on its command line: fine on your own machine, visible to other users' ps.
    signature=$(printf '%s' "$payload" | openssl dgst -sha512 -hmac "$WBAUTH_API_SECRET" -r | cut -d' ' -f1)
    if ! answer=$(curl -sS --max-time 10 -w '\n%{http_code}' "${base_url%/}$path" \
        -H 'Content-Type: application/json' -H "X-TXC-APIKEY: $WBAUTH_API_KEY" \
        -H "X-TXC-PAYLOAD: $payload" -H "X-TXC-SIGNATURE: $signature" --data-binary "$body"); then
        echo "POST $path failed (curl's message above)" >&2
        return 1
    fi
    status=${answer##*$'\n'}
    answer=${answer%$'\n'*}
    if [ "$status" = 200 ]; then
        echo "POST $path 200 $answer"
    else # the error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
        echo "POST $path $status $answer" >&2
        return 1
    fi
}

rc=0
call /api/v4/trade-account/balance || rc=1
call /api/v4/jwt || rc=1
exit "$rc"
