//! Operations: `/healthz`, `/readyz` (unauthenticated), `/admin/audit`, `/admin/reload`, and in
//! builds with the `test-clock` feature `/test/clock`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::json;

use super::respond::{Answer, to_value};
use super::{AdminState, DEFAULT_AUDIT_LIMIT};
use crate::edge::form::query_param;
use crate::service::ManageError;
use crate::service::reload::ReloadError;

/// `GET /healthz`: the process answers.
pub(super) async fn healthz() -> Answer {
    Answer::ok(&json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the stores answer (and the clocks agree), else 503 with the reason.
pub(super) async fn readyz(State(state): State<AdminState>) -> Answer {
    let verdict = match &state.nonces {
        Some(nonces) => {
            let now = state.service.now_ms();
            let health =
                crate::ops::health::check(state.service.store().as_ref(), nonces.as_ref(), now)
                    .await;
            health.ready()
        }
        None => state
            .service
            .ready()
            .await
            .map_err(|_| crate::ops::health::NotReady::KeyStore),
    };
    let mut answer = match &verdict {
        Ok(()) => json!({"status": "ready"}),
        Err(reason) => {
            tracing::warn!(target: "wbauth::admin", "not ready: {reason}");
            json!({"status": "unavailable", "reason": reason.to_string()})
        }
    };
    // Each TLS listener's certificate: in service as read, or kept after a refused reload
    // (serving goes on with the previous one, so readiness does not change).
    if !state.certificates.is_empty() {
        let tls: serde_json::Map<String, serde_json::Value> = state
            .certificates
            .iter()
            .map(|tls| {
                let detail = tls.problem().unwrap_or_else(|| "ok".to_owned());
                (tls.listener().to_owned(), detail.into())
            })
            .collect();
        answer["tls"] = tls.into();
    }
    match verdict {
        Ok(()) => Answer::ok(&answer),
        Err(_) => Answer::with(StatusCode::SERVICE_UNAVAILABLE, &answer),
    }
}

/// `POST /admin/reload`: the configuration file read again and put in force; refused with
/// the file, line and key of the problem, the running configuration kept.
pub(super) async fn reload(State(state): State<AdminState>) -> Answer {
    let Some(reloader) = &state.reloader else {
        return Answer::with(
            StatusCode::NOT_FOUND,
            &json!({"code": 0, "message": "This gateway has no configuration file to reload."}),
        );
    };
    match reloader.reload().await {
        Ok(done) => Answer::ok(&json!({
            "reloaded": true,
            "file": done.file,
            "changed": done.changed,
            "certificate_problems": done.certificate_problems,
        })),
        Err(e) => {
            let status = match e {
                ReloadError::NeedsRestart { .. } => StatusCode::CONFLICT,
                ReloadError::Invalid(_) => StatusCode::BAD_REQUEST,
            };
            let (file, line, key) = e.place();
            Answer::with(
                status,
                &json!({
                    "code": 0,
                    "message": e.to_string(),
                    "file": file,
                    "line": line,
                    "key": key,
                }),
            )
        }
    }
}

/// `GET /admin/audit?limit=N`: the newest entries first.
pub(super) async fn audit_log(
    State(state): State<AdminState>,
    RawQuery(query): RawQuery,
) -> Result<Answer, ManageError> {
    let limit = match query_param(query.as_deref(), "limit") {
        None => DEFAULT_AUDIT_LIMIT,
        Some(text) => text.parse::<u32>().map_err(|_| {
            ManageError::Invalid(format!("limit {text:?} is not a positive number"))
        })?,
    };
    let entries = state.service.audit_log(limit).await?;
    Ok(Answer::ok(&json!({"entries": to_value(&entries)?})))
}

#[cfg(feature = "test-clock")]
pub(super) use test_clock::{get_test_clock, set_test_clock};

#[cfg(feature = "test-clock")]
mod test_clock {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse as _, Response};
    use serde::Deserialize;
    use serde_json::json;

    use super::super::AdminState;
    use super::super::respond::{Answer, message, parse};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ClockRequest {
        #[serde(default)]
        set_ms: Option<u64>,
        #[serde(default)]
        advance_ms: Option<u64>,
        #[serde(default)]
        release: bool,
    }

    /// `POST /test/clock`: `{"set_ms"}`, `{"advance_ms"}` or `{"release":true}`.
    pub(in crate::edge::admin) async fn set_test_clock(
        State(state): State<AdminState>,
        body: Bytes,
    ) -> Response {
        let Some(clock) = &state.test_clock else {
            return message(
                StatusCode::NOT_FOUND,
                "This gateway runs on the system clock.",
            );
        };
        let request: ClockRequest = match parse(&body) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
        let given = usize::from(request.set_ms.is_some())
            + usize::from(request.advance_ms.is_some())
            + usize::from(request.release);
        if given != 1 {
            return message(
                StatusCode::BAD_REQUEST,
                "Give exactly one of set_ms, advance_ms, release.",
            );
        }
        if let Some(ms) = request.set_ms {
            clock.set(ms);
        } else if let Some(ms) = request.advance_ms {
            clock.advance(ms);
        } else {
            clock.release();
        }
        get_test_clock(State(state)).await.into_response()
    }

    /// `GET /test/clock`: `{"now_ms"}`.
    pub(in crate::edge::admin) async fn get_test_clock(State(state): State<AdminState>) -> Answer {
        Answer::ok(&json!({"now_ms": state.service.now_ms()}))
    }
}
