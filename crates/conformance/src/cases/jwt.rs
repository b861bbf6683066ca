//! The token endpoint (`POST /api/v4/jwt`): its documented answers, and the token checked
//! against the server's JWKS (`GET /.well-known/jwks.json`) when it publishes one.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use whitebit_auth::JwtEndpointError;
use whitebit_auth::verify::JWT_ENDPOINT_PATH;

use crate::Group;
use crate::http::{Answer, Request};
use crate::report::{CaseReport, Expect, Verdict};
use crate::target::Session;
use crate::wire::{Fields, signed};

pub(crate) fn run(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    let target = session.target;
    let url = target.url_path(JWT_ENDPOINT_PATH);
    let body = Fields::window(JWT_ENDPOINT_PATH, session.next_nonce()).text();
    let request = signed(&url, body.as_bytes(), &target.credentials);
    let answer = session.send(&request);
    let mut case = CaseReport::checked(
        "jwt.issued",
        Group::Jwt,
        "a signed request gets 200 {\"data\":{\"token\",\"expires_at\"}} with Cache-Control: no-store",
        &request,
        &Expect::accepted(),
        &answer,
    );
    let token = match &answer {
        Ok(a) if case.verdict == Verdict::Pass => match issued(a) {
            Ok(token) => Some(token),
            Err(why) => {
                case.verdict = Verdict::Fail(why);
                None
            }
        },
        _ => None,
    };
    out.push(case);

    let refusals = [
        (
            "jwt.validation-both",
            "rows 7 and 9 together: neither request nor nonce",
            Fields(vec![("nonceWindow".into(), "true".into())]),
            JwtEndpointError::ValidationFailed {
                request_missing: true,
                nonce_missing: true,
            },
        ),
        (
            "jwt.validation-nonce",
            "row 9 at the token endpoint: no nonce",
            {
                let mut f = Fields::window(JWT_ENDPOINT_PATH, 0);
                f.remove("nonce");
                f
            },
            JwtEndpointError::ValidationFailed {
                request_missing: false,
                nonce_missing: true,
            },
        ),
    ];
    for (id, rule, fields, error) in refusals {
        let request = signed(&url, fields.text().as_bytes(), &target.credentials);
        let answer = session.send(&request);
        out.push(CaseReport::checked(
            id,
            Group::Jwt,
            rule,
            &request,
            &Expect::exact(error.status(), &error.body()),
            &answer,
        ));
    }
    let body = Fields::window(JWT_ENDPOINT_PATH, session.next_nonce()).text();
    let mut wrong = signed(&url, body.as_bytes(), &target.credentials);
    wrong.set_header("X-TXC-SIGNATURE", &"0".repeat(128));
    let answer = session.send(&wrong);
    let error = JwtEndpointError::InvalidCredentials;
    out.push(CaseReport::checked(
        "jwt.invalid-signature",
        Group::Jwt,
        "row 12 at the token endpoint: 401 \"Invalid API key, signature, or nonce\"",
        &wrong,
        &Expect::exact(error.status(), &error.body()),
        &answer,
    ));

    jwks(session, token.as_deref(), out);
}

/// The token of a 200 answer, after checking its shape.
fn issued(answer: &Answer) -> Result<String, String> {
    if answer.header("cache-control") != Some("no-store") {
        return Err("no `Cache-Control: no-store` on a token".into());
    }
    let value: Value =
        serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON: {e}"))?;
    let token = value
        .pointer("/data/token")
        .and_then(Value::as_str)
        .ok_or("no data.token")?;
    let expires = value
        .pointer("/data/expires_at")
        .and_then(Value::as_u64)
        .ok_or("no integer data.expires_at")?;
    let claims = part(token, 1).ok_or("data.token is not a JWT")?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or("the token has no integer exp")?;
    if exp != expires {
        return Err(format!("expires_at {expires} is not the token's exp {exp}"));
    }
    Ok(token.to_owned())
}

/// Part `index` of a JWT, decoded as JSON.
fn part(token: &str, index: usize) -> Option<Value> {
    serde_json::from_slice(&base64url(token.split('.').nth(index)?)?).ok()
}

fn base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The token's signature checked with the key of its `kid` in the published JWKS.
fn jwks(session: &Session<'_>, token: Option<&str>, out: &mut Vec<CaseReport>) {
    let request = Request::get(session.target.url_path("/.well-known/jwks.json"));
    let rule = "the issued token verifies with the key its kid names in /.well-known/jwks.json";
    let Some(token) = token else {
        out.push(CaseReport::skipped(
            "jwt.jwks",
            Group::Jwt,
            rule,
            "no token was issued",
        ));
        return;
    };
    let answer = session.send(&request);
    let published = match &answer {
        Ok(a) if a.status == 200 => serde_json::from_slice::<Value>(&a.body).ok(),
        _ => None,
    };
    let Some(published) = published else {
        out.push(CaseReport::skipped(
            "jwt.jwks",
            Group::Jwt,
            rule,
            "the server publishes no JWKS",
        ));
        return;
    };
    let verdict = match verify(token, &published) {
        Ok(()) => Verdict::Pass,
        Err(why) => Verdict::Fail(why),
    };
    out.push(CaseReport {
        id: "jwt.jwks".into(),
        group: Group::Jwt,
        rule: rule.into(),
        sent: request.describe(),
        expected: "a key whose signature check passes".into(),
        got: crate::report::shown(&answer),
        verdict,
    });
}

fn verify(token: &str, jwks: &Value) -> Result<(), String> {
    let header = part(token, 0).ok_or("the token's header is not JSON")?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or("the token has no kid")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or_else(|| format!("no key with kid {kid:?} in the JWKS"))?;
    let field = |name: &str| {
        key.get(name)
            .and_then(Value::as_str)
            .and_then(base64url)
            .ok_or_else(|| format!("the key has no {name}"))
    };
    let (signed_part, sig) = token.rsplit_once('.').ok_or("not a JWS")?;
    let sig = base64url(sig).ok_or("the signature is not base64url")?;
    let message = signed_part.as_bytes();
    let checked = match alg {
        "RS256" => RsaPublicKeyComponents {
            n: field("n")?,
            e: field("e")?,
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, &sig),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, &sig)
        }
        "EdDSA" => UnparsedPublicKey::new(&signature::ED25519, field("x")?).verify(message, &sig),
        other => {
            return Err(format!(
                "alg {other:?} is not one the suite checks (RS256, ES256, EdDSA)"
            ));
        }
    };
    checked.map_err(|_| format!("the {alg} signature does not verify with key {kid:?}"))
}
