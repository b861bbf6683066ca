// Common signing mistakes, made with Node's fetch against a running `wbauth sandbox`. Prints
// one JSON line per case: the case name is the finding code the sandbox should answer with.
// Environment: SANDBOX (base URL), KEY, SECRET.
import { createHmac } from "node:crypto";

const { SANDBOX, KEY, SECRET } = process.env;
const PATH = "/api/v4/trade-account/balance";
const sign = (text) => createHmac("sha512", SECRET).update(text).digest("hex");
const b64 = (text) => Buffer.from(text).toString("base64");

async function send(kase, body, payload, signature, { key = KEY, headers = [] } = {}) {
  const h = new Headers({
    "Content-Type": "application/json",
    "X-TXC-APIKEY": key,
    "X-TXC-PAYLOAD": payload,
    "X-TXC-SIGNATURE": signature,
  });
  for (const [name, value] of headers) h.append(name, value);
  const r = await fetch(SANDBOX + PATH, { method: "POST", headers: h, body });
  console.log(JSON.stringify({
    case: kase,
    status: r.status,
    body: await r.text(),
    diagnosis: r.headers.get("x-sandbox-diagnosis"),
    hint: r.headers.get("x-sandbox-hint"),
  }));
}

const first = Date.now();
const body = (nonce, extra = {}) => JSON.stringify({ request: PATH, nonce, ...extra });

let b = body(first);
await send("ok", b, b64(b), sign(b64(b)));

b = body(first + 1);
await send("signature-over-body", b, b64(b), sign(b));

b = body(first + 2);
await send("signature-uppercase-is-fine", b, b64(b), sign(b64(b)).toUpperCase());

let n = first + 3;
while (!/[+/]/.test(b64(body(n, { note: "??>>" })))) n++;
b = body(n, { note: "??>>" });
const urlSafe = Buffer.from(b).toString("base64url");
await send("payload-url-safe-base64", b, urlSafe, sign(urlSafe));

// A header set on the request twice: fetch joins the values with ", ".
b = body(first + 4);
await send("header-repeated", b, b64(b), sign(b64(b)), { headers: [["X-TXC-APIKEY", KEY]] });

b = body(first + 5);
await send("key-unknown", b, b64(b), sign(b64(b)), { key: "sandbox-key-from-yesterday" });

b = body(Date.now() - 10_000, { nonceWindow: true });
await send("nonce-outside-window", b, b64(b), sign(b64(b)));

b = JSON.stringify({ request: "/api/v4/trade-account/balance/", nonce: first + 6 });
await send("request-path-mismatch", b, b64(b), sign(b64(b)));
