//! Two-factor authentication: the status page, enrolment (QR code) and confirmation.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::Console;
use super::context::{Ctx, error_page, page, redirect, signed_in};
use super::pages;
use crate::edge::form::Form;
use crate::service::TwoFactor;

pub(super) async fn two_factor_page(State(state): State<Console>, ctx: Ctx) -> Response {
    let (id, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let flash = state.sessions.take_flash(&id);
    match state.service.show_account(&account).await {
        Ok(view) => page(
            StatusCode::OK,
            "Two-factor authentication",
            &account,
            &session,
            flash.as_deref(),
            None,
            &pages::two_factor(
                &session.csrf,
                view.two_factor == TwoFactor::On,
                view.two_factor == TwoFactor::Pending,
            ),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

pub(super) async fn enrol(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (_, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let code = form.get("code").filter(|c| !c.trim().is_empty());
    match state
        .service
        .enrol_2fa(&account, code, false, &ctx.caller(&account))
        .await
    {
        Ok(enrolment) => {
            let svg = qrcode::QrCode::new(enrolment.expose_uri().as_bytes())
                .map(|qr| {
                    qr.render::<qrcode::render::svg::Color<'_>>()
                        .min_dimensions(220, 220)
                        .build()
                })
                .unwrap_or_default();
            page(
                StatusCode::OK,
                "Enrol an authenticator app",
                &account,
                &session,
                None,
                None,
                &pages::enrolment(&session.csrf, &svg, enrolment.expose_secret_base32()),
            )
        }
        Err(e) => error_page(&account, &session, &e, "/2fa"),
    }
}

pub(super) async fn confirm(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (id, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    match state
        .service
        .confirm_2fa(&account, form.text("code"), &ctx.caller(&account))
        .await
    {
        Ok(_) => {
            state.sessions.set_flash(
                &id,
                "Two-factor authentication is on. You can now generate API keys.".to_owned(),
            );
            redirect("/2fa")
        }
        Err(e) => error_page(&account, &session, &e, "/2fa"),
    }
}
