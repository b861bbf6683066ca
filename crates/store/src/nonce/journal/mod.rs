//! The embedded default nonce store: nonce state in memory (`state.rs`), every accepted nonce
//! appended to a journal file before it is answered (`writer.rs`), snapshots to keep the
//! journal short; the files and their format are in `format.rs`, reading them back at open in
//! `recovery.rs`.
//!
//! # Guarantees
//!
//! [`NonceStore::consume`] answers `Ok(Ok(()))` only after the accepted nonce's record was
//! handed to the kernel with `write(2)` (it survives `kill -9` of the gateway: the data is in
//! the page cache), or also `fdatasync`ed with [`Durability::PowerLoss`]. With the default
//! [`Durability::ProcessCrash`] the caller writes its own record (one short `write(2)` to the
//! page cache under a mutex, no thread hand-off); with [`Durability::PowerLoss`] records go to
//! the writer thread, which groups them so that one `fdatasync` covers many requests. A nonce
//! is applied to memory *before* it is written, so a concurrent duplicate is refused at once;
//! when the write fails the caller gets a [`StoreError`] and the nonce stays consumed (fail
//! closed: burned, never accepted twice).
//!
//! # Memory
//!
//! Expired window entries are forgotten when their key is used and by
//! [`JournalNonceStore::sweep`] (run it periodically: the gateway calls
//! [`NonceStore::sweep`] every second). At most [`JournalConfig::max_window_entries`] live
//! window entries are kept: when full, new window-mode nonces are refused with
//! [`StoreError::Unavailable`]; a live entry is never evicted to make room.
//!
//! [`NonceStore::consume`]: crate::NonceStore::consume
//! [`NonceStore::sweep`]: crate::NonceStore::sweep

mod format;
mod recovery;
mod state;
mod writer;

use std::fs::{self, File};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use whitebit_auth::{ApiError, NonceMode};

use self::format::{encode_record, lock_dir};
pub use self::recovery::RecoveryReport;
use self::recovery::{Recovered, recover};
use self::state::{JournalStats, Outcome, Shared};
use self::writer::{Msg, Writer, writer_stopped};
use super::{Backend, Metric};
use crate::{KeyId, NonceAnswer, StoreError};

/// How much a crash may take away from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each commit group is written with `write(2)` before its nonces are answered: accepted
    /// nonces survive a crash of the gateway process (`kill -9`), not a power loss.
    #[default]
    ProcessCrash,
    /// Each commit group is also `fdatasync`ed before its nonces are answered: accepted
    /// nonces survive power loss.
    PowerLoss,
}

/// Configuration of a [`JournalNonceStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Directory of the store's files (created if missing). One store at a time may use it.
    pub dir: PathBuf,
    /// What an accepted nonce survives.
    pub durability: Durability,
    /// Journal size (bytes) past which the state is compacted into a snapshot.
    pub compact_after_bytes: u64,
    /// Most live window-mode entries kept, over all keys; further window-mode nonces are
    /// refused with [`StoreError::Unavailable`] until entries expire.
    pub max_window_entries: usize,
}

impl JournalConfig {
    /// Default of [`JournalConfig::compact_after_bytes`]: 64 MiB.
    pub const DEFAULT_COMPACT_AFTER_BYTES: u64 = 64 << 20;
    /// Default of [`JournalConfig::max_window_entries`]: 10 million.
    pub const DEFAULT_MAX_WINDOW_ENTRIES: usize = 10_000_000;

    /// The defaults, with the files in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::default(),
            compact_after_bytes: Self::DEFAULT_COMPACT_AFTER_BYTES,
            max_window_entries: Self::DEFAULT_MAX_WINDOW_ENTRIES,
        }
    }
}

impl Default for JournalConfig {
    /// The defaults, with the files in `./nonces`; set [`JournalConfig::dir`].
    fn default() -> Self {
        Self::new("nonces")
    }
}

/// The embedded, durable default [`NonceStore`]: nonce state in memory, every accepted nonce
/// appended to a journal file in [`JournalConfig::dir`] before it is answered, snapshots to
/// keep the journal short. One store at a time may use a directory.
///
/// [`NonceStore::consume`] answers `Ok(Ok(()))` only after the accepted nonce's record was
/// handed to the kernel with `write(2)` (it survives `kill -9` of the gateway), or also
/// `fdatasync`ed with [`Durability::PowerLoss`]. When a write fails the nonce stays consumed
/// (fail closed: burned, never accepted twice).
///
/// [`NonceStore`]: crate::NonceStore
/// [`NonceStore::consume`]: crate::NonceStore::consume
pub struct JournalNonceStore {
    shared: Arc<Shared>,
    /// The journal file and its bookkeeping, used by the writer thread and, with
    /// [`Durability::ProcessCrash`], by `consume` itself.
    state: Arc<Mutex<Writer>>,
    /// Records are written by `consume` itself ([`Durability::ProcessCrash`]).
    inline: bool,
    tx: mpsc::Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
    recovery: RecoveryReport,
    /// Holds the directory's advisory lock until the store is dropped.
    _lock: File,
}

impl std::fmt::Debug for JournalNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalNonceStore")
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl JournalNonceStore {
    /// Opens (or creates) the store in `config.dir`: takes the directory lock, loads the
    /// snapshot, replays the journal (dropping window entries expired at `now_ms`), repairs a
    /// torn tail, and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when another store holds the directory,
    /// [`StoreError::Corrupt`] when the snapshot or a journal header does not verify,
    /// [`StoreError::Io`] for any IO failure.
    pub fn open(config: JournalConfig, now_ms: u64) -> Result<Self, StoreError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir)?;
        let lock = lock_dir(&dir)?;
        let Recovered {
            shared,
            file,
            generation,
            good_len,
            report,
        } = recover(&dir, config.max_window_entries, now_ms)?;
        let shared = Arc::new(shared);
        let writer = Writer::new(Arc::clone(&shared), &config, file, generation, good_len);
        let state = Arc::new(Mutex::new(writer));
        let (tx, rx) = mpsc::channel();
        let thread_state = Arc::clone(&state);
        let handle = std::thread::Builder::new()
            .name("nonce-journal".into())
            .spawn(move || Writer::run(&thread_state, &rx))?;

        Ok(Self {
            shared,
            state,
            inline: config.durability == Durability::ProcessCrash,
            tx,
            writer: Mutex::new(Some(handle)),
            dir,
            recovery: report,
            _lock: lock,
        })
    }

    /// What open found and repaired (safe to log: counts only).
    #[must_use]
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Counters for metrics.
    #[must_use]
    pub(crate) fn stats(&self) -> JournalStats {
        self.shared.stats()
    }

    /// The key's high-water mark (the largest nonce it ever had accepted), if any.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn high_water(&self, key: KeyId) -> Option<u64> {
        self.shared.high_water(key)
    }

    /// Forgets every window-mode entry expired at `now_ms` (entries past
    /// `window_entry_expires_at`, which no request can match any more); returns how many.
    /// Keys and high-water marks are never forgotten.
    pub(crate) fn sweep(&self, now_ms: u64) -> usize {
        self.shared.sweep(now_ms)
    }

    /// Writes and syncs everything queued, then stops the writer thread. Afterwards
    /// `consume` and `flush` answer [`StoreError::Unavailable`]. Dropping the store does
    /// the same (blocking while the last commit group is written).
    ///
    /// # Errors
    ///
    /// The last commit group's write failure, if any.
    #[cfg(test)]
    pub(crate) async fn shutdown(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Shutdown { ack: Some(ack) }).is_err() {
            self.join_writer();
            return Ok(());
        }
        let result = done.await;
        // The writer answers just before it returns.
        self.join_writer();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(failure.into()),
            Err(_) => Err(writer_stopped()),
        }
    }

    fn join_writer(&self) {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            // A panicked writer already failed its waiters closed; nothing more to do.
            let _ = handle.join();
        }
    }

    async fn consume_inner(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> Result<Result<(), ApiError>, StoreError> {
        let mut swept = false;
        loop {
            match self.shared.apply(key, nonce, mode, now_ms)? {
                Outcome::Rejected(row) => return Ok(Err(row)),
                Outcome::Accepted => break,
                Outcome::WindowFull => {
                    // Expired entries may be waiting for the periodic sweep: one sweep, one
                    // retry. Live entries are never evicted.
                    if !swept && self.shared.sweep_if_idle(now_ms) > 0 {
                        swept = true;
                        continue;
                    }
                    return Err(StoreError::Unavailable("window capacity reached".into()));
                }
            }
        }
        let record = encode_record(key, nonce, mode);
        if self.inline {
            // Applied to memory and written within the same poll, no thread hand-off: a
            // `write(2)` of one record to the page cache.
            let mut writer = self.state.lock().map_err(|_| writer_stopped())?;
            if writer.closed {
                return Err(writer_stopped());
            }
            let written = writer.commit_group(&record, false);
            if written.is_ok() {
                writer.maybe_compact();
            }
            return written.map(Ok).map_err(StoreError::from);
        }
        // Applied to memory and queued within the same poll: if this future is dropped
        // later, the record is still written and the nonce stays consumed.
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Append { record, ack })
            .map_err(|_| writer_stopped())?;
        match done.await {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(failure)) => Err(failure.into()),
            Err(_) => Err(writer_stopped()),
        }
    }

    async fn flush_inner(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush { ack })
            .map_err(|_| writer_stopped())?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(failure.into()),
            Err(_) => Err(writer_stopped()),
        }
    }
}

impl Drop for JournalNonceStore {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown { ack: None });
        self.join_writer();
    }
}

impl Backend for JournalNonceStore {
    async fn read(&self, key: KeyId, nonce: u64) -> Result<(Option<u64>, bool), StoreError> {
        self.shared.read(key, nonce)
    }

    async fn record(&self, key: KeyId, nonce: u64, mode: NonceMode, now_ms: u64) -> NonceAnswer {
        self.consume_inner(key, nonce, mode, now_ms).await
    }

    /// Writes everything queued and syncs the journal (in either durability mode).
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.flush_inner()
    }

    async fn sweep(&self, now_ms: u64) -> Result<u64, StoreError> {
        Ok(u64::try_from(JournalNonceStore::sweep(self, now_ms)).unwrap_or(u64::MAX))
    }

    fn metrics(&self) -> Vec<Metric> {
        let stats = self.stats();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        vec![
            (
                "wbauth_nonce_keys",
                "Keys with nonce state in the embedded store.",
                count(stats.keys),
            ),
            (
                "wbauth_nonce_window_entries",
                "Live window-mode uniqueness entries.",
                count(stats.window_entries),
            ),
            (
                "wbauth_nonce_journal_bytes",
                "Size of the current nonce journal file.",
                stats.journal_bytes,
            ),
            (
                "wbauth_nonce_commit_groups_total",
                "Commit groups written to the journal.",
                stats.batches_written,
            ),
            (
                "wbauth_nonce_records_total",
                "Nonce records written to the journal.",
                stats.records_written,
            ),
            (
                "wbauth_nonce_write_errors_total",
                "Commit groups that failed (answered 503).",
                stats.write_errors,
            ),
        ]
    }
}

#[cfg(test)]
mod tests;
