//! The embedded default nonce store: nonce state in memory, every accepted nonce appended to
//! a journal file before it is answered, snapshots to keep the journal short.
//!
//! # Guarantees
//!
//! [`NonceStore::consume`] answers `Ok(Ok(()))` only after the accepted nonce's record was
//! handed to the kernel with `write(2)` (it survives `kill -9` of the gateway: the data is in
//! the page cache), or also `fdatasync`ed with [`Durability::PowerLoss`]. With the default
//! [`Durability::ProcessCrash`] the caller writes its own record (one short `write(2)` to the
//! page cache under a mutex, no thread hand-off); with [`Durability::PowerLoss`] records go to
//! the writer thread, which groups them so that one `fdatasync` covers many requests. A nonce is applied
//! to memory *before* it is written, so a concurrent duplicate is refused at once; when the
//! write fails the caller gets a [`StoreError`] and the nonce stays consumed (fail closed:
//! burned, never accepted twice).
//!
//! # Files in [`JournalConfig::dir`]
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
//!   (`u32` LE). A snapshot that does not verify is a hard [`StoreError::Corrupt`].
//! - `nonces.snap.tmp`: a snapshot being written; removed at open.
//!
//! # Recovery
//!
//! Open loads the snapshot, then replays every journal (replay is idempotent: high-water
//! marks take the maximum, window entries are a set). Window entries already expired at
//! `now_ms` are dropped. A torn tail — a partial record, or records that fail their CRC up
//! to the end of the file — is truncated away. Records with a valid CRC *after* a bad one
//! (damage in the middle of the file) are still applied, never thrown away, and the state is
//! then compacted at once into a fresh snapshot and journal; so is a directory holding more
//! than one journal (a crash during compaction). Nothing is logged here; see
//! [`JournalNonceStore::recovery`].
//!
//! # Compaction
//!
//! When the journal grows past [`JournalConfig::compact_after_bytes`], the writer thread
//! starts a new journal generation (between two commit groups, which costs one file
//! creation) and a compactor thread writes a snapshot of the whole in-memory state to
//! `nonces.snap.tmp`, fsyncs it, renames it over `nonces.snap`, fsyncs the directory and
//! deletes the older journals. Every record in an older journal was applied to memory before
//! it was written, so the snapshot covers it; a crash anywhere in between leaves files that
//! replay to the same state. Accepting nonces never waits for a snapshot to be written.
//!
//! # Memory
//!
//! Expired window entries are forgotten when their key is used and by
//! [`JournalNonceStore::sweep`] (run it periodically: the gateway calls [`NonceStore::sweep`]
//! every second). At most [`JournalConfig::max_window_entries`] live
//! window entries are kept: when full, new window-mode nonces are refused with
//! [`StoreError::Unavailable`]; a live entry is never evicted to make room.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use whitebit_auth::nonce::{decide, raise, window_entry_expires_at};
use whitebit_auth::{ApiError, NonceMode};

use crate::{BoxFuture, KeyId, NonceStore, StoreError};

/// Number of independently locked shards of the in-memory state (a power of two).
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// Version of both file formats.
const FORMAT_VERSION: u32 = 1;
const JOURNAL_MAGIC: [u8; 8] = *b"WBNJRNL\0";
const SNAPSHOT_MAGIC: [u8; 8] = *b"WBNSNAP\0";
/// Magic and version.
const HEADER_LEN: usize = 12;
/// Key id, nonce, mode.
const PAYLOAD_LEN: usize = 17;
/// Payload and CRC-32.
const RECORD_LEN: usize = PAYLOAD_LEN + 4;
/// Record count and CRC-32.
const SNAPSHOT_TRAILER_LEN: usize = 12;

const MODE_STRICT: u8 = 0;
const MODE_WINDOW: u8 = 1;

const LOCK_FILE: &str = "nonces.lock";
const SNAPSHOT_FILE: &str = "nonces.snap";
const SNAPSHOT_TMP_FILE: &str = "nonces.snap.tmp";
const JOURNAL_PREFIX: &str = "nonces.";
const JOURNAL_SUFFIX: &str = ".journal";

/// Most records written in one commit group.
const MAX_BATCH_RECORDS: usize = 16_384;

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

/// Counters for metrics (none of them per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalStats {
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

/// What [`JournalNonceStore::open`] found and repaired. Holds no nonce and no key id, so it
/// is safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Whether a snapshot was loaded.
    pub snapshot_loaded: bool,
    /// Records read from the snapshot.
    pub snapshot_records: u64,
    /// Journal files replayed.
    pub journal_files: usize,
    /// Journal records with a valid CRC, replayed.
    pub journal_records: u64,
    /// Complete journal records whose CRC failed (skipped).
    pub bad_records: u64,
    /// Bytes cut from the end of the journal (torn tail).
    pub torn_bytes_truncated: u64,
    /// Window entries already expired at open, not loaded.
    pub expired_window_entries: u64,
    /// Whether the state was compacted during open (several journals, or damage in the
    /// middle of a journal).
    pub compacted_at_open: bool,
}

/// One key's nonce state.
#[derive(Debug, Default)]
struct KeyState {
    /// The largest nonce ever accepted (either mode).
    high_water: Option<u64>,
    /// Live window-mode entries, ordered so expired ones are at the front.
    window: BTreeSet<u64>,
}

impl KeyState {
    /// Forgets window entries expired at `now_ms`; returns how many.
    fn expire(&mut self, now_ms: u64) -> usize {
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

type Shard = HashMap<KeyId, KeyState>;

fn shard_index(key: KeyId) -> usize {
    // Fibonacci hashing: sequential key ids spread over all shards.
    let top = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS);
    usize::try_from(top).unwrap_or(0)
}

fn mode_byte(mode: NonceMode) -> u8 {
    match mode {
        NonceMode::Strict => MODE_STRICT,
        NonceMode::Window => MODE_WINDOW,
    }
}

fn encode_payload(key: KeyId, nonce: u64, mode: u8) -> [u8; PAYLOAD_LEN] {
    let mut out = [0u8; PAYLOAD_LEN];
    out[..8].copy_from_slice(&key.to_le_bytes());
    out[8..16].copy_from_slice(&nonce.to_le_bytes());
    out[16] = mode;
    out
}

/// `(key, nonce, mode byte)`.
fn decode_payload(payload: &[u8; PAYLOAD_LEN]) -> (KeyId, u64, u8) {
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

fn encode_record(key: KeyId, nonce: u64, mode: NonceMode) -> [u8; RECORD_LEN] {
    let payload = encode_payload(key, nonce, mode_byte(mode));
    let mut out = [0u8; RECORD_LEN];
    out[..PAYLOAD_LEN].copy_from_slice(&payload);
    out[PAYLOAD_LEN..].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out
}

/// The payload of a journal record, if its CRC holds.
fn verify_record(record: &[u8; RECORD_LEN]) -> Option<[u8; PAYLOAD_LEN]> {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload.copy_from_slice(&record[..PAYLOAD_LEN]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&record[PAYLOAD_LEN..]);
    (crc32fast::hash(&payload) == u32::from_le_bytes(crc)).then_some(payload)
}

fn header(magic: [u8; 8]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&magic);
    out[8..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Locks a shard for a maintenance task (sweep, snapshot, stats): the state under a
/// poisoned lock is still a valid state, and these tasks only remove expired entries or copy.
fn lock_anyway(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The result of applying one request to memory.
enum Outcome {
    Accepted,
    Rejected(ApiError),
    WindowFull,
}

/// Test-only fault injection in the writer.
#[cfg(test)]
#[derive(Debug, Default)]
struct Faults {
    /// The next journal write writes only this many bytes, then fails.
    partial_write: Option<usize>,
    /// So many following truncations fail.
    failing_truncates: u32,
}

/// State shared by the store handle, the writer thread and the compactor.
struct Shared {
    shards: Vec<Mutex<Shard>>,
    max_window_entries: usize,
    window_entries: AtomicUsize,
    keys: AtomicUsize,
    journal_bytes: AtomicU64,
    batches_written: AtomicU64,
    records_written: AtomicU64,
    write_errors: AtomicU64,
    compactions: AtomicU64,
    compaction_errors: AtomicU64,
    sweeping: AtomicBool,
    #[cfg(test)]
    faults: Mutex<Faults>,
}

impl Shared {
    fn new(shards: Vec<Shard>, window_entries: usize, max_window_entries: usize) -> Self {
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

    fn shard(&self, key: KeyId) -> Result<MutexGuard<'_, Shard>, StoreError> {
        self.shards[shard_index(key)]
            .lock()
            .map_err(|_| StoreError::Unavailable("nonce store state poisoned".into()))
    }

    fn forget_window_entries(&self, n: usize) {
        if n > 0 {
            // Saturating: a miscount must never wrap into "full forever" or "never full".
            let _ = self
                .window_entries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                    Some(c.saturating_sub(n))
                });
        }
    }

    fn reserve_window_entry(&self) -> bool {
        let max = self.max_window_entries;
        self.window_entries
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < max).then_some(c + 1)
            })
            .is_ok()
    }

    fn check(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> Result<Result<(), ApiError>, StoreError> {
        let shard = self.shard(key)?;
        let (high_water, seen) = shard.get(&key).map_or((None, false), |state| {
            (state.high_water, state.window.contains(&nonce))
        });
        Ok(decide(high_water, seen, nonce, mode, now_ms))
    }

    /// Decides and, on acceptance, applies the nonce to memory (under the shard lock, so a
    /// concurrent duplicate sees it).
    fn apply(
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

    fn sweep(&self, now_ms: u64) -> usize {
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
    fn sweep_if_idle(&self, now_ms: u64) -> usize {
        if self.sweeping.swap(true, Ordering::SeqCst) {
            return 0;
        }
        let removed = self.sweep(now_ms);
        self.sweeping.store(false, Ordering::SeqCst);
        removed
    }

    fn high_water(&self, key: KeyId) -> Option<u64> {
        lock_anyway(&self.shards[shard_index(key)])
            .get(&key)
            .and_then(|state| state.high_water)
    }

    fn stats(&self) -> JournalStats {
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

/// Why a commit group failed, as handed to every waiter of the group.
#[derive(Debug, Clone)]
struct WriteFailure {
    kind: io::ErrorKind,
    message: String,
}

impl From<&io::Error> for WriteFailure {
    fn from(error: &io::Error) -> Self {
        Self {
            kind: error.kind(),
            message: format!("nonce journal write failed: {error}"),
        }
    }
}

impl From<WriteFailure> for StoreError {
    fn from(failure: WriteFailure) -> Self {
        StoreError::Io(io::Error::new(failure.kind, failure.message))
    }
}

type Ack = oneshot::Sender<Result<(), WriteFailure>>;

/// Requests to the writer thread.
enum Msg {
    /// Write this record, then answer (with `Durability::PowerLoss`; the default durability
    /// appends inline).
    Append { record: [u8; RECORD_LEN], ack: Ack },
    /// Answer once everything before is written and synced.
    Flush { ack: Ack },
    /// Write and sync everything before, answer, and stop.
    Shutdown { ack: Option<Ack> },
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("nonce journal writer stopped".into())
}

/// The embedded, durable default [`NonceStore`]: nonce state in memory, every accepted nonce
/// appended to a journal file in [`JournalConfig::dir`] before it is answered, snapshots to
/// keep the journal short. One store at a time may use a directory.
///
/// [`NonceStore::consume`] answers `Ok(Ok(()))` only after the accepted nonce's record was
/// handed to the kernel with `write(2)` (it survives `kill -9` of the gateway), or also
/// `fdatasync`ed with [`Durability::PowerLoss`]. When a write fails the nonce stays consumed
/// (fail closed: burned, never accepted twice).
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
        remove_if_exists(&dir.join(SNAPSHOT_TMP_FILE))?;

        let mut loader = Loader::new(now_ms);
        let mut report = RecoveryReport::default();
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        match File::open(&snapshot_path) {
            Ok(file) => {
                report.snapshot_records = load_snapshot(file, &snapshot_path, &mut loader)?;
                report.snapshot_loaded = true;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }

        let journals = list_journals(&dir)?;
        let mut scans = Vec::with_capacity(journals.len());
        for (_, path) in &journals {
            let scan = replay_journal(path, &mut loader)?;
            report.journal_records += scan.records;
            report.bad_records += scan.bad_records;
            scans.push(scan);
        }
        report.journal_files = journals.len();
        report.expired_window_entries = loader.expired;

        let shared = Arc::new(Shared::new(
            loader.shards,
            loader.window_entries,
            config.max_window_entries,
        ));

        let (generation, file, good_len) = match (journals.as_slice(), scans.as_slice()) {
            ([], _) => (1, create_journal(&dir, 1, true)?, as_u64(HEADER_LEN)),
            ([(generation, path)], [scan]) if !scan.valid_after_bad => {
                if scan.good_len < as_u64(HEADER_LEN) {
                    // Torn header: the file was being created.
                    report.torn_bytes_truncated = scan.len;
                    let file = create_journal(&dir, *generation, true)?;
                    (*generation, file, as_u64(HEADER_LEN))
                } else {
                    let file = OpenOptions::new().append(true).open(path)?;
                    if scan.good_len < scan.len {
                        file.set_len(scan.good_len)?;
                        file.sync_all()?;
                        report.torn_bytes_truncated = scan.len - scan.good_len;
                    }
                    (*generation, file, scan.good_len)
                }
            }
            _ => {
                // Several journals (a crash during compaction) or damage in the middle of
                // one: everything readable is in memory; make it the new baseline.
                let last = journals.last().map_or(0, |(generation, _)| *generation);
                write_snapshot(&shared, &dir)?;
                shared.compactions.fetch_add(1, Ordering::Relaxed);
                remove_journals_up_to(&dir, last)?;
                report.compacted_at_open = true;
                let generation = last.saturating_add(1);
                (
                    generation,
                    create_journal(&dir, generation, true)?,
                    as_u64(HEADER_LEN),
                )
            }
        };
        shared.journal_bytes.store(good_len, Ordering::Relaxed);

        let writer = Writer {
            shared: Arc::clone(&shared),
            dir: dir.clone(),
            durability: config.durability,
            compact_after_bytes: config.compact_after_bytes,
            next_compaction_at: config.compact_after_bytes,
            file,
            generation,
            good_len,
            dirty: false,
            closed: false,
            compactor: None,
        };
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

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What open found and repaired (safe to log: counts only).
    #[must_use]
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Counters for metrics.
    #[must_use]
    pub fn stats(&self) -> JournalStats {
        self.shared.stats()
    }

    /// The key's high-water mark (the largest nonce it ever had accepted), if any.
    #[must_use]
    pub fn high_water(&self, key: KeyId) -> Option<u64> {
        self.shared.high_water(key)
    }

    /// Forgets every window-mode entry expired at `now_ms` (entries past
    /// `window_entry_expires_at`, which no request can match any more); returns how many.
    /// Keys and high-water marks are never forgotten.
    pub fn sweep(&self, now_ms: u64) -> usize {
        self.shared.sweep(now_ms)
    }

    /// Writes and syncs everything queued, then stops the writer thread. Afterwards
    /// `consume` and `flush` answer [`StoreError::Unavailable`]. Dropping the store does
    /// the same (blocking while the last commit group is written).
    ///
    /// # Errors
    ///
    /// The last commit group's write failure, if any.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
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

impl NonceStore for JournalNonceStore {
    fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
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

    fn check(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Result<(), ApiError>, StoreError>> {
        Box::pin(async move { self.shared.check(key, nonce, mode, now_ms) })
    }

    fn consume(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Result<(), ApiError>, StoreError>> {
        Box::pin(self.consume_inner(key, nonce, mode, now_ms))
    }

    /// Writes everything queued and syncs the journal (in either durability mode).
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.flush_inner())
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        let removed = JournalNonceStore::sweep(self, now_ms);
        Box::pin(async move { Ok(u64::try_from(removed).unwrap_or(u64::MAX)) })
    }
}

/// The journal: its file and bookkeeping. The writer thread commits groups under its mutex;
/// with [`Durability::ProcessCrash`] `consume` commits its own record under it.
struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    durability: Durability,
    compact_after_bytes: u64,
    /// Journal length at which the next compaction is attempted.
    next_compaction_at: u64,
    file: File,
    generation: u64,
    /// Length of the journal's verified content: everything before was written whole.
    good_len: u64,
    /// The file may extend past `good_len` (a failed write whose truncation failed too):
    /// nothing is appended until it is truncated back.
    dirty: bool,
    /// Set, under the mutex, once the store shut down: nothing more is appended.
    closed: bool,
    compactor: Option<JoinHandle<()>>,
}

impl Writer {
    /// The writer thread: commit groups of queued records, flushes and the shutdown.
    fn run(state: &Mutex<Writer>, rx: &mpsc::Receiver<Msg>) {
        let mut buf = Vec::with_capacity(64 * RECORD_LEN);
        let mut acks: Vec<Ack> = Vec::new();
        loop {
            let Ok(first) = rx.recv() else {
                // Every sender is gone.
                let mut this = state.lock().unwrap_or_else(PoisonError::into_inner);
                this.closed = true;
                this.join_compactor();
                return;
            };
            buf.clear();
            acks.clear();
            let mut sync = false;
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append { record, ack } => {
                        buf.extend_from_slice(&record);
                        acks.push(ack);
                    }
                    Msg::Flush { ack } => {
                        sync = true;
                        acks.push(ack);
                    }
                    Msg::Shutdown { ack } => {
                        sync = true;
                        shutdown = Some(ack);
                        break;
                    }
                }
                if acks.len() < MAX_BATCH_RECORDS {
                    next = rx.try_recv().ok();
                }
            }
            // A writer that panicked under the lock left a journal whose state is unknown:
            // everything queued fails closed.
            let Ok(mut this) = state.lock() else {
                return;
            };
            sync |= !buf.is_empty() && this.durability == Durability::PowerLoss;
            let reply = this.commit_group(&buf, sync);
            for ack in acks.drain(..) {
                // A waiter that went away needs no answer.
                let _ = ack.send(reply.clone());
            }
            if let Some(ack) = shutdown {
                this.closed = true;
                this.join_compactor();
                if let Some(ack) = ack {
                    let _ = ack.send(reply);
                }
                // Requests queued after the shutdown are dropped: their waiters get
                // "writer stopped", and their nonces stay consumed in memory.
                return;
            }
            this.maybe_compact();
        }
    }

    /// Commits one group of whole records (and syncs if asked), counting it.
    fn commit_group(&mut self, buf: &[u8], sync: bool) -> Result<(), WriteFailure> {
        let records = buf.len() / RECORD_LEN;
        match self.commit(buf, sync) {
            Ok(()) => {
                if records > 0 {
                    self.shared.batches_written.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .records_written
                        .fetch_add(as_u64(records), Ordering::Relaxed);
                }
                Ok(())
            }
            Err(error) => {
                self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
                Err(WriteFailure::from(&error))
            }
        }
    }

    /// Appends `buf` (and syncs if asked); on failure truncates the file back to the last
    /// good length so that a torn record never shifts the records after it.
    fn commit(&mut self, buf: &[u8], sync: bool) -> io::Result<()> {
        if buf.is_empty() && !sync {
            return Ok(());
        }
        if self.dirty {
            self.truncate_to_good_len()?;
        }
        let result = self
            .append(buf)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        if let Err(error) = result {
            // If this fails too, `dirty` stays set and the next commit retries it first.
            let _ = self.truncate_to_good_len();
            return Err(error);
        }
        self.good_len += as_u64(buf.len());
        self.shared
            .journal_bytes
            .store(self.good_len, Ordering::Relaxed);
        Ok(())
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        {
            let partial = lock_faults(&self.shared).partial_write.take();
            if let Some(n) = partial {
                self.file.write_all(&buf[..n.min(buf.len())])?;
                return Err(io::Error::other("injected write failure"));
            }
        }
        self.file.write_all(buf)
    }

    fn truncate_to_good_len(&mut self) -> io::Result<()> {
        self.dirty = true;
        #[cfg(test)]
        {
            let mut faults = lock_faults(&self.shared);
            if faults.failing_truncates > 0 {
                faults.failing_truncates -= 1;
                return Err(io::Error::other("injected truncate failure"));
            }
        }
        self.file.set_len(self.good_len)?;
        self.dirty = false;
        Ok(())
    }

    /// Between commit groups: when the journal is past the threshold and no compaction is
    /// running, starts a new journal generation and compacts the older ones in the
    /// background.
    fn maybe_compact(&mut self) {
        if self.good_len < self.next_compaction_at || self.dirty {
            return;
        }
        if self
            .compactor
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
        {
            return;
        }
        self.join_compactor();
        let generation = self.generation.saturating_add(1);
        let sync = self.durability == Durability::PowerLoss;
        let file = match create_journal(&self.dir, generation, sync) {
            Ok(file) => file,
            Err(_) => {
                // Keep appending to the current journal; retry after it grew some more.
                self.shared
                    .compaction_errors
                    .fetch_add(1, Ordering::Relaxed);
                self.next_compaction_at = self
                    .good_len
                    .saturating_add((self.compact_after_bytes / 4).max(64 << 10));
                return;
            }
        };
        let sealed = self.generation;
        self.file = file;
        self.generation = generation;
        self.good_len = as_u64(HEADER_LEN);
        self.next_compaction_at = self.compact_after_bytes;
        self.shared
            .journal_bytes
            .store(self.good_len, Ordering::Relaxed);

        let shared = Arc::clone(&self.shared);
        let dir = self.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("nonce-compactor".into())
            .spawn(move || {
                let result =
                    write_snapshot(&shared, &dir).and_then(|_| remove_journals_up_to(&dir, sealed));
                let counter = if result.is_ok() {
                    &shared.compactions
                } else {
                    &shared.compaction_errors
                };
                counter.fetch_add(1, Ordering::Relaxed);
            });
        match spawned {
            Ok(handle) => self.compactor = Some(handle),
            Err(_) => {
                // The sealed journal stays and is covered by the next compaction.
                self.shared
                    .compaction_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn join_compactor(&mut self) {
        if let Some(handle) = self.compactor.take()
            && handle.join().is_err()
        {
            self.shared
                .compaction_errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
fn lock_faults(shared: &Shared) -> MutexGuard<'_, Faults> {
    shared.faults.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State being rebuilt at open.
struct Loader {
    now_ms: u64,
    shards: Vec<Shard>,
    window_entries: usize,
    expired: u64,
}

impl Loader {
    fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            window_entries: 0,
            expired: 0,
        }
    }

    /// Applies one record, idempotently. `Err` names an unknown mode byte.
    fn apply(&mut self, key: KeyId, nonce: u64, mode: u8) -> Result<(), u8> {
        if mode != MODE_STRICT && mode != MODE_WINDOW {
            return Err(mode);
        }
        let state = self.shards[shard_index(key)].entry(key).or_default();
        state.high_water = Some(raise(state.high_water, nonce));
        if mode == MODE_WINDOW {
            if window_entry_expires_at(nonce) <= self.now_ms {
                self.expired += 1;
            } else if state.window.insert(nonce) {
                self.window_entries += 1;
            }
        }
        Ok(())
    }
}

fn lock_dir(dir: &Path) -> Result<File, StoreError> {
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

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{JOURNAL_PREFIX}{generation:016x}{JOURNAL_SUFFIX}"))
}

fn journal_generation(name: &str) -> Option<u64> {
    let hex = name
        .strip_prefix(JOURNAL_PREFIX)?
        .strip_suffix(JOURNAL_SUFFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The journals in `dir`, oldest generation first.
fn list_journals(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
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

fn remove_journals_up_to(dir: &Path, last: u64) -> io::Result<()> {
    for (generation, path) in list_journals(dir)? {
        if generation <= last {
            remove_if_exists(&path)?;
        }
    }
    Ok(())
}

/// Creates (or empties) the journal of `generation` and writes its header.
fn create_journal(dir: &Path, generation: u64, sync: bool) -> io::Result<File> {
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

/// What replaying one journal found.
#[derive(Debug, Default)]
struct JournalScan {
    /// File length.
    len: u64,
    /// End of the valid prefix: before the first bad or partial record (0 if the header
    /// itself is incomplete).
    good_len: u64,
    records: u64,
    bad_records: u64,
    /// A record with a valid CRC follows a bad one: damage, not a torn tail.
    valid_after_bad: bool,
}

fn replay_journal(path: &Path, loader: &mut Loader) -> Result<JournalScan, StoreError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut scan = JournalScan {
        len,
        ..JournalScan::default()
    };
    if len < as_u64(HEADER_LEN) {
        return Ok(scan);
    }
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut head = [0u8; HEADER_LEN];
    reader.read_exact(&mut head)?;
    if head != header(JOURNAL_MAGIC) {
        return Err(StoreError::Corrupt(format!(
            "{} is not a version {FORMAT_VERSION} nonce journal",
            path.display()
        )));
    }
    let mut offset = as_u64(HEADER_LEN);
    let mut first_bad = None;
    let mut record = [0u8; RECORD_LEN];
    while offset + as_u64(RECORD_LEN) <= len {
        reader.read_exact(&mut record)?;
        if let Some(payload) = verify_record(&record) {
            let (key, nonce, mode) = decode_payload(&payload);
            loader.apply(key, nonce, mode).map_err(|mode| {
                StoreError::Corrupt(format!(
                    "{} holds a record of unknown mode {mode}",
                    path.display()
                ))
            })?;
            scan.records += 1;
            scan.valid_after_bad |= first_bad.is_some();
        } else {
            scan.bad_records += 1;
            first_bad.get_or_insert(offset);
        }
        offset += as_u64(RECORD_LEN);
    }
    scan.good_len = first_bad.unwrap_or(offset);
    Ok(scan)
}

/// Loads a snapshot; returns its record count.
fn load_snapshot(file: File, path: &Path, loader: &mut Loader) -> Result<u64, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("{}: {why}", path.display()));
    let len = file.metadata()?.len();
    let fixed = as_u64(HEADER_LEN + SNAPSHOT_TRAILER_LEN);
    if len < fixed || !(len - fixed).is_multiple_of(as_u64(PAYLOAD_LEN)) {
        return Err(corrupt("truncated or padded nonce snapshot"));
    }
    let count = (len - fixed) / as_u64(PAYLOAD_LEN);
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = crc32fast::Hasher::new();
    let mut head = [0u8; HEADER_LEN];
    reader.read_exact(&mut head)?;
    if head[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt("not a nonce snapshot"));
    }
    if head != header(SNAPSHOT_MAGIC) {
        return Err(corrupt("unsupported nonce snapshot version"));
    }
    hasher.update(&head);
    let mut payload = [0u8; PAYLOAD_LEN];
    for _ in 0..count {
        reader.read_exact(&mut payload)?;
        hasher.update(&payload);
        let (key, nonce, mode) = decode_payload(&payload);
        loader
            .apply(key, nonce, mode)
            .map_err(|_| corrupt("nonce snapshot record of unknown mode"))?;
    }
    let mut count_bytes = [0u8; 8];
    let mut crc_bytes = [0u8; 4];
    reader.read_exact(&mut count_bytes)?;
    reader.read_exact(&mut crc_bytes)?;
    hasher.update(&count_bytes);
    if u64::from_le_bytes(count_bytes) != count {
        return Err(corrupt("nonce snapshot record count mismatch"));
    }
    if hasher.finalize() != u32::from_le_bytes(crc_bytes) {
        return Err(corrupt("nonce snapshot checksum mismatch"));
    }
    Ok(count)
}

/// Writes a snapshot of the whole in-memory state (`tmp`, fsync, rename, fsync dir);
/// returns its record count.
fn write_snapshot(shared: &Shared, dir: &Path) -> io::Result<u64> {
    let tmp = dir.join(SNAPSHOT_TMP_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = crc32fast::Hasher::new();
    let head = header(SNAPSHOT_MAGIC);
    hasher.update(&head);
    out.write_all(&head)?;
    let mut count = 0u64;
    let mut chunk = Vec::new();
    for shard in &shared.shards {
        chunk.clear();
        {
            let shard = lock_anyway(shard);
            for (&key, state) in shard.iter() {
                if let Some(high_water) = state.high_water {
                    chunk.extend_from_slice(&encode_payload(key, high_water, MODE_STRICT));
                    count += 1;
                }
                for &nonce in &state.window {
                    chunk.extend_from_slice(&encode_payload(key, nonce, MODE_WINDOW));
                    count += 1;
                }
            }
        }
        hasher.update(&chunk);
        out.write_all(&chunk)?;
    }
    let count_bytes = count.to_le_bytes();
    hasher.update(&count_bytes);
    out.write_all(&count_bytes)?;
    out.write_all(&hasher.finalize().to_le_bytes())?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    sync_dir(dir)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whitebit_auth::nonce::{NonceBook, NonceLedger, WINDOW_MARGIN_MS, WINDOW_MS};

    const NOW: u64 = 1_700_000_000_000;

    type Answer = Result<Result<(), ApiError>, StoreError>;

    /// splitmix64: deterministic, no dependencies.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn config(dir: &Path) -> JournalConfig {
        JournalConfig::new(dir)
    }

    fn open(dir: &Path, now: u64) -> JournalNonceStore {
        JournalNonceStore::open(config(dir), now).expect("open store")
    }

    fn ok(answer: Answer) -> Result<(), ApiError> {
        answer.expect("no store error")
    }

    fn journal_files(dir: &Path) -> Vec<PathBuf> {
        list_journals(dir)
            .expect("list journals")
            .into_iter()
            .map(|(_, path)| path)
            .collect()
    }

    fn only_journal(dir: &Path) -> PathBuf {
        let files = journal_files(dir);
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    /// A crash image: the files as they are on disk right now, store still running.
    fn copy_dir(from: &Path, to: &Path) {
        for entry in fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }

    fn append_bytes(path: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open journal");
        file.write_all(bytes).expect("append");
    }

    fn model_check(
        ledger: &NonceLedger<u64>,
        key: u64,
        nonce: u64,
        mode: NonceMode,
        now: u64,
    ) -> Result<(), ApiError> {
        ledger.book(&key).map_or_else(
            || NonceBook::new().check(nonce, mode, now),
            |book| book.check(nonce, mode, now),
        )
    }

    async fn run_model(seed: u64, compact_after_bytes: u64, crash_image: bool) {
        let base = tempfile::tempdir().expect("tempdir");
        let mut generation = 0;
        let mut dir = base.path().join("0");
        fs::create_dir_all(&dir).expect("mkdir");
        let cfg = |dir: &Path| JournalConfig {
            compact_after_bytes,
            ..JournalConfig::new(dir)
        };
        let mut now = NOW;
        let mut store = JournalNonceStore::open(cfg(&dir), now).expect("open");
        let mut ledger = NonceLedger::<u64>::new();
        let mut rng = Rng(seed);
        let mut used: Vec<u64> = Vec::new();
        let mut accepted = 0;
        let mut compactions = 0;
        let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
        for step in 0..4_000u32 {
            now += rng.below(600);
            let key = rng.below(6);
            let mode = if rng.below(2) == 0 {
                NonceMode::Strict
            } else {
                NonceMode::Window
            };
            let nonce = match rng.below(5) {
                0 => now.wrapping_sub(7_000).wrapping_add(rng.below(14_001)),
                1 if !used.is_empty() => {
                    used[usize::try_from(rng.below(as_u64(used.len()))).expect("index")]
                }
                2 => ledger
                    .book(&key)
                    .and_then(NonceBook::high_water)
                    .map_or(0, |hw| hw.saturating_sub(2).saturating_add(rng.below(5))),
                3 => rng.below(10),
                _ => now.saturating_sub(5_000).saturating_add(rng.below(10_001)),
            };
            let expected_check = model_check(&ledger, key, nonce, mode, now);
            assert_eq!(
                ok(store.check(key, nonce, mode, now).await),
                expected_check,
                "check at step {step}"
            );
            let expected = ledger.consume(key, nonce, mode, now);
            assert_eq!(
                ok(store.consume(key, nonce, mode, now).await),
                expected,
                "consume at step {step}"
            );
            *outcomes.entry(format!("{expected:?}")).or_insert(0) += 1;
            if expected.is_ok() {
                accepted += 1;
                used.push(nonce);
                if used.len() > 64 {
                    used.remove(0);
                }
            }
            if step % 700 == 0 {
                store.sweep(now);
            }
            if step % 1_000 == 999 {
                // Reopen: cleanly, or from a crash image taken while the store runs.
                generation += 1;
                let next = base.path().join(generation.to_string());
                fs::create_dir_all(&next).expect("mkdir");
                if crash_image {
                    copy_dir(&dir, &next);
                    drop(store);
                } else {
                    store.shutdown().await.expect("shutdown");
                    compactions += store.stats().compactions;
                    drop(store);
                    copy_dir(&dir, &next);
                }
                dir = next;
                store = JournalNonceStore::open(cfg(&dir), now).expect("reopen");
            }
        }
        assert!(
            accepted > 1_000,
            "the sequence must accept a fair share: {accepted}"
        );
        // Every rule gets exercised, both ways.
        assert_eq!(outcomes.len(), 5, "{outcomes:?}");
        assert!(outcomes.values().all(|&n| n >= 20), "{outcomes:?}");
        for key in 0..6 {
            assert_eq!(
                store.high_water(key),
                ledger.book(&key).and_then(NonceBook::high_water),
                "key {key}"
            );
        }
        store.shutdown().await.expect("shutdown");
        compactions += store.stats().compactions;
        assert_eq!(
            compactions > 0,
            compact_after_bytes < 1_000,
            "{compactions}"
        );
    }

    #[tokio::test]
    async fn matches_the_reference_model_across_clean_reopens() {
        run_model(1, JournalConfig::DEFAULT_COMPACT_AFTER_BYTES, false).await;
    }

    #[tokio::test]
    async fn matches_the_reference_model_across_crash_images() {
        run_model(2, JournalConfig::DEFAULT_COMPACT_AFTER_BYTES, true).await;
    }

    #[tokio::test]
    async fn matches_the_reference_model_with_constant_compaction() {
        run_model(3, 200, false).await;
    }

    #[tokio::test]
    async fn accepted_nonces_survive_a_crash() {
        let live = tempfile::tempdir().expect("tempdir");
        let image = tempfile::tempdir().expect("tempdir");
        let store = open(live.path(), NOW);
        for nonce in 1..=3 {
            assert_eq!(
                ok(store.consume(7, nonce, NonceMode::Strict, NOW).await),
                Ok(())
            );
        }
        for nonce in [NOW - 10, NOW + 10, NOW] {
            assert_eq!(
                ok(store.consume(8, nonce, NonceMode::Window, NOW).await),
                Ok(())
            );
        }
        // No flush, no shutdown: the files as a `kill -9` would leave them.
        copy_dir(live.path(), image.path());
        let crashed = open(image.path(), NOW);
        assert_eq!(crashed.recovery().journal_records, 6);
        for nonce in 1..=3 {
            assert_eq!(
                ok(crashed.consume(7, nonce, NonceMode::Strict, NOW).await),
                Err(ApiError::NonceNotIncreasing)
            );
        }
        for nonce in [NOW - 10, NOW + 10, NOW] {
            assert_eq!(
                ok(crashed.consume(8, nonce, NonceMode::Window, NOW).await),
                Err(ApiError::NonceReused)
            );
        }
        // Window acceptance raised the high-water mark too.
        assert_eq!(
            ok(crashed.consume(8, NOW + 10, NonceMode::Strict, NOW).await),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(
            ok(crashed.consume(7, 4, NonceMode::Strict, NOW).await),
            Ok(())
        );
        drop(store);
    }

    #[tokio::test]
    async fn power_loss_mode_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = JournalConfig {
            durability: Durability::PowerLoss,
            ..config(dir.path())
        };
        let store = JournalNonceStore::open(cfg.clone(), NOW).expect("open");
        assert_eq!(
            ok(store.consume(1, 10, NonceMode::Strict, NOW).await),
            Ok(())
        );
        assert_eq!(
            ok(store.consume(1, NOW, NonceMode::Window, NOW).await),
            Ok(())
        );
        store.flush().await.expect("flush");
        drop(store);
        let store = JournalNonceStore::open(cfg, NOW).expect("reopen");
        assert_eq!(
            ok(store.consume(1, NOW, NonceMode::Window, NOW).await),
            Err(ApiError::NonceReused)
        );
        assert_eq!(store.high_water(1), Some(NOW));
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_and_later_appends_replay() {
        for garbage in [
            &[0xAB_u8; 5][..],
            &[0x00; RECORD_LEN][..],
            &[0x5A; RECORD_LEN * 2 + 3][..],
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open(dir.path(), NOW);
            for nonce in 1..=5 {
                assert_eq!(
                    ok(store.consume(1, nonce, NonceMode::Strict, NOW).await),
                    Ok(())
                );
            }
            store.shutdown().await.expect("shutdown");
            drop(store);
            let journal = only_journal(dir.path());
            let good_len = fs::metadata(&journal).expect("stat").len();
            assert_eq!(good_len, as_u64(HEADER_LEN + 5 * RECORD_LEN));
            // A half record, a zero-filled record, garbage records: a torn tail.
            append_bytes(&journal, garbage);

            let store = open(dir.path(), NOW);
            assert_eq!(store.recovery().torn_bytes_truncated, as_u64(garbage.len()));
            assert!(!store.recovery().compacted_at_open);
            assert_eq!(fs::metadata(&journal).expect("stat").len(), good_len);
            assert_eq!(
                ok(store.consume(1, 5, NonceMode::Strict, NOW).await),
                Err(ApiError::NonceNotIncreasing)
            );
            assert_eq!(
                ok(store.consume(1, 6, NonceMode::Strict, NOW).await),
                Ok(())
            );
            assert_eq!(
                ok(store.consume(2, NOW, NonceMode::Window, NOW).await),
                Ok(())
            );
            store.shutdown().await.expect("shutdown");
            drop(store);

            let store = open(dir.path(), NOW);
            assert_eq!(store.recovery().journal_records, 7);
            assert_eq!(store.recovery().bad_records, 0);
            assert_eq!(
                ok(store.consume(1, 6, NonceMode::Strict, NOW).await),
                Err(ApiError::NonceNotIncreasing)
            );
            assert_eq!(
                ok(store.consume(2, NOW, NonceMode::Window, NOW).await),
                Err(ApiError::NonceReused)
            );
        }
    }

    #[tokio::test]
    async fn damage_in_the_middle_keeps_every_valid_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), NOW);
        for nonce in 1..=5 {
            assert_eq!(
                ok(store.consume(1, nonce, NonceMode::Strict, NOW).await),
                Ok(())
            );
        }
        assert_eq!(
            ok(store.consume(2, 100, NonceMode::Strict, NOW).await),
            Ok(())
        );
        store.shutdown().await.expect("shutdown");
        drop(store);
        let journal = only_journal(dir.path());
        let mut bytes = fs::read(&journal).expect("read");
        // Flip a bit in the third record (key 1, nonce 3).
        bytes[HEADER_LEN + 2 * RECORD_LEN + 9] ^= 0x10;
        fs::write(&journal, &bytes).expect("write");

        let store = open(dir.path(), NOW);
        let report = *store.recovery();
        assert_eq!(report.bad_records, 1);
        assert_eq!(report.journal_records, 5);
        assert!(report.compacted_at_open);
        assert_eq!(store.high_water(1), Some(5));
        assert_eq!(store.high_water(2), Some(100));
        store.shutdown().await.expect("shutdown");
        drop(store);
        // The damaged journal is gone; the snapshot holds the state.
        let store = open(dir.path(), NOW);
        assert!(store.recovery().snapshot_loaded);
        assert_eq!(store.recovery().bad_records, 0);
        assert_eq!(store.high_water(1), Some(5));
        assert_eq!(store.high_water(2), Some(100));
    }

    #[tokio::test]
    async fn unknown_journal_header_is_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(open(dir.path(), NOW));
        let journal = only_journal(dir.path());
        let mut bytes = fs::read(&journal).expect("read");
        bytes[8] = 2; // version 2
        fs::write(&journal, &bytes).expect("write");
        assert!(matches!(
            JournalNonceStore::open(config(dir.path()), NOW),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn compaction_keeps_the_state_and_a_corrupt_snapshot_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = JournalConfig {
            compact_after_bytes: 300,
            ..config(dir.path())
        };
        let store = JournalNonceStore::open(cfg.clone(), NOW).expect("open");
        for i in 0..200u64 {
            assert_eq!(
                ok(store
                    .consume(i % 7, 1_000 + i, NonceMode::Strict, NOW)
                    .await),
                Ok(())
            );
            assert_eq!(
                ok(store
                    .consume(100 + i % 5, NOW - 2_000 + i, NonceMode::Window, NOW)
                    .await),
                Ok(())
            );
        }
        store.shutdown().await.expect("shutdown");
        let stats = store.stats();
        assert!(stats.compactions > 0, "{stats:?}");
        assert_eq!(stats.compaction_errors, 0);
        assert_eq!(stats.records_written, 400);
        drop(store);
        assert!(dir.path().join(SNAPSHOT_FILE).exists());
        assert_eq!(journal_files(dir.path()).len(), 1);

        let check = |store: &JournalNonceStore| {
            for key in 0..7 {
                assert_eq!(store.high_water(key), Some(1_000 + 199 - (199 - key) % 7));
            }
            assert_eq!(store.stats().window_entries, 200);
        };
        let store = JournalNonceStore::open(cfg.clone(), NOW).expect("reopen");
        assert!(store.recovery().snapshot_loaded);
        check(&store);
        for i in 0..200u64 {
            assert_eq!(
                ok(store
                    .consume(100 + i % 5, NOW - 2_000 + i, NonceMode::Window, NOW)
                    .await),
                Err(ApiError::NonceReused)
            );
            assert_eq!(
                ok(store
                    .consume(i % 7, 1_000 + i, NonceMode::Strict, NOW)
                    .await),
                Err(ApiError::NonceNotIncreasing)
            );
        }
        drop(store);

        // Reopening again (from the snapshot and the fresh journal) gives the same state.
        let store = JournalNonceStore::open(cfg.clone(), NOW).expect("reopen");
        check(&store);
        drop(store);

        let snapshot = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = fs::read(&snapshot).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(&snapshot, &bytes).expect("write");
        assert!(matches!(
            JournalNonceStore::open(cfg.clone(), NOW),
            Err(StoreError::Corrupt(_))
        ));
        bytes[middle] ^= 0x01;
        bytes.pop();
        fs::write(&snapshot, &bytes).expect("write");
        assert!(matches!(
            JournalNonceStore::open(cfg.clone(), NOW),
            Err(StoreError::Corrupt(_))
        ));
        fs::write(&snapshot, b"").expect("write");
        assert!(matches!(
            JournalNonceStore::open(cfg, NOW),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn stale_journals_beside_a_newer_snapshot_replay_idempotently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), NOW);
        for nonce in 1..=10 {
            assert_eq!(
                ok(store.consume(1, nonce, NonceMode::Strict, NOW).await),
                Ok(())
            );
        }
        assert_eq!(
            ok(store.consume(2, NOW, NonceMode::Window, NOW).await),
            Ok(())
        );
        store.shutdown().await.expect("shutdown");
        drop(store);
        let old = only_journal(dir.path());
        // Compact by hand: snapshot written, then the journal "not yet deleted" plus a new one.
        {
            let mut loader = Loader::new(NOW);
            replay_journal(&old, &mut loader).expect("replay");
            let shared = Shared::new(loader.shards, loader.window_entries, 10);
            write_snapshot(&shared, dir.path()).expect("snapshot");
        }
        let newer = journal_path(dir.path(), 2);
        drop(create_journal(dir.path(), 2, false).expect("create"));
        append_bytes(&newer, &encode_record(1, 11, NonceMode::Strict));

        let store = open(dir.path(), NOW);
        assert!(store.recovery().compacted_at_open);
        assert_eq!(store.recovery().journal_files, 2);
        assert_eq!(store.high_water(1), Some(11));
        assert_eq!(
            ok(store.consume(2, NOW, NonceMode::Window, NOW).await),
            Err(ApiError::NonceReused)
        );
        assert_eq!(store.stats().window_entries, 1);
        drop(store);
        assert_eq!(journal_files(dir.path()), vec![journal_path(dir.path(), 3)]);
    }

    #[tokio::test]
    async fn window_entries_expire_and_the_cap_refuses_rather_than_evicts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = JournalConfig {
            max_window_entries: 3,
            ..config(dir.path())
        };
        let store = JournalNonceStore::open(cfg.clone(), NOW).expect("open");
        for nonce in [NOW - 1, NOW, NOW + 1] {
            assert_eq!(
                ok(store.consume(1, nonce, NonceMode::Window, NOW).await),
                Ok(())
            );
        }
        // Full: a new window nonce is refused, for any key; nothing was evicted.
        for key in [1, 2] {
            match store.consume(key, NOW + 2, NonceMode::Window, NOW).await {
                Err(StoreError::Unavailable(message)) => {
                    assert_eq!(message, "window capacity reached")
                }
                other => panic!("expected capacity refusal, got {other:?}"),
            }
        }
        for nonce in [NOW - 1, NOW, NOW + 1] {
            assert_eq!(
                ok(store.consume(1, nonce, NonceMode::Window, NOW).await),
                Err(ApiError::NonceReused)
            );
        }
        assert_eq!(store.stats().window_entries, 3);
        // Strict mode is not limited.
        assert_eq!(
            ok(store.consume(3, 5, NonceMode::Strict, NOW).await),
            Ok(())
        );

        // Expiry: nothing before nonce + window + margin.
        let first_expiry = window_entry_expires_at(NOW - 1);
        assert_eq!(first_expiry, NOW - 1 + WINDOW_MS + WINDOW_MARGIN_MS);
        assert_eq!(store.sweep(first_expiry - 1), 0);
        assert_eq!(store.sweep(first_expiry), 1);
        assert_eq!(store.stats().window_entries, 2);
        // The cap frees expired entries by itself (one sweep, then retry).
        let later = window_entry_expires_at(NOW + 1);
        assert_eq!(
            ok(store.consume(2, later, NonceMode::Window, later).await),
            Ok(())
        );
        assert_eq!(
            ok(store.consume(2, later + 1, NonceMode::Window, later).await),
            Ok(())
        );
        assert_eq!(store.stats().window_entries, 2);
        // Using a key forgets its expired entries too.
        let much_later = window_entry_expires_at(later + 1);
        assert_eq!(
            ok(store
                .consume(2, much_later + 100, NonceMode::Strict, much_later)
                .await),
            Ok(())
        );
        assert_eq!(store.stats().window_entries, 0);
        assert_eq!(store.stats().keys, 3);
        store.shutdown().await.expect("shutdown");
        drop(store);

        // Entries expired at open are not loaded; high-water marks are.
        let store = JournalNonceStore::open(cfg, much_later).expect("reopen");
        assert_eq!(store.stats().window_entries, 0);
        assert_eq!(store.recovery().expired_window_entries, 5);
        assert_eq!(store.high_water(1), Some(NOW + 1));
        assert_eq!(store.high_water(2), Some(much_later + 100));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_duplicates_are_accepted_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open(dir.path(), NOW));
        for (key, mode, nonce) in [(1, NonceMode::Strict, 42), (2, NonceMode::Window, NOW + 3)] {
            let tasks: Vec<_> = (0..200)
                .map(|_| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move { ok(store.consume(key, nonce, mode, NOW).await) })
                })
                .collect();
            let mut accepted = 0;
            for task in tasks {
                if task.await.expect("task").is_ok() {
                    accepted += 1;
                }
            }
            assert_eq!(accepted, 1, "{mode:?}");
        }
        // Many different nonces at once are all accepted, in few commit groups.
        let tasks: Vec<_> = (0..500u64)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    ok(store.consume(1_000 + i, i, NonceMode::Strict, NOW).await)
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task"), Ok(()));
        }
        let stats = store.stats();
        assert_eq!(stats.records_written, 502);
        assert!(stats.batches_written <= 502);
    }

    #[tokio::test]
    async fn write_failure_fails_closed_and_the_store_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), NOW);
        assert_eq!(
            ok(store.consume(1, 1, NonceMode::Strict, NOW).await),
            Ok(())
        );

        // A write that tears mid-record, then the truncation fails once as well.
        {
            let mut faults = lock_faults(&store.shared);
            faults.partial_write = Some(7);
            faults.failing_truncates = 1;
        }
        assert!(matches!(
            store.consume(1, 2, NonceMode::Strict, NOW).await,
            Err(StoreError::Io(_))
        ));
        // Burned: never accepted after a failed write.
        assert_eq!(
            ok(store.consume(1, 2, NonceMode::Strict, NOW).await),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(
            ok(store.check(1, 2, NonceMode::Strict, NOW).await),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(store.stats().write_errors, 1);
        // The file is repaired before the next append, which succeeds.
        assert_eq!(
            ok(store.consume(1, 3, NonceMode::Strict, NOW).await),
            Ok(())
        );

        // A torn window-mode write: the nonce stays consumed, in memory.
        lock_faults(&store.shared).partial_write = Some(10);
        assert!(matches!(
            store.consume(2, NOW, NonceMode::Window, NOW).await,
            Err(StoreError::Io(_))
        ));
        assert_eq!(
            ok(store.consume(2, NOW, NonceMode::Window, NOW).await),
            Err(ApiError::NonceReused)
        );
        assert_eq!(
            ok(store.consume(2, NOW + 1, NonceMode::Window, NOW).await),
            Ok(())
        );

        // Two truncations fail: the writer refuses to append past torn bytes meanwhile.
        {
            let mut faults = lock_faults(&store.shared);
            faults.partial_write = Some(4);
            faults.failing_truncates = 2;
        }
        assert!(store.consume(3, 1, NonceMode::Strict, NOW).await.is_err());
        assert!(store.consume(3, 2, NonceMode::Strict, NOW).await.is_err());
        assert_eq!(
            ok(store.consume(3, 3, NonceMode::Strict, NOW).await),
            Ok(())
        );
        store.shutdown().await.expect("shutdown");
        let stats = store.stats();
        assert_eq!(stats.records_written, 4);
        drop(store);

        // Exactly the acknowledged records, whole.
        let journal = only_journal(dir.path());
        assert_eq!(
            fs::metadata(&journal).expect("stat").len(),
            as_u64(HEADER_LEN + 4 * RECORD_LEN)
        );
        let store = open(dir.path(), NOW);
        assert_eq!(store.recovery().bad_records, 0);
        assert_eq!(store.recovery().torn_bytes_truncated, 0);
        assert_eq!(store.high_water(1), Some(3));
        assert_eq!(store.high_water(2), Some(NOW + 1));
        assert_eq!(store.high_water(3), Some(3));
        assert_eq!(
            ok(store.consume(1, 3, NonceMode::Strict, NOW).await),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(
            ok(store.consume(2, NOW + 1, NonceMode::Window, NOW).await),
            Err(ApiError::NonceReused)
        );
    }

    #[tokio::test]
    async fn a_second_store_cannot_open_the_same_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), NOW);
        match JournalNonceStore::open(config(dir.path()), NOW) {
            Err(StoreError::Unavailable(message)) => {
                assert!(
                    message.contains(&dir.path().display().to_string()),
                    "{message}"
                );
            }
            other => panic!("expected a lock refusal, got {other:?}"),
        }
        drop(store);
        drop(open(dir.path(), NOW));
    }

    #[tokio::test]
    async fn after_shutdown_consume_fails_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), NOW);
        assert_eq!(
            ok(store.consume(1, 1, NonceMode::Strict, NOW).await),
            Ok(())
        );
        store.shutdown().await.expect("shutdown");
        assert!(matches!(
            store.consume(1, 2, NonceMode::Strict, NOW).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.flush().await,
            Err(StoreError::Unavailable(_))
        ));
        store.shutdown().await.expect("second shutdown is a no-op");
        assert_eq!(
            ok(store.check(1, 2, NonceMode::Strict, NOW).await),
            Err(ApiError::NonceNotIncreasing)
        );
    }

    #[test]
    fn record_codec_round_trips_and_zeros_fail_the_crc() {
        let record = encode_record(u64::MAX, u64::MAX - 1, NonceMode::Window);
        let payload = verify_record(&record).expect("valid");
        assert_eq!(
            decode_payload(&payload),
            (u64::MAX, u64::MAX - 1, MODE_WINDOW)
        );
        assert!(verify_record(&[0u8; RECORD_LEN]).is_none());
        let mut bad = record;
        bad[3] ^= 1;
        assert!(verify_record(&bad).is_none());
        assert_eq!(
            journal_generation("nonces.00000000000000ff.journal"),
            Some(255)
        );
        assert_eq!(journal_generation("nonces.ff.journal"), None);
        assert_eq!(journal_generation("nonces.snap"), None);
        let counts = (0..640u64).fold([0usize; SHARDS], |mut acc, key| {
            acc[shard_index(key)] += 1;
            acc
        });
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    }
}
