//! The private-request harness: `whitebit-auth`'s verifier, the doctor, JSON, paths, nonces.

use whitebit_auth::doctor::{Capture, diagnose};
use whitebit_auth::encoding::{base64_decode, base64_encode};
use whitebit_auth::json::{self, JsonValue};
use whitebit_auth::mac::{HmacSha512Key, sign_payload};
use whitebit_auth::nonce::parse_nonce;
use whitebit_auth::path::normalize_path;
use whitebit_auth::sign::sign_body;
use whitebit_auth::verify::{
    BodyMatch, HeaderValue, JWT_ENDPOINT_PATH, Rejection, RequestParts, check_request,
};
use whitebit_auth::{ApiError, JwtEndpointError, NonceMode};

use crate::{API_SECRET, Outcome, T0_MS, fields, flags_and_rest};

/// The private-request pipeline of `whitebit-auth`.
///
/// Input: a flags byte, then `api_key \0 payload \0 signature \0 path \0 body`. Flags: bit 0
/// replaces the payload by the base64 of the body, bit 1 replaces the signature by the HMAC of
/// the payload under [`API_SECRET`], bit 2 compares the body as JSON instead of byte for byte,
/// bit 3 sends `X-TXC-APIKEY` twice.
///
/// Invariants: a rejection is one of rows 3–11 with its documented status; an acceptance
/// decodes to the body, re-encodes to the payload, carries the normalised path and the nonce
/// of the JSON, and verifies under [`API_SECRET`] exactly when the signature is the HMAC of the
/// payload (re-signing gives the same signature); an unknown key never verifies.
pub fn request(data: &[u8]) -> Outcome {
    let (flags, rest) = flags_and_rest(data);
    let [key, payload_in, signature_in, path_in, body] = fields::<5>(rest);
    let payload_owned;
    let payload: &[u8] = if flags & 1 != 0 {
        payload_owned = base64_encode(body);
        payload_owned.as_bytes()
    } else {
        payload_in
    };
    let signature_owned;
    let signature: &[u8] = if flags & 2 != 0 {
        signature_owned = sign_payload(API_SECRET.as_bytes(), payload);
        signature_owned.as_bytes()
    } else {
        signature_in
    };
    let body_match = if flags & 4 != 0 {
        BodyMatch::Json
    } else {
        BodyMatch::Exact
    };
    let key_values: &[&[u8]] = if flags & 8 != 0 { &[key, key] } else { &[key] };
    let path = String::from_utf8_lossy(path_in);
    let parts = RequestParts {
        api_key: HeaderValue::from_values(key_values.iter().copied()),
        payload: HeaderValue::from_value(payload),
        signature: HeaderValue::from_value(signature),
        body,
        path: &path,
    };

    building_blocks(body, &path);
    let _ = diagnose(&Capture {
        body: Some(body),
        payload: std::str::from_utf8(payload).ok(),
        signature: std::str::from_utf8(signature).ok(),
        secret: Some(API_SECRET.as_bytes()),
        path: Some(&path),
        now_ms: Some(T0_MS),
        ..Capture::default()
    });

    let outcome = match check_request(&parts, body_match) {
        Err(Rejection::Api(e)) => {
            check_row_3_to_11(e, &parts);
            return Outcome::Rejected;
        }
        Err(Rejection::MissingFields { request, nonce }) => {
            assert!(request || nonce, "MissingFields names no field");
            assert_eq!(
                normalize_path(&path).as_deref(),
                Ok(JWT_ENDPOINT_PATH),
                "MissingFields outside the token endpoint"
            );
            let answer = JwtEndpointError::ValidationFailed {
                request_missing: request,
                nonce_missing: nonce,
            };
            assert_eq!(answer.status(), 400);
            return Outcome::Rejected;
        }
        Ok(checked) => checked,
    };

    let HeaderValue::Present(payload_text) = parts.payload else {
        panic!("accepted without a payload header");
    };
    let decoded = base64_decode(payload_text.as_bytes()).expect("an accepted payload decodes");
    assert_eq!(outcome.decoded_payload(), decoded.as_slice());
    if body_match == BodyMatch::Exact {
        assert_eq!(
            decoded.as_slice(),
            body,
            "exact match accepted another body"
        );
    }
    assert_eq!(
        base64_encode(&decoded).trim_end_matches('='),
        payload_text.trim_end_matches('='),
        "the accepted payload is not the canonical base64 of its bytes"
    );
    let normalized = normalize_path(&path).expect("an accepted path normalises");
    assert_eq!(outcome.path(), normalized.as_ref());
    assert_eq!(
        normalize_path(outcome.path()).as_deref(),
        Ok(outcome.path()),
        "normalisation is not idempotent"
    );
    let Ok(JsonValue::Object(object)) = json::parse(&decoded) else {
        panic!("accepted a payload that is not a JSON object");
    };
    let nonce = object.get("nonce").expect("accepted without a nonce");
    assert_eq!(parse_nonce(nonce), Ok(outcome.nonce()));
    assert_eq!(
        outcome.nonce_mode(),
        NonceMode::from_window_flag(outcome.nonce_window() == Some(true))
    );

    // Row 12.
    let secret_key = HmacSha512Key::new(API_SECRET.as_bytes());
    let expected = sign_payload(API_SECRET.as_bytes(), payload_text.as_bytes());
    let resigned = sign_body(decoded.clone(), &secret_key);
    if resigned.payload == payload_text {
        assert_eq!(
            resigned.signature, expected,
            "re-signing changed the signature"
        );
    }
    let given = String::from_utf8_lossy(signature).to_ascii_lowercase();
    let should_verify = given == expected && matches!(parts.api_key, HeaderValue::Present(_));
    match outcome.verify_signature(Some(&secret_key)) {
        Ok(()) => assert!(should_verify, "verified a signature that is not the HMAC"),
        Err(e) => {
            assert_eq!(e, ApiError::Unauthorized);
            assert!(!should_verify, "refused the HMAC of the payload");
        }
    }
    assert_eq!(
        outcome.verify_signature(None),
        Err(ApiError::Unauthorized),
        "an unknown key verified"
    );
    if should_verify {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// A rejection of rows 3–11: the row, its status, and its consistency with the headers.
fn check_row_3_to_11(e: ApiError, parts: &RequestParts<'_>) {
    let expected_status = match e.row() {
        "3" | "4" | "5" => 401,
        "6" | "7" | "8" | "9" | "10" | "11" => 400,
        row => panic!("check_request answered row {row}"),
    };
    assert_eq!(e.status(), expected_status, "row {} status", e.row());
    assert!(ApiError::ALL.contains(&e));
    assert_eq!(
        e == ApiError::ApiKeyNotProvided,
        parts.api_key == HeaderValue::Missing,
        "row 3 iff the key is missing"
    );
    if parts.api_key != HeaderValue::Missing {
        assert_eq!(
            e == ApiError::PayloadNotProvided,
            parts.payload == HeaderValue::Missing,
            "row 4 iff the payload is missing"
        );
        if parts.payload != HeaderValue::Missing {
            assert_eq!(
                e == ApiError::SignatureNotProvided,
                parts.signature == HeaderValue::Missing,
                "row 5 iff the signature is missing"
            );
        }
    }
}

/// JSON, paths and nonces on their own.
fn building_blocks(body: &[u8], path: &str) {
    if let Ok(value) = json::parse(body) {
        let mut compact = String::new();
        value.write_compact(&mut compact);
        let again = json::parse(compact.as_bytes()).expect("compact JSON parses again");
        assert!(value.same_value(&again), "compact JSON is another value");
        if let JsonValue::Object(object) = &value
            && let Some(nonce) = object.get("nonce")
            && let Ok(n) = parse_nonce(nonce)
        {
            let text = n.to_string();
            assert_eq!(parse_nonce(&JsonValue::Number(&text)), Ok(n));
            assert_eq!(parse_nonce(&JsonValue::String(text.as_str().into())), Ok(n));
        }
    }
    if let Ok(normalized) = normalize_path(path) {
        assert_eq!(
            normalize_path(&normalized).as_deref(),
            Ok(normalized.as_ref()),
            "normalisation is not idempotent"
        );
    }
}
