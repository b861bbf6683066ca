//! # wbauth-fuzzing
//!
//! The fuzz harnesses: one function per cargo-fuzz target of `fuzz/`, each taking arbitrary
//! bytes, returning normally for every input and asserting its invariants inside (a failed
//! assertion is a crash the fuzzer reports). The same functions replay the committed corpus
//! on stable in `tests/corpus.rs`.
//!
//! Inputs are split on NUL bytes into fields (the last field takes the rest, NULs included);
//! the first byte of an input is a set of flags that let the harness build what a fuzzer cannot
//! guess (a payload that is the base64 of the body, a valid HMAC, a signed token), so the
//! checks after them are reached too.
//!
//! - [`request`]: the private-request verifier of `whitebit-auth` (rows 3–12), the doctor, JSON,
//!   paths and nonces.
//! - [`jwt`]: Fiat Gateway partner tokens and the gateway's own issued tokens.
//! - [`config`]: the gateway's TOML configuration with its overrides and validation.
//! - [`service`]: the whole public axum service, built like the sandbox.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, Method, Request, Uri, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tower::ServiceExt as _;
use whitebit_auth::doctor::{Capture, diagnose};
use whitebit_auth::encoding::{base64_decode, base64_encode};
use whitebit_auth::fiat::{
    EncKey, MAX_LIFETIME_MS, OrderFieldNames, OrderFields, PartnerClaims, PartnerTokenRequest,
    order_fields_from_body, verify_partner_token,
};
use whitebit_auth::json::{self, JsonValue};
use whitebit_auth::mac::{HmacSha512Key, sign_payload};
use whitebit_auth::nonce::parse_nonce;
use whitebit_auth::path::{normalize_path, pattern_matches};
use whitebit_auth::sign::sign_body;
use whitebit_auth::verify::{
    BodyMatch, HeaderValue, JWT_ENDPOINT_PATH, Rejection, RequestParts, check_request,
};
use whitebit_auth::{ApiError, JwtEndpointError, NonceMode, TokenRejection};
use whitebit_gateway::clock::ManualClock;
use whitebit_gateway::config::{Config, ENV_PREFIX};
use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key};
use whitebit_gateway::tokens::{SigningKey, TokenIssuer};
use whitebit_gateway::{Answers, Stores, TempDataDir, build_gateway, open_stores, public_router};

/// The API key of the conformance vectors (`crates/protocol/tests/vectors/signing.json`).
pub const API_KEY: &str = "4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b";
/// The API secret of the conformance vectors: the harnesses sign with it.
pub const API_SECRET: &str = "a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c";
/// The Enc Key of the Fiat Gateway vectors (`fiat-jwt.json`).
pub const ENC_KEY: &str = "enc-5b1d9c7e2f4a6b8d0e1f3a5c7e9b1d3f";
/// The Auth Key of the Fiat Gateway vectors.
pub const AUTH_KEY: &str = "auth-9a8b7c6d5e4f3a2b1c0d";
/// The time the service harness's clock starts at, and the base of the token harness's clock
/// (Unix milliseconds; the vectors' tokens are issued at this instant).
pub const T0_MS: u64 = 1_700_000_000_000;

/// How far a harness got with one input (for tests that check that the seeds reach deep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed (a verified request, a valid token, a usable configuration, a 200).
    Accepted,
    /// The input was refused with a documented answer.
    Rejected,
}

/// Splits `data` into `N` fields on NUL bytes; the last field is the rest (NULs included);
/// missing fields are empty.
fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for slot in out.iter_mut().take(N.saturating_sub(1)) {
        match rest.iter().position(|&b| b == 0) {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    if let Some(last) = out.last_mut() {
        *last = rest;
    }
    out
}

fn flags_and_rest(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&flags, rest)) => (flags, rest),
        None => (0, data),
    }
}

// ---------------------------------------------------------------------------------------------
// request
// ---------------------------------------------------------------------------------------------

/// The private-request pipeline of `whitebit-auth`.
///
/// Input: a flags byte, then `api_key \0 payload \0 signature \0 path \0 body`. Flags: bit 0
/// replaces the payload by the base64 of the body, bit 1 replaces the signature by the HMAC of
/// the payload under [`API_SECRET`], bit 2 compares the body as JSON instead of byte for byte,
/// bit 3 sends `X-TXC-APIKEY` twice.
///
/// Invariants: a rejection is one of rows 3–11 with its documented status; an acceptance
/// decodes to the body, re-encodes to the payload, carries the normalised path and the nonce
/// of the JSON, and verifies under [`API_SECRET`] exactly when the signature is the HMAC of the
/// payload (re-signing gives the same signature); an unknown key never verifies.
pub fn request(data: &[u8]) -> Outcome {
    let (flags, rest) = flags_and_rest(data);
    let [key, payload_in, signature_in, path_in, body] = fields::<5>(rest);
    let payload_owned;
    let payload: &[u8] = if flags & 1 != 0 {
        payload_owned = base64_encode(body);
        payload_owned.as_bytes()
    } else {
        payload_in
    };
    let signature_owned;
    let signature: &[u8] = if flags & 2 != 0 {
        signature_owned = sign_payload(API_SECRET.as_bytes(), payload);
        signature_owned.as_bytes()
    } else {
        signature_in
    };
    let body_match = if flags & 4 != 0 {
        BodyMatch::Json
    } else {
        BodyMatch::Exact
    };
    let key_values: &[&[u8]] = if flags & 8 != 0 { &[key, key] } else { &[key] };
    let path = String::from_utf8_lossy(path_in);
    let parts = RequestParts {
        api_key: HeaderValue::from_values(key_values.iter().copied()),
        payload: HeaderValue::from_value(payload),
        signature: HeaderValue::from_value(signature),
        body,
        path: &path,
    };

    building_blocks(body, &path);
    let _ = diagnose(&Capture {
        body: Some(body),
        payload: std::str::from_utf8(payload).ok(),
        signature: std::str::from_utf8(signature).ok(),
        secret: Some(API_SECRET.as_bytes()),
        path: Some(&path),
        now_ms: Some(T0_MS),
    });

    let outcome = match check_request(&parts, body_match) {
        Err(Rejection::Api(e)) => {
            check_row_3_to_11(e, &parts);
            return Outcome::Rejected;
        }
        Err(Rejection::MissingFields { request, nonce }) => {
            assert!(request || nonce, "MissingFields names no field");
            assert_eq!(
                normalize_path(&path).as_deref(),
                Ok(JWT_ENDPOINT_PATH),
                "MissingFields outside the token endpoint"
            );
            let answer = JwtEndpointError::ValidationFailed {
                request_missing: request,
                nonce_missing: nonce,
            };
            assert_eq!(answer.status(), 400);
            return Outcome::Rejected;
        }
        Ok(checked) => checked,
    };

    let HeaderValue::Present(payload_text) = parts.payload else {
        panic!("accepted without a payload header");
    };
    let decoded = base64_decode(payload_text.as_bytes()).expect("an accepted payload decodes");
    assert_eq!(outcome.decoded_payload(), decoded.as_slice());
    if body_match == BodyMatch::Exact {
        assert_eq!(
            decoded.as_slice(),
            body,
            "exact match accepted another body"
        );
    }
    assert_eq!(
        base64_encode(&decoded).trim_end_matches('='),
        payload_text.trim_end_matches('='),
        "the accepted payload is not the canonical base64 of its bytes"
    );
    let normalized = normalize_path(&path).expect("an accepted path normalises");
    assert_eq!(outcome.path(), normalized.as_ref());
    assert_eq!(
        normalize_path(outcome.path()).as_deref(),
        Ok(outcome.path()),
        "normalisation is not idempotent"
    );
    let Ok(JsonValue::Object(object)) = json::parse(&decoded) else {
        panic!("accepted a payload that is not a JSON object");
    };
    let nonce = object.get("nonce").expect("accepted without a nonce");
    assert_eq!(parse_nonce(nonce), Ok(outcome.nonce()));
    assert_eq!(
        outcome.nonce_mode(),
        NonceMode::from_window_flag(outcome.nonce_window() == Some(true))
    );

    // Row 12.
    let secret_key = HmacSha512Key::new(API_SECRET.as_bytes());
    let expected = sign_payload(API_SECRET.as_bytes(), payload_text.as_bytes());
    let resigned = sign_body(decoded.clone(), &secret_key);
    if resigned.payload == payload_text {
        assert_eq!(
            resigned.signature, expected,
            "re-signing changed the signature"
        );
    }
    let given = String::from_utf8_lossy(signature).to_ascii_lowercase();
    let should_verify = given == expected && matches!(parts.api_key, HeaderValue::Present(_));
    match outcome.verify_signature(Some(&secret_key)) {
        Ok(()) => assert!(should_verify, "verified a signature that is not the HMAC"),
        Err(e) => {
            assert_eq!(e, ApiError::Unauthorized);
            assert!(!should_verify, "refused the HMAC of the payload");
        }
    }
    assert_eq!(
        outcome.verify_signature(None),
        Err(ApiError::Unauthorized),
        "an unknown key verified"
    );
    if should_verify {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// A rejection of rows 3–11: the row, its status, and its consistency with the headers.
fn check_row_3_to_11(e: ApiError, parts: &RequestParts<'_>) {
    let expected_status = match e.row() {
        "3" | "4" | "5" => 401,
        "6" | "7" | "8" | "9" | "10" | "11" => 400,
        row => panic!("check_request answered row {row}"),
    };
    assert_eq!(e.status(), expected_status, "row {} status", e.row());
    assert!(ApiError::ALL.contains(&e));
    assert_eq!(
        e == ApiError::ApiKeyNotProvided,
        parts.api_key == HeaderValue::Missing,
        "row 3 iff the key is missing"
    );
    if parts.api_key != HeaderValue::Missing {
        assert_eq!(
            e == ApiError::PayloadNotProvided,
            parts.payload == HeaderValue::Missing,
            "row 4 iff the payload is missing"
        );
        if parts.payload != HeaderValue::Missing {
            assert_eq!(
                e == ApiError::SignatureNotProvided,
                parts.signature == HeaderValue::Missing,
                "row 5 iff the signature is missing"
            );
        }
    }
}

/// JSON, paths and nonces on their own.
fn building_blocks(body: &[u8], path: &str) {
    if let Ok(value) = json::parse(body) {
        let mut compact = String::new();
        value.write_compact(&mut compact);
        let again = json::parse(compact.as_bytes()).expect("compact JSON parses again");
        assert!(value.same_value(&again), "compact JSON is another value");
        if let JsonValue::Object(object) = &value
            && let Some(nonce) = object.get("nonce")
            && let Ok(n) = parse_nonce(nonce)
        {
            let text = n.to_string();
            assert_eq!(parse_nonce(&JsonValue::Number(&text)), Ok(n));
            assert_eq!(parse_nonce(&JsonValue::String(text.as_str().into())), Ok(n));
        }
    }
    if let Ok(normalized) = normalize_path(path) {
        assert_eq!(
            normalize_path(&normalized).as_deref(),
            Ok(normalized.as_ref()),
            "normalisation is not idempotent"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// jwt
// ---------------------------------------------------------------------------------------------

/// The gateway's token issuer with a fresh ES256 key (once per process).
fn issuer() -> &'static TokenIssuer {
    static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = SigningKey::generate_es256().expect("an ES256 key");
        TokenIssuer::new("wbauth-fuzz", "wbauth-fuzz-api", vec![key]).expect("an issuer")
    })
}

/// The token parsers: Fiat Gateway partner tokens (HS256, millisecond claims) and the
/// gateway's own issued tokens.
///
/// Input: a flags byte, then `authorization \0 x_auth_key \0 url \0 body`. The clock is
/// [`T0_MS`] plus `(flags >> 2) × 2 s`. Flags `& 3`: 0 verifies the `Authorization` values
/// (split on `\n`) as a partner token; 1 builds the token from `header \x01 claims` in the
/// `authorization` field, signed with [`ENC_KEY`]; 2 encodes claims for the given key, url and
/// order and verifies them back (they must pass when the url is a valid path); 3 verifies the
/// `Authorization` values as a gateway-issued token and round-trips an issued token for the
/// subject `x_auth_key`.
pub fn jwt(data: &[u8]) -> Outcome {
    let (flags, rest) = flags_and_rest(data);
    let [authorization, x_auth_key, url, body] = fields::<4>(rest);
    let now_ms = T0_MS + u64::from(flags >> 2) * 2_000;
    let x_auth_key = String::from_utf8_lossy(x_auth_key);
    let url = String::from_utf8_lossy(url);
    let order = order_fields_from_body(body, &OrderFieldNames::default());
    let enc = EncKey::new(ENC_KEY.as_bytes());
    let authorization = String::from_utf8_lossy(authorization);

    match flags & 3 {
        0 => {
            let values: Vec<&str> = authorization.split('\n').collect();
            partner(&values, &x_auth_key, &url, order.as_ref(), now_ms, &enc)
        }
        1 => {
            let (header, claims) = authorization
                .split_once('\u{1}')
                .unwrap_or((r#"{"alg":"HS256","typ":"JWT"}"#, &authorization));
            let mut token = URL_SAFE_NO_PAD.encode(header.as_bytes());
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(claims.as_bytes()));
            let signature = hs256(token.as_bytes());
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(signature));
            partner(&[&token], &x_auth_key, &url, order.as_ref(), now_ms, &enc)
        }
        2 => {
            let order = order.unwrap_or_else(|| whitebit_auth::fiat::OwnedOrderFields {
                currency: "BTC".into(),
                amount: "0.001".into(),
                order_id: authorization.to_string(),
            });
            let lifetime = 1 + u64::from(flags >> 2) * 1_000 % MAX_LIFETIME_MS;
            let claims =
                PartnerClaims::new(&x_auth_key, &url, &order.as_fields(), now_ms, lifetime);
            let token = claims.encode(&enc);
            let values = [token.as_str()];
            let request = PartnerTokenRequest {
                authorization: &values,
                x_auth_key: &x_auth_key,
                url: &url,
                order: Some(order.as_fields()),
                now_ms,
                iat_leeway_ms: 0,
            };
            let verified = verify_partner_token(&request, |_| Some(&enc));
            match (normalize_path(&url).is_ok(), verified) {
                (true, Ok(token)) => {
                    assert_eq!(token.auth_key, x_auth_key.as_ref());
                    assert_eq!(token.expires_at_ms, now_ms + lifetime);
                    Outcome::Accepted
                }
                (true, Err(e)) => panic!("a freshly encoded partner token was refused: {e}"),
                (false, Ok(_)) => panic!("a token for an invalid url was accepted"),
                (false, Err(e)) => {
                    assert_eq!(e, TokenRejection::UrlMismatch);
                    Outcome::Rejected
                }
            }
        }
        _ => {
            let issuer = issuer();
            let values: Vec<&str> = authorization.split('\n').collect();
            match issuer.verify(&values, now_ms) {
                Ok(verified) => assert!(verified.expires_at_s.saturating_mul(1000) > now_ms),
                Err(e) => check_token_rejection(e),
            }
            let issued = issuer.issue(&x_auth_key, now_ms).expect("issuing a token");
            let bearer = format!("Bearer {}", issued.token);
            let verified = issuer
                .verify(&[&bearer], now_ms)
                .expect("a freshly issued token verifies");
            assert_eq!(verified.subject, x_auth_key.as_ref());
            assert_eq!(verified.jti, issued.jti);
            assert_eq!(verified.expires_at_s, issued.expires_at_s);
            assert!(
                json::parse(issued.response_body().as_bytes()).is_ok(),
                "the token response is not JSON"
            );
            Outcome::Accepted
        }
    }
}

/// HMAC-SHA256 under [`ENC_KEY`] (what a partner signs its tokens with).
fn hs256(message: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac as _};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(ENC_KEY.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn partner(
    authorization: &[&str],
    x_auth_key: &str,
    url: &str,
    order: Option<&whitebit_auth::fiat::OwnedOrderFields>,
    now_ms: u64,
    enc: &EncKey,
) -> Outcome {
    let request = PartnerTokenRequest {
        authorization,
        x_auth_key,
        url,
        order: order.map(whitebit_auth::fiat::OwnedOrderFields::as_fields),
        now_ms,
        iat_leeway_ms: 1_000,
    };
    let known = |key: &str| (key == AUTH_KEY).then_some(enc);
    match verify_partner_token(&request, known) {
        Ok(token) => {
            assert_eq!(token.auth_key, AUTH_KEY, "accepted an unknown partner");
            assert!(token.expires_at_ms > now_ms, "accepted an expired token");
            assert!(
                token.expires_at_ms <= now_ms + 1_000 + MAX_LIFETIME_MS,
                "accepted a token living too long"
            );
            let order = order.expect("accepted without order fields");
            let _: OrderFields<'_> = order.as_fields();
            Outcome::Accepted
        }
        Err(e) => {
            check_token_rejection(e);
            Outcome::Rejected
        }
    }
}

fn check_token_rejection(e: TokenRejection) {
    assert_eq!(e.status(), 401);
    let body = e.body();
    let Ok(JsonValue::Object(object)) = json::parse(body.as_bytes()) else {
        panic!("a token rejection body is not a JSON object: {body}");
    };
    assert!(matches!(
        object.get("message"),
        Some(JsonValue::String(m)) if m == "Request authorization failed"
    ));
}

// ---------------------------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------------------------

/// The gateway's configuration parser, as `wbauth serve --config FILE` uses it.
///
/// Input: the TOML text, then NUL-separated overrides `SECTION__KEY=value` (the
/// `WBAUTH_GATEWAY__` prefix is added when missing). Invariants: parsing is deterministic; an
/// accepted configuration satisfies the documented limits and its route tables and kind
/// patterns can be used; a refusal has a message.
pub fn config(data: &[u8]) -> Outcome {
    let [text, overrides] = fields::<2>(data);
    let text = String::from_utf8_lossy(text);
    let overrides: Vec<(String, String)> = overrides
        .split(|&b| b == 0)
        .filter(|o| !o.is_empty())
        .take(8)
        .map(|o| {
            let o = String::from_utf8_lossy(o);
            let (name, value) = o.split_once('=').unwrap_or((&o, ""));
            let name = if name.starts_with(ENV_PREFIX) {
                name.to_owned()
            } else {
                format!("{ENV_PREFIX}{name}")
            };
            (name, value.to_owned())
        })
        .collect();
    let first = Config::from_toml(&text, "fuzz.toml", &overrides);
    let second = Config::from_toml(&text, "fuzz.toml", &overrides);
    match (first, second) {
        (Ok(config), Ok(_)) => {
            assert!(config.verify.max_body_bytes >= 1);
            assert!((1_000..=86_400_000).contains(&config.tokens.lifetime_ms));
            assert!((1..=1_000).contains(&config.store.pool_size));
            assert!(config.keys.max_ips >= 1);
            assert!(config.store.key_backend().is_ok());
            assert!(config.store.nonce_backend().is_ok());
            let _ = config.store.remote_options();
            let routes = config.routes.iter().chain(&config.fiat.routes);
            for prefix in routes.map(|route| route.prefix.as_str()) {
                assert!(
                    normalize_path(prefix).is_ok(),
                    "a route prefix that is not a path: {prefix:?}"
                );
            }
            for kind in &config.kinds {
                for pattern in &kind.paths {
                    let _ = pattern_matches(pattern, "/api/v4/trade-account/balance");
                    let _ = pattern_matches(pattern, pattern);
                }
            }
            Outcome::Accepted
        }
        (Err(a), Err(b)) => {
            let message = a.to_string();
            assert!(!message.is_empty());
            assert_eq!(message, b.to_string(), "parsing is not deterministic");
            Outcome::Rejected
        }
        _ => panic!("parsing the same text twice gave different results"),
    }
}

// ---------------------------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------------------------

/// The whole public service, built like `wbauth sandbox` (embedded SQLite key store and
/// journal nonce store in a temporary directory, the demo key [`API_KEY`] / [`API_SECRET`],
/// built-in answers, a generated RS256 token key) on a clock standing at [`T0_MS`].
///
/// Dropping it removes its data directory.
pub struct ServiceHarness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    clock: ManualClock,
    _stores: Stores,
    _dir: TempDataDir,
}

impl std::fmt::Debug for ServiceHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceHarness").finish_non_exhaustive()
    }
}

impl ServiceHarness {
    /// Builds the service (panics when it cannot: the harness is then unusable).
    #[must_use]
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let dir = TempDataDir::create().expect("a temporary data dir");
        let options = SandboxOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            demo_key: Some(API_KEY.to_owned()),
            demo_secret: Some(API_SECRET.to_owned()),
        };
        let config = sandbox_config(&options, dir.path(), &[]).expect("the sandbox config");
        let clock = ManualClock::at(T0_MS);
        let (stores, router) = runtime.block_on(async {
            let stores = open_stores(&config, T0_MS).await.expect("the stores");
            seed_demo_key(&stores, &options, T0_MS)
                .await
                .expect("the demo key");
            let gateway = build_gateway(
                config,
                &stores,
                std::sync::Arc::new(clock.clone()),
                Answers::BuiltIn,
            )
            .await
            .expect("the gateway");
            (stores, public_router(gateway))
        });
        Self {
            runtime,
            router,
            clock,
            _stores: stores,
            _dir: dir,
        }
    }

    /// Sends one request built from `data` and checks the answer.
    ///
    /// Input: a flags byte, then `method \0 uri \0 headers \0 body`, headers as
    /// `name: value` lines. Flags: bit 0 adds the three `X-TXC-*` headers of the demo key
    /// (payload = base64 of the body, signature = its HMAC), bit 1 adds
    /// `Content-Type: application/json`, bit 2 moves the clock 1 ms forward and replaces every
    /// `NONCE` in the body with the clock's time (a fresh nonce). Invariant: the answer is a
    /// 200 with a JSON body, or a status and body of the error catalogue (`docs/errors.md`),
    /// with `Allow` on 405 and `Retry-After` on 429 and 503.
    pub fn call(&self, data: &[u8]) -> Outcome {
        let (flags, rest) = flags_and_rest(data);
        let [method, uri, headers, body] = fields::<4>(rest);
        let method = Method::from_bytes(method).unwrap_or(Method::POST);
        let uri = Uri::try_from(uri).unwrap_or_else(|_| Uri::from_static("/"));
        let mut body = body.to_vec();
        if flags & 4 != 0 {
            self.clock.advance(1);
            let now = whitebit_gateway::clock::Clock::now_ms(&self.clock).to_string();
            body = replace_all(&body, b"NONCE", now.as_bytes());
        }
        let mut builder = Request::builder().method(method).uri(uri);
        for line in headers.split(|&b| b == b'\n') {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = line[colon + 1..].trim_ascii_start();
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                axum::http::HeaderValue::from_bytes(value),
            ) {
                builder = builder.header(name, value);
            }
        }
        if flags & 1 != 0 {
            let payload = base64_encode(&body);
            let signature = sign_payload(API_SECRET.as_bytes(), payload.as_bytes());
            builder = builder
                .header("X-TXC-APIKEY", API_KEY)
                .header("X-TXC-PAYLOAD", payload)
                .header("X-TXC-SIGNATURE", signature);
        }
        if flags & 2 != 0 {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let Ok(request) = builder.body(Body::from(body)) else {
            return Outcome::Rejected;
        };
        let router = self.router.clone();
        let (status, headers, bytes) = self.runtime.block_on(async move {
            let response = router
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 64 << 20)
                .await
                .expect("the response body");
            (parts.status.as_u16(), parts.headers, bytes)
        });
        check_answer(status, &headers, &bytes)
    }
}

impl Default for ServiceHarness {
    fn default() -> Self {
        Self::new()
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Every (status, body) the public service may answer other than a 200.
fn catalogue() -> &'static Vec<(u16, String)> {
    static ALL: OnceLock<Vec<(u16, String)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<(u16, String)> = ApiError::ALL
            .iter()
            .map(|e| (e.status(), e.body().to_owned()))
            .collect();
        for (request_missing, nonce_missing) in [(true, false), (false, true), (true, true)] {
            let e = JwtEndpointError::ValidationFailed {
                request_missing,
                nonce_missing,
            };
            all.push((e.status(), e.body()));
        }
        for e in [
            JwtEndpointError::InvalidCredentials,
            JwtEndpointError::ServerConfiguration,
        ] {
            all.push((e.status(), e.body()));
        }
        all
    })
}

fn check_answer(status: u16, headers: &axum::http::HeaderMap, body: &[u8]) -> Outcome {
    if status == 200 {
        assert!(
            json::parse(body).is_ok(),
            "a 200 whose body is not JSON: {}",
            String::from_utf8_lossy(body)
        );
        return Outcome::Accepted;
    }
    let text = String::from_utf8_lossy(body);
    assert!(
        catalogue()
            .iter()
            .any(|(s, b)| *s == status && b.as_bytes() == body),
        "an answer outside the catalogue: {status} {text}"
    );
    if status == 405 {
        assert_eq!(
            headers.get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
    }
    if status == 429 && text.contains("Rate limit") || status == 503 {
        assert!(
            headers.contains_key(header::RETRY_AFTER),
            "{status} without Retry-After"
        );
    }
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    Outcome::Rejected
}

/// [`ServiceHarness::call`] on one harness per process (the fuzz target's entry point).
pub fn service(data: &[u8]) -> Outcome {
    static HARNESS: OnceLock<ServiceHarness> = OnceLock::new();
    HARNESS.get_or_init(ServiceHarness::new).call(data)
}
