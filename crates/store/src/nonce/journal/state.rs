//! The nonce state in memory: sharded by key, each key's high-water mark and live window
//! entries, with the counters for metrics.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use whitebit_auth::nonce::{decide, raise, window_entry_expires_at};
use whitebit_auth::{ApiError, NonceMode};

use crate::{KeyId, StoreError};

/// Number of independently locked shards of the in-memory state (a power of two).
pub(super) const SHARD_BITS: u32 = 6;
pub(super) const SHARDS: usize = 1 << SHARD_BITS;

/// Counters for metrics (none of them per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct JournalStats {
    /// Keys that ever had a nonce accepted.
    pub keys: usize,
    /// Live window-mode entries, over all keys.
    pub window_entries: usize,
    /// Size of the current journal file.
    pub journal_bytes: u64,
    /// Commit groups written successfully since open.
    pub batches_written: u64,
    /// Records written successfully since open.
    pub records_written: u64,
    /// Commit groups that failed (their nonces were answered with a store error).
    pub write_errors: u64,
    /// Snapshots completed since open (at open included).
    pub compactions: u64,
    /// Snapshots that failed (the journals stay; nothing is lost).
    pub compaction_errors: u64,
}

/// One key's nonce state.
#[derive(Debug, Default)]
pub(super) struct KeyState {
    /// The largest nonce ever accepted (either mode).
    pub(super) high_water: Option<u64>,
    /// Live window-mode entries, ordered so expired ones are at the front.
    pub(super) window: BTreeSet<u64>,
}

impl KeyState {
    /// Forgets window entries expired at `now_ms`; returns how many.
    pub(super) fn expire(&mut self, now_ms: u64) -> usize {
        let mut removed = 0;
        while let Some(&first) = self.window.first() {
            if window_entry_expires_at(first) > now_ms {
                break;
            }
            self.window.pop_first();
            removed += 1;
        }
        removed
    }
}

pub(super) type Shard = HashMap<KeyId, KeyState>;

pub(super) fn shard_index(key: KeyId) -> usize {
    // Fibonacci hashing: sequential key ids spread over all shards.
    let top = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS);
    usize::try_from(top).unwrap_or(0)
}

/// Locks a shard for a maintenance task (sweep, snapshot, stats): the state under a
/// poisoned lock is still a valid state, and these tasks only remove expired entries or copy.
pub(super) fn lock_anyway(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The result of applying one request to memory.
pub(super) enum Outcome {
    Accepted,
    Rejected(ApiError),
    WindowFull,
}

/// Test-only fault injection in the writer.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// The next journal write writes only this many bytes, then fails.
    pub(super) partial_write: Option<usize>,
    /// So many following truncations fail.
    pub(super) failing_truncates: u32,
}

/// State shared by the store handle, the writer thread and the compactor.
pub(super) struct Shared {
    pub(super) shards: Vec<Mutex<Shard>>,
    pub(super) max_window_entries: usize,
    pub(super) window_entries: AtomicUsize,
    pub(super) keys: AtomicUsize,
    pub(super) journal_bytes: AtomicU64,
    pub(super) batches_written: AtomicU64,
    pub(super) records_written: AtomicU64,
    pub(super) write_errors: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) compaction_errors: AtomicU64,
    pub(super) sweeping: AtomicBool,
    #[cfg(test)]
    pub(super) faults: Mutex<Faults>,
}

impl Shared {
    pub(super) fn new(
        shards: Vec<Shard>,
        window_entries: usize,
        max_window_entries: usize,
    ) -> Self {
        let keys = shards.iter().map(HashMap::len).sum();
        Self {
            shards: shards.into_iter().map(Mutex::new).collect(),
            max_window_entries,
            window_entries: AtomicUsize::new(window_entries),
            keys: AtomicUsize::new(keys),
            journal_bytes: AtomicU64::new(0),
            batches_written: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            compaction_errors: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            #[cfg(test)]
            faults: Mutex::new(Faults::default()),
        }
    }

    pub(super) fn shard(&self, key: KeyId) -> Result<MutexGuard<'_, Shard>, StoreError> {
        self.shards[shard_index(key)]
            .lock()
            .map_err(|_| StoreError::Unavailable("nonce store state poisoned".into()))
    }

    pub(super) fn forget_window_entries(&self, n: usize) {
        if n > 0 {
            // Saturating: a miscount must never wrap into "full forever" or "never full".
            let _ = self
                .window_entries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                    Some(c.saturating_sub(n))
                });
        }
    }

    pub(super) fn reserve_window_entry(&self) -> bool {
        let max = self.max_window_entries;
        self.window_entries
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < max).then_some(c + 1)
            })
            .is_ok()
    }

    /// The key's high-water mark, and whether `nonce` is a live window entry.
    pub(super) fn read(&self, key: KeyId, nonce: u64) -> Result<(Option<u64>, bool), StoreError> {
        let shard = self.shard(key)?;
        Ok(shard.get(&key).map_or((None, false), |state| {
            (state.high_water, state.window.contains(&nonce))
        }))
    }

    /// Decides and, on acceptance, applies the nonce to memory (under the shard lock, so a
    /// concurrent duplicate sees it).
    pub(super) fn apply(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> Result<Outcome, StoreError> {
        let mut shard = self.shard(key)?;
        let (high_water, seen) = match shard.get_mut(&key) {
            Some(state) => {
                let expired = state.expire(now_ms);
                self.forget_window_entries(expired);
                (state.high_water, state.window.contains(&nonce))
            }
            None => (None, false),
        };
        if let Err(row) = decide(high_water, seen, nonce, mode, now_ms) {
            return Ok(Outcome::Rejected(row));
        }
        if mode == NonceMode::Window && !self.reserve_window_entry() {
            return Ok(Outcome::WindowFull);
        }
        let state = shard.entry(key).or_insert_with(|| {
            self.keys.fetch_add(1, Ordering::Relaxed);
            KeyState::default()
        });
        state.high_water = Some(raise(state.high_water, nonce));
        if mode == NonceMode::Window {
            state.window.insert(nonce);
        }
        Ok(Outcome::Accepted)
    }

    pub(super) fn sweep(&self, now_ms: u64) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = lock_anyway(shard);
            for state in shard.values_mut() {
                removed += state.expire(now_ms);
            }
        }
        self.forget_window_entries(removed);
        removed
    }

    /// A sweep, unless one is already running (then 0).
    pub(super) fn sweep_if_idle(&self, now_ms: u64) -> usize {
        if self.sweeping.swap(true, Ordering::SeqCst) {
            return 0;
        }
        let removed = self.sweep(now_ms);
        self.sweeping.store(false, Ordering::SeqCst);
        removed
    }

    #[cfg(test)]
    pub(super) fn high_water(&self, key: KeyId) -> Option<u64> {
        lock_anyway(&self.shards[shard_index(key)])
            .get(&key)
            .and_then(|state| state.high_water)
    }

    pub(super) fn stats(&self) -> JournalStats {
        JournalStats {
            keys: self.keys.load(Ordering::Relaxed),
            window_entries: self.window_entries.load(Ordering::Relaxed),
            journal_bytes: self.journal_bytes.load(Ordering::Relaxed),
            batches_written: self.batches_written.load(Ordering::Relaxed),
            records_written: self.records_written.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            compactions: self.compactions.load(Ordering::Relaxed),
            compaction_errors: self.compaction_errors.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
pub(super) fn lock_faults(shared: &Shared) -> MutexGuard<'_, Faults> {
    shared.faults.lock().unwrap_or_else(PoisonError::into_inner)
}
