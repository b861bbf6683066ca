//! The shared key store: accounts, API keys, partners and the audit log in PostgreSQL, for
//! several gateway instances at once.
//!
//! - The schema is the SQLite store's (same tables and columns; `migrations/postgres/`, a test
//!   keeps the two in step). Secrets are encrypted exactly as there, under the master key from
//!   `WBAUTH_MASTER_KEY`, which every instance must share: a key-check value in `meta` makes a
//!   wrong key a clear start-up error on every instance (`docs/design-decisions.md` 18).
//! - Every change (a key or partner created, changed, deleted or replaced) sends
//!   `NOTIFY wbauth_changes, 'key:<id>'` (or `'partner:<id>'`) in the transaction that makes it,
//!   so it is announced exactly when it commits. [`KeyStore::changes`] listens on a connection
//!   of its own and hands the announcements to the instance's cache; after a lost connection
//!   it sends [`Change::Resync`] (announcements may have been missed), and the gateway also
//!   reloads everything periodically as a safety net.
//! - "Last used" times arrive batched (one write per key per flush interval) and are not
//!   announced: instances pick them up with the periodic reload.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::pg::{connect, db_error};
use super::rows::{
    AccountRow, AuditRow, KeyRow, PartnerRow, account_select, audit_select, convert, key_select,
    partner_select,
};
use super::sqlite::{
    KEY_CHECK_AAD, KEY_CHECK_NAME, KEY_CHECK_PLAINTEXT, MasterKey, api_key_aad, from_sql_u64,
    json_text, key_id_to_sql, partner_aad, to_sql_i64, totp_aad,
};
use super::{
    AccountRecord, AuditEntry, BoxFuture, Change, ChangeFeed, KeyId, KeyRecord, KeyStore,
    KeyUpdate, NewKey, NewPartner, PartnerRecord, RemoteOptions, StoreError, redact_url,
};

/// The channel every change is announced on.
pub const CHANGES_CHANNEL: &str = "wbauth_changes";

/// How many announcements may wait for the cache before the listener waits in turn.
const FEED_CAPACITY: usize = 4096;

/// The longest pause between attempts to listen again after a failure.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// The PostgreSQL key store.
pub struct PgKeyStore {
    pool: PgPool,
    master: MasterKey,
    /// For logs (password hidden).
    shown: String,
    op_timeout: Duration,
}

impl std::fmt::Debug for PgKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKeyStore")
            .field("url", &self.shown)
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

/// What a change announces.
enum Subject {
    Key(i64),
    Partner(i64),
    /// Many changes at once: every instance reloads everything.
    Everything,
}

impl Subject {
    fn payload(&self) -> String {
        match self {
            Subject::Key(id) => format!("key:{id}"),
            Subject::Partner(id) => format!("partner:{id}"),
            Subject::Everything => "resync".to_owned(),
        }
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

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

impl PgKeyStore {
    /// The console's tables over this store's pool.
    fn console(&self) -> super::console_sql::ConsoleSql<'_, sqlx::Postgres> {
        super::console_sql::ConsoleSql {
            pool: &self.pool,
            db_error,
        }
    }

    /// Connects, brings the schema up to date and checks `master` against the key-check value
    /// (written by the first instance ever to connect).
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
        let pool = connect(url, options).await?;
        let store = Self {
            pool,
            master,
            shown: redact_url(url),
            op_timeout: options.op_timeout,
        };
        if let Err(e) = store.check_master_key().await {
            store.pool.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn check_master_key(&self) -> Result<(), StoreError> {
        let context = "cannot check the master key";
        let sealed = self.master.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)?;
        // The first instance writes it; every other one finds it.
        sqlx::query("INSERT INTO meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING")
            .bind(KEY_CHECK_NAME)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(context, e))?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT v FROM meta WHERE k = $1")
            .bind(KEY_CHECK_NAME)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error(context, e))?;
        let matches = self
            .master
            .open(KEY_CHECK_AAD, &stored)
            .is_some_and(|plain| plain.expose() == KEY_CHECK_PLAINTEXT);
        if matches {
            Ok(())
        } else {
            Err(StoreError::WrongMasterKey(format!(
                "the master key does not match the key store at {} (its key-check value does \
                 not decrypt); every instance must start with the same {}",
                self.shown,
                super::sqlite::MASTER_KEY_ENV
            )))
        }
    }

    /// Runs `op` with the configured operation timeout.
    async fn timed<T>(
        &self,
        context: &str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.op_timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "{context}: no answer from {} within {:?}",
                self.shown, self.op_timeout
            ))),
        }
    }

    async fn begin(&self, context: &str) -> Result<Tx, StoreError> {
        self.pool.begin().await.map_err(|e| db_error(context, e))
    }

    /// Announces `subject` when `tx` commits.
    async fn announce(tx: &mut Tx, subject: Subject, context: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(subject.payload())
            .execute(&mut **tx)
            .await
            .map_err(|e| db_error(context, e))?;
        Ok(())
    }

    /// Announces `subject` when `tx` commits, then commits.
    async fn announce_and_commit(
        mut tx: Tx,
        subject: Subject,
        context: &str,
    ) -> Result<(), StoreError> {
        Self::announce(&mut tx, subject, context).await?;
        tx.commit().await.map_err(|e| db_error(context, e))
    }

    /// Runs one statement in its own transaction and, when it changed a row, announces
    /// `subject` with the commit; `Ok(false)` (nothing announced) when no row changed.
    async fn change_one(
        &self,
        statement: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        subject: Subject,
        context: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(context).await?;
        let done = statement
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        Self::announce_and_commit(tx, subject, context).await?;
        Ok(true)
    }

    async fn do_load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(concat!(key_select!(), " ORDER BY k.id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("cannot load the API keys", e))?;
        convert(rows, |row| row.into_record(&self.master))
    }

    async fn do_get_key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let Some(id) = key_id_to_sql(id) else {
            return Ok(None);
        };
        let row: Option<KeyRow> = sqlx::query_as(concat!(key_select!(), " WHERE k.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error("cannot read an API key", e))?;
        row.map(|row| row.into_record(&self.master)).transpose()
    }

    async fn do_insert_key(&self, key: NewKey) -> Result<KeyId, StoreError> {
        let context = "cannot insert an API key";
        let mut tx = self.begin(context).await?;
        let anchor = key.created_ms;
        let id = self
            .insert_key_row(&mut tx, &key, (true, false, anchor))
            .await?;
        Self::announce_and_commit(tx, Subject::Key(id), context).await?;
        from_sql_u64(id, "api_keys.id")
    }

    async fn do_insert_keys(&self, keys: Vec<NewKey>) -> Result<Vec<KeyId>, StoreError> {
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
        Self::announce_and_commit(tx, Subject::Everything, context).await?;
        Ok(ids)
    }

    /// One INSERT of an API key row with (enabled, idle_deactivated, idle_anchor_ms).
    async fn insert_key_row(
        &self,
        tx: &mut Tx,
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
        .fetch_one(&mut **tx)
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
            Err(e) => Err(db_error("cannot insert an API key", e)),
        }
    }

    async fn do_replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> Result<Option<KeyId>, StoreError> {
        let Some(old) = key_id_to_sql(old) else {
            return Ok(None);
        };
        let context = "cannot replace an API key";
        let mut tx = self.begin(context).await?;
        let deleted = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(old)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        // Dropping the transaction on an error rolls the delete back.
        let id = self.insert_key_row(&mut tx, &key, state).await?;
        Self::announce(&mut tx, Subject::Key(old), context).await?;
        Self::announce_and_commit(tx, Subject::Key(id), context).await?;
        Ok(Some(from_sql_u64(id, "api_keys.id")?))
    }

    async fn do_update_key(&self, id: KeyId, update: KeyUpdate) -> Result<bool, StoreError> {
        let Some(id) = key_id_to_sql(id) else {
            return Ok(false);
        };
        let context = "cannot update an API key";
        let ips = update.ips.as_deref().map(json_text).transpose()?;
        let endpoints = update.endpoints.as_deref().map(json_text).transpose()?;
        let anchor = update
            .idle_anchor_ms
            .map(|v| to_sql_i64(v, "idle_anchor_ms"))
            .transpose()?;
        let mut tx = self.begin(context).await?;
        // The public key is the secret's associated data (and the row is locked meanwhile).
        let public_key: Option<String> =
            sqlx::query_scalar("SELECT public_key FROM api_keys WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| db_error(context, e))?;
        let Some(public_key) = public_key else {
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
        .map_err(|e| db_error(context, e))?;
        Self::announce_and_commit(tx, Subject::Key(id), context).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_delete_key(&self, id: KeyId) -> Result<bool, StoreError> {
        let Some(id) = key_id_to_sql(id) else {
            return Ok(false);
        };
        self.change_one(
            sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id),
            Subject::Key(id),
            "cannot delete an API key",
        )
        .await
    }

    async fn do_touch_keys(&self, used: Vec<(KeyId, u64)>) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(used.len());
        let mut times = Vec::with_capacity(used.len());
        for (id, at_ms) in used {
            if let Some(id) = key_id_to_sql(id) {
                ids.push(id);
                times.push(to_sql_i64(at_ms, "last_used_ms")?);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch; a time never moves backwards.
        sqlx::query(
            "UPDATE api_keys AS k SET last_used_ms = u.at_ms \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS u (id, at_ms) \
             WHERE k.id = u.id AND (k.last_used_ms IS NULL OR k.last_used_ms < u.at_ms)",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("cannot record key use", e))?;
        Ok(())
    }

    async fn do_insert_account(
        &self,
        name: String,
        created_ms: u64,
    ) -> Result<AccountRecord, StoreError> {
        let result = sqlx::query_scalar(
            "INSERT INTO accounts (name, created_ms, totp_secret, totp_confirmed, \
             totp_last_step, failed_attempts, locked_until_ms) \
             VALUES ($1, $2, NULL, FALSE, NULL, 0, NULL) RETURNING id",
        )
        .bind(&name)
        .bind(to_sql_i64(created_ms, "created_ms")?)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(id) => Ok(AccountRecord {
                id,
                name,
                created_ms,
                totp: None,
                failed_attempts: 0,
                locked_until_ms: None,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("an account named {name:?} already exists"),
            )),
            Err(e) => Err(db_error("cannot insert an account", e)),
        }
    }

    async fn do_get_account(&self, name: String) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<AccountRow> =
            sqlx::query_as(concat!(account_select!(), " WHERE name = $1"))
                .bind(&name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error("cannot read an account", e))?;
        row.map(|row| row.into_record(&self.master)).transpose()
    }

    async fn do_list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let rows: Vec<AccountRow> = sqlx::query_as(concat!(account_select!(), " ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("cannot list the accounts", e))?;
        convert(rows, |row| row.into_record(&self.master))
    }

    async fn do_update_account(&self, account: AccountRecord) -> Result<bool, StoreError> {
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
        .map_err(|e| db_error("cannot update an account", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_load_partners(&self) -> Result<Vec<PartnerRecord>, StoreError> {
        let rows: Vec<PartnerRow> = sqlx::query_as(concat!(partner_select!(), " ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("cannot load the partners", e))?;
        convert(rows, |row| row.into_record(&self.master))
    }

    async fn do_insert_partner(&self, partner: NewPartner) -> Result<i64, StoreError> {
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
                return Err(StoreError::Conflict(
                    if e.constraint().is_some_and(|c| c.contains("name")) {
                        format!("a partner named {:?} already exists", partner.name)
                    } else {
                        format!(
                            "a partner with Auth Key {} already exists",
                            partner.auth_key
                        )
                    },
                ));
            }
            Err(e) => return Err(db_error(context, e)),
        };
        Self::announce_and_commit(tx, Subject::Partner(id), context).await?;
        Ok(id)
    }

    async fn do_update_partner_enabled(&self, id: i64, enabled: bool) -> Result<bool, StoreError> {
        self.change_one(
            sqlx::query("UPDATE partners SET enabled = $1 WHERE id = $2")
                .bind(enabled)
                .bind(id),
            Subject::Partner(id),
            "cannot update a partner",
        )
        .await
    }

    async fn do_delete_partner(&self, id: i64) -> Result<bool, StoreError> {
        self.change_one(
            sqlx::query("DELETE FROM partners WHERE id = $1").bind(id),
            Subject::Partner(id),
            "cannot delete a partner",
        )
        .await
    }

    async fn do_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (at_ms, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(to_sql_i64(entry.at_ms, "at_ms")?)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.detail)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("cannot append to the audit log", e))?;
        Ok(())
    }

    async fn do_recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> =
            sqlx::query_as(concat!(audit_select!(), " ORDER BY id DESC LIMIT $1"))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("cannot read the audit log", e))?;
        convert(rows, AuditRow::into_entry)
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

impl KeyStore for PgKeyStore {
    fn load_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>> {
        // Loading every key may take longer than one operation: no operation timeout here.
        Box::pin(self.do_load_keys())
    }

    fn get_key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<KeyRecord>, StoreError>> {
        Box::pin(self.timed("reading an API key", self.do_get_key(id)))
    }

    fn insert_key(&self, key: NewKey) -> BoxFuture<'_, Result<KeyId, StoreError>> {
        Box::pin(self.timed("inserting an API key", self.do_insert_key(key)))
    }

    fn insert_keys(&self, keys: Vec<NewKey>) -> BoxFuture<'_, Result<Vec<KeyId>, StoreError>> {
        // A batch may take longer than one operation: no operation timeout here.
        Box::pin(self.do_insert_keys(keys))
    }

    fn update_key(&self, id: KeyId, update: KeyUpdate) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.timed("updating an API key", self.do_update_key(id, update)))
    }

    fn delete_key(&self, id: KeyId) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.timed("deleting an API key", self.do_delete_key(id)))
    }

    fn replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> BoxFuture<'_, Result<Option<KeyId>, StoreError>> {
        Box::pin(self.timed("replacing an API key", self.do_replace_key(old, key, state)))
    }

    fn touch_keys(&self, used: Vec<(KeyId, u64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.do_touch_keys(used))
    }

    fn insert_account(
        &self,
        name: String,
        created_ms: u64,
    ) -> BoxFuture<'_, Result<AccountRecord, StoreError>> {
        Box::pin(self.timed(
            "inserting an account",
            self.do_insert_account(name, created_ms),
        ))
    }

    fn get_account(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<Option<AccountRecord>, StoreError>> {
        Box::pin(self.timed("reading an account", self.do_get_account(name)))
    }

    fn list_accounts(&self) -> BoxFuture<'_, Result<Vec<AccountRecord>, StoreError>> {
        Box::pin(self.do_list_accounts())
    }

    fn update_account(&self, account: AccountRecord) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.timed("updating an account", self.do_update_account(account)))
    }

    fn console_password(
        &self,
        account_id: i64,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(async move { self.console().password(account_id).await })
    }

    fn set_console_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.console().set_password(account_id, phc, now_ms).await })
    }

    fn set_console_link(
        &self,
        account_id: i64,
        token_sha256: Vec<u8>,
        expires_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.console()
                .set_link(account_id, token_sha256, expires_ms, now_ms)
                .await
        })
    }

    fn console_link(
        &self,
        token_sha256: Vec<u8>,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<(String, u64)>, StoreError>> {
        Box::pin(async move { self.console().link(token_sha256, now_ms).await })
    }

    fn redeem_console_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move { self.console().redeem_link(token_sha256, phc, now_ms).await })
    }

    fn load_partners(&self) -> BoxFuture<'_, Result<Vec<PartnerRecord>, StoreError>> {
        Box::pin(self.do_load_partners())
    }

    fn insert_partner(&self, partner: NewPartner) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(self.timed("inserting a partner", self.do_insert_partner(partner)))
    }

    fn update_partner_enabled(
        &self,
        id: i64,
        enabled: bool,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.timed(
            "updating a partner",
            self.do_update_partner_enabled(id, enabled),
        ))
    }

    fn delete_partner(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.timed("deleting a partner", self.do_delete_partner(id)))
    }

    fn audit(&self, entry: AuditEntry) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.timed("writing the audit log", self.do_audit(entry)))
    }

    fn recent_audit(&self, limit: u32) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(self.timed("reading the audit log", self.do_recent_audit(limit)))
    }

    fn changes(&self) -> Option<ChangeFeed> {
        let (tx, rx) = tokio::sync::mpsc::channel(FEED_CAPACITY);
        tokio::spawn(listen(self.pool.clone(), self.shown.clone(), tx));
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// `table → [column, …]` of the `CREATE TABLE` statements in `sql`.
    fn tables(sql: &str) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in sql.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                let name = rest.trim_end_matches('(').trim().to_owned();
                current = Some((name, Vec::new()));
            } else if line.starts_with(");") {
                if let Some((name, columns)) = current.take() {
                    out.insert(name, columns);
                }
            } else if let Some((_, columns)) = current.as_mut()
                && let Some(column) = line.split_whitespace().next()
                && !line.starts_with("--")
                && !matches!(column, "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN")
            {
                columns.push(column.to_owned());
            }
        }
        out
    }

    #[test]
    fn both_key_stores_have_the_same_tables_and_columns() {
        let sqlite = [
            include_str!("../migrations/sqlite/0001_init.sql"),
            include_str!("../migrations/sqlite/0002_partners.sql"),
        ]
        .concat();
        let postgres = [
            include_str!("../migrations/postgres/0001_init.sql"),
            include_str!("../migrations/postgres/0002_partners.sql"),
        ]
        .concat();
        let (sqlite, postgres) = (tables(&sqlite), tables(&postgres));
        assert_eq!(
            sqlite.keys().collect::<Vec<_>>(),
            ["accounts", "api_keys", "audit", "meta", "partners"]
        );
        assert_eq!(sqlite, postgres);
        // The nonce tables are PostgreSQL's own (the embedded nonce store is a journal).
        // The console's tables (issue 8), each store's own migrations.
        let sqlite = [
            include_str!("../migrations/sqlite/0003_console.sql"),
            include_str!("../migrations/sqlite/0004_console_links.sql"),
        ]
        .concat();
        let postgres = [
            include_str!("../migrations/postgres/0005_console.sql"),
            include_str!("../migrations/postgres/0006_console_links.sql"),
        ]
        .concat();
        let (sqlite, postgres) = (tables(&sqlite), tables(&postgres));
        assert_eq!(
            sqlite.keys().collect::<Vec<_>>(),
            ["console_links", "console_passwords"]
        );
        assert_eq!(sqlite, postgres);
        let nonces = tables(include_str!("../migrations/postgres/0003_nonces.sql"));
        assert_eq!(
            nonces.keys().collect::<Vec<_>>(),
            ["nonce_high_water", "nonce_window"]
        );
    }

    #[test]
    fn announcements_parse() {
        assert_eq!(parse_change("key:17"), Some(Change::Key(17)));
        assert_eq!(parse_change("partner:3"), Some(Change::Partner(3)));
        assert_eq!(parse_change("key:-1"), None);
        assert_eq!(parse_change("key:"), None);
        assert_eq!(parse_change("other:1"), None);
        assert_eq!(parse_change("key17"), None);
        assert_eq!(parse_change("resync"), Some(Change::Resync));
        assert_eq!(Subject::Everything.payload(), "resync");
        assert_eq!(Subject::Key(5).payload(), "key:5");
        assert_eq!(Subject::Partner(6).payload(), "partner:6");
    }
}
