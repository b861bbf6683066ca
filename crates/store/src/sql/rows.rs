//! Rows as the key store reads them (`FromRow` works for SQLite and PostgreSQL alike), and
//! their conversion to records: decrypting secrets, checking ranges, parsing lists; and the
//! other way, the values the statements bind.

use crate::{
    AccountRecord, AuditEntry, KeyId, KeyRecord, MasterKey, PartnerRecord, SecretBytesEq,
    StoreError, TotpRecord,
};

/// The columns of a key with its owner's name; `WHERE`/`ORDER BY` are appended.
macro_rules! key_select {
    () => {
        "SELECT k.id, k.public_key, k.account_id, a.name AS account_name, k.kind, k.secret, \
         k.enabled, k.idle_deactivated, k.ips, k.endpoints, k.created_ms, k.idle_anchor_ms, \
         k.last_used_ms \
         FROM api_keys k JOIN accounts a ON a.id = k.account_id"
    };
}
pub(super) use key_select;

/// The columns of an account; `WHERE`/`ORDER BY` are appended.
macro_rules! account_select {
    () => {
        "SELECT id, name, created_ms, totp_secret, totp_confirmed, totp_last_step, \
         failed_attempts, locked_until_ms FROM accounts"
    };
}
pub(super) use account_select;

/// The columns of a partner; `WHERE`/`ORDER BY` are appended.
macro_rules! partner_select {
    () => {
        "SELECT id, name, auth_key, enc_key, enabled, created_ms FROM partners"
    };
}
pub(super) use partner_select;

/// The columns of an audit entry; `ORDER BY`/`LIMIT` are appended.
macro_rules! audit_select {
    () => {
        "SELECT at_ms, actor, action, detail FROM audit"
    };
}
pub(super) use audit_select;

/// An `api_keys` row joined with its owner's name ([`key_select!`]).
#[derive(sqlx::FromRow)]
pub(super) struct KeyRow {
    id: i64,
    public_key: String,
    account_id: i64,
    account_name: String,
    kind: String,
    secret: Vec<u8>,
    enabled: bool,
    idle_deactivated: bool,
    ips: String,
    endpoints: String,
    created_ms: i64,
    idle_anchor_ms: i64,
    last_used_ms: Option<i64>,
}

impl KeyRow {
    /// The record, secret decrypted.
    pub(super) fn into_record(self, master: &MasterKey) -> Result<KeyRecord, StoreError> {
        let id = self.id;
        let secret = master
            .open(&api_key_aad(&self.public_key), &self.secret)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the secret of API key id {id} does not decrypt (damaged or moved from another row)"
                ))
            })?;
        Ok(KeyRecord {
            id: from_sql_u64(id, "api_keys.id")?,
            public_key: self.public_key,
            account_id: self.account_id,
            account_name: self.account_name,
            kind: self.kind,
            secret: SecretBytesEq(secret),
            enabled: self.enabled,
            idle_deactivated: self.idle_deactivated,
            ips: json_list(&self.ips, id, "ips")?,
            endpoints: json_list(&self.endpoints, id, "endpoints")?,
            created_ms: from_sql_u64(self.created_ms, "api_keys.created_ms")?,
            idle_anchor_ms: from_sql_u64(self.idle_anchor_ms, "api_keys.idle_anchor_ms")?,
            last_used_ms: self
                .last_used_ms
                .map(|v| from_sql_u64(v, "api_keys.last_used_ms"))
                .transpose()?,
        })
    }
}

/// An `accounts` row ([`account_select!`]).
#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: i64,
    name: String,
    created_ms: i64,
    totp_secret: Option<Vec<u8>>,
    totp_confirmed: bool,
    totp_last_step: Option<i64>,
    failed_attempts: i64,
    locked_until_ms: Option<i64>,
}

impl AccountRow {
    /// The record, TOTP secret decrypted.
    pub(super) fn into_record(self, master: &MasterKey) -> Result<AccountRecord, StoreError> {
        let id = self.id;
        let totp = match self.totp_secret {
            None => None,
            Some(sealed) => {
                let secret = master.open(&totp_aad(&self.name), &sealed).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the TOTP secret of account id {id} does not decrypt (damaged or moved from another row)"
                    ))
                })?;
                Some(TotpRecord {
                    secret: SecretBytesEq(secret),
                    confirmed: self.totp_confirmed,
                    last_step: self
                        .totp_last_step
                        .map(|v| from_sql_u64(v, "accounts.totp_last_step"))
                        .transpose()?,
                })
            }
        };
        let failed = self.failed_attempts;
        Ok(AccountRecord {
            id,
            name: self.name,
            created_ms: from_sql_u64(self.created_ms, "accounts.created_ms")?,
            totp,
            failed_attempts: u32::try_from(failed).map_err(|_| {
                StoreError::Corrupt(format!("accounts.failed_attempts out of range: {failed}"))
            })?,
            locked_until_ms: self
                .locked_until_ms
                .map(|v| from_sql_u64(v, "accounts.locked_until_ms"))
                .transpose()?,
        })
    }
}

/// A `partners` row ([`partner_select!`]).
#[derive(sqlx::FromRow)]
pub(super) struct PartnerRow {
    id: i64,
    name: String,
    auth_key: String,
    enc_key: Vec<u8>,
    enabled: bool,
    created_ms: i64,
}

impl PartnerRow {
    /// The record, Enc Key decrypted.
    pub(super) fn into_record(self, master: &MasterKey) -> Result<PartnerRecord, StoreError> {
        let id = self.id;
        let enc_key = master
            .open(&partner_aad(&self.auth_key), &self.enc_key)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the Enc Key of partner id {id} does not decrypt (damaged or moved from another row)"
                ))
            })?;
        Ok(PartnerRecord {
            id,
            name: self.name,
            auth_key: self.auth_key,
            enc_key: SecretBytesEq(enc_key),
            enabled: self.enabled,
            created_ms: from_sql_u64(self.created_ms, "partners.created_ms")?,
        })
    }
}

/// An `audit` row ([`audit_select!`]).
#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    at_ms: i64,
    actor: String,
    action: String,
    detail: String,
}

impl AuditRow {
    /// The entry.
    pub(super) fn into_entry(self) -> Result<AuditEntry, StoreError> {
        Ok(AuditEntry {
            at_ms: from_sql_u64(self.at_ms, "audit.at_ms")?,
            actor: self.actor,
            action: self.action,
            detail: self.detail,
        })
    }
}

/// Converts rows, the first failure winning.
pub(super) fn convert<R, T>(
    rows: Vec<R>,
    mut f: impl FnMut(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(&mut f).collect()
}

/// The associated data of an API key's secret: its row's public key.
pub(super) fn api_key_aad(public_key: &str) -> Vec<u8> {
    [b"api_key:".as_slice(), public_key.as_bytes()].concat()
}

/// The associated data of a partner's Enc Key: its row's Auth Key.
pub(super) fn partner_aad(auth_key: &str) -> Vec<u8> {
    [b"partner:".as_slice(), auth_key.as_bytes()].concat()
}

/// The associated data of an account's TOTP secret: its row's name.
pub(super) fn totp_aad(account_name: &str) -> Vec<u8> {
    [b"totp:".as_slice(), account_name.as_bytes()].concat()
}

/// Key ids beyond `i64::MAX` cannot exist in the table.
pub(super) fn key_id_to_sql(id: KeyId) -> Option<i64> {
    i64::try_from(id).ok()
}

pub(super) fn to_sql_i64(value: u64, field: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} out of range: {value}")))
}

pub(super) fn from_sql_u64(value: i64, field: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{field} is negative in the store: {value}")))
}

pub(super) fn json_text(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a list: {e}")))
}

fn json_list(text: &str, id: i64, column: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "api_keys.{column} of key id {id} is not a JSON array of strings: {e}"
        ))
    })
}
