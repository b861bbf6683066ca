//! Single use of Fiat Gateway partner tokens (`docs/design-decisions.md` 23: "Token already used."),
//! remembered as durably as nonces until the token expires.
//!
//! An append-only file of fixed-size records (`id[32] ‖ expires_at_ms u64 LE ‖ CRC-32`); a
//! token's claim is written (and, in power-loss mode, synced) before the request goes
//! upstream, so a `kill -9` at any moment cannot let a token be used twice. At open, expired
//! and torn records are dropped and the file is rewritten with the live ones.
//!
//! While running, [`ReplayStore::sweep`] (every second, on the gateway's clock) forgets the
//! tokens that have expired, so memory holds the live tokens only (request rate × token
//! lifetime), and rewrites the file with the live records once it holds more than twice as
//! many records as are live (plus [`COMPACT_SLACK`]). A live token is never forgotten: the
//! rewritten file is complete before it replaces the old one, and claims made after it go to
//! the new file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Claim, ReplayGuard, StoreError, StoreFuture};

const RECORD: usize = 32 + 8 + 4;

/// The file is rewritten with the live records once it holds more than twice as many records
/// as are live, plus this many (so a nearly idle store is not rewritten at every sweep).
pub(crate) const COMPACT_SLACK: usize = 256;

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

/// Replaces the file at `path` with the records of `live`: written and synced beside it,
/// then renamed over it. Returns the new file, open for appending (opened before the rename,
/// so later claims can only go to the file that replaced the old one).
fn rewrite(path: &Path, live: &HashMap<[u8; 32], u64>) -> Result<File, StoreError> {
    let tmp = path.with_extension("replay.tmp");
    if let Err(e) = std::fs::remove_file(&tmp)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(e.into());
    }
    let mut out = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&tmp)?;
    let mut buffer = Vec::with_capacity(live.len() * RECORD);
    for (id, expires) in live {
        buffer.extend_from_slice(&encode(id, *expires));
    }
    out.write_all(&buffer)?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(out)
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
        let file = rewrite(&path, &live)?;
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
    pub(crate) fn claim(
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
        inner.live.insert(id, expires_at_ms);
        let record = encode(&id, expires_at_ms);
        inner.file.write_all(&record)?;
        if self.sync {
            inner.file.sync_data()?;
        }
        inner.records_in_file += 1;
        Ok(Claim::Fresh)
    }

    /// Forgets the tokens expired at `now_ms` (`expires_at_ms <= now_ms`) and, when the file
    /// holds more than twice as many records as are live plus [`COMPACT_SLACK`], rewrites it
    /// with the live records. Returns how many tokens were forgotten.
    ///
    /// A failed rewrite leaves the old file (every record still in it) in use and is retried
    /// at the next sweep.
    pub(crate) fn sweep(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = inner.live.len();
        inner.live.retain(|_, exp| *exp > now_ms);
        let live = inner.live.len();
        // Give memory back after a burst (a map never shrinks by itself).
        if inner.live.capacity() > 4 * live.max(COMPACT_SLACK) {
            inner.live.shrink_to(2 * live);
        }
        if inner.records_in_file > 2 * live + COMPACT_SLACK {
            inner.file = rewrite(&self.path, &inner.live)?;
            inner.records_in_file = live;
        }
        Ok(u64::try_from(before - live).unwrap_or(u64::MAX))
    }

    /// (entries in memory, records in the file).
    fn figures(&self) -> (usize, usize) {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (inner.live.len(), inner.records_in_file)
    }
}

impl ReplayGuard for ReplayStore {
    fn claim(&self, id: [u8; 32], expires_at_ms: u64, now_ms: u64) -> StoreFuture<'_, Claim> {
        let claimed = ReplayStore::claim(self, id, expires_at_ms, now_ms);
        Box::pin(async move { claimed })
    }

    fn sweep(&self, now_ms: u64) -> StoreFuture<'_, u64> {
        let swept = ReplayStore::sweep(self, now_ms);
        Box::pin(async move { swept })
    }

    fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        let (entries, records) = self.figures();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        vec![
            (
                "wbauth_fiat_replay_entries",
                "Fiat Gateway tokens remembered in memory until they expire (embedded store).",
                count(entries),
            ),
            (
                "wbauth_fiat_replay_file_records",
                "Records in the embedded token replay file (rewritten with the live ones when \
                 it holds more than twice as many).",
                count(records),
            ),
        ]
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
        assert_eq!(store.figures().0, 2);
        drop(store);
        // After b's expiry it is forgotten at open; a stays.
        let store = ReplayStore::open(dir.path(), false, 10_000).expect("reopen");
        assert_eq!(store.figures().0, 1);
        assert_eq!(
            store.claim(a, 60_000, 10_000).expect("claim"),
            Claim::Replayed
        );
    }

    /// Records in the file (what a reopen would read).
    fn file_records(dir: &Path) -> usize {
        let bytes = std::fs::metadata(dir.join("tokens.replay"))
            .expect("replay file")
            .len();
        usize::try_from(bytes).expect("size") / RECORD
    }

    /// 100 tokens a second, each valid for 60 s, for ten simulated minutes, swept every
    /// second as the gateway's timer does: memory and the file follow the tokens still live
    /// (about 6,000), not the 60,000 ever claimed, and a live token is refused all along and
    /// after a restart.
    #[test]
    fn sweeps_keep_memory_and_file_near_the_live_tokens() {
        const PER_SECOND: u64 = 100;
        const LIFETIME_MS: u64 = 60_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let start = 1_750_000_000_000_u64;
        let store = ReplayStore::open(dir.path(), false, start).expect("open");
        // A token that stays live for the whole run.
        let keeper = [0xEE; 32];
        let keeper_expiry = start + 700_000;
        assert_eq!(
            store.claim(keeper, keeper_expiry, start).expect("claim"),
            Claim::Fresh
        );
        let mut now = start;
        let mut next_id = 0_u64;
        // After each sweep the tokens of the last 59 seconds are live, and the keeper.
        let live_bound = usize::try_from(PER_SECOND * (LIFETIME_MS / 1000 - 1)).expect("bound") + 1;
        let mut most_in_memory = 0;
        let mut most_in_file = 0;
        for second in 0..600_u64 {
            for _ in 0..PER_SECOND {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&next_id.to_le_bytes());
                next_id += 1;
                assert_eq!(
                    store.claim(id, now + LIFETIME_MS, now).expect("claim"),
                    Claim::Fresh
                );
            }
            now += 1_000;
            store.sweep(now).expect("sweep");
            most_in_memory = most_in_memory.max(store.figures().0);
            most_in_file = most_in_file.max(file_records(dir.path()));
            assert!(
                store.figures().0 <= live_bound,
                "second {second}: {} entries in memory, at most {live_bound} tokens are live",
                store.figures().0
            );
            assert!(
                file_records(dir.path()) <= 2 * live_bound + COMPACT_SLACK,
                "second {second}: the file holds {} records for {} live tokens",
                file_records(dir.path()),
                store.figures().0
            );
            if second % 50 == 0 {
                assert_eq!(
                    store.claim(keeper, keeper_expiry, now).expect("claim"),
                    Claim::Replayed,
                    "second {second}: a live token was forgotten"
                );
            }
        }
        assert_eq!(next_id, 60_000);
        assert_eq!(most_in_memory, live_bound);
        assert!(most_in_file > 0, "{most_in_file}");
        // A restart keeps every live token (and only those).
        let live_before = store.figures().0;
        drop(store);
        let store = ReplayStore::open(dir.path(), false, now).expect("reopen");
        assert_eq!(store.figures().0, live_before);
        assert_eq!(
            store.claim(keeper, keeper_expiry, now).expect("claim"),
            Claim::Replayed
        );
        let mut last = [0u8; 32];
        last[..8].copy_from_slice(&(next_id - 1).to_le_bytes());
        assert_eq!(
            store.claim(last, now + LIFETIME_MS, now).expect("claim"),
            Claim::Replayed,
            "the newest token is live and still refused after the restart"
        );
        // Once everything has expired, a sweep empties memory and the file.
        let after = keeper_expiry + 1;
        store.sweep(after).expect("sweep");
        assert_eq!(store.figures().0, 0);
        assert_eq!(file_records(dir.path()), 0);
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
        assert_eq!(store.figures().0, 1);
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
