# Shared by bench/run.sh and bench/soak.sh (sourced, not run).

# wait_line FILE KEY: the value of the first KEY=… line of FILE (bounded wait, 60 s).
wait_line() {
    local file=$1 key=$2
    for _ in $(seq 1 600); do
        if grep -q "^$key=" "$file" 2>/dev/null; then
            grep "^$key=" "$file" | head -1 | cut -d= -f2-
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for $key= in $file" >&2
    cat "$file" >&2
    return 1
}

# totp BASE32 OFFSET_STEPS: the TOTP code of the current step plus OFFSET_STEPS.
totp() {
    python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, struct, sys, time
secret = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
}

# provision_keys WBAUTH ADMIN_URL ACCOUNT COUNT OUT: an account with 2FA and COUNT keys of the
# `trade` kind on a running gateway, written to OUT (`public_key,secret` lines). Needs
# WBAUTH_ADMIN_TOKEN.
provision_keys() {
    local wbauth=$1 admin=$2 account=$3 count=$4 out=$5
    local auth=(-H "Authorization: Bearer $WBAUTH_ADMIN_TOKEN" -H "Content-Type: application/json")
    curl -fsS "${auth[@]}" -d "{\"name\":\"$account\"}" "$admin/admin/accounts" >/dev/null
    local secret
    secret=$(curl -fsS "${auth[@]}" -d '{}' "$admin/admin/accounts/$account/2fa/enrol" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
    # Codes are single use: confirm with the previous step's code (±1 step is accepted), then
    # create the keys with the current one.
    curl -fsS "${auth[@]}" -d "{\"code\":\"$(totp "$secret" -1)\"}" \
        "$admin/admin/accounts/$account/2fa/confirm" >/dev/null
    "$wbauth" keys create --admin-url "$admin" --account "$account" --kind trade \
        --code "$(totp "$secret" 0)" --count "$count" --out "$out" >/dev/null
}

# gateway_toml DATA_DIR UPSTREAM_URL [LISTEN_LINES] [STORE_LINES] [SECTIONS]: the configuration
# of a gateway on loopback (ports chosen by the system) proxying /api/v4 to UPSTREAM_URL, with
# one key kind `trade` for every /api/v4 path; the optional arguments add lines to [listen] and
# [store], and whole sections at the end.
gateway_toml() {
    cat <<EOF
[listen]
addr = "127.0.0.1:0"
${3:-}
[admin]
addr = "127.0.0.1:0"
[store]
data_dir = "$1"
${4:-}
[[route]]
prefix = "/api/v4"
upstream = "$2"
[[kind]]
name = "trade"
paths = ["/api/v4/*"]
${5:-}
EOF
}
