//! What really differs between SQLite and PostgreSQL for the key store; everything else is
//! one implementation.

use std::future::Future;

use sqlx::error::DatabaseError;
use sqlx::{Database, IntoArguments, Pool, Transaction};

use crate::{ChangeFeed, StoreError};

/// What a change announces to the other instances sharing the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Subject {
    Key(i64),
    Partner(i64),
    /// Many changes at once: every instance reloads everything.
    Everything,
}

/// The hooks of one database.
pub(super) trait Dialect: Database<Arguments: IntoArguments<Self>> {
    /// Appended to the `SELECT` that reads a row before changing it in the same transaction:
    /// PostgreSQL locks the row (`FOR UPDATE`); SQLite's transaction holds the write lock
    /// already ([`Dialect::begin_write`]).
    const LOCK_ROW: &'static str;

    /// Starts a transaction that will write: SQLite takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a reading transaction never fails to upgrade.
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// Maps an sqlx error; no message contains a bound value or a password.
    fn db_error(context: &str, e: sqlx::Error) -> StoreError;

    /// Whether a unique violation on `partners` is about the name (else the Auth Key).
    fn names_partner(e: &dyn DatabaseError) -> bool;

    /// Announces `subject` to the other instances when `conn`'s transaction commits
    /// (PostgreSQL `NOTIFY`; nothing for SQLite, which has no other instances).
    fn announce(
        conn: &mut Self::Connection,
        subject: Subject,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Sets `last_used_ms` of the keys `ids` to `times`, a time never moving backwards.
    fn touch_keys(
        pool: &Pool<Self>,
        ids: Vec<i64>,
        times: Vec<i64>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The feed of changes made by other instances, when there can be any.
    fn changes(pool: &Pool<Self>, shown: &str) -> Option<ChangeFeed>;

    /// The message for a master key that does not decrypt the key-check value.
    fn wrong_master_key(shown: &str, origin: &str) -> String;
}
