//! The nonce source under contention: 8 threads × 100,000 nonces are all distinct and
//! strictly increasing within each thread.

use std::collections::HashSet;

use whitebit_client::NonceSource;

#[test]
fn eight_threads_hundred_thousand_each() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100_000;
    let source = NonceSource::new();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let source = source.clone();
            std::thread::spawn(move || (0..PER_THREAD).map(|_| source.next()).collect::<Vec<u64>>())
        })
        .collect();
    let mut all = HashSet::with_capacity(THREADS * PER_THREAD);
    for handle in handles {
        let nonces = handle.join().expect("thread");
        assert_eq!(nonces.len(), PER_THREAD);
        assert!(
            nonces.windows(2).all(|w| w[0] < w[1]),
            "increasing within a thread"
        );
        all.extend(nonces);
    }
    assert_eq!(all.len(), THREADS * PER_THREAD, "all distinct");
    assert_eq!(source.last(), *all.iter().max().expect("non-empty"));
}
