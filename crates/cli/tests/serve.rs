//! `wbauth serve` in front of real upstreams on 127.0.0.1: rate limits (row 15), unrouted
//! paths (404), unreachable and slow upstreams (502/504), the client IP behind trusted proxies,
//! `body_match = "json"`, what the upstream receives, and the admin listener's `/metrics`,
//! `/healthz`, `/readyz`.

#![cfg(feature = "test-clock")]

mod common;

use common::catalogue::{ORDER, TOO_MANY};
use common::gateway::{Gateway, UPSTREAM_ANSWER, Upstream};
use common::{Answer, post, signed_headers};
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;

fn assert_answer(a: &Answer, status: u16, body: &str) {
    assert_eq!(
        (a.status, a.body.as_str()),
        (status, body),
        "full answer: {a:?}"
    );
}

/// Sends `sent_body` signed as `payload_body` (the same unless testing body matching).
async fn send(
    gw: &Gateway,
    key: &str,
    secret: &str,
    path: &str,
    payload_body: &str,
    sent_body: &str,
    extra: &[(&str, &[u8])],
) -> Answer {
    let signed = sign_body(
        payload_body.as_bytes().to_vec(),
        &HmacSha512Key::new(secret.as_bytes()),
    );
    let mut headers = signed_headers(key, &signed.payload, &signed.signature).to_vec();
    headers.extend_from_slice(extra);
    post(
        &format!("{}{path}", gw.base),
        &headers,
        sent_body.to_owned(),
    )
    .await
}

fn body(path: &str, nonce: u64) -> String {
    format!(r#"{{"request":"{path}","nonce":{nonce}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_counts_only_acceptable_nonces() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start_with(
        &upstream,
        "[rate_limit]\ntrade = { requests = 3, window_ms = 60000 }\n",
    )
    .await;
    let (key, secret) = gw.provision_key("rl", "trade", &[]).await;
    for nonce in 1..=3 {
        let b = body(ORDER, nonce);
        assert_answer(
            &send(&gw, &key, &secret, ORDER, &b, &b, &[]).await,
            200,
            UPSTREAM_ANSWER,
        );
    }
    // A replayed request is refused for its nonce and does not count against the limit...
    let replay = body(ORDER, 3);
    let a = send(&gw, &key, &secret, ORDER, &replay, &replay, &[]).await;
    assert_answer(&a, 429, TOO_MANY);
    // ...but a fourth fresh request in the window is over the limit.
    let b = body(ORDER, 4);
    let a = send(&gw, &key, &secret, ORDER, &b, &b, &[]).await;
    assert_answer(&a, 429, r#"{"code":0,"message":"Rate limit exceeded."}"#);
    let retry_after: u64 = a
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(upstream.count(), 3);
    // The limited request consumed nothing: after the window, the same nonce is accepted.
    gw.advance(60_000).await;
    assert_answer(
        &send(&gw, &key, &secret, ORDER, &b, &b, &[]).await,
        200,
        UPSTREAM_ANSWER,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_paths_and_failing_upstreams() {
    let upstream = Upstream::start().await;
    // A slow upstream: accepts, never answers.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let slow_addr = slow.local_addr().expect("addr");
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(std::future::pending::<&'static str>);
        let _ = axum::serve(slow, app).await;
    });
    // A closed port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let extra = format!(
        "[[route]]\nprefix = \"/api/v4/dead\"\nupstream = \"http://{dead_addr}\"\n\n\
         [[route]]\nprefix = \"/api/v4/slow\"\nupstream = \"http://{slow_addr}\"\ntimeout_ms = 300\n\n\
         [[kind]]\nname = \"ops\"\npaths = [\"/*\"]\n"
    );
    let gw = Gateway::start_with(&upstream, &extra).await;
    let (key, secret) = gw.provision_key("ops", "ops", &[]).await;

    let b = body("/elsewhere/x", 10);
    let a = send(&gw, &key, &secret, "/elsewhere/x", &b, &b, &[]).await;
    assert_answer(&a, 404, r#"{"code":0,"message":"Endpoint not found."}"#);
    // The 404 consumed nothing: nonce 10 is still free.
    let b = body("/api/v4/dead/x", 10);
    let a = send(&gw, &key, &secret, "/api/v4/dead/x", &b, &b, &[]).await;
    assert_answer(&a, 502, r#"{"code":0,"message":"Bad gateway."}"#);
    let b = body("/api/v4/slow/x", 11);
    let a = send(&gw, &key, &secret, "/api/v4/slow/x", &b, &b, &[]).await;
    assert_answer(&a, 504, r#"{"code":0,"message":"Gateway timeout."}"#);
    // Accepted requests whose upstream failed keep their nonce consumed.
    let a = send(&gw, &key, &secret, "/api/v4/slow/x", &b, &b, &[]).await;
    assert_answer(&a, 429, TOO_MANY);
    // The gateway is healthy afterwards.
    let b = body(ORDER, 12);
    assert_answer(
        &send(&gw, &key, &secret, ORDER, &b, &b, &[]).await,
        200,
        UPSTREAM_ANSWER,
    );
    assert_eq!(
        upstream.count(),
        1,
        "only the last request reached the recording upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_behind_trusted_proxies() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start_with(&upstream, "[proxy]\ntrusted = [\"127.0.0.0/8\"]\n").await;
    let (key, secret) = gw.provision_key("px", "trade", &["203.0.113.7"]).await;
    let disabled =
        r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#;
    type Headers<'a> = &'a [(&'a str, &'a [u8])];
    let cases: [(Headers<'_>, u16); 5] = [
        (&[("x-forwarded-for", b"203.0.113.7")], 200),
        (
            &[("x-forwarded-for", b"198.51.100.1, 203.0.113.7, 127.0.0.2")],
            200,
        ),
        (&[("x-forwarded-for", b"203.0.113.7, 198.51.100.1")], 401),
        (
            &[
                ("x-forwarded-for", b"203.0.113.7"),
                ("x-forwarded-for", b"198.51.100.9"),
            ],
            401,
        ),
        (&[], 401),
    ];
    for (i, (headers, status)) in cases.iter().enumerate() {
        let b = body(ORDER, 100 + i as u64);
        let a = send(&gw, &key, &secret, ORDER, &b, &b, headers).await;
        if *status == 200 {
            assert_answer(&a, 200, UPSTREAM_ANSWER);
        } else {
            assert_answer(&a, 401, disabled);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_body_match_and_what_the_upstream_receives() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start_with(&upstream, "[verify]\nbody_match = \"json\"\n").await;
    let (key, secret) = gw.provision_key("js", "trade", &[]).await;
    let payload = r#"{"request":"/api/v4/order/new","nonce":7,"amount":"0.01","price":40000}"#;
    let reserialised =
        r#"{"price": 40000, "amount": "0.01", "nonce": 7, "request": "\/api\/v4\/order\/new"}"#;
    let a = send(
        &gw,
        &key,
        &secret,
        ORDER,
        payload,
        reserialised,
        &[
            ("x-auth-account", b"someone-else"),
            ("x-auth-key", b"forged"),
            ("connection", b"keep-alive, x-hop"),
            ("x-hop", b"1"),
            ("x-request-id", b"abc"),
        ],
    )
    .await;
    assert_answer(&a, 200, UPSTREAM_ANSWER);
    let seen = upstream.last();
    assert_eq!(seen.path, ORDER);
    assert_eq!(
        seen.body,
        payload.as_bytes(),
        "the signed bytes, not the body sent"
    );
    let header = |name: &str| -> Vec<String> {
        seen.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("?").to_owned())
            .collect()
    };
    assert_eq!(header("x-auth-key"), std::slice::from_ref(&key));
    assert_eq!(header("x-auth-account"), ["js"]);
    assert_eq!(header("content-length"), [payload.len().to_string()]);
    assert_eq!(header("x-request-id"), ["abc"], "end-to-end headers pass");
    assert!(
        header("x-hop").is_empty(),
        "Connection-listed headers are hop-by-hop"
    );
    for name in seen.headers.keys() {
        assert!(!name.as_str().starts_with("x-txc-"), "{name} forwarded");
    }
    // A body that is a different JSON value is still refused.
    let different =
        r#"{"price": 40001, "amount": "0.01", "nonce": 8, "request": "/api/v4/order/new"}"#;
    let p8 = r#"{"request":"/api/v4/order/new","nonce":8,"amount":"0.01","price":40000}"#;
    let a = send(&gw, &key, &secret, ORDER, p8, different, &[]).await;
    assert_answer(&a, 400, r#"{"code":9,"message":"Invalid payload."}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_on_the_admin_listener() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let (key, secret) = gw.provision_key("mx", "trade", &[]).await;
    let b = body(ORDER, 1);
    assert_answer(
        &send(&gw, &key, &secret, ORDER, &b, &b, &[]).await,
        200,
        UPSTREAM_ANSWER,
    );
    assert_eq!(
        send(&gw, &key, &secret, ORDER, &b, &b, &[]).await.status,
        429
    );
    let get = |path: &str| {
        let url = format!("{}{path}", gw.admin);
        async move {
            let r = reqwest::get(url).await.expect("admin GET");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("wbauth_requests_total{outcome=\"accepted\",row=\"\",status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("wbauth_requests_total{outcome=\"refused\",row=\"16c\",status=\"429\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("wbauth_keys 1\n"), "{text}");
    assert!(text.contains("wbauth_nonce_records_total 1\n"), "{text}");
    assert!(
        !text.contains(&key) && !text.contains(&secret),
        "no per-key data in metrics"
    );
    assert_eq!(
        get("/healthz").await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    assert_eq!(get("/readyz").await.0, 200);
    // The public listener has no operational routes.
    let public = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .expect("GET");
    assert_eq!(public.status().as_u16(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_change_nothing_and_logs_hold_no_secrets() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let (key, secret) = gw.provision_key("nc", "trade", &[]).await;
    let accepted_at = gw.advance(1_000).await;
    let b = body(ORDER, 5);
    assert_answer(
        &send(&gw, &key, &secret, ORDER, &b, &b, &[]).await,
        200,
        UPSTREAM_ANSWER,
    );
    let last_used =
        |gw: &Gateway| gw.ok_json(&["keys", "show", &key])["key"]["last_used_ms"].as_u64();
    assert_eq!(last_used(&gw), Some(accepted_at));
    gw.advance(10_000).await;

    // Refused for its signature, its path (another kind), its nonce: nothing changes.
    let b6 = body(ORDER, 6);
    let a = send(&gw, &key, "wrong-secret", ORDER, &b6, &b6, &[]).await;
    assert_answer(&a, 401, r#"{"code":10,"message":"Unauthorized request."}"#);
    let main = "/api/v4/main-account/balance";
    let bm = body(main, 6);
    let a = send(&gw, &key, &secret, main, &bm, &bm, &[]).await;
    assert_answer(
        &a,
        403,
        r#"{"code":0,"message":"You don't have permission to use this endpoint."}"#,
    );
    let a = send(&gw, &key, &secret, ORDER, &b, &b, &[]).await;
    assert_answer(&a, 429, TOO_MANY);
    assert_eq!(
        upstream.count(),
        1,
        "no refused request reached the upstream"
    );
    assert_eq!(last_used(&gw), Some(accepted_at), "last used unchanged");
    // Nonce 6 was never consumed.
    assert_answer(
        &send(&gw, &key, &secret, ORDER, &b6, &b6, &[]).await,
        200,
        UPSTREAM_ANSWER,
    );

    // Debug logs have a line per request, and never a payload, a signature or a secret.
    let signed = sign_body(
        b6.as_bytes().to_vec(),
        &HmacSha512Key::new(secret.as_bytes()),
    );
    let logs = gw.stderr_text();
    assert!(logs.contains("wbauth::request"), "{logs}");
    for forbidden in [
        secret.as_str(),
        signed.payload.as_str(),
        signed.signature.as_str(),
        &b6,
    ] {
        assert!(!logs.contains(forbidden), "the log holds {forbidden:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_without_a_signing_key_is_a_configuration_issue() {
    let upstream = Upstream::start().await;
    let missing = std::env::temp_dir().join("wbauth-no-such-key.pem");
    let extra = format!(
        "[[kind]]\nname = \"fiat\"\npaths = [\"/api/v4/jwt\"]\n\n[tokens]\nkeys = [{{ pem = \"{}\" }}]\n",
        missing.display()
    );
    let gw = Gateway::start_with(&upstream, &extra).await;
    let (key, secret) = gw.provision_key("tk", "fiat", &[]).await;
    let jwt = "/api/v4/jwt";
    let b = body(jwt, 1);
    let a = send(&gw, &key, &secret, jwt, &b, &b, &[]).await;
    assert_answer(
        &a,
        500,
        r#"{"code":0,"message":"Server configuration issues"}"#,
    );
    // Other failures keep the endpoint's own shapes.
    let a = send(&gw, &key, "wrong", jwt, &b, &b, &[]).await;
    assert_answer(
        &a,
        401,
        r#"{"code":0,"message":"Invalid API key, signature, or nonce"}"#,
    );
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", gw.base))
        .await
        .expect("jwks");
    assert_eq!(jwks.text().await.expect("body"), r#"{"keys":[]}"#);
    assert!(gw.stderr_text().contains("tokens.keys[0] is not usable"));
    assert_eq!(upstream.count(), 0);
}

/// Reads until the server answers or closes (bounded); returns what arrived.
fn read_until_closed(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read as _;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_by_the_configured_timeouts() {
    use std::io::Write as _;
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let (key, secret) = gw.provision_key("slow", "trade", &[]).await;
    // Restart on the same data dir with short timeouts.
    let dir = gw._dir_guard.as_ref().expect("dir").path().to_path_buf();
    let config = std::fs::read_to_string(dir.join("gateway.toml")).expect("config");
    let config = config.replacen(
        "[listen]\naddr = \"127.0.0.1:0\"\n",
        "[listen]\naddr = \"127.0.0.1:0\"\nheader_timeout_ms = 300\nbody_timeout_ms = 300\n",
        1,
    );
    assert!(config.contains("header_timeout_ms = 300"), "{config}");
    std::fs::write(dir.join("gateway.toml"), config).expect("config");
    let now = gw.advance(0).await;
    let gw = gw.kill9_and_restart(1, now);
    let addr = gw.base.trim_start_matches("http://").to_owned();

    // Headers that never finish: the connection is closed (or answered 408).
    let unfinished = |request: &[u8]| {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream.write_all(request).expect("write");
        let answer = read_until_closed(&mut stream);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer:?}"
        );
    };
    unfinished(b"POST /api/v4/order/new HTTP/1.1\r\nHost: x\r\n");

    // A body that never finishes: 408, nothing consumed, nothing forwarded.
    unfinished(b"POST /api/v4/order/new HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"request\"");
    assert_eq!(upstream.count(), 0);

    // Complete requests are still served.
    let b = body(ORDER, 1);
    let a = send(&gw, &key, &secret, ORDER, &b, &b, &[]).await;
    assert_answer(&a, 200, UPSTREAM_ANSWER);
}

/// A raw GET/POST to the admin listener with exactly this `Host` (none for `None`).
fn admin_request(gw: &Gateway, method: &str, path: &str, host: Option<&str>) -> (u16, String) {
    let addr = gw.admin.trim_start_matches("http://").to_owned();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if let Some(host) = host {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    request.push_str(&format!(
        "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
        common::gateway::TOKEN
    ));
    let body = if method == "POST" {
        r#"{"name":"rebound"}"#
    } else {
        ""
    };
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    match common::raw::exchange(&addr, request.into_bytes()) {
        common::raw::Reply::Response(r) => {
            let text = r.body_text();
            (r.status, text)
        }
        other => panic!("{method} {path} with Host {host:?}: no answer: {other:?}"),
    }
}

/// The admin listener answers only requests addressed to it by a loopback name or address (or,
/// with `allow_remote`, a configured name): a page of some web site whose name resolves to
/// 127.0.0.1 (DNS rebinding) gets neither `/metrics`, `/readyz`, `/healthz` nor the admin API,
/// and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_checks_the_host() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let port = gw.admin.rsplit(':').next().expect("port").to_owned();
    let routes = [
        ("GET", "/metrics"),
        ("GET", "/readyz"),
        ("GET", "/healthz"),
        ("GET", "/admin/accounts"),
        ("POST", "/admin/accounts"),
        ("GET", "/test/clock"),
    ];
    let foreign = [
        Some("evil.example".to_owned()),
        Some(format!("evil.example:{port}")),
        Some(format!("127.0.0.1.nip.io:{port}")),
        Some(format!("localhost.evil.example:{port}")),
        Some("127.0.0.1:80@evil.example".to_owned()),
        Some(String::new()),
        None,
    ];
    for (method, path) in routes {
        for host in &foreign {
            let (status, body) = admin_request(&gw, method, path, host.as_deref());
            assert_eq!(status, 421, "{method} {path} with Host {host:?}: {body}");
            let value: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
            let message = value["message"].as_str().expect("message");
            assert!(
                message.contains("loopback") && message.contains("[admin] hosts"),
                "{message}"
            );
            assert!(!message.contains("decision"), "{message}");
        }
    }
    // Nothing was created by the refused POSTs.
    let loopback = format!("127.0.0.1:{port}");
    let (status, body) = admin_request(&gw, "GET", "/admin/accounts", Some(&loopback));
    assert_eq!((status, body.as_str()), (200, r#"{"accounts":[]}"#));
    // Loopback names and addresses, with or without the port, in any case.
    for host in [
        loopback.clone(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        for path in ["/metrics", "/readyz", "/healthz", "/admin/accounts"] {
            let (status, body) = admin_request(&gw, "GET", path, Some(&host));
            assert_eq!(status, 200, "GET {path} with Host {host:?}: {body}");
        }
    }
    let (status, _) = admin_request(&gw, "POST", "/admin/accounts", Some(&loopback));
    assert_eq!(status, 201);
    // The public listener is not concerned.
    let public = reqwest::get(format!("{}/api/v4/public/time", gw.base))
        .await
        .expect("GET");
    assert_ne!(public.status().as_u16(), 421);

    // With allow_remote, the configured names are accepted too (still on loopback here).
    drop(gw);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::gateway::write_config(dir.path(), upstream.addr, "");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "[admin]\naddr = \"127.0.0.1:0\"\n",
            "[admin]\naddr = \"127.0.0.1:0\"\nallow_remote = true\nhosts = [\"Admin.Internal\", \"ops.internal:9999\"]\n",
        ),
    )
    .expect("config written");
    let gw = common::gateway::spawn_serve(
        dir.path(),
        &config,
        &[("WBAUTH_ADMIN_TOKEN", common::gateway::TOKEN)],
        "remote.log",
    )
    .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    let port = gw.admin.rsplit(':').next().expect("port").to_owned();
    for (host, status) in [
        (format!("admin.internal:{port}"), 200),
        ("admin.internal".to_owned(), 200),
        ("ops.internal:9999".to_owned(), 200),
        (format!("ops.internal:{port}"), 421),
        (format!("other.internal:{port}"), 421),
        (format!("127.0.0.1:{port}"), 200),
    ] {
        assert_eq!(
            admin_request(&gw, "GET", "/metrics", Some(&host)).0,
            status,
            "Host {host:?}"
        );
    }
}

/// The admin listener binds a loopback address unless `[admin] allow_remote = true`; any other
/// address is refused at start-up with what to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_refuses_a_remote_bind_unless_allowed() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    /// (name, `[admin]` section, environment, what stderr must say)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case<'_>; 4] = [
        (
            "0.0.0.0",
            "[admin]\naddr = \"0.0.0.0:0\"\n",
            &[],
            &["admin.addr", "0.0.0.0:0", "loopback", "allow_remote = true"],
        ),
        (
            "[::]",
            "[admin]\naddr = \"[::]:0\"\n",
            &[],
            &["admin.addr", "[::]:0", "allow_remote = true"],
        ),
        (
            "environment",
            "[admin]\naddr = \"127.0.0.1:0\"\n",
            &[("WBAUTH_GATEWAY__ADMIN__ADDR", "192.0.2.10:0")],
            &["admin.addr", "192.0.2.10:0", "allow_remote = true"],
        ),
        (
            "hosts without allow_remote",
            "[admin]\naddr = \"127.0.0.1:0\"\nhosts = [\"admin.internal\"]\n",
            &[],
            &["admin.hosts", "allow_remote = true"],
        ),
    ];
    for (name, admin, env, said) in cases {
        let config = common::gateway::write_config(dir.path(), upstream.addr, "");
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(
            &config,
            text.replace("[admin]\naddr = \"127.0.0.1:0\"\n", admin),
        )
        .expect("config written");
        let Err((status, stderr)) =
            common::gateway::spawn_serve(dir.path(), &config, env, &format!("{name}.log"))
        else {
            panic!("{name}: the admin listener was bound");
        };
        assert_eq!(status.code(), Some(2), "{name}: {stderr}");
        for s in said {
            assert!(stderr.contains(s), "{name}: {s:?} missing: {stderr}");
        }
        assert!(!stderr.contains("decision"), "{stderr}");
    }
}

/// `wbauth serve --check`: a usable configuration answers `ok=FILE` and exit 0 without creating
/// the data dir or binding anything; a broken one exits 2 naming the file, line and key; a token
/// key that cannot be loaded (only logged at start) is an error here.
#[tokio::test]
async fn check_validates_without_starting_anything() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wbauth"))
            .args(["serve", "--check", "--config"])
            .arg(config)
            .output()
            .expect("runs")
    };
    let good = common::gateway::write_config(dir.path(), upstream.addr, "");
    let out = check(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout.trim(), format!("ok={}", good.display()));
    assert!(
        !dir.path().join("data").exists(),
        "--check created the data dir"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[listen]\naddr = \"127.0.0.1:0\"\n\n[keys]\nmax_ips = \"many\"\n",
    )
    .expect("written");
    let out = check(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in ["bad.toml", "line 5", "max_ips"] {
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }

    let missing_pem = dir.path().join("missing.pem");
    let tokens = common::fiat::token_keys(&missing_pem);
    let with_key = common::gateway::write_config(dir.path(), upstream.addr, &tokens);
    let out = check(&with_key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tokens.keys[0]") && stderr.contains("missing.pem"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// `[store] nonce_replicas_ack` above the replicas the Redis master reports: `wbauth serve`
/// refuses to start, naming the setting, what the master has and what to do.
#[tokio::test]
async fn replica_acks_the_redis_master_cannot_give_refuse_the_start() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::gateway::write_config(dir.path(), upstream.addr, "");
    let nonces = common::backends::redis().fresh_database_url();
    let env = [
        ("WBAUTH_ADMIN_TOKEN", common::gateway::TOKEN),
        ("WBAUTH_GATEWAY__STORE__NONCES", nonces.as_str()),
        ("WBAUTH_GATEWAY__STORE__NONCE_REPLICAS_ACK", "1"),
    ];
    let Err((status, stderr)) = common::gateway::spawn_serve(dir.path(), &config, &env, "ack.log")
    else {
        panic!("serve started with nonce_replicas_ack = 1 and no replica");
    };
    assert!(!status.success(), "{stderr}");
    for said in [
        "store.nonces",
        "store.nonce_replicas_ack = 1",
        "0 connected replicas",
        "lower store.nonce_replicas_ack",
    ] {
        assert!(stderr.contains(said), "{said:?} missing: {stderr}");
    }
}
