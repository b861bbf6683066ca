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
//! # Atomicity and answers
//!
//! Each accepted nonce is one autocommitted statement, so `Ok(Ok(()))` means it is committed
//! (durable as the server's `synchronous_commit` makes it):
//!
//! - strict mode: a conditional upsert of the high-water mark
//!   (`… ON CONFLICT (key_id) DO UPDATE … WHERE last_nonce < EXCLUDED.last_nonce`), accepted
//!   iff it changed a row; concurrent duplicates serialise on the row lock and all but one
//!   change nothing;
//! - window mode: after the time check (`|nonce − now_ms| ≤ 5000`, in Rust with the gateway's
//!   clock), one statement inserts the uniqueness row (`ON CONFLICT DO NOTHING`) and, only when
//!   it was inserted, raises the mark in a second data-modifying CTE.
//!
//! [`NonceStore::check`] reads the mark and the uniqueness row and applies the same rules
//! (`whitebit_auth::nonce::decide`) without writing. Every statement is bounded by
//! [`RemoteOptions::op_timeout`]; a failure or timeout is [`StoreError::Unavailable`] (a
//! statement that timed out may still commit: the nonce is then burned, never accepted twice).
//!
//! Expired window rows are deleted by [`NonceStore::sweep`] in batches of
//! `SWEEP_BATCH` rows, at most `SWEEP_MAX_BATCHES` batches per call.
//!
//! # Failover
//!
//! With asynchronous streaming replication a failover can lose the last commits, rolling a
//! high-water mark back. There is no replay window across failovers only with synchronous
//! replication (`synchronous_standby_names`, `docs/design-decisions.md` 36).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgPool;
use whitebit_auth::nonce::window_entry_expires_at;
use whitebit_auth::{ApiError, NonceMode};

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

const STRICT_SQL: &str = "\
INSERT INTO nonce_high_water (key_id, last_nonce) VALUES ($1, $2)
ON CONFLICT (key_id) DO UPDATE SET last_nonce = EXCLUDED.last_nonce
WHERE nonce_high_water.last_nonce < EXCLUDED.last_nonce";

const WINDOW_SQL: &str = "\
WITH entry AS (
    INSERT INTO nonce_window (key_id, nonce, expires_ms) VALUES ($1, $2, $3)
    ON CONFLICT (key_id, nonce) DO NOTHING
    RETURNING key_id, nonce
), mark AS (
    INSERT INTO nonce_high_water (key_id, last_nonce)
    SELECT key_id, nonce FROM entry
    ON CONFLICT (key_id) DO UPDATE SET last_nonce = EXCLUDED.last_nonce
    WHERE nonce_high_water.last_nonce < EXCLUDED.last_nonce
)
SELECT count(*) FROM entry";

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
    pool: PgPool,
    /// The URL without its password, for messages.
    shown: String,
    remote: Remote,
    /// Expired window-mode rows deleted.
    swept: AtomicU64,
}

impl std::fmt::Debug for PgNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.remote.debug_store("PgNonceStore", &self.shown, f)
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
        Ok(Self {
            pool,
            remote: Remote::new(
                format!("PostgreSQL nonce store at {shown}"),
                options.op_timeout,
                counter_help!("PostgreSQL"),
            ),
            shown,
            swept: AtomicU64::new(0),
        })
    }

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
        let key_id = self.key_id(key)?;
        let (mark, seen): (Option<i64>, bool) = self
            .bounded(
                "check",
                sqlx::query_as(CHECK_SQL)
                    .bind(key_id)
                    .bind(u64_to_ordered_i64(nonce))
                    .fetch_one(&self.pool),
            )
            .await?;
        Ok((mark.map(ordered_i64_to_u64), seen))
    }

    async fn record(&self, key: KeyId, nonce: u64, mode: NonceMode, _now_ms: u64) -> NonceAnswer {
        let key_id = self.key_id(key)?;
        let accepted = match mode {
            NonceMode::Strict => {
                let done = self
                    .bounded(
                        "consume (strict)",
                        sqlx::query(STRICT_SQL)
                            .bind(key_id)
                            .bind(u64_to_ordered_i64(nonce))
                            .execute(&self.pool),
                    )
                    .await?;
                done.rows_affected() == 1
            }
            NonceMode::Window => {
                let expires_ms = i64::try_from(window_entry_expires_at(nonce)).unwrap_or(i64::MAX);
                let (inserted,): (i64,) = self
                    .bounded(
                        "consume (window)",
                        sqlx::query_as(WINDOW_SQL)
                            .bind(key_id)
                            .bind(u64_to_ordered_i64(nonce))
                            .bind(expires_ms)
                            .fetch_one(&self.pool),
                    )
                    .await?;
                inserted == 1
            }
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
            .sweep_batches("sweep", SWEEP_SQL, now, Some(&self.swept))
            .await?;
        let claims = self
            .sweep_batches("sweep (token claims)", SWEEP_CLAIMS_SQL, now, None)
            .await?;
        Ok(rows.saturating_add(claims))
    }

    async fn health(&self) -> Result<StoreHealth, StoreError> {
        let (clock,): (i64,) = self
            .bounded("clock", sqlx::query_as(CLOCK_SQL).fetch_one(&self.pool))
            .await?;
        let clock_ms = u64::try_from(clock).map_err(|_| {
            StoreError::Corrupt(format!(
                "{}: server clock before 1970 ({clock} ms)",
                self.remote.at()
            ))
        })?;
        Ok(StoreHealth {
            clock_ms: Some(clock_ms),
        })
    }

    fn remote(&self) -> Option<&Remote> {
        Some(&self.remote)
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![(
            "wbauth_nonce_store_swept_total",
            "Expired window-mode rows deleted by the PostgreSQL nonce store.",
            self.swept.load(Ordering::Relaxed),
        )]
    }
}

impl ReplayGuard for PgNonceStore {
    fn claim(&self, id: [u8; 32], expires_at_ms: u64, now_ms: u64) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let row: Option<(i64,)> = self
                .bounded(
                    "token claim",
                    sqlx::query_as(CLAIM_SQL)
                        .bind(id.as_slice())
                        .bind(i64::try_from(expires_at_ms).unwrap_or(i64::MAX))
                        .bind(i64::try_from(now_ms).unwrap_or(i64::MAX))
                        .fetch_optional(&self.pool),
                )
                .await?;
            Ok(Claim::first_use(row.is_some()))
        })
    }
}
