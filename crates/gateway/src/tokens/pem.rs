//! PEM: reading a private key (PKCS#8, PKCS#1, SEC 1) and writing one as PKCS#8.

use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::error::KeyError;
use super::keys::{PrivateKey, SigningKey};
use wbauth_store::secret_file;

impl SigningKey {
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
    /// [`std::io::ErrorKind::AlreadyExists`] inside [`KeyError::Io`]). The sandbox can keep its
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
