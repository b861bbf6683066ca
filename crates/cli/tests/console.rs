//! The web console end to end: the real `wbauth serve` (test clock) with `[console] listen`,
//! driven with plain HTTP form posts and a cookie jar, and signed requests through `wbauth
//! call` behind a small trusted proxy that sets `X-Forwarded-For` (`[proxy] trusted`). The test
//! clock moves 30 s between TOTP actions: nothing sleeps.

#![cfg(feature = "test-clock")]

mod common;

use std::process::{Command, Stdio};

use common::catalogue::{BALANCE, KEY_DISABLED};
use common::console::*;
use common::gateway::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

const TRUSTED_IP: &str = "203.0.113.7";
const OTHER_IP: &str = "198.51.100.9";

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

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_from_account_to_disabled_key() {
    let (upstream, gw, console, mut browser) = with_account("alice").await;
    let mut now = T0;
    assert_redirect(&browser.get("/").await, "/signin");
    let css = reqwest::get(format!("{console}/console.css"))
        .await
        .expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // Wrong password: refused; then the right one (no 2FA yet: no code).
    let wrong = browser.sign_in("alice", "not the password", "").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.error().as_deref(),
        Some(SIGN_IN_FAILED),
        "{}",
        wrong.body
    );
    let anonymous = browser.session();
    let signed_in = browser.sign_in("alice", PASSWORD, "").await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (303, Some("/keys"))
    );
    assert!(browser.session().is_some());
    assert_ne!(browser.session(), anonymous, "a new session id at sign-in");

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
    assert_eq!((signed.status, signed.body.as_str()), (401, KEY_DISABLED));
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
    let cookie = browser.session();
    let out = browser.post("/signout", &[("csrf", &page.csrf())]).await;
    assert_redirect(&out, "/signin");
    browser.set_session(cookie);
    assert_redirect(&browser.get("/keys").await, "/signin");
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_are_refused() {
    let (_upstream, gw, _console, mut browser) = with_account("bob").await;
    let mut now = T0;

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
async fn five_wrong_codes_lock_the_accounts_codes_in_the_console_only() {
    let Enrolled {
        gw,
        console,
        mut browser,
        secret,
        ..
    } = enrolled("carol").await;

    // Four wrong codes for a change count down; the fifth locks the account's codes in the
    // console for 15 minutes.
    let mut now = gw.advance(30_000).await;
    let csrf = browser.get("/keys?kind=main").await.csrf();
    let main_key = [("kind", "main")];
    for left in (1..=4).rev() {
        let wrong = wrong_code(&secret, now);
        let page = browser.change("/keys", &csrf, &main_key, &wrong).await;
        assert_eq!(page.status, 403, "{}", page.body);
        let plural = if left == 1 { "" } else { "s" };
        assert_eq!(
            page.error(),
            Some(format!(
                "Wrong TOTP code. {left} attempt{plural} left before the account is locked."
            ))
        );
    }
    let wrong = wrong_code(&secret, now);
    let locked = browser.change("/keys", &csrf, &main_key, &wrong).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(
        locked.error().as_deref(),
        Some("Account carol is locked after too many wrong codes; try again in 15 min.")
    );
    assert_eq!(locked.retry_after.as_deref(), Some("900"));
    // Even the right code is refused while locked, and the time left is shown.
    now = gw.advance(60_000).await;
    let right = code(&secret, now);
    let still = browser.change("/keys", &csrf, &main_key, &right).await;
    assert_page(&still, 429, "try again in 14 min.");
    // Signing in meanwhile, even with the right password and code, gets the answer of any
    // failed sign-in: the lock is not told to someone who is not signed in.
    let mut elsewhere = Browser::from(&console, "198.51.100.30");
    let refused = elsewhere.sign_in("carol", PASSWORD, &right).await;
    assert_eq!(
        (refused.status, refused.error().as_deref()),
        (401, Some(SIGN_IN_FAILED))
    );
    // The operator is not held up: the admin API takes the current code.
    let created = gw.ok(&[
        "keys",
        "create",
        "--account",
        "carol",
        "--kind",
        "main",
        "--code",
        &right,
    ]);
    assert!(created.contains("api_secret="), "{created}");
    // After the lock: the right code signs in and works for changes.
    now = gw.advance(15 * 60_000).await;
    let ok = elsewhere
        .sign_in("carol", PASSWORD, &code(&secret, now))
        .await;
    assert_redirect(&ok, "/keys");
    now = gw.advance(30_000).await;
    let made = browser
        .change("/keys", &csrf, &main_key, &code(&secret, now))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_settings_each_need_a_current_code() {
    let Enrolled {
        upstream,
        gw,
        console,
        mut browser,
        secret,
        ..
    } = enrolled("dave").await;
    create_account(&gw, "erin", PASSWORD);
    let mut now = gw.advance(30_000).await;
    let keys = browser.get("/keys?kind=main").await;
    let created = browser
        .change(
            "/keys",
            &keys.csrf(),
            &[("kind", "main")],
            &code(&secret, now),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.value_after("id=\"public-key\"");
    let first_secret = created.value_after("id=\"api-secret\"");
    let csrf = created.csrf();
    let path = |what: &str| format!("/keys/{key}/{what}");

    // Without a code: refused, nothing changed. Invalid addresses: refused before the code.
    let no_code = browser.post(&path("disable"), &[("csrf", &csrf)]).await;
    assert_page(
        &no_code,
        400,
        "A current code from the authenticator app is required",
    );
    let bad = browser
        .change(&path("ips"), &csrf, &[("ips", "10.0.0.1/8")], "123456")
        .await;
    assert_page(&bad, 400, "host bits are set");
    let too_many: String = (0..51).map(|i| format!("192.0.2.{i}\n")).collect();
    let bad = browser
        .change(&path("ips"), &csrf, &[("ips", &too_many)], "123456")
        .await;
    assert!(bad.body.contains("a key holds at most 50"), "{}", bad.body);

    // Trusted IPs (v4, v6, CIDR) and endpoints with current codes.
    now = gw.advance(30_000).await;
    let ips = [("ips", "127.0.0.0/8\n::1, 192.0.2.7")];
    let saved = browser
        .change(&path("ips"), &csrf, &ips, &code(&secret, now))
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let shown = gw.ok_json(&["keys", "show", &key]);
    assert_eq!(
        shown["key"]["ips"],
        serde_json::json!(["127.0.0.0/8", "::1", "192.0.2.7"])
    );
    // A code is single use: the same one again is refused.
    let main_endpoints = [("endpoint", "/api/v4/main-account/*")];
    let endpoints = path("endpoints");
    let used = code(&secret, now);
    let reused = browser
        .change(&endpoints, &csrf, &main_endpoints, &used)
        .await;
    assert_page(&reused, 403, "already used");
    let order_endpoints = [("endpoint", "/api/v4/order/*")];
    let outside = browser
        .change(&endpoints, &csrf, &order_endpoints, "1")
        .await;
    assert!(
        outside
            .body
            .contains("is outside the &quot;main&quot; kind"),
        "{}",
        outside.body
    );
    now = gw.advance(30_000).await;
    let current = code(&secret, now);
    let saved = browser
        .change(&endpoints, &csrf, &main_endpoints, &current)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = browser.get(&format!("/keys/{key}")).await;
    assert!(page.body.contains("Endpoints saved."));
    assert!(
        page.body
            .contains("value=\"/api/v4/main-account/*\" checked"),
        "{}",
        page.body
    );

    // Rotate: a new secret shown once; the old one is refused, the new one accepted.
    now = gw.advance(30_000).await;
    let rotated = browser
        .change(&path("rotate"), &csrf, &[], &code(&secret, now))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.value_after("id=\"api-secret\"");
    assert_ne!(new_secret, first_secret);
    let main = "/api/v4/main-account/balance";
    let old = gw.signed(&key, &first_secret, main).await;
    assert_eq!(old.status, 401, "{old:?}");
    let new = gw.signed(&key, &new_secret, main).await;
    assert_eq!((new.status, new.body.as_str()), (200, UPSTREAM_ANSWER));

    // Disable, enable, each with a code.
    for (what, state) in [("disable", "disabled"), ("enable", "active")] {
        now = gw.advance(30_000).await;
        let done = browser
            .change(&path(what), &csrf, &[], &code(&secret, now))
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(gw.ok_json(&["keys", "show", &key])["key"]["state"], state);
    }

    // Unused for more than 14 days: the session has expired too; signed in again, the list
    // says so, requests are refused, and enabling the key (a current code) re-activates it.
    now = gw.advance(15 * 24 * 60 * 60 * 1000).await;
    assert_redirect(&browser.get("/keys?kind=main").await, "/signin");
    let signed_in = browser.sign_in("dave", PASSWORD, &code(&secret, now)).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let list = browser.get("/keys?kind=main").await;
    assert_page(&list, 200, "deactivated after 14 days unused");
    assert_eq!(gw.ok_json(&["keys", "show", &key])["key"]["state"], "idle");
    let idle = gw.signed(&key, &new_secret, main).await;
    assert_eq!((idle.status, idle.body.as_str()), (401, KEY_DISABLED));
    now = gw.advance(30_000).await;
    let revived = browser
        .change(&path("enable"), &list.csrf(), &[], &code(&secret, now))
        .await;
    assert_eq!(revived.status, 303, "{}", revived.body);
    assert_eq!(
        gw.ok_json(&["keys", "show", &key])["key"]["state"],
        "active"
    );

    // Another account cannot see or change the key.
    let mut other = Browser::new(&console);
    assert_eq!(other.sign_in("erin", PASSWORD, "").await.status, 303);
    let foreign = other.get(&format!("/keys/{key}")).await;
    assert_eq!(foreign.status, 404);
    let other_csrf = other.get("/keys").await.csrf();
    let foreign = other
        .change(&path("disable"), &other_csrf, &[], "000000")
        .await;
    assert_eq!(foreign.status, 404);

    // Delete: a confirmation page, then the key is gone (unknown from the next request).
    let confirm = browser.get(&path("delete")).await;
    assert_page(&confirm, 200, "This cannot be undone.");
    now = gw.advance(30_000).await;
    let deleted = browser
        .change(&path("delete"), &confirm.csrf(), &[], &code(&secret, now))
        .await;
    assert_redirect(&deleted, "/keys?kind=main");
    let gone = gw.signed(&key, &new_secret, main).await;
    assert_eq!(gone.status, 401);
    assert_eq!(upstream.count(), 1);
    let audit = audit(&gw).await;
    for action in [
        "key.delete",
        "key.enable",
        "key.rotate_secret",
        "key.set_endpoints",
        "key.set_ips",
    ] {
        assert!(
            audit.iter().any(|e| e["action"] == action
                && e["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("console:dave@"))),
            "{action}"
        );
    }
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_link_sets_the_first_password() {
    let (_upstream, gw, console) = start().await;

    // `accounts create` without a password prints the link.
    let (ok, stdout, stderr) = accounts(&gw, &["create", "frank"]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("Created account frank."), "{stdout}");
    assert!(
        stdout.contains("One-time link for the holder of frank"),
        "{stdout}"
    );
    let first = link_path(&stdout, &console);
    // No password yet: sign-in is refused.
    let mut browser = Browser::new(&console);
    assert_eq!(browser.sign_in("frank", PASSWORD, "").await.status, 401);

    // A new link replaces the first one.
    let (ok, stdout, stderr) = accounts(&gw, &["link", "frank"]);
    assert!(ok, "{stderr}");
    let link = link_path(&stdout, &console);
    assert_ne!(link, first);
    let replaced = browser.get(&first).await;
    assert_eq!(replaced.status, 404);
    assert!(
        replaced.body.contains("This link is not valid"),
        "{}",
        replaced.body
    );
    assert!(!replaced.body.contains("New password"));

    let form = browser.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("<strong>frank</strong>"),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains("<label for=\"password\">New password</label>")
    );
    let csrf = form.csrf();
    // Without the CSRF token, with two different passwords, with a short one: refused, and the
    // link still works.
    let no_csrf = browser
        .post(&link, &[("password", PASSWORD), ("repeat", PASSWORD)])
        .await;
    assert_eq!(no_csrf.status, 403);
    let differ = browser
        .post(
            &link,
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("repeat", "correct horse"),
            ],
        )
        .await;
    assert_page(&differ, 400, "The two passwords differ.");
    let short = browser
        .post(
            &link,
            &[("csrf", &csrf), ("password", "short"), ("repeat", "short")],
        )
        .await;
    assert_page(&short, 400, "the password is too short");
    assert_eq!(browser.sign_in("frank", PASSWORD, "").await.status, 401);

    // The password is set, the holder is sent to sign in, and the link is spent.
    let set = browser
        .post(
            &link,
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("repeat", PASSWORD),
            ],
        )
        .await;
    assert_redirect(&set, "/signin?password=set");
    let signin = browser.get("/signin?password=set").await;
    assert_page(&signin, 200, "Password set. Sign in with it.");
    assert_eq!(browser.sign_in("frank", PASSWORD, "").await.status, 303);
    let mut again = Browser::new(&console);
    let spent = again.get(&link).await;
    assert_eq!(spent.status, 404);
    let csrf = again.get("/signin").await.csrf();
    let reuse = again
        .post(
            &link,
            &[
                ("csrf", &csrf),
                ("password", "another password"),
                ("repeat", "another password"),
            ],
        )
        .await;
    assert_eq!(reuse.status, 404);
    assert_eq!(
        again.sign_in("frank", "another password", "").await.status,
        401
    );

    // A link expires (`[console] link_ttl_ms`, a day by default).
    let (ok, stdout, _) = accounts(&gw, &["link", "frank"]);
    assert!(ok);
    let late = link_path(&stdout, &console);
    gw.advance(24 * 60 * 60 * 1000 + 1).await;
    assert_eq!(again.get(&late).await.status, 404);
    // Unknown accounts and tokens.
    let (ok, _, stderr) = accounts(&gw, &["link", "nobody"]);
    assert!(!ok);
    assert!(stderr.contains("No account named \"nobody\""), "{stderr}");
    assert_eq!(again.get("/welcome/not-a-token").await.status, 404);

    // The audit log names the link and the password, never the token.
    let audit = audit(&gw).await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "account.console_link.issue")
            .count(),
        3
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "account.password.set" && e["detail"]["via"] == "console_link")
    );
    let token = link.trim_start_matches("/welcome/");
    assert!(!serde_json::to_string(&audit).expect("json").contains(token));
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_console_there_is_no_link() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let (ok, stdout, stderr) = accounts(&gw, &["create", "gina"]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("One-time link"), "{stdout}");
    let (ok, _, stderr) = accounts(&gw, &["link", "gina"]);
    assert!(!ok);
    assert!(stderr.contains("The web console is off"), "{stderr}");
    gw.terminate();
}
