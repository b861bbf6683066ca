//! Fiat Gateway partner tokens: Auth Key + Enc Key → an HS256 JWT with millisecond claims,
//! plus the two headers to send.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use whitebit_auth::fiat::{EncKey, OrderFields, PartnerClaims};

use crate::nonce::unix_ms;

/// A partner's credentials.
#[derive(Clone)]
pub struct FiatCredentials {
    auth_key: String,
    enc_key: EncKey,
}

impl fmt::Debug for FiatCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FiatCredentials")
            .field("auth_key", &self.auth_key)
            .field("enc_key", &"<redacted>")
            .finish()
    }
}

/// A signed partner token and the headers that carry it.
#[derive(Clone)]
pub struct FiatToken {
    /// The JWT.
    pub token: SecretString,
    /// `x-auth-key` header value.
    pub auth_key: String,
    /// Issued at (Unix ms).
    pub iat: u64,
    /// Expires at (Unix ms).
    pub exp: u64,
}

impl fmt::Debug for FiatToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FiatToken")
            .field("token", &"<redacted>")
            .field("auth_key", &self.auth_key)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .finish()
    }
}

impl FiatToken {
    /// The `Authorization` header value: `Bearer <token>`.
    #[must_use]
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }

    /// The headers to send: `Authorization`, `x-auth-key`.
    #[must_use]
    pub fn headers(&self) -> [(&'static str, String); 2] {
        [
            ("Authorization", self.authorization()),
            ("x-auth-key", self.auth_key.clone()),
        ]
    }
}

impl FiatCredentials {
    /// Auth Key (public) and Enc Key (secret).
    pub fn new(auth_key: impl Into<String>, enc_key: &SecretString) -> Self {
        Self {
            auth_key: auth_key.into(),
            enc_key: EncKey::new(enc_key.expose_secret().as_bytes()),
        }
    }

    /// The Auth Key.
    #[must_use]
    pub fn auth_key(&self) -> &str {
        &self.auth_key
    }

    /// A token for `url` and this order, issued at `now_ms`, valid 60 s.
    #[must_use]
    pub fn token_at(&self, url: &str, order: &OrderFields<'_>, now_ms: u64) -> FiatToken {
        let claims = PartnerClaims::new(&self.auth_key, url, order, now_ms, 60_000);
        FiatToken {
            token: SecretString::from(claims.encode(&self.enc_key)),
            auth_key: self.auth_key.clone(),
            iat: claims.iat,
            exp: claims.exp,
        }
    }

    /// A token issued now.
    #[must_use]
    pub fn token(&self, url: &str, order: &OrderFields<'_>) -> FiatToken {
        self.token_at(url, order, unix_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whitebit_auth::fiat::{PartnerTokenRequest, verify_partner_token};

    #[test]
    fn tokens_verify_with_the_protocol_verifier() {
        let secret = SecretString::from("enc-5b1d9c7e2f4a6b8d0e1f3a5c7e9b1d3f");
        let creds = FiatCredentials::new("auth-9a8b7c6d5e4f3a2b1c0d", &secret);
        let order = OrderFields {
            currency: "BTC",
            amount: "0.001",
            order_id: "12345",
        };
        let token = creds.token_at("/api/v1/fiat/deposit", &order, 1_700_000_000_000);
        assert_eq!(token.exp - token.iat, 60_000);
        let authorization = token.authorization();
        let auth = [authorization.as_str()];
        let enc = EncKey::new(b"enc-5b1d9c7e2f4a6b8d0e1f3a5c7e9b1d3f");
        let request = PartnerTokenRequest {
            authorization: &auth,
            x_auth_key: &token.auth_key,
            url: "/api/v1/fiat/deposit",
            order: Some(order),
            now_ms: 1_700_000_030_000,
            iat_leeway_ms: 0,
        };
        let verified = verify_partner_token(&request, |_| Some(&enc)).expect("valid token");
        assert_eq!(verified.expires_at_ms, 1_700_000_060_000);
        assert!(!format!("{token:?}{creds:?}").contains("enc-5b1d"));
    }
}
