//! # wbauth-store
//!
//! The gateway's stores behind traits: keys and accounts, and nonces. Backends live side by
//! side in this crate; the embedded defaults need nothing installed.

mod console_sql;
pub mod journal;
pub mod pg;
pub mod pg_nonce;
pub mod postgres;
pub mod redis;
pub mod replay;
mod rows;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use whitebit_auth::{ApiError, NonceMode};

/// A boxed future, so the store traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store could not do its job: the request must fail closed (503).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// IO on the store's files or connection failed.
    #[error("store IO error: {0}")]
    Io(#[from] std::io::Error),
    /// The store is unreachable or shutting down.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's data is not what this version understands.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    /// A unique name or key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The master key cannot decrypt the stored secrets.
    #[error("wrong master key: {0}")]
    WrongMasterKey(String),
    /// The store answers but is not set up as the gateway requires (e.g. a Redis without
    /// `appendonly yes` and `appendfsync always`, `docs/design-decisions.md` 19).
    #[error("store refused: {0}")]
    Refused(String),
}

/// The identity of an API key inside the stores (never the public key string, never reused).
pub type KeyId = u64;

/// Records accepted nonces durably and applies the rules of `whitebit_auth::nonce`.
///
/// `consume` answers `Ok(Ok(()))` only once the nonce is recorded so that no crash can let
/// it be accepted again; `Ok(Err(row))` is a rule rejection (row 16), `Err` a store failure.
pub trait NonceStore: Send + Sync + 'static {
    /// A read-only check (what the rate limiter asks before counting a request).
    fn check(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Result<(), ApiError>, StoreError>>;

    /// Checks and, when accepted, durably records the nonce.
    fn consume(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Result<(), ApiError>, StoreError>>;

    /// Makes everything accepted so far durable (called on shutdown).
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Forgets window-mode entries that expired before `now_ms` (called every second; stores
    /// whose entries expire by themselves do nothing). The number forgotten.
    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        let _ = now_ms;
        Box::pin(async { Ok(0) })
    }

    /// Whether the store answers, and its clock when it has one of its own (`/readyz`
    /// compares it with the gateway's, `docs/design-decisions.md` 15). `Err` when it cannot be reached.
    fn health(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>> {
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
    fn claim(
        &self,
        id: [u8; 32],
        expires_at_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<replay::Claim, StoreError>>;

    /// Forgets the tokens that expired before `now_ms` (called every second on the gateway's
    /// clock; stores whose entries expire by themselves, or are swept with the nonces, do
    /// nothing). The number forgotten. A live token is never forgotten.
    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        let _ = now_ms;
        Box::pin(async { Ok(0) })
    }

    /// Figures for `/metrics`: `(name, help, value)`.
    fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
}

/// What a store says about itself when asked for its health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// The store's own clock (Unix ms), for stores on another machine.
    pub clock_ms: Option<u64>,
}

/// Settings of the networked stores (`[store]`): pool size and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Connections per store and instance.
    pub pool_size: u32,
    /// Giving up on (re)connecting after this long.
    pub connect_timeout: std::time::Duration,
    /// Giving up on one operation after this long: the request fails closed (503).
    pub op_timeout: std::time::Duration,
    /// Accept a Redis without `appendonly yes` + `appendfsync always` (`docs/design-decisions.md` 19).
    pub allow_non_durable: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: std::time::Duration::from_secs(2),
            op_timeout: std::time::Duration::from_secs(1),
            allow_non_durable: false,
        }
    }
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

/// What to do about a store URL that does not parse.
pub const PERCENT_ENCODE: &str = "check it; in the user name and password, write / ? # @ : and % \
     as %2F %3F %23 %40 %3A and %25";

/// Hides the credentials of a store URL (`postgres://user:secret@host/db` →
/// `postgres://user:***@host/db`), for logs and errors. The URL is read with a URL parser;
/// sensitive query parameters (`?password=…`, `sslpassword`, anything naming a secret or a
/// token) lose their values too. When the parser cannot tell where the user information ends
/// — it fails, or an `@` is left in the path (a password holding an unencoded `/`, `?` or `#`)
/// — everything between `://` and the last `@` is hidden. Text with an `@` but no `://` loses
/// everything before its last `@`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        };
    };
    if let Some(parsed) = unambiguous(url) {
        let user = parsed.username();
        let userinfo = match (user.is_empty(), parsed.password().is_some()) {
            (_, true) => format!("{user}:***@"),
            (false, false) => format!("{user}@"),
            (true, false) => String::new(),
        };
        let host_and_path = &parsed[url::Position::BeforeHost..url::Position::AfterPath];
        let query = parsed
            .query()
            .map(|q| format!("?{}", redact_query(q)))
            .unwrap_or_default();
        return format!("{}://{userinfo}{host_and_path}{query}", parsed.scheme());
    }
    match rest.rsplit_once('@') {
        Some((_, after)) => {
            let (host_and_path, query) = after.split_once('?').unwrap_or((after, ""));
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", redact_query(query))
            };
            format!("{scheme}://***@{host_and_path}{query}")
        }
        None => {
            let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
            if query.is_empty() {
                url.to_owned()
            } else {
                format!("{scheme}://{head}?{}", redact_query(query))
            }
        }
    }
}

/// The URL as parsed, when the parser's idea of its user information can be trusted: it
/// parses, has a host, and no `@` is left after the user information.
fn unambiguous(text: &str) -> Option<url::Url> {
    let parsed = url::Url::parse(text).ok()?;
    let after_host = &parsed[url::Position::BeforeHost..];
    (parsed.has_host() && !after_host.contains('@')).then_some(parsed)
}

/// `a=1&password=x` → `a=1&password=***`.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if sensitive_parameter(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn sensitive_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

/// The secret parts of a store URL as they may appear in a library's message (as written and
/// percent-decoded): its password, or everything after the user name when the URL is
/// ambiguous, and the values of sensitive query parameters. For scrubbing messages that
/// might quote the URL.
#[must_use]
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let decoded = |text: &str| {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    let mut push = |text: &str| {
        if !text.is_empty() {
            secrets.push(text.to_owned());
            if let Some(plain) = decoded(text).filter(|p| p != text && !p.is_empty()) {
                secrets.push(plain);
            }
        }
    };
    let query = match unambiguous(url) {
        Some(parsed) => {
            if let Some(password) = parsed.password() {
                push(password);
            }
            parsed.query().map(str::to_owned)
        }
        None => {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            let after = match rest.rsplit_once('@') {
                Some((userinfo, after)) => {
                    // The whole user information: where the user name ends is not known.
                    push(userinfo);
                    if let Some((_, password)) = userinfo.split_once(':') {
                        push(password);
                    }
                    after
                }
                None => rest,
            };
            after.split_once('?').map(|(_, q)| q.to_owned())
        }
    };
    for pair in query.as_deref().unwrap_or("").split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && sensitive_parameter(name)
        {
            push(value);
        }
    }
    secrets
}

/// `text` with every secret of `url` ([`url_secrets`]) replaced by `***`.
#[must_use]
pub fn scrub_url_secrets(text: &str, url: &str) -> String {
    let mut secrets = url_secrets(url);
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

/// `text` with every URL in it passed through [`redact_url`]: a safety net for messages that
/// may quote a URL (a configuration error, a library's error).
#[must_use]
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '`' | '\'' | '<' | '>'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Secret bytes that are wiped from memory when dropped and never printed.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes (keep the borrow short; never log them).
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// An account (a key holder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Created at (Unix ms).
    pub created_ms: u64,
    /// TOTP state, when 2FA is enrolled or being enrolled.
    pub totp: Option<TotpRecord>,
    /// Consecutive wrong codes / sign-ins.
    pub failed_attempts: u32,
    /// Locked until (Unix ms), after too many failures.
    pub locked_until_ms: Option<u64>,
}

/// An account's TOTP state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The shared secret (encrypted at rest).
    pub secret: SecretBytesEq,
    /// Confirmed with a code: 2FA is on.
    pub confirmed: bool,
    /// The last time step a code was accepted for (codes are single use).
    pub last_step: Option<u64>,
}

/// [`SecretBytes`] with constant-time equality, for records that are compared in tests.
#[derive(Clone, Debug)]
pub struct SecretBytesEq(pub SecretBytes);

impl PartialEq for SecretBytesEq {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.expose().ct_eq(other.0.expose()).into()
    }
}

impl Eq for SecretBytesEq {}

/// An API key as stored (secret decrypted in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Store id (also the nonce store's key id; never reused).
    pub id: KeyId,
    /// The public key (`X-TXC-APIKEY`).
    pub public_key: String,
    /// Owner.
    pub account_id: i64,
    /// Owner's name.
    pub account_name: String,
    /// Key kind (a configured endpoint group).
    pub kind: String,
    /// The API secret (HMAC key), encrypted at rest.
    pub secret: SecretBytesEq,
    /// Not disabled by an operator.
    pub enabled: bool,
    /// Deactivated after the idle period (stored, `docs/design-decisions.md` 16).
    pub idle_deactivated: bool,
    /// Trusted IPs / CIDR blocks (empty: any address).
    pub ips: Vec<String>,
    /// Endpoint allow-list (empty: every endpoint of the kind).
    pub endpoints: Vec<String>,
    /// Created at (Unix ms).
    pub created_ms: u64,
    /// When the idle clock (re)started: creation or the last `enable` (Unix ms).
    pub idle_anchor_ms: u64,
    /// Last accepted request (Unix ms).
    pub last_used_ms: Option<u64>,
}

/// A key to create (the store assigns the id).
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The public key.
    pub public_key: String,
    /// Owner.
    pub account_id: i64,
    /// Kind.
    pub kind: String,
    /// The API secret.
    pub secret: SecretBytes,
    /// Trusted IPs.
    pub ips: Vec<String>,
    /// Endpoint allow-list.
    pub endpoints: Vec<String>,
    /// Now (Unix ms).
    pub created_ms: u64,
}

/// A change to a key's rules; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Idle-deactivated flag.
    pub idle_deactivated: Option<bool>,
    /// Restart the idle clock at this time.
    pub idle_anchor_ms: Option<u64>,
    /// New trusted IPs.
    pub ips: Option<Vec<String>>,
    /// New endpoint allow-list.
    pub endpoints: Option<Vec<String>>,
    /// New secret (rotation).
    pub secret: Option<SecretBytes>,
}

/// A Fiat Gateway partner as stored (Enc Key decrypted in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecord {
    /// Store id (never reused).
    pub id: i64,
    /// Unique name (sent upstream as `X-Auth-Partner`).
    pub name: String,
    /// The Auth Key (`x-auth-key`, the `key` claim); unique.
    pub auth_key: String,
    /// The Enc Key (the HS256 key), encrypted at rest.
    pub enc_key: SecretBytesEq,
    /// Not disabled by an operator.
    pub enabled: bool,
    /// Created at (Unix ms).
    pub created_ms: u64,
}

/// A partner to create (the store assigns the id; it starts enabled).
#[derive(Debug, Clone)]
pub struct NewPartner {
    /// Unique name.
    pub name: String,
    /// The Auth Key.
    pub auth_key: String,
    /// The Enc Key.
    pub enc_key: SecretBytes,
    /// Now (Unix ms).
    pub created_ms: u64,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (Unix ms).
    pub at_ms: u64,
    /// Who (operator, console user, `cli`).
    pub actor: String,
    /// What (`key.create`, `key.disable`, `account.2fa.enrol`, …).
    pub action: String,
    /// On what and how (never a secret).
    pub detail: String,
}

/// Accounts, keys, Fiat Gateway partners and the audit log. Every key and partner is loaded
/// into memory at start (`docs/design-decisions.md` 13); the store is the durable copy and the source for
/// other instances.
pub trait KeyStore: Send + Sync + 'static {
    /// Every key, secrets decrypted.
    fn load_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>>;
    /// One key by id.
    fn get_key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<KeyRecord>, StoreError>>;
    /// Creates a key; fails with `Conflict` when the public key exists.
    fn insert_key(&self, key: NewKey) -> BoxFuture<'_, Result<KeyId, StoreError>>;
    /// Creates many keys at once (one transaction where the store has them); fails as a
    /// whole with `Conflict` when any public key exists.
    fn insert_keys(&self, keys: Vec<NewKey>) -> BoxFuture<'_, Result<Vec<KeyId>, StoreError>> {
        Box::pin(async move {
            let mut ids = Vec::with_capacity(keys.len());
            for key in keys {
                ids.push(self.insert_key(key).await?);
            }
            Ok(ids)
        })
    }
    /// Changes a key; `Ok(false)` when it does not exist.
    fn update_key(&self, id: KeyId, update: KeyUpdate) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Deletes a key; `Ok(false)` when it does not exist.
    fn delete_key(&self, id: KeyId) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Replaces key `old` by a new row (a new id, so a fresh nonce state) in one transaction:
    /// the old row is gone only if the new one is in. `state` is the new row's (enabled,
    /// idle-deactivated, idle anchor ms). `Ok(None)` when `old` does not exist.
    fn replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> BoxFuture<'_, Result<Option<KeyId>, StoreError>>;
    /// Records last-used times (batched by the caller).
    fn touch_keys(&self, used: Vec<(KeyId, u64)>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Creates an account; fails with `Conflict` when the name exists.
    fn insert_account(
        &self,
        name: String,
        created_ms: u64,
    ) -> BoxFuture<'_, Result<AccountRecord, StoreError>>;
    /// An account by name.
    fn get_account(&self, name: String)
    -> BoxFuture<'_, Result<Option<AccountRecord>, StoreError>>;
    /// Every account.
    fn list_accounts(&self) -> BoxFuture<'_, Result<Vec<AccountRecord>, StoreError>>;
    /// Replaces an account's TOTP state, failure counter and lock.
    fn update_account(&self, account: AccountRecord) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// An account's console password hash (argon2id PHC string), when it has one.
    fn console_password(
        &self,
        account_id: i64,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>>;
    /// Sets (or replaces) an account's console password hash.
    fn set_console_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Stores an account's one-time console link (the SHA-256 of its token), replacing any
    /// earlier link of the account.
    fn set_console_link(
        &self,
        account_id: i64,
        token_sha256: Vec<u8>,
        expires_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The account (name) of a console link that has not expired at `now_ms`, with its
    /// expiry.
    fn console_link(
        &self,
        token_sha256: Vec<u8>,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<(String, u64)>, StoreError>>;
    /// Uses a console link: in one transaction, deletes it (when it exists and has not
    /// expired at `now_ms`) and sets its account's console password hash. The account's id,
    /// or `None` when the link was used, replaced or has expired (nothing changed).
    fn redeem_console_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;

    /// Every Fiat Gateway partner, Enc Keys decrypted.
    fn load_partners(&self) -> BoxFuture<'_, Result<Vec<PartnerRecord>, StoreError>>;
    /// Creates a partner (enabled); fails with `Conflict` when the name or Auth Key exists.
    fn insert_partner(&self, partner: NewPartner) -> BoxFuture<'_, Result<i64, StoreError>>;
    /// Enables or disables a partner; `Ok(false)` when it does not exist.
    fn update_partner_enabled(
        &self,
        id: i64,
        enabled: bool,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Deletes a partner; `Ok(false)` when it does not exist.
    fn delete_partner(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Appends to the audit log.
    fn audit(&self, entry: AuditEntry) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The most recent audit entries, newest first.
    fn recent_audit(&self, limit: u32) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>>;

    /// Whether the store answers (`/readyz`). `Err` when it cannot be reached.
    fn health(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { self.recent_audit(1).await.map(|_| ()) })
    }

    /// Announcements of changes made by any instance sharing this store, when the store can
    /// make them (`None`: only this instance changes it, as with the embedded store). Each
    /// call opens its own feed; after a lost connection the feed sends [`Change::Resync`].
    fn changes(&self) -> Option<ChangeFeed> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://wb:s3cret@db:5432/keys?sslmode=require"),
            "postgres://wb:***@db:5432/keys?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache/0"),
            "redis://:***@cache/0"
        );
        assert_eq!(redact_url("redis://user@cache/0"), "redis://user@cache/0");
        assert_eq!(redact_url("redis://cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(redact_url("sqlite"), "sqlite");
        assert_eq!(redact_url("embedded"), "embedded");
        // A password with a `/` (unencoded): the parser cannot read it; all of it is hidden.
        assert_eq!(
            redact_url("redis://:S3cret/Pass@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://wb:a/b?c#d@db/keys"),
            "postgres://***@db/keys"
        );
        // Encoded, it parses and is hidden by the parser's reading.
        assert_eq!(
            redact_url("redis://:S3cret%2FPass@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        // An `@` after the host may end a password: hidden up to it.
        assert_eq!(redact_url("postgres://db/a@b"), "postgres://***@b");
        // Passwords in the query.
        assert_eq!(
            redact_url("postgres://db/keys?user=wb&password=s3cret&sslmode=require"),
            "postgres://db/keys?user=wb&password=***&sslmode=require"
        );
        assert_eq!(redact_url("wb:s3cret@db/keys"), "***@db/keys");
        for url in [
            "postgres://wb:s3cret@db:5432/keys",
            "redis://:s3cret/x@cache/0",
            "rediss://u:s3cret%40x@cache/0",
            "postgres://db/k?sslpassword=s3cret",
            "mysql://root:s3cret@db",
        ] {
            assert!(!redact_url(url).contains("s3cret"), "{url}");
        }
    }

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let url = "redis://:S3cret/Pass@127.0.0.1:1/0";
        let message = format!("cannot use {url}: password S3cret/Pass refused");
        let scrubbed = super::scrub_url_secrets(&message, url);
        assert!(!scrubbed.contains("S3cret"), "{scrubbed}");
        let encoded = "redis://u:p%40ss%2Fw0rd@cache/0";
        let scrubbed = super::scrub_url_secrets("auth p@ss/w0rd failed", encoded);
        assert_eq!(scrubbed, "auth *** failed");
        let text = super::redact_urls_in(
            "unknown variant `postgres://wb:S3cret@db/x`, expected `a`; see \"redis://:p/q@h/0\"",
        );
        assert_eq!(
            text,
            "unknown variant `postgres://wb:***@db/x`, expected `a`; see \"redis://***@h/0\""
        );
    }
}
