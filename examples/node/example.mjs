// Requires: Node.js 18+ (built-in fetch and crypto; no npm packages).
// Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 node example.mjs
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
import { createHmac } from "node:crypto";

// Unix ms, max(now_ms, last + 1). JavaScript runs this function to completion on one thread,
// so concurrent async calls (Promise.all) still get distinct nonces without a lock.
let lastNonce = 0;
function nextNonce() {
  lastNonce = Math.max(Date.now(), lastNonce + 1);
  return lastNonce;
}

async function call(baseUrl, key, secret, path) {
  // Build the body once; sign and send exactly this string.
  const body = JSON.stringify({ request: path, nonce: nextNonce(), nonceWindow: true });
  const payload = Buffer.from(body, "utf8").toString("base64");
  const signature = createHmac("sha512", secret).update(payload).digest("hex");
  let res, text;
  try {
    res = await fetch(baseUrl.replace(/\/+$/, "") + path, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-TXC-APIKEY": key,
        "X-TXC-PAYLOAD": payload,
        "X-TXC-SIGNATURE": signature,
      },
      body,
    });
    text = await res.text();
  } catch (err) {
    console.error(`POST ${path} failed: ${err.cause?.message ?? err.message}`);
    return false;
  }
  if (res.status === 200) {
    console.log(`POST ${path} 200 ${text}`);
    return true;
  }
  // The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
  console.error(`POST ${path} ${res.status} ${text}`);
  return false;
}

const { WBAUTH_API_KEY: key, WBAUTH_API_SECRET: secret } = process.env;
if (!key || !secret) {
  console.error("set WBAUTH_API_KEY and WBAUTH_API_SECRET");
  process.exit(1);
}
const baseUrl = process.env.WBAUTH_BASE_URL || "https://whitebit.com";
let ok = true;
for (const path of ["/api/v4/trade-account/balance", "/api/v4/jwt"]) {
  ok = (await call(baseUrl, key, secret, path)) && ok;
}
process.exit(ok ? 0 : 1);
