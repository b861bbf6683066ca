//! Reading the files back at open.
//!
//! Open loads the snapshot, then replays every journal (replay is idempotent: high-water
//! marks take the maximum, window entries are a set). Window entries already expired at
//! `now_ms` are dropped. A torn tail — a partial record, or records that fail their CRC up
//! to the end of the file — is truncated away. Records with a valid CRC *after* a bad one
//! (damage in the middle of the file) are still applied, never thrown away, and the state is
//! then compacted at once into a fresh snapshot and journal; so is a directory holding more
//! than one journal (a crash during compaction). Nothing is logged here; see
//! `JournalNonceStore::recovery`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read as _};
use std::path::Path;
use std::sync::atomic::Ordering;

use whitebit_auth::nonce::{raise, window_entry_expires_at};

use super::format::{
    FORMAT_VERSION, HEADER_LEN, JOURNAL_MAGIC, MODE_STRICT, MODE_WINDOW, PAYLOAD_LEN, RECORD_LEN,
    SNAPSHOT_FILE, SNAPSHOT_MAGIC, SNAPSHOT_TMP_FILE, SNAPSHOT_TRAILER_LEN, as_u64, create_journal,
    decode_payload, header, list_journals, remove_if_exists, remove_journals_up_to, verify_record,
};
use super::state::{SHARDS, Shard, Shared, shard_index};
use super::writer::write_snapshot;
use crate::{KeyId, StoreError};

/// What [`JournalNonceStore::open`](super::JournalNonceStore::open) found and repaired. Holds
/// no nonce and no key id, so it is safe to log.
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

/// The state and the journal to append to, as recovered at open.
pub(super) struct Recovered {
    pub(super) shared: Shared,
    pub(super) file: File,
    pub(super) generation: u64,
    /// Length of the journal's verified content.
    pub(super) good_len: u64,
    pub(super) report: RecoveryReport,
}

/// Loads the snapshot and replays the journals in `dir` (dropping window entries expired at
/// `now_ms`), repairs a torn tail, and compacts at once when a journal is damaged in the
/// middle or there are several.
pub(super) fn recover(
    dir: &Path,
    max_window_entries: usize,
    now_ms: u64,
) -> Result<Recovered, StoreError> {
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

    let journals = list_journals(dir)?;
    let mut scans = Vec::with_capacity(journals.len());
    for (_, path) in &journals {
        let scan = replay_journal(path, &mut loader)?;
        report.journal_records += scan.records;
        report.bad_records += scan.bad_records;
        scans.push(scan);
    }
    report.journal_files = journals.len();
    report.expired_window_entries = loader.expired;

    let shared = Shared::new(loader.shards, loader.window_entries, max_window_entries);

    let (generation, file, good_len) = match (journals.as_slice(), scans.as_slice()) {
        ([], _) => (1, create_journal(dir, 1, true)?, as_u64(HEADER_LEN)),
        ([(generation, path)], [scan]) if !scan.valid_after_bad => {
            if scan.good_len < as_u64(HEADER_LEN) {
                // Torn header: the file was being created.
                report.torn_bytes_truncated = scan.len;
                let file = create_journal(dir, *generation, true)?;
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
            write_snapshot(&shared, dir)?;
            shared.compactions.fetch_add(1, Ordering::Relaxed);
            remove_journals_up_to(dir, last)?;
            report.compacted_at_open = true;
            let generation = last.saturating_add(1);
            (
                generation,
                create_journal(dir, generation, true)?,
                as_u64(HEADER_LEN),
            )
        }
    };
    shared.journal_bytes.store(good_len, Ordering::Relaxed);

    Ok(Recovered {
        shared,
        file,
        generation,
        good_len,
        report,
    })
}

/// State being rebuilt at open.
pub(super) struct Loader {
    pub(super) now_ms: u64,
    pub(super) shards: Vec<Shard>,
    pub(super) window_entries: usize,
    pub(super) expired: u64,
}

impl Loader {
    pub(super) fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            window_entries: 0,
            expired: 0,
        }
    }

    /// Applies one record, idempotently. `Err` names an unknown mode byte.
    pub(super) fn apply(&mut self, key: KeyId, nonce: u64, mode: u8) -> Result<(), u8> {
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

/// What replaying one journal found.
#[derive(Debug, Default)]
pub(super) struct JournalScan {
    /// File length.
    pub(super) len: u64,
    /// End of the valid prefix: before the first bad or partial record (0 if the header
    /// itself is incomplete).
    pub(super) good_len: u64,
    pub(super) records: u64,
    pub(super) bad_records: u64,
    /// A record with a valid CRC follows a bad one: damage, not a torn tail.
    pub(super) valid_after_bad: bool,
}

pub(super) fn replay_journal(path: &Path, loader: &mut Loader) -> Result<JournalScan, StoreError> {
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
pub(super) fn load_snapshot(
    file: File,
    path: &Path,
    loader: &mut Loader,
) -> Result<u64, StoreError> {
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
