//! PostgreSQL's hooks, and what the PostgreSQL stores share: one set of migrations
//! (`migrations/postgres/`, applied by whichever store connects first, under sqlx's advisory
//! lock), the connection pool, the order-preserving u64 mapping and error mapping.
//!
//! Every change to the key store (a key or partner created, changed, deleted or replaced)
//! sends `NOTIFY wbauth_changes, 'key:<id>'` (or `'partner:<id>'`) in the transaction that
//! makes it, so it is announced exactly when it commits. [`KeyStore::changes`] listens on a
//! connection of its own and hands the announcements to the instance's cache; after a lost
//! connection it sends [`Change::Resync`] (announcements may have been missed), and the
//! gateway also reloads everything periodically as a safety net. "Last used" times arrive
//! batched (one write per key per flush interval) and are not announced: instances pick them
//! up with the periodic reload.
//!
//! [`KeyStore::changes`]: crate::KeyStore::changes

use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Pool, Postgres, Transaction};

use super::SqlKeyStore;
use super::dialect::{Dialect, Subject};
use crate::remote::PERCENT_ENCODE;
use crate::{Change, ChangeFeed, MASTER_KEY_ENV, MasterKey, RemoteOptions, StoreError, redact_url};

/// Every PostgreSQL table of the gateway: key store, nonce store and token claims. Every
/// store runs the same migrator, so they may share one database or use several.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel every change is announced on.
const CHANGES_CHANNEL: &str = "wbauth_changes";

/// How many announcements may wait for the cache before the listener waits in turn.
const FEED_CAPACITY: usize = 4096;

/// The longest pause between attempts to listen again after a failure.
const MAX_RETRY: Duration = Duration::from_secs(2);

impl Dialect for Postgres {
    const LOCK_ROW: &'static str = " FOR UPDATE";

    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, sqlx::Error> {
        pool.begin().await
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn db_error(context: &str, e: sqlx::Error) -> StoreError {
        db_error(context, e)
    }

    fn names_partner(e: &dyn DatabaseError) -> bool {
        e.constraint().is_some_and(|c| c.contains("name"))
    }

    async fn announce(conn: &mut sqlx::PgConnection, subject: Subject) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(payload(subject))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// One statement for the whole batch.
    async fn touch_keys(
        pool: &Pool<Self>,
        ids: Vec<i64>,
        times: Vec<i64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE api_keys AS k SET last_used_ms = u.at_ms \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS u (id, at_ms) \
             WHERE k.id = u.id AND (k.last_used_ms IS NULL OR k.last_used_ms < u.at_ms)",
        )
        .bind(ids)
        .bind(times)
        .execute(pool)
        .await
        .map(|_| ())
    }

    fn changes(pool: &Pool<Self>, shown: &str) -> Option<ChangeFeed> {
        let (tx, rx) = tokio::sync::mpsc::channel(FEED_CAPACITY);
        tokio::spawn(listen(pool.clone(), shown.to_owned(), tx));
        Some(rx)
    }

    fn wrong_master_key(shown: &str, _: &str) -> String {
        format!(
            "the master key does not match the key store at {shown} (its key-check value does \
             not decrypt); every instance must start with the same {MASTER_KEY_ENV}"
        )
    }
}

impl SqlKeyStore<Postgres> {
    /// Connects, brings the schema up to date and checks `master` against the key-check value
    /// (written by the first instance ever to connect). Every instance must share `master`
    /// (from `WBAUTH_MASTER_KEY`).
    ///
    /// # Errors
    /// [`StoreError::WrongMasterKey`] when `master` is not the key the store was created with;
    /// [`StoreError::Unavailable`] when the server cannot be reached; [`StoreError::Corrupt`]
    /// when the schema cannot be migrated.
    pub async fn connect(
        url: &str,
        master: MasterKey,
        options: &RemoteOptions,
    ) -> Result<Self, StoreError> {
        let pool = connect_pool(url, options).await?;
        Self::checked(pool, master, redact_url(url), Some(options.op_timeout)).await
    }
}

/// Connects a pool to `url` with the configured size and timeouts (connections that land on a
/// read-only standby are dropped, `postgres/primary.rs`; TLS as the URL's `sslmode` and
/// `sslrootcert` say, `postgres/tls.rs`), checks the synchronous standby when
/// [`RemoteOptions::require_sync_standby`], and applies the migrations.
///
/// # Errors
/// [`StoreError::Unavailable`] when the server cannot be reached in time (the URL's password is
/// never part of the message; a failed TLS handshake says what is wrong and what to do);
/// [`StoreError::Refused`] for an unknown `sslmode` or a CA file without a certificate, and
/// when a synchronous standby is required and commits do not wait for one;
/// [`StoreError::Io`] when the CA file cannot be read; [`StoreError::Corrupt`] when the schema is newer than this
/// version or the migrations fail.
pub(crate) async fn connect_pool(url: &str, options: &RemoteOptions) -> Result<PgPool, StoreError> {
    let shown = redact_url(url);
    let tls = tls::PgTls::read(url, &shown)?;
    let connect_options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
        StoreError::Unavailable(format!(
            "{shown} is not a usable PostgreSQL URL ({PERCENT_ENCODE}): {}",
            strip(&e)
        ))
    })?;
    let connect_options = connect_options.application_name("wbauth");
    primary::check_writable(&connect_options, &shown, options.connect_timeout)
        .await
        .map_err(|e| tls.explain(e))?;
    let pool = PgPoolOptions::new()
        .max_connections(options.pool_size)
        .min_connections(0)
        .acquire_timeout(options.connect_timeout)
        .after_connect(|conn, _| Box::pin(primary::refuse_read_only(conn)))
        .connect_with(connect_options)
        .await
        .map_err(|e| tls.explain(db_error(&format!("cannot connect to {shown}"), e)))?;
    if options.require_sync_standby {
        primary::check_sync_standby(&pool, &shown).await?;
    }
    MIGRATOR.run(&pool).await.map_err(|e| {
        StoreError::Corrupt(format!(
            "cannot migrate the PostgreSQL schema at {shown}: {e}"
        ))
    })?;
    Ok(pool)
}

/// A u64 as an order-preserving signed BIGINT: `(n XOR 2^63) as i64` (`docs/design-decisions.md` 6), so
/// SQL's `<` on the column is `<` on the nonces.
#[must_use]
pub(crate) const fn u64_to_ordered_i64(n: u64) -> i64 {
    i64::from_ne_bytes((n ^ (1 << 63)).to_ne_bytes())
}

/// The inverse of [`u64_to_ordered_i64`].
#[must_use]
pub(crate) const fn ordered_i64_to_u64(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes()) ^ (1 << 63)
}

/// A sqlx error without anything that could carry a URL or a bound value.
fn strip(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid configuration".to_owned(),
        other => other.to_string(),
    }
}

/// Maps a sqlx error. PostgreSQL's messages never contain bound values (secrets travel only as
/// bound parameters), and connection errors name no password.
pub(crate) fn db_error(context: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Conflict(format!("{context}: {}", e.message()))
        }
        sqlx::Error::Database(e) => StoreError::Unavailable(format!("{context}: {}", e.message())),
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }) => StoreError::Corrupt(format!("{context}: {e}")),
        e => StoreError::Unavailable(format!("{context}: {}", strip(&e))),
    }
}

/// An announcement's payload.
fn payload(subject: Subject) -> String {
    match subject {
        Subject::Key(id) => format!("key:{id}"),
        Subject::Partner(id) => format!("partner:{id}"),
        Subject::Everything => "resync".to_owned(),
    }
}

/// Parses an announcement's payload.
fn parse_change(payload: &str) -> Option<Change> {
    if payload == "resync" {
        return Some(Change::Resync);
    }
    let (what, id) = payload.split_once(':')?;
    match what {
        "key" => id.parse().ok().map(Change::Key),
        "partner" => id.parse().ok().map(Change::Partner),
        _ => None,
    }
}

/// Listens for announcements until the feed's receiver is dropped, listening again after any
/// failure and sending [`Change::Resync`] each time listening (re)starts, since announcements
/// made meanwhile are lost.
async fn listen(pool: PgPool, shown: String, tx: tokio::sync::mpsc::Sender<Change>) {
    let mut retry = Duration::from_millis(50);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(target: "wbauth::store", "listening for key changes at {shown}: {}", db_error("connect", e));
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANGES_CHANNEL).await {
            tracing::warn!(target: "wbauth::store", "listening for key changes at {shown}: {}", db_error("LISTEN", e));
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
            continue;
        }
        if tx.send(Change::Resync).await.is_err() {
            return;
        }
        retry = Duration::from_millis(50);
        loop {
            tokio::select! {
                () = tx.closed() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if let Some(change) = parse_change(notification.payload())
                            && tx.send(change).await.is_err()
                        {
                            return;
                        }
                    }
                    // The connection was lost; the next call reconnects and listens again.
                    Ok(None) => {
                        tracing::warn!(target: "wbauth::store", "lost the key-change connection to {shown}; reloading every key");
                        if tx.send(Change::Resync).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "wbauth::store", "key-change listener at {shown}: {}", db_error("receive", e));
                        break;
                    }
                },
            }
        }
        tokio::time::sleep(retry).await;
    }
}

mod primary;
mod tls;

#[cfg(test)]
mod tests;
