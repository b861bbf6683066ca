//! Failover drill: two real gateways share a highly available nonce store under
//! load from several keys (half of them in strict mode, half in window mode); the primary is
//! killed (`kill -9`) at a seeded random moment and a replica or standby takes over. Every
//! request is sent to one gateway and at once again to the other, and at the end everything
//! ever sent is replayed through both: zero (key, nonce) pairs accepted or delivered twice.
//!
//! - Redis: a master, one replica, three Sentinels (`wbauth_testkit::RedisHa`), the gateways
//!   on `redis+sentinel://…` with `nonce_replicas_ack = 1` (keys on a PostgreSQL of their
//!   own). The Sentinels promote the replica; with one replica, nothing can be confirmed again
//!   until the killed master rejoins as a replica (503 meanwhile). The same drill with
//!   `nonce_replicas_ack = 0` is reported, not failed.
//! - PostgreSQL: a primary and a synchronous standby made with `pg_basebackup`, behind a small
//!   TCP proxy (the address the gateways use, as HAProxy would be) that is switched to the
//!   standby once it is promoted, closing the old sessions; `require_sync_standby = true`.
//!
//! The summary line adds `recover_ms`: from the kill to the first request sent after it that
//! was accepted (a figure, not an assertion). Every wait is bounded and ends on a condition.

#![cfg(feature = "test-clock")]

mod common;
mod drill_support;

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::backends::MASTER_KEY;
use common::gateway::{Gateway, Upstream};
use drill_support::{
    Prepared, Reply, Rng, Scale, Tally, accepted_twice, send, start_instance, wait_for,
    wait_until_known,
};
use wbauth_testkit::{PostgresServer, RedisHa};

const PATH: &str = "/api/v4/order/new";

/// Row 16a: a window-mode nonce more than 5 s old (the end replay of window-mode requests).
const TOO_OLD: &str =
    r#"{"code":0,"message":"Your nonce is more than 5 seconds lesser than the current nonce."}"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .expect("clock after 1970")
}

/// What the load saw: each request, its first answer and the answer of its immediate replay
/// through the other gateway.
type Sent = Vec<(Prepared, Reply, Reply)>;

struct Load {
    stop: Arc<AtomicBool>,
    /// Set at the kill: requests sent from then on count towards `ok_after`.
    killed: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    ok_after: Arc<AtomicU64>,
    first_ok_after: Arc<Mutex<Option<Instant>>>,
    seen: Arc<Mutex<Sent>>,
    lanes: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One lane per key, `(key, secret, window)`: requests one after another, each to one
    /// gateway and then to the other, alternating, until stopped.
    /// Window-mode nonces are the gateways' time: the system clock plus `skew` ms.
    fn start(bases: [String; 2], keys: Vec<(String, String, bool)>, skew: u64) -> Self {
        let mut load = Self {
            stop: Arc::default(),
            killed: Arc::default(),
            ok: Arc::default(),
            ok_after: Arc::default(),
            first_ok_after: Arc::default(),
            seen: Arc::default(),
            lanes: Vec::new(),
        };
        for (key, secret, window) in keys {
            let (stop, killed, ok, ok_after, first_ok_after, seen, bases) = (
                load.stop.clone(),
                load.killed.clone(),
                load.ok.clone(),
                load.ok_after.clone(),
                load.first_ok_after.clone(),
                load.seen.clone(),
                bases.clone(),
            );
            load.lanes.push(tokio::spawn(async move {
                let (mut i, mut last) = (0usize, 0u64);
                while !stop.load(Ordering::SeqCst) {
                    let nonce = if window {
                        (now_ms() + skew).max(last + 1)
                    } else {
                        Gateway::nonce()
                    };
                    last = nonce;
                    let request = Prepared::new(&key, &secret, PATH, nonce, window);
                    let after = killed.load(Ordering::SeqCst);
                    let first = send(&bases[i % 2], &request).await;
                    let again = send(&bases[(i + 1) % 2], &request).await;
                    i += 1;
                    if first.accepted() {
                        ok.fetch_add(1, Ordering::SeqCst);
                        if after {
                            ok_after.fetch_add(1, Ordering::SeqCst);
                            let mut at = first_ok_after.lock().expect("lock");
                            at.get_or_insert_with(Instant::now);
                        }
                    }
                    seen.lock().expect("lock").push((request, first, again));
                }
            }));
        }
        load
    }

    async fn wait(&self, what: &str, counter: &Arc<AtomicU64>, n: u64) {
        let counter = counter.clone();
        wait_for(what, Duration::from_secs(120), move || {
            counter.load(Ordering::SeqCst) >= n
        })
        .await;
    }

    async fn finish(self) -> (Sent, Option<Instant>) {
        self.stop.store(true, Ordering::SeqCst);
        for lane in self.lanes {
            lane.await.expect("lane");
        }
        let first_ok_after = *self.first_ok_after.lock().expect("lock");
        let sent = std::mem::take(&mut *self.seen.lock().expect("lock"));
        (sent, first_ok_after)
    }
}

/// A TCP proxy on 127.0.0.1 (the address the gateways use for PostgreSQL, as HAProxy would
/// be): new connections go to the current target; switching closes every open session.
struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    sessions: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let target = Arc::new(AtomicU16::new(target));
        let sessions: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (to, open) = (target.clone(), sessions.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let port = to.load(Ordering::SeqCst);
                let session = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                let mut open = open.lock().expect("lock");
                open.retain(|s| !s.is_finished());
                open.push(session);
            }
        });
        Self {
            port,
            target,
            sessions,
            accept,
        }
    }

    /// New connections go to `port`; every open session is closed.
    fn switch(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
        for session in self.sessions.lock().expect("lock").drain(..) {
            session.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.switch(0);
    }
}

/// The highly available store of one drill.
enum Ha {
    Redis {
        ha: RedisHa,
        _keys: PostgresServer,
    },
    Postgres {
        primary: Option<PostgresServer>,
        standby: PostgresServer,
        proxy: Proxy,
    },
}

impl Ha {
    /// Starts the servers; the gateways' `[store]` environment.
    async fn start(redis: bool, replicas_ack: u32) -> (Self, Vec<(String, String)>) {
        let store = |k: &str, v: String| (format!("WBAUTH_GATEWAY__STORE__{k}"), v);
        if redis {
            let ha = tokio::task::spawn_blocking(|| RedisHa::start(1, 3))
                .await
                .expect("task")
                .expect("master, replica and three sentinels start");
            let keys = PostgresServer::start().expect("postgres starts");
            let env = vec![
                store("KEYS", keys.fresh_database().expect("database")),
                store("NONCES", ha.sentinel_url(0)),
                store("NONCE_REPLICAS_ACK", replicas_ack.to_string()),
            ];
            return (Ha::Redis { ha, _keys: keys }, env);
        }
        let primary = PostgresServer::start().expect("primary starts");
        let db = primary.fresh_database().expect("database");
        let db = db.rsplit('/').next().expect("database name").to_owned();
        let standby = PostgresServer::start_standby_of(&primary, "standby1").expect("standby");
        primary
            .make_synchronous("standby1")
            .expect("synchronous standby");
        let proxy = Proxy::start(primary.port()).await;
        let url = format!("postgres://postgres@127.0.0.1:{}/{db}", proxy.port);
        let env = vec![
            store("KEYS", url.clone()),
            store("NONCES", url),
            store("REQUIRE_SYNC_STANDBY", "true".into()),
        ];
        let ha = Ha::Postgres {
            primary: Some(primary),
            standby,
            proxy,
        };
        (ha, env)
    }

    fn name(&self) -> &'static str {
        match self {
            Ha::Redis { .. } => "redis",
            Ha::Postgres { .. } => "postgres",
        }
    }

    /// Kills the primary (then sets `killed`); afterwards the replica or standby takes over
    /// (promoted by the Sentinels, or by the drill as an operator or a cluster manager
    /// would) and, for Redis, the killed master rejoins as a replica. The moment of the kill
    /// and the time from it to the promotion.
    async fn fail_over(self, killed: Arc<AtomicBool>) -> (Self, Instant, Duration) {
        tokio::task::spawn_blocking(move || match self {
            Ha::Redis { mut ha, _keys } => {
                let old = ha.kill_master().expect("master killed");
                killed.store(true, Ordering::SeqCst);
                let at = Instant::now();
                ha.wait_for_failover(old, Duration::from_secs(60))
                    .expect("the sentinels promote the replica");
                let promoted = at.elapsed();
                ha.rejoin(old).expect("the old master rejoins as a replica");
                (Ha::Redis { ha, _keys }, at, promoted)
            }
            Ha::Postgres {
                primary,
                standby,
                proxy,
            } => {
                if let Some(mut primary) = primary {
                    primary.kill();
                }
                killed.store(true, Ordering::SeqCst);
                let at = Instant::now();
                standby.promote().expect("standby promoted");
                proxy.switch(standby.port());
                let promoted = at.elapsed();
                let ha = Ha::Postgres {
                    primary: None,
                    standby,
                    proxy,
                };
                (ha, at, promoted)
            }
        })
        .await
        .expect("task")
    }
}

/// One drill at a time: each runs its own servers and two gateways on a shared machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs one drill; `strict` fails on anything accepted twice, else it is only reported.
async fn drill(redis: bool, replicas_ack: u32, strict: bool) {
    let _serial = SERIAL.lock().await;
    let scale = Scale::from_env();
    let seed = drill_support::seed();
    let mut rng = Rng::new(seed);
    let (lanes, before, after) = scale.pick((4, (20, 120), 20), (8, (100, 2_000), 200));
    let upstream = Upstream::start().await;
    let (ha, env) = Ha::start(redis, replicas_ack).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = env;
    env.push(("WBAUTH_MASTER_KEY".into(), MASTER_KEY.into()));
    let a = start_instance(&dir.path().join("a"), &upstream, &env, 500, "a");
    let b = start_instance(&dir.path().join("b"), &upstream, &env, 500, "b");
    let mut keys = Vec::new();
    for i in 0..lanes {
        let (key, secret) = a.provision_key(&format!("load{i}"), "trade", &[]).await;
        keys.push((key, secret, i % 2 == 1));
    }
    // Provisioning moved A's clock forward (30 s per TOTP step); B's clock and the
    // window-mode nonces follow it, so both gateways agree on the time.
    let skew = a.advance(0).await.saturating_sub(now_ms());
    let skew = (skew + 15_000) / 30_000 * 30_000;
    b.advance(skew).await;
    // B learns every key from the store's announcements.
    for (key, secret, _) in &keys {
        wait_until_known(&b.base, key, secret, PATH).await;
    }
    let load = Load::start([a.base.clone(), b.base.clone()], keys, skew);
    let moment = rng.between(before.0, before.1) as u64;
    load.wait("load before the kill", &load.ok, moment).await;
    let (ha, killed, promoted) = ha.fail_over(load.killed.clone()).await;
    load.wait("accepted after the failover", &load.ok_after, after as u64)
        .await;
    let (sent, first_ok_after) = load.finish().await;
    let recover_ms = first_ok_after.map_or(0, |at| at.duration_since(killed).as_millis());

    // Everything ever sent, again, through both gateways.
    let mut tally = Tally::default();
    let mut too_old = 0u64;
    let mut count = |tally: &mut Tally, reply: &Reply| {
        if reply.status == Some(429) && reply.body == TOO_OLD {
            too_old += 1;
            tally.sent += 1;
        } else {
            tally.add(reply);
        }
    };
    let mut first = Vec::new();
    let mut replay = Vec::new();
    for (request, reply, again) in &sent {
        count(&mut tally, reply);
        count(&mut tally, again);
        first.push((request.clone(), reply.clone()));
        replay.push((request.clone(), again.clone()));
    }
    for (request, _, _) in &sent {
        for base in [&a.base, &b.base] {
            let reply = send(base, request).await;
            count(&mut tally, &reply);
            replay.push((request.clone(), reply));
        }
    }
    let twice = accepted_twice(&upstream, &first, &replay);
    for pair in twice.iter().take(5) {
        let all: Vec<String> = first
            .iter()
            .chain(replay.iter())
            .filter(|(p, _)| (p.key.clone(), p.nonce) == *pair)
            .map(|(_, r)| format!("{:?} {}", r.status, r.body))
            .collect();
        eprintln!(
            "accepted twice: {pair:?} delivered {:?} times; answers: {all:?}",
            upstream.deliveries().get(pair)
        );
    }
    let labels = [
        ("store", ha.name().to_owned()),
        ("scale", scale.name().to_owned()),
        ("seed", seed.to_string()),
        (
            "guard",
            if redis {
                format!("nonce_replicas_ack={replicas_ack}")
            } else {
                "require_sync_standby=true".to_owned()
            },
        ),
        ("kill_after", moment.to_string()),
        ("promoted_ms", promoted.as_millis().to_string()),
        ("recover_ms", recover_ms.to_string()),
        ("replayed_too_old", too_old.to_string()),
    ];
    if strict {
        tally.report("failover", &labels, twice.len());
    } else {
        println!(
            "{} (reported only)",
            tally.summary("failover", &labels, twice.len())
        );
    }
    drop(ha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_failover_under_load_accepts_nothing_twice() {
    drill(true, 1, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_failover_without_replica_acks_is_reported() {
    drill(true, 0, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sync_standby_failover_under_load_accepts_nothing_twice() {
    drill(false, 0, true).await;
}
