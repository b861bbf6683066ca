//! Sign-in, the one-time link that sets a password (welcome), and sign-out.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use maud::Markup;

use super::context::{Ctx, csrf_refused, html, redirect, signed_in, status_of};
use super::pages::{self, Chrome};
use super::session::NotCreated;
use super::{COOKIE, Console, FORM_COOKIE};
use crate::edge::form::{Form, query_param};
use crate::service::ManageError;

pub(super) async fn home(ctx: Ctx) -> Response {
    match ctx.session {
        Some(_) => redirect("/keys"),
        None => redirect("/signin"),
    }
}

/// The page of a visitor who is not signed in, with their forms' token (and the cookie, for
/// a new visitor).
fn visitor_page(
    state: &Console,
    ctx: &Ctx,
    status: StatusCode,
    (title, flash, error): (&str, Option<&str>, Option<&str>),
    body: impl FnOnce(&str) -> Markup,
) -> Response {
    let Some((nonce, fresh, token)) = state.visitor_form(ctx) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let chrome = Chrome {
        account: None,
        csrf: "",
        flash,
        error,
    };
    let mut response = html(status, pages::layout(title, &chrome, &body(&token)));
    if fresh {
        state.set_cookie(&mut response, FORM_COOKIE, &nonce);
    }
    response
}

fn sign_in_page(
    state: &Console,
    ctx: &Ctx,
    status: StatusCode,
    name: &str,
    (flash, error): (Option<&str>, Option<&str>),
) -> Response {
    visitor_page(state, ctx, status, ("Sign in", flash, error), |token| {
        pages::sign_in(token, name)
    })
}

pub(super) async fn sign_in_form(
    State(state): State<Console>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    if ctx.session.is_some() {
        return redirect("/keys");
    }
    let flash = (query_param(query.as_deref(), "password").as_deref() == Some("set"))
        .then_some("Password set. Sign in with it.");
    sign_in_page(&state, &ctx, StatusCode::OK, "", (flash, None))
}

pub(super) async fn sign_in(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !state.visitor_form_ok(&ctx, &form) {
        return csrf_refused();
    }
    let name = form.text("name").trim().to_owned();
    let caller = ctx.caller(&name);
    let code = form.get("code").filter(|c| !c.trim().is_empty());
    let signed_in = match state
        .service
        .sign_in(&name, form.text("password"), code, &caller)
        .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => {
            let message = e.public_message();
            let mut response =
                sign_in_page(&state, &ctx, status_of(&e), &name, (None, Some(&message)));
            if let Some(seconds) = e.retry_after_s()
                && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    };
    // A new id at sign-in (no session fixation); an earlier session of this browser ends.
    if let Some((old_id, _)) = &ctx.session {
        state.sessions.remove(old_id);
    }
    match state
        .sessions
        .create(&name, signed_in.stamp, state.service.now_ms())
    {
        Ok((id, _)) => {
            let mut response = redirect("/keys");
            state.set_cookie(&mut response, COOKIE, &id);
            state.clear_cookie(&mut response, FORM_COOKIE);
            response
        }
        Err(NotCreated::Full) => sign_in_page(
            &state,
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            &name,
            (
                None,
                Some(
                    "The console has too many open sessions right now; try again in a few minutes.",
                ),
            ),
        ),
        Err(NotCreated::NoRandomness) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The one-time link's page: the form to choose `account`'s console password (with `error`
/// above it), or, without an account, only the error (the link is not valid).
fn welcome_page(
    state: &Console,
    ctx: &Ctx,
    status: StatusCode,
    (token, account): (&str, Option<&str>),
    error: Option<&str>,
) -> Response {
    visitor_page(
        state,
        ctx,
        status,
        ("Set your password", None, error),
        |csrf| match account {
            Some(account) => pages::welcome(csrf, token, account),
            None => maud::html! { p { a href="/signin" { "Sign in" } } },
        },
    )
}

pub(super) async fn welcome_form(
    State(state): State<Console>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Response {
    match state.service.console_link_account(&token).await {
        Ok(account) => welcome_page(&state, &ctx, StatusCode::OK, (&token, Some(&account)), None),
        Err(e) => welcome_page(
            &state,
            &ctx,
            status_of(&e),
            (&token, None),
            Some(&e.public_message()),
        ),
    }
}

pub(super) async fn welcome(
    State(state): State<Console>,
    ctx: Ctx,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !state.visitor_form_ok(&ctx, &form) {
        return csrf_refused();
    }
    let account = match state.service.console_link_account(&token).await {
        Ok(account) => account,
        Err(e) => {
            let message = e.public_message();
            return welcome_page(&state, &ctx, status_of(&e), (&token, None), Some(&message));
        }
    };
    let password = zeroize::Zeroizing::new(form.text("password").to_owned());
    if password.as_str() != form.text("repeat") {
        let error = Some("The two passwords differ.");
        return welcome_page(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            (&token, Some(&account)),
            error,
        );
    }
    match state
        .service
        .redeem_console_link(&token, &password, &ctx.caller(&account))
        .await
    {
        Ok(_) => redirect("/signin?password=set"),
        Err(e) => {
            let message = e.public_message();
            // A password that breaks the rules keeps the form; anything else ends the link.
            let shown = matches!(e, ManageError::Invalid(_)).then_some(account.as_str());
            welcome_page(&state, &ctx, status_of(&e), (&token, shown), Some(&message))
        }
    }
}

pub(super) async fn sign_out(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (id, account, _) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    state.sessions.remove(&id);
    state
        .service
        .audit_change(
            &ctx.caller(&account),
            "console.sign_out",
            serde_json::json!({"account": account}),
        )
        .await;
    let mut response = redirect("/signin");
    state.clear_cookie(&mut response, COOKIE);
    response
}
