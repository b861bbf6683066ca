//! API keys: `/admin/keys…`. Answers that carry a secret are never cached.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::accounts::CodeRequest;
use super::respond::{Answer, parse, to_value};
use crate::edge::form::query_param;
use crate::service::{Caller, CreateKey, KeyWithSecret, ManageError};

type Answered = Result<Answer, ManageError>;

fn with_secret(created: &KeyWithSecret) -> Value {
    json!({"key": created.key, "secret": created.expose_secret()})
}

/// `POST /admin/keys`: the key and its secret, shown once.
pub(super) async fn create(State(state): State<AdminState>, who: Caller, body: Bytes) -> Answered {
    let request: CreateKey = parse(&body)?;
    let created = state.service.create_key(&request, &who).await?;
    Ok(Answer::created(&with_secret(&created)).no_store())
}

/// `POST /admin/keys/batch`: `{account, kind, code, ips, endpoints, count}` → `{"keys":
/// [{"key": …, "secret": …}, …]}` (secrets shown once).
pub(super) async fn create_batch(
    State(state): State<AdminState>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let mut key: serde_json::Map<String, Value> = parse(&body)?;
    let count = key
        .remove("count")
        .and_then(|c| c.as_u64())
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| ManageError::Invalid("count: a positive integer is required".into()))?;
    let request: CreateKey = serde_json::from_value(Value::Object(key))
        .map_err(|e| ManageError::Invalid(format!("invalid JSON body: {e}")))?;
    let created = state.service.create_keys(&request, count, &who).await?;
    let keys: Vec<Value> = created.iter().map(with_secret).collect();
    Ok(Answer::created(&json!({ "keys": keys })).no_store())
}

/// `GET /admin/keys?account=NAME`.
pub(super) async fn list(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Answered {
    let account = query_param(query.as_deref(), "account").filter(|a| !a.is_empty());
    let keys = state.service.list_keys(account.as_deref()).await?;
    Ok(Answer::ok(&json!({"keys": to_value(&keys)?})))
}

/// `GET /admin/keys/{public_key}`.
pub(super) async fn show(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
) -> Answered {
    let key = state.service.show_key(&public_key).await?;
    Ok(Answer::ok(&json!({"key": to_value(&key)?})))
}

/// `DELETE /admin/keys/{public_key}`.
pub(super) async fn delete(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
) -> Answered {
    state.service.delete_key(&public_key, &who).await?;
    Ok(Answer::ok(&json!({"deleted": public_key})))
}

/// `POST /admin/keys/{public_key}/enable`.
pub(super) async fn enable(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
) -> Answered {
    let key = state.service.enable_key(&public_key, &who).await?;
    Ok(Answer::ok(&json!({"key": to_value(&key)?})))
}

/// `POST /admin/keys/{public_key}/disable`.
pub(super) async fn disable(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
) -> Answered {
    let key = state.service.disable_key(&public_key, &who).await?;
    Ok(Answer::ok(&json!({"key": to_value(&key)?})))
}

/// `POST /admin/keys/{public_key}/rotate-secret`: the new secret, shown once.
pub(super) async fn rotate_secret(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let request: CodeRequest = parse(&body)?;
    let rotated = state
        .service
        .rotate_secret(&public_key, request.code.as_deref(), &who)
        .await?;
    Ok(Answer::ok(&with_secret(&rotated)).no_store())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpsRequest {
    ips: Vec<String>,
}

/// `PUT /admin/keys/{public_key}/ips`.
pub(super) async fn set_ips(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let request: IpsRequest = parse(&body)?;
    let key = state
        .service
        .set_ips(&public_key, &request.ips, &who)
        .await?;
    Ok(Answer::ok(&json!({"key": to_value(&key)?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsRequest {
    endpoints: Vec<String>,
}

/// `PUT /admin/keys/{public_key}/endpoints`.
pub(super) async fn set_endpoints(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let request: EndpointsRequest = parse(&body)?;
    let key = state
        .service
        .set_endpoints(&public_key, &request.endpoints, &who)
        .await?;
    Ok(Answer::ok(&json!({"key": to_value(&key)?})))
}
