//! The path rule and the forwarding allow-list (`docs/paths-and-forwarding.md`), through the
//! real `wbauth serve` with raw request lines (an HTTP library may decode `%2e` before sending)
//! in front of a real nginx that decodes and resolves paths, as many upstream stacks do.

mod common;

use common::catalogue::{FORBIDDEN, PATH_MISMATCH};
use common::gateway::{Gateway, T0, Upstream};
use common::raw::{self, Reply};
use wbauth_testkit::NginxServer;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;

/// A signed request as raw bytes: `target` on the request line, `request` in the body,
/// `extra` header lines (each ending in CRLF).
fn raw_signed(
    host: &str,
    key: &str,
    secret: &str,
    target: &str,
    request: &str,
    nonce: u64,
    extra: &str,
) -> Vec<u8> {
    let body = format!(
        r#"{{"request":{},"nonce":{nonce}}}"#,
        serde_json::to_string(request).expect("JSON string")
    );
    let signed = sign_body(body.into_bytes(), &HmacSha512Key::new(secret.as_bytes()));
    let mut out = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         X-TXC-APIKEY: {key}\r\nX-TXC-PAYLOAD: {}\r\nX-TXC-SIGNATURE: {}\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        signed.payload,
        signed.signature,
        signed.body.len()
    )
    .into_bytes();
    out.extend_from_slice(&signed.body);
    out
}

fn host_of(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

fn answer(reply: &Reply) -> (u16, String) {
    match reply {
        Reply::Response(r) => (r.status, r.body_text()),
        Reply::Closed { partial } => panic!(
            "closed without an answer: {:?}",
            String::from_utf8_lossy(partial)
        ),
    }
}

/// Every class of path that another component could read as a different endpoint, each as
/// (request line target, `request` field). All of them aim from the trade kind's prefix at
/// the main kind's withdraw endpoint, or are otherwise ambiguous.
fn ambiguous_paths() -> [(&'static str, String); 17] {
    let up = "/api/v4/trade-account";
    [
        ("encoded dots", format!("{up}/%2e%2e/main-account/withdraw")),
        (
            "encoded dots, upper case",
            format!("{up}/%2E%2E/main-account/withdraw"),
        ),
        (
            "half-encoded dots",
            format!("{up}/.%2e/main-account/withdraw"),
        ),
        (
            "encoded dot then dot",
            format!("{up}/%2e./main-account/withdraw"),
        ),
        (
            "dot-dot-semicolon",
            format!("{up}/..;/main-account/withdraw"),
        ),
        ("semicolon parameter", format!("{up}/balance;x=1")),
        (
            "encoded backslash",
            format!("{up}/..%5cmain-account%5cwithdraw"),
        ),
        ("backslash", format!("{up}/..\\main-account\\withdraw")),
        (
            "encoded slash",
            format!("{up}%2f..%2fmain-account%2fwithdraw"),
        ),
        ("any escape", format!("{up}/%62alance")),
        (
            "double-encoded dots",
            format!("{up}/%252e%252e/main-account/withdraw"),
        ),
        ("colon", format!("{up}/balance:withdraw")),
        ("at sign", format!("{up}/@main-account/withdraw")),
        ("sub-delimiters", format!("{up}/balance!$&'()*+,=")),
        ("query", format!("{up}/balance?x=/main-account/withdraw")),
        ("literal dot-dot", format!("{up}/../main-account/withdraw")),
        ("literal dot", format!("{up}/./balance")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_key_gets_row_8_for_every_ambiguous_path_and_the_upstream_sees_nothing() {
    let upstream = Upstream::start().await;
    // nginx with a URI in proxy_pass decodes %XX, resolves dot segments and merges slashes
    // before it passes the request on: what turned `%2e%2e` into another kind's endpoint.
    let nginx = NginxServer::start(&format!("proxy_pass http://{}/;", upstream.addr))
        .expect("nginx starts (./test.sh installs it)");
    let gateway = Gateway::start_for(nginx.addr(), "").await;
    let (key, secret) = gateway.provision_key("alice", "trade", &[]).await;
    let host = host_of(&gateway.base);
    let addr = host.clone();
    let mut nonce = T0;

    // The attack is real: nginx turns the encoded path into the withdraw endpoint.
    let direct = raw::exchange(
        &nginx.addr().to_string(),
        b"POST /api/v4/trade-account/%2e%2e/main-account/withdraw HTTP/1.1\r\nHost: x\r\n\
          Content-Length: 2\r\nConnection: close\r\n\r\n{}"
            .to_vec(),
    );
    assert_eq!(answer(&direct).0, 200);
    assert_eq!(upstream.last().path, "/api/v4/main-account/withdraw");

    // Controls: the key's own endpoint passes through both proxies; withdraw asked directly
    // is outside its kind.
    nonce += 1;
    let own = "/api/v4/trade-account/balance";
    let reply = raw::exchange(&addr, raw_signed(&host, &key, &secret, own, own, nonce, ""));
    assert_eq!(answer(&reply).0, 200, "{reply:?}");
    assert_eq!(upstream.last().path, own);
    nonce += 1;
    let withdraw = "/api/v4/main-account/withdraw";
    let reply = raw::exchange(
        &addr,
        raw_signed(&host, &key, &secret, withdraw, withdraw, nonce, ""),
    );
    assert_eq!(answer(&reply), (403, FORBIDDEN.to_owned()));

    let before = upstream.count();
    let first_refused = nonce + 1;
    for (what, path) in ambiguous_paths() {
        // The same text on the request line and in `request`: the row-8 comparison alone
        // would pass; the path rule must refuse it.
        nonce += 1;
        let reply = raw::exchange(
            &addr,
            raw_signed(&host, &key, &secret, &path, &path, nonce, ""),
        );
        assert_eq!(
            answer(&reply),
            (400, PATH_MISMATCH.to_owned()),
            "{what}: {path}"
        );
        // `request` alone carries it, the URL is the key's own endpoint.
        nonce += 1;
        let reply = raw::exchange(
            &addr,
            raw_signed(&host, &key, &secret, own, &path, nonce, ""),
        );
        assert_eq!(
            answer(&reply),
            (400, PATH_MISMATCH.to_owned()),
            "{what} in request"
        );
        // The URL alone carries it.
        nonce += 1;
        let reply = raw::exchange(
            &addr,
            raw_signed(&host, &key, &secret, &path, own, nonce, ""),
        );
        assert_eq!(
            answer(&reply),
            (400, PATH_MISMATCH.to_owned()),
            "{what} in the URL"
        );
    }
    assert_eq!(upstream.count(), before, "nothing reached the upstream");

    // Non-ASCII on the request line: the HTTP layer refuses it, or row 8 does.
    nonce += 1;
    let mut request = raw_signed(
        &host,
        &key,
        &secret,
        "/api/v4/trade-account/XX",
        own,
        nonce,
        "",
    );
    let at = request
        .windows(2)
        .position(|w| w == b"XX")
        .expect("placeholder");
    request.splice(at..at + 2, "é".bytes());
    match raw::exchange(&addr, request) {
        Reply::Response(r) => {
            assert_eq!(r.status, 400);
            assert!(r.body.is_empty() || r.body_text() == PATH_MISMATCH, "{r:?}");
        }
        Reply::Closed { .. } => {}
    }
    // The `request` field in non-ASCII: row 8.
    nonce += 1;
    let odd = "/api/v4/trade-account/bal\u{e4}nce";
    let reply = raw::exchange(&addr, raw_signed(&host, &key, &secret, own, odd, nonce, ""));
    assert_eq!(answer(&reply), (400, PATH_MISMATCH.to_owned()));
    assert_eq!(upstream.count(), before, "nothing reached the upstream");

    // Refusals consumed no nonce: the first refused nonce is still free (strict mode takes
    // any nonce above the last accepted one).
    let reply = raw::exchange(
        &addr,
        raw_signed(&host, &key, &secret, own, own, first_refused, ""),
    );
    assert_eq!(answer(&reply).0, 200, "{reply:?}");

    // Slashes are merged, nothing else: `//` reaches the key's own endpoint.
    let reply = raw::exchange(
        &addr,
        raw_signed(
            &host,
            &key,
            &secret,
            "//api/v4//trade-account/balance",
            own,
            nonce + 1,
            "",
        ),
    );
    assert_eq!(answer(&reply).0, 200, "{reply:?}");
    assert_eq!(upstream.last().path, own);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allow_listed_headers_reach_the_upstream() {
    let upstream = Upstream::start().await;
    // The second route lists its own headers; the first keeps the default list.
    let extra = format!(
        "[[route]]\nprefix = \"/api/v4/order\"\nupstream = \"http://{}\"\n\
         forward_headers = [\"X-Tenant\"]\n",
        upstream.addr
    );
    let gateway = Gateway::start_with(&upstream, &extra).await;
    let (key, secret) = gateway.provision_key("alice", "trade", &[]).await;
    let host = host_of(&gateway.base);
    let hostile = "Accept: application/json\r\nAccept-Language: en\r\nUser-Agent: bot/1\r\n\
                   X-Request-Id: r-1\r\nX-Tenant: t-1\r\n\
                   X-Original-URL: /api/v4/main-account/withdraw\r\n\
                   X-Rewrite-URL: /api/v4/main-account/withdraw\r\n\
                   X-HTTP-Method-Override: DELETE\r\n\
                   x_auth_account: victim\r\nX-Auth-Account: victim\r\n\
                   X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n\
                   Forwarded: for=203.0.113.9\r\nAuthorization: Bearer stolen\r\n\
                   Cookie: session=1\r\nX-Custom: 1\r\n";

    // What the upstream saw of a signed request to `path` carrying every hostile header; the
    // header names sorted.
    let deliver = |path: &'static str, nonce: u64| {
        let reply = raw::exchange(
            &host,
            raw_signed(&host, &key, &secret, path, path, nonce, hostile),
        );
        assert_eq!(answer(&reply).0, 200, "{reply:?}");
        let seen = upstream.last();
        let mut names: Vec<String> = seen.headers.keys().map(|n| n.as_str().to_owned()).collect();
        names.sort_unstable();
        (seen, names)
    };

    let (seen, names) = deliver("/api/v4/trade-account/balance", T0 + 1);
    // The upstream server adds nothing; hyper's client adds `host`.
    assert_eq!(
        names,
        [
            "accept",
            "accept-language",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-auth-account",
            "x-auth-key",
            "x-forwarded-for",
            "x-real-ip",
            "x-request-id",
        ]
    );
    assert_eq!(seen.headers["x-auth-account"], "alice");
    assert_eq!(seen.headers["x-auth-key"], key.as_str());
    // Set by the gateway to the address it verified, replacing the client's.
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
    assert_eq!(seen.headers["user-agent"], "bot/1");

    // A route with its own list forwards exactly that.
    let (seen, names) = deliver("/api/v4/order/new", T0 + 2);
    assert_eq!(
        names,
        [
            "content-length",
            "host",
            "x-auth-account",
            "x-auth-key",
            "x-forwarded-for",
            "x-real-ip",
            "x-tenant",
        ]
    );
    assert_eq!(seen.headers["x-tenant"], "t-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_verified_client_address_is_forwarded() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&upstream, "[proxy]\ntrusted = [\"127.0.0.1\"]\n").await;
    let (key, secret) = gateway
        .provision_key("alice", "trade", &["198.51.100.7"])
        .await;
    let host = host_of(&gateway.base);
    let path = "/api/v4/trade-account/balance";
    // The client's own claim is on the left; the trusted proxy appended the real address.
    let chain = "X-Forwarded-For: 10.9.9.9, 198.51.100.7\r\n";
    let reply = raw::exchange(
        &host,
        raw_signed(&host, &key, &secret, path, path, T0 + 1, chain),
    );
    assert_eq!(answer(&reply).0, 200, "{reply:?}");
    let seen = upstream.last();
    assert_eq!(seen.headers["x-forwarded-for"], "198.51.100.7");
    assert_eq!(seen.headers["x-real-ip"], "198.51.100.7");
}
