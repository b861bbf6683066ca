//! The journal's files and their format.
//!
//! Files in the store's directory ([`JournalConfig::dir`](super::JournalConfig::dir)):
//!
//! - `nonces.lock`: empty; held with an exclusive advisory lock while a store is open.
//! - `nonces.<generation as 16 hex digits>.journal`: a 12-byte header (`b"WBNJRNL\0"`, then
//!   the format version as `u32` LE, currently 1) followed by fixed-size 21-byte records:
//!   key id (`u64` LE), nonce (`u64` LE), mode (`u8`: 0 strict, 1 window), CRC-32 of those
//!   17 bytes (`u32` LE). Usually one file; a second one exists while a compaction runs.
//! - `nonces.snap`: a 12-byte header (`b"WBNSNAP\0"`, version `u32` LE, currently 1), then
//!   17-byte records (key id, nonce, mode — as in the journal, without a CRC): one strict
//!   record per key carrying its high-water mark, one window record per live window entry;
//!   then a trailer: the record count (`u64` LE) and the CRC-32 of every byte before it
//!   (`u32` LE). A snapshot that does not verify is a hard `StoreError::Corrupt`.
//! - `nonces.snap.tmp`: a snapshot being written; removed at open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use whitebit_auth::NonceMode;

use crate::{KeyId, StoreError};

/// Version of both file formats.
pub(super) const FORMAT_VERSION: u32 = 1;
pub(super) const JOURNAL_MAGIC: [u8; 8] = *b"WBNJRNL\0";
pub(super) const SNAPSHOT_MAGIC: [u8; 8] = *b"WBNSNAP\0";
/// Magic and version.
pub(super) const HEADER_LEN: usize = 12;
/// Key id, nonce, mode.
pub(super) const PAYLOAD_LEN: usize = 17;
/// Payload and CRC-32.
pub(super) const RECORD_LEN: usize = PAYLOAD_LEN + 4;
/// Record count and CRC-32.
pub(super) const SNAPSHOT_TRAILER_LEN: usize = 12;

pub(super) const MODE_STRICT: u8 = 0;
pub(super) const MODE_WINDOW: u8 = 1;

pub(super) const LOCK_FILE: &str = "nonces.lock";
pub(super) const SNAPSHOT_FILE: &str = "nonces.snap";
pub(super) const SNAPSHOT_TMP_FILE: &str = "nonces.snap.tmp";
pub(super) const JOURNAL_PREFIX: &str = "nonces.";
pub(super) const JOURNAL_SUFFIX: &str = ".journal";

pub(super) fn mode_byte(mode: NonceMode) -> u8 {
    match mode {
        NonceMode::Strict => MODE_STRICT,
        NonceMode::Window => MODE_WINDOW,
    }
}

pub(super) fn encode_payload(key: KeyId, nonce: u64, mode: u8) -> [u8; PAYLOAD_LEN] {
    let mut out = [0u8; PAYLOAD_LEN];
    out[..8].copy_from_slice(&key.to_le_bytes());
    out[8..16].copy_from_slice(&nonce.to_le_bytes());
    out[16] = mode;
    out
}

/// `(key, nonce, mode byte)`.
pub(super) fn decode_payload(payload: &[u8; PAYLOAD_LEN]) -> (KeyId, u64, u8) {
    let mut key = [0u8; 8];
    let mut nonce = [0u8; 8];
    key.copy_from_slice(&payload[..8]);
    nonce.copy_from_slice(&payload[8..16]);
    (
        u64::from_le_bytes(key),
        u64::from_le_bytes(nonce),
        payload[16],
    )
}

pub(super) fn encode_record(key: KeyId, nonce: u64, mode: NonceMode) -> [u8; RECORD_LEN] {
    let payload = encode_payload(key, nonce, mode_byte(mode));
    let mut out = [0u8; RECORD_LEN];
    out[..PAYLOAD_LEN].copy_from_slice(&payload);
    out[PAYLOAD_LEN..].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out
}

/// The payload of a journal record, if its CRC holds.
pub(super) fn verify_record(record: &[u8; RECORD_LEN]) -> Option<[u8; PAYLOAD_LEN]> {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload.copy_from_slice(&record[..PAYLOAD_LEN]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&record[PAYLOAD_LEN..]);
    (crc32fast::hash(&payload) == u32::from_le_bytes(crc)).then_some(payload)
}

pub(super) fn header(magic: [u8; 8]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&magic);
    out[8..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out
}

pub(super) fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(super) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "nonce store directory {} is in use by another gateway (lock held on {LOCK_FILE})",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(error)) => Err(error.into()),
    }
}

pub(super) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

pub(super) fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{JOURNAL_PREFIX}{generation:016x}{JOURNAL_SUFFIX}"))
}

pub(super) fn journal_generation(name: &str) -> Option<u64> {
    let hex = name
        .strip_prefix(JOURNAL_PREFIX)?
        .strip_suffix(JOURNAL_SUFFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The journals in `dir`, oldest generation first.
pub(super) fn list_journals(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut journals = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(generation) = entry.file_name().to_str().and_then(journal_generation) {
            journals.push((generation, entry.path()));
        }
    }
    journals.sort_unstable_by_key(|(generation, _)| *generation);
    Ok(journals)
}

pub(super) fn remove_journals_up_to(dir: &Path, last: u64) -> io::Result<()> {
    for (generation, path) in list_journals(dir)? {
        if generation <= last {
            remove_if_exists(&path)?;
        }
    }
    Ok(())
}

/// Creates (or empties) the journal of `generation` and writes its header.
pub(super) fn create_journal(dir: &Path, generation: u64, sync: bool) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal_path(dir, generation))?;
    file.set_len(0)?;
    file.write_all(&header(JOURNAL_MAGIC))?;
    if sync {
        file.sync_all()?;
        sync_dir(dir)?;
    }
    Ok(file)
}
