//! [`TokenIssuer`]: the configured keys and claims, issuing tokens and the JWKS.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use whitebit_auth::encoding::hex_encode;
use whitebit_auth::json::write_string;

use super::error::{KeyError, TokenError};
use super::keys::SigningKey;

/// Default token lifetime, in milliseconds.
pub const DEFAULT_LIFETIME_MS: u64 = 60_000;

/// Shortest lifetime [`TokenIssuer::with_lifetime_ms`] accepts (so `exp > iat` in seconds).
pub const MIN_LIFETIME_MS: u64 = 1_000;

/// Default allowance for an `iat` ahead of the verifier's clock, in milliseconds.
pub const DEFAULT_IAT_LEEWAY_MS: u64 = 5_000;
/// A freshly issued token: what `POST /api/v4/jwt` answers.
///
/// `Debug` leaves the bearer token out.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// The `exp` claim: Unix seconds (the endpoint's `expires_at`).
    pub expires_at_s: u64,
    /// The `jti` claim (32 lowercase hex digits, 128 random bits).
    pub jti: String,
}

impl IssuedToken {
    /// The 200 body `{"data":{"token":"<JWT>","expires_at":<unix seconds>}}` (serve it with
    /// `Cache-Control: no-store`).
    #[must_use]
    pub fn response_body(&self) -> String {
        let mut out = String::with_capacity(self.token.len() + 48);
        out.push_str("{\"data\":{\"token\":");
        write_string(&self.token, &mut out);
        out.push_str(&format!(",\"expires_at\":{}}}}}", self.expires_at_s));
        out
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_at_s", &self.expires_at_s)
            .field("jti", &self.jti)
            .finish()
    }
}

/// The API key a token is issued for: checked again each time the token is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKey<'a> {
    /// The public API key (`X-TXC-APIKEY`).
    pub public_key: &'a str,
    /// Its store id (changes with its secret).
    pub id: u64,
}

/// Issues and verifies the gateway's own tokens and publishes their JWKS.
///
/// Keys are kept oldest first: [`TokenIssuer::issue`] signs with the last one,
/// [`TokenIssuer::verify`] accepts every configured key (by `kid`), and [`TokenIssuer::jwks`]
/// lists them all. Rotation: push the new key, keep the old one until its last tokens have
/// expired (one lifetime), then remove it — its tokens then fail with "Invalid token signature.".
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    pub(super) keys: Vec<SigningKey>,
    pub(super) issuer: String,
    pub(super) audience: String,
    pub(super) lifetime_ms: u64,
    pub(super) iat_leeway_ms: u64,
}

impl TokenIssuer {
    /// An issuer with the `iss` and `aud` claims and the keys, oldest first; lifetime
    /// [`DEFAULT_LIFETIME_MS`], `iat` leeway [`DEFAULT_IAT_LEEWAY_MS`]. No keys is allowed
    /// (then [`TokenIssuer::issue`] fails with [`TokenError::NoUsableKey`]).
    ///
    /// # Errors
    /// [`KeyError::DuplicateKid`] when two keys share a `kid`.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Vec<SigningKey>,
    ) -> Result<Self, KeyError> {
        let mut this = Self {
            keys: Vec::with_capacity(keys.len()),
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime_ms: DEFAULT_LIFETIME_MS,
            iat_leeway_ms: DEFAULT_IAT_LEEWAY_MS,
        };
        for key in keys {
            this.push_key(key)?;
        }
        Ok(this)
    }

    /// Sets the token lifetime (at least [`MIN_LIFETIME_MS`]; smaller values are raised).
    /// `exp` is `(now_ms + lifetime_ms) / 1000`, so a token never outlives the lifetime.
    #[must_use]
    pub fn with_lifetime_ms(mut self, lifetime_ms: u64) -> Self {
        self.lifetime_ms = lifetime_ms.max(MIN_LIFETIME_MS);
        self
    }

    /// Sets how far `iat` may be ahead of the verifier's clock.
    #[must_use]
    pub fn with_iat_leeway_ms(mut self, leeway_ms: u64) -> Self {
        self.iat_leeway_ms = leeway_ms;
        self
    }

    /// Adds `key` as the newest key: new tokens are signed with it from now on.
    ///
    /// # Errors
    /// [`KeyError::DuplicateKid`] when a configured key already has its `kid`.
    pub fn push_key(&mut self, key: SigningKey) -> Result<(), KeyError> {
        if self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(KeyError::DuplicateKid(key.kid));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Removes the key with this `kid`; tokens it signed no longer verify.
    pub fn remove_key(&mut self, kid: &str) -> Option<SigningKey> {
        let index = self.keys.iter().position(|k| k.kid == kid)?;
        Some(self.keys.remove(index))
    }

    /// The configured keys, oldest first.
    #[must_use]
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key new tokens are signed with (the newest), if any.
    #[must_use]
    pub fn current_key(&self) -> Option<&SigningKey> {
        self.keys.last()
    }

    /// The `iss` claim.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` claim.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The token lifetime in milliseconds.
    #[must_use]
    pub fn lifetime_ms(&self) -> u64 {
        self.lifetime_ms
    }

    /// Issues a token for the account `subject` at `now_ms` (Unix milliseconds).
    ///
    /// Header `{"alg":…,"typ":"JWT","kid":…}`; claims `iss`, `sub`, `aud`, `iat`, `exp` (Unix
    /// seconds), `jti` (128 random bits as hex).
    ///
    /// # Errors
    /// [`TokenError::NoUsableKey`] without keys; [`TokenError::Signing`] or
    /// [`TokenError::Randomness`] when the platform fails. All answer 500.
    pub fn issue(&self, subject: &str, now_ms: u64) -> Result<IssuedToken, TokenError> {
        self.issue_inner(subject, None, now_ms)
    }

    /// Issues a token for the account `subject` on behalf of its API key `api_key`, which
    /// the token names in its `key` and `key_id` claims, so that the token can be refused once
    /// that key is disabled, deleted or given a new secret. What `POST /api/v4/jwt` answers.
    ///
    /// # Errors
    /// As [`TokenIssuer::issue`].
    pub fn issue_for_key(
        &self,
        subject: &str,
        api_key: TokenKey<'_>,
        now_ms: u64,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_inner(subject, Some(api_key), now_ms)
    }

    fn issue_inner(
        &self,
        subject: &str,
        api_key: Option<TokenKey<'_>>,
        now_ms: u64,
    ) -> Result<IssuedToken, TokenError> {
        let key = self.current_key().ok_or(TokenError::NoUsableKey)?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| TokenError::Randomness)?;
        let jti = hex_encode(&random);
        let iat_s = now_ms / 1000;
        let expires_at_s = now_ms.saturating_add(self.lifetime_ms) / 1000;

        let mut header = String::with_capacity(64 + key.kid.len());
        header.push_str("{\"alg\":\"");
        header.push_str(key.algorithm.name());
        header.push_str("\",\"typ\":\"JWT\",\"kid\":");
        write_string(&key.kid, &mut header);
        header.push('}');

        let mut claims = String::with_capacity(160 + subject.len());
        claims.push_str("{\"iss\":");
        write_string(&self.issuer, &mut claims);
        claims.push_str(",\"sub\":");
        write_string(subject, &mut claims);
        claims.push_str(",\"aud\":");
        write_string(&self.audience, &mut claims);
        claims.push_str(&format!(
            ",\"iat\":{iat_s},\"exp\":{expires_at_s},\"jti\":\"{jti}\""
        ));
        if let Some(api_key) = api_key {
            claims.push_str(",\"key\":");
            write_string(api_key.public_key, &mut claims);
            claims.push_str(&format!(",\"key_id\":{}", api_key.id));
        }
        claims.push('}');

        let mut token = String::with_capacity(1024);
        token.push_str(&URL_SAFE_NO_PAD.encode(header.as_bytes()));
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.as_bytes()));
        let signature = key.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(IssuedToken {
            token,
            expires_at_s,
            jti,
        })
    }

    /// The JWKS document `{"keys":[…]}` with every configured key's public JWK, oldest first.
    #[must_use]
    pub fn jwks(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(SigningKey::public_jwk).collect();
        format!("{{\"keys\":[{}]}}", keys.join(","))
    }
}
