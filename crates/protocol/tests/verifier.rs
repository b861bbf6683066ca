//! The verifier's checks 3–12, row by row and in order, plus property tests: sign → verify
//! round-trips for arbitrary parameters, and any one-byte change is rejected.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use whitebit_auth::encoding::base64_encode;
use whitebit_auth::json::{self, JsonValue};
use whitebit_auth::mac::{HmacSha512Key, PayloadMac};
use whitebit_auth::path::PathRejection;
use whitebit_auth::sign::{BuildError, build_body, sign_body, sign_request};
use whitebit_auth::verify::{BodyMatch, HeaderValue, Rejection, RequestParts, check_request};
use whitebit_auth::{ApiError, NonceMode};

const PATH: &str = "/api/v4/trade-account/balance";
const SECRET: &[u8] = b"a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c";

fn key() -> HmacSha512Key {
    HmacSha512Key::new(SECRET)
}

/// Verifies a body signed correctly (payload and signature derived from it) at `path`.
fn verify_body(
    body: &str,
    path: &str,
    mode: BodyMatch,
) -> Result<(u64, Option<bool>, String), Rejection> {
    let signed = sign_body(body.as_bytes().to_vec(), &key());
    let parts = RequestParts {
        api_key: HeaderValue::Present("pk"),
        payload: HeaderValue::Present(&signed.payload),
        signature: HeaderValue::Present(&signed.signature),
        body: &signed.body,
        path,
    };
    let checked = check_request(&parts, mode)?;
    let k = key();
    checked.verify_signature(Some(&k as &dyn PayloadMac))?;
    Ok((
        checked.nonce(),
        checked.nonce_window(),
        checked.path().to_owned(),
    ))
}

fn rejection(body: &str, path: &str) -> Rejection {
    match verify_body(body, path, BodyMatch::Exact) {
        Ok(v) => panic!("accepted {body} at {path}: {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn fields_rows_7_to_11() {
    use ApiError::*;
    // (the answer, the bodies that get it at PATH)
    let at_path: &[(ApiError, &[&str])] = &[
        (
            RequestNotProvided,
            &[
                r#"{"nonce":1}"#,
                r#"{"request":null,"nonce":1}"#,
                r#"{"request":5,"nonce":1}"#,
            ],
        ),
        (
            RequestPathMismatch,
            &[
                r#"{"request":"/api/v4/other","nonce":1}"#,
                r#"{"request":"/api/v4/trade-account/balance/","nonce":1}"#,
                r#"{"request":"/API/V4/trade-account/balance","nonce":1}"#,
                r#"{"request":"/api/v4/trade-account/balance?x=1","nonce":1}"#,
                r#"{"request":"/api/v4/trade-account/balance#f","nonce":1}"#,
                r#"{"request":"/api/v4/trade-account/%62alance","nonce":1}"#,
            ],
        ),
        (
            NonceNotProvided,
            &[
                r#"{"request":"/api/v4/trade-account/balance"}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":null}"#,
            ],
        ),
        (
            InvalidNonce,
            &[
                r#"{"request":"/api/v4/trade-account/balance","nonce":-1}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":1.5}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":1e3}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":18446744073709551616}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":"0x10"}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":"01"}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":""}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":true}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":[1]}"#,
            ],
        ),
        (
            InvalidNonceWindow,
            &[
                r#"{"request":"/api/v4/trade-account/balance","nonce":1,"nonceWindow":"true"}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":1,"nonceWindow":1}"#,
                r#"{"request":"/api/v4/trade-account/balance","nonce":1,"nonceWindow":null}"#,
            ],
        ),
        // Order: row 7 before 8 before 9 before 10 before 11.
        (
            RequestPathMismatch,
            &[r#"{"request":"/elsewhere","nonceWindow":"x"}"#],
        ),
        (
            InvalidNonce,
            &[r#"{"request":"/api/v4/trade-account/balance","nonce":"x","nonceWindow":"x"}"#],
        ),
        (RequestNotProvided, &[r#"{"nonce":"x","nonceWindow":"x"}"#]),
    ];
    // At another URL path: one with a query, and paths the path rule refuses (spelt the same
    // in `request`).
    let on_their_own_path = [
        (
            r#"{"request":"/api/v4/trade-account/balance","nonce":1}"#,
            "/api/v4/trade-account/balance?x=1",
        ),
        (
            r#"{"request":"/api/v4/./trade-account/balance","nonce":1}"#,
            "/api/v4/./trade-account/balance",
        ),
        (
            r#"{"request":"/api/v4%2ftrade-account/balance","nonce":1}"#,
            "/api/v4%2ftrade-account/balance",
        ),
    ];
    let cases = at_path
        .iter()
        .flat_map(|(expected, bodies)| bodies.iter().map(move |body| (*body, PATH, *expected)))
        .chain(on_their_own_path.map(|(body, path)| (body, path, RequestPathMismatch)));
    for (body, path, expected) in cases {
        assert_eq!(
            rejection(body, path),
            Rejection::Api(expected),
            "{body} at {path}"
        );
    }
}

#[test]
fn payload_row_6() {
    let cases = [
        "[]",
        "1",
        "\"x\"",
        "null",
        "{",
        r#"{"request":"/a","request":"/a","nonce":1}"#,
        r#"{"request":"/api/v4/trade-account/balance","nonce":1,"x":{"a":1,"\u0061":2}}"#,
    ];
    for body in cases {
        assert_eq!(
            rejection(body, PATH),
            Rejection::Api(ApiError::InvalidPayload),
            "{body}"
        );
    }
    let deep = format!(
        r#"{{"request":"{PATH}","nonce":1,"x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        rejection(&deep, PATH),
        Rejection::Api(ApiError::InvalidPayload)
    );
}

#[test]
fn accepted_shapes_from_the_wild() {
    let cases: &[(&str, &str, u64, Option<bool>)] = &[
        (
            r#"{"request":"/api/v4/trade-account/balance","nonce":1594297865000}"#,
            PATH,
            1_594_297_865_000,
            None,
        ),
        (
            r#"{"nonce":"1594297865000","request":"/api/v4/trade-account/balance","nonceWindow":true}"#,
            PATH,
            1_594_297_865_000,
            Some(true),
        ),
        (
            r#"{"request": "\/api\/v4\/trade-account\/balance", "nonce": 0, "nonceWindow": false}"#,
            PATH,
            0,
            Some(false),
        ),
        (
            r#"{"request":"//api/v4//trade-account/balance","nonce":7}"#,
            "//api/v4/trade-account///balance",
            7,
            None,
        ),
        (
            "{\n  \"request\": \"/api/v4/trade-account/balance\",\n  \"nonce\": 2\n}",
            PATH,
            2,
            None,
        ),
    ];
    for (body, path, nonce, window) in cases {
        let (n, w, p) =
            verify_body(body, path, BodyMatch::Exact).unwrap_or_else(|e| panic!("{body}: {e:?}"));
        assert_eq!((n, w, p.as_str()), (*nonce, *window, PATH));
    }
}

fn parts<'a>(
    api_key: HeaderValue<'a>,
    payload: HeaderValue<'a>,
    signature: HeaderValue<'a>,
    body: &'a [u8],
) -> RequestParts<'a> {
    RequestParts {
        api_key,
        payload,
        signature,
        body,
        path: PATH,
    }
}

#[test]
fn header_rows_3_to_6_and_12_in_order() {
    use HeaderValue::{Invalid, Missing, Present};
    let body = format!(r#"{{"request":"{PATH}","nonce":1}}"#);
    let signed = sign_body(body.clone().into_bytes(), &key());
    let (p, s) = (
        Present(signed.payload.as_str()),
        Present(signed.signature.as_str()),
    );
    let b = body.as_bytes();
    let check = |parts: RequestParts<'_>| -> Result<(), Rejection> {
        let k = key();
        check_request(&parts, BodyMatch::Exact)?.verify_signature(Some(&k as &dyn PayloadMac))?;
        Ok(())
    };
    let err = |e: ApiError| Err(Rejection::Api(e));
    assert_eq!(check(parts(Present("pk"), p, s, b)), Ok(()));
    assert_eq!(
        check(parts(Missing, Missing, Missing, b)),
        err(ApiError::ApiKeyNotProvided)
    );
    assert_eq!(
        check(parts(Invalid, Missing, Missing, b)),
        err(ApiError::PayloadNotProvided)
    );
    assert_eq!(
        check(parts(Present("pk"), Invalid, Missing, b)),
        err(ApiError::SignatureNotProvided)
    );
    assert_eq!(
        check(parts(Present("pk"), Invalid, s, b)),
        err(ApiError::InvalidPayload)
    );
    assert_eq!(check(parts(Invalid, p, s, b)), err(ApiError::Unauthorized));
    assert_eq!(
        check(parts(Present("pk"), p, Invalid, b)),
        err(ApiError::Unauthorized)
    );
    assert_eq!(
        check(parts(Present("pk"), p, Present("abc"), b)),
        err(ApiError::Unauthorized)
    );
    // Payload of another body, URL-safe base64, whitespace.
    let other = base64_encode(br#"{"request":"/x","nonce":1}"#);
    assert_eq!(
        check(parts(Present("pk"), Present(&other), s, b)),
        err(ApiError::InvalidPayload)
    );
    let urlsafe = signed.payload.replace('+', "-").replace('/', "_");
    if urlsafe != signed.payload {
        assert_eq!(
            check(parts(Present("pk"), Present(&urlsafe), s, b)),
            err(ApiError::InvalidPayload)
        );
    }
    // Signature over the body instead of the payload.
    let over_body = key().sign(b).to_hex();
    assert_eq!(
        check(parts(Present("pk"), p, Present(&over_body), b)),
        err(ApiError::Unauthorized)
    );
    // Unknown key: dummy HMAC, always refused.
    let checked =
        check_request(&parts(Present("pk"), p, s, b), BodyMatch::Exact).expect("well-formed");
    assert_eq!(checked.verify_signature(None), Err(ApiError::Unauthorized));
}

#[test]
fn header_value_classification() {
    assert_eq!(
        HeaderValue::from_values(Vec::<&[u8]>::new()),
        HeaderValue::Missing
    );
    assert_eq!(HeaderValue::from_values([&b""[..]]), HeaderValue::Missing);
    assert_eq!(
        HeaderValue::from_values([&b"a"[..], &b"a"[..]]),
        HeaderValue::Invalid
    );
    assert_eq!(
        HeaderValue::from_values([&b"a b"[..]]),
        HeaderValue::Invalid
    );
    assert_eq!(
        HeaderValue::from_values([&b"a\xffb"[..]]),
        HeaderValue::Invalid
    );
    assert_eq!(
        HeaderValue::from_values([&b"ab"[..]]),
        HeaderValue::Present("ab")
    );
}

#[test]
fn jwt_endpoint_reports_missing_fields_together() {
    let check = |body: &str| rejection(body, "/api/v4/jwt");
    assert_eq!(
        check("{}"),
        Rejection::MissingFields {
            request: true,
            nonce: true
        }
    );
    assert_eq!(
        check(r#"{"nonce":1}"#),
        Rejection::MissingFields {
            request: true,
            nonce: false
        }
    );
    assert_eq!(
        check(r#"{"request":"/api/v4/jwt"}"#),
        Rejection::MissingFields {
            request: false,
            nonce: true
        }
    );
    // Both present: row 8 applies as usual.
    assert_eq!(
        check(r#"{"request":"/x","nonce":1}"#),
        Rejection::Api(ApiError::RequestPathMismatch)
    );
    // Missing both, but the path check would fail too: 7 and 9 come first.
    assert_eq!(
        check(r#"{"request":null}"#),
        Rejection::MissingFields {
            request: true,
            nonce: true
        }
    );
}

#[test]
fn json_body_match_accepts_reserialised_bodies_only() {
    let payload_body =
        r#"{"request":"/api/v4/trade-account/balance","nonce":5,"amount":"1.0","n":1}"#;
    let signed = sign_body(payload_body.as_bytes().to_vec(), &key());
    let verify = |body: &str, mode| {
        let p = RequestParts {
            api_key: HeaderValue::Present("pk"),
            payload: HeaderValue::Present(&signed.payload),
            signature: HeaderValue::Present(&signed.signature),
            body: body.as_bytes(),
            path: PATH,
        };
        check_request(&p, mode).map(|c| c.decoded_payload().to_vec())
    };
    let spaced =
        r#"{"request": "\/api\/v4\/trade-account\/balance", "n": 1, "nonce": 5, "amount": "1.0"}"#;
    assert_eq!(
        verify(spaced, BodyMatch::Exact),
        Err(Rejection::Api(ApiError::InvalidPayload))
    );
    // The forwarded bytes are always the decoded payload.
    assert_eq!(
        verify(spaced, BodyMatch::Json),
        Ok(payload_body.as_bytes().to_vec())
    );
    for different in [
        r#"{"request":"/api/v4/trade-account/balance","nonce":5,"amount":"1.0","n":1.0}"#,
        r#"{"request":"/api/v4/trade-account/balance","nonce":5,"amount":"1.00","n":1}"#,
        r#"{"request":"/api/v4/trade-account/balance","nonce":5,"amount":"1.0"}"#,
        r#"{"request":"/api/v4/trade-account/balance","nonce":5,"amount":"1.0","n":1,"n":1}"#,
        "not json",
    ] {
        assert_eq!(
            verify(different, BodyMatch::Json),
            Err(Rejection::Api(ApiError::InvalidPayload)),
            "{different}"
        );
    }
}

#[test]
fn builder_refuses_reserved_parameters_and_relative_paths() {
    let mut params = Map::new();
    params.insert("nonce".into(), json!(1));
    assert_eq!(
        build_body(PATH, 1, None, &params),
        Err(BuildError::ReservedParameter("nonce".into()))
    );
    assert_eq!(
        build_body("api/v4", 1, None, &Map::new()),
        Err(BuildError::InvalidPath {
            path: "api/v4".into(),
            reason: PathRejection::NotAbsolute
        })
    );
    // Paths another component could read as a different endpoint are never signed.
    for (path, reason) in [
        (
            "/api/v4/trade-account/%2e%2e/main-account/withdraw",
            PathRejection::PercentEscape,
        ),
        (
            "/api/v4/trade-account/..;/main-account/withdraw",
            PathRejection::ForbiddenCharacter(';'),
        ),
        ("/api/v4/a\\b", PathRejection::ForbiddenCharacter('\\')),
        (
            "/api/v4/order?market=BTC_USDT",
            PathRejection::QueryOrFragment,
        ),
        (
            "/api/v4/../main-account/withdraw",
            PathRejection::DotSegment,
        ),
    ] {
        let refused = build_body(path, 1, None, &Map::new()).expect_err(path);
        assert_eq!(
            refused,
            BuildError::InvalidPath {
                path: path.into(),
                reason
            }
        );
        assert!(
            refused.to_string().contains("cannot be signed"),
            "{refused}"
        );
    }
    let mut params = Map::new();
    params.insert("ticker".into(), json!("BTC"));
    params.insert("a".into(), json!([1, {"b": null}]));
    let body = build_body(PATH, 42, Some(true), &params).expect("builds");
    assert_eq!(
        String::from_utf8(body).expect("utf8"),
        r#"{"request":"/api/v4/trade-account/balance","nonce":42,"nonceWindow":true,"ticker":"BTC","a":[1,{"b":null}]}"#
    );
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_\u{400}-\u{44f}]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        "[a-zA-Z_][a-zA-Z0-9_\u{e9}\u{41e}]{0,10}",
        json_value(),
        0..6,
    )
    .prop_map(|m| {
        m.into_iter()
            .filter(|(k, _)| !["request", "nonce", "nonceWindow"].contains(&k.as_str()))
            .collect()
    })
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_-]{1,12}){1,5}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_verify_round_trips(path in path(), nonce in any::<u64>(), window in any::<Option<bool>>(), params in params()) {
        let k = key();
        let signed = sign_request(&path, nonce, window, &params, &k).expect("builds");
        let parts = RequestParts {
            api_key: HeaderValue::Present("pk"),
            payload: HeaderValue::Present(&signed.payload),
            signature: HeaderValue::Present(&signed.signature),
            body: &signed.body,
            path: &path,
        };
        let checked = check_request(&parts, BodyMatch::Exact).expect("well-formed");
        prop_assert_eq!(checked.nonce(), nonce);
        prop_assert_eq!(checked.nonce_window(), window);
        prop_assert_eq!(checked.nonce_mode(), NonceMode::from_window_flag(window.unwrap_or(false)));
        prop_assert_eq!(checked.path(), path.as_str());
        prop_assert!(checked.verify_signature(Some(&k as &dyn PayloadMac)).is_ok());
        // Each parameter appears in the body as exactly the JSON serde_json writes for it
        // (numbers compared by text: a float read back by serde_json may differ by an ulp).
        let JsonValue::Object(back) = json::parse(&signed.body).expect("valid JSON") else {
            panic!("body is not an object")
        };
        prop_assert_eq!(back.len(), params.len() + 2 + usize::from(window.is_some()));
        for (name, value) in &params {
            let text = serde_json::to_vec(value).expect("serialises");
            let expected = json::parse(&text).expect("valid JSON");
            prop_assert!(back.get(name).is_some_and(|got| got.same_value(&expected)), "{}", name);
        }
    }

    #[test]
    fn any_one_byte_change_is_rejected(
        params in params(),
        nonce in any::<u64>(),
        which in 0usize..3,
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let k = key();
        let signed = sign_request(PATH, nonce, Some(false), &params, &k).expect("builds");
        let mut body = signed.body.clone();
        let mut payload = signed.payload.clone().into_bytes();
        let mut signature = signed.signature.clone().into_bytes();
        let target = match which { 0 => &mut body, 1 => &mut payload, _ => &mut signature };
        let i = index.index(target.len());
        let old = target[i];
        target[i] ^= flip;
        // Changing the case of a hex digit of the signature does not change its value.
        prop_assume!(!(which == 2 && old.is_ascii_alphabetic() && target[i] == old ^ 0x20));
        let parts = RequestParts {
            api_key: HeaderValue::Present("pk"),
            payload: HeaderValue::from_value(&payload),
            signature: HeaderValue::from_value(&signature),
            body: &body,
            path: PATH,
        };
        let outcome = check_request(&parts, BodyMatch::Exact)
            .and_then(|c| c.verify_signature(Some(&k as &dyn PayloadMac)).map_err(Rejection::Api));
        prop_assert!(outcome.is_err(), "a changed byte was accepted");
    }
}

/// The Fiat `url` claim follows the path rule: a token naming an ambiguous path is refused
/// even when the request's path spells it the same way, and `//` is merged on both sides.
#[test]
fn fiat_url_claims_follow_the_path_rule() {
    use whitebit_auth::error::TokenRejection;
    use whitebit_auth::fiat::{
        EncKey, OrderFields, PartnerClaims, PartnerTokenRequest, verify_partner_token,
    };
    let enc = EncKey::new(b"partner-enc-key-0123456789");
    let order = OrderFields {
        currency: "USD",
        amount: "10",
        order_id: "o-1",
    };
    let now = 1_750_000_000_000;
    let check = |claim: &str, url: &str| {
        let token = PartnerClaims::new("partner", claim, &order, now, 30_000).encode(&enc);
        let authorization = format!("Bearer {token}");
        let auth = [authorization.as_str()];
        let request = PartnerTokenRequest {
            authorization: &auth,
            x_auth_key: "partner",
            url,
            order: Some(order),
            now_ms: now,
            iat_leeway_ms: 1_000,
        };
        verify_partner_token(&request, |k| (k == "partner").then_some(&enc)).map(|_| ())
    };
    assert_eq!(
        check("/api/v1/fiat/deposit", "/api/v1/fiat/deposit"),
        Ok(())
    );
    assert_eq!(
        check("/api/v1/fiat/deposit", "//api/v1//fiat/deposit"),
        Ok(())
    );
    for bad in [
        "/api/v1/fiat/%2e%2e/withdraw",
        "/api/v1/fiat/..;/withdraw",
        "/api/v1/fiat/..\\withdraw",
        "/api/v1/fiat/deposit;x=1",
        "/api/v1/fiat/../withdraw",
    ] {
        assert_eq!(check(bad, bad), Err(TokenRejection::UrlMismatch), "{bad}");
    }
}
