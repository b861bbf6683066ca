//! The audit log: every change stored and printed on stderr as one JSON line `{"audit":…}`,
//! never with a secret in it; and reading it back.

use serde_json::json;

use super::{AuditView, Caller, KeyService, ManageError};
use wbauth_store::{AuditEntry, KeyStore};

/// Most audit entries one listing returns.
pub(crate) const MAX_AUDIT_LIMIT: u32 = 10_000;

/// Prints one audit line on stderr: `{"audit":{…}}`.
fn emit_audit_line(line: &serde_json::Value) {
    tracing::info!(target: "wbauth::audit", "{line}");
}

/// Appends an entry to the audit log and prints it (see [`KeyService::audit`]).
async fn write_audit(
    store: &dyn KeyStore,
    at_ms: u64,
    caller: &Caller,
    action: &str,
    detail: serde_json::Value,
) {
    let stored = store
        .audit(AuditEntry {
            at_ms,
            actor: caller.actor.clone(),
            action: action.to_owned(),
            detail: detail.to_string(),
        })
        .await;
    let mut line = json!({"audit": {
        "at_ms": at_ms,
        "actor": caller.actor,
        "action": action,
        "detail": detail,
    }});
    if let Err(e) = stored {
        line["audit_store_error"] = serde_json::Value::String(e.to_string());
    }
    emit_audit_line(&line);
}

impl KeyService {
    /// Audits a change (stored and printed on stderr; never a secret in `detail`).
    pub(crate) async fn audit_change(
        &self,
        caller: &Caller,
        action: &str,
        detail: serde_json::Value,
    ) {
        self.audit(caller, action, detail).await;
    }

    /// The most recent audit entries, newest first (`limit` capped at [`MAX_AUDIT_LIMIT`]).
    pub(crate) async fn audit_log(&self, limit: u32) -> Result<Vec<AuditView>, ManageError> {
        let entries = self
            .store
            .recent_audit(limit.clamp(1, MAX_AUDIT_LIMIT))
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| AuditView {
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                detail: serde_json::from_str(&e.detail)
                    .unwrap_or(serde_json::Value::String(e.detail)),
            })
            .collect())
    }

    /// Appends to the audit log and prints the line on stderr. A change that succeeded is not
    /// undone when the audit log cannot be written: the stderr line says so.
    pub(super) async fn audit(&self, caller: &Caller, action: &str, detail: serde_json::Value) {
        write_audit(self.store.as_ref(), self.now_ms(), caller, action, detail).await;
    }

    /// [`Self::audit`] without waiting for the store (where waiting would let response times
    /// tell cases apart).
    pub(super) fn audit_detached(&self, caller: &Caller, action: &str, detail: serde_json::Value) {
        let (store, at_ms) = (self.store.clone(), self.now_ms());
        let (caller, action) = (caller.clone(), action.to_owned());
        tokio::spawn(async move {
            write_audit(store.as_ref(), at_ms, &caller, &action, detail).await;
        });
    }
}
