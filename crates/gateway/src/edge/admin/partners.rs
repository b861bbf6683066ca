//! Fiat Gateway partners: `/admin/partners…`. A new partner's Enc Key is shown once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::AdminState;
use super::respond::{Answer, parse, to_value};
use crate::service::{Caller, ManageError};

type Answered = Result<Answer, ManageError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPartnerRequest {
    name: String,
    /// Import: an existing Auth Key (with `enc_key`).
    #[serde(default)]
    auth_key: Option<String>,
    /// Import: an existing Enc Key (with `auth_key`).
    #[serde(default)]
    enc_key: Option<String>,
}

/// `POST /admin/partners`: a new partner, or an imported one (both keys given).
pub(super) async fn create(State(state): State<AdminState>, who: Caller, body: Bytes) -> Answered {
    let request: NewPartnerRequest = parse(&body)?;
    let created = match (request.auth_key, request.enc_key) {
        (None, None) => state.service.create_partner(&request.name, &who).await?,
        (Some(auth_key), Some(enc_key)) => {
            let enc_key = Zeroizing::new(enc_key);
            state
                .service
                .import_partner(&request.name, &auth_key, enc_key, &who)
                .await?
        }
        _ => {
            return Err(ManageError::Invalid(
                "give both auth_key and enc_key to import a partner, or neither".to_owned(),
            ));
        }
    };
    let value = json!({"partner": created.partner, "enc_key": created.expose_enc_key()});
    Ok(Answer::created(&value).no_store())
}

/// `GET /admin/partners`.
pub(super) async fn list(State(state): State<AdminState>) -> Answered {
    let partners = state.service.list_partners().await?;
    Ok(Answer::ok(&json!({"partners": to_value(&partners)?})))
}

/// `GET /admin/partners/{auth_key}`.
pub(super) async fn show(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
) -> Answered {
    let partner = state.service.show_partner(&auth_key).await?;
    Ok(Answer::ok(&json!({"partner": to_value(&partner)?})))
}

/// `DELETE /admin/partners/{auth_key}`.
pub(super) async fn delete(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
    who: Caller,
) -> Answered {
    state.service.delete_partner(&auth_key, &who).await?;
    Ok(Answer::ok(&json!({"deleted": auth_key})))
}

/// `POST /admin/partners/{auth_key}/enable`.
pub(super) async fn enable(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
    who: Caller,
) -> Answered {
    let partner = state.service.enable_partner(&auth_key, &who).await?;
    Ok(Answer::ok(&json!({"partner": to_value(&partner)?})))
}

/// `POST /admin/partners/{auth_key}/disable`.
pub(super) async fn disable(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
    who: Caller,
) -> Answered {
    let partner = state.service.disable_partner(&auth_key, &who).await?;
    Ok(Answer::ok(&json!({"partner": to_value(&partner)?})))
}
