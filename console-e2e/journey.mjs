// The console journey in a real browser (Debian's chromium through playwright-core, no browser
// download): create an account (CLI) → set its password through the one-time link → sign in → enrol 2FA → create a trade key with one trusted
// IP → `wbauth call` through a trusted proxy from that IP is accepted, from another refused →
// disable the key → the next request is refused → sign out. Then: a form without its CSRF token
// is refused, and five wrong codes at sign-in get the answer of any failed sign-in, then a wait.
// Screenshots go to artifacts/.
//
// Environment (set by run.sh): WBAUTH_BIN (a test-clock build), CONSOLE, ADMIN, PUBLIC (the
// gateway's listeners; the console over HTTPS), ADMIN_TOKEN, T0 (the test clock's start),
// CONSOLE_SPKI (the console certificate's key hash, the one certificate the browser trusts).
import { chromium } from 'playwright-core';
import { execFile, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import assert from 'node:assert/strict';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run ./run.sh)`);
  return v;
};
const BIN = env('WBAUTH_BIN');
const CONSOLE = env('CONSOLE');
const ADMIN = env('ADMIN');
const PUBLIC = env('PUBLIC');
const TOKEN = env('ADMIN_TOKEN');
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
mkdirSync(ARTIFACTS, { recursive: true });

const PASSWORD = 'correct horse battery';
const TRUSTED_IP = '203.0.113.7';
const OTHER_IP = '198.51.100.9';
let passed = 0;
let failed = 0;

// --- the test clock and TOTP --------------------------------------------------------------------
async function clock(body) {
  const answer = await fetch(`${ADMIN}/test/clock`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  assert.equal(answer.status, 200);
  return (await answer.json()).now_ms;
}
const advance = (ms) => clock({ advance_ms: ms });

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.trim()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp(secret, nowMs, offset = 0) {
  const step = Math.floor(nowMs / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac('sha1', secret).update(counter).digest();
  const o = digest[19] & 0x0f;
  const bin = ((digest[o] & 0x7f) << 24) | (digest[o + 1] << 16) | (digest[o + 2] << 8) | digest[o + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

function wrongCode(secret, nowMs) {
  const valid = [-1, 0, 1].map((d) => totp(secret, nowMs, d));
  let n = (Number(valid[1]) + 500_000) % 1_000_000;
  while (valid.includes(String(n).padStart(6, '0'))) n = (n + 1) % 1_000_000;
  return String(n).padStart(6, '0');
}

// --- a trusted proxy (127.0.0.1 is [proxy] trusted) that names the client ---------------------
function proxy(clientIp) {
  const target = new URL(PUBLIC);
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': clientIp },
      },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Asynchronous: the proxies above run in this process, so a blocking spawn would starve them.
function call(base, key, secret, path) {
  return new Promise((resolve) => {
    execFile(
      BIN,
      ['call', '--strict', path],
      { env: { ...process.env, WBAUTH_BASE_URL: base, WBAUTH_API_KEY: key, WBAUTH_API_SECRET: secret } },
      (error, stdout, stderr) => resolve({ status: error ? error.code : 0, stdout, stderr }),
    );
  });
}

function createAccount(name) {
  const out = execFileSync(BIN, ['accounts', 'create', name, '--password-stdin', '--admin-url', ADMIN], {
    input: `${PASSWORD}\n`,
    env: { ...process.env, WBAUTH_ADMIN_TOKEN: TOKEN },
    encoding: 'utf8',
  });
  assert.match(out, new RegExp(`^Created account ${name}\\.`));
}

// `wbauth accounts create NAME` without a password: the one-time link it prints.
function createAccountWithLink(name) {
  const out = execFileSync(BIN, ['accounts', 'create', name, '--admin-url', ADMIN], {
    env: { ...process.env, WBAUTH_ADMIN_TOKEN: TOKEN },
    encoding: 'utf8',
  });
  assert.match(out, new RegExp(`^Created account ${name}\\.`));
  const link = out.split('\n').find((line) => line.startsWith(`${CONSOLE}/welcome/`));
  assert.ok(link, out);
  return link;
}

async function shot(page, name) {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

async function check(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`not ok - ${name}\n${e.stack}`);
  }
}

async function signIn(page, name, code = '') {
  await page.goto(`${CONSOLE}/signin`);
  await page.getByLabel('Account name').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  if (code) await page.getByLabel('Two-factor code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function enrol(page) {
  await page.goto(`${CONSOLE}/2fa`);
  await page.getByRole('button', { name: 'Enrol an authenticator app' }).click();
  await page.getByRole('img', { name: 'QR code of the authenticator secret' }).waitFor();
  const secret = base32Decode(await page.locator('#totp-secret').innerText());
  return secret;
}

// --- the journey --------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // The console's certificate, from the run's throw-away CA (run.sh), and no other.
    `--ignore-certificate-errors-spki-list=${env('CONSOLE_SPKI')}`,
  ],
});

try {
  await check('journey: account → one-time link → sign in → 2FA → trade key → call → disable → sign out', async () => {
    let now = await clock({ set_ms: Number(env('T0')) });
    const link = createAccountWithLink('alice');
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('New password, again').fill(PASSWORD);
    await shot(page, '00-first-visit-link');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('Password set. Sign in with it.').waitFor();
    await page.goto(link);
    await page.getByText('This link is not valid').waitFor();
    await signIn(page, 'alice');
    assert.match(page.url(), /^https:\/\//);
    const session = (await context.cookies()).filter((c) => c.httpOnly);
    assert.ok(session.length > 0 && session.every((c) => c.secure), JSON.stringify(session));
    await shot(page, '01-keys-without-2fa');
    assert.match(page.url(), /\/keys$/);
    await page.getByText('before generating a key').waitFor();

    const secret = await enrol(page);
    await shot(page, '02-enrol-2fa');
    now = await advance(30_000);
    await page.getByLabel('Current code from your authenticator app').fill(totp(secret, now));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText('Two-factor authentication is on. You can now generate API keys.').waitFor();
    await shot(page, '03-2fa-on');

    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('link', { name: 'trade' }).click();
    now = await advance(30_000);
    await page.getByLabel('Trusted IPs (optional)').fill(TRUSTED_IP);
    await page.getByLabel('/api/v4/trade-account/*').check();
    await page.getByLabel('Current code from your authenticator app').fill(totp(secret, now));
    await shot(page, '04-generate-trade-key');
    await page.getByRole('button', { name: 'Generate key' }).click();
    await page.getByText('it is shown only once').waitFor();
    const key = await page.locator('#public-key').inputValue();
    const apiSecret = await page.locator('#api-secret').inputValue();
    assert.equal(key.length, 32);
    assert.equal(apiSecret.length, 64);
    assert.ok(await page.locator('button[data-copy="api-secret"]').isVisible(), 'copy button (JS on)');
    await shot(page, '05-secret-shown-once');

    const trusted = await proxy(TRUSTED_IP);
    const other = await proxy(OTHER_IP);
    const via = (server) => `http://127.0.0.1:${server.address().port}`;
    let out = await call(via(trusted), key, apiSecret, '/api/v4/trade-account/balance');
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout.trim(), '{"ok":true}');
    out = await call(via(other), key, apiSecret, '/api/v4/trade-account/balance');
    assert.equal(out.status, 1);
    assert.match(out.stderr, /Enable your key in API settings/);

    await page.getByRole('link', { name: "Continue to the key's settings" }).click();
    await shot(page, '06-key-settings');
    now = await advance(30_000);
    await page.locator('#state-code').fill(totp(secret, now));
    await page.getByRole('button', { name: 'Disable key' }).click();
    await page.getByText('Key disabled: requests signed with it are refused.').waitFor();
    await shot(page, '07-key-disabled');
    out = await call(via(trusted), key, apiSecret, '/api/v4/trade-account/balance');
    assert.equal(out.status, 1);
    assert.match(out.stderr, /Enable your key in API settings/);

    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('link', { name: 'trade' }).click();
    await page.getByText('disabled', { exact: true }).waitFor();
    await shot(page, '08-keys-list');
    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.match(page.url(), /\/signin$/);
    await shot(page, '09-signed-out');
    await page.goto(`${CONSOLE}/keys`);
    assert.match(page.url(), /\/signin$/, 'the session ended');
    trusted.close();
    other.close();
    await context.close();
  });

  await check('a form without its CSRF token is refused', async () => {
    createAccount('bob');
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, 'bob');
    await page.goto(`${CONSOLE}/2fa`);
    await page.locator('form[action="/2fa/enrol"] input[name="csrf"]').evaluate((el) => el.remove());
    await page.locator('form[action="/2fa/enrol"]').evaluate((form) => form.submit());
    await page.getByText('security token is missing or wrong (CSRF)').waitFor();
    await shot(page, '10-csrf-refused');
    await context.close();
  });

  await check('five wrong codes at sign-in: the answer of any failure, then a wait', async () => {
    createAccount('carol');
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await signIn(page, 'carol');
    const secret = await enrol(page);
    let now = await advance(30_000);
    await page.getByLabel('Current code from your authenticator app').fill(totp(secret, now));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText('Two-factor authentication is on. You can now generate API keys.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    now = await advance(30_000);
    for (let i = 0; i < 5; i += 1) {
      await signIn(page, 'carol', wrongCode(secret, now));
      await page.getByText('Wrong name, password or code. Check them and try again.').waitFor();
    }
    // The account is not named, and even the right code now waits its turn.
    await signIn(page, 'carol', totp(secret, now));
    await page.getByText('Too many failed sign-ins from your address; try again in 30 s.').waitFor();
    assert.equal(await page.getByText('carol', { exact: false }).count(), 0, 'the account is not named');
    await shot(page, '11-wait-phone');
    await context.close();
  });
} finally {
  await browser.close();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
