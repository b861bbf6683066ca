"""Writes the nginx + njs peer of bench/run.sh: KEYS random keys (keys.csv, `public,secret` a
line, for `wbauth bench --keys`) and verify.js, the check a user might write in njs 0.7:
the key known, X-TXC-PAYLOAD the base64 of the body, the body's `request` the path and a
nonce present, X-TXC-SIGNATURE the lowercase hex HMAC-SHA512 of the payload (WebCrypto; njs
0.7's `crypto` module has no SHA-512), then an internal redirect to the proxying location.

Usage: python3 bench/njs_peer.py KEYS DIR
"""
import json
import secrets
import sys

n, out = int(sys.argv[1]), sys.argv[2]
keys = {secrets.token_hex(16): secrets.token_hex(32) for _ in range(n)}
with open(out + "/keys.csv", "w") as f:
    for public, secret in keys.items():
        f.write("%s,%s\n" % (public, secret))

SCRIPT = r"""
function refuse(r, status, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({code: status, message: message}));
}

async function verify(r) {
    const key = r.headersIn['X-TXC-APIKEY'];
    const payload = r.headersIn['X-TXC-PAYLOAD'];
    const signature = r.headersIn['X-TXC-SIGNATURE'];
    const secret = key ? SECRETS[key] : undefined;
    if (!secret || !payload || !signature) {
        return refuse(r, 401, 'Unauthorized');
    }
    const body = r.requestText || '';
    if (Buffer.from(body).toString('base64') !== payload) {
        return refuse(r, 400, 'Payload mismatch');
    }
    let data;
    try {
        data = JSON.parse(body);
    } catch (e) {
        return refuse(r, 400, 'Invalid payload');
    }
    if (data.request !== r.uri || data.nonce === undefined) {
        return refuse(r, 400, 'Invalid payload');
    }
    const hmac = await crypto.subtle.importKey('raw', Buffer.from(secret),
        {name: 'HMAC', hash: 'SHA-512'}, false, ['sign']);
    const mac = await crypto.subtle.sign('HMAC', hmac, Buffer.from(payload));
    if (Buffer.from(mac).toString('hex') !== signature) {
        return refuse(r, 401, 'Unauthorized');
    }
    r.internalRedirect('@upstream');
}

export default {verify};
"""

with open(out + "/verify.js", "w") as f:
    f.write("const SECRETS = %s;\n" % json.dumps(keys))
    f.write(SCRIPT)
