use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;

use super::format::{
    HEADER_LEN, MODE_WINDOW, RECORD_LEN, SNAPSHOT_FILE, as_u64, create_journal, decode_payload,
    journal_generation, journal_path, list_journals, verify_record,
};
use super::recovery::{Loader, replay_journal};
use super::state::{SHARDS, lock_faults, shard_index};
use super::writer::write_snapshot;
use super::*;
use crate::NonceStore;
use whitebit_auth::NonceMode::{Strict, Window};
use whitebit_auth::nonce::{
    NonceBook, NonceLedger, WINDOW_MARGIN_MS, WINDOW_MS, window_entry_expires_at,
};

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

/// `consume` at `NOW`: the rules' answer (a store error fails the test).
async fn consume(
    store: &JournalNonceStore,
    key: u64,
    nonce: u64,
    mode: NonceMode,
) -> Result<(), ApiError> {
    ok(store.consume(key, nonce, mode, NOW).await)
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
        assert_eq!(consume(&store, 7, nonce, Strict).await, Ok(()));
    }
    for nonce in [NOW - 10, NOW + 10, NOW] {
        assert_eq!(consume(&store, 8, nonce, Window).await, Ok(()));
    }
    // No flush, no shutdown: the files as a `kill -9` would leave them.
    copy_dir(live.path(), image.path());
    let crashed = open(image.path(), NOW);
    assert_eq!(crashed.recovery().journal_records, 6);
    for nonce in 1..=3 {
        assert_eq!(
            consume(&crashed, 7, nonce, Strict).await,
            Err(ApiError::NonceNotIncreasing)
        );
    }
    for nonce in [NOW - 10, NOW + 10, NOW] {
        assert_eq!(
            consume(&crashed, 8, nonce, Window).await,
            Err(ApiError::NonceReused)
        );
    }
    // Window acceptance raised the high-water mark too.
    assert_eq!(
        consume(&crashed, 8, NOW + 10, Strict).await,
        Err(ApiError::NonceNotIncreasing)
    );
    assert_eq!(consume(&crashed, 7, 4, Strict).await, Ok(()));
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
    assert_eq!(consume(&store, 1, 10, Strict).await, Ok(()));
    assert_eq!(consume(&store, 1, NOW, Window).await, Ok(()));
    NonceStore::flush(&store).await.expect("flush");
    drop(store);
    let store = JournalNonceStore::open(cfg, NOW).expect("reopen");
    assert_eq!(
        consume(&store, 1, NOW, Window).await,
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
            assert_eq!(consume(&store, 1, nonce, Strict).await, Ok(()));
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
            consume(&store, 1, 5, Strict).await,
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(consume(&store, 1, 6, Strict).await, Ok(()));
        assert_eq!(consume(&store, 2, NOW, Window).await, Ok(()));
        store.shutdown().await.expect("shutdown");
        drop(store);

        let store = open(dir.path(), NOW);
        assert_eq!(store.recovery().journal_records, 7);
        assert_eq!(store.recovery().bad_records, 0);
        assert_eq!(
            consume(&store, 1, 6, Strict).await,
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(
            consume(&store, 2, NOW, Window).await,
            Err(ApiError::NonceReused)
        );
    }
}

#[tokio::test]
async fn damage_in_the_middle_keeps_every_valid_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), NOW);
    for nonce in 1..=5 {
        assert_eq!(consume(&store, 1, nonce, Strict).await, Ok(()));
    }
    assert_eq!(consume(&store, 2, 100, Strict).await, Ok(()));
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
        assert_eq!(consume(&store, i % 7, 1_000 + i, Strict).await, Ok(()));
        assert_eq!(
            consume(&store, 100 + i % 5, NOW - 2_000 + i, Window).await,
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
            consume(&store, 100 + i % 5, NOW - 2_000 + i, Window).await,
            Err(ApiError::NonceReused)
        );
        assert_eq!(
            consume(&store, i % 7, 1_000 + i, Strict).await,
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
        assert_eq!(consume(&store, 1, nonce, Strict).await, Ok(()));
    }
    assert_eq!(consume(&store, 2, NOW, Window).await, Ok(()));
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
        consume(&store, 2, NOW, Window).await,
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
        assert_eq!(consume(&store, 1, nonce, Window).await, Ok(()));
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
            consume(&store, 1, nonce, Window).await,
            Err(ApiError::NonceReused)
        );
    }
    assert_eq!(store.stats().window_entries, 3);
    // Strict mode is not limited.
    assert_eq!(consume(&store, 3, 5, Strict).await, Ok(()));

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
            tokio::spawn(async move { consume(&store, 1_000 + i, i, Strict).await })
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
    assert_eq!(consume(&store, 1, 1, Strict).await, Ok(()));

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
        consume(&store, 1, 2, Strict).await,
        Err(ApiError::NonceNotIncreasing)
    );
    assert_eq!(
        ok(store.check(1, 2, NonceMode::Strict, NOW).await),
        Err(ApiError::NonceNotIncreasing)
    );
    assert_eq!(store.stats().write_errors, 1);
    // The file is repaired before the next append, which succeeds.
    assert_eq!(consume(&store, 1, 3, Strict).await, Ok(()));

    // A torn window-mode write: the nonce stays consumed, in memory.
    lock_faults(&store.shared).partial_write = Some(10);
    assert!(matches!(
        store.consume(2, NOW, NonceMode::Window, NOW).await,
        Err(StoreError::Io(_))
    ));
    assert_eq!(
        consume(&store, 2, NOW, Window).await,
        Err(ApiError::NonceReused)
    );
    assert_eq!(consume(&store, 2, NOW + 1, Window).await, Ok(()));

    // Two truncations fail: the writer refuses to append past torn bytes meanwhile.
    {
        let mut faults = lock_faults(&store.shared);
        faults.partial_write = Some(4);
        faults.failing_truncates = 2;
    }
    assert!(store.consume(3, 1, NonceMode::Strict, NOW).await.is_err());
    assert!(store.consume(3, 2, NonceMode::Strict, NOW).await.is_err());
    assert_eq!(consume(&store, 3, 3, Strict).await, Ok(()));
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
        consume(&store, 1, 3, Strict).await,
        Err(ApiError::NonceNotIncreasing)
    );
    assert_eq!(
        consume(&store, 2, NOW + 1, Window).await,
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
    assert_eq!(consume(&store, 1, 1, Strict).await, Ok(()));
    store.shutdown().await.expect("shutdown");
    assert!(matches!(
        store.consume(1, 2, NonceMode::Strict, NOW).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        NonceStore::flush(&store).await,
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
