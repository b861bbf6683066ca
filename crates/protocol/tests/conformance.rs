//! The shared conformance vectors: signing and verification of every case, and the Fiat
//! Gateway verifier reaching the expected outcome of every token case.

use serde_json::Value;
use whitebit_auth::fiat::{
    EncKey, OrderFields, PartnerTokenRequest, order_signature, verify_partner_token,
};
use whitebit_auth::mac::{HmacSha512Key, PayloadMac};
use whitebit_auth::sign::sign_body;
use whitebit_auth::verify::{BodyMatch, HeaderValue, RequestParts, check_request};
use whitebit_auth::{ApiError, TokenRejection};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("vector file readable");
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} is a string"))
}

/// The URL path a case's body was built for (its `request`, `\/` unescaped).
fn request_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).expect("case body is JSON");
    v["request"].as_str().expect("case has request").to_owned()
}

struct Case {
    name: String,
    secret: String,
    body: String,
    payload: String,
    signature: String,
}

fn signing_cases() -> Vec<Case> {
    let doc = load("signing.json");
    let secret = s(&doc, "api_secret").to_owned();
    let mut cases: Vec<Case> = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: s(c, "name").to_owned(),
            secret: secret.clone(),
            body: s(c, "body").to_owned(),
            payload: s(c, "payload").to_owned(),
            signature: s(c, "signature").to_owned(),
        })
        .collect();
    let other = &doc["other_secret_case"];
    cases.push(Case {
        name: "other-secret".to_owned(),
        secret: s(other, "api_secret").to_owned(),
        body: s(other, "body").to_owned(),
        payload: s(other, "payload").to_owned(),
        signature: s(other, "signature").to_owned(),
    });
    assert!(cases.len() >= 15, "all cases loaded");
    cases
}

#[test]
fn signing_reproduces_every_case() {
    for case in signing_cases() {
        let key = HmacSha512Key::new(case.secret.as_bytes());
        let signed = sign_body(case.body.clone().into_bytes(), &key);
        assert_eq!(signed.payload, case.payload, "payload of {}", case.name);
        assert_eq!(
            signed.signature, case.signature,
            "signature of {}",
            case.name
        );
    }
}

#[test]
fn verification_accepts_every_case_in_both_body_match_modes() {
    for case in signing_cases() {
        let key = HmacSha512Key::new(case.secret.as_bytes());
        let path = request_of(&case.body);
        for mode in [BodyMatch::Exact, BodyMatch::Json] {
            let upper = case.signature.to_ascii_uppercase();
            let unpadded = case.payload.trim_end_matches('=');
            for (payload, signature) in [
                (case.payload.as_str(), case.signature.as_str()),
                (case.payload.as_str(), upper.as_str()),
                (unpadded, case.signature.as_str()),
            ] {
                let parts = RequestParts {
                    api_key: HeaderValue::Present("4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b"),
                    payload: HeaderValue::Present(payload),
                    signature: HeaderValue::Present(signature),
                    body: case.body.as_bytes(),
                    path: &path,
                };
                let checked = check_request(&parts, mode)
                    .unwrap_or_else(|e| panic!("{} ({mode:?}) rejected: {e:?}", case.name));
                assert_eq!(checked.decoded_payload(), case.body.as_bytes());
                let key_ref: &dyn PayloadMac = &key;
                // Unpadded payloads are a different header value, hence a different MAC:
                // only the padded form verifies with the vector's signature.
                let result = checked.verify_signature(Some(key_ref));
                if payload == case.payload {
                    assert_eq!(result, Ok(()), "{} signature", case.name);
                } else {
                    assert_eq!(
                        result,
                        Err(ApiError::Unauthorized),
                        "{} unpadded",
                        case.name
                    );
                }
            }
        }
    }
}

#[test]
fn verification_rejects_every_case_under_another_key() {
    let other = HmacSha512Key::new(b"not the secret");
    for case in signing_cases() {
        let path = request_of(&case.body);
        let parts = RequestParts {
            api_key: HeaderValue::Present("k"),
            payload: HeaderValue::Present(&case.payload),
            signature: HeaderValue::Present(&case.signature),
            body: case.body.as_bytes(),
            path: &path,
        };
        let checked = check_request(&parts, BodyMatch::Exact).expect("well-formed");
        let other_ref: &dyn PayloadMac = &other;
        assert_eq!(
            checked.verify_signature(Some(other_ref)),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(checked.verify_signature(None), Err(ApiError::Unauthorized));
    }
}

#[test]
fn order_signatures_match() {
    let doc = load("fiat-jwt.json");
    let cases = doc["signatures"].as_array().expect("signatures");
    assert!(!cases.is_empty());
    for c in cases {
        assert_eq!(
            order_signature(s(c, "currency"), s(c, "amount"), s(c, "order_id")),
            s(c, "sha256"),
            "order {}",
            s(c, "data")
        );
    }
}

/// Each case must reach its `expect`; rejected cases must also fail for the reason the
/// case's name describes.
#[test]
fn fiat_tokens_reach_expected_outcome() {
    let doc = load("fiat-jwt.json");
    let enc = EncKey::new(s(&doc, "enc_key").as_bytes());
    let auth_key = s(&doc, "auth_key");
    let tokens = doc["tokens"].as_array().expect("tokens");
    assert!(tokens.len() >= 12);
    for t in tokens {
        let name = s(t, "name");
        let order = &t["order"];
        let fields = OrderFields {
            currency: s(order, "currency"),
            amount: s(order, "amount"),
            order_id: s(order, "order_id"),
        };
        let authorization = format!("Bearer {}", s(t, "token"));
        let auth = [authorization.as_str()];
        let request = PartnerTokenRequest {
            authorization: &auth,
            x_auth_key: s(t, "x_auth_key"),
            url: s(t, "url"),
            order: Some(fields),
            now_ms: t["now_ms"].as_u64().expect("now_ms"),
            iat_leeway_ms: 1_000,
        };
        let result = verify_partner_token(&request, |k| (k == auth_key).then_some(&enc));
        let expected_reason = match name {
            "valid" | "valid-at-59s" => None,
            "expired" => Some(TokenRejection::Expired),
            "lifetime-over-60s" => Some(TokenRejection::LifetimeTooLong),
            "iat-in-future" => Some(TokenRejection::IssuedInFuture),
            // An unknown x-auth-key selects no key: the signature cannot be right.
            "wrong-enc-key" | "auth-key-header-mismatch" => Some(TokenRejection::InvalidSignature),
            "url-mismatch" => Some(TokenRejection::UrlMismatch),
            "order-signature-mismatch" => Some(TokenRejection::OrderSignatureMismatch),
            "alg-none" | "alg-hs512" => Some(TokenRejection::AlgorithmNotAllowed),
            "missing-signature-claim" => Some(TokenRejection::Malformed),
            "seconds-not-millis" => Some(TokenRejection::InvalidTimes),
            other => panic!("unknown case {other}: add its expected reason"),
        };
        match (s(t, "expect"), expected_reason, &result) {
            ("accept", None, Ok(v)) => {
                assert_eq!(v.auth_key, auth_key);
                assert!(v.expires_at_ms > request.now_ms);
            }
            ("reject", Some(reason), Err(got)) => assert_eq!(*got, reason, "{name}"),
            _ => panic!("{name}: expected {}, got {result:?}", s(t, "expect")),
        }
    }
}

/// The Auth Key header names a known partner but the token carries another `key` claim.
#[test]
fn key_claim_must_equal_header() {
    let doc = load("fiat-jwt.json");
    let enc = EncKey::new(s(&doc, "enc_key").as_bytes());
    let token = s(&doc["tokens"][0], "token");
    let auth = [token];
    let order = OrderFields {
        currency: "BTC",
        amount: "0.001",
        order_id: "12345",
    };
    let request = PartnerTokenRequest {
        authorization: &auth,
        x_auth_key: "auth-someone-else",
        url: "/api/v1/fiat/deposit",
        order: Some(order),
        now_ms: 1_700_000_001_000,
        iat_leeway_ms: 0,
    };
    // The other partner's key is the same Enc Key here, so the signature verifies and the
    // claim comparison is what fails.
    assert_eq!(
        verify_partner_token(&request, |_| Some(&enc)),
        Err(TokenRejection::KeyMismatch)
    );
}

#[test]
fn bearer_prefix_handling() {
    use whitebit_auth::fiat::bearer_token;
    assert_eq!(bearer_token(&["Bearer a.b.c"]), Some("a.b.c"));
    assert_eq!(bearer_token(&["bearer   a.b.c"]), Some("a.b.c"));
    assert_eq!(bearer_token(&["a.b.c"]), Some("a.b.c"));
    for missing in [
        &["Bearer "][..],
        &["Bearer"],
        &[""],
        &["  "],
        &["Bearer a b"],
        &["a", "b"],
        &[],
    ] {
        assert_eq!(bearer_token(missing), None, "{missing:?}");
    }
}
