//! The journal writer: commit groups of records appended (and synced in power-loss mode)
//! before their nonces are answered, and compaction.
//!
//! When the journal grows past [`JournalConfig::compact_after_bytes`], the writer thread
//! starts a new journal generation (between two commit groups, which costs one file
//! creation) and a compactor thread writes a snapshot of the whole in-memory state to
//! `nonces.snap.tmp`, fsyncs it, renames it over `nonces.snap`, fsyncs the directory and
//! deletes the older journals. Every record in an older journal was applied to memory before
//! it was written, so the snapshot covers it; a crash anywhere in between leaves files that
//! replay to the same state. Accepting nonces never waits for a snapshot to be written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::format::{
    HEADER_LEN, MODE_STRICT, MODE_WINDOW, RECORD_LEN, SNAPSHOT_FILE, SNAPSHOT_MAGIC,
    SNAPSHOT_TMP_FILE, as_u64, create_journal, encode_payload, header, remove_journals_up_to,
    sync_dir,
};
#[cfg(test)]
use super::state::lock_faults;
use super::state::{Shared, lock_anyway};
use super::{Durability, JournalConfig};
use crate::StoreError;

/// Most records written in one commit group.
pub(super) const MAX_BATCH_RECORDS: usize = 16_384;

/// Why a commit group failed, as handed to every waiter of the group.
#[derive(Debug, Clone)]
pub(super) struct WriteFailure {
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

pub(super) type Ack = oneshot::Sender<Result<(), WriteFailure>>;

/// Requests to the writer thread.
pub(super) enum Msg {
    /// Write this record, then answer (with `Durability::PowerLoss`; the default durability
    /// appends inline).
    Append { record: [u8; RECORD_LEN], ack: Ack },
    /// Answer once everything before is written and synced.
    Flush { ack: Ack },
    /// Write and sync everything before, answer, and stop.
    Shutdown { ack: Option<Ack> },
}

pub(super) fn writer_stopped() -> StoreError {
    StoreError::Unavailable("nonce journal writer stopped".into())
}

/// The journal: its file and bookkeeping. The writer thread commits groups under its mutex;
/// with [`Durability::ProcessCrash`] `consume` commits its own record under it.
pub(super) struct Writer {
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
    pub(super) closed: bool,
    compactor: Option<JoinHandle<()>>,
}

impl Writer {
    /// The writer of the journal `file` (generation `generation`, verified up to `good_len`).
    pub(super) fn new(
        shared: Arc<Shared>,
        config: &JournalConfig,
        file: File,
        generation: u64,
        good_len: u64,
    ) -> Self {
        Self {
            shared,
            dir: config.dir.clone(),
            durability: config.durability,
            compact_after_bytes: config.compact_after_bytes,
            next_compaction_at: config.compact_after_bytes,
            file,
            generation,
            good_len,
            dirty: false,
            closed: false,
            compactor: None,
        }
    }

    /// The writer thread: commit groups of queued records, flushes and the shutdown.
    pub(super) fn run(state: &Mutex<Writer>, rx: &mpsc::Receiver<Msg>) {
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
    pub(super) fn commit_group(&mut self, buf: &[u8], sync: bool) -> Result<(), WriteFailure> {
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
    pub(super) fn maybe_compact(&mut self) {
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

/// Writes a snapshot of the whole in-memory state (`tmp`, fsync, rename, fsync dir);
/// returns its record count.
pub(super) fn write_snapshot(shared: &Shared, dir: &Path) -> io::Result<u64> {
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
