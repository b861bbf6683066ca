//! The store traits: keys and accounts ([`KeyStore`]), nonces ([`NonceStore`]) and Fiat
//! Gateway partner tokens ([`ReplayGuard`]), object-safe so the gateway holds them as
//! `Arc<dyn …>`.

use std::future::Future;
use std::pin::Pin;

use whitebit_auth::{ApiError, NonceMode};

use crate::{
    AccountRecord, AuditEntry, KeyId, KeyRecord, KeyUpdate, NewConsoleLink, NewKey, NewPartner,
    PartnerRecord, StoreError,
};

/// A boxed future, so the store traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a store operation answers, to come: `T`, or the [`StoreError`] that stopped it.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// What a nonce store answers: `Ok(Ok(()))` accepted, `Ok(Err(row))` refused by the rules
/// (row 16), `Err` a store failure.
pub type NonceAnswer = Result<Result<(), ApiError>, StoreError>;

/// A [`NonceAnswer`] to come.
pub type NonceFuture<'a> = BoxFuture<'a, NonceAnswer>;

/// Records accepted nonces durably and applies the rules of `whitebit_auth::nonce`.
///
/// `consume` answers `Ok(Ok(()))` only once the nonce is recorded so that no crash can let
/// it be accepted again; `Ok(Err(row))` is a rule rejection (row 16), `Err` a store failure.
pub trait NonceStore: Send + Sync + 'static {
    /// A read-only check (what the rate limiter asks before counting a request).
    fn check(&self, key: KeyId, nonce: u64, mode: NonceMode, now_ms: u64) -> NonceFuture<'_>;

    /// Checks and, when accepted, durably records the nonce.
    fn consume(&self, key: KeyId, nonce: u64, mode: NonceMode, now_ms: u64) -> NonceFuture<'_>;

    /// Makes everything accepted so far durable (called on shutdown).
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// Forgets window-mode entries that expired before `now_ms` (called every second; stores
    /// whose entries expire by themselves do nothing). The number forgotten.
    fn sweep(&self, now_ms: u64) -> StoreFuture<'_, u64> {
        let _ = now_ms;
        Box::pin(async { Ok(0) })
    }

    /// Whether the store answers, and its clock when it has one of its own (`/readyz`
    /// compares it with the gateway's, `docs/design-decisions.md` 15). `Err` when it cannot be reached.
    fn health(&self) -> StoreFuture<'_, StoreHealth> {
        Box::pin(async { Ok(StoreHealth::default()) })
    }

    /// Figures for `/metrics`: `(name, help, value)`.
    fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
}

/// Remembers Fiat Gateway partner tokens until they expire, so each is used once
/// (`docs/design-decisions.md` 23). Backed by the nonce store's backend, so instances sharing a nonce store
/// share it too.
pub trait ReplayGuard: Send + Sync + 'static {
    /// Claims token `id` (valid until `expires_at_ms`): `Fresh` once recorded durably,
    /// `Replayed` when claimed before and not yet expired; `Err` fails closed.
    fn claim(&self, id: [u8; 32], expires_at_ms: u64, now_ms: u64) -> StoreFuture<'_, Claim>;

    /// Forgets the tokens that expired before `now_ms` (called every second on the gateway's
    /// clock; stores whose entries expire by themselves, or are swept with the nonces, do
    /// nothing). The number forgotten. A live token is never forgotten.
    fn sweep(&self, now_ms: u64) -> StoreFuture<'_, u64> {
        let _ = now_ms;
        Box::pin(async { Ok(0) })
    }

    /// Figures for `/metrics`: `(name, help, value)`.
    fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
}

/// Whether a token claim was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First use: recorded.
    Fresh,
    /// Seen before (and not yet expired).
    Replayed,
}

impl Claim {
    /// `Fresh` when this claim was the token's first use.
    pub(crate) fn first_use(first: bool) -> Self {
        if first { Self::Fresh } else { Self::Replayed }
    }
}

/// What a store says about itself when asked for its health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// The store's own clock (Unix ms), for stores on another machine.
    pub clock_ms: Option<u64>,
}

/// A change made to the key store by any instance, as announced to every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// This key was created, changed or deleted: read it again.
    Key(KeyId),
    /// A partner was created, changed or deleted: read the partners again.
    Partner(i64),
    /// Announcements may have been missed (a lost connection): read everything again.
    Resync,
}

/// Announcements of changes, for the in-memory caches.
pub type ChangeFeed = tokio::sync::mpsc::Receiver<Change>;

/// Accounts, keys, Fiat Gateway partners and the audit log. Every key and partner is loaded
/// into memory at start (`docs/design-decisions.md` 13); the store is the durable copy and the source for
/// other instances.
pub trait KeyStore: Send + Sync + 'static {
    /// Every key, secrets decrypted.
    fn load_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>>;
    /// One key by id.
    fn get_key(&self, id: KeyId) -> StoreFuture<'_, Option<KeyRecord>>;
    /// Creates a key; fails with `Conflict` when the public key exists.
    fn insert_key(&self, key: NewKey) -> StoreFuture<'_, KeyId>;
    /// Creates many keys at once (one transaction where the store has them); fails as a
    /// whole with `Conflict` when any public key exists.
    fn insert_keys(&self, keys: Vec<NewKey>) -> StoreFuture<'_, Vec<KeyId>> {
        Box::pin(async move {
            let mut ids = Vec::with_capacity(keys.len());
            for key in keys {
                ids.push(self.insert_key(key).await?);
            }
            Ok(ids)
        })
    }
    /// Changes a key; `Ok(false)` when it does not exist.
    fn update_key(&self, id: KeyId, update: KeyUpdate) -> StoreFuture<'_, bool>;
    /// Deletes a key; `Ok(false)` when it does not exist.
    fn delete_key(&self, id: KeyId) -> StoreFuture<'_, bool>;
    /// Replaces key `old` by a new row (a new id, so a fresh nonce state) in one transaction:
    /// the old row is gone only if the new one is in. `state` is the new row's (enabled,
    /// idle-deactivated, idle anchor ms). `Ok(None)` when `old` does not exist.
    fn replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> StoreFuture<'_, Option<KeyId>>;
    /// Records last-used times (batched by the caller).
    fn touch_keys(&self, used: Vec<(KeyId, u64)>) -> StoreFuture<'_, ()>;

    /// Creates an account; fails with `Conflict` when the name exists.
    fn insert_account(&self, name: String, created_ms: u64) -> StoreFuture<'_, AccountRecord>;
    /// An account by name.
    fn get_account(&self, name: String) -> StoreFuture<'_, Option<AccountRecord>>;
    /// Every account.
    fn list_accounts(&self) -> StoreFuture<'_, Vec<AccountRecord>>;
    /// Replaces an account's TOTP state, failure counter and lock.
    fn update_account(&self, account: AccountRecord) -> StoreFuture<'_, bool>;

    /// An account's console password hash (argon2id PHC string), when it has one.
    fn console_password(&self, account_id: i64) -> StoreFuture<'_, Option<String>>;
    /// Sets (or replaces) an account's console password hash.
    fn set_console_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> StoreFuture<'_, ()>;

    /// Stores an account's one-time console link (the SHA-256 of its token), replacing any
    /// earlier link of the account.
    fn set_console_link(&self, link: NewConsoleLink) -> StoreFuture<'_, ()>;
    /// The account (name) of a console link that has not expired at `now_ms`, with its
    /// expiry.
    fn console_link(
        &self,
        token_sha256: Vec<u8>,
        now_ms: u64,
    ) -> StoreFuture<'_, Option<(String, u64)>>;
    /// Uses a console link: in one transaction, deletes it (when it exists and has not
    /// expired at `now_ms`) and sets its account's console password hash. The account's id,
    /// or `None` when the link was used, replaced or has expired (nothing changed).
    fn redeem_console_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Option<i64>>;

    /// Every Fiat Gateway partner, Enc Keys decrypted.
    fn load_partners(&self) -> StoreFuture<'_, Vec<PartnerRecord>>;
    /// Creates a partner (enabled); fails with `Conflict` when the name or Auth Key exists.
    fn insert_partner(&self, partner: NewPartner) -> StoreFuture<'_, i64>;
    /// Enables or disables a partner; `Ok(false)` when it does not exist.
    fn update_partner_enabled(&self, id: i64, enabled: bool) -> StoreFuture<'_, bool>;
    /// Deletes a partner; `Ok(false)` when it does not exist.
    fn delete_partner(&self, id: i64) -> StoreFuture<'_, bool>;

    /// Appends to the audit log.
    fn audit(&self, entry: AuditEntry) -> StoreFuture<'_, ()>;
    /// The most recent audit entries, newest first.
    fn recent_audit(&self, limit: u32) -> StoreFuture<'_, Vec<AuditEntry>>;

    /// Whether the store answers (`/readyz`). `Err` when it cannot be reached.
    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { self.recent_audit(1).await.map(|_| ()) })
    }

    /// Announcements of changes made by any instance sharing this store, when the store can
    /// make them (`None`: only this instance changes it, as with the embedded store). Each
    /// call opens its own feed; after a lost connection the feed sends [`Change::Resync`].
    fn changes(&self) -> Option<ChangeFeed> {
        None
    }
}
