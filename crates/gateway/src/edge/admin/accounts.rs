//! Accounts and their second factor: `/admin/accounts…`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::AdminState;
use super::respond::{Answer, NoStore, parse, to_value};
use crate::service::{Caller, ManageError};

type Answered = Result<Answer, ManageError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
    /// The web console password (stored as an argon2id hash).
    #[serde(default)]
    password: Option<String>,
}

/// `POST /admin/accounts`: with a password, or (when there is a console) with a one-time link
/// to set it.
pub(super) async fn create(
    State(state): State<AdminState>,
    who: Caller,
    body: Bytes,
) -> NoStore<Answered> {
    NoStore(create_account(&state, &who, &body).await)
}

async fn create_account(state: &AdminState, who: &Caller, body: &Bytes) -> Answered {
    let request: NewAccount = parse(body)?;
    let password = request.password.map(Zeroizing::new);
    if let Some(password) = &password {
        crate::service::check_password(password)?;
    }
    let account = state.service.create_account(&request.name, who).await?;
    if let Some(password) = &password {
        state
            .service
            .set_password(&request.name, password, who)
            .await?;
        return Ok(Answer::created(&json!({"account": to_value(&account)?})));
    }
    let mut value = json!({"account": to_value(&account)?});
    if state.service.console_url().is_some() {
        let link = state.service.issue_console_link(&request.name, who).await?;
        value["console_link"] = json!({"url": link.url.as_str(), "expires_ms": link.expires_ms});
    }
    Ok(Answer::created(&value))
}

/// `POST /admin/accounts/{name}/console-link`: a new one-time link (replacing the old one).
pub(super) async fn console_link(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
) -> NoStore<Answered> {
    NoStore(
        state
            .service
            .issue_console_link(&name, &who)
            .await
            .map(|link| {
                Answer::created(&json!({
                    "account": name,
                    "console_link": {"url": link.url.as_str(), "expires_ms": link.expires_ms},
                }))
            }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// `PUT /admin/accounts/{name}/password`.
pub(super) async fn set_password(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let password = Zeroizing::new(parse::<NewPassword>(&body)?.password);
    state.service.set_password(&name, &password, &who).await?;
    Ok(Answer::ok(&json!({"account": name, "password": "set"})))
}

/// `GET /admin/accounts`.
pub(super) async fn list(State(state): State<AdminState>) -> Answered {
    let accounts = state.service.list_accounts().await?;
    Ok(Answer::ok(&json!({"accounts": to_value(&accounts)?})))
}

/// `GET /admin/accounts/{name}`.
pub(super) async fn show(State(state): State<AdminState>, Path(name): Path<String>) -> Answered {
    let account = state.service.show_account(&name).await?;
    Ok(Answer::ok(&json!({"account": to_value(&account)?})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnrolRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    force: bool,
}

/// `POST /admin/accounts/{name}/2fa/enrol`: the new TOTP secret, shown once.
pub(super) async fn enrol_2fa(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let request: EnrolRequest = parse(&body)?;
    let enrolment = state
        .service
        .enrol_2fa(&name, request.code.as_deref(), request.force, &who)
        .await?;
    let value = json!({
        "account": enrolment.account,
        "otpauth_uri": enrolment.expose_uri(),
        "secret": enrolment.expose_secret_base32(),
    });
    Ok(Answer::ok(&value).no_store())
}

/// A body with an optional TOTP code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeRequest {
    #[serde(default)]
    pub(super) code: Option<String>,
}

/// `POST /admin/accounts/{name}/2fa/confirm`.
pub(super) async fn confirm_2fa(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
    body: Bytes,
) -> Answered {
    let request: CodeRequest = parse(&body)?;
    let account = state
        .service
        .confirm_2fa(&name, request.code.as_deref().unwrap_or(""), &who)
        .await?;
    Ok(Answer::ok(&json!({"account": to_value(&account)?})))
}
