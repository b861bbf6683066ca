//! The gateway's own tokens: issued by `POST /api/v4/jwt`, verified on Fiat Gateway routes
//! that accept them, and published as a JWKS document (`docs/design-decisions.md` 21 and 22).
//!
//! * [`SigningKey`] — one private key (RS256 by default; ES256 and EdDSA as options) with its
//!   `kid`. Loaded from a PEM file ([`SigningKey::load_pem_file`]) or generated in memory for
//!   the sandbox ([`SigningKey::generate_rs256`], kept with
//!   [`SigningKey::write_pkcs8_pem_file`]).
//! * [`TokenIssuer`] — the configured keys (oldest first; the last one signs), the `iss` and
//!   `aud` claims and the lifetime. [`TokenIssuer::issue`] answers `POST /api/v4/jwt`,
//!   [`TokenIssuer::jwks`] is the JWKS document and [`TokenIssuer::verify`] checks a token
//!   presented in `Authorization`.
//!
//! All signing and verification is done by aws-lc-rs (never the `rsa` crate, RUSTSEC-2023-0071).
//! The JWS is built and checked by hand like the partner tokens of `whitebit_auth::fiat`: the
//! verifying key is chosen by the header's `kid`, and the header's `alg` must equal that key's
//! algorithm — a key or an algorithm is never chosen from `alg` alone, so `none` and the
//! HS256-with-the-RSA-public-key confusion are refused.
//!
//! Wiring sketch:
//!
//! ```no_run
//! use std::path::Path;
//! use whitebit_gateway::tokens::{SigningKey, TokenIssuer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::load_pem_file(Path::new("/etc/wbauth/jwt-2025.pem"))?; // kid = thumbprint
//! let issuer = TokenIssuer::new("wbauth", "fiat-gateway", vec![key])?.with_lifetime_ms(60_000);
//! // POST /api/v4/jwt, after the usual checks: 200 with `Cache-Control: no-store`, or on
//! // `Err` the 500 `JwtEndpointError::ServerConfiguration` (`From<TokenError>`).
//! let issued = issuer.issue("account-name", 1_700_000_000_000)?;
//! let body = issued.response_body();
//! // GET /.well-known/jwks.json (or wherever the lead mounts it):
//! let jwks = issuer.jwks();
//! // Fiat Gateway route without `x-auth-key`: 401 `rejection.body()` on `Err`.
//! let verified = issuer.verify(&["Bearer eyJ…"], 1_700_000_001_000);
//! # let _ = (body, jwks, verified);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use whitebit_auth::encoding::hex_encode;
use whitebit_auth::fiat::{bearer_token, split_jws};
use whitebit_auth::json::{self, JsonObject, JsonValue, write_string};
use whitebit_auth::nonce::parse_u64_digits;
use whitebit_auth::{JwtEndpointError, TokenRejection};
use zeroize::Zeroizing;

use crate::store::secret_file;

/// Default token lifetime, in milliseconds.
pub const DEFAULT_LIFETIME_MS: u64 = 60_000;

/// Shortest lifetime [`TokenIssuer::with_lifetime_ms`] accepts (so `exp > iat` in seconds).
pub const MIN_LIFETIME_MS: u64 = 1_000;

/// Default allowance for an `iat` ahead of the verifier's clock, in milliseconds.
pub const DEFAULT_IAT_LEEWAY_MS: u64 = 5_000;

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

/// Why a signing key could not be loaded, generated, written or configured. Never contains
/// key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("token key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The key file was read but holds no usable key.
    #[error("token key file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        #[source]
        source: Box<KeyError>,
    },
    /// The text is not a PEM private key this module reads.
    #[error("not a usable PEM private key: {0}")]
    Pem(&'static str),
    /// The DER inside the PEM is not a supported private key.
    #[error(
        "unsupported or invalid private key (expected RSA of at least 2048 bits, P-256 or Ed25519)"
    )]
    Unsupported,
    /// aws-lc-rs could not generate or serialise a key.
    #[error("key generation or encoding failed")]
    Crypto,
    /// A configured key id is empty.
    #[error("token key id must not be empty")]
    EmptyKid,
    /// Two configured keys share one key id.
    #[error("two token keys share the key id {0:?}")]
    DuplicateKid(String),
}

/// Why [`TokenIssuer::issue`] failed; the endpoint answers 500 "Server configuration issues"
/// for each ([`From<TokenError>`] for [`JwtEndpointError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No signing key is configured.
    #[error("no token-signing key is configured")]
    NoUsableKey,
    /// The signing operation failed.
    #[error("token signing failed")]
    Signing,
    /// The operating system gave no randomness for the `jti`.
    #[error("no randomness for the token id")]
    Randomness,
}

impl From<TokenError> for JwtEndpointError {
    fn from(_: TokenError) -> Self {
        JwtEndpointError::ServerConfiguration
    }
}

enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// Public parameters as the JWK carries them (big-endian, minimal for RSA).
enum PublicParams {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { x: Vec<u8>, y: Vec<u8> },
    Ed { x: Vec<u8> },
}

struct KeyMaterial {
    private: PrivateKey,
    public: PublicParams,
    verifier: ParsedPublicKey,
}

/// One token-signing key: key id, algorithm and private key. Cheap to clone (shared).
///
/// `Debug` shows the `kid` and algorithm only; the private key never appears in `Debug`,
/// errors or logs.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    material: Arc<KeyMaterial>,
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

    /// Reads a private key from PEM text: `PRIVATE KEY` (PKCS#8: RSA → RS256, P-256 → ES256,
    /// Ed25519 → EdDSA), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC 1, P-256). Other
    /// blocks (e.g. `EC PARAMETERS`) are skipped; encrypted keys and several private keys in
    /// one text are refused. `kid` is the thumbprint; see [`SigningKey::with_kid`].
    ///
    /// # Errors
    /// [`KeyError::Pem`] or [`KeyError::Unsupported`].
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem)?;
        let private = match label {
            PemLabel::Pkcs8 => {
                if let Ok(pair) = RsaKeyPair::from_pkcs8(&der) {
                    PrivateKey::Rsa(pair)
                } else if let Ok(pair) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                {
                    PrivateKey::Ec(pair)
                } else if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    PrivateKey::Ed(pair)
                } else {
                    return Err(KeyError::Unsupported);
                }
            }
            PemLabel::Pkcs1 => {
                PrivateKey::Rsa(RsaKeyPair::from_der(&der).map_err(|_| KeyError::Unsupported)?)
            }
            PemLabel::Sec1 => PrivateKey::Ec(
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|_| KeyError::Unsupported)?,
            ),
        };
        Self::from_private(private)
    }

    /// Reads [`SigningKey::from_pem`] from a file; `kid` is the thumbprint.
    ///
    /// # Errors
    /// [`KeyError::Io`] when the file cannot be read, [`KeyError::File`] when its contents
    /// are not a usable key.
    pub fn load_pem_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?);
        let in_file = |source: KeyError| KeyError::File {
            path: path.to_owned(),
            source: Box::new(source),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| in_file(KeyError::Pem("not text")))?;
        Self::from_pem(text).map_err(in_file)
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

    fn from_private(private: PrivateKey) -> Result<Self, KeyError> {
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

    /// The RFC 7638 JWK thumbprint (base64url SHA-256), the default `kid`.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.material.public)
    }

    /// The public JWK (`kty`, `use`, `alg`, `kid` and the public parameters) as JSON.
    #[must_use]
    pub fn public_jwk(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str("{\"kty\":\"");
        out.push_str(match self.material.public {
            PublicParams::Rsa { .. } => "RSA",
            PublicParams::Ec { .. } => "EC",
            PublicParams::Ed { .. } => "OKP",
        });
        out.push_str("\",\"use\":\"sig\",\"alg\":\"");
        out.push_str(self.algorithm.name());
        out.push_str("\",\"kid\":");
        write_string(&self.kid, &mut out);
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match &self.material.public {
            PublicParams::Rsa { n, e } => {
                out.push_str(&format!(",\"n\":\"{}\",\"e\":\"{}\"", b64(n), b64(e)));
            }
            PublicParams::Ec { x, y } => {
                out.push_str(&format!(
                    ",\"crv\":\"P-256\",\"x\":\"{}\",\"y\":\"{}\"",
                    b64(x),
                    b64(y)
                ));
            }
            PublicParams::Ed { x } => {
                out.push_str(&format!(",\"crv\":\"Ed25519\",\"x\":\"{}\"", b64(x)));
            }
        }
        out.push('}');
        out
    }

    /// The private key as PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`), wiped on drop.
    ///
    /// # Errors
    /// [`KeyError::Crypto`] when aws-lc-rs cannot serialise the key.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der: Zeroizing<Vec<u8>> = Zeroizing::new(match &self.material.private {
            PrivateKey::Rsa(pair) => {
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Crypto)?;
                der.as_ref().to_vec()
            }
            PrivateKey::Ec(pair) => pair
                .to_pkcs8v1()
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec(),
            PrivateKey::Ed(pair) => pair
                .to_pkcs8v1()
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec(),
        });
        let b64 = Zeroizing::new(STANDARD.encode(der.as_slice()));
        let mut pem = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
        pem.push_str("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            // Base64 output is ASCII, so every chunk is valid UTF-8.
            pem.push_str(std::str::from_utf8(line).map_err(|_| KeyError::Crypto)?);
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        Ok(pem)
    }

    /// Writes [`SigningKey::to_pkcs8_pem`] to a NEW file created with mode 0600 (on Unix) and
    /// synced; an existing file is never overwritten (the error is then
    /// [`io::ErrorKind::AlreadyExists`] inside [`KeyError::Io`]). The sandbox can keep its
    /// generated key this way and [`SigningKey::load_pem_file`] it on the next start.
    ///
    /// # Errors
    /// [`KeyError::Io`] or [`KeyError::Crypto`].
    pub fn write_pkcs8_pem_file(&self, path: &Path) -> Result<(), KeyError> {
        let pem = self.to_pkcs8_pem()?;
        secret_file::write_new(path, pem.as_bytes()).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
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

    fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.material
            .verifier
            .verify_sig(message, signature)
            .is_ok()
    }
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, base64url.
fn thumbprint(public: &PublicParams) -> String {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let canonical = match public {
        PublicParams::Rsa { n, e } => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
        }
        PublicParams::Ec { x, y } => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(x),
            b64(y)
        ),
        PublicParams::Ed { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
    };
    b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

/// Splits one DER TLV with the expected tag off `input`: `(contents, rest)`.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let count = usize::from(len_byte & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// `n` and `e` (minimal big-endian) of an RFC 8017 `RSAPublicKey`.
fn rsa_public_key_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (seq, rest) = der_take(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, rest) = der_take(seq, 0x02)?;
    let (e, rest) = der_take(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let minimal = |int: &[u8]| {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
        int[start..].to_vec()
    };
    let (n, e) = (minimal(n), minimal(e));
    (!n.is_empty() && !e.is_empty()).then_some((n, e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PemLabel {
    Pkcs8,
    Pkcs1,
    Sec1,
}

/// Finds the one private-key block of a PEM text and decodes its base64 body.
fn decode_pem(text: &str) -> Result<(PemLabel, Zeroizing<Vec<u8>>), KeyError> {
    let mut lines = text.lines().map(str::trim);
    let mut found: Option<(PemLabel, Zeroizing<Vec<u8>>)> = None;
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let kind = match label {
            "PRIVATE KEY" => Some(PemLabel::Pkcs8),
            "RSA PRIVATE KEY" => Some(PemLabel::Pkcs1),
            "EC PRIVATE KEY" => Some(PemLabel::Sec1),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyError::Pem("encrypted private keys are not supported"));
            }
            _ => None,
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`).
                return Err(KeyError::Pem("encrypted private keys are not supported"));
            }
            body.push_str(line);
        }
        if !closed {
            return Err(KeyError::Pem("unterminated PEM block"));
        }
        let Some(kind) = kind else {
            continue;
        };
        if found.is_some() {
            return Err(KeyError::Pem("more than one private key"));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| KeyError::Pem("invalid base64 in the PEM block"))?;
        found = Some((kind, Zeroizing::new(der)));
    }
    found.ok_or(KeyError::Pem("no PRIVATE KEY block"))
}

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

/// A gateway-issued token that passed [`TokenIssuer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIssuedToken {
    /// The `sub` claim: the account the token was issued to.
    pub subject: String,
    /// The `jti` claim (for a replay store, kept until `expires_at_s`).
    pub jti: String,
    /// The `exp` claim, Unix seconds.
    pub expires_at_s: u64,
    /// The `key` claim: the public API key that asked for the token (tokens from
    /// [`TokenIssuer::issue_for_key`]).
    pub key: Option<String>,
    /// The `key_id` claim: that key's store id when the token was issued (a new secret gives
    /// the key a new id).
    pub key_id: Option<u64>,
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
    keys: Vec<SigningKey>,
    issuer: String,
    audience: String,
    lifetime_ms: u64,
    iat_leeway_ms: u64,
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

    /// Verifies a gateway-issued token from the `Authorization` values (one value, with or
    /// without `Bearer `) at `now_ms` (Unix milliseconds).
    ///
    /// Checks, in order, and their reasons:
    /// 1. not exactly one token → [`TokenRejection::Missing`];
    /// 2. not three strict base64url parts, header not a JSON object without duplicates, or a
    ///    `crit` header → [`TokenRejection::Malformed`];
    /// 3. `alg` missing, or not the algorithm of any configured key (`none`, `HS256`, …) →
    ///    [`TokenRejection::AlgorithmNotAllowed`];
    /// 4. `kid` missing or unknown → [`TokenRejection::InvalidSignature`];
    /// 5. `alg` ≠ the algorithm of the key named by `kid` → [`TokenRejection::AlgorithmNotAllowed`];
    /// 6. signature wrong for that key → [`TokenRejection::InvalidSignature`];
    /// 7. claims not a JSON object without duplicates; `iss`, `sub`, `aud`, `iat`, `exp` or
    ///    `jti` missing; `sub` or `jti` not a string; `key` present but not a string or
    ///    `key_id` present but not a non-negative integer → [`TokenRejection::Malformed`];
    /// 8. `iss` ≠ the configured issuer → [`TokenRejection::InvalidSignature`] (a token naming
    ///    another issuer is not one this issuer signed);
    /// 9. `aud` neither the configured audience nor an array containing it →
    ///    [`TokenRejection::InvalidAudience`];
    /// 10. `iat`/`exp` not non-negative integers, or `exp ≤ iat` → [`TokenRejection::InvalidTimes`];
    /// 11. `iat` (seconds) later than now plus the leeway → [`TokenRejection::IssuedInFuture`];
    /// 12. `now ≥ exp` (no leeway) → [`TokenRejection::Expired`].
    ///
    /// Single use and the state of the key named by `key` are not checked here: the Fiat
    /// Gateway route does both (`crate::fiat_route`).
    ///
    /// # Errors
    /// The [`TokenRejection`] of the first failing check; answer 401 with its `body()`.
    pub fn verify(
        &self,
        authorization: &[&str],
        now_ms: u64,
    ) -> Result<VerifiedIssuedToken, TokenRejection> {
        let token = bearer_token(authorization).ok_or(TokenRejection::Missing)?;
        let jws = split_jws(token).ok_or(TokenRejection::Malformed)?;
        let Ok(JsonValue::Object(header)) = json::parse(&jws.header) else {
            return Err(TokenRejection::Malformed);
        };
        if header.get("crit").is_some() {
            return Err(TokenRejection::Malformed);
        }
        let Some(JsonValue::String(alg)) = header.get("alg") else {
            return Err(TokenRejection::AlgorithmNotAllowed);
        };
        if !self.keys.iter().any(|k| k.algorithm.name() == alg) {
            return Err(TokenRejection::AlgorithmNotAllowed);
        }
        let Some(JsonValue::String(kid)) = header.get("kid") else {
            return Err(TokenRejection::InvalidSignature);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == *kid)
            .ok_or(TokenRejection::InvalidSignature)?;
        if key.algorithm.name() != alg {
            return Err(TokenRejection::AlgorithmNotAllowed);
        }
        if !key.verify_signature(jws.signing_input.as_bytes(), &jws.signature) {
            return Err(TokenRejection::InvalidSignature);
        }

        let Ok(JsonValue::Object(claims)) = json::parse(&jws.claims) else {
            return Err(TokenRejection::Malformed);
        };
        if ["iss", "sub", "aud", "iat", "exp", "jti"]
            .iter()
            .any(|name| claims.get(name).is_none())
        {
            return Err(TokenRejection::Malformed);
        }
        let (Some(JsonValue::String(subject)), Some(JsonValue::String(jti))) =
            (claims.get("sub"), claims.get("jti"))
        else {
            return Err(TokenRejection::Malformed);
        };
        let key = match claims.get("key") {
            None => None,
            Some(JsonValue::String(key)) => Some(key.to_string()),
            Some(_) => return Err(TokenRejection::Malformed),
        };
        let key_id = match claims.get("key_id") {
            None => None,
            Some(_) => Some(claim_u64(&claims, "key_id").ok_or(TokenRejection::Malformed)?),
        };
        match claims.get("iss") {
            Some(JsonValue::String(iss)) if *iss == self.issuer => {}
            _ => return Err(TokenRejection::InvalidSignature),
        }
        let audience_ok = match claims.get("aud") {
            Some(JsonValue::String(aud)) => *aud == self.audience,
            Some(JsonValue::Array(auds)) => auds
                .iter()
                .any(|aud| matches!(aud, JsonValue::String(aud) if *aud == self.audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenRejection::InvalidAudience);
        }
        let (Some(iat), Some(exp)) = (claim_u64(&claims, "iat"), claim_u64(&claims, "exp")) else {
            return Err(TokenRejection::InvalidTimes);
        };
        if exp <= iat {
            return Err(TokenRejection::InvalidTimes);
        }
        if iat.saturating_mul(1000) > now_ms.saturating_add(self.iat_leeway_ms) {
            return Err(TokenRejection::IssuedInFuture);
        }
        if now_ms >= exp.saturating_mul(1000) {
            return Err(TokenRejection::Expired);
        }
        Ok(VerifiedIssuedToken {
            subject: subject.to_string(),
            jti: jti.to_string(),
            expires_at_s: exp,
            key,
            key_id,
        })
    }
}

fn claim_u64(obj: &JsonObject<'_>, name: &str) -> Option<u64> {
    match obj.get(name)? {
        JsonValue::Number(text) => parse_u64_digits(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;
    use aws_lc_rs::signature::UnparsedPublicKey;

    const NOW_MS: u64 = 1_700_000_000_123;

    fn rsa_key() -> SigningKey {
        SigningKey::generate_rs256().expect("generate RSA key")
    }

    fn issuer_with(keys: Vec<SigningKey>) -> TokenIssuer {
        TokenIssuer::new("wbauth", "fiat-gateway", keys).expect("issuer")
    }

    fn b64d(part: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(part).expect("base64url")
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    /// Re-signs `header.claims` (JSON texts) with `key`.
    fn forge(key: &SigningKey, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = key.sign(input.as_bytes()).expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn standard_claims(iat: u64, exp: u64) -> String {
        format!(
            r#"{{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":{iat},"exp":{exp},"jti":"00"}}"#
        )
    }

    fn header_for(key: &SigningKey) -> String {
        format!(
            r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
            key.algorithm().name(),
            key.kid()
        )
    }

    fn jwks_keys(jwks: &str) -> Vec<serde_json::Value> {
        let doc: serde_json::Value = serde_json::from_str(jwks).expect("JWKS is JSON");
        doc["keys"].as_array().expect("keys array").clone()
    }

    #[test]
    fn issue_then_verify_round_trip() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let issued = issuer.issue("alice", NOW_MS).expect("issue");
        assert_eq!(issued.expires_at_s, (NOW_MS + 60_000) / 1000);
        assert_eq!(issued.jti.len(), 32);

        let p = parts(&issued.token);
        assert_eq!(p.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&b64d(&p[0])).expect("header");
        assert_eq!(
            header,
            serde_json::json!({"alg":"RS256","typ":"JWT","kid":key.kid()})
        );
        let claims: serde_json::Value = serde_json::from_slice(&b64d(&p[1])).expect("claims");
        assert_eq!(claims["iss"], "wbauth");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["aud"], "fiat-gateway");
        assert_eq!(claims["iat"], NOW_MS / 1000);
        assert_eq!(claims["exp"], issued.expires_at_s);
        assert_eq!(claims["jti"], issued.jti.as_str());
        assert_eq!(b64d(&p[2]).len(), 256);

        let expected = VerifiedIssuedToken {
            subject: "alice".to_owned(),
            jti: issued.jti.clone(),
            expires_at_s: issued.expires_at_s,
            key: None,
            key_id: None,
        };
        let bearer = format!("Bearer {}", issued.token);
        assert_eq!(issuer.verify(&[&bearer], NOW_MS), Ok(expected.clone()));
        assert_eq!(issuer.verify(&[&issued.token], NOW_MS), Ok(expected));

        // jti values differ between tokens.
        let again = issuer.issue("alice", NOW_MS).expect("issue");
        assert_ne!(again.jti, issued.jti);

        // A token for an API key names it.
        let api_key = TokenKey {
            public_key: "pk-\"1\"",
            id: 42,
        };
        let for_key = issuer
            .issue_for_key("alice", api_key, NOW_MS)
            .expect("issue");
        let claims: serde_json::Value =
            serde_json::from_slice(&b64d(&parts(&for_key.token)[1])).expect("claims");
        assert_eq!(
            (claims["key"].as_str(), claims["key_id"].as_u64()),
            (Some("pk-\"1\""), Some(42))
        );
        let verified = issuer.verify(&[&for_key.token], NOW_MS).expect("verify");
        assert_eq!(
            (verified.key.as_deref(), verified.key_id),
            (Some("pk-\"1\""), Some(42))
        );
        for (name, value) in [
            ("key", "7"),
            ("key_id", "\"7\""),
            ("key_id", "-1"),
            ("key_id", "1.5"),
        ] {
            let forged = forge(
                &key,
                &header_for(&key),
                &format!(
                    r#"{{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":{},"exp":{},"jti":"00","{name}":{value}}}"#,
                    NOW_MS / 1000,
                    NOW_MS / 1000 + 60
                ),
            );
            assert_eq!(
                issuer.verify(&[&forged], NOW_MS),
                Err(TokenRejection::Malformed),
                "{name} = {value}"
            );
        }

        let body: serde_json::Value =
            serde_json::from_str(&issued.response_body()).expect("body JSON");
        assert_eq!(body["data"]["token"], issued.token.as_str());
        assert_eq!(body["data"]["expires_at"], issued.expires_at_s);
    }

    #[test]
    fn missing_or_several_authorization_values() {
        let issuer = issuer_with(vec![rsa_key()]);
        let issued = issuer.issue("alice", NOW_MS).expect("issue");
        assert_eq!(issuer.verify(&[], NOW_MS), Err(TokenRejection::Missing));
        assert_eq!(
            issuer.verify(&[&issued.token, &issued.token], NOW_MS),
            Err(TokenRejection::Missing)
        );
        assert_eq!(issuer.verify(&["  "], NOW_MS), Err(TokenRejection::Missing));
        assert_eq!(
            issuer.verify(&["a.b"], NOW_MS),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn expiry_has_no_leeway() {
        let issuer = issuer_with(vec![rsa_key()]);
        let issued = issuer.issue("alice", NOW_MS).expect("issue");
        let exp_ms = issued.expires_at_s * 1000;
        assert!(issuer.verify(&[&issued.token], exp_ms - 1).is_ok());
        assert_eq!(
            issuer.verify(&[&issued.token], exp_ms),
            Err(TokenRejection::Expired)
        );
        assert_eq!(
            issuer.verify(&[&issued.token], exp_ms + 3_600_000),
            Err(TokenRejection::Expired)
        );
    }

    #[test]
    fn lifetime_is_configurable_and_bounded() {
        let issuer = issuer_with(vec![rsa_key()]).with_lifetime_ms(10);
        assert_eq!(issuer.lifetime_ms(), MIN_LIFETIME_MS);
        let issued = issuer.issue("alice", 5_000_999).expect("issue");
        assert_eq!(issued.expires_at_s, 5_001);
        assert!(issuer.verify(&[&issued.token], 5_000_999).is_ok());
    }

    #[test]
    fn iat_in_the_future_and_bad_times() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let now_s = NOW_MS / 1000;
        // Within the 5 s leeway.
        let ok = forge(
            &key,
            &header_for(&key),
            &standard_claims(now_s + 5, now_s + 60),
        );
        assert!(issuer.verify(&[&ok], NOW_MS).is_ok());
        let future = forge(
            &key,
            &header_for(&key),
            &standard_claims(now_s + 6, now_s + 60),
        );
        assert_eq!(
            issuer.verify(&[&future], NOW_MS),
            Err(TokenRejection::IssuedInFuture)
        );
        let inverted = forge(&key, &header_for(&key), &standard_claims(now_s, now_s));
        assert_eq!(
            issuer.verify(&[&inverted], NOW_MS),
            Err(TokenRejection::InvalidTimes)
        );
        let fractional = forge(
            &key,
            &header_for(&key),
            r#"{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":1.5,"exp":9999999999,"jti":"00"}"#,
        );
        assert_eq!(
            issuer.verify(&[&fractional], NOW_MS),
            Err(TokenRejection::InvalidTimes)
        );
        let text_exp = forge(
            &key,
            &header_for(&key),
            r#"{"iss":"wbauth","sub":"alice","aud":"fiat-gateway","iat":1,"exp":"9999999999","jti":"00"}"#,
        );
        assert_eq!(
            issuer.verify(&[&text_exp], NOW_MS),
            Err(TokenRejection::InvalidTimes)
        );
    }

    #[test]
    fn wrong_audience_or_issuer() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let other_aud = TokenIssuer::new("wbauth", "elsewhere", vec![key.clone()]).expect("issuer");
        let token = other_aud.issue("alice", NOW_MS).expect("issue").token;
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidAudience)
        );
        let other_iss =
            TokenIssuer::new("someone", "fiat-gateway", vec![key.clone()]).expect("issuer");
        let token = other_iss.issue("alice", NOW_MS).expect("issue").token;
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );

        let now_s = NOW_MS / 1000;
        let claims_with_aud = |aud: &str| {
            format!(
                r#"{{"iss":"wbauth","sub":"alice","aud":{aud},"iat":{now_s},"exp":{},"jti":"00"}}"#,
                now_s + 60
            )
        };
        let array = forge(
            &key,
            &header_for(&key),
            &claims_with_aud(r#"["other","fiat-gateway"]"#),
        );
        assert!(issuer.verify(&[&array], NOW_MS).is_ok());
        for bad in [r#"["other"]"#, "[]", "null", "1", r#""FIAT-GATEWAY""#] {
            let token = forge(&key, &header_for(&key), &claims_with_aud(bad));
            assert_eq!(
                issuer.verify(&[&token], NOW_MS),
                Err(TokenRejection::InvalidAudience),
                "aud {bad}"
            );
        }
    }

    #[test]
    fn malformed_claims() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let now_s = NOW_MS / 1000;
        let full = standard_claims(now_s, now_s + 60);
        for name in ["iss", "sub", "aud", "iat", "exp", "jti"] {
            let mut value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&full).expect("claims");
            value.remove(name);
            let claims = serde_json::to_string(&value).expect("json");
            let token = forge(&key, &header_for(&key), &claims);
            assert_eq!(
                issuer.verify(&[&token], NOW_MS),
                Err(TokenRejection::Malformed),
                "without {name}"
            );
        }
        let duplicate = full.replacen("{", r#"{"sub":"mallory","#, 1);
        let token = forge(&key, &header_for(&key), &duplicate);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::Malformed)
        );
        let not_object = forge(&key, &header_for(&key), "[1]");
        assert_eq!(
            issuer.verify(&[&not_object], NOW_MS),
            Err(TokenRejection::Malformed)
        );
        let crit = forge(
            &key,
            &format!(
                r#"{{"alg":"RS256","kid":"{}","crit":["exp"],"exp":1}}"#,
                key.kid()
            ),
            &full,
        );
        assert_eq!(
            issuer.verify(&[&crit], NOW_MS),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let issued = issuer.issue("alice", NOW_MS).expect("issue");
        let p = parts(&issued.token);

        // Claims changed (subject swapped), original signature kept.
        let claims = String::from_utf8(b64d(&p[1]))
            .expect("utf8")
            .replace("\"alice\"", "\"mallory\"");
        let token = format!("{}.{}.{}", p[0], URL_SAFE_NO_PAD.encode(claims), p[2]);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );

        // Header changed but still valid (extra member), original signature kept.
        let header = String::from_utf8(b64d(&p[0]))
            .expect("utf8")
            .replace("\"typ\":\"JWT\"", "\"typ\":\"jwt\"");
        let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), p[1], p[2]);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );

        // One signature bit flipped.
        let mut sig = b64d(&p[2]);
        sig[17] ^= 0x01;
        let token = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );

        // Truncated and empty signatures.
        let token = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&sig[..255]));
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );
        let token = format!("{}.{}.", p[0], p[1]);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );

        // Padding or non-base64url characters are not strict compact JWS.
        let token = format!("{}.{}.{}=", p[0], p[1], p[2]);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::Malformed)
        );
        // Header not a JSON object.
        let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[]"), p[1], p[2]);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let now_s = NOW_MS / 1000;
        let claims = standard_claims(now_s, now_s + 60);
        let encode = |header: &str| {
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(&claims)
            )
        };

        // alg none, with and without a signature, with and without a known kid.
        for header in [
            format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid()),
            r#"{"alg":"none"}"#.to_owned(),
            format!(r#"{{"alg":"None","kid":"{}"}}"#, key.kid()),
        ] {
            let input = encode(&header);
            for token in [format!("{input}."), format!("{input}.AAAA")] {
                assert_eq!(
                    issuer.verify(&[&token], NOW_MS),
                    Err(TokenRejection::AlgorithmNotAllowed),
                    "{header}"
                );
            }
        }
        // alg missing or not a string.
        for header in [
            format!(r#"{{"kid":"{}"}}"#, key.kid()),
            format!(r#"{{"alg":null,"kid":"{}"}}"#, key.kid()),
        ] {
            let token = format!("{}.AAAA", encode(&header));
            assert_eq!(
                issuer.verify(&[&token], NOW_MS),
                Err(TokenRejection::AlgorithmNotAllowed)
            );
        }

        // HS256 with the RSA public key (both the DER and the JWKS text) as the HMAC secret.
        let public_der = match &key.material.private {
            PrivateKey::Rsa(pair) => pair.public_key().as_ref().to_vec(),
            _ => unreachable!("RSA key"),
        };
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid());
        let input = encode(&header);
        for secret in [
            public_der,
            issuer.jwks().into_bytes(),
            key.public_jwk().into_bytes(),
        ] {
            let mac = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                input.as_bytes(),
            );
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
            assert_eq!(
                issuer.verify(&[&token], NOW_MS),
                Err(TokenRejection::AlgorithmNotAllowed)
            );
        }

        // An algorithm another configured key uses, but not the one named by kid.
        let ec = SigningKey::generate_es256().expect("EC key");
        let mixed = issuer_with(vec![key.clone(), ec.clone()]);
        let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, key.kid());
        let token = forge(&ec, &header, &claims);
        assert_eq!(
            mixed.verify(&[&token], NOW_MS),
            Err(TokenRejection::AlgorithmNotAllowed)
        );
        // And the RS256 key's real signature under an ES256 header.
        let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, key.kid());
        let token = forge(&key, &header, &claims);
        assert_eq!(
            mixed.verify(&[&token], NOW_MS),
            Err(TokenRejection::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn unknown_or_missing_kid() {
        let key = rsa_key();
        let stranger = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let now_s = NOW_MS / 1000;
        let claims = standard_claims(now_s, now_s + 60);
        // Signed by a key this issuer does not have.
        let token = forge(&stranger, &header_for(&stranger), &claims);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );
        // Signed by a key this issuer has, but no kid.
        let token = forge(&key, r#"{"alg":"RS256","typ":"JWT"}"#, &claims);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );
        // Another key's signature under our kid.
        let token = forge(&stranger, &header_for(&key), &claims);
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );
    }

    #[test]
    fn rotation() {
        let old = rsa_key();
        let new = rsa_key();
        assert_ne!(old.kid(), new.kid());
        let before = issuer_with(vec![old.clone()]);
        let old_token = before.issue("alice", NOW_MS).expect("issue").token;

        let mut rotated = before.clone();
        rotated.push_key(new.clone()).expect("push");
        assert_eq!(rotated.current_key().map(SigningKey::kid), Some(new.kid()));
        let new_token = rotated.issue("alice", NOW_MS).expect("issue").token;
        let header: serde_json::Value =
            serde_json::from_slice(&b64d(&parts(&new_token)[0])).expect("header");
        assert_eq!(header["kid"], new.kid());
        assert!(rotated.verify(&[&old_token], NOW_MS).is_ok());
        assert!(rotated.verify(&[&new_token], NOW_MS).is_ok());
        let kids: Vec<String> = jwks_keys(&rotated.jwks())
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect();
        assert_eq!(kids, [old.kid(), new.kid()]);

        assert!(rotated.remove_key(old.kid()).is_some());
        assert_eq!(
            rotated.verify(&[&old_token], NOW_MS),
            Err(TokenRejection::InvalidSignature)
        );
        assert!(rotated.verify(&[&new_token], NOW_MS).is_ok());
        assert_eq!(jwks_keys(&rotated.jwks()).len(), 1);

        // Duplicate kids are refused.
        let mut dup = issuer_with(vec![new.clone()]);
        assert!(matches!(
            dup.push_key(new.clone()),
            Err(KeyError::DuplicateKid(_))
        ));
        let renamed = old.with_kid(Some(new.kid())).expect("kid");
        assert!(matches!(
            TokenIssuer::new("i", "a", vec![new, renamed]),
            Err(KeyError::DuplicateKid(_))
        ));
    }

    #[test]
    fn no_key_is_a_configuration_error() {
        let issuer = issuer_with(Vec::new());
        assert_eq!(issuer.issue("alice", NOW_MS), Err(TokenError::NoUsableKey));
        assert_eq!(
            JwtEndpointError::from(TokenError::NoUsableKey),
            JwtEndpointError::ServerConfiguration
        );
        assert_eq!(issuer.jwks(), r#"{"keys":[]}"#);
        let token = issuer_with(vec![rsa_key()])
            .issue("alice", NOW_MS)
            .expect("issue")
            .token;
        assert_eq!(
            issuer.verify(&[&token], NOW_MS),
            Err(TokenRejection::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn pem_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwt.pem");
        let key = rsa_key();
        key.write_pkcs8_pem_file(&path).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
        // Never overwritten.
        match key.write_pkcs8_pem_file(&path) {
            Err(KeyError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::AlreadyExists);
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }

        let loaded = SigningKey::load_pem_file(&path).expect("load");
        assert_eq!(loaded.kid(), key.kid());
        assert_eq!(loaded.algorithm(), Algorithm::Rs256);
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        assert_eq!(
            issuer_with(vec![loaded.clone()]).jwks(),
            issuer_with(vec![key.clone()]).jwks()
        );
        // A token signed by the loaded key verifies with the original and vice versa.
        let token = issuer_with(vec![loaded])
            .issue("alice", NOW_MS)
            .expect("issue");
        assert!(
            issuer_with(vec![key.clone()])
                .verify(&[&token.token], NOW_MS)
                .is_ok()
        );

        // Configured kid.
        let named = SigningKey::load_pem_file(&path)
            .expect("load")
            .with_kid(Some("2025-01"))
            .expect("kid");
        assert_eq!(named.kid(), "2025-01");
        assert_eq!(named.thumbprint(), key.kid());
        assert!(matches!(
            named.clone().with_kid(Some("")),
            Err(KeyError::EmptyKid)
        ));
        assert_eq!(named.clone().with_kid(None).expect("kid").kid(), "2025-01");
    }

    #[test]
    fn pem_variants_and_errors() {
        let key = rsa_key();
        let pem = key.to_pkcs8_pem().expect("pem");
        // CRLF line endings and surrounding text are fine.
        let crlf = format!("comment\r\n{}", pem.replace('\n', "\r\n"));
        assert_eq!(SigningKey::from_pem(&crlf).expect("crlf").kid(), key.kid());

        // PKCS#1 "RSA PRIVATE KEY": the RSAPrivateKey inside the PKCS#8 PrivateKeyInfo.
        let pkcs8 = match &key.material.private {
            PrivateKey::Rsa(pair) => {
                let der: Pkcs8V1Der<'static> = pair.as_der().expect("der");
                der.as_ref().to_vec()
            }
            _ => unreachable!("RSA key"),
        };
        let (info, _) = der_take(&pkcs8, 0x30).expect("PrivateKeyInfo");
        let (_, rest) = der_take(info, 0x02).expect("version");
        let (_, rest) = der_take(rest, 0x30).expect("algorithm");
        let (pkcs1, _) = der_take(rest, 0x04).expect("privateKey");
        let pkcs1_pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            STANDARD.encode(pkcs1)
        );
        assert_eq!(
            SigningKey::from_pem(&pkcs1_pem).expect("pkcs1").kid(),
            key.kid()
        );

        for (text, what) in [
            ("", "empty"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "no key",
            ),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "unterminated"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
                "bad base64",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                "legacy encrypted",
            ),
        ] {
            assert!(
                matches!(SigningKey::from_pem(text), Err(KeyError::Pem(_))),
                "{what}"
            );
        }
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(garbage),
            Err(KeyError::Unsupported)
        ));
        let twice = format!("{}{}", pem.as_str(), pem.as_str());
        assert!(matches!(
            SigningKey::from_pem(&twice),
            Err(KeyError::Pem(_))
        ));
        let missing = SigningKey::load_pem_file(Path::new("/nonexistent/wbauth-jwt.pem"));
        assert!(matches!(missing, Err(KeyError::Io { .. })));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let key = rsa_key();
        let pem = key.to_pkcs8_pem().expect("pem");
        let body: String = pem.lines().nth(3).expect("a base64 line").to_owned();
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"));
        assert!(debug.contains(key.kid()));
        assert!(!debug.contains(&body));
        let issuer = issuer_with(vec![key]);
        assert!(!format!("{issuer:?}").contains(&body));
        let issued = issuer.issue("alice", NOW_MS).expect("issue");
        assert!(!format!("{issued:?}").contains(&issued.token));
        // A broken key file names the file and the problem, not its contents.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("broken.pem");
        std::fs::write(&path, pem.replace("-----END PRIVATE KEY-----", "")).expect("write");
        let error = SigningKey::load_pem_file(&path).expect_err("broken");
        let shown = format!("{error} {error:?}");
        assert!(shown.contains("broken.pem"));
        assert!(!shown.contains(&body));
    }

    #[test]
    fn jwks_shape() {
        let key = rsa_key();
        let issuer = issuer_with(vec![key.clone()]);
        let keys = jwks_keys(&issuer.jwks());
        assert_eq!(keys.len(), 1);
        let jwk = keys[0].as_object().expect("object");
        let mut names: Vec<&str> = jwk.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk["e"], "AQAB");
        let n = b64d(jwk["n"].as_str().expect("n"));
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0, "minimal big-endian");
        assert_eq!(n[0] & 0x80, 0x80, "2048-bit modulus");
        // n/e are the key's modulus and exponent (from aws-lc-rs's own DER).
        let der = match &key.material.private {
            PrivateKey::Rsa(pair) => pair.public_key().as_ref().to_vec(),
            _ => unreachable!("RSA key"),
        };
        assert_eq!(
            rsa_public_key_components(&der),
            Some((n, vec![0x01, 0x00, 0x01]))
        );
        // kid is the RFC 7638 thumbprint of exactly these members.
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().expect("e"),
            jwk["n"].as_str().expect("n")
        );
        let digest = digest::digest(&digest::SHA256, canonical.as_bytes());
        assert_eq!(key.kid(), URL_SAFE_NO_PAD.encode(digest.as_ref()));
        assert_eq!(key.kid().len(), 43);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let public = PublicParams::Rsa {
            n: b64d(n),
            e: b64d("AQAB"),
        };
        assert_eq!(
            thumbprint(&public),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// Builds an RFC 8017 RSAPublicKey DER from n and e, independently of the module.
    fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
        fn len(out: &mut Vec<u8>, len: usize) {
            if len < 0x80 {
                out.push(u8::try_from(len).expect("short"));
            } else {
                let bytes: Vec<u8> = len
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|&b| b == 0)
                    .collect();
                out.push(0x80 | u8::try_from(bytes.len()).expect("len of len"));
                out.extend(bytes);
            }
        }
        fn integer(out: &mut Vec<u8>, value: &[u8]) {
            let pad = value[0] & 0x80 != 0;
            out.push(0x02);
            len(out, value.len() + usize::from(pad));
            if pad {
                out.push(0);
            }
            out.extend_from_slice(value);
        }
        let mut body = Vec::new();
        integer(&mut body, n);
        integer(&mut body, e);
        let mut out = vec![0x30];
        len(&mut out, body.len());
        out.extend(body);
        out
    }

    #[test]
    fn rs256_signature_verifies_from_the_published_jwks_alone() {
        let issuer = issuer_with(vec![rsa_key()]);
        let token = issuer.issue("alice", NOW_MS).expect("issue").token;
        let jwks = issuer.jwks();
        drop(issuer);

        let keys = jwks_keys(&jwks);
        let n = b64d(keys[0]["n"].as_str().expect("n"));
        let e = b64d(keys[0]["e"].as_str().expect("e"));
        let (input, sig) = token.rsplit_once('.').expect("signature part");
        let sig = b64d(sig);

        let public =
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa_public_key_der(&n, &e));
        public
            .verify(input.as_bytes(), &sig)
            .expect("standard RS256 signature");
        // Also through the raw components, and a wrong message fails.
        let components = signature::RsaPublicKeyComponents { n: &n, e: &e };
        components
            .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .expect("components verify");
        assert!(public.verify(b"other", &sig).is_err());
    }

    #[test]
    fn es256_and_eddsa_round_trip() {
        let ec = SigningKey::generate_es256().expect("EC");
        let ed = SigningKey::generate_ed25519().expect("Ed25519");
        for key in [ec, ed] {
            let issuer = issuer_with(vec![key.clone()]);
            let issued = issuer.issue("bob", NOW_MS).expect("issue");
            let header: serde_json::Value =
                serde_json::from_slice(&b64d(&parts(&issued.token)[0])).expect("header");
            assert_eq!(header["alg"], key.algorithm().name());
            assert_eq!(
                issuer.verify(&[&issued.token], NOW_MS).map(|v| v.subject),
                Ok("bob".to_owned())
            );
            // PEM round trip keeps the kid.
            let pem = key.to_pkcs8_pem().expect("pem");
            let loaded = SigningKey::from_pem(&pem).expect("load");
            assert_eq!(loaded.kid(), key.kid());
            assert_eq!(loaded.algorithm(), key.algorithm());
            // Independent check from the JWKS.
            let keys = jwks_keys(&issuer.jwks());
            let (input, sig) = issued.token.rsplit_once('.').expect("sig");
            let sig = b64d(sig);
            match key.algorithm() {
                Algorithm::Es256 => {
                    assert_eq!(keys[0]["kty"], "EC");
                    assert_eq!(keys[0]["crv"], "P-256");
                    let mut point = vec![0x04];
                    point.extend(b64d(keys[0]["x"].as_str().expect("x")));
                    point.extend(b64d(keys[0]["y"].as_str().expect("y")));
                    assert_eq!(sig.len(), 64);
                    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                        .verify(input.as_bytes(), &sig)
                        .expect("ES256");
                }
                Algorithm::EdDsa => {
                    assert_eq!(keys[0]["kty"], "OKP");
                    assert_eq!(keys[0]["crv"], "Ed25519");
                    let x = b64d(keys[0]["x"].as_str().expect("x"));
                    UnparsedPublicKey::new(&ED25519, x)
                        .verify(input.as_bytes(), &sig)
                        .expect("EdDSA");
                }
                Algorithm::Rs256 => unreachable!("not generated here"),
            }
        }
    }
}
