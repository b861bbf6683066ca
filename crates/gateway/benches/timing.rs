//! dudect-style timing test (`cargo bench -p whitebit-gateway --bench timing`,
//! `decisions.md` 35): is a request with an **unknown key** answered in a time statistically
//! indistinguishable from one with a **known key and a wrong signature**? Both are refused at
//! row 12 (`{"code":10,"message":"Unauthorized request."}`).
//!
//! In process, through the gateway's own request entry ([`Gateway::verify`], the call the
//! HTTP server makes for every private request) on a gateway built the way `wbauth sandbox`
//! builds it (embedded stores, the demo key in the key cache). The two classes are identical
//! requests — same body, payload and (wrong) signature — except for the `X-TXC-APIKEY` value,
//! of the same length. As in dudect, each class is a distribution of inputs, not one input:
//! every measurement draws its key at random from its class's pool (`WBAUTH_TIMING_KEYS`
//! known keys, as many random unknown ones), so that what is compared is "a key that exists"
//! against "a key that does not", not the memory layout of two particular keys (with one fixed
//! key per class, even two *known* keys differ by a fraction of a nanosecond, which 10^6
//! measurements resolve). Classes are interleaved in a random order, each call is timed with
//! `Instant`, and Welch's t is computed on the raw measurements and, dudect-style, on the
//! measurements below several percentiles of the pooled distribution (cropping the long tail
//! that a shared machine's interruptions add). PASS when every |t| < 4.5; the process exits
//! non-zero on FAIL.
//!
//! `WBAUTH_TIMING_N` sets the measurements per class (default 1,000,000, the minimum the
//! decision requires). `WBAUTH_TIMING_CONTROL=1` runs the A/A control instead: the first class
//! is a second *known* key (same length) with the same wrong signature, which shows how far
//! two keys that both exist already differ on this machine.

#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, Method};
use bytes::Bytes;
use whitebit_auth::ApiError;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;
use whitebit_gateway::app::{build_gateway, open_stores};
use whitebit_gateway::clock::{SharedClock, SystemClock};
use whitebit_gateway::pipeline::{Gateway, Incoming, Refusal};
use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key, seed_extra_keys};

const KNOWN_KEY: &str = "4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b";
const UNKNOWN_KEY: &str = "b0a9f8e7a1c5f6d9b0b4b3e2ab2e23e4";
const SECRET: &str = "a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a";
const PATH: &str = "/api/v4/trade-account/balance";
const THRESHOLD: f64 = 4.5;
/// Pooled-distribution percentiles below which the cropped tests keep measurements.
const CROPS: [f64; 6] = [0.50, 0.75, 0.90, 0.95, 0.99, 0.999];

/// Welch's t of two samples (`a` minus `b`) with their means.
fn welch(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let (na, ma, va) = stats(a);
    let (nb, mb, vb) = stats(b);
    ((ma - mb) / (va / na + vb / nb).sqrt(), ma, mb)
}

/// A small xorshift generator for the class order (seeded from the OS).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn headers(api_key: &str, payload: &str, signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).expect("header value");
    map.insert("content-type", value("application/json"));
    map.insert("x-txc-apikey", value(api_key));
    map.insert("x-txc-payload", value(payload));
    map.insert("x-txc-signature", value(signature));
    map
}

async fn time_one(gateway: &Gateway, request: &Incoming<'_>) -> u64 {
    let start = Instant::now();
    let refusal = black_box(gateway.verify(black_box(request)).await);
    let elapsed = start.elapsed();
    // Outside the timed region: both classes must be refused at row 12.
    assert!(
        matches!(refusal, Err(Refusal::Api(ApiError::Unauthorized))),
        "refused at row 12: {refusal:?}"
    );
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

fn main() -> ExitCode {
    let per_class: usize = std::env::var("WBAUTH_TIMING_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let control = std::env::var("WBAUTH_TIMING_CONTROL").is_ok_and(|v| v == "1");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async move {
        // The gateway exactly as `wbauth sandbox` assembles it, with one known key.
        let options = SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo_key: Some(KNOWN_KEY.to_owned()),
            demo_secret: Some(SECRET.to_owned()),
        };
        let config = sandbox_config(&options, dir.path(), &[]).expect("config");
        let clock: SharedClock = Arc::new(SystemClock);
        let stores = open_stores(&config, clock.now_ms()).await.expect("stores");
        seed_demo_key(&stores, &options, clock.now_ms())
            .await
            .expect("demo key");
        let pool: usize = std::env::var("WBAUTH_TIMING_KEYS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        // Known keys: the pool of the known class, and (A/A control) the other class's pool.
        let mut seeded: Vec<String> = seed_extra_keys(&stores, 2 * pool, clock.now_ms())
            .await
            .expect("known keys")
            .into_iter()
            .map(|(public_key, _)| public_key)
            .collect();
        let other_known = seeded.split_off(pool);
        let known_pool = seeded;
        let gateway = build_gateway(config, &stores, clock.clone(), true)
            .await
            .expect("gateway");
        assert!(gateway.keys.get(KNOWN_KEY).is_some() && gateway.keys.get(UNKNOWN_KEY).is_none());
        // Unknown keys: random, of the same length and alphabet as the known ones.
        let unknown_pool: Vec<String> = (0..pool)
            .map(|_| {
                let mut raw = [0u8; 16];
                getrandom::fill(&mut raw).expect("randomness");
                raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
            })
            .collect();
        for key in known_pool.iter().chain(&other_known) {
            assert_eq!(key.len(), UNKNOWN_KEY.len());
            assert!(gateway.keys.get(key).is_some());
        }
        for key in &unknown_pool {
            assert!(gateway.keys.get(key).is_none());
        }

        // One typical request, signed with a secret that is not the key's: a wrong signature.
        let body = format!(
            r#"{{"request":"{PATH}","nonce":{},"nonceWindow":true,"ticker":"BTC","market":"BTC_USDT"}}"#,
            clock.now_ms()
        );
        let wrong = sign_body(
            body.clone().into_bytes(),
            &HmacSha512Key::new(b"not the key's secret"),
        );
        let body = Bytes::from(body);
        let first_pool = if control { &other_known } else { &unknown_pool };
        let header_maps = |keys: &[String]| -> Vec<HeaderMap> {
            keys.iter()
                .map(|k| headers(k, &wrong.payload, &wrong.signature))
                .collect()
        };
        let first_headers = header_maps(first_pool);
        let known_headers = header_maps(&known_pool);
        let method = Method::POST;
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let incoming = |headers| Incoming {
            method: &method,
            path_and_query: PATH,
            headers,
            body: &body,
            peer,
        };
        // Class 0: unknown keys; class 1: known keys, wrong signature.
        let requests: [Vec<Incoming<'_>>; 2] = [
            first_headers.iter().map(incoming).collect(),
            known_headers.iter().map(incoming).collect(),
        ];

        // Warm up caches, branch predictors and the CPU frequency.
        for i in 0..20_000 {
            time_one(&gateway, &requests[i % 2][(i / 2) % pool]).await;
        }

        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("randomness");
        let mut rng = XorShift(u64::from_le_bytes(seed) | 1);
        let mut samples: [Vec<f64>; 2] = [
            Vec::with_capacity(per_class),
            Vec::with_capacity(per_class),
        ];
        let started = Instant::now();
        while samples[0].len() < per_class || samples[1].len() < per_class {
            let mut class = usize::from(rng.next() & 1 == 1);
            if samples[class].len() >= per_class {
                class = 1 - class;
            }
            let pick = usize::try_from(rng.next() % pool as u64).unwrap_or(0);
            let ns = time_one(&gateway, &requests[class][pick]).await;
            samples[class].push(ns as f64);
        }
        let took = started.elapsed();
        drop(stores);

        let mut pooled: Vec<f64> = samples.iter().flatten().copied().collect();
        pooled.sort_by(f64::total_cmp);
        let percentile = |p: f64| pooled[((pooled.len() - 1) as f64 * p) as usize];
        println!(
            "timing: {} vs known keys + wrong signature, Gateway::verify in process; \
             {per_class} measurements per class, interleaved at random, keys drawn at random \
             from pools of {pool}, {:.1} s",
            if control {
                "A/A control: other known keys + wrong signature"
            } else {
                "unknown keys"
            },
            took.as_secs_f64()
        );
        println!(
            "pooled: median {:.0} ns, p90 {:.0} ns, p99 {:.0} ns, max {:.0} ns",
            percentile(0.5),
            percentile(0.9),
            percentile(0.99),
            percentile(1.0)
        );
        let mut worst: f64 = 0.0;
        let mut report = |label: String, a: &[f64], b: &[f64]| {
            let (t, ma, mb) = welch(a, b);
            worst = worst.max(t.abs());
            println!(
                "{label:<18} n = {:>8} / {:>8}  mean first {ma:>8.1} ns  known {mb:>8.1} ns  \
                 t = {t:+.2}",
                a.len(),
                b.len()
            );
        };
        report("raw".to_owned(), &samples[0], &samples[1]);
        for p in CROPS {
            let limit = percentile(p);
            let crop = |x: &[f64]| x.iter().copied().filter(|v| *v <= limit).collect::<Vec<_>>();
            report(
                format!("cropped < p{}", p * 100.0),
                &crop(&samples[0]),
                &crop(&samples[1]),
            );
        }
        if worst < THRESHOLD {
            println!("PASS: max |t| = {worst:.2} < {THRESHOLD}");
            ExitCode::SUCCESS
        } else {
            println!("FAIL: max |t| = {worst:.2} >= {THRESHOLD}");
            ExitCode::FAILURE
        }
    })
}
