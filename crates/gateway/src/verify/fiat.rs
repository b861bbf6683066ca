//! Fiat Gateway routes (`docs/design-decisions.md` 22–24): a request with `x-auth-key` carries a partner
//! token (HS256, key chosen by `x-auth-key`, single use); without it, the token must be one
//! this gateway issued (`POST /api/v4/jwt`, checked against the JWKS keys), whose API key must
//! still be in force (enabled, not idle-deactivated, not deleted, the same secret) and which
//! is used once too. Failures answer 401 `Request authorization failed` with the reason.

use axum::http::HeaderMap;
use whitebit_auth::TokenRejection;
use whitebit_auth::fiat::{
    OrderFieldNames, PartnerTokenRequest, order_fields_from_body, verify_partner_token,
};

use super::outcome::{FiatIdentity, Refusal};
use crate::verify::gateway::Gateway;
use crate::verify::live::Live;
use wbauth_store::Claim;

/// Checks the token of a request to a Fiat Gateway route (instead of rows 3–16). `path` is
/// the normalised path. A token failure answers 401 with its reason; a replay store that
/// cannot record the token refuses (503), never lets it through.
pub(super) async fn authorize(
    gw: &Gateway,
    live: &Live,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<FiatIdentity, Refusal> {
    let now_ms = gw.clock.now_ms();
    let authorization: Vec<&str> = headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    let auth_keys: Vec<&str> = headers
        .get_all("x-auth-key")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    if auth_keys.is_empty() {
        // The gateway's own tokens: the JWKS algorithm only, the key still in force, once.
        let token = live
            .tokens
            .verify(&authorization, now_ms)
            .map_err(Refusal::Token)?;
        check_token_key(gw, live, &token, now_ms).map_err(Refusal::Token)?;
        let expires_at_ms = token.expires_at_s.saturating_mul(1000);
        return match gw
            .replay
            .claim(issued_replay_id(&token.jti), expires_at_ms, now_ms)
            .await
        {
            Ok(Claim::Fresh) => Ok(FiatIdentity::Account(token.subject)),
            Ok(Claim::Replayed) => Err(Refusal::Token(TokenRejection::AlreadyUsed)),
            Err(e) => {
                tracing::error!(target: "wbauth::fiat", error = %e, "cannot record a token");
                Err(Refusal::Api(whitebit_auth::ApiError::ServiceUnavailable))
            }
        };
    }
    // A partner token: HS256 only, the key chosen by x-auth-key (one value).
    let x_auth_key = match auth_keys.as_slice() {
        [one] => *one,
        _ => "",
    };
    let cfg = &live.config.fiat;
    let names = OrderFieldNames {
        currency: cfg.currency_field.clone(),
        amount: cfg.amount_field.clone(),
        order_id: cfg.order_id_field.clone(),
    };
    let order = order_fields_from_body(body, &names);
    let partner = gw.partners.get_enabled(x_auth_key);
    let request = PartnerTokenRequest {
        authorization: &authorization,
        x_auth_key,
        url: path,
        order: order
            .as_ref()
            .map(whitebit_auth::fiat::OwnedOrderFields::as_fields),
        now_ms,
        iat_leeway_ms: cfg.iat_leeway_ms,
    };
    let verified = verify_partner_token(&request, |_| partner.as_deref().map(|p| &p.enc))
        .map_err(Refusal::Token)?;
    match gw
        .replay
        .claim(verified.replay_id, verified.expires_at_ms, now_ms)
        .await
    {
        Ok(Claim::Fresh) => Ok(FiatIdentity::Partner(verified.auth_key)),
        Ok(Claim::Replayed) => Err(Refusal::Token(TokenRejection::AlreadyUsed)),
        Err(e) => {
            tracing::error!(target: "wbauth::fiat", error = %e, "cannot record a partner token");
            Err(Refusal::Api(whitebit_auth::ApiError::ServiceUnavailable))
        }
    }
}

/// The API key a gateway-issued token was issued for must still be in force: the same key
/// (not deleted, not given a new secret, which gives it a new id) of the token's account,
/// enabled and not idle-deactivated — the state its HMAC-signed requests are checked against.
/// A token that names no key (none this gateway issues) is malformed.
fn check_token_key(
    gw: &Gateway,
    live: &Live,
    token: &crate::tokens::VerifiedIssuedToken,
    now_ms: u64,
) -> Result<(), TokenRejection> {
    let (Some(public_key), Some(key_id)) = (token.key.as_deref(), token.key_id) else {
        return Err(TokenRejection::Malformed);
    };
    let Some(key) = gw.keys.get(public_key) else {
        return Err(TokenRejection::KeyReplaced);
    };
    if key.id != key_id || key.account_name != token.subject {
        return Err(TokenRejection::KeyReplaced);
    }
    if !key.enabled || key.is_idle(now_ms, live.config.keys.idle_days) {
        return Err(TokenRejection::KeyDisabled);
    }
    Ok(())
}

/// A gateway-issued token's identity in the replay store: SHA-256 of its `jti`, apart from
/// the partner tokens' (their signature bytes).
fn issued_replay_id(jti: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(24 + jti.len());
    input.extend_from_slice(b"wbauth issued token jti\0");
    input.extend_from_slice(jti.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let mut id = [0u8; 32];
    id.copy_from_slice(digest.as_ref());
    id
}
