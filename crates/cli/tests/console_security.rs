//! The web console under attack, end to end against the real `wbauth serve` (test clock):
//! sign-in answers that never tell names apart, growing delays per (name, source) and per
//! source that neither a stranger can turn against the holder nor reach the operator, no
//! server-side state before sign-in, and sessions that end with the password. Browsers name
//! their address in `X-Forwarded-For` (the console trusts its loopback proxy). Nothing sleeps:
//! the test clock moves.

#![cfg(feature = "test-clock")]

mod common;

use common::console::*;
use common::gateway::*;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const HOLDER_IP: &str = "198.51.100.20";
const STRANGER_IP: &str = "203.0.113.66";

/// What a sign-in answered: status, the error shown, `Retry-After`.
fn outcome(page: &Page) -> (u16, Option<String>, Option<String>) {
    (page.status, page.error(), page.retry_after.clone())
}

fn waiting(seconds: u64) -> (u16, Option<String>, Option<String>) {
    let shown = if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    };
    (
        429,
        Some(format!(
            "Too many failed sign-ins from your address; try again in {shown}."
        )),
        Some(seconds.to_string()),
    )
}

fn failed() -> (u16, Option<String>, Option<String>) {
    (401, Some(SIGN_IN_FAILED.to_owned()), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_answers_alike_for_real_and_unknown_names() {
    let (_upstream, gw, console) = start().await;
    let mut now = T0;
    create_account(&gw, "alice", PASSWORD);
    create_account(&gw, "amy", PASSWORD);
    let mut amy = Browser::new(&console);
    assert_eq!(amy.sign_in("amy", PASSWORD, "").await.status, 303);
    let secret = enrol(&mut amy, &gw, &mut now).await;
    now = gw.advance(30_000).await;

    // Seven tries each from three addresses: a real name with a wrong password, a name no
    // account has, and a real name with its right password and a wrong code.
    let mut real = Browser::from(&console, "192.0.2.1");
    let mut unknown = Browser::from(&console, "192.0.2.2");
    let mut code_only = Browser::from(&console, "192.0.2.3");
    let mut seen = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..7 {
        seen[0].push(outcome(
            &real.sign_in("alice", "not the password", "").await,
        ));
        seen[1].push(outcome(
            &unknown.sign_in("nobody", "not the password", "").await,
        ));
        let wrong = wrong_code(&secret, now);
        seen[2].push(outcome(&code_only.sign_in("amy", PASSWORD, &wrong).await));
    }
    assert_eq!(seen[0], seen[1], "a real name and an unknown one");
    assert_eq!(seen[0], seen[2], "a wrong password and a wrong code");
    // Five plain failures, then a wait; no answer names the account or counts attempts.
    assert_eq!(seen[0][..5], vec![failed(); 5][..]);
    assert_eq!(seen[0][5..], [waiting(30), waiting(30)]);
    for answer in seen.iter().flatten() {
        let text = format!("{answer:?}");
        for word in ["alice", "amy", "nobody", "attempt", "ocked"] {
            assert!(!text.contains(word), "{word} in {text}");
        }
    }

    // None of this locked the real accounts: from elsewhere, the right answers sign in.
    let mut elsewhere = Browser::from(&console, "192.0.2.9");
    let page = elsewhere.sign_in("alice", PASSWORD, "").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/keys"))
    );
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_hold_up_only_themselves() {
    let (_upstream, gw, console) = start().await;
    let mut now = T0;
    create_account(&gw, "bob", PASSWORD);
    let mut holder = Browser::from(&console, HOLDER_IP);
    assert_eq!(holder.sign_in("bob", PASSWORD, "").await.status, 303);
    let secret = enrol(&mut holder, &gw, &mut now).await;

    now = gw.advance(30_000).await;

    // A stranger guesses bob's password: five failures, then that address waits.
    let mut stranger = Browser::from(&console, STRANGER_IP);
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(outcome(&stranger.sign_in("bob", "a guess", "").await));
    }
    assert_eq!(answers.last().map(|a| a.0), Some(429));

    // Meanwhile the holder signs in from their own address at once...
    let mut again = Browser::from(&console, HOLDER_IP);
    let page = again.sign_in("bob", PASSWORD, &code(&secret, now)).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/keys")),
        "{}",
        page.body
    );
    // ...and the operator creates a key with a current code through the admin API.
    now = gw.advance(30_000).await;
    let body = json!({"account": "bob", "kind": "main", "code": code(&secret, now)});
    let answer = gw.admin_request("/admin/keys", body.to_string()).await;
    assert_eq!(answer.status().as_u16(), 201);
    let shown = gw.ok_json(&["accounts", "show", "bob"]);
    assert_eq!(shown["account"]["locked_until_ms"], serde_json::Value::Null);
    // What the stranger was told: the one answer of failed sign-ins, then the wait.
    assert_eq!(answers[..5], vec![failed(); 5][..]);
    assert_eq!(answers[5], waiting(30));

    // The stranger's waits double with every further failure, up to 15 minutes (the first,
    // 30 s, ended during the operator's turn); a try before the end of a wait is refused
    // without counting.
    let mut waits = vec![30];
    for _ in 0..6 {
        assert_eq!(
            outcome(&stranger.sign_in("bob", "a guess", "").await),
            failed()
        );
        let page = stranger.sign_in("bob", "a guess", "").await;
        assert_eq!(page.status, 429, "{}", page.body);
        let wait: u64 = page
            .retry_after
            .as_deref()
            .and_then(|s| s.parse().ok())
            .expect("Retry-After");
        assert_eq!(outcome(&page), waiting(wait));
        waits.push(wait);
        gw.advance(wait * 1000 - 1000).await;
        assert_eq!(
            outcome(&stranger.sign_in("bob", "a guess", "").await),
            waiting(1)
        );
        gw.advance(1000).await;
    }
    assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900]);
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_count_per_address_and_ipv6_network() {
    let (_upstream, gw, console) = start().await;
    create_account(&gw, "carol", PASSWORD);

    // Five failures from one IPv6 address: its whole /64 waits for that name...
    let mut first = Browser::from(&console, "2001:db8:1:2::1");
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(outcome(&first.sign_in("carol", "a guess", "").await));
    }
    let mut neighbour = Browser::from(&console, "2001:db8:1:2:ffff:ffff:ffff:fffe");
    answers.push(outcome(&neighbour.sign_in("carol", PASSWORD, "").await));
    // ...the next /64 does not.
    let mut next = Browser::from(&console, "2001:db8:1:3::1");
    let page = next.sign_in("carol", PASSWORD, "").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(answers[..5], vec![failed(); 5][..]);
    assert_eq!(answers[5], waiting(30));

    // One address trying many names: after 20 failures it waits for every name, even with
    // the right password, and is told nothing else; other addresses sign in.
    let mut sprayer = Browser::from(&console, "192.0.2.50");
    for i in 0..20 {
        let name = format!("user{i}");
        assert_eq!(
            outcome(&sprayer.sign_in(&name, "a guess", "").await),
            failed()
        );
    }
    assert_eq!(
        outcome(&sprayer.sign_in("carol", PASSWORD, "").await),
        waiting(30)
    );
    let mut other = Browser::from(&console, "192.0.2.51");
    assert_eq!(other.sign_in("carol", PASSWORD, "").await.status, 303);
    gw.terminate();
}

/// `count` cookie-less `GET /signin`, pipelined over 4 keep-alive connections; how many were
/// answered 200.
async fn flood(console: &str, count: usize) -> usize {
    const BATCH: usize = 200;
    let addr = console.trim_start_matches("http://").to_owned();
    let batches = count.div_ceil(4 * BATCH);
    let connections: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let stream = TcpStream::connect(&addr).await.expect("connects");
                let (mut reader, mut writer) = stream.into_split();
                let writing = tokio::spawn(async move {
                    let batch = b"GET /signin HTTP/1.1\r\nHost: console\r\n\r\n".repeat(BATCH);
                    for _ in 0..batches {
                        writer.write_all(&batch).await.expect("written");
                    }
                    writer
                });
                let needle = b"HTTP/1.1 200 OK\r\n";
                let (mut seen, mut pending, mut buf) = (0, Vec::new(), vec![0u8; 1 << 16]);
                while seen < batches * BATCH {
                    let n = reader.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    seen += pending
                        .windows(needle.len())
                        .filter(|w| w == needle)
                        .count();
                    let keep = pending.len().min(needle.len() - 1);
                    pending.drain(..pending.len() - keep);
                }
                drop(writing.await.expect("writer"));
                seen
            })
        })
        .collect();
    let mut total = 0;
    for connection in connections {
        total += connection.await.expect("connection");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visits_store_nothing_and_sign_no_one_out() {
    let (_upstream, gw, console) = start().await;
    create_account(&gw, "dave", PASSWORD);
    let mut dave = Browser::new(&console);
    assert_eq!(dave.sign_in("dave", PASSWORD, "").await.status, 303);
    // dave reads for a minute: now the least recently active.
    gw.advance(60_000).await;

    // More cookie-less visits than the old session table held (100,000): dave stays signed in.
    let visits = 100_800;
    assert_eq!(flood(&console, visits).await, visits);
    let page = dave.get("/keys").await;
    assert_eq!(page.status, 200, "{:?}", page.location);

    // Before sign-in there is no session: the form carries a signed token for its cookie.
    let mut visitor = Browser::new(&console);
    let form = visitor.get("/signin").await;
    assert!(visitor.session().is_none(), "{:?}", visitor.cookies);
    let token = form.csrf();
    let filled = [
        ("csrf", token.as_str()),
        ("name", "dave"),
        ("password", PASSWORD),
    ];
    // Without the cookie, or with another visitor's token, the form is refused.
    let mut bare = Browser::new(&console);
    let refused = bare.post("/signin", &filled).await;
    assert_eq!(refused.status, 403);
    let mut other = Browser::new(&console);
    other.get("/signin").await;
    let refused = other.post("/signin", &filled).await;
    assert_eq!(refused.status, 403);
    // With both, it signs in, and only then is there a session.
    let page = visitor.post("/signin", &filled).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/keys"))
    );
    assert!(visitor.session().is_some());
    assert_eq!(visitor.get("/keys").await.status, 200);
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_ends_the_accounts_sessions() {
    let (_upstream, gw, console) = start().await;
    create_account(&gw, "erin", PASSWORD);
    create_account(&gw, "fred", PASSWORD);
    let mut laptop = Browser::new(&console);
    let mut phone = Browser::from(&console, "192.0.2.7");
    let mut fred = Browser::new(&console);
    for (browser, name) in [
        (&mut laptop, "erin"),
        (&mut phone, "erin"),
        (&mut fred, "fred"),
    ] {
        assert_eq!(browser.sign_in(name, PASSWORD, "").await.status, 303);
        assert_eq!(browser.get("/keys").await.status, 200);
    }
    let signed_out = |page: &Page| (page.status, page.location.clone());
    let to_sign_in = (303, Some("/signin".to_owned()));

    // The operator resets erin's password (CLI): both of erin's sessions end, fred's does not.
    let second = "a second password";
    set_password(&gw, "erin", second);
    assert_eq!(signed_out(&laptop.get("/keys").await), to_sign_in);
    assert_eq!(signed_out(&phone.get("/keys").await), to_sign_in);
    assert_eq!(fred.get("/keys").await.status, 200);
    assert_eq!(laptop.sign_in("erin", PASSWORD, "").await.status, 401);
    assert_eq!(laptop.sign_in("erin", second, "").await.status, 303);

    // Through the admin API.
    let third = "a third password";
    let answer = reqwest::Client::new()
        .put(format!("{}/admin/accounts/erin/password", gw.admin))
        .bearer_auth(TOKEN)
        .body(json!({ "password": third }).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(signed_out(&laptop.get("/keys").await), to_sign_in);
    assert_eq!(laptop.sign_in("erin", third, "").await.status, 303);

    // Through a one-time link the holder opens.
    let (ok, stdout, stderr) = accounts(&gw, &["link", "erin"]);
    assert!(ok, "{stderr}");
    let link = link_path(&stdout, &console);
    let mut holder = Browser::new(&console);
    let form = holder.get(&link).await;
    let fourth = "a fourth password";
    let set = holder
        .post(
            &link,
            &[
                ("csrf", &form.csrf()),
                ("password", fourth),
                ("repeat", fourth),
            ],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert_eq!(signed_out(&laptop.get("/keys").await), to_sign_in);
    assert_eq!(fred.get("/keys").await.status, 200);
    assert_eq!(laptop.sign_in("erin", fourth, "").await.status, 303);
    gw.terminate();
}
