//! SQLite's hooks, and opening the embedded key store.

use std::io;
use std::path::Path;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Pool, Sqlite, Transaction};

use super::SqlKeyStore;
use super::dialect::{Dialect, Subject};
use crate::error::io_error;
use crate::secret_file::{create_new, create_private_dir};
use crate::{ChangeFeed, MasterKey, StoreError};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool (writes are rare; reads at start and from the admin API).
const MAX_CONNECTIONS: u32 = 4;

/// Versioned schema migrations (`crates/store/migrations/sqlite/NNNN_name.sql`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

impl Dialect for Sqlite {
    const LOCK_ROW: &'static str = "";

    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// SQLite's messages and the pool's never contain bound values, so no secret can leak
    /// through them.
    fn db_error(context: &str, e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::Io(e) => io_error(e, context),
            sqlx::Error::Database(e) => {
                StoreError::Unavailable(format!("{context}: {}", e.message()))
            }
            e @ (sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }) => StoreError::Corrupt(format!("{context}: {e}")),
            e => StoreError::Unavailable(format!("{context}: {e}")),
        }
    }

    fn names_partner(e: &dyn DatabaseError) -> bool {
        e.message().contains("partners.name")
    }

    async fn announce(_: &mut sqlx::SqliteConnection, _: Subject) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn touch_keys(
        pool: &Pool<Self>,
        ids: Vec<i64>,
        times: Vec<i64>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = Self::begin_write(pool).await?;
        for (id, at_ms) in ids.into_iter().zip(times) {
            sqlx::query(
                "UPDATE api_keys SET last_used_ms = $1 \
                 WHERE id = $2 AND (last_used_ms IS NULL OR last_used_ms < $1)",
            )
            .bind(at_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    fn changes(_: &Pool<Self>, _: &str) -> Option<ChangeFeed> {
        None
    }

    fn wrong_master_key(_: &str, origin: &str) -> String {
        format!(
            "the master key does not match this data directory (its key-check value does not \
             decrypt); start with the master key the store was created with (master key from \
             {origin})"
        )
    }
}

impl SqlKeyStore<Sqlite> {
    /// Opens (creating when missing, mode 0600, parent directory 0700) the store at `path`,
    /// brings its schema up to date and checks `master` against the stored key-check value
    /// (written on first open).
    ///
    /// # Errors
    /// [`StoreError::WrongMasterKey`] when `master` is not the key this store was created with;
    /// [`StoreError::Corrupt`] when the schema is newer than this version or damaged;
    /// [`StoreError::Io`]/[`StoreError::Unavailable`] when the file cannot be opened.
    pub async fn open(path: &Path, master: MasterKey) -> Result<Self, StoreError> {
        prepare_db_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| {
                Sqlite::db_error(&format!("cannot open the key store {}", path.display()), e)
            })?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Corrupt(format!(
                "cannot migrate the key store {}: {e}",
                path.display()
            ))
        })?;
        Self::checked(pool, master, path.display().to_string(), None).await
    }
}

/// Creates the database file (0600) and its directory (0700) when missing, so SQLite's WAL and
/// shared-memory files, which copy the database file's mode, are private too.
fn prepare_db_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        create_private_dir(dir)
            .map_err(|e| io_error(e, &format!("cannot create directory {}", dir.display())))?;
    }
    match create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(e, &format!("cannot create {}", path.display()))),
    }
}

#[cfg(test)]
mod tests;
