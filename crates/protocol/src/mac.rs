//! The MAC layer: HMAC-SHA512 over the payload string, behind a tiny trait.
//!
//! The keyed HMAC state (inner and outer pads already absorbed) is computed once per key and
//! cloned for every message, which saves re-deriving it on each verification. A [`Signature`]
//! has no `==`: the only comparison that compiles is the constant-time [`Signature::ct_eq`].

use core::fmt;

use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha512;
use subtle::ConstantTimeEq;

use crate::encoding::{hex_decode_array, hex_encode};

/// Length in bytes of an HMAC-SHA512 tag.
pub const SIGNATURE_LEN: usize = 64;

/// A 64-byte HMAC-SHA512 tag, as carried hex-encoded in `X-TXC-SIGNATURE`.
///
/// Deliberately not `PartialEq`: compare with [`Signature::ct_eq`].
#[derive(Clone)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps raw tag bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses 128 hex digits of either case; `None` for any other length or character.
    #[must_use]
    pub fn from_hex(text: &[u8]) -> Option<Self> {
        hex_decode_array(text).map(Self)
    }

    /// Lowercase hex, the canonical header form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// The raw tag bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    /// Constant-time equality.
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(<redacted>)")
    }
}

/// A keyed MAC over payload strings. The gateway and the client only ever talk to this
/// trait, so another implementation (a hardware module, another crypto library) can be
/// dropped in.
pub trait PayloadMac: Send + Sync {
    /// Computes the tag of `message`.
    fn sign(&self, message: &[u8]) -> Signature;

    /// Checks `tag` against the tag of `message` in constant time. A tag of the wrong
    /// length (a truncated tag, say) is rejected after the same work.
    fn verify_tag(&self, message: &[u8], tag: &[u8]) -> bool {
        let expected = self.sign(message);
        if tag.len() != SIGNATURE_LEN {
            return false;
        }
        expected.0[..].ct_eq(tag).into()
    }
}

/// HMAC-SHA512 with the keyed state cached: construct once per secret, use for any number
/// of messages from any number of threads.
///
/// The keyed state is as sensitive as the secret (it signs like it): it is wiped from memory
/// when dropped — its hash states and block buffer zeroize themselves (the `zeroize`
/// features of `hmac` and `sha2`), as do the copies made for each message.
#[derive(Clone)]
pub struct HmacSha512Key {
    keyed: Hmac<Sha512>,
}

// Every part of `Hmac<Sha512>` zeroizes itself on drop (see the test
// `keyed_states_are_wiped_on_drop`).
impl zeroize::ZeroizeOnDrop for HmacSha512Key {}

impl HmacSha512Key {
    /// Derives the keyed state from a secret (any length; HMAC hashes long keys).
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of every length, so this cannot fail; fall back to the
        // empty key rather than panic if a future version ever changed that.
        let keyed = <Hmac<Sha512> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| <Hmac<Sha512> as KeyInit>::new(&Default::default()));
        Self { keyed }
    }

    /// A key nobody holds, used to spend the same work on unknown API keys as on known
    /// ones (`docs/design-decisions.md` 13).
    #[must_use]
    pub fn dummy() -> Self {
        Self::new(b"whitebit-auth dummy key for unknown api keys")
    }
}

impl PayloadMac for HmacSha512Key {
    fn sign(&self, message: &[u8]) -> Signature {
        let mut mac = self.keyed.clone();
        mac.update(message);
        let out = mac.finalize().into_bytes();
        let mut bytes = [0u8; SIGNATURE_LEN];
        bytes.copy_from_slice(&out);
        Signature(bytes)
    }
}

impl fmt::Debug for HmacSha512Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha512Key(<redacted>)")
    }
}

/// Verifies an HMAC-SHA512 `tag` of `message` under `key`, in constant time.
///
/// This is the same code path the request verifier uses ([`PayloadMac::verify_tag`]);
/// known-answer suites (RFC 4231, Wycheproof) run through it. Only full 64-byte tags are
/// accepted.
#[must_use]
pub fn verify_mac(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    HmacSha512Key::new(key).verify_tag(message, tag)
}

/// Computes `hex(HMAC-SHA512(payload, secret))`, the value of `X-TXC-SIGNATURE`.
#[must_use]
pub fn sign_payload(secret: &[u8], payload: &[u8]) -> String {
    HmacSha512Key::new(secret).sign(payload).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        let tag = crate::encoding::hex_decode(
            b"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        )
        .unwrap_or_default();
        assert!(verify_mac(b"Jefe", b"what do ya want for nothing?", &tag));
        assert!(!verify_mac(b"Jeff", b"what do ya want for nothing?", &tag));
        assert!(!verify_mac(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag[..32]
        ));
    }

    /// The keyed HMAC state of a secret (held for as long as the key is in memory, in the
    /// gateway's key cache and in the client) is wiped when dropped: its inner and outer hash
    /// states and its block buffer each zeroize themselves (the `zeroize` features of `hmac`
    /// and `sha2`), and so do the per-message copies `sign` makes. Checked at compile time:
    /// without those features this test does not build.
    #[test]
    fn keyed_states_are_wiped_on_drop() {
        use hmac::digest::block_api::{Buffer, EagerHash};
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<<Sha512 as EagerHash>::Core>();
        wiped_on_drop::<Buffer<hmac::block_api::HmacCore<Sha512>>>();
        wiped_on_drop::<<sha2::Sha256 as EagerHash>::Core>();
        wiped_on_drop::<Buffer<hmac::block_api::HmacCore<sha2::Sha256>>>();
        wiped_on_drop::<HmacSha512Key>();
        wiped_on_drop::<crate::fiat::EncKey>();
        // Dropping one (a clone, as `sign` does per message) is fine and leaves the original
        // usable.
        let key = HmacSha512Key::new(b"secret");
        let copy = key.clone();
        drop(copy);
        assert_eq!(key.sign(b"m").to_hex(), sign_payload(b"secret", b"m"));
    }

    #[test]
    fn debug_never_shows_material() {
        let key = HmacSha512Key::new(b"super-secret");
        assert_eq!(format!("{key:?}"), "HmacSha512Key(<redacted>)");
        let sig = key.sign(b"x");
        assert_eq!(format!("{sig:?}"), "Signature(<redacted>)");
    }
}
