#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ from real inputs: the conformance vectors
(crates/protocol/tests/vectors), gateway.example.toml and the client shapes of interop.md.
Input layouts: see crates/fuzzing/src/lib.rs (a flags byte, then NUL-separated fields).
fuzz/run.sh fuzzes from these; `cargo fuzz cmin` then keeps the committed corpus small."""
import base64, hashlib, hmac, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")
VECTORS = os.path.join(ROOT, "crates", "protocol", "tests", "vectors")
T0 = 1_700_000_000_000


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def b(s):
    return s.encode() if isinstance(s, str) else s


def join(flags, *parts):
    return bytes([flags]) + b"\0".join(b(p) for p in parts)


signing = json.load(open(os.path.join(VECTORS, "signing.json")))
key, secret = signing["api_key"], signing["api_secret"]
for case in signing["cases"]:
    body = case["body"]
    path = json.loads(body).get("request", "/")
    write("request", join(0, key, case["payload"], case["signature"], path, body))
    write("request", join(3, key, "", "", path, body))
    write("request", join(7, key, "", "", path, body))
    write("request", join(0, key, case["payload"].rstrip("="), case["signature"].upper(), "/" + path, body))
# Shapes of interop.md and the error rows.
for body in [
    '{"request":"/api/v4/trade-account/balance","nonce":"1594297865000"}',
    '{"request":"/api/v4/trade-account/balance","nonce":1594297865}',
    '{"request":"/api/v4/trade-account/balance","nonce":1.5e12,"nonceWindow":"true"}',
    '{"request":"/api/v4/jwt"}',
    '{"nonce":1}',
    '{"request":"/api/v4/a","nonce":1,"request":"/api/v4/b"}',
    '{"request":"/api/v4/trade-account/../balance","nonce":18446744073709551615}',
    '[1,2,3]',
]:
    path = "/api/v4/jwt" if "jwt" in body else "/api/v4/trade-account/balance"
    write("request", join(3, key, "", "", path, body))
write("request", join(0, "", "", "", "", ""))
write("request", join(11, key, "", "", "/api/v4/x?a=b", '{"request":"/api/v4/x?a=b","nonce":2}'))

fiat = json.load(open(os.path.join(VECTORS, "fiat-jwt.json")))
for t in fiat["tokens"]:
    order = t["order"]
    body = json.dumps({"currency": order["currency"], "amount": order["amount"], "orderId": order["order_id"]})
    steps = max(0, min(63, (t["now_ms"] - T0) // 2000))
    write("jwt", join(steps << 2, "Bearer " + t["token"], t["x_auth_key"], t["url"], body))
    header, claims, _ = t["token"].split(".")
    pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    write("jwt", join((steps << 2) | 1, pad(header) + b"\x01" + pad(claims), t["x_auth_key"], t["url"], body))
body = '{"currency":"UAH","amount":"1500.00","orderId":"order-1"}'
write("jwt", join(2, "", fiat["auth_key"], "/api/v1/fiat/deposit", body))
write("jwt", join(2 | (5 << 2), "", "k", "//api/v1/fiat/../x", ""))
write("jwt", join(3, "", "demo", "", ""))
write("jwt", join(3, "Bearer eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsifQ.e30.AAAA", "demo", "", ""))

example = open(os.path.join(ROOT, "gateway.example.toml"), "rb").read()
write("config", example)
write("config", b"")
write("config", b'[verify]\nbody_match = "json"\nmax_body_bytes = 0\n')
write("config", b'[[route]]\nprefix = "/api/v4"\nupstream = "http://127.0.0.1:9000"\n\0ROUTE__0__TIMEOUT_MS=0')
write("config", b'[store]\nkeys = "postgres://u@127.0.0.1/db"\nnonces = "redis://127.0.0.1:6379"\n\0STORE__POOL_SIZE=5\0VERIFY__BODY_MATCH=json')
write("config", b'[tokens]\nlifetime_ms = 500\n[[tokens.keys]]\npem = "/x.pem"\nkid = "a b"\n')
write("config", b'[proxy]\ntrusted = ["10.0.0.0/8", "::1", "bad/99"]\nclient_ip_header = "x-forwarded-for"\n')

sign_ct = 1 | 2 | 4
for path, extra in [
    ("/api/v4/trade-account/balance", ',"nonceWindow":true'),
    ("/api/v4/main-account/balance", ""),
    ("/api/v4/order/new", ',"nonceWindow":true,"market":"BTC_USDT","amount":"0.01"'),
    ("/api/v4/jwt", ',"nonceWindow":true'),
]:
    body = '{"request":"%s","nonce":NONCE%s}' % (path, extra)
    write("service", join(sign_ct, "POST", path, "", body))
    write("service", join(1 | 4, "POST", path, "content-type: application/json; charset=utf-8", body))
write("service", join(sign_ct, "POST", "/api/v4/jwt", "", '{"nonce":NONCE}'))
write("service", join(0, "GET", "/api/v4/public/time", "", ""))
write("service", join(0, "GET", "/.well-known/jwks.json", "", ""))
write("service", join(2, "POST", "/api/v4/trade-account/balance", "x-txc-apikey: k\nx-txc-payload: e30=\nx-txc-signature: 00", "{}"))
write("service", join(1, "POST", "/api/v4/x", "content-type: text/plain", '{"request":"/api/v4/x","nonce":1}'))
write("service", join(1 | 4, "POST", "//api/v4/x?q=1", "content-length: 99999999", '{"request":"/api/v4/x?q=1","nonce":NONCE}'))
write("service", join(0, "DELETE", "/api/v4/x", "", ""))
