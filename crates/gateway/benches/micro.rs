//! Micro-benchmarks (`cargo bench -p whitebit-gateway --bench micro`): signing, full
//! verification of a typical ≈120-byte request, the embedded store's strict and window nonce
//! checks, the Fiat Gateway partner-token check, issuing a JWT, and a bare HMAC-SHA512 of the
//! same payload as the baseline every ratio is measured against (the target: verification ≤ 2.5×
//! the bare HMAC).

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, json};
use whitebit_auth::NonceMode;
use whitebit_auth::fiat::{
    EncKey, OrderFields, PartnerClaims, PartnerTokenRequest, verify_partner_token,
};
use whitebit_auth::mac::{HmacSha512Key, PayloadMac};
use whitebit_auth::sign::sign_request;
use whitebit_auth::verify::{BodyMatch, HeaderValue, RequestParts, check_request};
use whitebit_gateway::store::NonceStore;
use whitebit_gateway::store::{JournalConfig, JournalNonceStore};
use whitebit_gateway::tokens::{SigningKey, TokenIssuer};

const PATH: &str = "/api/v4/trade-account/balance";
const NOW: u64 = 1_700_000_000_000;

fn typical(key: &HmacSha512Key, nonce: u64) -> whitebit_auth::SignedRequest {
    let mut params = Map::new();
    params.insert("ticker".into(), json!("BTC"));
    params.insert("market".into(), json!("BTC_USDT"));
    sign_request(PATH, nonce, Some(true), &params, key).expect("signs")
}

fn protocol(c: &mut Criterion) {
    let key = HmacSha512Key::new(b"a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c");
    let signed = typical(&key, NOW);
    assert!(
        (100..=140).contains(&signed.body.len()),
        "a typical request: {} bytes",
        signed.body.len()
    );

    c.bench_function("hmac_sha512_payload_baseline", |b| {
        b.iter(|| black_box(key.sign(black_box(signed.payload.as_bytes()))))
    });
    let mut nonce = NOW;
    c.bench_function("sign_typical_request", |b| {
        b.iter(|| {
            nonce += 1;
            black_box(typical(&key, nonce))
        })
    });
    c.bench_function("verify_typical_request", |b| {
        b.iter(|| {
            let parts = RequestParts {
                api_key: HeaderValue::Present("4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b"),
                payload: HeaderValue::Present(&signed.payload),
                signature: HeaderValue::Present(&signed.signature),
                body: &signed.body,
                path: PATH,
            };
            let checked = check_request(black_box(&parts), BodyMatch::Exact).expect("well-formed");
            checked
                .verify_signature(Some(&key as &dyn PayloadMac))
                .expect("valid");
            black_box(checked.nonce())
        })
    });

    let enc = EncKey::new(b"enc-5b1d9c7e2f4a6b8d0e1f3a5c7e9b1d3f");
    let order = OrderFields {
        currency: "BTC",
        amount: "0.001",
        order_id: "12345",
    };
    let token = PartnerClaims::new(
        "auth-9a8b7c6d5e4f3a2b1c0d",
        "/api/v1/fiat/deposit",
        &order,
        NOW,
        60_000,
    )
    .encode(&enc);
    let authorization = format!("Bearer {token}");
    c.bench_function("fiat_partner_token_check", |b| {
        b.iter(|| {
            let auth = [authorization.as_str()];
            let request = PartnerTokenRequest {
                authorization: &auth,
                x_auth_key: "auth-9a8b7c6d5e4f3a2b1c0d",
                url: "/api/v1/fiat/deposit",
                order: Some(order),
                now_ms: NOW + 1_000,
                iat_leeway_ms: 1_000,
            };
            black_box(verify_partner_token(&request, |_| Some(&enc)).expect("valid"))
        })
    });

    let issuer = TokenIssuer::new(
        "wbauth",
        "fiat-gateway",
        vec![SigningKey::generate_rs256().expect("key")],
    )
    .expect("issuer");
    c.bench_function("issue_jwt_rs256", |b| {
        b.iter(|| black_box(issuer.issue("demo", NOW).expect("issued")))
    });
}

fn nonce_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("wbauth-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store =
        JournalNonceStore::open(JournalConfig::new(dir.join("nonces")), NOW).expect("store");
    let mut strict = 0u64;
    c.bench_function("embedded_store_strict_consume", |b| {
        b.iter(|| {
            strict += 1;
            runtime
                .block_on(store.consume(1, strict, NonceMode::Strict, NOW))
                .expect("store")
                .expect("accepted")
        })
    });
    // Window mode: unique nonces inside ±5 s, spread over many keys (as real load is).
    let mut i = 0u64;
    c.bench_function("embedded_store_window_consume", |b| {
        b.iter(|| {
            i += 1;
            let (key, nonce) = (2 + i % 1000, NOW - 4_000 + i / 1000);
            runtime
                .block_on(store.consume(key, nonce, NonceMode::Window, NOW))
                .expect("store")
                .expect("accepted")
        })
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, protocol, nonce_store);
criterion_main!(benches);
