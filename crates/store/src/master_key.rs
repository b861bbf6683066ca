//! The master key: the 32-byte key that encrypts every secret at rest (API secrets, TOTP
//! secrets, partners' Enc Keys, the key-check value; `docs/design-decisions.md` 18).
//!
//! `WBAUTH_MASTER_KEY` wins; otherwise `master.key` in the data directory is read, or
//! generated (mode 0600) on first start. Encrypted values are
//! `nonce (24 random bytes) || XChaCha20-Poly1305 ciphertext || tag`; the associated data names
//! the row, so a value moved to another row no longer decrypts.

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use chacha20poly1305::{AeadInOut as _, KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::io_error;
use crate::secret_file::{Unusable, create_private_dir, open_private, publish_new};
use crate::{SecretBytes, StoreError};

/// The environment variable that holds the master key (64 hex characters).
pub const MASTER_KEY_ENV: &str = "WBAUTH_MASTER_KEY";

/// The master key's file name inside the data directory.
pub(crate) const MASTER_KEY_FILE: &str = "master.key";

/// XChaCha20-Poly1305 nonce length.
pub(crate) const NONCE_LEN: usize = 24;

/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Associated data of the key-check value.
const KEY_CHECK_AAD: &[u8] = b"meta:key_check";

/// The constant encrypted as the key-check value.
const KEY_CHECK_PLAINTEXT: &[u8] = b"wbauth key store master key check v1";

/// Where a master key comes from.
pub enum MasterKeySource {
    /// The value of `WBAUTH_MASTER_KEY` (wiped from memory when dropped, never printed).
    Env(String),
    /// A key file (normally `master.key` in the data directory); it must be private (0600).
    File(PathBuf),
}

impl Drop for MasterKeySource {
    fn drop(&mut self) {
        if let Self::Env(value) = self {
            value.zeroize();
        }
    }
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(_) => f.write_str("Env(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The 32-byte key that encrypts every secret at rest. Wiped from memory when dropped; its
/// `Debug` output never shows it.
pub struct MasterKey {
    /// The cipher keyed with the master key (zeroizes its key on drop).
    cipher: XChaCha20Poly1305,
    /// Where the key came from (for the start-up log; never the key).
    origin: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

impl MasterKey {
    /// Reads a master key (64 hex characters, surrounding whitespace ignored) from `source`.
    ///
    /// # Errors
    /// [`StoreError::WrongMasterKey`] naming the source when the value is not 64 hex characters;
    /// [`StoreError::Io`] when the key file cannot be read, does not exist, or is accessible by
    /// group or others.
    pub fn from_source(source: &MasterKeySource) -> Result<Self, StoreError> {
        match source {
            MasterKeySource::Env(value) => {
                let bytes = parse_hex_key(value.as_bytes(), MASTER_KEY_ENV)?;
                Self::from_bytes(&bytes, MASTER_KEY_ENV.to_owned())
            }
            MasterKeySource::File(path) => match read_key_file(path)? {
                Some(key) => Ok(key),
                None => Err(StoreError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("master key file {} does not exist", path.display()),
                ))),
            },
        }
    }

    /// Where the key came from: `WBAUTH_MASTER_KEY`, a file, or generated into a file (never
    /// the key itself; fit for the start-up log).
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn from_bytes(bytes: &[u8; 32], origin: String) -> Result<Self, StoreError> {
        let cipher = XChaCha20Poly1305::new_from_slice(bytes)
            .map_err(|_| StoreError::Corrupt("master key has the wrong length".to_owned()))?;
        Ok(Self { cipher, origin })
    }

    /// Encrypts `plaintext` bound to `aad`: `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = XNonce::default();
        fill_random(nonce.as_mut_slice())?;
        // Reserved up front so the buffer never reallocates (no stray plaintext copies), and
        // wiped if encryption fails half way.
        let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(plaintext);
        let body = out.get_mut(NONCE_LEN..).unwrap_or_default();
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, aad, body.into())
            .map_err(|_| StoreError::Corrupt("a value is too long to encrypt".to_owned()))?;
        out.extend_from_slice(tag.as_slice());
        Ok(std::mem::take(&mut *out))
    }

    /// A fresh key-check value: the constant the key stores keep to recognise their master key.
    pub(crate) fn key_check(&self) -> Result<Vec<u8>, StoreError> {
        self.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)
    }

    /// Whether `sealed` is a key-check value made with this key.
    pub(crate) fn matches_key_check(&self, sealed: &[u8]) -> bool {
        self.open(KEY_CHECK_AAD, sealed)
            .is_some_and(|plain| plain.expose() == KEY_CHECK_PLAINTEXT)
    }

    /// Decrypts a value made by [`Self::seal`] with the same `aad`; `None` when it does not
    /// authenticate (wrong key, wrong row, damaged).
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<SecretBytes> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let tag = Tag::try_from(tag).ok()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag)
            .ok()?;
        Some(SecretBytes::new(std::mem::take(&mut *buffer)))
    }
}

/// The master key for the embedded store: `env_value` (the value of `WBAUTH_MASTER_KEY`) wins;
/// otherwise `data_dir/master.key` is read or, when absent, generated (the data directory is
/// created with mode 0700 when missing, the file with 0600).
///
/// # Errors
/// [`StoreError::WrongMasterKey`] naming the source when a key is not 64 hex characters;
/// [`StoreError::Io`] when the key file is accessible by group or others, or cannot be read or
/// written; [`StoreError::Unavailable`] when the system random generator fails.
pub fn load_or_create_master_key(
    data_dir: &Path,
    env_value: Option<&str>,
) -> Result<MasterKey, StoreError> {
    if let Some(value) = env_value {
        return MasterKey::from_source(&MasterKeySource::Env(value.to_owned()));
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if let Some(key) = read_key_file(&path)? {
        return Ok(key);
    }
    create_key_file(data_dir, &path)
}

/// Reads a key file; `Ok(None)` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, StoreError> {
    let shown = path.display();
    let mut file = match open_private(path) {
        Ok(Some(file)) => file,
        Ok(None) => return Ok(None),
        Err(Unusable::Open(e)) => return Err(io_error(e, &format!("cannot open {shown}"))),
        Err(Unusable::Inspect(e)) => return Err(io_error(e, &format!("cannot inspect {shown}"))),
        Err(Unusable::NotAFile) => {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("master key file {shown} is not a regular file"),
            )));
        }
        Err(Unusable::Exposed(mode)) => {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "master key file {shown} is accessible by group or others (mode \
                     {mode:04o}); refusing to use it: run `chmod 600 {shown}`"
                ),
            )));
        }
    };

    // A fixed buffer: nothing is reallocated, and everything read is wiped.
    let mut buffer = Zeroizing::new([0u8; 256]);
    let mut len = 0;
    loop {
        let free = buffer.get_mut(len..).unwrap_or_default();
        if free.is_empty() {
            return Err(malformed_key(
                &path.display().to_string(),
                "the file is far longer",
            ));
        }
        match file.read(free) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, &format!("cannot read {}", path.display()))),
        }
    }
    let text = buffer.get(..len).unwrap_or_default();
    let bytes = parse_hex_key(text, &path.display().to_string())?;
    MasterKey::from_bytes(&bytes, format!("file {}", path.display())).map(Some)
}

/// Generates a key into `path` without ever replacing an existing file.
fn create_key_file(data_dir: &Path, path: &Path) -> Result<MasterKey, StoreError> {
    create_private_dir(data_dir).map_err(|e| {
        io_error(
            e,
            &format!("cannot create directory {}", data_dir.display()),
        )
    })?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(&mut bytes[..])?;
    let hex = encode_hex(&bytes);
    if publish_new(path, hex.as_bytes())? {
        return MasterKey::from_bytes(&bytes, format!("generated into {}", path.display()));
    }
    // Another process created the key file meanwhile: its key is the one in use.
    read_key_file(path)?.ok_or_else(|| {
        StoreError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("master key file {} vanished", path.display()),
        ))
    })
}

/// Parses 64 hex characters (surrounding ASCII whitespace ignored). Errors name `source`, never
/// the value.
fn parse_hex_key(text: &[u8], source: &str) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let text = text.trim_ascii();
    if text.len() != 64 {
        return Err(malformed_key(
            source,
            &format!("found {} characters", text.len()),
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    if !whitebit_auth::encoding::hex_decode_into(text, &mut *key) {
        return Err(malformed_key(
            source,
            "found a character that is not a hex digit",
        ));
    }
    Ok(key)
}

/// Lower-case hex and a newline, in a buffer that is wiped when dropped.
fn encode_hex(bytes: &[u8; 32]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(65));
    whitebit_auth::encoding::hex_encode_into(bytes, &mut out);
    out.push('\n');
    out
}

fn malformed_key(source: &str, reason: &str) -> StoreError {
    StoreError::WrongMasterKey(format!(
        "{source}: a master key must be 64 hex characters (32 bytes); {reason}"
    ))
}

fn fill_random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| {
        StoreError::Unavailable(format!("the system random number generator failed: {e}"))
    })
}

#[cfg(test)]
mod tests;
