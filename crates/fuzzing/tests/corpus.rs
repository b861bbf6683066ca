//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through its harness on
//! stable, so `cargo test` (and `./test.sh`) re-checks every input the fuzzer kept.

use std::path::PathBuf;

use wbauth_fuzzing::{Outcome, ServiceHarness};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `harness` on every file of the target's corpus, in name order; returns how many files
/// were replayed and how many of them were accepted.
fn replay(target: &str, mut harness: impl FnMut(&[u8]) -> Outcome) -> (usize, usize) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let mut accepted = 0;
    for file in &files {
        let data =
            std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness(&data)))
            .unwrap_or_else(|_| panic!("{target}: {} fails", file.display()));
        if outcome == Outcome::Accepted {
            accepted += 1;
        }
    }
    println!(
        "{target}: replayed {} files, {accepted} accepted",
        files.len()
    );
    (files.len(), accepted)
}

fn check(target: &str, (replayed, accepted): (usize, usize)) {
    assert!(replayed > 0, "{target}: the corpus is empty");
    // The seeds include valid requests, tokens and configurations: some must get through every
    // check, or the harness only ever exercises the first rejection.
    assert!(accepted > 0, "{target}: no corpus input was accepted");
    assert!(
        accepted < replayed,
        "{target}: no corpus input was rejected"
    );
}

#[test]
fn request_corpus_replays() {
    check("request", replay("request", wbauth_fuzzing::request));
}

#[test]
fn jwt_corpus_replays() {
    check("jwt", replay("jwt", wbauth_fuzzing::jwt));
}

#[test]
fn config_corpus_replays() {
    check("config", replay("config", wbauth_fuzzing::config));
}

#[test]
fn service_corpus_replays() {
    let harness = ServiceHarness::new();
    check("service", replay("service", |data| harness.call(data)));
}
