//! Fiat Gateway partner tokens (`docs/errors.md` section 3.1): a valid token accepted once,
//! and each documented refusal, its reason byte for byte. Needs the partner's Auth Key and Enc
//! Key and a Fiat Gateway route on the server.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use whitebit_auth::TokenRejection;
use whitebit_auth::fiat::{EncKey, OrderFields, PartnerClaims};

use crate::Group;
use crate::http::Request;
use crate::report::{CaseReport, Expect};
use crate::target::{Partner, Session};

/// How a case changes a valid token or request.
#[derive(Clone, Copy)]
enum Change {
    None,
    NoAuthorization,
    AlgNone,
    WrongEncKey,
    OtherKey,
    OtherUrl,
    SecondsTimes,
    LongLifetime,
    Future,
    Expired,
    OtherAmount,
    NoOrderId,
}

const CASES: [(&str, &str, Change, TokenRejection); 11] = [
    (
        "no-token",
        "step 1: no Authorization header",
        Change::NoAuthorization,
        TokenRejection::Missing,
    ),
    (
        "alg-none",
        "step 3: a token whose alg is none",
        Change::AlgNone,
        TokenRejection::AlgorithmNotAllowed,
    ),
    (
        "wrong-enc-key",
        "step 4: a token signed with another Enc Key",
        Change::WrongEncKey,
        TokenRejection::InvalidSignature,
    ),
    (
        "key-mismatch",
        "step 6: the key claim names another partner",
        Change::OtherKey,
        TokenRejection::KeyMismatch,
    ),
    (
        "url-mismatch",
        "step 7: the url claim names another path",
        Change::OtherUrl,
        TokenRejection::UrlMismatch,
    ),
    (
        "seconds",
        "step 8: iat and exp in seconds",
        Change::SecondsTimes,
        TokenRejection::InvalidTimes,
    ),
    (
        "lifetime",
        "step 9: a lifetime of 60001 ms",
        Change::LongLifetime,
        TokenRejection::LifetimeTooLong,
    ),
    (
        "future",
        "step 10: iat 10 s ahead",
        Change::Future,
        TokenRejection::IssuedInFuture,
    ),
    (
        "expired",
        "step 11: exp 10 s ago, in milliseconds",
        Change::Expired,
        TokenRejection::Expired,
    ),
    (
        "order-missing",
        "step 12: no orderId in the body",
        Change::NoOrderId,
        TokenRejection::OrderFieldsMissing,
    ),
    (
        "order-mismatch",
        "step 13: the signature claim is for another amount",
        Change::OtherAmount,
        TokenRejection::OrderSignatureMismatch,
    ),
];

/// A partner's request with `change` applied.
fn request(session: &Session<'_>, partner: &Partner, change: Change) -> Request {
    let order_id = format!("conformance-{}", session.next_nonce());
    let order = OrderFields {
        currency: "UAH",
        amount: "100.00",
        order_id: &order_id,
    };
    let now = session.now_ms();
    let mut claims = PartnerClaims::new(&partner.auth_key, &partner.path, &order, now, 30_000);
    let mut enc = EncKey::new(partner.enc_key().as_bytes());
    match change {
        Change::WrongEncKey => enc = EncKey::new(b"not-the-partner's-enc-key"),
        Change::OtherKey => claims.key = format!("{}-other", partner.auth_key),
        Change::OtherUrl => claims.url = "/api/v1/fiat/other".into(),
        Change::SecondsTimes => (claims.iat, claims.exp) = (now / 1000, now / 1000 + 30),
        Change::LongLifetime => claims.exp = claims.iat + 60_001,
        Change::Future => (claims.iat, claims.exp) = (now + 10_000, now + 40_000),
        Change::Expired => (claims.iat, claims.exp) = (now - 40_000, now - 10_000),
        Change::OtherAmount => {
            claims.signature = OrderFields {
                amount: "100.01",
                ..order
            }
            .signature();
        }
        _ => {}
    }
    let mut token = claims.encode(&enc);
    if let Change::AlgNone = change {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let rest = token
            .split_once('.')
            .map_or("", |(_, rest)| rest)
            .to_owned();
        token = format!("{header}.{rest}");
    }
    let body = match change {
        Change::NoOrderId => r#"{"currency":"UAH","amount":"100.00"}"#.to_owned(),
        _ => format!(r#"{{"currency":"UAH","amount":"100.00","orderId":"{order_id}"}}"#),
    };
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("x-auth-key".to_owned(), partner.auth_key.clone()),
    ];
    if !matches!(change, Change::NoAuthorization) {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    Request {
        method: "POST".into(),
        target: session.target.url_path(&partner.path),
        headers,
        body: body.into_bytes(),
        content_length: true,
    }
}

pub(crate) fn run(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    let Some(partner) = &session.target.partner else {
        out.push(CaseReport::skipped(
            "fiat",
            Group::Fiat,
            "partner tokens on a Fiat Gateway route",
            "needs --fiat-auth-key and --fiat-enc-key (a partner of the server) and a Fiat Gateway route at --fiat-path",
        ));
        return;
    };
    let valid = request(session, partner, Change::None);
    let answer = session.send(&valid);
    out.push(CaseReport::checked(
        "fiat.accepted",
        Group::Fiat,
        "a partner token with millisecond iat/exp, 30 s lifetime, signed order: accepted",
        &valid,
        &Expect::accepted(),
        &answer,
    ));
    let again = session.send(&valid);
    let used = TokenRejection::AlreadyUsed;
    out.push(CaseReport::checked(
        "fiat.single-use",
        Group::Fiat,
        "step 14: the same token again is refused",
        &valid,
        &Expect::exact(used.status(), &used.body()),
        &again,
    ));
    for (id, rule, change, rejection) in CASES {
        let request = request(session, partner, change);
        let answer = session.send(&request);
        out.push(CaseReport::checked(
            format!("fiat.{id}"),
            Group::Fiat,
            rule,
            &request,
            &Expect::exact(rejection.status(), &rejection.body()),
            &answer,
        ));
    }
}
