//! The API key pages: the list of an account's keys of one kind, a new key, a key's settings
//! (rotate, enable, disable, delete, trusted IPs, endpoints).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::context::{Ctx, error_page, page, redirect, signed_in};
use super::{Console, not_found, pages};
use crate::edge::form::{Form, query_param};
use crate::service::{CreateKey, KeyView, ManageError, TwoFactor};

pub(super) async fn keys_page(
    State(state): State<Console>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    let (id, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let kinds = state.kinds();
    let kind = query_param(query.as_deref(), "kind")
        .filter(|k| kinds.contains(k))
        .or_else(|| kinds.first().cloned())
        .unwrap_or_default();
    let flash = state.sessions.take_flash(&id);
    let result = async {
        let view = state.service.show_account(&account).await?;
        let keys: Vec<KeyView> = state
            .service
            .list_keys(Some(&account))
            .await?
            .into_iter()
            .filter(|k| k.kind == kind)
            .collect();
        Ok::<_, ManageError>((view, keys))
    }
    .await;
    match result {
        Ok((view, keys)) => page(
            StatusCode::OK,
            "API keys",
            &account,
            &session,
            flash.as_deref(),
            None,
            &pages::keys(&pages::KeysPage {
                csrf: &session.csrf,
                kinds: &kinds,
                kind: &kind,
                patterns: &state.patterns(&kind),
                keys: &keys,
                idle_days: state.idle_days(),
                two_factor_on: view.two_factor == TwoFactor::On,
                max_ips: state.gateway.config().keys.max_ips,
            }),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

/// Trusted IPs typed one per line (or separated by commas or spaces).
pub(super) fn ip_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn create_key(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (_, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let kind = form.text("kind").to_owned();
    let request = CreateKey {
        account: account.clone(),
        kind: kind.clone(),
        code: form.get("code").map(str::to_owned),
        ips: ip_list(form.text("ips")),
        endpoints: form.all("endpoint"),
    };
    let back = format!("/keys?kind={kind}");
    match state
        .service
        .create_key(&request, &ctx.caller(&account))
        .await
    {
        Ok(created) => page(
            StatusCode::CREATED,
            "Your new API key",
            &account,
            &session,
            None,
            None,
            &pages::secret_shown(&created.key, created.expose_secret(), false),
        ),
        Err(e) => error_page(&account, &session, &e, &back),
    }
}

/// The key, when it belongs to `account` (another account's key is "not found").
async fn owned_key(
    state: &Console,
    account: &str,
    public_key: &str,
) -> Result<KeyView, ManageError> {
    let key = state.service.show_key(public_key).await?;
    if key.account == account {
        Ok(key)
    } else {
        let shown: String = public_key.chars().take(80).collect();
        Err(ManageError::NotFound(format!("No API key {shown:?}.")))
    }
}

pub(super) async fn key_page(
    State(state): State<Console>,
    ctx: Ctx,
    Path(public_key): Path<String>,
) -> Response {
    let (id, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let flash = state.sessions.take_flash(&id);
    match owned_key(&state, &account, &public_key).await {
        Ok(key) => page(
            StatusCode::OK,
            "API key settings",
            &account,
            &session,
            flash.as_deref(),
            None,
            &pages::key_page(
                &session.csrf,
                &key,
                &state.patterns(&key.kind),
                state.idle_days(),
                state.gateway.config().keys.max_ips,
            ),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

pub(super) async fn delete_page(
    State(state): State<Console>,
    ctx: Ctx,
    Path((public_key, action)): Path<(String, String)>,
) -> Response {
    if action != "delete" {
        return not_found().await;
    }
    let (_, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    match owned_key(&state, &account, &public_key).await {
        Ok(key) => page(
            StatusCode::OK,
            "Delete API key",
            &account,
            &session,
            None,
            None,
            &pages::delete_confirm(&session.csrf, &key),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

/// What a key's setting form did.
enum Done {
    /// Saved: the message to flash and the page to go to.
    Saved(&'static str, String),
    /// A new secret, shown once.
    Rotated(zeroize::Zeroizing<String>),
}

pub(super) async fn key_action(
    State(state): State<Console>,
    ctx: Ctx,
    Path((public_key, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let (id, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let caller = ctx.caller(&account);
    let back = format!("/keys/{public_key}");
    let service = &state.service;
    let code = form.text("code");
    let result: Result<Done, ManageError> = async {
        let key = owned_key(&state, &account, &public_key).await?;
        match action.as_str() {
            "rotate" => {
                let rotated = service
                    .rotate_secret(&key.public_key, Some(code), &caller)
                    .await?;
                Ok(Done::Rotated(zeroize::Zeroizing::new(
                    rotated.expose_secret().to_owned(),
                )))
            }
            "enable" => {
                service
                    .require_code(&account, code, &caller, "key.enable")
                    .await?;
                service.enable_key(&key.public_key, &caller).await?;
                Ok(Done::Saved("Key enabled.", back.clone()))
            }
            "disable" => {
                service
                    .require_code(&account, code, &caller, "key.disable")
                    .await?;
                service.disable_key(&key.public_key, &caller).await?;
                Ok(Done::Saved(
                    "Key disabled: requests signed with it are refused.",
                    back.clone(),
                ))
            }
            "delete" => {
                service
                    .require_code(&account, code, &caller, "key.delete")
                    .await?;
                service.delete_key(&key.public_key, &caller).await?;
                Ok(Done::Saved(
                    "Key deleted.",
                    format!("/keys?kind={}", key.kind),
                ))
            }
            "ips" => {
                let ips = service.check_ips(&ip_list(form.text("ips")))?;
                service
                    .require_code(&account, code, &caller, "key.set_ips")
                    .await?;
                service.set_ips(&key.public_key, &ips, &caller).await?;
                Ok(Done::Saved("Trusted IPs saved.", back.clone()))
            }
            "endpoints" => {
                let endpoints = service.check_endpoints(&key.kind, &form.all("endpoint"))?;
                service
                    .require_code(&account, code, &caller, "key.set_endpoints")
                    .await?;
                service
                    .set_endpoints(&key.public_key, &endpoints, &caller)
                    .await?;
                Ok(Done::Saved("Endpoints saved.", back.clone()))
            }
            _ => Err(ManageError::NotFound("No such action.".to_owned())),
        }
    }
    .await;
    match result {
        Ok(Done::Rotated(secret)) => {
            let key = owned_key(&state, &account, &public_key).await;
            match key {
                Ok(key) => page(
                    StatusCode::OK,
                    "New API secret",
                    &account,
                    &session,
                    None,
                    None,
                    &pages::secret_shown(&key, &secret, true),
                ),
                Err(e) => error_page(&account, &session, &e, &back),
            }
        }
        Ok(Done::Saved(message, to)) => {
            state.sessions.set_flash(&id, message.to_owned());
            redirect(&to)
        }
        Err(e) => error_page(&account, &session, &e, &back),
    }
}
