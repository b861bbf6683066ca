//! Store outage drill: two real gateways share a PostgreSQL key store and a Redis or
//! PostgreSQL nonce store, under steady load from several keys. The store is then
//!
//! 1. paused with SIGSTOP (it still accepts connections but answers nothing: only the
//!    gateway's operation timeout can end a request) and resumed with SIGCONT,
//! 2. stopped (`kill -9`) and restarted on the same data.
//!
//! While it is paused or stopped, every request sent answers exactly 503
//! `{"code":0,"message":"Service temporarily unavailable."}` with `Retry-After: 1` (fail
//! closed); afterwards service resumes by itself. Finally one gateway is restarted and every
//! request ever sent is replayed through both: zero accepted twice.
//!
//! Every wait is bounded and ends on a condition (answers seen), never on a sleep.

#![cfg(feature = "test-clock")]

mod common;
mod drill_support;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backends::{Nonces, OwnServers};
use common::gateway::{Gateway, Upstream};
use drill_support::{
    Paused, Prepared, Reply, Scale, Tally, accepted_twice, send, start_instance, wait_for,
    wait_until_known,
};
use wbauth_testkit::RedisServer;

const PATH: &str = "/api/v4/order/new";

/// The phase a request was sent in.
const RUNNING: u32 = 0;
const PAUSED: u32 = 1;
const STOPPED: u32 = 2;
/// Between two phases: answers are not judged.
const SETTLING: u32 = 3;
/// `inflight[GUARD]`: lanes between reading the phase and counting their request in it.
const GUARD: usize = 4;

impl OwnServers {
    fn nonce_port(&self) -> u16 {
        self.redis
            .as_ref()
            .map_or_else(|| self.postgres.port(), RedisServer::port)
    }

    /// `kill -9`. PostgreSQL is frozen first: a postmaster that outlives its backends by a
    /// moment would fork new ones (crash recovery, queued connections) that the kill misses.
    async fn kill(&mut self) {
        match &mut self.redis {
            Some(redis) => redis.kill(),
            None => {
                let frozen = Paused::pause(self.postgres.port()).await;
                self.postgres.kill();
                frozen.forget();
            }
        }
    }

    fn restart(&mut self) {
        match &mut self.redis {
            Some(redis) => redis.restart().expect("redis restarts"),
            None => self.postgres.restart().expect("postgres restarts"),
        }
    }
}

/// Everything the load saw, by phase.
#[derive(Default)]
struct Seen {
    sent: Vec<(Prepared, Reply, u32)>,
}

struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU32>,
    /// 200s and 503s answered to requests sent in the current phase.
    ok: Arc<AtomicU64>,
    busy: Arc<AtomicU64>,
    seen: Arc<Mutex<Seen>>,
    /// Requests in flight, by the phase they were sent in.
    inflight: Arc<[AtomicU64; 5]>,
    lanes: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One lane per key: strict-mode requests one after another (so in nonce order),
    /// alternating between the instances, until stopped.
    fn start(bases: [String; 2], keys: Vec<(String, String)>) -> Self {
        let load = Self {
            stop: Arc::default(),
            phase: Arc::default(),
            ok: Arc::default(),
            busy: Arc::default(),
            seen: Arc::default(),
            inflight: Arc::default(),
            lanes: Vec::new(),
        };
        let mut lanes = Vec::new();
        for (key, secret) in keys {
            let (stop, phase, ok, busy, seen, inflight, bases) = (
                load.stop.clone(),
                load.phase.clone(),
                load.ok.clone(),
                load.busy.clone(),
                load.seen.clone(),
                load.inflight.clone(),
                bases.clone(),
            );
            lanes.push(tokio::spawn(async move {
                let mut i = 0usize;
                // A lane stops only after an accepted request: a request refused with 503
                // (never recorded) and followed by nothing accepted may rightly be accepted
                // once when replayed, which the replay check below must not see. Bounded: a
                // store that never recovers fails the check instead of hanging the drill.
                let mut last_accepted = false;
                let mut after_stop = 0u32;
                while !(stop.load(Ordering::SeqCst) && last_accepted) && after_stop < 1_000 {
                    if stop.load(Ordering::SeqCst) {
                        after_stop += 1;
                    }
                    let request = Prepared::new(&key, &secret, PATH, Gateway::nonce(), false);
                    inflight[GUARD].fetch_add(1, Ordering::SeqCst);
                    let at = phase.load(Ordering::SeqCst);
                    inflight[at as usize].fetch_add(1, Ordering::SeqCst);
                    inflight[GUARD].fetch_sub(1, Ordering::SeqCst);
                    let reply = send(&bases[i % 2], &request).await;
                    inflight[at as usize].fetch_sub(1, Ordering::SeqCst);
                    i += 1;
                    last_accepted = reply.accepted();
                    if phase.load(Ordering::SeqCst) == at {
                        if reply.accepted() {
                            ok.fetch_add(1, Ordering::SeqCst);
                        } else if reply.status == Some(503) {
                            busy.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    seen.lock().expect("lock").sent.push((request, reply, at));
                }
            }));
        }
        Self { lanes, ..load }
    }

    /// Enters a new phase: the counters start from zero for requests sent from now on.
    fn enter(&self, phase: u32) {
        self.phase.store(phase, Ordering::SeqCst);
        self.ok.store(0, Ordering::SeqCst);
        self.busy.store(0, Ordering::SeqCst);
    }

    /// Leaves a phase: waits (bounded) until every request sent in it was answered, so none
    /// of them can see what comes next.
    async fn settle(&self, left: u32) {
        self.enter(SETTLING);
        let inflight = self.inflight.clone();
        wait_for(
            "requests of the phase answered",
            Duration::from_secs(90),
            move || {
                // The guard first: once it reads 0, every lane that saw the old phase has
                // counted its request in it.
                inflight[GUARD].load(Ordering::SeqCst) == 0
                    && inflight[left as usize].load(Ordering::SeqCst) == 0
            },
        )
        .await;
    }

    /// Waits (bounded) until requests sent in this phase got `n` answers 200 (or 503).
    async fn wait(&self, what: &str, counter: &Arc<AtomicU64>, n: u64) {
        let counter = counter.clone();
        wait_for(what, Duration::from_secs(90), move || {
            counter.load(Ordering::SeqCst) >= n
        })
        .await;
    }

    async fn finish(self) -> Vec<(Prepared, Reply, u32)> {
        self.stop.store(true, Ordering::SeqCst);
        for lane in self.lanes {
            lane.await.expect("lane");
        }
        std::mem::take(&mut self.seen.lock().expect("lock").sent)
    }
}

/// One drill at a time: each runs its own servers and two gateways on a shared machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn drill(nonces: Nonces) {
    let _serial = SERIAL.lock().await;
    let scale = Scale::from_env();
    let (lanes, cycles, wanted) = scale.pick((3, 1, 5), (8, 5, 50));
    let upstream = Upstream::start().await;
    let (mut servers, stores) = OwnServers::start(nonces);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start_instance(&dir.path().join("a"), &upstream, &stores.env(), 250, "a");
    let b = start_instance(&dir.path().join("b"), &upstream, &stores.env(), 250, "b");
    let mut keys = Vec::new();
    for i in 0..lanes {
        keys.push(a.provision_key(&format!("load{i}"), "trade", &[]).await);
    }
    // B learns every key from the store's announcements.
    for (key, secret) in &keys {
        wait_until_known(&b.base, key, secret, PATH).await;
    }
    let bases = [a.base.clone(), b.base.clone()];
    let load = Load::start(bases, keys);
    load.wait("load running", &load.ok, wanted).await;

    let mut stopped_processes = 0;
    for cycle in 0..cycles {
        // 1. SIGSTOP: requests hang in the store until the operation timeout: 503.
        let paused = Paused::pause(servers.nonce_port()).await;
        stopped_processes = paused.processes();
        load.enter(PAUSED);
        load.wait(&format!("503s while paused ({cycle})"), &load.busy, wanted)
            .await;
        load.settle(PAUSED).await;
        paused.resume();
        load.enter(RUNNING);
        load.wait(&format!("200s after SIGCONT ({cycle})"), &load.ok, wanted)
            .await;

        // 2. kill -9 and restart on the same data.
        servers.kill().await;
        load.enter(STOPPED);
        load.wait(&format!("503s while stopped ({cycle})"), &load.busy, wanted)
            .await;
        load.settle(STOPPED).await;
        servers.restart();
        load.enter(RUNNING);
        load.wait(
            &format!("200s after the restart ({cycle})"),
            &load.ok,
            wanted,
        )
        .await;
    }
    let first = load.finish().await;

    let mut tally = Tally::default();
    let mut by_phase = [0u64; 4];
    for (_, reply, phase) in &first {
        tally.add(reply);
        if *phase == PAUSED || *phase == STOPPED {
            // Sent while the store was paused or down: nothing but the fail-closed 503.
            assert!(reply.is_busy(), "phase {phase}: {reply:?}");
        }
        by_phase[*phase as usize] += 1;
    }
    assert!(by_phase[PAUSED as usize] > 0 && by_phase[STOPPED as usize] > 0);

    // A restarted instance keeps every guarantee: replay everything through both.
    drop(a);
    let a = start_instance(&dir.path().join("a2"), &upstream, &stores.env(), 250, "a2");
    let mut replay = Vec::new();
    for (i, (request, first_reply, phase)) in first.iter().enumerate() {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let reply = send(base, request).await;
        tally.add(&reply);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (Some(429), drill_support::NONCE_REFUSED),
            "replay of {} (first answered {first_reply:?} in phase {phase})",
            request.body
        );
        replay.push((request.clone(), reply));
    }
    let first: Vec<(Prepared, Reply)> = first.into_iter().map(|(p, r, _)| (p, r)).collect();
    let twice = accepted_twice(&upstream, &first, &replay);
    tally.report(
        "outage",
        &[
            (
                "store",
                match nonces {
                    Nonces::Redis => "redis",
                    Nonces::Postgres => "postgres",
                }
                .to_owned(),
            ),
            ("scale", scale.name().to_owned()),
            ("cycles", cycles.to_string()),
            ("paused_processes", stopped_processes.to_string()),
            ("sent_paused", by_phase[PAUSED as usize].to_string()),
            ("sent_stopped", by_phase[STOPPED as usize].to_string()),
        ],
        twice.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_and_killed_under_load_fails_closed_and_recovers() {
    drill(Nonces::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_paused_and_killed_under_load_fails_closed_and_recovers() {
    drill(Nonces::Postgres).await;
}
