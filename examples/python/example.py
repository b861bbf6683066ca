# Requires: Python 3.8+ with requests (Debian: apt install python3-requests; else pip install requests).
# Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 python3 example.py
# Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time

import requests  # third-party; everything else is the standard library

_nonce_lock, _last_nonce = threading.Lock(), 0


def next_nonce():  # Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond
    global _last_nonce
    with _nonce_lock:
        _last_nonce = max(time.time_ns() // 1_000_000, _last_nonce + 1)
        return _last_nonce


def call(base_url, key, secret, path):
    # Build the body once; sign and send exactly these bytes.
    body = json.dumps({"request": path, "nonce": next_nonce(), "nonceWindow": True},
                      separators=(",", ":")).encode()
    payload = base64.b64encode(body).decode()
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()
    headers = {"Content-Type": "application/json", "X-TXC-APIKEY": key,
               "X-TXC-PAYLOAD": payload, "X-TXC-SIGNATURE": signature}
    try:  # data=bytes is sent as is (json= would re-serialise)
        resp = requests.post(base_url.rstrip("/") + path, data=body, headers=headers, timeout=10)
    except requests.RequestException as e:
        print(f"POST {path} failed: {e}", file=sys.stderr)
        return False
    if resp.status_code == 200:
        print(f"POST {path} 200 {resp.text}")
        return True
    # The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
    print(f"POST {path} {resp.status_code} {resp.text}", file=sys.stderr)
    return False


def main():
    key, secret = os.environ.get("WBAUTH_API_KEY"), os.environ.get("WBAUTH_API_SECRET")
    if not key or not secret:
        sys.exit("set WBAUTH_API_KEY and WBAUTH_API_SECRET")
    base_url = os.environ.get("WBAUTH_BASE_URL", "https://whitebit.com")
    results = [call(base_url, key, secret, p) for p in ("/api/v4/trade-account/balance", "/api/v4/jwt")]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
