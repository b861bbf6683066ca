//! The Redis nonce store: nonce state shared by every gateway instance through one Redis.
//!
//! # Data
//!
//! All keys of one API key share the hash tag `{k<id>}`, so they live in one slot. (A batch's
//! script call, `redis_consume.rs`, touches the keys of several API keys: the store talks to
//! one Redis server, or the master of a Sentinel group, not to Redis Cluster.)
//!
//! - `wbauth:{k<id>}:hw` — the key's high-water mark (the largest nonce it ever had accepted,
//!   in either mode), as **exactly 16 lowercase hexadecimal digits** (`format!("{:016x}")`).
//!   It never expires.
//! - `wbauth:{k<id>}:w:<nonce in decimal>` — a window-mode uniqueness entry, value `1`, set
//!   with `PXAT nonce + 5000 + margin` (an absolute expiry, `docs/design-decisions.md` 15), so entries
//!   expire by themselves ([`NonceStore::sweep`] does nothing).
//!
//! # No floating point
//!
//! Lua numbers are doubles, exact only up to 2^53: a nonce never becomes a Lua number. Nonces
//! travel to the script as 16-hex-digit strings and the mark is stored in the same form; two
//! such strings of equal length compare like the numbers they encode, and the script compares
//! them byte by byte with `string.byte` (small integers, exact) rather than with Lua's `<` on
//! strings, which follows the server's collation locale. A stored mark that is not 16 lowercase
//! hex digits is reported as [`StoreError::Corrupt`], never guessed at. The window entry's
//! expiry is computed in Rust and passed as a decimal string that only Redis parses (as a
//! 64-bit integer).
//!
//! # Atomicity and answers: batches
//!
//! [`NonceStore::consume`] goes through a batch (`batch.rs`, `redis_consume.rs`): the nonces
//! of concurrent requests are decided by one Lua script call (`EVALSHA`, falling back to
//! `EVAL` when the server does not have it cached), which takes them one after the other in
//! the order they joined the batch — exactly what separate calls would do, since a script
//! runs atomically — and answers a code per nonce. Per nonce, strict mode is a
//! compare-and-set of the mark; window mode is `SET entry 1 NX PXAT …` and, when the entry
//! was set, a raise of the mark. The window time check (`|nonce − now_ms| ≤ 5000`) is done in
//! Rust with the gateway's clock before the store is asked. Each request is answered only
//! once the call holding its nonce has returned; a call that fails or times out answers
//! every nonce in it [`StoreError::Unavailable`]. [`NonceStore::check`] reads the mark and
//! the entry and applies the same rules (`whitebit_auth::nonce::decide`) without writing.
//!
//! The multiplexed connection already pipelines the commands of concurrent requests (one
//! writer task per connection writes them as they come and matches the replies in order),
//! and Redis with `appendfsync always` fsyncs once per event-loop turn for all commands read
//! in it; the batch saves what is still paid per command: a script run, a command parsed and
//! answered, and a message to and a wake-up from the connection's task (which lives on the
//! runtime that connected, not the request's). One script call touches the keys of several
//! API keys, so a batch is not limited to one hash slot.
//!
//! Every operation is bounded by [`RemoteOptions::op_timeout`]; a failure or a timeout is
//! [`StoreError::Unavailable`] (the request fails closed). An operation that timed out may
//! still have been applied by the server: the nonce is then burned, never accepted twice.
//! The connection (a multiplexed [`ConnectionManager`]) reconnects by itself.
//!
//! # Durability (`docs/design-decisions.md` 19)
//!
//! `Ok(Ok(()))` means Redis executed the script. Only with `appendonly yes` and
//! `appendfsync always` is that write in the append-only file, fsynced, before the answer;
//! without persistence a restarted Redis forgets every high-water mark and every accepted
//! nonce can be replayed. [`RedisNonceStore::connect`] therefore checks both settings with
//! `CONFIG GET` and refuses to start otherwise ([`StoreError::Refused`]) unless
//! `store.redis_allow_non_durable = true` ([`RemoteOptions::allow_non_durable`]). Redis must
//! also never evict these keys: run it with `maxmemory-policy noeviction` (not checked here).
//! `PXAT` needs Redis 6.2 or later.
//!
//! # Failover
//!
//! Redis replication is asynchronous: a failover to a replica can lose the last writes
//! acknowledged by the old primary, rolling a strict-mode high-water mark back (and
//! forgetting window entries), so a nonce accepted just before the failover could be
//! accepted again after it. With [`RemoteOptions::nonce_replicas_ack`] = N > 0 every write
//! (a batch's script call, a token claim) is followed, in the same pipeline on the same
//! connection, by `WAIT N <op timeout>`: the nonces count as recorded only once N replicas
//! hold them, and otherwise their requests fail closed (503). [`RedisNonceStore::connect`] refuses N above the replicas the master
//! reports. A `redis+sentinel://` URL (`redis_link.rs`) makes the store follow the master
//! of a Sentinel group across failovers, without a restart.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, RedisResult, Script};
use whitebit_auth::{ApiError, NonceMode};

use super::batch::{self, Queue};
use super::redis_consume::{
    ACCEPTED, Consume, MARK_UNREADABLE, NOT_INCREASING, REUSED, decode_mark, entry_key, mark_key,
};
use super::redis_link::{self, Link, SENTINEL_SCHEME};
use super::redis_tls;
use super::{Backend, Metric, Remote, counter_help};
use crate::remote::url_secrets;
use crate::{
    Claim, KeyId, NonceAnswer, RemoteOptions, ReplayGuard, StoreError, StoreFuture, StoreHealth,
    redact_url,
};

/// The override named in every durability refusal.
const OVERRIDE: &str = "store.redis_allow_non_durable = true";

/// Nonce state shared by every gateway instance through one Redis, which must run with
/// `appendonly yes` and `appendfsync always` (checked by [`RedisNonceStore::connect`],
/// `docs/design-decisions.md` 19). The data layout, the script and the failover caveat are
/// described in `crates/store/src/nonce/redis.rs`.
pub struct RedisNonceStore {
    shared: Arc<Shared>,
}

/// The store, shared with the flushers of its batches (tasks of their own).
pub(crate) struct Shared {
    link: Link,
    pub(crate) script: Script,
    /// Replicas that must hold a recorded nonce before it counts (`WAIT`); 0: none.
    pub(crate) replicas_ack: u32,
    /// The URL without its password, for messages.
    shown: String,
    /// The URL's secrets (`url_secrets`), scrubbed from any message that might echo
    /// them.
    secrets: Vec<String>,
    pub(crate) remote: Remote,
    /// Consumes waiting for their batch.
    pub(crate) queue: Queue<Consume, Result<i64, StoreError>>,
}

impl std::fmt::Debug for RedisNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared
            .remote
            .debug_store("RedisNonceStore", &self.shared.shown, f)
    }
}

impl RedisNonceStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/[db]`, over TLS
    /// `rediss://…` with [`RemoteOptions::redis_ca`] or the system's roots, or the
    /// master of a Sentinel group:
    /// `redis+sentinel://[user:password@]host:port[,host:port…]/<master group>[/<db>]`),
    /// checks that it is durable (`appendonly yes`, `appendfsync always`) unless
    /// [`RemoteOptions::allow_non_durable`], and that it has at least
    /// [`RemoteOptions::nonce_replicas_ack`] replicas.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached within
    /// [`RemoteOptions::connect_timeout`] (a failed TLS handshake says what is wrong and what
    /// to do); [`StoreError::Refused`] when it is not durable, does not let its configuration
    /// be read, or has fewer replicas than asked for, or when `redis_ca` is set for a URL
    /// that is not `rediss://`; [`StoreError::Io`] when the CA file cannot be read. No
    /// message contains the URL's password.
    pub async fn connect(url: &str, options: &RemoteOptions) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let ca = redis_tls::ca_for(url, &shown, options)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.op_timeout))
            .set_number_of_retries(4)
            .set_max_delay(Duration::from_secs(1));
        // A write followed by WAIT holds its connection until the replicas answer: one per
        // request in flight, up to the pool size; otherwise one multiplexed connection.
        let connections = if options.nonce_replicas_ack > 0 {
            usize::try_from(options.pool_size).unwrap_or(1).max(1)
        } else {
            1
        };
        let link = if url.starts_with(SENTINEL_SCHEME) {
            // One attempt per lookup: after a failure the Sentinels are asked again.
            let config = config.set_number_of_retries(0);
            redis_link::open_sentinel(url, &shown, options, config, connections).await?
        } else {
            redis_tls::open_fixed(url, &shown, ca, options, &config, connections).await?
        };
        let store = Shared {
            link,
            script: super::redis_consume::script(),
            replicas_ack: options.nonce_replicas_ack,
            remote: Remote::new(
                format!("Redis at {shown}"),
                options.op_timeout,
                counter_help!("Redis"),
            ),
            shown,
            secrets: url_secrets(url),
            queue: super::redis_consume::queue(),
        };
        if let Some(master) = store.link.master() {
            tracing::info!(
                target: "wbauth::store",
                redis = %store.shown,
                %master,
                "the Redis nonce store follows a Sentinel group"
            );
        }
        if options.allow_non_durable {
            tracing::warn!(
                target: "wbauth::store",
                redis = %store.shown,
                "the Redis nonce store's durability is not checked ({OVERRIDE}): a Redis \
                 without appendonly yes and appendfsync always forgets accepted nonces when \
                 it restarts, and they can be replayed"
            );
        } else {
            store.check_durability().await?;
        }
        if store.replicas_ack > 0 {
            store.check_replicas().await?;
        }
        Ok(Self {
            shared: Arc::new(store),
        })
    }
}

impl Shared {
    /// The master reports (`INFO replication`, `connected_slaves`) at least as many replicas
    /// as [`RemoteOptions::nonce_replicas_ack`] asks for.
    async fn check_replicas(&self) -> Result<(), StoreError> {
        let info: String = self
            .run("INFO replication", |mut con| async move {
                ::redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut con)
                    .await
            })
            .await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
                .map(str::to_owned)
        };
        let role = field("role").unwrap_or_else(|| "(not reported)".into());
        let replicas = field("connected_slaves").and_then(|n| n.parse::<u32>().ok());
        match replicas {
            Some(n) if role == "master" && n >= self.replicas_ack => Ok(()),
            _ => Err(StoreError::Refused(format!(
                "store.nonce_replicas_ack = {wanted}, but Redis at {at} reports role {role} with \
                 {have} connected replicas: every accepted nonce would wait for replicas that \
                 are not there and every request would answer 503. Attach at least {wanted} \
                 replicas to the master (replicaof), or lower store.nonce_replicas_ack to the \
                 replicas it has (0 turns the wait off and accepts that a failover may lose the \
                 last nonces)",
                wanted = self.replicas_ack,
                at = self.shown,
                have = replicas.map_or_else(|| "(not reported)".into(), |n| n.to_string()),
            ))),
        }
    }

    /// `appendonly yes` and `appendfsync always`, read with `CONFIG GET`.
    async fn check_durability(&self) -> Result<(), StoreError> {
        let answer = tokio::time::timeout(self.remote.op_timeout(), async {
            let mut con = self.link.connection().await?.con;
            let appendonly: HashMap<String, String> = ::redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendonly")
                .query_async(&mut con)
                .await?;
            let appendfsync: HashMap<String, String> = ::redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendfsync")
                .query_async(&mut con)
                .await?;
            RedisResult::Ok((
                appendonly.get("appendonly").cloned(),
                appendfsync.get("appendfsync").cloned(),
            ))
        })
        .await;
        let (appendonly, appendfsync) = match answer {
            Ok(Ok(settings)) => settings,
            Ok(Err(e)) if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) => {
                return Err(StoreError::Refused(self.scrub(format!(
                    "Redis at {} does not permit CONFIG GET ({e}), so the gateway cannot check \
                     that it runs with appendonly yes and appendfsync always (docs/design-decisions.md 19). \
                     If it does (or you accept that a Redis restart may let accepted nonces be \
                     replayed), set {OVERRIDE}",
                    self.shown
                ))));
            }
            Ok(Err(e)) => {
                let context = format!("{}: CONFIG GET", self.remote.at());
                return Err(self.remote.error(self.unavailable(&context, &e)));
            }
            Err(_) => return Err(self.remote.timed_out("CONFIG GET")),
        };
        let shown_setting =
            |value: &Option<String>| value.clone().unwrap_or_else(|| "(not reported)".into());
        let durable = appendonly
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
            && appendfsync
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case("always"));
        if durable {
            Ok(())
        } else {
            Err(StoreError::Refused(format!(
                "Redis at {} runs with appendonly {} and appendfsync {}: the nonce store needs \
                 appendonly yes and appendfsync always, or a Redis restart forgets accepted \
                 nonces and they can be replayed (docs/design-decisions.md 19). Fix the Redis \
                 configuration, or set {OVERRIDE} to accept that risk",
                self.shown,
                shown_setting(&appendonly),
                shown_setting(&appendfsync),
            )))
        }
    }

    fn scrub(&self, text: String) -> String {
        self.secrets
            .iter()
            .fold(text, |text, secret| text.replace(secret.as_str(), "***"))
    }

    /// A Redis error as a store failure, without the URL's secrets.
    fn unavailable(&self, context: &str, e: &RedisError) -> StoreError {
        StoreError::Unavailable(self.scrub(format!("{context}: {e}")))
    }

    /// Runs one operation on the connection to the master within the operation timeout. A
    /// failure or timeout makes a Sentinel-followed store ask the Sentinels again next time.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, operation: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        const NONE: u64 = u64::MAX;
        let used = AtomicU64::new(NONE);
        let result = self
            .remote
            .bounded(
                what,
                async {
                    let lease = self.link.connection().await?;
                    used.store(lease.generation(), Ordering::Relaxed);
                    operation(lease.con).await
                },
                |context, e| self.unavailable(context, &e),
            )
            .await;
        let generation = used.load(Ordering::Relaxed);
        if result.is_err() && generation != NONE {
            self.link.failed(generation);
        }
        result
    }

    /// After a write accepted on the master, `WAIT`'s answer: the replicas that hold it.
    /// Fewer than [`RemoteOptions::nonce_replicas_ack`] fails closed.
    pub(crate) fn replicated(&self, what: &str, acked: i64) -> Result<(), StoreError> {
        if acked >= i64::from(self.replicas_ack) {
            return Ok(());
        }
        Err(self.remote.error(StoreError::Unavailable(format!(
            "{}: {what}: written on the master but only {acked} of the {} replicas asked for \
             (store.nonce_replicas_ack) acknowledged it within {:?}; failing closed, since a \
             failover could lose it",
            self.remote.at(),
            self.replicas_ack,
            self.remote.op_timeout()
        ))))
    }

    /// `WAIT`'s timeout: the operation timeout in ms (at least 1; 0 would wait forever).
    pub(crate) fn wait_timeout_ms(&self) -> u64 {
        u64::try_from(self.remote.op_timeout().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn corrupt_mark(&self, key: KeyId) -> StoreError {
        self.remote.error(StoreError::Corrupt(format!(
            "{}: the high-water mark {} is not 16 lowercase hex digits",
            self.remote.at(),
            mark_key(key)
        )))
    }
}

impl Backend for RedisNonceStore {
    async fn read(&self, key: KeyId, nonce: u64) -> Result<(Option<u64>, bool), StoreError> {
        let (mark, seen): (Option<String>, bool) = self
            .shared
            .run("check", |mut con| async move {
                ::redis::pipe()
                    .cmd("GET")
                    .arg(mark_key(key))
                    .cmd("EXISTS")
                    .arg(entry_key(key, nonce))
                    .query_async(&mut con)
                    .await
            })
            .await?;
        let mark = match mark {
            Some(text) => Some(decode_mark(&text).ok_or_else(|| self.shared.corrupt_mark(key))?),
            None => None,
        };
        Ok((mark, seen))
    }

    async fn record(&self, key: KeyId, nonce: u64, mode: NonceMode, _now_ms: u64) -> NonceAnswer {
        let wait = self.shared.remote.op_timeout().saturating_mul(2);
        let code = match batch::submit(&self.shared, Consume::new(key, nonce, mode), wait).await {
            Ok(code) => code?,
            Err(why) => return Err(self.shared.remote.unanswered(why)),
        };
        match code {
            ACCEPTED => Ok(Ok(())),
            NOT_INCREASING => Ok(Err(ApiError::NonceNotIncreasing)),
            REUSED => Ok(Err(ApiError::NonceReused)),
            MARK_UNREADABLE => Err(self.shared.corrupt_mark(key)),
            other => Err(self.shared.remote.error(StoreError::Corrupt(format!(
                "{}: the nonce script answered {other}",
                self.shared.remote.at()
            )))),
        }
    }

    async fn health(&self) -> Result<StoreHealth, StoreError> {
        let (_pong, (seconds, micros)): (String, (u64, u64)) = self
            .shared
            .run("PING and TIME", |mut con| async move {
                ::redis::pipe()
                    .cmd("PING")
                    .cmd("TIME")
                    .query_async(&mut con)
                    .await
            })
            .await?;
        let clock_ms = seconds
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(micros / 1000))
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{}: TIME out of range", self.shared.remote.at()))
            })?;
        Ok(StoreHealth {
            clock_ms: Some(clock_ms),
        })
    }

    fn remote(&self) -> Option<&Remote> {
        Some(&self.shared.remote)
    }

    fn metrics(&self) -> Vec<Metric> {
        let (batches, batched) = self.shared.queue.counts();
        vec![
            (
                "wbauth_nonce_store_batches_total",
                "Batches of consumes sent by the Redis nonce store (one script call each).",
                batches,
            ),
            (
                "wbauth_nonce_store_batched_total",
                "Consumes sent in those batches.",
                batched,
            ),
        ]
    }
}

fn token_key(id: &[u8; 32]) -> String {
    format!("wbauth:tok:{}", whitebit_auth::encoding::hex_encode(id))
}

impl ReplayGuard for RedisNonceStore {
    /// `SET wbauth:tok:<id> 1 NX PXAT <expiry>`: set means first use (followed by `WAIT`
    /// with [`RemoteOptions::nonce_replicas_ack`], as nonces are).
    fn claim(&self, id: [u8; 32], expires_at_ms: u64, _now_ms: u64) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let set_claim = || {
                let mut set = ::redis::cmd("SET");
                set.arg(token_key(&id))
                    .arg("1")
                    .arg("NX")
                    .arg("PXAT")
                    .arg(expires_at_ms.to_string());
                set
            };
            let set: Option<String> = if self.shared.replicas_ack == 0 {
                self.shared
                    .run("token claim", |mut con| async move {
                        set_claim().query_async(&mut con).await
                    })
                    .await?
            } else {
                let (timeout, wanted) = (self.shared.wait_timeout_ms(), self.shared.replicas_ack);
                let (set, acked): (Option<String>, i64) = self
                    .shared
                    .run("token claim and WAIT", |mut con| async move {
                        ::redis::pipe()
                            .add_command(set_claim())
                            .cmd("WAIT")
                            .arg(wanted)
                            .arg(timeout)
                            .query_async(&mut con)
                            .await
                    })
                    .await?;
                if set.is_some() {
                    self.shared.replicated("token claim", acked)?;
                }
                set
            };
            Ok(Claim::first_use(set.is_some()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_found_for_scrubbing() {
        let secrets = url_secrets;
        assert_eq!(secrets("redis://user:s3cret@host:6379/0"), ["s3cret"]);
        assert_eq!(secrets("redis://:s3cret@host"), ["s3cret"]);
        assert!(secrets("redis://host:6379/").is_empty());
        assert!(secrets("redis://user@host/").is_empty());
        // A `/` in the password: the whole user information, and the part after the `:`.
        assert_eq!(
            secrets("redis://:s3cret/x@host/0"),
            [":s3cret/x", "s3cret/x"]
        );
    }
}
