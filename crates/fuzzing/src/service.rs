//! The service harness: the whole public axum service, built like the sandbox.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, Method, Request, Uri, header};
use tower::ServiceExt as _;
use whitebit_auth::encoding::base64_encode;
use whitebit_auth::json::{self};
use whitebit_auth::mac::sign_payload;
use whitebit_auth::{ApiError, JwtEndpointError};
use whitebit_gateway::clock::ManualClock;
use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key};
use whitebit_gateway::{Answers, Stores, TempDataDir, build_gateway, open_stores, public_router};

use crate::{API_KEY, API_SECRET, Outcome, T0_MS, fields, flags_and_rest};

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
            config_file: None,
            body_match: None,
            demo_kind: None,
            tls: None,
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
