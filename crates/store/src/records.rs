//! What the key store holds: accounts, API keys, partners and the audit log, with secrets
//! that are wiped from memory and never printed.

/// The identity of an API key inside the stores (never the public key string, never reused).
pub type KeyId = u64;

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

/// A one-time console link to store ([`KeyStore::set_console_link`](crate::KeyStore::set_console_link)).
#[derive(Debug, Clone)]
pub struct NewConsoleLink {
    /// The account it sets a console password for.
    pub account_id: i64,
    /// The SHA-256 of the link's token (the token itself is never stored).
    pub token_sha256: Vec<u8>,
    /// Expires at (Unix ms).
    pub expires_ms: u64,
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
