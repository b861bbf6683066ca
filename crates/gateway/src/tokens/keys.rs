//! One token-signing key: generated in memory, signing, and checking its own signatures.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair,
};

use super::error::{KeyError, TokenError};
use super::jwk::{PublicParams, public_jwk, rsa_public_key_components, thumbprint};

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_LEN: usize = 256;

/// A JWS signature algorithm this gateway can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the default).
    Rs256,
    /// ECDSA on P-256 with SHA-256, fixed-width `r || s` signatures.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// The JOSE name: `RS256`, `ES256` or `EdDSA`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Algorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            Algorithm::EdDsa => &ED25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(super) enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

pub(super) struct KeyMaterial {
    pub(super) private: PrivateKey,
    pub(super) public: PublicParams,
    pub(super) verifier: ParsedPublicKey,
}

/// One token-signing key: key id, algorithm and private key. Cheap to clone (shared).
///
/// `Debug` shows the `kid` and algorithm only; the private key never appears in `Debug`,
/// errors or logs.
#[derive(Clone)]
pub struct SigningKey {
    pub(super) kid: String,
    pub(super) algorithm: Algorithm,
    pub(super) material: Arc<KeyMaterial>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// The RFC 7638 JWK thumbprint (base64url SHA-256), the default `kid`.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.material.public)
    }

    /// The public JWK (`kty`, `use`, `alg`, `kid` and the public parameters) as JSON.
    #[must_use]
    pub fn public_jwk(&self) -> String {
        public_jwk(&self.material.public, self.algorithm.name(), &self.kid)
    }

    /// Generates an RSA 2048 key in memory (the sandbox's key); `kid` is the thumbprint.
    ///
    /// # Errors
    /// [`KeyError::Crypto`] when aws-lc-rs fails.
    pub fn generate_rs256() -> Result<Self, KeyError> {
        let pair =
            RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| KeyError::Crypto)?;
        Self::from_private(PrivateKey::Rsa(pair))
    }

    /// Generates a P-256 key in memory; `kid` is the thumbprint.
    ///
    /// # Errors
    /// [`KeyError::Crypto`] when aws-lc-rs fails.
    pub fn generate_es256() -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| KeyError::Crypto)?;
        Self::from_private(PrivateKey::Ec(pair))
    }

    /// Generates an Ed25519 key in memory; `kid` is the thumbprint.
    ///
    /// # Errors
    /// [`KeyError::Crypto`] when aws-lc-rs fails.
    pub fn generate_ed25519() -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto)?;
        Self::from_private(PrivateKey::Ed(pair))
    }

    /// Replaces the key id (the configured name) when `kid` is `Some`.
    ///
    /// # Errors
    /// [`KeyError::EmptyKid`] for `Some("")`.
    pub fn with_kid(mut self, kid: Option<&str>) -> Result<Self, KeyError> {
        if let Some(kid) = kid {
            if kid.is_empty() {
                return Err(KeyError::EmptyKid);
            }
            kid.clone_into(&mut self.kid);
        }
        Ok(self)
    }

    pub(super) fn from_private(private: PrivateKey) -> Result<Self, KeyError> {
        let (algorithm, public, public_bytes) = match &private {
            PrivateKey::Rsa(pair) => {
                let der = pair.public_key().as_ref();
                let (n, e) = rsa_public_key_components(der).ok_or(KeyError::Unsupported)?;
                if n.len() < MIN_RSA_MODULUS_LEN {
                    return Err(KeyError::Unsupported);
                }
                (Algorithm::Rs256, PublicParams::Rsa { n, e }, der.to_vec())
            }
            PrivateKey::Ec(pair) => {
                let point = pair.public_key().as_ref();
                // Uncompressed SEC 1 point: 0x04 || x || y.
                match point {
                    [0x04, xy @ ..] if xy.len() == 64 => {
                        let (x, y) = xy.split_at(32);
                        (
                            Algorithm::Es256,
                            PublicParams::Ec {
                                x: x.to_vec(),
                                y: y.to_vec(),
                            },
                            point.to_vec(),
                        )
                    }
                    _ => return Err(KeyError::Unsupported),
                }
            }
            PrivateKey::Ed(pair) => {
                let x = pair.public_key().as_ref().to_vec();
                (Algorithm::EdDsa, PublicParams::Ed { x: x.clone() }, x)
            }
        };
        let verifier = ParsedPublicKey::new(algorithm.verification(), public_bytes)
            .map_err(|_| KeyError::Unsupported)?;
        let material = KeyMaterial {
            private,
            public,
            verifier,
        };
        let kid = thumbprint(&material.public);
        Ok(Self {
            kid,
            algorithm,
            material: Arc::new(material),
        })
    }

    /// The key id placed in token headers and the JWKS.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's signature algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        match &self.material.private {
            PrivateKey::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut out)
                    .map_err(|_| TokenError::Signing)?;
                Ok(out)
            }
            PrivateKey::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| TokenError::Signing),
            PrivateKey::Ed(pair) => pair
                .try_sign(message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| TokenError::Signing),
        }
    }

    pub(super) fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.material
            .verifier
            .verify_sig(message, signature)
            .is_ok()
    }
}
