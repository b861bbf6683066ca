//! The web console end to end: the real `wbauth serve` (test clock) with `[console] listen`,
//! driven with plain HTTP form posts and a cookie jar, and signed requests through `wbauth
//! call` behind a small trusted proxy that sets `X-Forwarded-For` (`[proxy] trusted`). The test
//! clock moves 30 s between TOTP actions: nothing sleeps.

#![cfg(feature = "test-clock")]

mod common;

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};

use common::gateway::*;
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "correct horse battery";
const BALANCE: &str = "/api/v4/trade-account/balance";
const TRUSTED_IP: &str = "203.0.113.7";
const OTHER_IP: &str = "198.51.100.9";
const KEY_REFUSED: &str =
    r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#;

const CONSOLE_CONFIG: &str = r#"
[console]
listen = "127.0.0.1:0"
secure_cookie = false

[proxy]
trusted = ["127.0.0.1/32"]
"#;

/// A gateway with its console; the console's address.
async fn start() -> (Upstream, Gateway, String) {
    let upstream = Upstream::start().await;
    let mut gw = Gateway::start_with(&upstream, CONSOLE_CONFIG).await;
    let mut line = String::new();
    gw._stdout.read_line(&mut line).expect("console= line");
    let console = line
        .trim_end()
        .strip_prefix("console=")
        .unwrap_or_else(|| panic!("expected console=…, got {line:?}"))
        .to_owned();
    (upstream, gw, console)
}

/// `wbauth accounts create NAME --password-stdin`.
fn create_account(gw: &Gateway, name: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(["accounts", "create", name, "--password-stdin"])
        .args(["--admin-url", &gw.admin])
        .env("WBAUTH_ADMIN_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wbauth accounts create starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password written");
    let out = child.wait_with_output().expect("exits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("Created account {name}.")));
}

/// A browser without JavaScript: one cookie, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

#[derive(Debug)]
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The `value` of the element whose attributes contain `marker`.
    fn value_after(&self, marker: &str) -> String {
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in {}", self.body));
        let rest = &self.body[start..];
        let v = rest.find("value=\"").expect("value attribute") + 7;
        rest[v..v + rest[v..].find('"').expect("end quote")].to_owned()
    }

    fn csrf(&self) -> String {
        self.value_after("name=\"csrf\"")
    }

    fn between(&self, before: &str, after: &str) -> String {
        let start = self
            .body
            .find(before)
            .unwrap_or_else(|| panic!("{before:?} not in {}", self.body))
            + before.len();
        let end = self.body[start..].find(after).expect("end marker");
        self.body[start..start + end].to_owned()
    }
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", format!("wbauth_console={c}")),
            None => request,
        };
        let answer = request.send().await.expect("console answers");
        for value in answer.headers().get_all("set-cookie") {
            let text = value.to_str().expect("ascii cookie");
            assert!(
                text.contains("HttpOnly") && text.contains("SameSite=Strict"),
                "{text}"
            );
            let v = text
                .strip_prefix("wbauth_console=")
                .and_then(|t| t.split(';').next())
                .expect("console cookie");
            self.cookie = (!v.is_empty()).then(|| v.to_owned());
        }
        if answer.status().as_u16() < 300 {
            let headers = answer.headers();
            assert_eq!(
                headers.get("cache-control").map(|v| v.to_str().ok()),
                Some(Some("no-store"))
            );
            assert!(headers.get("content-security-policy").is_some());
        }
        Page {
            status: answer.status().as_u16(),
            location: answer
                .headers()
                .get("location")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            body: answer.text().await.expect("body"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    async fn sign_in(&mut self, name: &str, password: &str, code: &str) -> Page {
        let form = self.get("/signin").await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(
            form.body
                .contains("<label for=\"password\">Password</label>")
        );
        let csrf = form.csrf();
        self.post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", password),
                ("code", code),
            ],
        )
        .await
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A trusted reverse proxy on 127.0.0.1: forwards each connection to the gateway, adding
/// `X-Forwarded-For: IP` after the request line. Returns its base URL.
async fn proxy(gateway: &str, client_ip: &'static str) -> String {
    let target = gateway.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut inbound = BufReader::new(inbound);
                let mut request_line = String::new();
                if inbound.read_line(&mut request_line).await.is_err() {
                    return;
                }
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    return;
                };
                let head = format!("{request_line}X-Forwarded-For: {client_ip}\r\n");
                if outbound.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    format!("http://{addr}")
}

/// `wbauth call --strict PATH` against `base` with a key; (exit code, stdout, stderr).
fn call(base: &str, key: &str, secret: &str, path: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(["call", "--strict", path])
        .env("WBAUTH_BASE_URL", base)
        .env("WBAUTH_API_KEY", key)
        .env("WBAUTH_API_SECRET", secret)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .output()
        .expect("wbauth call runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn audit(gw: &Gateway) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{}/admin/audit?limit=200", gw.admin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("audit");
    let value: Value = serde_json::from_str(&answer.text().await.expect("body")).expect("json");
    value["entries"].as_array().expect("audit list").clone()
}

/// Signs in and turns 2FA on through the console; returns the TOTP secret.
async fn enrol(browser: &mut Browser, gw: &Gateway, now: &mut u64) -> Vec<u8> {
    let keys = browser.get("/keys").await;
    assert_eq!(keys.status, 200);
    assert!(
        keys.body.contains("before generating a key"),
        "{}",
        keys.body
    );
    let page = browser.get("/2fa").await;
    assert!(
        page.body.contains("is <strong>off</strong>"),
        "{}",
        page.body
    );
    let enrolment = browser.post("/2fa/enrol", &[("csrf", &page.csrf())]).await;
    assert_eq!(enrolment.status, 200, "{}", enrolment.body);
    assert!(enrolment.body.contains("<svg"), "an SVG QR code");
    assert!(
        enrolment
            .body
            .contains("aria-label=\"QR code of the authenticator secret\"")
    );
    let secret = base32_decode(&enrolment.between("<code id=\"totp-secret\">", "</code>"));
    *now = gw.advance(30_000).await;
    let confirmed = browser
        .post(
            "/2fa/confirm",
            &[("csrf", &enrolment.csrf()), ("code", &code(&secret, *now))],
        )
        .await;
    assert_eq!(
        (confirmed.status, confirmed.location.as_deref()),
        (303, Some("/2fa"))
    );
    let page = browser.get("/2fa").await;
    assert!(
        page.body.contains("is <strong>on</strong>"),
        "{}",
        page.body
    );
    secret
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_from_account_to_disabled_key() {
    let (upstream, gw, console) = start().await;
    let mut now = T0;
    create_account(&gw, "alice", PASSWORD);

    let mut browser = Browser::new(&console);
    let home = browser.get("/").await;
    assert_eq!(
        (home.status, home.location.as_deref()),
        (303, Some("/signin"))
    );
    let css = reqwest::get(format!("{console}/console.css"))
        .await
        .expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // Wrong password: refused, one attempt counted; then the right one (no 2FA yet: no code).
    let wrong = browser.sign_in("alice", "not the password", "").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .body
            .contains("Wrong name, password or code. 4 attempts left"),
        "{}",
        wrong.body
    );
    let anonymous = browser.cookie.clone();
    let signed_in = browser.sign_in("alice", PASSWORD, "").await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (303, Some("/keys"))
    );
    assert_ne!(browser.cookie, anonymous, "a new session id at sign-in");

    let secret = enrol(&mut browser, &gw, &mut now).await;

    // The trade tab: generate a key with one trusted IP and one endpoint group.
    let keys = browser.get("/keys?kind=trade").await;
    assert!(
        keys.body.contains("aria-current=\"page\">trade</a>"),
        "{}",
        keys.body
    );
    assert!(keys.body.contains("No trade keys yet."));
    now = gw.advance(30_000).await;
    let created = browser
        .post(
            "/keys",
            &[
                ("csrf", &keys.csrf()),
                ("kind", "trade"),
                ("ips", TRUSTED_IP),
                ("endpoint", "/api/v4/trade-account/*"),
                ("code", &code(&secret, now)),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.body.contains("it is shown only once"));
    let key = created.value_after("id=\"public-key\"");
    let api_secret = created.value_after("id=\"api-secret\"");
    assert_eq!((key.len(), api_secret.len()), (32, 64));
    let listed = browser.get("/keys?kind=trade").await;
    assert!(listed.body.contains(&key) && !listed.body.contains(&api_secret));
    assert!(
        listed
            .body
            .contains("<span class=\"state-active\">active</span>")
    );

    // Through the trusted proxy: from the trusted IP accepted, from another refused.
    let trusted = proxy(&gw.base, TRUSTED_IP).await;
    let other = proxy(&gw.base, OTHER_IP).await;
    let (status, stdout, stderr) = call(&trusted, &key, &api_secret, BALANCE);
    assert_eq!(
        (status, stdout.trim()),
        (Some(0), UPSTREAM_ANSWER),
        "{stderr}"
    );
    assert_eq!(upstream.count(), 1);
    let (status, _, stderr) = call(&other, &key, &api_secret, BALANCE);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("Enable your key in API settings"),
        "{stderr}"
    );
    assert_eq!(upstream.count(), 1, "nothing forwarded");

    // Disable it in the console (a current code): the next request is refused.
    now = gw.advance(30_000).await;
    let settings = browser.get(&format!("/keys/{key}")).await;
    assert!(settings.body.contains(TRUSTED_IP));
    let disabled = browser
        .post(
            &format!("/keys/{key}/disable"),
            &[("csrf", &settings.csrf()), ("code", &code(&secret, now))],
        )
        .await;
    assert_eq!(
        (disabled.status, disabled.location.clone()),
        (303, Some(format!("/keys/{key}")))
    );
    let after = browser.get(&format!("/keys/{key}")).await;
    assert!(after.body.contains("Key disabled"), "{}", after.body);
    assert!(
        after
            .body
            .contains("<span class=\"state-disabled\">disabled</span>")
    );
    let signed = gw.signed(&key, &api_secret, BALANCE).await;
    assert_eq!((signed.status, signed.body.as_str()), (401, KEY_REFUSED));
    let (status, _, stderr) = call(&trusted, &key, &api_secret, BALANCE);
    assert_eq!(status, Some(1), "{stderr}");
    assert_eq!(upstream.count(), 1);

    // Audited through the admin API's path, with the console as the actor.
    let entries = audit(&gw).await;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for action in [
        "key.disable",
        "key.create",
        "account.2fa.confirm",
        "console.sign_in",
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, actor)| *a == action && actor.starts_with("console:alice@")),
            "{action} in {actions:?}"
        );
    }
    assert!(
        !serde_json::to_string(&entries)
            .expect("json")
            .contains(&api_secret)
    );

    // Sign out: the session is gone server-side.
    let page = browser.get("/keys").await;
    let cookie = browser.cookie.clone();
    let out = browser.post("/signout", &[("csrf", &page.csrf())]).await;
    assert_eq!(
        (out.status, out.location.as_deref()),
        (303, Some("/signin"))
    );
    browser.cookie = cookie;
    let again = browser.get("/keys").await;
    assert_eq!(
        (again.status, again.location.as_deref()),
        (303, Some("/signin"))
    );
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_are_refused() {
    let (_upstream, gw, console) = start().await;
    let mut now = T0;
    create_account(&gw, "bob", PASSWORD);
    let mut browser = Browser::new(&console);

    // Sign-in without the token: refused even with the right password.
    browser.get("/signin").await;
    let refused = browser
        .post("/signin", &[("name", "bob"), ("password", PASSWORD)])
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .body
            .contains("security token is missing or wrong (CSRF)")
    );
    assert_eq!(browser.sign_in("bob", PASSWORD, "").await.status, 303);
    let secret = enrol(&mut browser, &gw, &mut now).await;

    // Key creation without (or with a wrong) token: refused, nothing created.
    now = gw.advance(30_000).await;
    let form = [("kind", "trade"), ("code", &code(&secret, now) as &str)];
    let missing = browser.post("/keys", &form).await;
    assert_eq!(missing.status, 403);
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "00"));
    assert_eq!(browser.post("/keys", &wrong).await.status, 403);
    let keys: Value = gw.ok_json(&["keys", "list"]);
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(0), "{keys}");
    // The code was not used up: the same form with the token works.
    let page = browser.get("/keys").await;
    let mut good = form.to_vec();
    let csrf = page.csrf();
    good.push(("csrf", &csrf));
    assert_eq!(browser.post("/keys", &good).await.status, 201);
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_codes_lock_the_account() {
    let (_upstream, gw, console) = start().await;
    let mut now = T0;
    create_account(&gw, "carol", PASSWORD);
    let mut browser = Browser::new(&console);
    assert_eq!(browser.sign_in("carol", PASSWORD, "").await.status, 303);
    let secret = enrol(&mut browser, &gw, &mut now).await;

    // 2FA is on: sign-in now needs the code; four wrong codes count down, the fifth locks.
    let mut fresh = Browser::new(&console);
    now = gw.advance(30_000).await;
    for left in (1..=4).rev() {
        let page = fresh
            .sign_in("carol", PASSWORD, &wrong_code(&secret, now))
            .await;
        assert_eq!(page.status, 401, "{}", page.body);
        let plural = if left == 1 { "" } else { "s" };
        assert!(
            page.body.contains(&format!("{left} attempt{plural} left")),
            "{}",
            page.body
        );
    }
    let locked = fresh
        .sign_in("carol", PASSWORD, &wrong_code(&secret, now))
        .await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(
        locked
            .body
            .contains("Account carol is locked after too many wrong codes; try again in 15 min."),
        "{}",
        locked.body
    );
    // Even the right code is refused while locked, and the time left is shown.
    now = gw.advance(60_000).await;
    let still = fresh.sign_in("carol", PASSWORD, &code(&secret, now)).await;
    assert_eq!(still.status, 429);
    assert!(
        still.body.contains("try again in 14 min."),
        "{}",
        still.body
    );
    let account = gw.ok_json(&["accounts", "show", "carol"]);
    assert!(
        account["account"]["locked_until_ms"].as_u64().is_some(),
        "{account}"
    );
    // After the lock: the right code signs in.
    now = gw.advance(15 * 60_000).await;
    let ok = fresh.sign_in("carol", PASSWORD, &code(&secret, now)).await;
    assert_eq!(
        (ok.status, ok.location.as_deref()),
        (303, Some("/keys")),
        "{}",
        ok.body
    );
    gw.terminate();
}
