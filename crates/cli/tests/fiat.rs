//! Fiat Gateway routes through the real `wbauth serve`: tokens issued by `POST /api/v4/jwt`
//! open them (signature from the configured PEM key, audience, expiry on the test clock);
//! refusals answer 401 `Request authorization failed` with the reason of `docs/design-decisions.md` 23.

#![cfg(feature = "test-clock")]

mod common;

use std::path::PathBuf;

use common::fiat::{
    DEPOSIT, create_partner, fiat_request, fiat_route, issuing_config, new_signing_key,
    partner_request, uah_order,
};
use common::gateway::{Gateway, UPSTREAM_ANSWER, Upstream};
use common::{Answer, post};
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;

fn refused(reason: &str) -> String {
    format!(
        r#"{{"code":0,"message":"Request authorization failed","errors":{{"token":["{reason}"]}}}}"#
    )
}

/// A JSON request to the deposit route with these headers.
async fn fiat(gw: &Gateway, headers: &[(&str, &[u8])], body: &str) -> Answer {
    fiat_request(gw, DEPOSIT, headers, body).await
}

/// A gateway issuing tokens with a Fiat Gateway route.
struct Issuing {
    gw: Gateway,
    /// The directory of the signing keys.
    keys: tempfile::TempDir,
    /// The signing key `k1`.
    pem: PathBuf,
    /// The configuration added for all this.
    extra: String,
}

/// A gateway issuing tokens (RS256 key `k1`) with a Fiat Gateway route.
async fn start_issuing(upstream: &Upstream) -> Issuing {
    let keys = tempfile::tempdir().expect("tempdir");
    let (extra, pem) = issuing_config(keys.path(), ("fiat", "/api/v4/jwt"), upstream);
    let gw = Gateway::start_with(upstream, &extra).await;
    Issuing {
        gw,
        keys,
        pem,
        extra,
    }
}

/// A gateway with a Fiat Gateway route and a partner made by `wbauth partners create acme`;
/// (gateway, auth key, enc key).
async fn start_with_new_partner(upstream: &Upstream) -> (Gateway, String, String) {
    let gw = Gateway::start_with(upstream, &fiat_route(upstream)).await;
    let (auth_key, enc_key) = create_partner(&gw, "acme");
    (gw, auth_key, enc_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_tokens_open_fiat_routes() {
    let upstream = Upstream::start().await;
    let Issuing {
        gw,
        keys,
        pem,
        extra,
    } = start_issuing(&upstream).await;
    let (key, secret) = gw.provision_key("fa", "fiat", &[]).await;

    let bearer = issue(&gw, &key, &secret, 1).await;
    let token = bearer.trim_start_matches("Bearer ").to_owned();

    let order = r#"{"currency":"UAH","amount":"1500.00","orderId":"o-1"}"#;
    let a = fiat(&gw, &[("authorization", bearer.as_bytes())], order).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");
    let seen = upstream.last();
    assert_eq!(seen.path, DEPOSIT);
    assert_eq!(seen.body, order.as_bytes());
    assert_eq!(
        seen.headers
            .get("x-auth-account")
            .and_then(|v| v.to_str().ok()),
        Some("fa")
    );
    assert!(
        seen.headers.get("authorization").is_none(),
        "the credential stays at the gateway"
    );
    // Without "Bearer " too (a fresh token: each is used once).
    let fresh = issue(&gw, &key, &secret, 2).await;
    let fresh = fresh.trim_start_matches("Bearer ");
    let a = fiat(&gw, &[("authorization", fresh.as_bytes())], order).await;
    assert_eq!(a.status, 200, "{a:?}");

    type Case<'a> = (Vec<(&'a str, &'a [u8])>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec![], "Token missing."),
        (vec![("authorization", b"Bearer ")], "Token missing."),
        (vec![("authorization", b"Bearer a.b")], "Malformed token."),
        (
            vec![(
                "authorization",
                b"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.",
            )],
            "Algorithm not allowed.",
        ),
        // A partner request (x-auth-key) for a partner that does not exist.
        (
            vec![
                ("authorization", bearer.as_bytes()),
                ("x-auth-key", b"auth-nobody"),
            ],
            "Algorithm not allowed.",
        ),
    ];
    for (headers, reason) in &cases {
        let a = fiat(&gw, headers, order).await;
        assert_eq!(
            (a.status, a.body.clone()),
            (401, refused(reason)),
            "{headers:?}"
        );
    }
    // A tampered signature (a character in the middle, so the base64url stays canonical).
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 20;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered = format!("Bearer {}", chars.into_iter().collect::<String>());
    let a = fiat(&gw, &[("authorization", tampered.as_bytes())], order).await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Invalid token signature."))
    );
    // Expiry on the test clock (60 s lifetime, no leeway on exp).
    let unused = issue(&gw, &key, &secret, 3).await;
    gw.advance(61_000).await;
    let a = fiat(&gw, &[("authorization", unused.as_bytes())], order).await;
    assert_eq!((a.status, a.body), (401, refused("Token expired.")));
    assert_eq!(
        upstream.count(),
        2,
        "only the accepted requests reached the upstream"
    );

    // Rotation: add a second key; new tokens use it, tokens of the first still verify.
    let old_token = issue(&gw, &key, &secret, 4).await;
    assert_eq!(kid_of(&old_token), "k1");
    let pem2 = keys.path().join("signing-2.pem");
    new_signing_key(&pem2);
    let dir = gw._dir_guard.as_ref().expect("dir").path().to_path_buf();
    let now = gw.advance(0).await;
    let k1 = format!("{{ pem = \"{}\", kid = \"k1\" }}", pem.display());
    let k2 = format!("{{ pem = \"{}\", kid = \"k2\" }}", pem2.display());
    common::gateway::write_config(
        &dir,
        upstream.addr,
        &extra.replace(&k1, &format!("{k1}, {k2}")),
    );
    let old_unused = issue(&gw, &key, &secret, 5).await;
    let gw = gw.kill9_and_restart(1, now);
    let new_token = issue(&gw, &key, &secret, 6).await;
    assert_eq!(kid_of(&new_token), "k2", "new tokens use the newest key");
    for bearer in [&old_token, &new_token] {
        let a = fiat(&gw, &[("authorization", bearer.as_bytes())], order).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (200, UPSTREAM_ANSWER),
            "both keys verify"
        );
    }
    // Used once, also across the restart.
    let a = fiat(&gw, &[("authorization", new_token.as_bytes())], order).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));
    // Remove the first key: its tokens fail, the second key's still pass.
    let new_unused = issue(&gw, &key, &secret, 7).await;
    common::gateway::write_config(&dir, upstream.addr, &extra.replace(&k1, &k2));
    let gw = gw.kill9_and_restart(2, now);
    let a = fiat(&gw, &[("authorization", old_unused.as_bytes())], order).await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Invalid token signature."))
    );
    let a = fiat(&gw, &[("authorization", new_unused.as_bytes())], order).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER));
}

/// Issues a token through `POST /api/v4/jwt`; returns `Bearer <token>`.
async fn issue(gw: &Gateway, key: &str, secret: &str, nonce: u64) -> String {
    let body = format!(r#"{{"request":"/api/v4/jwt","nonce":{nonce}}}"#);
    let signed = sign_body(
        body.as_bytes().to_vec(),
        &HmacSha512Key::new(secret.as_bytes()),
    );
    let a = post(
        &format!("{}/api/v4/jwt", gw.base),
        &[
            ("x-txc-apikey", key.as_bytes()),
            ("x-txc-payload", signed.payload.as_bytes()),
            ("x-txc-signature", signed.signature.as_bytes()),
        ],
        body,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let v: serde_json::Value = serde_json::from_str(&a.body).expect("JSON");
    format!("Bearer {}", v["data"]["token"].as_str().expect("token"))
}

/// The `kid` in a token's header.
fn kid_of(bearer: &str) -> String {
    use base64::Engine as _;
    let header = bearer
        .trim_start_matches("Bearer ")
        .split('.')
        .next()
        .expect("header");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("b64");
    serde_json::from_slice::<serde_json::Value>(&json).expect("JSON")["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_tokens_are_single_use_even_across_a_crash() {
    use whitebit_client::{FiatCredentials, SecretString};

    let upstream = Upstream::start().await;
    let (gw, auth_key, enc_key) = start_with_new_partner(&upstream).await;
    let creds = FiatCredentials::new(auth_key.clone(), &SecretString::from(enc_key.clone()));
    let (order, body) = uah_order("1500.00", "o-7");
    let body = body.as_str();
    let now = gw.advance(0).await;

    let token = creds.token_at(DEPOSIT, &order, now);
    let bearer = token.authorization();
    let send = async |gw: &Gateway, bearer: String, body: &str| {
        partner_request(gw, DEPOSIT, &auth_key, &bearer, body).await
    };
    let a = send(&gw, bearer.clone(), body).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");
    let seen = upstream.last();
    assert_eq!(
        seen.headers
            .get("x-auth-partner")
            .and_then(|v| v.to_str().ok()),
        Some(auth_key.as_str())
    );
    assert!(
        seen.headers.get("x-auth-key").is_none() && seen.headers.get("authorization").is_none()
    );
    let a = send(&gw, bearer.clone(), body).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));

    // Remembered across a kill -9.
    let gw = gw.kill9_and_restart(1, now + 1_000);
    let a = send(&gw, bearer.clone(), body).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));

    // Order checks, then expiry, then a disabled partner.
    let other = creds.token_at(DEPOSIT, &uah_order("1.00", "o-7").0, now + 1_000);
    let a = send(&gw, other.authorization(), body).await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Order signature mismatch."))
    );
    let fresh = creds.token_at(DEPOSIT, &order, now + 1_000);
    let a = send(
        &gw,
        fresh.authorization(),
        r#"{"currency":"UAH","amount":"1500.00"}"#,
    )
    .await;
    assert_eq!((a.status, a.body), (401, refused("Order fields missing.")));
    let old = creds.token_at(DEPOSIT, &order, now - 61_000);
    let a = send(&gw, old.authorization(), body).await;
    assert_eq!((a.status, a.body), (401, refused("Token expired.")));
    gw.ok(&["partners", "disable", &auth_key]);
    let a = send(
        &gw,
        creds.token_at(DEPOSIT, &order, now + 1_000).authorization(),
        body,
    )
    .await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Invalid token signature."))
    );
    assert_eq!(
        upstream.count(),
        1,
        "only the first request reached the upstream"
    );
    assert!(!gw.stderr_text().contains(&enc_key));
}

/// A gateway with the conformance partner imported through `wbauth partners create --auth-key`.
async fn start_with_partner(
    upstream: &Upstream,
    extra: &str,
    auth_key: &str,
    enc_key: &str,
) -> Gateway {
    let gw = Gateway::start_with(upstream, extra).await;
    gw.ok_with_input(
        &["partners", "create", "conformance", "--auth-key", auth_key],
        &format!("{enc_key}\n"),
    );
    gw
}

/// The shared Fiat Gateway vectors (tokens made by the Node `jsonwebtoken` package) through
/// the running gateway: each case at its own time on the test clock; the two accepted cases
/// carry the same token, so each runs against a fresh replay store (`docs/design-decisions.md` 24).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_through_the_gateway() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/tests/vectors/fiat-jwt.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("JSON");
    let s =
        |v: &serde_json::Value, f: &str| v[f].as_str().unwrap_or_else(|| panic!("{f}")).to_owned();
    let (auth_key, enc_key) = (s(&doc, "auth_key"), s(&doc, "enc_key"));
    let upstream = Upstream::start().await;
    let extra = fiat_route(&upstream);

    let expected_reason = |name: &str| match name {
        "valid" | "valid-at-59s" => None,
        "expired" => Some("Token expired."),
        "lifetime-over-60s" => Some("Token lifetime over 60 seconds."),
        "iat-in-future" => Some("Token issued in the future."),
        "wrong-enc-key" | "auth-key-header-mismatch" => Some("Invalid token signature."),
        "url-mismatch" => Some("URL mismatch."),
        "order-signature-mismatch" => Some("Order signature mismatch."),
        "alg-none" | "alg-hs512" => Some("Algorithm not allowed."),
        "missing-signature-claim" => Some("Malformed token."),
        "seconds-not-millis" => Some("Invalid token times."),
        other => panic!("unknown case {other}"),
    };

    let gw = start_with_partner(&upstream, &extra, &auth_key, &enc_key).await;
    let mut ran = 0;
    for case in doc["tokens"].as_array().expect("tokens") {
        let name = s(case, "name");
        if name == "valid-at-59s" {
            continue; // the same token as "valid": run below on a fresh gateway
        }
        gw.clock(serde_json::json!({"set_ms": case["now_ms"].as_u64().expect("now_ms")}))
            .await;
        let order = &case["order"];
        let body = serde_json::json!({"currency": s(order, "currency"), "amount": s(order, "amount"), "orderId": s(order, "order_id")}).to_string();
        let bearer = format!("Bearer {}", s(case, "token"));
        let x_auth_key = s(case, "x_auth_key");
        let a = partner_request(&gw, &s(case, "url"), &x_auth_key, &bearer, &body).await;
        match (s(case, "expect").as_str(), expected_reason(&name)) {
            ("accept", None) => assert_eq!(
                (a.status, a.body.as_str()),
                (200, UPSTREAM_ANSWER),
                "{name}"
            ),
            ("reject", Some(reason)) => {
                assert_eq!((a.status, a.body), (401, refused(reason)), "{name}")
            }
            other => panic!("{name}: inconsistent expectation {other:?}"),
        }
        ran += 1;
    }
    drop(gw);
    let gw = start_with_partner(&upstream, &extra, &auth_key, &enc_key).await;
    let case = doc["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|c| c["name"] == "valid-at-59s")
        .expect("case");
    gw.clock(serde_json::json!({"set_ms": case["now_ms"].as_u64().expect("now_ms")}))
        .await;
    let order = &case["order"];
    let body = serde_json::json!({"currency": s(order, "currency"), "amount": s(order, "amount"), "orderId": s(order, "order_id")}).to_string();
    let bearer = format!("Bearer {}", s(case, "token"));
    let a = partner_request(&gw, &s(case, "url"), &auth_key, &bearer, &body).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, UPSTREAM_ANSWER),
        "valid-at-59s"
    );
    assert_eq!(ran + 1, doc["tokens"].as_array().expect("tokens").len());
    assert_eq!(
        upstream.count(),
        2,
        "exactly the two accepted cases reached the upstream"
    );
}

/// A gauge of the admin listener's `/metrics`, when it is there.
async fn gauge(gw: &Gateway, name: &str) -> Option<u64> {
    gw.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Waits (bounded) until `gauge` reads at most `most`; returns what it read last.
async fn wait_for_gauge_at_most(gw: &Gateway, name: &str, most: u64) -> Option<u64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let value = gauge(gw, name).await;
        if value.is_some_and(|v| v <= most) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Records in the embedded token replay file.
fn replay_file_records(gw: &Gateway) -> u64 {
    std::fs::metadata(gw.data_dir.join("tokens").join("tokens.replay"))
        .expect("replay file")
        .len()
        / 44
}

/// Partner tokens claimed round after round on the test clock: the gateway's timer forgets the
/// expired ones, so memory holds about the live tokens and the file is compacted, while a live
/// token stays refused as a replay, also after a `kill -9` and restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_token_memory_follows_the_live_tokens() {
    use whitebit_client::{FiatCredentials, SecretString};

    const PER_ROUND: u64 = 40;
    const ROUNDS: u64 = 10;
    let upstream = Upstream::start().await;
    let (gw, auth_key, enc_key) = start_with_new_partner(&upstream).await;
    let creds = FiatCredentials::new(auth_key.clone(), &SecretString::from(enc_key));
    let send = async |gw: &Gateway, bearer: String, body: String| {
        partner_request(gw, DEPOSIT, &auth_key, &bearer, &body).await
    };
    let mut now = gw.advance(0).await;
    let mut live = None;
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            let order_id = format!("r{round}-{i}");
            let (order, body) = uah_order("10.00", &order_id);
            let bearer = creds.token_at(DEPOSIT, &order, now).authorization();
            let a = send(&gw, bearer.clone(), body.clone()).await;
            assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");
            live = Some((bearer, body));
        }
        // 30 s later: the previous round's tokens (60 s lifetime) have expired, this round's
        // are live.
        now = gw.advance(30_000).await;
        let entries = wait_for_gauge_at_most(&gw, "wbauth_fiat_replay_entries", PER_ROUND).await;
        assert_eq!(
            entries,
            Some(PER_ROUND),
            "round {round}: memory keeps the live tokens only"
        );
        let (bearer, body) = live.clone().expect("a token of this round");
        let a = send(&gw, bearer, body).await;
        assert_eq!(
            (a.status, a.body),
            (401, refused("Token already used.")),
            "round {round}: a live token is still refused"
        );
    }
    // 400 tokens were claimed; the file was compacted down to about the live ones.
    let records = replay_file_records(&gw);
    assert!(
        records <= 2 * PER_ROUND + 256,
        "the replay file holds {records} records for {PER_ROUND} live tokens"
    );
    assert_eq!(
        gauge(&gw, "wbauth_fiat_replay_file_records").await,
        Some(records)
    );
    let gw = gw.kill9_and_restart(1, now);
    let (bearer, body) = live.expect("a live token");
    let a = send(&gw, bearer, body).await;
    assert_eq!(
        (a.status, a.body),
        (401, refused("Token already used.")),
        "a live token is refused after the restart"
    );
    assert_eq!(
        gauge(&gw, "wbauth_fiat_replay_entries").await,
        Some(PER_ROUND)
    );
    assert_eq!(
        upstream.count(),
        usize::try_from(PER_ROUND * ROUNDS).expect("count")
    );
}

/// A token issued by `POST /api/v4/jwt` opens a Fiat Gateway route once, and only while the key
/// that asked for it is still in force: disabled (it works again once re-enabled, as a refusal
/// uses nothing up), deleted, or replaced by a secret rotation, its tokens are refused with a
/// reason that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_tokens_are_single_use_and_die_with_their_key() {
    let upstream = Upstream::start().await;
    let Issuing {
        gw, keys: _keys, ..
    } = start_issuing(&upstream).await;
    let (key, secret, totp) = gw.provision_key_with_totp("fb", "fiat", &[]).await;
    let order = r#"{"currency":"UAH","amount":"1500.00","orderId":"o-9"}"#;
    let use_token = |bearer: String| {
        let gw = &gw;
        async move { fiat(gw, &[("authorization", bearer.as_bytes())], order).await }
    };

    // Single use, with or without "Bearer ".
    let bearer = issue(&gw, &key, &secret, 1).await;
    let a = use_token(bearer.clone()).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");
    let a = use_token(bearer.clone()).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));
    let a = use_token(bearer.trim_start_matches("Bearer ").to_owned()).await;
    assert_eq!((a.status, a.body), (401, refused("Token already used.")));

    // A disabled key's tokens are refused; the refusal uses nothing up.
    let bearer = issue(&gw, &key, &secret, 2).await;
    gw.ok(&["keys", "disable", &key]);
    let disabled = refused("API key disabled or deactivated: enable it, then request a new token.");
    let a = use_token(bearer.clone()).await;
    assert_eq!((a.status, a.body), (401, disabled.clone()));
    let a = use_token(bearer.clone()).await;
    assert_eq!((a.status, a.body), (401, disabled));
    gw.ok(&["keys", "enable", &key]);
    let a = use_token(bearer.clone()).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");

    // A secret rotation ends the tokens issued before it.
    let before = issue(&gw, &key, &secret, 3).await;
    let now = gw.advance(30_000).await;
    let rotated = gw.ok_json(&[
        "keys",
        "rotate-secret",
        &key,
        "--code",
        &common::gateway::code(&totp, now),
    ]);
    let new_secret = rotated["secret"].as_str().expect("new secret").to_owned();
    let replaced = refused("API key deleted or its secret changed: request a new token.");
    let a = use_token(before).await;
    assert_eq!((a.status, a.body), (401, replaced.clone()));
    let after = issue(&gw, &key, &new_secret, 4).await;
    let a = use_token(after).await;
    assert_eq!((a.status, a.body.as_str()), (200, UPSTREAM_ANSWER), "{a:?}");

    // A deleted key's tokens are refused.
    let last = issue(&gw, &key, &new_secret, 5).await;
    gw.ok(&["keys", "delete", &key]);
    let a = use_token(last).await;
    assert_eq!((a.status, a.body), (401, replaced));

    assert_eq!(
        upstream.count(),
        3,
        "only the three accepted uses reached the upstream"
    );
}
