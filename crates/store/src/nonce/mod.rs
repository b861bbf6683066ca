//! The nonce stores: a journal on local disk (the default), Redis and PostgreSQL. Each one
//! only reads a key's state and records accepted nonces ([`Backend`]); the rules of
//! `whitebit_auth::nonce` around them, the counting and the [`NonceStore`] glue are here, once.
//! The networked stores write the consumes of concurrent requests in batches (group commit,
//! `batch.rs`): PostgreSQL one statement per batch, Redis one script call per batch.

pub(crate) mod batch;
pub(crate) mod journal;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod redis_consume;
pub(crate) mod redis_link;
pub(crate) mod redis_tls;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use whitebit_auth::nonce::{check_window_time, decide};
use whitebit_auth::{ApiError, NonceMode};

use crate::{KeyId, NonceAnswer, NonceFuture, NonceStore, StoreError, StoreFuture, StoreHealth};

/// One figure for `/metrics`: `(name, help, value)`.
pub(crate) type Metric = (&'static str, &'static str, u64);

/// What one nonce store does itself.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The key's high-water mark, and whether `nonce` has a live window-mode entry.
    fn read(
        &self,
        key: KeyId,
        nonce: u64,
    ) -> impl Future<Output = Result<(Option<u64>, bool), StoreError>> + Send;

    /// Applies the rules and, when they accept `nonce`, records it durably, as one atomic
    /// step. Window-mode nonces come here only within the time window.
    fn record(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> impl Future<Output = NonceAnswer> + Send;

    /// See [`NonceStore::flush`]; stores that write every nonce before answering have nothing
    /// to do.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// See [`NonceStore::sweep`].
    fn sweep(&self, now_ms: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = now_ms;
        async { Ok(0) }
    }

    /// See [`NonceStore::health`].
    fn health(&self) -> impl Future<Output = Result<StoreHealth, StoreError>> + Send {
        async { Ok(StoreHealth::default()) }
    }

    /// The operation counters of a networked store, which count every answer (and come
    /// first in [`NonceStore::metrics`]).
    fn remote(&self) -> Option<&Remote> {
        None
    }

    /// See [`NonceStore::metrics`]: the store's own figures, after the [`Remote`] counters.
    fn metrics(&self) -> Vec<Metric> {
        Vec::new()
    }
}

impl<B: Backend> NonceStore for B {
    fn check(&self, key: KeyId, nonce: u64, mode: NonceMode, now_ms: u64) -> NonceFuture<'_> {
        Box::pin(async move {
            if mode == NonceMode::Window
                && let Err(row) = check_window_time(nonce, now_ms)
            {
                return Ok(Err(row));
            }
            let (mark, seen) = self.read(key, nonce).await?;
            Ok(decide(mark, seen, nonce, mode, now_ms))
        })
    }

    fn consume(&self, key: KeyId, nonce: u64, mode: NonceMode, now_ms: u64) -> NonceFuture<'_> {
        Box::pin(async move {
            let answer = if mode == NonceMode::Window
                && let Err(row) = check_window_time(nonce, now_ms)
            {
                Err(row)
            } else {
                self.record(key, nonce, mode, now_ms).await?
            };
            if let Some(remote) = self.remote() {
                remote.count(&answer);
            }
            Ok(answer)
        })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(Backend::flush(self))
    }

    fn sweep(&self, now_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(Backend::sweep(self, now_ms))
    }

    fn health(&self) -> StoreFuture<'_, StoreHealth> {
        Box::pin(Backend::health(self))
    }

    fn metrics(&self) -> Vec<Metric> {
        let mut figures = self.remote().map(Remote::metrics).unwrap_or_default();
        figures.extend(Backend::metrics(self));
        figures
    }
}

/// What the networked nonce stores share: where the store is (for messages), the operation
/// timeout, and counters for `/metrics` (none of them per key).
#[derive(Debug)]
pub(crate) struct Remote {
    /// The store in messages: `Redis at redis://host/0` (the URL without its password).
    at: String,
    op_timeout: Duration,
    accepted: Counter,
    rejected: Counter,
    errors: Counter,
    timeouts: Counter,
}

/// One counter of a [`Remote`], with its name and help text in `/metrics`.
#[derive(Debug)]
struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    fn add_one(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    fn figure(&self) -> Metric {
        (self.name, self.help, self.value.load(Ordering::Relaxed))
    }
}

/// The help texts of the [`Remote`] counters, naming the store.
pub(crate) struct CounterHelp {
    pub(crate) accepted: &'static str,
    pub(crate) rejected: &'static str,
    pub(crate) errors: &'static str,
    pub(crate) timeouts: &'static str,
}

/// The [`CounterHelp`] of the nonce store named `$store`.
macro_rules! counter_help {
    ($store:literal) => {
        $crate::nonce::CounterHelp {
            accepted: concat!("Nonces accepted by the ", $store, " nonce store."),
            rejected: concat!("Nonces refused by the ", $store, " nonce store's rules."),
            errors: concat!(
                $store,
                " nonce store operations that failed (answered 503)."
            ),
            timeouts: concat!($store, " nonce store operations that timed out."),
        }
    };
}
pub(crate) use counter_help;

impl Remote {
    /// `at` names the store in messages (`Redis at …`), without any password; `help` in
    /// `/metrics` ([`counter_help!`]).
    pub(crate) fn new(at: String, op_timeout: Duration, help: CounterHelp) -> Self {
        Self {
            at,
            op_timeout,
            accepted: Counter::new("wbauth_nonce_store_accepted_total", help.accepted),
            rejected: Counter::new("wbauth_nonce_store_rejected_total", help.rejected),
            errors: Counter::new("wbauth_nonce_store_errors_total", help.errors),
            timeouts: Counter::new("wbauth_nonce_store_timeouts_total", help.timeouts),
        }
    }

    /// The store in messages.
    pub(crate) fn at(&self) -> &str {
        &self.at
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// `Debug` of the networked store `name` at `url` (shown without its password).
    pub(crate) fn debug_store(
        &self,
        name: &str,
        url: &str,
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        f.debug_struct(name)
            .field("url", &url)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }

    /// Runs one operation within the operation timeout; a failure becomes `failed(context, e)`
    /// with the context `<store>: <what>`. Failures and timeouts are counted.
    pub(crate) async fn bounded<T, E>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, E>>,
        failed: impl FnOnce(&str, E) -> StoreError,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.op_timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(failed(&format!("{}: {what}", self.at), e))),
            Err(_) => Err(self.timed_out(what)),
        }
    }

    /// `what` timed out (counted).
    pub(crate) fn timed_out(&self, what: &str) -> StoreError {
        self.timeouts.add_one();
        self.error(StoreError::Unavailable(format!(
            "{}: {what} timed out after {:?}",
            self.at, self.op_timeout
        )))
    }

    /// A consume whose batch gave no answer (counted): timed out, or abandoned when the
    /// runtime writing the batch shut down.
    pub(crate) fn unanswered(&self, why: batch::Unanswered) -> StoreError {
        match why {
            batch::Unanswered::TimedOut => self.timed_out("consume (waiting for its batch)"),
            batch::Unanswered::Dropped => self.error(StoreError::Unavailable(format!(
                "{}: consume: the batch was abandoned (its runtime shut down)",
                self.at
            ))),
        }
    }

    /// Counts a failed operation.
    pub(crate) fn error(&self, e: StoreError) -> StoreError {
        self.errors.add_one();
        e
    }

    fn count(&self, answer: &Result<(), ApiError>) {
        let counter = if answer.is_ok() {
            &self.accepted
        } else {
            &self.rejected
        };
        counter.add_one();
    }

    /// The counters, as [`NonceStore::metrics`] figures.
    fn metrics(&self) -> Vec<Metric> {
        [&self.accepted, &self.rejected, &self.errors, &self.timeouts]
            .map(Counter::figure)
            .to_vec()
    }
}
