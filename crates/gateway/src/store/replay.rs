//! Single use of Fiat Gateway partner tokens (`decisions.md` 23: "Token already used."),
//! remembered as durably as nonces until the token expires.
//!
//! An append-only file of fixed-size records (`id[32] ‖ expires_at_ms u64 LE ‖ CRC-32`); a
//! token's claim is written (and, in power-loss mode, synced) before the request goes
//! upstream, so a `kill -9` at any moment cannot let a token be used twice. At open, expired
//! and torn records are dropped and the file is rewritten with the live ones.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::store::StoreError;

const RECORD: usize = 32 + 8 + 4;

/// Whether a claim was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First use: recorded.
    Fresh,
    /// Seen before (and not yet expired).
    Replayed,
}

struct Inner {
    live: HashMap<[u8; 32], u64>,
    file: File,
    records_in_file: usize,
}

/// The replay store.
pub struct ReplayStore {
    path: PathBuf,
    sync: bool,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn encode(id: &[u8; 32], expires_at_ms: u64) -> [u8; RECORD] {
    let mut record = [0u8; RECORD];
    record[..32].copy_from_slice(id);
    record[32..40].copy_from_slice(&expires_at_ms.to_le_bytes());
    let crc = crc32fast::hash(&record[..40]);
    record[40..].copy_from_slice(&crc.to_le_bytes());
    record
}

fn decode(record: &[u8]) -> Option<([u8; 32], u64)> {
    let crc = u32::from_le_bytes(record.get(40..44)?.try_into().ok()?);
    if crc32fast::hash(record.get(..40)?) != crc {
        return None;
    }
    let id: [u8; 32] = record[..32].try_into().ok()?;
    let expires = u64::from_le_bytes(record[32..40].try_into().ok()?);
    Some((id, expires))
}

impl ReplayStore {
    /// Opens (or creates) `dir/tokens.replay`, keeping the entries still live at `now_ms`.
    /// `sync` adds an fdatasync per claim (power-loss durability).
    pub fn open(dir: &Path, sync: bool, now_ms: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("tokens.replay");
        let mut live = HashMap::new();
        if let Ok(mut file) = File::open(&path) {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            // Records with a bad CRC (a torn write at a crash) are skipped, not fatal: the
            // claim they carried was never acknowledged.
            for record in bytes.chunks(RECORD) {
                if let Some((id, expires)) = decode(record)
                    && expires > now_ms
                {
                    let slot = live.entry(id).or_insert(expires);
                    *slot = (*slot).max(expires);
                }
            }
        }
        // Rewrite with the live entries only, atomically.
        let tmp = dir.join("tokens.replay.tmp");
        {
            let mut out = File::create(&tmp)?;
            let mut buffer = Vec::with_capacity(live.len() * RECORD);
            for (id, expires) in &live {
                buffer.extend_from_slice(&encode(id, *expires));
            }
            out.write_all(&buffer)?;
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let file = OpenOptions::new().append(true).open(&path)?;
        let records_in_file = live.len();
        Ok(Self {
            path,
            sync,
            inner: Mutex::new(Inner {
                live,
                file,
                records_in_file,
            }),
        })
    }

    /// Claims a token: `Fresh` (now recorded durably) or `Replayed`. A write failure is a
    /// store error and the token stays claimed (fail closed).
    pub fn claim(
        &self,
        id: [u8; 32],
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<Claim, StoreError> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.live.get(&id).is_some_and(|exp| *exp > now_ms) {
            return Ok(Claim::Replayed);
        }
        if inner.live.len() > 4096 && inner.live.len() * 2 > inner.records_in_file.max(1) {
            inner.live.retain(|_, exp| *exp > now_ms);
        }
        inner.live.insert(id, expires_at_ms);
        let record = encode(&id, expires_at_ms);
        inner.file.write_all(&record)?;
        if self.sync {
            inner.file.sync_data()?;
        }
        inner.records_in_file += 1;
        Ok(Claim::Fresh)
    }

    /// Live entries (for metrics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .live
            .len()
    }

    /// Whether no token is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl super::ReplayGuard for ReplayStore {
    fn claim(
        &self,
        id: [u8; 32],
        expires_at_ms: u64,
        now_ms: u64,
    ) -> super::BoxFuture<'_, Result<Claim, StoreError>> {
        let claimed = ReplayStore::claim(self, id, expires_at_ms, now_ms);
        Box::pin(async move { claimed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_single_use_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ReplayStore::open(dir.path(), false, 1_000).expect("open");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(store.claim(a, 60_000, 1_000).expect("claim"), Claim::Fresh);
        assert_eq!(
            store.claim(a, 60_000, 2_000).expect("claim"),
            Claim::Replayed
        );
        assert_eq!(store.claim(b, 5_000, 2_000).expect("claim"), Claim::Fresh);
        drop(store);
        // Reopened (as after a crash: nothing was flushed explicitly).
        let store = ReplayStore::open(dir.path(), true, 3_000).expect("reopen");
        assert_eq!(
            store.claim(a, 60_000, 3_000).expect("claim"),
            Claim::Replayed
        );
        assert_eq!(store.len(), 2);
        drop(store);
        // After b's expiry it is forgotten at open; a stays.
        let store = ReplayStore::open(dir.path(), false, 10_000).expect("reopen");
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.claim(a, 60_000, 10_000).expect("claim"),
            Claim::Replayed
        );
    }

    #[test]
    fn torn_records_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ReplayStore::open(dir.path(), false, 0).expect("open");
        assert_eq!(
            store.claim([7u8; 32], 100_000, 0).expect("claim"),
            Claim::Fresh
        );
        drop(store);
        let path = dir.path().join("tokens.replay");
        let mut file = OpenOptions::new().append(true).open(&path).expect("append");
        file.write_all(&[0xAB; 20]).expect("garbage");
        drop(file);
        let store = ReplayStore::open(dir.path(), false, 0).expect("reopen");
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.claim([7u8; 32], 100_000, 0).expect("claim"),
            Claim::Replayed
        );
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len() as usize,
            RECORD,
            "rewritten with live records only"
        );
    }
}
