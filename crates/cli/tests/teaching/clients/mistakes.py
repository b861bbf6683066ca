"""Common signing mistakes, made with python-requests (and http.client for a header sent
twice) against a running `wbauth sandbox`. Prints one JSON line per case: the case name is the
finding code the sandbox should answer with in X-Sandbox-Diagnosis ("ok" and "legacy-sdk" aside).

Environment: SANDBOX (base URL), KEY, SECRET; ONLY=name runs one case.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import time
import urllib.parse

import requests

BASE, KEY, SECRET = os.environ["SANDBOX"], os.environ["KEY"], os.environ["SECRET"].encode()
PATH = "/api/v4/trade-account/balance"
ONLY = os.environ.get("ONLY")


def now_ms():
    return int(time.time() * 1000)


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def b64(data):
    return base64.b64encode(data).decode()


def sign(text):
    return hmac.new(SECRET, text.encode(), hashlib.sha512).hexdigest()


def report(case, status, headers, body):
    print(json.dumps({
        "case": case,
        "status": status,
        "body": body,
        "diagnosis": headers.get("X-Sandbox-Diagnosis"),
        "hint": headers.get("X-Sandbox-Hint"),
    }), flush=True)


def send(case, body, payload, signature, key=KEY, extra=None, path=PATH):
    if ONLY and ONLY != case:
        return
    headers = {
        "Content-Type": "application/json",
        "X-TXC-APIKEY": key,
        "X-TXC-PAYLOAD": payload,
        "X-TXC-SIGNATURE": signature,
    }
    headers.update(extra or {})
    r = requests.post(BASE + path, data=body, headers=headers, timeout=30)
    report(case, r.status_code, r.headers, r.text)


def signed(case, obj, **kw):
    body = compact(obj)
    payload = b64(body)
    send(case, body, payload, sign(payload), **kw)


first = now_ms()
signed("ok", {"request": PATH, "nonce": first})

body = compact({"request": PATH, "nonce": first + 1})
send("signature-over-body", body, b64(body), sign(body.decode()))

n = first + 2
while True:
    body = compact({"request": PATH, "nonce": n, "note": "??>>"})
    if any(c in b64(body) for c in "+/"):
        break
    n += 1
url_safe = base64.urlsafe_b64encode(body).decode()
send("payload-url-safe-base64", body, url_safe, sign(url_safe))

body = compact({"request": PATH, "nonce": first + 3})
send("signature-base64", body, b64(body),
     base64.b64encode(hmac.new(SECRET, b64(body).encode(), hashlib.sha512).digest()).decode())

signed("request-path-mismatch", {"request": "/api/v4/main-account/balance", "nonce": first + 4})
signed("key-unknown", {"request": PATH, "nonce": first + 5}, key="my-production-key")
signed("content-type-not-json", {"request": PATH, "nonce": first + 6},
       extra={"Content-Type": "application/x-www-form-urlencoded"})
# Seconds instead of milliseconds, behind the nonce accepted above.
signed("nonce-not-increasing", {"request": PATH, "nonce": int(time.time())})
signed("nonce-outside-window", {"request": PATH, "nonce": now_ms() - 10_000, "nonceWindow": True})

# The legacy official SDK: the payload over compact JSON, the body re-serialised with spaces.
obj = {"request": PATH, "nonce": now_ms() + 50}
payload = b64(compact(obj))
send("legacy-sdk", json.dumps(obj).encode(), payload, sign(payload))

# A header sent twice (http.client sends both).
if not ONLY or ONLY == "header-repeated":
    body = compact({"request": PATH, "nonce": first + 7})
    payload = b64(body)
    url = urllib.parse.urlsplit(BASE)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("POST", PATH)
    for name, value in [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-TXC-APIKEY", KEY),
        ("X-TXC-PAYLOAD", payload),
        ("X-TXC-SIGNATURE", sign(payload)),
        ("X-TXC-SIGNATURE", sign(payload)),
    ]:
        conn.putheader(name, value)
    conn.endheaders(body)
    r = conn.getresponse()
    report("header-repeated", r.status, r.headers, r.read().decode())
