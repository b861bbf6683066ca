//! Forms of visitors who are not signed in (sign-in, one-time link), without server-side
//! state: the visitor's cookie holds a random nonce and the form carries an HMAC-SHA256 of it
//! under a key made when the process starts (signed double submit). Another site can neither
//! read the cookie nor compute the token; a restart makes open forms stale (reloaded, they work
//! again).

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq as _;
use whitebit_auth::encoding::hex_encode;

/// What the token is signed for (so it means nothing elsewhere).
const CONTEXT: &[u8] = b"wbauth console form\0";

/// The per-process key of visitors' form tokens.
pub(crate) struct FormKey(hmac::Key);

impl FormKey {
    /// A random key (none without randomness).
    pub(crate) fn random() -> Option<Self> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).ok()?;
        Some(Self(hmac::Key::new(hmac::HMAC_SHA256, bytes.as_ref())))
    }

    /// The token of forms whose cookie holds `nonce`.
    pub(crate) fn token(&self, nonce: &str) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(CONTEXT);
        context.update(nonce.as_bytes());
        hex_encode(context.sign().as_ref())
    }

    /// Whether `presented` is the token of `nonce` (constant time).
    pub(crate) fn matches(&self, nonce: &str, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.token(nonce).as_bytes())))
    }
}

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_their_nonce_and_key() {
        let key = FormKey::random().expect("randomness");
        let nonce = "ab".repeat(32);
        let token = key.token(&nonce);
        assert_eq!(token.len(), 64);
        assert!(key.matches(&nonce, Some(&token)));
        assert!(!key.matches(&"cd".repeat(32), Some(&token)));
        assert!(!key.matches(&nonce, Some(&nonce)));
        assert!(!key.matches(&nonce, None));
        let other = FormKey::random().expect("randomness");
        assert!(!other.matches(&nonce, Some(&token)));
        assert!(!format!("{key:?}").contains(&token));
    }
}
