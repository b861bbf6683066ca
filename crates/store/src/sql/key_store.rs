//! [`KeyStore`] for both databases: the reads here, the changes in `writes.rs`. Loading
//! everything and batches may take longer than one operation: they have no operation timeout.

use sqlx::Executor;

use super::dialect::{Dialect, Subject};
use super::rows::{
    AccountRow, AuditRow, KeyRow, PartnerRow, account_select, audit_select, convert, from_sql_u64,
    key_id_to_sql, key_select, partner_select, to_sql_i64,
};
use super::{Row, SqlKeyStore, Value};
use crate::{
    AccountRecord, AuditEntry, ChangeFeed, KeyId, KeyRecord, KeyStore, KeyUpdate, NewConsoleLink,
    NewKey, NewPartner, PartnerRecord, StoreFuture,
};

impl<DB> KeyStore for SqlKeyStore<DB>
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
    (String, i64): Row<DB>,
    KeyRow: Row<DB>,
    AccountRow: Row<DB>,
    PartnerRow: Row<DB>,
    AuditRow: Row<DB>,
{
    fn load_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>> {
        Box::pin(async move {
            let rows: Vec<KeyRow> = sqlx::query_as(concat!(key_select!(), " ORDER BY k.id"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| DB::db_error("cannot load the API keys", e))?;
            convert(rows, |row| row.into_record(&self.master))
        })
    }

    fn get_key(&self, id: KeyId) -> StoreFuture<'_, Option<KeyRecord>> {
        Box::pin(self.timed("reading an API key", async move {
            let Some(id) = key_id_to_sql(id) else {
                return Ok(None);
            };
            let row: Option<KeyRow> = sqlx::query_as(concat!(key_select!(), " WHERE k.id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| DB::db_error("cannot read an API key", e))?;
            row.map(|row| row.into_record(&self.master)).transpose()
        }))
    }

    fn insert_key(&self, key: NewKey) -> StoreFuture<'_, KeyId> {
        Box::pin(self.timed("inserting an API key", self.do_insert_key(key)))
    }

    fn insert_keys(&self, keys: Vec<NewKey>) -> StoreFuture<'_, Vec<KeyId>> {
        Box::pin(self.do_insert_keys(keys))
    }

    fn update_key(&self, id: KeyId, update: KeyUpdate) -> StoreFuture<'_, bool> {
        Box::pin(self.timed("updating an API key", async move {
            match key_id_to_sql(id) {
                Some(id) => self.do_update_key(id, update).await,
                None => Ok(false),
            }
        }))
    }

    fn delete_key(&self, id: KeyId) -> StoreFuture<'_, bool> {
        Box::pin(self.timed("deleting an API key", async move {
            let Some(id) = key_id_to_sql(id) else {
                return Ok(false);
            };
            let statement = sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id);
            self.change_one(statement, Subject::Key(id), "cannot delete an API key")
                .await
        }))
    }

    fn replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> StoreFuture<'_, Option<KeyId>> {
        Box::pin(self.timed("replacing an API key", async move {
            match key_id_to_sql(old) {
                Some(old) => self.do_replace_key(old, key, state).await,
                None => Ok(None),
            }
        }))
    }

    fn touch_keys(&self, used: Vec<(KeyId, u64)>) -> StoreFuture<'_, ()> {
        Box::pin(self.do_touch_keys(used))
    }

    fn insert_account(&self, name: String, created_ms: u64) -> StoreFuture<'_, AccountRecord> {
        Box::pin(self.timed(
            "inserting an account",
            self.do_insert_account(name, created_ms),
        ))
    }

    fn get_account(&self, name: String) -> StoreFuture<'_, Option<AccountRecord>> {
        Box::pin(self.timed("reading an account", async move {
            let row: Option<AccountRow> =
                sqlx::query_as(concat!(account_select!(), " WHERE name = $1"))
                    .bind(&name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| DB::db_error("cannot read an account", e))?;
            row.map(|row| row.into_record(&self.master)).transpose()
        }))
    }

    fn list_accounts(&self) -> StoreFuture<'_, Vec<AccountRecord>> {
        Box::pin(async move {
            let rows: Vec<AccountRow> = sqlx::query_as(concat!(account_select!(), " ORDER BY id"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| DB::db_error("cannot list the accounts", e))?;
            convert(rows, |row| row.into_record(&self.master))
        })
    }

    fn update_account(&self, account: AccountRecord) -> StoreFuture<'_, bool> {
        Box::pin(self.timed("updating an account", self.do_update_account(account)))
    }

    fn console_password(&self, account_id: i64) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT phc FROM console_passwords WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| DB::db_error("cannot read a console password", e))
        })
    }

    fn set_console_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.do_set_console_password(account_id, phc, now_ms))
    }

    fn set_console_link(&self, link: NewConsoleLink) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let expires = to_sql_i64(link.expires_ms, "expires_ms")?;
            let now = to_sql_i64(link.created_ms, "created_ms")?;
            sqlx::query(
                "INSERT INTO console_links (token_sha256, account_id, expires_ms, created_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
                 token_sha256 = excluded.token_sha256, expires_ms = excluded.expires_ms, \
                 created_ms = excluded.created_ms",
            )
            .bind(link.token_sha256)
            .bind(link.account_id)
            .bind(expires)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| DB::db_error("cannot store a console link", e))?;
            Ok(())
        })
    }

    fn console_link(
        &self,
        token_sha256: Vec<u8>,
        now_ms: u64,
    ) -> StoreFuture<'_, Option<(String, u64)>> {
        Box::pin(async move {
            let now = to_sql_i64(now_ms, "now_ms")?;
            let row: Option<(String, i64)> = sqlx::query_as(
                "SELECT a.name, l.expires_ms FROM console_links l \
                 JOIN accounts a ON a.id = l.account_id \
                 WHERE l.token_sha256 = $1 AND l.expires_ms > $2",
            )
            .bind(token_sha256)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| DB::db_error("cannot read a console link", e))?;
            row.map(|(account, expires)| Ok((account, from_sql_u64(expires, "expires_ms")?)))
                .transpose()
        })
    }

    fn redeem_console_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Option<i64>> {
        Box::pin(self.do_redeem_console_link(token_sha256, phc, now_ms))
    }

    fn load_partners(&self) -> StoreFuture<'_, Vec<PartnerRecord>> {
        Box::pin(async move {
            let rows: Vec<PartnerRow> = sqlx::query_as(concat!(partner_select!(), " ORDER BY id"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| DB::db_error("cannot load the partners", e))?;
            convert(rows, |row| row.into_record(&self.master))
        })
    }

    fn insert_partner(&self, partner: NewPartner) -> StoreFuture<'_, i64> {
        Box::pin(self.timed("inserting a partner", self.do_insert_partner(partner)))
    }

    fn update_partner_enabled(&self, id: i64, enabled: bool) -> StoreFuture<'_, bool> {
        let statement = sqlx::query("UPDATE partners SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id);
        Box::pin(self.timed(
            "updating a partner",
            self.change_one(statement, Subject::Partner(id), "cannot update a partner"),
        ))
    }

    fn delete_partner(&self, id: i64) -> StoreFuture<'_, bool> {
        let statement = sqlx::query("DELETE FROM partners WHERE id = $1").bind(id);
        Box::pin(self.timed(
            "deleting a partner",
            self.change_one(statement, Subject::Partner(id), "cannot delete a partner"),
        ))
    }

    fn audit(&self, entry: AuditEntry) -> StoreFuture<'_, ()> {
        Box::pin(self.timed("writing the audit log", async move {
            sqlx::query("INSERT INTO audit (at_ms, actor, action, detail) VALUES ($1, $2, $3, $4)")
                .bind(to_sql_i64(entry.at_ms, "at_ms")?)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.detail)
                .execute(&self.pool)
                .await
                .map_err(|e| DB::db_error("cannot append to the audit log", e))?;
            Ok(())
        }))
    }

    fn recent_audit(&self, limit: u32) -> StoreFuture<'_, Vec<AuditEntry>> {
        Box::pin(self.timed("reading the audit log", async move {
            let rows: Vec<AuditRow> =
                sqlx::query_as(concat!(audit_select!(), " ORDER BY id DESC LIMIT $1"))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| DB::db_error("cannot read the audit log", e))?;
            convert(rows, AuditRow::into_entry)
        }))
    }

    fn changes(&self) -> Option<ChangeFeed> {
        DB::changes(&self.pool, &self.shown)
    }
}
