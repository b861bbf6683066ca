//! The statements that change rows: each change in one transaction that also announces it
//! ([`Dialect::announce`]); and the master key check at open.

use sqlx::{Executor, Pool, Transaction};

use super::dialect::{Dialect, Subject};
use super::rows::{api_key_aad, from_sql_u64, json_text, partner_aad, to_sql_i64, totp_aad};
use super::{Row, SqlKeyStore, Value};
use crate::{AccountRecord, KeyId, KeyUpdate, MasterKey, NewKey, NewPartner, StoreError};

/// The `meta` row that holds the key-check value.
const KEY_CHECK_NAME: &str = "key_check";

#[expect(
    private_bounds,
    reason = "the bounds name crate-private traits, and so are all the methods"
)]
impl<DB> SqlKeyStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    i64: Value<DB>,
    bool: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<bool>: Value<DB>,
    Option<String>: Value<DB>,
    Option<Vec<u8>>: Value<DB>,
    (i64,): Row<DB>,
    (String,): Row<DB>,
    (Vec<u8>,): Row<DB>,
{
    /// The store over `pool`, once `master` is checked against the key-check value (written
    /// on first open); the pool is closed when the check fails.
    pub(super) async fn checked(
        pool: Pool<DB>,
        master: MasterKey,
        shown: String,
        op_timeout: Option<std::time::Duration>,
    ) -> Result<Self, StoreError> {
        let store = Self {
            pool,
            master,
            shown,
            op_timeout,
        };
        if let Err(e) = store.check_master_key().await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Starts a writing transaction ([`Dialect::begin_write`]).
    async fn begin(&self, context: &str) -> Result<Transaction<'static, DB>, StoreError> {
        DB::begin_write(&self.pool)
            .await
            .map_err(|e| DB::db_error(context, e))
    }

    /// Commits `tx`, announcing `subjects` to the other instances with the commit.
    async fn commit(
        mut tx: Transaction<'static, DB>,
        subjects: &[Subject],
        context: &str,
    ) -> Result<(), StoreError> {
        let failed = |e| DB::db_error(context, e);
        for subject in subjects {
            DB::announce(&mut tx, *subject).await.map_err(failed)?;
        }
        tx.commit().await.map_err(failed)
    }

    async fn check_master_key(&self) -> Result<(), StoreError> {
        let context = "cannot check the master key";
        let failed = |e| DB::db_error(context, e);
        let sealed = self.master.key_check()?;
        let mut tx = self.begin(context).await?;
        // The first open ever writes it; every later one finds it.
        sqlx::query("INSERT INTO meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING")
            .bind(KEY_CHECK_NAME.to_owned())
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT v FROM meta WHERE k = $1")
            .bind(KEY_CHECK_NAME.to_owned())
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
        if !self.master.matches_key_check(&stored) {
            return Err(StoreError::WrongMasterKey(DB::wrong_master_key(
                &self.shown,
                self.master.origin(),
            )));
        }
        Self::commit(tx, &[], context).await
    }

    /// Runs one statement in its own transaction and, when it changed a row, announces
    /// `subject` with the commit; `Ok(false)` (nothing announced) when no row changed.
    pub(super) async fn change_one(
        &self,
        statement: sqlx::query::Query<'_, DB, DB::Arguments>,
        subject: Subject,
        context: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(context).await?;
        let done = statement
            .execute(&mut *tx)
            .await
            .map_err(|e| DB::db_error(context, e))?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit(tx, &[subject], context).await?;
        Ok(true)
    }

    pub(super) async fn do_insert_key(&self, key: NewKey) -> Result<KeyId, StoreError> {
        let context = "cannot insert an API key";
        let mut tx = self.begin(context).await?;
        let anchor = key.created_ms;
        let id = self
            .insert_key_row(&mut tx, &key, (true, false, anchor))
            .await?;
        Self::commit(tx, &[Subject::Key(id)], context).await?;
        from_sql_u64(id, "api_keys.id")
    }

    pub(super) async fn do_insert_keys(&self, keys: Vec<NewKey>) -> Result<Vec<KeyId>, StoreError> {
        let context = "cannot insert API keys";
        let mut tx = self.begin(context).await?;
        let mut ids = Vec::with_capacity(keys.len());
        for key in &keys {
            // Dropping the transaction on an error rolls every insert back.
            let id = self
                .insert_key_row(&mut tx, key, (true, false, key.created_ms))
                .await?;
            ids.push(from_sql_u64(id, "api_keys.id")?);
        }
        // One announcement for the batch: every instance reloads.
        Self::commit(tx, &[Subject::Everything], context).await?;
        Ok(ids)
    }

    /// One INSERT of an API key row with (enabled, idle_deactivated, idle_anchor_ms).
    async fn insert_key_row(
        &self,
        conn: &mut DB::Connection,
        key: &NewKey,
        (enabled, idle, anchor): (bool, bool, u64),
    ) -> Result<i64, StoreError> {
        let sealed = self
            .master
            .seal(&api_key_aad(&key.public_key), key.secret.expose())?;
        let result = sqlx::query_scalar(
            "INSERT INTO api_keys (public_key, account_id, kind, secret, enabled, \
             idle_deactivated, ips, endpoints, created_ms, idle_anchor_ms, last_used_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL) RETURNING id",
        )
        .bind(&key.public_key)
        .bind(key.account_id)
        .bind(&key.kind)
        .bind(sealed)
        .bind(enabled)
        .bind(idle)
        .bind(json_text(&key.ips)?)
        .bind(json_text(&key.endpoints)?)
        .bind(to_sql_i64(key.created_ms, "created_ms")?)
        .bind(to_sql_i64(anchor, "idle_anchor_ms")?)
        .fetch_one(conn)
        .await;
        match result {
            Ok(id) => Ok(id),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!(
                    "an API key with public key {} already exists",
                    key.public_key
                )))
            }
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(
                StoreError::Conflict(format!("account id {} does not exist", key.account_id)),
            ),
            Err(e) => Err(DB::db_error("cannot insert an API key", e)),
        }
    }

    /// Deletes `old` and inserts `key` in one transaction (the old row is gone only if the
    /// new one is in), announcing both.
    pub(super) async fn do_replace_key(
        &self,
        old: i64,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> Result<Option<KeyId>, StoreError> {
        let context = "cannot replace an API key";
        let mut tx = self.begin(context).await?;
        let deleted = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(old)
            .execute(&mut *tx)
            .await
            .map_err(|e| DB::db_error(context, e))?;
        if DB::rows_affected(&deleted) == 0 {
            return Ok(None);
        }
        // Dropping the transaction on an error rolls the delete back.
        let id = self.insert_key_row(&mut tx, &key, state).await?;
        Self::commit(tx, &[Subject::Key(old), Subject::Key(id)], context).await?;
        Ok(Some(from_sql_u64(id, "api_keys.id")?))
    }

    pub(super) async fn do_update_key(
        &self,
        id: i64,
        update: KeyUpdate,
    ) -> Result<bool, StoreError> {
        let context = "cannot update an API key";
        let failed = |e| DB::db_error(context, e);
        let ips = update.ips.as_deref().map(json_text).transpose()?;
        let endpoints = update.endpoints.as_deref().map(json_text).transpose()?;
        let anchor = update
            .idle_anchor_ms
            .map(|v| to_sql_i64(v, "idle_anchor_ms"))
            .transpose()?;
        let mut tx = self.begin(context).await?;
        // The public key is the secret's associated data (and the row stays as it is meanwhile).
        let select = format!(
            "SELECT public_key FROM api_keys WHERE id = $1{}",
            DB::LOCK_ROW
        );
        let public_key: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
        let Some(public_key) = public_key else {
            tx.rollback().await.map_err(failed)?;
            return Ok(false);
        };
        let sealed = match &update.secret {
            Some(secret) => Some(
                self.master
                    .seal(&api_key_aad(&public_key), secret.expose())?,
            ),
            None => None,
        };
        let done = sqlx::query(
            "UPDATE api_keys SET \
             enabled = COALESCE($1, enabled), \
             idle_deactivated = COALESCE($2, idle_deactivated), \
             idle_anchor_ms = COALESCE($3, idle_anchor_ms), \
             ips = COALESCE($4, ips), \
             endpoints = COALESCE($5, endpoints), \
             secret = COALESCE($6, secret) \
             WHERE id = $7",
        )
        .bind(update.enabled)
        .bind(update.idle_deactivated)
        .bind(anchor)
        .bind(ips)
        .bind(endpoints)
        .bind(sealed)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        Self::commit(tx, &[Subject::Key(id)], context).await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(super) async fn do_insert_account(
        &self,
        name: String,
        created_ms: u64,
    ) -> Result<AccountRecord, StoreError> {
        let context = "cannot insert an account";
        // In a transaction of its own: SQLite applies a `RETURNING` statement at its first row
        // but commits an autocommitted one only when the statement is reset, and a failure
        // then (a full disk) would not be reported. Every `RETURNING` here runs in one.
        let mut tx = self.begin(context).await?;
        let result = sqlx::query_scalar(
            "INSERT INTO accounts (name, created_ms, totp_secret, totp_confirmed, \
             totp_last_step, failed_attempts, locked_until_ms) \
             VALUES ($1, $2, NULL, FALSE, NULL, 0, NULL) RETURNING id",
        )
        .bind(&name)
        .bind(to_sql_i64(created_ms, "created_ms")?)
        .fetch_one(&mut *tx)
        .await;
        let id = match result {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "an account named {name:?} already exists"
                )));
            }
            Err(e) => return Err(DB::db_error(context, e)),
        };
        Self::commit(tx, &[], context).await?;
        Ok(AccountRecord {
            id,
            name,
            created_ms,
            totp: None,
            failed_attempts: 0,
            locked_until_ms: None,
        })
    }

    pub(super) async fn do_update_account(
        &self,
        account: AccountRecord,
    ) -> Result<bool, StoreError> {
        let sealed = match &account.totp {
            Some(totp) => Some(
                self.master
                    .seal(&totp_aad(&account.name), totp.secret.0.expose())?,
            ),
            None => None,
        };
        let confirmed = account.totp.as_ref().is_some_and(|t| t.confirmed);
        let last_step = account
            .totp
            .as_ref()
            .and_then(|t| t.last_step)
            .map(|v| to_sql_i64(v, "totp_last_step"))
            .transpose()?;
        let locked = account
            .locked_until_ms
            .map(|v| to_sql_i64(v, "locked_until_ms"))
            .transpose()?;
        // The name is the TOTP secret's associated data: it must be this row's name.
        let done = sqlx::query(
            "UPDATE accounts SET totp_secret = $1, totp_confirmed = $2, totp_last_step = $3, \
             failed_attempts = $4, locked_until_ms = $5 WHERE id = $6 AND name = $7",
        )
        .bind(sealed)
        .bind(confirmed)
        .bind(last_step)
        .bind(i64::from(account.failed_attempts))
        .bind(locked)
        .bind(account.id)
        .bind(&account.name)
        .execute(&self.pool)
        .await
        .map_err(|e| DB::db_error("cannot update an account", e))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(super) async fn do_insert_partner(&self, partner: NewPartner) -> Result<i64, StoreError> {
        let context = "cannot insert a partner";
        let sealed = self
            .master
            .seal(&partner_aad(&partner.auth_key), partner.enc_key.expose())?;
        let mut tx = self.begin(context).await?;
        let result = sqlx::query_scalar(
            "INSERT INTO partners (name, auth_key, enc_key, enabled, created_ms) \
             VALUES ($1, $2, $3, TRUE, $4) RETURNING id",
        )
        .bind(&partner.name)
        .bind(&partner.auth_key)
        .bind(sealed)
        .bind(to_sql_i64(partner.created_ms, "created_ms")?)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match result {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(if DB::names_partner(&*e) {
                    format!("a partner named {:?} already exists", partner.name)
                } else {
                    format!(
                        "a partner with Auth Key {} already exists",
                        partner.auth_key
                    )
                }));
            }
            Err(e) => return Err(DB::db_error(context, e)),
        };
        Self::commit(tx, &[Subject::Partner(id)], context).await?;
        Ok(id)
    }

    pub(super) async fn do_touch_keys(&self, used: Vec<(KeyId, u64)>) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(used.len());
        let mut times = Vec::with_capacity(used.len());
        for (id, at_ms) in used {
            if let Ok(id) = i64::try_from(id) {
                ids.push(id);
                times.push(to_sql_i64(at_ms, "last_used_ms")?);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        DB::touch_keys(&self.pool, ids, times)
            .await
            .map_err(|e| DB::db_error("cannot record key use", e))
    }

    /// Sets (or replaces) an account's console password hash.
    pub(super) async fn do_set_console_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| DB::db_error("cannot store a console password", e))?;
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
        .map_err(|e| DB::db_error("cannot store a console password", e))?;
        Ok(())
    }

    /// Uses a console link: deletes it and sets its account's password in one transaction.
    pub(super) async fn do_redeem_console_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> Result<Option<i64>, StoreError> {
        let failed = |e| DB::db_error("cannot use a console link", e);
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
