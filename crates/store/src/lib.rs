//! # wbauth-store
//!
//! The gateway's stores behind traits, and their backends side by side; the embedded
//! defaults need nothing installed.
//!
//! - Keys, accounts, partners and the audit log ([`KeyStore`]): one SQL implementation
//!   ([`SqlKeyStore`]) over SQLite ([`SqliteKeyStore`], the default) or PostgreSQL
//!   ([`PgKeyStore`], shared by several instances). Secrets are encrypted at rest under the
//!   [`MasterKey`].
//! - Nonces ([`NonceStore`]): a journal on local disk ([`JournalNonceStore`], the default),
//!   Redis ([`RedisNonceStore`]) or PostgreSQL ([`PgNonceStore`]).
//! - Fiat Gateway partner tokens, each used once ([`ReplayGuard`]): a file beside the journal
//!   ([`ReplayStore`]), or the Redis or PostgreSQL nonce store.
//!
//! Files that hold secrets (the master key's, the admin token's, signing keys) are created and
//! read through [`secret_file`]. The schema migrations are in `crates/store/migrations/`.

mod error;
mod master_key;
mod nonce;
mod records;
mod remote;
mod replay;
pub mod secret_file;
mod sql;
mod tls;
mod traits;

pub use error::StoreError;
pub use master_key::{MASTER_KEY_ENV, MasterKey, MasterKeySource, load_or_create_master_key};
pub use nonce::journal::{Durability, JournalConfig, JournalNonceStore, RecoveryReport};
pub use nonce::postgres::PgNonceStore;
pub use nonce::redis::RedisNonceStore;
pub use records::{
    AccountRecord, AuditEntry, KeyId, KeyRecord, KeyUpdate, NewConsoleLink, NewKey, NewPartner,
    PartnerRecord, SecretBytes, SecretBytesEq, TotpRecord,
};
pub use remote::{RemoteOptions, redact_url, redact_urls_in};
pub use replay::ReplayStore;
pub use sql::{PgKeyStore, SqlKeyStore, SqliteKeyStore};
pub use traits::{
    BoxFuture, Change, ChangeFeed, Claim, KeyStore, NonceAnswer, NonceFuture, NonceStore,
    ReplayGuard, StoreFuture, StoreHealth,
};
