//! dudect-style timing test (`cargo bench -p whitebit-gateway --bench timing`,
//! `docs/design-decisions.md` 35): is a request with an **unknown key** answered in a time statistically
//! indistinguishable from one with a **known key and a wrong signature**? Both are refused at
//! row 12 (`{"code":10,"message":"Unauthorized request."}`).
//!
//! In process, through the gateway's own request entry ([`Gateway::verify`], the call the
//! HTTP server makes for every private request) on a gateway built the way `wbauth sandbox`
//! builds it (embedded stores, the demo key and `WBAUTH_TIMING_HELD` more keys in the key
//! cache). The two classes are identical requests — same body, payload and (wrong) signature —
//! except for the `X-TXC-APIKEY` value, of the same length and alphabet. As in dudect, classes
//! are interleaved in a random order, each call is timed with `Instant`, and Welch's t is
//! computed on the raw measurements and on the measurements below several percentiles of the
//! pooled distribution (cropping the long tail that a shared machine's interruptions add).
//! PASS when every |t| < 4.5; the process exits non-zero on FAIL.
//!
//! Each class is a distribution of inputs, not one input, so that what is compared is "a key
//! that exists" against "a key that does not", not two particular keys or one memory layout
//! (with one fixed key per class even two *known* keys differ by a fraction of a nanosecond,
//! which 10^6 measurements resolve: the A/A control failed at |t| up to 44 that way):
//!
//! - a class is a pool of `WBAUTH_TIMING_KEYS` keys (default 1,000): random unknown keys, or
//!   known keys drawn from the held ones; every measurement draws its key at random from its
//!   class's pool, and its request is built just before it, outside the timed region, the
//!   same way for both classes;
//! - the run is split into `WBAUTH_TIMING_ROUNDS` rounds (default 10); between rounds the key
//!   cache is rebuilt (`KeyCache::replace_all`, as on a store resync: every entry allocated
//!   anew, a new hash key, new stand-ins) and new pools are drawn;
//! - the gateway holds `WBAUTH_TIMING_HELD` keys, by default 100 per pooled key (100,000):
//!   an unknown key reads the memory of a held key paired with it by a hash
//!   (`KeyCache::lookup`), and when the known pool is a large share of the held keys, those
//!   pairs are often the known pool's own keys, kept warm by the known class (with 10 held
//!   keys per pooled key, unknown keys measured about 1 ns faster). A gateway holds far more
//!   keys than anyone probing it knows.
//!
//! What it detects: the key cache before its constant-work index (a hash map's hit or miss,
//! then one shared stand-in for every unknown key) failed this test on 2026-12-01 with
//! max |t| = 614 (unknown keys 17–51 ns faster below the 50th–95th percentiles), and with
//! `WBAUTH_TIMING_KEYS=1 WBAUTH_TIMING_ROUNDS=1` (one key per class, the old test's
//! design) with |t| = 134 (3.6–6 ns faster).
//!
//! `WBAUTH_TIMING_N` sets the measurements per class (default 1,000,000, the minimum the
//! decision requires). `WBAUTH_TIMING_CONTROL=1` runs the A/A control instead: the first
//! class is a second pool of *known* keys (disjoint from the other), which shows how far two
//! sets of keys that both exist differ on this machine.

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
use whitebit_gateway::clock::{SharedClock, SystemClock};
use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key, seed_extra_keys};
use whitebit_gateway::{Answers, Gateway, Incoming, Refusal, build_gateway, open_stores};

const KNOWN_KEY: &str = "4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b";
const UNKNOWN_KEY: &str = "b0a9f8e7a1c5f6d9b0b4b3e2ab2e23e4";
const SECRET: &str = "a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a";
const PATH: &str = "/api/v4/trade-account/balance";
const THRESHOLD: f64 = 4.5;
/// Keys held by the gateway per key of a class's pool.
const HELD_PER_POOLED: usize = 100;
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
    fn from_os() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("randomness");
        Self(u64::from_le_bytes(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (`n` far below 2^32, so the bias is negligible).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// `count` random public keys of the known keys' length and alphabet (none of them held: the
/// chance of drawing a held key is 2^-128 per held key and draw).
fn unknown_keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let mut raw = [0u8; 16];
            getrandom::fill(&mut raw).expect("randomness");
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        })
        .collect()
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
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let per_class = env("WBAUTH_TIMING_N").unwrap_or(1_000_000);
    let control = std::env::var("WBAUTH_TIMING_CONTROL").is_ok_and(|v| v == "1");
    let keys = env("WBAUTH_TIMING_KEYS").unwrap_or(1000).max(1);
    // The gateway holds a hundred times as many keys as a class's pool: a gateway holds far
    // more keys than anyone probes (see the doc comment on why it matters).
    let held = env("WBAUTH_TIMING_HELD")
        .unwrap_or(keys * HELD_PER_POOLED)
        .max(2 * keys);
    let rounds = env("WBAUTH_TIMING_ROUNDS")
        .unwrap_or(10)
        .clamp(1, per_class.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async move {
        // The gateway exactly as `wbauth sandbox` assembles it: the demo key, and `keys` more.
        let options = SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo_key: Some(KNOWN_KEY.to_owned()),
            demo_secret: Some(SECRET.to_owned()),
            config_file: None,
            body_match: None,
            demo_kind: None,
            tls: None,
        };
        let config = sandbox_config(&options, dir.path(), &[]).expect("config");
        let clock: SharedClock = Arc::new(SystemClock);
        let stores = open_stores(&config, clock.now_ms()).await.expect("stores");
        seed_demo_key(&stores, &options, clock.now_ms())
            .await
            .expect("demo key");
        let mut seeded: Vec<String> = seed_extra_keys(&stores, held, clock.now_ms())
            .await
            .expect("known keys")
            .into_iter()
            .map(|(public_key, _)| public_key)
            .collect();
        let gateway = build_gateway(config, &stores, clock.clone(), Answers::BuiltIn)
            .await
            .expect("gateway");
        assert_eq!(gateway.key_count(), held + 1);
        assert!(gateway.holds_key(KNOWN_KEY) && !gateway.holds_key(UNKNOWN_KEY));
        for key in &seeded {
            assert_eq!(key.len(), UNKNOWN_KEY.len());
            assert!(gateway.holds_key(key));
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
        let method = Method::POST;
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // Every measurement's request is built just before it, outside the timed region, the
        // same way for both classes (the key copied into the same buffer).
        let mut key = String::with_capacity(UNKNOWN_KEY.len());
        let mut measure = async |public_key: &str| -> u64 {
            key.clear();
            key.push_str(public_key);
            let headers = headers(&key, &wrong.payload, &wrong.signature);
            let request = Incoming {
                method: &method,
                path_and_query: PATH,
                headers: &headers,
                body: &body,
                peer,
            };
            time_one(&gateway, &request).await
        };

        let mut rng = XorShift::from_os();
        let mut samples: [Vec<f64>; 2] = [
            Vec::with_capacity(per_class),
            Vec::with_capacity(per_class),
        ];
        let started = Instant::now();
        for round in 0..rounds {
            if round > 0 {
                // A fresh memory layout: every key's entry allocated anew, a new hash key,
                // new stand-ins (the reload the gateway does on a store resync).
                gateway.reload().await.expect("keys reloaded");
            }
            // Class 0: `keys` random unknown keys, or (A/A control) `keys` held keys; class 1:
            // `keys` other held keys. New pools every round.
            rng.shuffle(&mut seeded);
            let pools: [Vec<String>; 2] = [
                if control {
                    seeded[keys..2 * keys].to_vec()
                } else {
                    unknown_keys(keys)
                },
                seeded[..keys].to_vec(),
            ];
            // Warm up caches, branch predictors and the CPU frequency.
            for i in 0..10_000 {
                let pool = &pools[i % 2];
                measure(&pool[rng.below(pool.len())]).await;
            }
            let quota = |r: usize| per_class * r / rounds;
            let target = quota(round + 1);
            while samples[0].len() < target || samples[1].len() < target {
                let mut class = usize::from(rng.next() & 1 == 1);
                if samples[class].len() >= target {
                    class = 1 - class;
                }
                let pool = &pools[class];
                let ns = measure(&pool[rng.below(pool.len())]).await;
                samples[class].push(ns as f64);
            }
        }
        let took = started.elapsed();
        drop(stores);

        let mut pooled: Vec<f64> = samples.iter().flatten().copied().collect();
        pooled.sort_by(f64::total_cmp);
        let percentile = |p: f64| pooled[((pooled.len() - 1) as f64 * p) as usize];
        println!(
            "timing: {} vs {} + wrong signature, Gateway::verify in process; {per_class} \
             measurements per class, interleaved at random, in {rounds} rounds (the key cache \
             rebuilt and new pools drawn between rounds); each measurement's key drawn at random \
             from its class's pool; {:.1} s",
            if control {
                format!("A/A control: {keys} known keys")
            } else {
                format!("{keys} unknown keys")
            },
            if control {
                format!("{keys} other known keys (of {held} held)")
            } else {
                format!("{keys} known keys (of {held} held)")
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
