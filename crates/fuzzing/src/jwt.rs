//! The token harness: Fiat Gateway partner tokens and the gateway's own issued tokens.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use whitebit_auth::TokenRejection;
use whitebit_auth::fiat::{
    EncKey, MAX_LIFETIME_MS, OrderFieldNames, OrderFields, PartnerClaims, PartnerTokenRequest,
    order_fields_from_body, verify_partner_token,
};
use whitebit_auth::json::{self, JsonValue};
use whitebit_auth::path::normalize_path;
use whitebit_gateway::tokens::{SigningKey, TokenIssuer};

use crate::{AUTH_KEY, ENC_KEY, Outcome, T0_MS, fields, flags_and_rest};

/// The gateway's token issuer with a fresh ES256 key (once per process).
fn issuer() -> &'static TokenIssuer {
    static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = SigningKey::generate_es256().expect("an ES256 key");
        TokenIssuer::new("wbauth-fuzz", "wbauth-fuzz-api", vec![key]).expect("an issuer")
    })
}

/// The token parsers: Fiat Gateway partner tokens (HS256, millisecond claims) and the
/// gateway's own issued tokens.
///
/// Input: a flags byte, then `authorization \0 x_auth_key \0 url \0 body`. The clock is
/// [`T0_MS`] plus `(flags >> 2) × 2 s`. Flags `& 3`: 0 verifies the `Authorization` values
/// (split on `\n`) as a partner token; 1 builds the token from `header \x01 claims` in the
/// `authorization` field, signed with [`ENC_KEY`]; 2 encodes claims for the given key, url and
/// order and verifies them back (they must pass when the url is a valid path); 3 verifies the
/// `Authorization` values as a gateway-issued token and round-trips an issued token for the
/// subject `x_auth_key`.
pub fn jwt(data: &[u8]) -> Outcome {
    let (flags, rest) = flags_and_rest(data);
    let [authorization, x_auth_key, url, body] = fields::<4>(rest);
    let now_ms = T0_MS + u64::from(flags >> 2) * 2_000;
    let x_auth_key = String::from_utf8_lossy(x_auth_key);
    let url = String::from_utf8_lossy(url);
    let order = order_fields_from_body(body, &OrderFieldNames::default());
    let enc = EncKey::new(ENC_KEY.as_bytes());
    let authorization = String::from_utf8_lossy(authorization);

    match flags & 3 {
        0 => {
            let values: Vec<&str> = authorization.split('\n').collect();
            partner(&values, &x_auth_key, &url, order.as_ref(), now_ms, &enc)
        }
        1 => {
            let (header, claims) = authorization
                .split_once('\u{1}')
                .unwrap_or((r#"{"alg":"HS256","typ":"JWT"}"#, &authorization));
            let mut token = URL_SAFE_NO_PAD.encode(header.as_bytes());
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(claims.as_bytes()));
            let signature = hs256(token.as_bytes());
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(signature));
            partner(&[&token], &x_auth_key, &url, order.as_ref(), now_ms, &enc)
        }
        2 => {
            let order = order.unwrap_or_else(|| whitebit_auth::fiat::OwnedOrderFields {
                currency: "BTC".into(),
                amount: "0.001".into(),
                order_id: authorization.to_string(),
            });
            let lifetime = 1 + u64::from(flags >> 2) * 1_000 % MAX_LIFETIME_MS;
            let claims =
                PartnerClaims::new(&x_auth_key, &url, &order.as_fields(), now_ms, lifetime);
            let token = claims.encode(&enc);
            let values = [token.as_str()];
            let request = PartnerTokenRequest {
                authorization: &values,
                x_auth_key: &x_auth_key,
                url: &url,
                order: Some(order.as_fields()),
                now_ms,
                iat_leeway_ms: 0,
            };
            let verified = verify_partner_token(&request, |_| Some(&enc));
            match (normalize_path(&url).is_ok(), verified) {
                (true, Ok(token)) => {
                    assert_eq!(token.auth_key, x_auth_key.as_ref());
                    assert_eq!(token.expires_at_ms, now_ms + lifetime);
                    Outcome::Accepted
                }
                (true, Err(e)) => panic!("a freshly encoded partner token was refused: {e}"),
                (false, Ok(_)) => panic!("a token for an invalid url was accepted"),
                (false, Err(e)) => {
                    assert_eq!(e, TokenRejection::UrlMismatch);
                    Outcome::Rejected
                }
            }
        }
        _ => {
            let issuer = issuer();
            let values: Vec<&str> = authorization.split('\n').collect();
            match issuer.verify(&values, now_ms) {
                Ok(verified) => assert!(verified.expires_at_s.saturating_mul(1000) > now_ms),
                Err(e) => check_token_rejection(e),
            }
            let issued = issuer.issue(&x_auth_key, now_ms).expect("issuing a token");
            let bearer = format!("Bearer {}", issued.token);
            let verified = issuer
                .verify(&[&bearer], now_ms)
                .expect("a freshly issued token verifies");
            assert_eq!(verified.subject, x_auth_key.as_ref());
            assert_eq!(verified.jti, issued.jti);
            assert_eq!(verified.expires_at_s, issued.expires_at_s);
            assert!(
                json::parse(issued.response_body().as_bytes()).is_ok(),
                "the token response is not JSON"
            );
            Outcome::Accepted
        }
    }
}

/// HMAC-SHA256 under [`ENC_KEY`] (what a partner signs its tokens with).
fn hs256(message: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac as _};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(ENC_KEY.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn partner(
    authorization: &[&str],
    x_auth_key: &str,
    url: &str,
    order: Option<&whitebit_auth::fiat::OwnedOrderFields>,
    now_ms: u64,
    enc: &EncKey,
) -> Outcome {
    let request = PartnerTokenRequest {
        authorization,
        x_auth_key,
        url,
        order: order.map(whitebit_auth::fiat::OwnedOrderFields::as_fields),
        now_ms,
        iat_leeway_ms: 1_000,
    };
    let known = |key: &str| (key == AUTH_KEY).then_some(enc);
    match verify_partner_token(&request, known) {
        Ok(token) => {
            assert_eq!(token.auth_key, AUTH_KEY, "accepted an unknown partner");
            assert!(token.expires_at_ms > now_ms, "accepted an expired token");
            assert!(
                token.expires_at_ms <= now_ms + 1_000 + MAX_LIFETIME_MS,
                "accepted a token living too long"
            );
            let order = order.expect("accepted without order fields");
            let _: OrderFields<'_> = order.as_fields();
            Outcome::Accepted
        }
        Err(e) => {
            check_token_rejection(e);
            Outcome::Rejected
        }
    }
}

fn check_token_rejection(e: TokenRejection) {
    assert_eq!(e.status(), 401);
    let body = e.body();
    let Ok(JsonValue::Object(object)) = json::parse(body.as_bytes()) else {
        panic!("a token rejection body is not a JSON object: {body}");
    };
    assert!(matches!(
        object.get("message"),
        Some(JsonValue::String(m)) if m == "Request authorization failed"
    ));
}
