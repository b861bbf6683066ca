//! Keeping the in-memory keys and partners in step with a key store shared by several
//! instances.

use std::sync::Arc;
use std::time::Duration;

use crate::verify::gateway::Gateway;
use wbauth_store::{Change, ChangeFeed};

/// How soon a failed cache reload is tried again.
const RELOAD_RETRY: Duration = Duration::from_secs(1);

/// Keeps the in-memory keys and partners in step with a key store shared by several instances:
/// each announced change is read again at once, everything is reloaded after a lost
/// announcement connection and every `refresh` as a safety net, and a failed reload is retried
/// every second until it succeeds. Ends when the feed ends.
pub(crate) async fn sync_caches(gateway: Arc<Gateway>, mut feed: ChangeFeed, refresh: Duration) {
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failed = false;
    loop {
        let change = tokio::select! {
            change = feed.recv() => match change {
                Some(change) => change,
                None => return,
            },
            _ = tick.tick() => Change::Resync,
            () = tokio::time::sleep(RELOAD_RETRY), if failed => Change::Resync,
        };
        let result = gateway.apply_change(change).await;
        gateway.metrics().cache_reload(change, result.is_ok());
        match result {
            Ok(()) => failed = failed && change != Change::Resync,
            Err(e) => {
                tracing::warn!(target: "wbauth::store", "reloading keys after {change:?} failed (retried every second): {e}");
                failed = true;
            }
        }
    }
}
