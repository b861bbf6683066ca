//! No secret ever leaks: the real `wbauth serve` (every log level on, text and JSON logs) and
//! `wbauth sandbox` are taken through key creation (secret shown once), good and bad signed
//! requests, a replay, `POST /api/v4/jwt`, partner (Fiat Gateway) tokens good and bad, admin
//! API and CLI calls, a secret rotation and a metrics scrape. Everything they write to stdout
//! and stderr, every error body, every non-secret admin answer and `/metrics` is searched for
//! the API secrets (as text, hex and base64), the master key, the admin token, the TOTP and Enc
//! Key secrets, every request's signature and payload, and the tokens. The `Debug` output of
//! every public type that carries a secret is checked the same way.

#![cfg(feature = "test-clock")]

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use whitebit_auth::encoding::hex_encode;
use whitebit_auth::fiat::{EncKey, PartnerClaims};
use whitebit_auth::mac::{HmacSha512Key, PayloadMac as _};
use whitebit_auth::sign::sign_body;
use whitebit_client::{FiatCredentials, SecretString};

use common::catalogue::BALANCE;
use common::fiat::{
    DEPOSIT, create_partner, fiat_request, field, issuing_config, partner_request, uah_order,
};
use common::gateway::{
    Gateway, T0, TOKEN, Upstream, base32_decode, code, spawn_serve, write_config,
};
use common::{Answer, post, signed_headers};

/// What must never appear, with a name for the failure message.
#[derive(Default)]
struct Needles(Vec<(String, String)>);

impl Needles {
    fn add(&mut self, what: &str, value: &str) {
        assert!(value.len() >= 16, "{what} is long enough to search for");
        self.0.push((what.to_owned(), value.to_owned()));
    }

    /// A secret in every form it could be printed in: as is, hex and base64 of its bytes.
    fn secret(&mut self, what: &str, value: &str) {
        self.add(what, value);
        let bytes = value.as_bytes();
        self.add(&format!("{what} (hex)"), &hex_encode(bytes));
        self.add(&format!("{what} (base64)"), &STANDARD_NO_PAD.encode(bytes));
        self.add(
            &format!("{what} (base64url)"),
            &URL_SAFE_NO_PAD.encode(bytes),
        );
        // Hex secrets are also keys in their own right: their decoded bytes, in base64.
        if let Some(raw) = whitebit_auth::encoding::hex_decode(bytes) {
            self.add(
                &format!("{what} (decoded, base64)"),
                &STANDARD_NO_PAD.encode(&raw),
            );
        }
    }

    /// A signed request's payload (both paddings) and signature (both cases).
    fn request(&mut self, what: &str, payload: &str, signature: &str) {
        self.add(&format!("{what} payload"), payload.trim_end_matches('='));
        self.add(&format!("{what} signature"), signature);
        self.add(
            &format!("{what} signature (upper)"),
            &signature.to_ascii_uppercase(),
        );
    }

    fn assert_absent(&self, place: &str, text: &str) {
        for (what, value) in &self.0 {
            assert!(!text.contains(value.as_str()), "{what} appears in {place}");
        }
    }
}

/// Everything that was written where a secret must not be.
#[derive(Default)]
struct Haystacks(Vec<(String, String)>);

impl Haystacks {
    fn add(&mut self, place: impl Into<String>, text: impl Into<String>) {
        self.0.push((place.into(), text.into()));
    }

    /// An error answer: its body is searched.
    fn refused(&mut self, place: &str, answer: &Answer, status: u16) {
        assert_eq!(answer.status, status, "{place}: {answer:?}");
        self.add(place, answer.body.clone());
    }
}

struct Signed {
    body: String,
    payload: String,
    signature: String,
}

fn sign(secret: &str, body: String) -> Signed {
    let s = sign_body(
        body.clone().into_bytes(),
        &HmacSha512Key::new(secret.as_bytes()),
    );
    Signed {
        body,
        payload: s.payload,
        signature: s.signature,
    }
}

async fn send(base: &str, path: &str, key: &str, s: &Signed) -> Answer {
    post(
        &format!("{base}{path}"),
        &signed_headers(key, &s.payload, &s.signature),
        s.body.clone(),
    )
    .await
}

/// An admin API call with `token`; (status, body).
async fn admin(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", gw.admin);
    let request = match method {
        "GET" => client.get(url),
        _ => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or_else(|| json!({})).to_string()),
    };
    let response = request.bearer_auth(token).send().await.expect("admin call");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Answer {
        status,
        body: response.text().await.expect("admin body"),
        headers,
    }
}

/// One full run against `wbauth serve` with logs in `format` ("text" or "json").
async fn serve_run(format: &str) {
    let mut needles = Needles::default();
    let mut seen = Haystacks::default();

    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (extra, _) = issuing_config(dir.path(), ("all", "/*"), &upstream);
    let config = write_config(dir.path(), upstream.addr, &extra);
    let mut gw = spawn_serve(
        dir.path(),
        &config,
        &[
            ("WBAUTH_ADMIN_TOKEN", TOKEN),
            ("WBAUTH_LOG", "trace"),
            ("RUST_LOG", "trace"),
            ("WBAUTH_LOG_FORMAT", format),
        ],
        "stderr.log",
    )
    .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    gw.clock(json!({"set_ms": T0})).await;

    needles.secret("admin token", TOKEN);
    let master = std::fs::read_to_string(gw.data_dir.join("master.key")).expect("master.key");
    needles.secret("master key", master.trim());

    // An account with 2FA, through the admin API.
    let ok = |a: &Answer, what: &str| assert!((200..300).contains(&a.status), "{what}: {a:?}");
    let a = admin(
        &gw,
        "POST",
        "/admin/accounts",
        TOKEN,
        Some(json!({"name": "alice"})),
    )
    .await;
    ok(&a, "account");
    let a = admin(&gw, "POST", "/admin/accounts/alice/2fa/enrol", TOKEN, None).await;
    ok(&a, "enrol");
    let enrolled: Value = serde_json::from_str(&a.body).expect("JSON");
    let totp_b32 = enrolled["secret"].as_str().expect("TOTP secret").to_owned();
    needles.secret("TOTP secret", &totp_b32);
    let totp = base32_decode(&totp_b32);
    needles.add("TOTP secret (hex)", &hex_encode(&totp));
    let now = gw.advance(30_000).await;
    let a = admin(
        &gw,
        "POST",
        "/admin/accounts/alice/2fa/confirm",
        TOKEN,
        Some(json!({"code": code(&totp, now)})),
    )
    .await;
    ok(&a, "confirm");

    // Key creation through the CLI: the secret is shown once, on stdout.
    let now = gw.advance(30_000).await;
    let out = gw.ok(&[
        "keys",
        "create",
        "--account",
        "alice",
        "--kind",
        "all",
        "--code",
        &code(&totp, now),
    ]);
    let (key, secret) = (field(&out, "api_key"), field(&out, "api_secret"));
    assert_eq!(
        out.matches(secret.as_str()).count(),
        1,
        "shown exactly once: {out}"
    );
    needles.secret("API secret", &secret);

    // Signed requests: good, replayed, wrong signature, unknown key, invalid payload.
    let mut nonce = 1u64;
    let mut next = move || {
        nonce += 1;
        nonce
    };
    let mut body = |extra: &str| format!(r#"{{"request":"{BALANCE}","nonce":{}{extra}}}"#, next());
    let good = sign(&secret, body(r#","ticker":"BTC""#));
    needles.request("good request", &good.payload, &good.signature);
    assert_eq!(send(&gw.base, BALANCE, &key, &good).await.status, 200);
    seen.refused("replay", &send(&gw.base, BALANCE, &key, &good).await, 429);
    let wrong = sign("not-the-secret", body(""));
    needles.request("wrong-signature request", &wrong.payload, &wrong.signature);
    seen.refused(
        "wrong signature",
        &send(&gw.base, BALANCE, &key, &wrong).await,
        401,
    );
    let unknown = sign(&secret, body(""));
    needles.request("unknown-key request", &unknown.payload, &unknown.signature);
    seen.refused(
        "unknown key",
        &send(&gw.base, BALANCE, "unknown-key-0123456789abcdef", &unknown).await,
        401,
    );
    let mut mismatch = sign(&secret, body(""));
    mismatch.body.push(' ');
    needles.request(
        "invalid-payload request",
        &mismatch.payload,
        &mismatch.signature,
    );
    seen.refused(
        "invalid payload",
        &send(&gw.base, BALANCE, &key, &mismatch).await,
        400,
    );

    // The token endpoint: issued, and refused.
    let jwt = sign(&secret, body("").replace(BALANCE, "/api/v4/jwt"));
    needles.request("jwt request", &jwt.payload, &jwt.signature);
    let a = send(&gw.base, "/api/v4/jwt", &key, &jwt).await;
    assert_eq!(a.status, 200, "{a:?}");
    let issued: Value = serde_json::from_str(&a.body).expect("JSON");
    let token = issued["data"]["token"].as_str().expect("token").to_owned();
    needles.add("issued JWT", &token);
    let (_, token_signature) = token.rsplit_once('.').expect("JWS");
    needles.add("issued JWT signature", token_signature);
    seen.refused(
        "jwt replay",
        &send(&gw.base, "/api/v4/jwt", &key, &jwt).await,
        401,
    );
    let a = fiat_request(
        &gw,
        DEPOSIT,
        &[("authorization", format!("Bearer {token}").as_bytes())],
        r#"{"currency":"UAH","amount":"1.00","orderId":"o-0"}"#,
    )
    .await;
    assert_eq!(a.status, 200, "issued token on a fiat route: {a:?}");

    // A partner: token good, replayed, signed with the wrong Enc Key.
    let (auth_key, enc_key) = create_partner(&gw, "acme");
    needles.secret("Enc Key", &enc_key);
    let creds = FiatCredentials::new(auth_key.clone(), &SecretString::from(enc_key.clone()));
    let (order, order_body) = uah_order("1500.00", "o-1");
    let fiat = async |authorization: String| {
        partner_request(&gw, DEPOSIT, &auth_key, &authorization, &order_body).await
    };
    let now = gw.advance(0).await;
    let partner_token = creds.token_at(DEPOSIT, &order, now).authorization();
    needles.add("partner token", partner_token.trim_start_matches("Bearer "));
    let (_, partner_sig) = partner_token.rsplit_once('.').expect("JWS");
    needles.add("partner token signature", partner_sig);
    assert_eq!(fiat(partner_token.clone()).await.status, 200);
    seen.refused("partner token replay", &fiat(partner_token).await, 401);
    let forged = PartnerClaims::new(&auth_key, DEPOSIT, &order, now, 60_000)
        .encode(&EncKey::new(b"not-the-enc-key-0123456789"));
    needles.add("forged partner token", &forged);
    seen.refused(
        "forged partner token",
        &fiat(format!("Bearer {forged}")).await,
        401,
    );

    // Admin API and CLI: listings, a refused token, a rotation.
    let paths = [
        "/admin/keys".to_owned(),
        format!("/admin/keys/{key}"),
        "/admin/accounts".to_owned(),
        "/admin/partners".to_owned(),
        "/admin/audit".to_owned(),
    ];
    for path in &paths {
        let a = admin(&gw, "GET", path, TOKEN, None).await;
        ok(&a, path);
        seen.add(format!("GET {path}"), a.body);
    }
    seen.refused(
        "admin with a wrong token",
        &admin(
            &gw,
            "GET",
            "/admin/keys",
            "wrong-admin-token-0123456789",
            None,
        )
        .await,
        401,
    );
    let bad_code = admin(
        &gw,
        "POST",
        &format!("/admin/keys/{key}/rotate-secret"),
        TOKEN,
        Some(json!({"code": "000000x"})),
    )
    .await;
    assert!(bad_code.status >= 400, "{bad_code:?}");
    seen.add("rotate with a bad code", bad_code.body);
    for args in [
        vec!["keys", "list"],
        vec!["keys", "show", key.as_str()],
        vec!["keys", "audit"],
        vec!["partners", "list"],
    ] {
        seen.add(format!("wbauth {}", args.join(" ")), gw.ok(&args));
    }
    let now = gw.advance(30_000).await;
    let rotated = gw.ok(&["keys", "rotate-secret", &key, "--code", &code(&totp, now)]);
    let new_secret = field(&rotated, "api_secret");
    needles.secret("rotated API secret", &new_secret);
    let old = sign(&secret, body(""));
    needles.request("old-secret request", &old.payload, &old.signature);
    seen.refused(
        "old secret after rotation",
        &send(&gw.base, BALANCE, &key, &old).await,
        401,
    );
    let fresh = sign(&new_secret, body(""));
    needles.request("new-secret request", &fresh.payload, &fresh.signature);
    assert_eq!(send(&gw.base, BALANCE, &key, &fresh).await.status, 200);

    // Metrics.
    let metrics = gw.metrics().await;
    assert!(metrics.contains("wbauth_"), "{metrics}");
    seen.add("/metrics", metrics);

    // Stop, then everything the process wrote.
    let stderr_path = gw.stderr.clone();
    let mut stdout_rest = String::new();
    let status = {
        let pid = gw.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        gw.child.wait().expect("serve exits")
    };
    let _ = gw._stdout.read_to_string(&mut stdout_rest);
    assert!(status.success(), "serve stopped cleanly: {status}");
    let logs = std::fs::read_to_string(&stderr_path).expect("stderr log");
    let (debug, trace) = match format {
        "json" => (r#""level":"DEBUG""#, r#""level":"TRACE""#),
        _ => (" DEBUG ", " TRACE "),
    };
    assert!(
        logs.contains(debug) && logs.contains(trace) && logs.contains(BALANCE),
        "the logs are at every level and name the requests ({} bytes)",
        logs.len()
    );
    seen.add(format!("serve logs ({format})"), logs);
    seen.add("serve stdout", stdout_rest);
    for (place, text) in &seen.0 {
        needles.assert_absent(place, text);
    }
    drop(upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_logs_or_answers_a_secret_text_logs() {
    serve_run("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_logs_or_answers_a_secret_json_logs() {
    serve_run("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_shows_its_secret_once_and_never_logs_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("WBAUTH_LOG", "trace")
        .env("RUST_LOG", "trace")
        .env_remove("WBAUTH_MASTER_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(&stderr_path).expect("stderr file"),
        ))
        .spawn()
        .expect("wbauth sandbox starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut contract = String::new();
    while !contract.contains("api_secret=") {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).expect("stdout");
        assert!(n > 0, "the sandbox printed its contract: {contract}");
        contract.push_str(&line);
    }
    let (base, key, secret) = (
        field(&contract, "listening"),
        field(&contract, "api_key"),
        field(&contract, "api_secret"),
    );
    let mut needles = Needles::default();
    needles.secret("sandbox secret", &secret);
    let mut seen = Haystacks::default();

    let good = sign(&secret, format!(r#"{{"request":"{BALANCE}","nonce":1}}"#));
    needles.request("good", &good.payload, &good.signature);
    assert_eq!(send(&base, BALANCE, &key, &good).await.status, 200);
    seen.refused("replay", &send(&base, BALANCE, &key, &good).await, 429);
    let wrong = sign(
        "wrong-secret-0123456789abcdef",
        format!(r#"{{"request":"{BALANCE}","nonce":2}}"#),
    );
    needles.request("wrong", &wrong.payload, &wrong.signature);
    seen.refused(
        "wrong signature",
        &send(&base, BALANCE, &key, &wrong).await,
        401,
    );
    let jwt = sign(&secret, r#"{"request":"/api/v4/jwt","nonce":3}"#.to_owned());
    needles.request("jwt", &jwt.payload, &jwt.signature);
    let a = send(&base, "/api/v4/jwt", &key, &jwt).await;
    assert_eq!(a.status, 200, "{a:?}");
    let token: Value = serde_json::from_str(&a.body).expect("JSON");
    needles.add(
        "sandbox JWT",
        token["data"]["token"].as_str().expect("token"),
    );
    seen.refused(
        "jwt replay",
        &send(&base, "/api/v4/jwt", &key, &jwt).await,
        401,
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("rest of stdout");
    assert!(child.wait().expect("sandbox exits").success());
    assert_eq!(
        contract.matches(secret.as_str()).count(),
        1,
        "shown once: {contract}"
    );
    let logs = std::fs::read_to_string(&stderr_path).expect("stderr");
    // `WBAUTH_LOG=trace` is on; the sandbox's own lines are DEBUG (one per request).
    assert!(
        logs.contains(" DEBUG ") && logs.contains(BALANCE),
        "the logs are verbose and name the requests ({} bytes)",
        logs.len()
    );
    seen.add("sandbox logs", logs);
    seen.add("sandbox stdout after the contract", rest);
    for (place, text) in &seen.0 {
        needles.assert_absent(place, text);
    }
}

/// `Debug` of every public type that holds a secret, a signature or a payload.
#[test]
fn debug_output_of_secret_carrying_types() {
    let secret = "d3b07384d113edec49eaa6238ad5ff00d3b07384d113edec49eaa6238ad5ff00";
    let mut needles = Needles::default();
    needles.secret("secret", secret);
    let key = HmacSha512Key::new(secret.as_bytes());
    let signed = sign_body(
        format!(r#"{{"request":"{BALANCE}","nonce":1}}"#).into_bytes(),
        &key,
    );
    needles.request("signed", &signed.payload, &signed.signature);
    let signature = key.sign(signed.payload.as_bytes());
    let enc = EncKey::new(secret.as_bytes());
    let creds = FiatCredentials::new(
        "auth-key-0123456789".to_owned(),
        &SecretString::from(secret.to_owned()),
    );
    let (order, _) = uah_order("1.00", "o-1");
    let fiat_token = creds.token_at(DEPOSIT, &order, T0);
    let auth = fiat_token.authorization();
    needles.add("fiat token", auth.trim_start_matches("Bearer "));
    let client = whitebit_client::Client::builder()
        .credentials("public-key-0123456789", secret)
        .base_url("http://127.0.0.1:9")
        .build()
        .expect("client");
    let secret_string = SecretString::from(secret.to_owned());
    let secret_bytes = whitebit_gateway::store::SecretBytes::new(secret.as_bytes().to_vec());
    let signing_key = whitebit_gateway::tokens::SigningKey::generate_rs256().expect("key");
    let issuer =
        whitebit_gateway::tokens::TokenIssuer::new("wbauth", "aud", vec![signing_key.clone()])
            .expect("issuer");
    let issued = issuer.issue("alice", T0).expect("issued");
    needles.add("issued token", &issued.token);
    let master = whitebit_gateway::store::MasterKey::from_source(
        &whitebit_gateway::store::MasterKeySource::Env(secret.to_owned()),
    )
    .expect("master key");
    let source = whitebit_gateway::store::MasterKeySource::Env(secret.to_owned());

    let outputs = [
        ("HmacSha512Key", format!("{key:?}")),
        ("Signature", format!("{signature:?}")),
        ("SignedRequest", format!("{signed:?}")),
        ("EncKey", format!("{enc:?}")),
        ("FiatCredentials", format!("{creds:?}")),
        ("FiatToken", format!("{fiat_token:?}")),
        ("Client", format!("{client:?}")),
        ("SecretString", format!("{secret_string:?}")),
        ("SecretBytes", format!("{secret_bytes:?}")),
        ("SigningKey", format!("{signing_key:?}")),
        ("IssuedToken", format!("{issued:?}")),
        ("MasterKey", format!("{master:?}")),
        ("MasterKeySource", format!("{source:?}")),
    ];
    // The verifier's inputs and outputs, which hold the payload and signature.
    use whitebit_auth::verify::{BodyMatch, HeaderValue, RequestParts, check_request};
    let parts = {
        let [api_key, payload, signature] = [
            "public-key-0123456789",
            signed.payload.as_str(),
            signed.signature.as_str(),
        ]
        .map(HeaderValue::Present);
        RequestParts {
            api_key,
            payload,
            signature,
            body: &signed.body,
            path: BALANCE,
        }
    };
    let checked = check_request(&parts, BodyMatch::Exact).expect("well-formed");
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in [
        ("x-txc-apikey", "public-key-0123456789"),
        ("x-txc-payload", signed.payload.as_str()),
        ("x-txc-signature", signed.signature.as_str()),
    ] {
        headers.insert(name, value.parse().expect("header value"));
    }
    let body = bytes::Bytes::from(signed.body.clone());
    let incoming = whitebit_gateway::Incoming {
        method: &axum::http::Method::POST,
        path_and_query: BALANCE,
        headers: &headers,
        body: &body,
        peer: std::net::IpAddr::from([127, 0, 0, 1]),
    };
    // A partner token's request, parts and verified form.
    let token = auth.trim_start_matches("Bearer ");
    let authorization = [auth.as_str()];
    let token_request = whitebit_auth::fiat::PartnerTokenRequest {
        authorization: &authorization,
        x_auth_key: "auth-key-0123456789",
        url: DEPOSIT,
        order: Some(order),
        now_ms: T0 + 1,
        iat_leeway_ms: 0,
    };
    let jws = whitebit_auth::fiat::split_jws(token).expect("JWS");
    let verified_token =
        whitebit_auth::fiat::verify_partner_token(&token_request, |_| Some(&enc)).expect("valid");
    let (_, token_signature) = token.rsplit_once('.').expect("JWS");
    needles.add("fiat token signature", token_signature);
    let sig_bytes = URL_SAFE_NO_PAD.decode(token_signature).expect("base64url");
    // Byte arrays as `Debug` prints them.
    needles.add(
        "fiat token signature (bytes)",
        format!("{:?}", &sig_bytes[..8]).trim_end_matches(']'),
    );
    needles.add(
        "signature (bytes)",
        format!("{:?}", &signature.as_bytes()[..8]).trim_end_matches(']'),
    );
    let outputs = [
        outputs.to_vec(),
        vec![
            ("HeaderValue", format!("{:?}", parts.signature)),
            ("RequestParts", format!("{parts:?}")),
            ("CheckedRequest", format!("{checked:?}")),
            ("Incoming", format!("{incoming:?}")),
            ("PartnerTokenRequest", format!("{token_request:?}")),
            ("JwsParts", format!("{jws:?}")),
            ("VerifiedPartnerToken", format!("{verified_token:?}")),
        ],
    ]
    .concat();
    for (what, text) in &outputs {
        needles.assert_absent(&format!("Debug of {what}"), text);
    }
    // And the pretty form.
    needles.assert_absent("{:#?} of SignedRequest", &format!("{signed:#?}"));
}

/// Start-up errors about the configuration name the file (or variable), the key and the reason,
/// and never show a store password: not from a TOML error inside `[store]` or on a line holding
/// a URL with credentials, not from a refused or unusable store URL (a password with a `/` in
/// it included), not from the `WBAUTH_GATEWAY__STORE__…` variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_never_show_store_passwords() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let head = format!(
        "[listen]\naddr = \"127.0.0.1:0\"\n\n[admin]\naddr = \"127.0.0.1:0\"\n\n[store]\n\
         data_dir = \"{}\"\n",
        data.display()
    );
    // (what, file text after the [store] head, password, what stderr must name)
    let file_cases: Vec<(&str, String, &str, Vec<&str>)> = vec![
        (
            "an unterminated string in [store]",
            "keys = \"postgres://wb:S3cretPw1@db.internal/keys\n".to_owned(),
            "S3cretPw1",
            vec!["line 9", "store.keys"],
        ),
        (
            "a type error in [store]",
            "pool_size = \"S3cretPw2\"\n".to_owned(),
            "S3cretPw2",
            vec!["line 9", "store.pool_size", "invalid type", "expected u32"],
        ),
        (
            "a URL where [store] wants a word",
            "durability = \"postgres://wb:S3cretPw3@db/x\"\n".to_owned(),
            "S3cretPw3",
            vec!["line 9", "store.durability", "process-crash"],
        ),
        (
            "an unsupported key store URL",
            "keys = \"mysql://root:S3cretPw4@db/keys\"\n".to_owned(),
            "S3cretPw4",
            vec![
                "store.keys",
                "unsupported key store",
                "mysql://root:***@db/keys",
            ],
        ),
        (
            "a Redis password with a slash",
            "nonces = \"redis://:S3cret/Pass5@127.0.0.1:1/0\"\nconnect_timeout_ms = 200\n"
                .to_owned(),
            "S3cret",
            vec!["store.nonces", "Redis"],
        ),
        (
            "a TOML error on another line holding credentials",
            "\n[console]\npublic_url = \"https://ops:S3cretPw6@console.example\" oops\n".to_owned(),
            "S3cretPw6",
            vec!["line 11", "console.public_url"],
        ),
        (
            "an upstream URL with credentials",
            "\n[[route]]\nprefix = \"/api\"\nupstream = \"http://ops:S3cretPw7@127.0.0.1:9\"\n"
                .to_owned(),
            "S3cretPw7",
            vec!["route[0].upstream"],
        ),
    ];
    for (i, (what, store, password, named)) in file_cases.iter().enumerate() {
        let config = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&config, format!("{head}{store}")).expect("config written");
        let Err((status, stderr)) = spawn_serve(dir.path(), &config, &[], &format!("bad-{i}.log"))
        else {
            panic!("{what}: the gateway started");
        };
        assert_eq!(status.code(), Some(2), "{what}: {stderr}");
        assert!(
            !stderr.contains(password),
            "{what}: the password is shown: {stderr}"
        );
        assert!(
            stderr.contains(&format!("bad-{i}.toml")) || i == 4,
            "{what}: the file is not named: {stderr}"
        );
        for name in named {
            assert!(stderr.contains(name), "{what}: {name:?} missing: {stderr}");
        }
    }

    // The same through the environment, on a valid file.
    let config = dir.path().join("good.toml");
    std::fs::write(&config, &head).expect("config written");
    let env_cases: [(&str, &str, &str, &[&str]); 4] = [
        (
            "WBAUTH_GATEWAY__STORE__DURABILITY",
            "postgres://wb:S3cretPw8@db/x",
            "S3cretPw8",
            &["WBAUTH_GATEWAY__STORE__DURABILITY", "process-crash"],
        ),
        (
            "WBAUTH_GATEWAY__STORE__POOL_SIZE",
            "S3cretPw9",
            "S3cretPw9",
            &["WBAUTH_GATEWAY__STORE__POOL_SIZE", "expected u32"],
        ),
        (
            "WBAUTH_GATEWAY__STORE__KEYS",
            "mysql://root:S3cretPw10@db/keys",
            "S3cretPw10",
            &["store.keys", "mysql://root:***@db/keys"],
        ),
        (
            "WBAUTH_GATEWAY__STORE__NONCES",
            "redis://:S3cret/Pass11@127.0.0.1:1/0",
            "S3cret",
            &["store.nonces", "Redis"],
        ),
    ];
    for (i, (var, value, password, named)) in env_cases.iter().enumerate() {
        let env = [
            (*var, *value),
            ("WBAUTH_GATEWAY__STORE__CONNECT_TIMEOUT_MS", "200"),
        ];
        let Err((status, stderr)) = spawn_serve(dir.path(), &config, &env, &format!("env-{i}.log"))
        else {
            panic!("{var}: the gateway started");
        };
        assert_eq!(status.code(), Some(2), "{var}: {stderr}");
        assert!(
            !stderr.contains(password),
            "{var}: the password is shown: {stderr}"
        );
        for name in *named {
            assert!(stderr.contains(name), "{var}: {name:?} missing: {stderr}");
        }
    }
}
