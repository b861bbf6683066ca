//! The web console's tables (`console_passwords`, `console_links`), one implementation for
//! both SQL key stores: the statements use `$N` placeholders, which SQLite reads as numbered
//! parameters too, and the code is generic over the sqlx database.

use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::StoreError;
use super::sqlite::{from_sql_u64, to_sql_i64};

/// The console's statements over one key store's pool, with its error wrapper.
pub(super) struct ConsoleSql<'a, DB: Database> {
    pub(super) pool: &'a Pool<DB>,
    pub(super) db_error: fn(&str, sqlx::Error) -> StoreError,
}

impl<DB> ConsoleSql<'_, DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    /// See [`super::KeyStore::console_password`].
    pub(super) async fn password(&self, account_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT phc FROM console_passwords WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(self.pool)
            .await
            .map_err(|e| (self.db_error)("cannot read a console password", e))
    }

    /// See [`super::KeyStore::set_console_password`].
    pub(super) async fn set_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| (self.db_error)("cannot store a console password", e))?;
        self.upsert_password(&mut conn, account_id, phc, now_ms)
            .await
    }

    async fn upsert_password(
        &self,
        conn: &mut DB::Connection,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now = to_sql_i64(now_ms, "updated_ms")?;
        sqlx::query(
            "INSERT INTO console_passwords (account_id, phc, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET phc = excluded.phc, \
             updated_ms = excluded.updated_ms",
        )
        .bind(account_id)
        .bind(phc)
        .bind(now)
        .execute(conn)
        .await
        .map_err(|e| (self.db_error)("cannot store a console password", e))?;
        Ok(())
    }

    /// See [`super::KeyStore::set_console_link`].
    pub(super) async fn set_link(
        &self,
        account_id: i64,
        token_sha256: Vec<u8>,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let expires = to_sql_i64(expires_ms, "expires_ms")?;
        let now = to_sql_i64(now_ms, "created_ms")?;
        sqlx::query(
            "INSERT INTO console_links (token_sha256, account_id, expires_ms, created_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
             token_sha256 = excluded.token_sha256, expires_ms = excluded.expires_ms, \
             created_ms = excluded.created_ms",
        )
        .bind(token_sha256)
        .bind(account_id)
        .bind(expires)
        .bind(now)
        .execute(self.pool)
        .await
        .map_err(|e| (self.db_error)("cannot store a console link", e))?;
        Ok(())
    }

    /// See [`super::KeyStore::console_link`].
    pub(super) async fn link(
        &self,
        token_sha256: Vec<u8>,
        now_ms: u64,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let now = to_sql_i64(now_ms, "now_ms")?;
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT a.name, l.expires_ms FROM console_links l \
             JOIN accounts a ON a.id = l.account_id \
             WHERE l.token_sha256 = $1 AND l.expires_ms > $2",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(self.pool)
        .await
        .map_err(|e| (self.db_error)("cannot read a console link", e))?;
        row.map(|(account, expires)| Ok((account, from_sql_u64(expires, "expires_ms")?)))
            .transpose()
    }

    /// See [`super::KeyStore::redeem_console_link`].
    pub(super) async fn redeem_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> Result<Option<i64>, StoreError> {
        let failed = |e| (self.db_error)("cannot use a console link", e);
        let now = to_sql_i64(now_ms, "now_ms")?;
        let mut tx = self.pool.begin().await.map_err(failed)?;
        let account: Option<i64> = sqlx::query_scalar(
            "DELETE FROM console_links WHERE token_sha256 = $1 AND expires_ms > $2 \
             RETURNING account_id",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed)?;
        let Some(account) = account else {
            return Ok(None);
        };
        self.upsert_password(&mut tx, account, phc, now_ms).await?;
        tx.commit().await.map_err(failed)?;
        Ok(Some(account))
    }
}
