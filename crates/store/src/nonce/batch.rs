//! Group commit for the networked nonce stores: the consumes of concurrent requests are
//! gathered and written together, each request still answered only once its own nonce is
//! written (or the batch failed: then it fails closed).
//!
//! The gateway runs one current-thread runtime per worker and shares the store between
//! them, so the batcher is not tied to any runtime. There is no permanent batching task: a
//! request that joins the queue while fewer than `flushers` batches are being written spawns a
//! flusher on its own runtime, which takes everything queued (up to `max_batch`), writes it,
//! answers each member through its oneshot, and goes on with whatever queued meanwhile; it
//! ends when the queue is empty. At low load every request is its own batch, with one task
//! spawn added; under load the requests that arrive while a batch is being written form the
//! next one. The flusher is a task of its own, so a request dropped while its batch is being
//! written (a client that went away) cancels nothing but its own wait.
//!
//! A member waits at most `wait` for its answer (the store's operation timeout, twice: one
//! batch ahead of it and its own); after that, or when the flusher is gone (its runtime
//! shut down), it fails closed. A member that gave up is left out of the next batch if its
//! batch has not started yet.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// One queued request: what it asks, and where its answer goes.
pub(crate) struct Member<T, A> {
    pub(crate) item: T,
    answer: oneshot::Sender<A>,
}

impl<T, A> Member<T, A> {
    /// Answers this member (which may have stopped waiting).
    pub(crate) fn answer(self, answer: A) {
        let _ = self.answer.send(answer);
    }

    /// The member stopped waiting (timed out or cancelled).
    fn gave_up(&self) -> bool {
        self.answer.is_closed()
    }
}

/// What a store does with a batch: write it and answer every member.
pub(crate) trait Flush: Send + Sync + 'static {
    type Item: Send + 'static;
    type Answer: Send + 'static;

    /// The store's queue.
    fn queue(&self) -> &Queue<Self::Item, Self::Answer>;

    /// Writes `batch` (in order: earlier members first) and answers every member; a member
    /// left unanswered (dropped) fails closed.
    fn flush(
        self: Arc<Self>,
        batch: Vec<Member<Self::Item, Self::Answer>>,
    ) -> impl Future<Output = ()> + Send;
}

/// The requests waiting for a flusher.
pub(crate) struct Queue<T, A> {
    state: Mutex<State<T, A>>,
    flushers: usize,
    max_batch: usize,
}

struct State<T, A> {
    waiting: Vec<Member<T, A>>,
    /// Flushers running.
    running: usize,
    /// Batches written (for `/metrics`).
    batches: u64,
    /// Members in them.
    members: u64,
}

/// How a wait for a batch ended without an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// Not answered within the wait.
    TimedOut,
    /// The flusher went away without answering (its runtime shut down).
    Dropped,
}

impl<T, A> Queue<T, A> {
    /// At most `flushers` batches written at once, each at most `max_batch` members.
    pub(crate) fn new(flushers: usize, max_batch: usize) -> Self {
        Self {
            state: Mutex::new(State {
                waiting: Vec::new(),
                running: 0,
                batches: 0,
                members: 0,
            }),
            flushers: flushers.max(1),
            max_batch: max_batch.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T, A>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `(batches, members)` written so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.batches, state.members)
    }

    /// The next batch (members that gave up left out), or `None` when nothing waits: the
    /// flusher then stops.
    fn next_batch(&self) -> Option<Vec<Member<T, A>>> {
        let mut state = self.lock();
        state.waiting.retain(|member| !member.gave_up());
        if state.waiting.is_empty() {
            state.running = state.running.saturating_sub(1);
            return None;
        }
        let take = state.waiting.len().min(self.max_batch);
        let batch: Vec<_> = state.waiting.drain(..take).collect();
        state.batches += 1;
        state.members += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        Some(batch)
    }
}

/// Queues `item` and waits for its answer (at most `wait`).
pub(crate) async fn submit<F: Flush>(
    store: &Arc<F>,
    item: F::Item,
    wait: Duration,
) -> Result<F::Answer, Unanswered> {
    let (answer, answered) = oneshot::channel();
    let start = {
        let queue = store.queue();
        let mut state = queue.lock();
        state.waiting.push(Member { item, answer });
        let start = state.running < queue.flushers;
        if start {
            state.running += 1;
        }
        start
    };
    if start {
        // The guard is in the future before it is first polled: a runtime that drops it
        // unpolled (shutting down) still releases the flusher's place.
        let flusher = run(Running {
            store: store.clone(),
            done: false,
        });
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(flusher)),
            // Outside a runtime (not how the gateway calls): write it here.
            Err(_) => flusher.await,
        }
    }
    match tokio::time::timeout(wait, answered).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(Unanswered::Dropped),
        Err(_) => Err(Unanswered::TimedOut),
    }
}

/// A flusher: batches until the queue is empty.
async fn run<F: Flush>(mut running: Running<F>) {
    while let Some(batch) = running.store.queue().next_batch() {
        running.store.clone().flush(batch).await;
    }
    running.done = true;
}

/// A flusher dropped before it finished (its runtime shut down): it no longer runs, and when
/// it was the last one the members still queued fail closed rather than wait for a flusher
/// that may never come.
struct Running<F: Flush> {
    store: Arc<F>,
    done: bool,
}

impl<F: Flush> Drop for Running<F> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let queue = self.store.queue();
        let stranded = {
            let mut state = queue.lock();
            state.running = state.running.saturating_sub(1);
            if state.running == 0 {
                std::mem::take(&mut state.waiting)
            } else {
                Vec::new()
            }
        };
        drop(stranded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers each member with its item times ten and records the batch sizes.
    struct Times10 {
        queue: Queue<u32, u32>,
        sizes: Mutex<Vec<usize>>,
        gate: tokio::sync::Semaphore,
        in_flush: AtomicUsize,
    }

    impl Flush for Times10 {
        type Item = u32;
        type Answer = u32;

        fn queue(&self) -> &Queue<u32, u32> {
            &self.queue
        }

        async fn flush(self: Arc<Self>, batch: Vec<Member<u32, u32>>) {
            self.in_flush.fetch_add(1, Ordering::SeqCst);
            // Held until the test lets a batch through.
            let permit = self.gate.acquire().await;
            self.sizes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(batch.len());
            for member in batch {
                let item = member.item;
                member.answer(item * 10);
            }
            drop(permit);
        }
    }

    fn store(flushers: usize, max_batch: usize, open: usize) -> Arc<Times10> {
        Arc::new(Times10 {
            queue: Queue::new(flushers, max_batch),
            sizes: Mutex::new(Vec::new()),
            gate: tokio::sync::Semaphore::new(open),
            in_flush: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn requests_queued_behind_a_batch_form_the_next_one() {
        let store = store(1, 64, 0);
        let first = tokio::spawn({
            let store = store.clone();
            async move { submit(&store, 1, Duration::from_secs(30)).await }
        });
        // The first batch (one member) is being written and held at the gate.
        while store.in_flush.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (2..=20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { submit(&store, i, Duration::from_secs(30)).await })
            })
            .collect();
        while store.queue.lock().waiting.len() < 19 {
            tokio::task::yield_now().await;
        }
        store.gate.add_permits(2);
        assert_eq!(first.await.expect("joined"), Ok(10));
        for (i, handle) in (2..=20).zip(rest) {
            assert_eq!(handle.await.expect("joined"), Ok(i * 10));
        }
        let sizes = store.sizes.lock().expect("sizes").clone();
        assert_eq!(sizes, [1, 19]);
        assert_eq!(store.queue.counts(), (2, 20));
        assert_eq!(store.queue.lock().running, 0);
    }

    #[tokio::test]
    async fn batches_are_capped_and_a_member_that_gave_up_is_left_out() {
        let store = store(1, 4, 0);
        let first = tokio::spawn({
            let store = store.clone();
            async move { submit(&store, 1, Duration::from_secs(30)).await }
        });
        while store.in_flush.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Gives up at once: not written.
        assert_eq!(
            submit(&store, 99, Duration::ZERO).await,
            Err(Unanswered::TimedOut)
        );
        let rest: Vec<_> = (2..=7)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { submit(&store, i, Duration::from_secs(30)).await })
            })
            .collect();
        while store.queue.lock().waiting.len() < 7 {
            tokio::task::yield_now().await;
        }
        store.gate.add_permits(3);
        assert_eq!(first.await.expect("joined"), Ok(10));
        for (i, handle) in (2..=7).zip(rest) {
            assert_eq!(handle.await.expect("joined"), Ok(i * 10));
        }
        assert_eq!(store.sizes.lock().expect("sizes").clone(), [1, 4, 2]);
    }

    #[test]
    fn members_fail_closed_when_the_flusher_runtime_shuts_down() {
        let store = store(1, 64, 0);
        let other = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // A flusher on `other`, held at the gate.
        let first = other.spawn({
            let store = store.clone();
            async move { submit(&store, 1, Duration::from_secs(30)).await }
        });
        other.block_on(async {
            while store.in_flush.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        });
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let queued = main.spawn({
            let store = store.clone();
            async move { submit(&store, 2, Duration::from_secs(30)).await }
        });
        main.block_on(async {
            while store.queue.lock().waiting.is_empty() {
                tokio::task::yield_now().await;
            }
        });
        // Shutting `other` down drops the flusher and the first request's task.
        drop(first);
        drop(other);
        assert_eq!(
            main.block_on(queued).expect("joined"),
            Err(Unanswered::Dropped)
        );
        assert_eq!(store.queue.lock().running, 0);
    }
}
