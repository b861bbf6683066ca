//! The PostgreSQL nonce store: nonce state shared by every gateway instance through one
//! PostgreSQL database (tables `nonce_high_water` and `nonce_window`, migration
//! `0003_nonces.sql`).
//!
//! # Encoding
//!
//! Nonces are `u64`, stored order-preserving in signed BIGINTs as `(n XOR 2^63) as i64`
//! (`u64_to_ordered_i64`, `docs/design-decisions.md` 6), so SQL's `<` is `<` on the nonces
//! and nothing goes through floating point. Key ids are the key store's positive BIGINT ids,
//! stored as they are; an id above `i64::MAX` cannot come from a key store and is refused
//! with [`StoreError::Corrupt`]. `expires_ms` is a plain Unix time in ms
//! (`nonce + 5000 + margin`, `docs/design-decisions.md` 15), saturated at `i64::MAX`.
//!
//! # Atomicity and answers: group commit
//!
//! Consumes are written in batches (`batch.rs`): the consumes of concurrent requests are
//! gathered, at most `FLUSHERS` batches are written at once (each at most `MAX_BATCH`
//! nonces), and each batch is one autocommitted statement (`BATCH_SQL`) over arrays
//! (`unnest($1::bigint[], $2::bigint[], $3::bigint[]) WITH ORDINALITY`) that answers one row
//! per nonce. A request is answered only after the statement that holds its nonce has
//! committed, so `Ok(Ok(()))` still means committed (durable as the server's
//! `synchronous_commit` makes it). Per nonce, the statement does what the single-nonce
//! statements did:
//!
//! - strict mode: a conditional upsert of the high-water mark
//!   (`… ON CONFLICT (key_id) DO UPDATE … WHERE last_nonce < EXCLUDED.last_nonce`), accepted
//!   iff it changed a row; concurrent duplicates (from other batches or other instances)
//!   serialise on the row lock and all but one change nothing;
//! - window mode: after the time check (`|nonce − now_ms| ≤ 5000`, in Rust with the gateway's
//!   clock), the uniqueness row is inserted (`ON CONFLICT DO NOTHING`) and, only when it was
//!   inserted, the mark is raised in a second data-modifying CTE.
//!
//! **The same key twice in one batch.** One statement cannot decide two nonces of one key
//! one after the other (and `ON CONFLICT DO UPDATE` may not touch a row twice), so a batch is
//! split into rounds: the n-th nonce of a key in the batch goes to round n, and the rounds
//! are written one after the other, each its own statement. Every key is decided exactly as
//! if its nonces had come one at a time in the order they joined the batch: a strict nonce is
//! accepted only above everything accepted before it, a nonce given twice is accepted at
//! most once. Usually every key of a batch is distinct and a batch is one statement.
//!
//! **No deadlocks between batches.** Rows are inserted in key order (window rows in
//! `(key, nonce)` order, all of them before any mark), so two batches (of this instance or
//! another) that share keys take their row locks in the same order.
//!
//! **Failures.** A statement that fails or times out (the operation timeout) answers every
//! nonce of its round, and of the rounds after it, [`StoreError::Unavailable`]: the requests
//! fail closed. A request waits for its answer at most twice the operation timeout (one batch
//! ahead of it, its own); a request that stopped waiting before its batch started is left
//! out of it.
//!
//! [`NonceStore::check`] reads the mark and the uniqueness row and applies the same rules
//! (`whitebit_auth::nonce::decide`) without writing. Every statement is bounded by
//! [`RemoteOptions::op_timeout`]; a failure or timeout is [`StoreError::Unavailable`] (a
//! statement that timed out may still commit: its nonces are then burned, never accepted
//! twice).
//!
//! Expired window rows are deleted by [`NonceStore::sweep`] in batches of
//! `SWEEP_BATCH` rows, at most `SWEEP_MAX_BATCHES` batches per call.
//!
//! # Failover
//!
//! With asynchronous streaming replication a failover can lose the last commits, rolling a
//! high-water mark back. There is no replay window across failovers only with synchronous
//! replication (`synchronous_standby_names`, `docs/design-decisions.md` 36).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgPool;
use whitebit_auth::nonce::window_entry_expires_at;
use whitebit_auth::{ApiError, NonceMode};

use super::batch::{self, Flush, Member, Queue};
use super::{Backend, Metric, Remote, counter_help};
use crate::sql::{connect_pool, ordered_i64_to_u64, pg_error, u64_to_ordered_i64};
use crate::{
    Claim, KeyId, NonceAnswer, RemoteOptions, ReplayGuard, StoreError, StoreFuture, StoreHealth,
    redact_url,
};

/// Rows deleted by one sweep statement.
const SWEEP_BATCH: i64 = 1_000;
/// Sweep statements per [`NonceStore::sweep`] call (the rest waits for the next call).
const SWEEP_MAX_BATCHES: u32 = 20;

/// Batches written at once by one instance.
const FLUSHERS: usize = 2;
/// Nonces in one batch at most.
const MAX_BATCH: usize = 512;

/// One round of a batch (every key at most once): `$1` key ids, `$2` nonces (ordered
/// BIGINTs), `$3` window-mode expiries (`NULL`: strict mode). One row per nonce, in order:
/// `(ordinality, accepted)`.
const BATCH_SQL: &str = "\
WITH input AS (
    SELECT t.key_id, t.nonce, t.expires_ms, t.ord
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
        WITH ORDINALITY AS t(key_id, nonce, expires_ms, ord)
), entry AS (
    INSERT INTO nonce_window (key_id, nonce, expires_ms)
    SELECT key_id, nonce, expires_ms FROM input WHERE expires_ms IS NOT NULL
    ORDER BY key_id, nonce
    ON CONFLICT (key_id, nonce) DO NOTHING
    RETURNING key_id
), mark AS (
    INSERT INTO nonce_high_water (key_id, last_nonce)
    SELECT key_id, nonce FROM (
        SELECT key_id, nonce FROM input WHERE expires_ms IS NULL
        UNION ALL
        SELECT input.key_id, input.nonce FROM input JOIN entry ON entry.key_id = input.key_id
    ) AS raised
    ORDER BY key_id
    ON CONFLICT (key_id) DO UPDATE SET last_nonce = EXCLUDED.last_nonce
    WHERE nonce_high_water.last_nonce < EXCLUDED.last_nonce
    RETURNING key_id
)
SELECT input.ord,
       CASE WHEN input.expires_ms IS NULL THEN mark.key_id IS NOT NULL
            ELSE entry.key_id IS NOT NULL END
FROM input
LEFT JOIN mark ON mark.key_id = input.key_id
LEFT JOIN entry ON entry.key_id = input.key_id
ORDER BY input.ord";

const CHECK_SQL: &str = "\
SELECT (SELECT last_nonce FROM nonce_high_water WHERE key_id = $1),
       EXISTS (SELECT 1 FROM nonce_window WHERE key_id = $1 AND nonce = $2)";

const SWEEP_SQL: &str = "\
DELETE FROM nonce_window WHERE ctid IN (
    SELECT ctid FROM nonce_window WHERE expires_ms <= $1 LIMIT $2
)";

/// A token claim: inserted, or taking over an expired row not yet swept; a row comes back
/// only when this claim is the first live one.
const CLAIM_SQL: &str = "\
INSERT INTO token_claims (id, expires_ms) VALUES ($1, $2) \
ON CONFLICT (id) DO UPDATE SET expires_ms = EXCLUDED.expires_ms \
WHERE token_claims.expires_ms <= $3 \
RETURNING 1::BIGINT";

/// Expired token claims, one batch.
const SWEEP_CLAIMS_SQL: &str = "\
DELETE FROM token_claims WHERE id IN \
(SELECT id FROM token_claims WHERE expires_ms <= $1 LIMIT $2)";

const CLOCK_SQL: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Nonce state shared by every gateway instance through one PostgreSQL database (the key
/// store's, or one of its own); with synchronous replication there is no replay window even
/// across failovers (`docs/design-decisions.md` 36). The statements and their atomicity are
/// described in `crates/store/src/nonce/postgres.rs`.
pub struct PgNonceStore {
    shared: Arc<Shared>,
}

/// The store, shared with the flushers of its batches (tasks of their own).
pub(crate) struct Shared {
    pool: PgPool,
    /// The URL without its password, for messages.
    shown: String,
    remote: Remote,
    /// Expired window-mode rows deleted.
    swept: AtomicU64,
    /// Consumes waiting for their batch.
    queue: Queue<Consume, Result<bool, StoreError>>,
}

/// One nonce to record, as bound: the key id, the nonce as an ordered BIGINT, and the
/// window entry's expiry (`None`: strict mode).
pub(crate) struct Consume {
    key_id: i64,
    nonce: i64,
    expires_ms: Option<i64>,
}

impl std::fmt::Debug for PgNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared
            .remote
            .debug_store("PgNonceStore", &self.shared.shown, f)
    }
}

impl PgNonceStore {
    /// Connects a pool to the PostgreSQL database at `url` and applies the migrations (the
    /// key store's pool and migrations).
    ///
    /// # Errors
    /// As [`PgKeyStore::connect`](crate::PgKeyStore::connect): [`StoreError::Unavailable`]
    /// when the server cannot be reached in time, [`StoreError::Corrupt`] when the schema
    /// cannot be migrated. No message contains the URL's password.
    pub async fn connect(url: &str, options: &RemoteOptions) -> Result<Self, StoreError> {
        let pool = connect_pool(url, options).await?;
        let shown = redact_url(url);
        let flushers = usize::try_from(options.pool_size)
            .unwrap_or(FLUSHERS)
            .clamp(1, FLUSHERS);
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                remote: Remote::new(
                    format!("PostgreSQL nonce store at {shown}"),
                    options.op_timeout,
                    counter_help!("PostgreSQL"),
                ),
                shown,
                swept: AtomicU64::new(0),
                queue: Queue::new(flushers, MAX_BATCH),
            }),
        })
    }
}

impl Shared {
    /// Runs one statement within the operation timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        self.remote.bounded(what, statement, pg_error).await
    }

    fn key_id(&self, key: KeyId) -> Result<i64, StoreError> {
        i64::try_from(key).map_err(|_| {
            self.remote.error(StoreError::Corrupt(format!(
                "key id {key} is out of range for the PostgreSQL nonce store"
            )))
        })
    }

    /// Writes one round of a batch (every key at most once): whether each nonce was
    /// accepted, in order.
    async fn write_round(
        &self,
        round: &[Member<Consume, Result<bool, StoreError>>],
    ) -> Result<Vec<bool>, StoreError> {
        let keys: Vec<i64> = round.iter().map(|m| m.item.key_id).collect();
        let nonces: Vec<i64> = round.iter().map(|m| m.item.nonce).collect();
        let expiries: Vec<Option<i64>> = round.iter().map(|m| m.item.expires_ms).collect();
        let rows: Vec<(i64, bool)> = self
            .bounded(
                "consume",
                sqlx::query_as(BATCH_SQL)
                    .bind(keys)
                    .bind(nonces)
                    .bind(expiries)
                    .fetch_all(&self.pool),
            )
            .await?;
        let in_order = rows.len() == round.len()
            && rows
                .iter()
                .zip(1_i64..)
                .all(|((ord, _), expected)| *ord == expected);
        if !in_order {
            return Err(self.remote.error(StoreError::Corrupt(format!(
                "{}: consume: {} answers for {} nonces",
                self.remote.at(),
                rows.len(),
                round.len()
            ))));
        }
        Ok(rows.into_iter().map(|(_, accepted)| accepted).collect())
    }

    /// Runs the batch-deleting `sql` until it deletes less than a batch, at most
    /// `SWEEP_MAX_BATCHES` times; the rows deleted, also added to `counter` batch by batch.
    async fn sweep_batches(
        &self,
        what: &str,
        sql: &'static str,
        now: i64,
        counter: Option<&AtomicU64>,
    ) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        for _ in 0..SWEEP_MAX_BATCHES {
            let done = self
                .bounded(
                    what,
                    sqlx::query(sql)
                        .bind(now)
                        .bind(SWEEP_BATCH)
                        .execute(&self.pool),
                )
                .await?;
            removed = removed.saturating_add(done.rows_affected());
            if let Some(counter) = counter {
                counter.fetch_add(done.rows_affected(), Ordering::Relaxed);
            }
            if done.rows_affected() < SWEEP_BATCH.unsigned_abs() {
                break;
            }
        }
        Ok(removed)
    }
}

impl Backend for PgNonceStore {
    async fn read(&self, key: KeyId, nonce: u64) -> Result<(Option<u64>, bool), StoreError> {
        let key_id = self.shared.key_id(key)?;
        let (mark, seen): (Option<i64>, bool) = self
            .shared
            .bounded(
                "check",
                sqlx::query_as(CHECK_SQL)
                    .bind(key_id)
                    .bind(u64_to_ordered_i64(nonce))
                    .fetch_one(&self.shared.pool),
            )
            .await?;
        Ok((mark.map(ordered_i64_to_u64), seen))
    }

    async fn record(&self, key: KeyId, nonce: u64, mode: NonceMode, _now_ms: u64) -> NonceAnswer {
        let consume = Consume {
            key_id: self.shared.key_id(key)?,
            nonce: u64_to_ordered_i64(nonce),
            expires_ms: match mode {
                NonceMode::Strict => None,
                NonceMode::Window => {
                    Some(i64::try_from(window_entry_expires_at(nonce)).unwrap_or(i64::MAX))
                }
            },
        };
        let wait = self.shared.remote.op_timeout().saturating_mul(2);
        let accepted = match batch::submit(&self.shared, consume, wait).await {
            Ok(answer) => answer?,
            Err(why) => return Err(self.shared.remote.unanswered(why)),
        };
        Ok(match (accepted, mode) {
            (true, _) => Ok(()),
            (false, NonceMode::Strict) => Err(ApiError::NonceNotIncreasing),
            (false, NonceMode::Window) => Err(ApiError::NonceReused),
        })
    }

    async fn sweep(&self, now_ms: u64) -> Result<u64, StoreError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let rows = self
            .shared
            .sweep_batches("sweep", SWEEP_SQL, now, Some(&self.shared.swept))
            .await?;
        let claims = self
            .shared
            .sweep_batches("sweep (token claims)", SWEEP_CLAIMS_SQL, now, None)
            .await?;
        Ok(rows.saturating_add(claims))
    }

    async fn health(&self) -> Result<StoreHealth, StoreError> {
        let (clock,): (i64,) = self
            .shared
            .bounded(
                "clock",
                sqlx::query_as(CLOCK_SQL).fetch_one(&self.shared.pool),
            )
            .await?;
        let clock_ms = u64::try_from(clock).map_err(|_| {
            StoreError::Corrupt(format!(
                "{}: server clock before 1970 ({clock} ms)",
                self.shared.remote.at()
            ))
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
                "wbauth_nonce_store_swept_total",
                "Expired window-mode rows deleted by the PostgreSQL nonce store.",
                self.shared.swept.load(Ordering::Relaxed),
            ),
            (
                "wbauth_nonce_store_batches_total",
                "Batches of consumes written by the PostgreSQL nonce store (group commit).",
                batches,
            ),
            (
                "wbauth_nonce_store_batched_total",
                "Consumes written in those batches.",
                batched,
            ),
        ]
    }
}

/// A copy of a batch's error for each of its members.
fn each_member(e: &StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl Flush for Shared {
    type Item = Consume;
    type Answer = Result<bool, StoreError>;

    fn queue(&self) -> &Queue<Consume, Result<bool, StoreError>> {
        &self.queue
    }

    /// Splits the batch into rounds (the n-th nonce of a key in round n) and writes them in
    /// order; a round that fails fails itself and every round after it.
    async fn flush(self: Arc<Self>, batch: Vec<Member<Consume, Result<bool, StoreError>>>) {
        let mut rounds: Vec<Vec<Member<Consume, Result<bool, StoreError>>>> = Vec::new();
        let mut seen: HashMap<i64, usize> = HashMap::with_capacity(batch.len());
        for member in batch {
            let n = seen.entry(member.item.key_id).or_insert(0);
            match rounds.get_mut(*n) {
                Some(round) => round.push(member),
                None => rounds.push(vec![member]),
            }
            *n += 1;
        }
        let mut failed: Option<StoreError> = None;
        for round in rounds {
            if failed.is_none() {
                match self.write_round(&round).await {
                    Ok(accepted) => {
                        for (member, accepted) in round.into_iter().zip(accepted) {
                            member.answer(Ok(accepted));
                        }
                        continue;
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = &failed {
                for member in round {
                    member.answer(Err(each_member(e)));
                }
            }
        }
    }
}

impl ReplayGuard for PgNonceStore {
    fn claim(&self, id: [u8; 32], expires_at_ms: u64, now_ms: u64) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let row: Option<(i64,)> = self
                .shared
                .bounded(
                    "token claim",
                    sqlx::query_as(CLAIM_SQL)
                        .bind(id.as_slice())
                        .bind(i64::try_from(expires_at_ms).unwrap_or(i64::MAX))
                        .bind(i64::try_from(now_ms).unwrap_or(i64::MAX))
                        .fetch_optional(&self.shared.pool),
                )
                .await?;
            Ok(Claim::first_use(row.is_some()))
        })
    }
}
