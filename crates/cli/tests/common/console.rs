//! The web console's test helpers: a gateway with its console, accounts made through the CLI,
//! and a browser without JavaScript (form posts, a cookie jar, no automatic redirects) that can
//! name its client address in `X-Forwarded-For` (the console trusts 127.0.0.1 as a proxy).

use std::collections::BTreeMap;
use std::io::BufRead as _;

use reqwest::redirect::Policy;
use serde_json::Value;

use super::gateway::{Gateway, T0, TOKEN, Upstream, base32_decode, code};

pub const PASSWORD: &str = "correct horse battery";
/// The one answer to every failed sign-in.
pub const SIGN_IN_FAILED: &str = "Wrong name, password or code. Check them and try again.";
/// The signed-in session's cookie.
pub const SESSION_COOKIE: &str = "wbauth_console";

pub const CONSOLE_CONFIG: &str = r#"
[console]
listen = "127.0.0.1:0"
secure_cookie = false

[proxy]
trusted = ["127.0.0.1/32"]
"#;

/// A gateway with its console; the console's address.
pub async fn start() -> (Upstream, Gateway, String) {
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
pub fn create_account(gw: &Gateway, name: &str, password: &str) {
    let out = with_password(gw, &["accounts", "create", name], password);
    assert!(
        out.starts_with(&format!("Created account {name}.")),
        "{out}"
    );
}

/// `wbauth accounts password NAME --password-stdin` (the operator sets or resets it).
pub fn set_password(gw: &Gateway, name: &str, password: &str) {
    with_password(gw, &["accounts", "password", name], password);
}

/// Runs `wbauth ARGS --password-stdin` with `password` typed in; its stdout (success
/// asserted).
fn with_password(gw: &Gateway, args: &[&str], password: &str) -> String {
    gw.ok_with_input(
        &[args, &["--password-stdin"]].concat(),
        &format!("{password}\n"),
    )
}

/// `wbauth accounts ARGS…` against the gateway; (success, stdout, stderr).
pub fn accounts(gw: &Gateway, args: &[&str]) -> (bool, String, String) {
    let out = gw.cli(&[&["accounts"], args].concat());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console path of the one-time link the CLI printed (`{console}/welcome/TOKEN`).
pub fn link_path(stdout: &str, console: &str) -> String {
    let url = stdout
        .lines()
        .find(|l| l.starts_with(console))
        .unwrap_or_else(|| panic!("no link to {console} in {stdout}"));
    let path = url.strip_prefix(console).expect("console prefix");
    assert!(path.starts_with("/welcome/"), "{path}");
    // 256 random bits, base64url without padding.
    assert_eq!(path.len(), "/welcome/".len() + 43, "{path}");
    path.to_owned()
}

/// The audit log's latest entries.
pub async fn audit(gw: &Gateway) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{}/admin/audit?limit=200", gw.admin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("audit");
    let value: Value = serde_json::from_str(&answer.text().await.expect("body")).expect("json");
    value["entries"].as_array().expect("audit list").clone()
}

/// A browser without JavaScript: a cookie jar, no automatic redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    /// The client address the browser claims through the trusted proxy (`X-Forwarded-For`).
    pub from: Option<String>,
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Page {
    /// The `value` of the element whose attributes contain `marker`.
    pub fn value_after(&self, marker: &str) -> String {
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in {}", self.body));
        let rest = &self.body[start..];
        let v = rest.find("value=\"").expect("value attribute") + 7;
        rest[v..v + rest[v..].find('"').expect("end quote")].to_owned()
    }

    pub fn csrf(&self) -> String {
        self.value_after("name=\"csrf\"")
    }

    pub fn between(&self, before: &str, after: &str) -> String {
        let start = self
            .body
            .find(before)
            .unwrap_or_else(|| panic!("{before:?} not in {}", self.body))
            + before.len();
        let end = self.body[start..].find(after).expect("end marker");
        self.body[start..start + end].to_owned()
    }

    /// The error the page shows (`role="alert"`), if any.
    pub fn error(&self) -> Option<String> {
        let marker = "role=\"alert\">";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find("</p>")?;
        Some(self.body[start..start + end].to_owned())
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
            from: None,
        }
    }

    /// A browser whose requests come from `ip` (through the trusted proxy).
    pub fn from(base: &str, ip: &str) -> Self {
        let mut browser = Self::new(base);
        browser.from = Some(ip.to_owned());
        browser
    }

    /// The signed-in session's id, when there is one.
    pub fn session(&self) -> Option<String> {
        self.cookies.get(SESSION_COOKIE).cloned()
    }

    /// Presents `id` as the session cookie (or none).
    pub fn set_session(&mut self, id: Option<String>) {
        match id {
            Some(id) => self.cookies.insert(SESSION_COOKIE.to_owned(), id),
            None => self.cookies.remove(SESSION_COOKIE),
        };
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header("cookie", jar.join("; "));
        }
        if let Some(ip) = &self.from {
            request = request.header("x-forwarded-for", ip.as_str());
        }
        let answer = request.send().await.expect("console answers");
        for value in answer.headers().get_all("set-cookie") {
            let text = value.to_str().expect("ascii cookie");
            assert!(
                text.contains("HttpOnly") && text.contains("SameSite=Strict"),
                "{text}"
            );
            let pair = text.split(';').next().expect("a name=value pair");
            let (name, v) = pair.split_once('=').expect("name=value");
            assert!(name.starts_with("wbauth_console"), "{text}");
            if v.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), v.to_owned());
            }
        }
        let headers = answer.headers();
        if answer.status().as_u16() < 300 {
            assert_eq!(
                headers.get("cache-control").map(|v| v.to_str().ok()),
                Some(Some("no-store"))
            );
            assert!(headers.get("content-security-policy").is_some());
        }
        Page {
            status: answer.status().as_u16(),
            location: headers
                .get("location")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            retry_after: headers
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            body: answer.text().await.expect("body"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
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

    /// Posts a change to `path`: `fields` between the CSRF token and the TOTP `code`.
    pub async fn change(
        &mut self,
        path: &str,
        csrf: &str,
        fields: &[(&str, &str)],
        code: &str,
    ) -> Page {
        let mut form = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        form.push(("code", code));
        self.post(path, &form).await
    }

    pub async fn sign_in(&mut self, name: &str, password: &str, code: &str) -> Page {
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

pub fn encode(text: &str) -> String {
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

/// Asserts the page's status and that its body holds `text` (the body is shown otherwise).
pub fn assert_page(page: &Page, status: u16, text: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.body.contains(text), "{text:?} not in {}", page.body);
}

/// Asserts a `303 See Other` to `to`.
pub fn assert_redirect(page: &Page, to: &str) {
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some(to)),
        "{}",
        page.body
    );
}

/// A gateway with its console and account `name` (password [`PASSWORD`]); a browser that
/// has not signed in.
pub async fn with_account(name: &str) -> (Upstream, Gateway, String, Browser) {
    let (upstream, gw, console) = start().await;
    create_account(&gw, name, PASSWORD);
    let browser = Browser::new(&console);
    (upstream, gw, console, browser)
}

/// A console whose account holder has signed in and turned 2FA on.
pub struct Enrolled {
    pub upstream: Upstream,
    pub gw: Gateway,
    pub console: String,
    /// The holder's browser, signed in.
    pub browser: Browser,
    /// The holder's TOTP secret.
    pub secret: Vec<u8>,
    /// The gateway's test clock after the enrolment.
    pub now: u64,
}

/// Starts a gateway with its console and creates account `name` (password [`PASSWORD`]);
/// its holder signs in and turns 2FA on.
pub async fn enrolled(name: &str) -> Enrolled {
    let (upstream, gw, console, mut browser) = with_account(name).await;
    assert_redirect(&browser.sign_in(name, PASSWORD, "").await, "/keys");
    let mut now = T0;
    let secret = enrol(&mut browser, &gw, &mut now).await;
    Enrolled {
        upstream,
        gw,
        console,
        browser,
        secret,
        now,
    }
}

/// Signs in and turns 2FA on through the console; returns the TOTP secret.
pub async fn enrol(browser: &mut Browser, gw: &Gateway, now: &mut u64) -> Vec<u8> {
    assert_page(&browser.get("/keys").await, 200, "before generating a key");
    let page = browser.get("/2fa").await;
    assert_page(&page, 200, "is <strong>off</strong>");
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
