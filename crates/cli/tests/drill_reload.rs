//! Live reload drill: `wbauth serve` under steady load on keep-alive connections
//! while its configuration file changes and is reloaded again and again — by `SIGHUP`, by
//! `POST /admin/reload` and by `wbauth reload` in turn. Each round moves a route to a second
//! upstream, opens a new path to a kind and flips a rate limit; after each reload the very
//! next requests must see the change. Two broken files in between are refused and leave the
//! running configuration in force. Under all of it the load gets only 200s, on the same
//! connections it opened first: zero failed requests, zero dropped connections.
//!
//! No timing: each round waits (bounded) until the load has made progress, so every reload
//! happens with requests in flight; a `SIGHUP` reload is known done from the reload counter in
//! `/metrics`.

#![cfg(feature = "test-clock")]

mod common;
mod drill_support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::catalogue::FORBIDDEN;
use common::gateway::{Gateway, T0, TOKEN, UPSTREAM_ANSWER, Upstream, spawn_serve};
use drill_support::{Prepared, Scale, wait_for};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const RATE_LIMITED: &str = r#"{"code":0,"message":"Rate limit exceeded."}"#;
/// The load's path: routed to the first upstream in every round.
const LOAD_PATH: &str = "/api/v4/trade-account/balance";
/// Keys of the load, each on one keep-alive connection of its own.
const LOAD_CONNECTIONS: usize = 4;

/// The configuration of round `round`: the route `/api/v4/order/r{round}` goes to `moved`,
/// the `main` kind also opens `/api/v4/main-r{round}/*`, and the `limited` kind may send one
/// request per hour in odd rounds, a thousand in even ones.
fn config(data: &Path, first: SocketAddr, moved: SocketAddr, round: usize) -> String {
    let limit = if round % 2 == 1 { 1 } else { 1000 };
    format!(
        r#"[listen]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[store]
data_dir = "{data}"

[[kind]]
name = "trade"
paths = ["/api/v4/trade-account/*", "/api/v4/order/*"]

[[kind]]
name = "main"
paths = ["/api/v4/main-account/*", "/api/v4/main-r{round}/*"]

[[kind]]
name = "limited"
paths = ["/api/v4/limited/*"]

[[route]]
prefix = "/api/v4"
upstream = "http://{first}"

[[route]]
prefix = "/api/v4/order/r{round}"
upstream = "http://{moved}"

[rate_limit]
limited = {{ requests = {limit}, window_ms = 3600000 }}
"#,
        data = data.display()
    )
}

/// One keep-alive HTTP/1.1 connection, never replaced: a send that fails means it dropped.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    async fn open(base: &str) -> Self {
        let host = base.trim_start_matches("http://").to_owned();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect to the gateway");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        Self { sender, host }
    }

    /// Sends one signed request; `None` when the connection failed.
    async fn send(&mut self, request: &Prepared) -> Option<(u16, String)> {
        self.sender.ready().await.ok()?;
        let http = hyper::Request::post(request.path())
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("x-txc-apikey", &request.key)
            .header("x-txc-payload", &request.signed.payload)
            .header("x-txc-signature", &request.signed.signature)
            .body(Full::new(Bytes::from(request.body.clone())))
            .ok()?;
        let response = self.sender.send_request(http).await.ok()?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// What the load saw.
#[derive(Default)]
struct Load {
    answered: AtomicU64,
    /// Anything but a 200 with the upstream's answer.
    failed: AtomicU64,
    /// Connections that failed (each load task has one, never reopened).
    dropped: AtomicU64,
    stop: AtomicBool,
}

async fn drive(load: Arc<Load>, base: String, key: String, secret: String) {
    let mut connection = Connection::open(&base).await;
    let mut nonce = 1;
    while !load.stop.load(Ordering::Relaxed) {
        let request = Prepared::new(&key, &secret, LOAD_PATH, nonce, false);
        nonce += 1;
        match connection.send(&request).await {
            Some((200, body)) if body == UPSTREAM_ANSWER => {}
            other => {
                eprintln!("load request {nonce} failed: {other:?}");
                load.failed.fetch_add(1, Ordering::Relaxed);
                if other.is_none() {
                    load.dropped.fetch_add(1, Ordering::Relaxed);
                    return; // not reopened
                }
            }
        }
        load.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// A probe: one signed request on its own, its status and body.
async fn probe(gateway: &Gateway, key: &(String, String), path: &str) -> (u16, String) {
    let request = Prepared::new(&key.0, &key.1, path, Gateway::nonce(), false);
    let reply = drill_support::send(&gateway.base, &request).await;
    (reply.status.unwrap_or(0), reply.body)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn post_reload(gateway: &Gateway) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/admin/reload", gateway.admin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST /admin/reload");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("an answer");
    (status, serde_json::from_str(&text).expect("a JSON answer"))
}

/// Sends `SIGHUP` and waits until the gateway has counted `reloads` reloads (put in force) and
/// `refused` refusals.
async fn hangup(gateway: &Gateway, reloads: u64, refused: u64) {
    let pid = gateway.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = gateway.metrics().await;
        let (done, failed) = (
            metric(&text, "wbauth_config_reloads_total"),
            metric(&text, "wbauth_config_reload_failures_total"),
        );
        if (done, failed) == (reloads, refused) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP reload not counted: {done} reloads, {failed} refused"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_drop_nothing_and_apply_from_the_next_request() {
    let scale = Scale::from_env();
    let rounds: usize = scale.pick(20, 100);
    let first = Upstream::start().await;
    let moved = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, config(&data, first.addr, moved.addr, 0)).expect("config");
    let gateway = spawn_serve(
        dir.path(),
        &file,
        &[("WBAUTH_ADMIN_TOKEN", TOKEN), ("WBAUTH_LOG", "info")],
        "stderr.log",
    )
    .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    gateway.clock(json!({"set_ms": T0})).await;

    let main = gateway.provision_key("main-holder", "main", &[]).await;
    let trade = gateway.provision_key("trader", "trade", &[]).await;
    let limited = gateway
        .provision_key("limited-holder", "limited", &[])
        .await;
    let mut load_keys = Vec::new();
    for i in 0..LOAD_CONNECTIONS {
        load_keys.push(
            gateway
                .provision_key(&format!("load-{i}"), "trade", &[])
                .await,
        );
    }

    let load = Arc::new(Load::default());
    let drivers: Vec<_> = load_keys
        .into_iter()
        .map(|(key, secret)| tokio::spawn(drive(load.clone(), gateway.base.clone(), key, secret)))
        .collect();

    let (mut reloads, mut refused) = (0, 0);
    for round in 1..=rounds {
        // Requests in flight around every reload.
        let seen = load.answered.load(Ordering::Relaxed);
        wait_for("load progress", Duration::from_secs(30), || {
            load.answered.load(Ordering::Relaxed) >= seen + 10
        })
        .await;

        if round == rounds / 2 {
            // A broken file, by both ways: refused, and the previous round stays in force.
            std::fs::write(&file, "[[route]]\nprefix = \"/api/v4\"\nupstream = 5\n")
                .expect("write");
            let (status, answer) = post_reload(&gateway).await;
            assert_eq!(status, 400, "{answer}");
            assert_eq!(answer["line"], 3, "{answer}");
            assert_eq!(answer["key"], "route.upstream", "{answer}");
            refused += 1;
            hangup(&gateway, reloads, refused + 1).await;
            refused += 1;
            let (status, body) =
                probe(&gateway, &trade, &format!("/api/v4/order/r{}/x", round - 1)).await;
            assert_eq!((status, body.as_str()), (200, UPSTREAM_ANSWER));
            assert_eq!(moved.last().path, format!("/api/v4/order/r{}/x", round - 1));
        }

        std::fs::write(&file, config(&data, first.addr, moved.addr, round)).expect("write");
        match round % 3 {
            0 => {
                hangup(&gateway, reloads + 1, refused).await;
            }
            1 => {
                let (status, answer) = post_reload(&gateway).await;
                assert_eq!(status, 200, "{answer}");
                assert_eq!(
                    answer["changed"],
                    json!(["[[route]]", "[[kind]]", "[rate_limit]"]),
                    "round {round}"
                );
            }
            _ => {
                let out = tokio::task::block_in_place(|| gateway.cli(&["reload"]));
                assert!(out.status.success(), "{out:?}");
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.starts_with("Reloaded "), "{text}");
            }
        }
        reloads += 1;

        // The route moved: r{round} reaches the second upstream, r{round-1} the first again.
        let before = moved.count();
        let new_route = format!("/api/v4/order/r{round}/x");
        assert_eq!(
            probe(&gateway, &trade, &new_route).await,
            (200, UPSTREAM_ANSWER.to_owned())
        );
        assert_eq!(
            moved.count(),
            before + 1,
            "round {round}: {new_route} not moved"
        );
        assert_eq!(moved.last().path, new_route);
        let old_route = format!("/api/v4/order/r{}/x", round - 1);
        let before_first = first.seen.lock().expect("lock").len();
        assert_eq!(
            probe(&gateway, &trade, &old_route).await,
            (200, UPSTREAM_ANSWER.to_owned())
        );
        assert_eq!(
            moved.count(),
            before + 1,
            "round {round}: {old_route} still moved"
        );
        assert!(
            first.seen.lock().expect("lock")[before_first..]
                .iter()
                .any(|s| s.path == old_route),
            "round {round}: {old_route} not back on the first upstream"
        );

        // The kind opens the new path and no longer the old one.
        let open = format!("/api/v4/main-r{round}/x");
        let closed = format!("/api/v4/main-r{}/x", round - 1);
        assert_eq!(
            probe(&gateway, &main, &open).await,
            (200, UPSTREAM_ANSWER.to_owned())
        );
        assert_eq!(
            probe(&gateway, &main, &closed).await,
            (403, FORBIDDEN.to_owned())
        );

        // The rate limit: one request an hour in odd rounds (a new limit, counted afresh).
        let path = "/api/v4/limited/x";
        assert_eq!(
            probe(&gateway, &limited, path).await,
            (200, UPSTREAM_ANSWER.to_owned())
        );
        let second = probe(&gateway, &limited, path).await;
        if round % 2 == 1 {
            assert_eq!(second, (429, RATE_LIMITED.to_owned()), "round {round}");
        } else {
            assert_eq!(second, (200, UPSTREAM_ANSWER.to_owned()), "round {round}");
        }
    }

    let seen = load.answered.load(Ordering::Relaxed);
    wait_for(
        "load after the last reload",
        Duration::from_secs(30),
        || load.answered.load(Ordering::Relaxed) >= seen + 10,
    )
    .await;
    load.stop.store(true, Ordering::Relaxed);
    for driver in drivers {
        driver.await.expect("load task");
    }
    let answered = load.answered.load(Ordering::Relaxed);
    let failed = load.failed.load(Ordering::Relaxed);
    let dropped = load.dropped.load(Ordering::Relaxed);
    let text = gateway.metrics().await;
    assert_eq!(metric(&text, "wbauth_config_reloads_total"), reloads);
    assert_eq!(
        metric(&text, "wbauth_config_reload_failures_total"),
        refused
    );
    println!(
        "drill=reload scale={} reloads={reloads} refused={refused} load_requests={answered} \
         failed={failed} connections={LOAD_CONNECTIONS} dropped={dropped}",
        scale.name()
    );
    assert_eq!(
        (failed, dropped),
        (0, 0),
        "load requests failed or connections dropped"
    );
}
