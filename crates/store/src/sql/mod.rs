//! The key store: accounts, API keys, partners, the audit log and the web console's tables in
//! SQL, one implementation for both databases ([`SqlKeyStore`]):
//!
//! - [`SqliteKeyStore`], the embedded default: one SQLite file (WAL, `synchronous=FULL`) in the
//!   data directory, schema in `migrations/sqlite/`;
//! - [`PgKeyStore`], shared by several gateway instances: the same tables and columns in
//!   PostgreSQL (`migrations/postgres/`, a test keeps the two in step), every change announced
//!   to the other instances ([`KeyStore::changes`](crate::KeyStore::changes)).
//!
//! The statements are written once, with `$N` placeholders (which SQLite reads as numbered
//! parameters too); what really differs is in [`dialect`]: how a writing transaction starts
//! (`BEGIN IMMEDIATE` against `SELECT … FOR UPDATE`), change announcements (PostgreSQL
//! `NOTIFY`), error mapping, and the batched "last used" update. PostgreSQL operations are
//! also bounded by the operation timeout.
//!
//! Every secret is encrypted under the [`MasterKey`] (`docs/design-decisions.md` 18); a
//! key-check value in `meta`, written on first open, makes a wrong key a clear start-up error
//! ([`StoreError::WrongMasterKey`]), never garbage secrets.

mod dialect;
mod key_store;
mod postgres;
mod rows;
mod sqlite;
mod writes;

use std::time::Duration;

use sqlx::{Database, Decode, Encode, FromRow, Pool, Type};

use crate::{MasterKey, StoreError};
pub(crate) use postgres::{
    connect_pool, db_error as pg_error, ordered_i64_to_u64, u64_to_ordered_i64,
};

/// The key store over the sqlx database `DB`: [`sqlx::Sqlite`] ([`SqliteKeyStore`]) or
/// [`sqlx::Postgres`] ([`PgKeyStore`]).
pub struct SqlKeyStore<DB: Database> {
    pool: Pool<DB>,
    master: MasterKey,
    /// Where the store is, for messages (a path, or a URL without its password).
    shown: String,
    /// Every operation but the long ones (loading everything, batches) gives up after this
    /// long; `None` for the embedded store.
    op_timeout: Option<Duration>,
}

/// The embedded key store: one SQLite file, opened with [`SqliteKeyStore::open`].
pub type SqliteKeyStore = SqlKeyStore<sqlx::Sqlite>;

/// The shared key store in PostgreSQL, opened with [`PgKeyStore::connect`].
pub type PgKeyStore = SqlKeyStore<sqlx::Postgres>;

impl<DB: Database> std::fmt::Debug for SqlKeyStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlKeyStore")
            .field("database", &DB::NAME)
            .field("at", &self.shown)
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> SqlKeyStore<DB> {
    /// Closes every connection (SQLite checkpoints its WAL). Calls after this fail with
    /// [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `op` within the operation timeout, when the store has one.
    async fn timed<T>(
        &self,
        context: &str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(limit) = self.op_timeout else {
            return op.await;
        };
        match tokio::time::timeout(limit, op).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "{context}: no answer from {} within {limit:?}",
                self.shown
            ))),
        }
    }
}

/// A Rust type the statements bind and read as one column.
trait Value<DB: Database>: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send {}

impl<DB: Database, T> Value<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

/// A row (or a tuple of columns) the statements read.
trait Row<DB: Database>: for<'r> FromRow<'r, DB::Row> + Send + Unpin {}

impl<DB: Database, T> Row<DB> for T where T: for<'r> FromRow<'r, DB::Row> + Send + Unpin {}
