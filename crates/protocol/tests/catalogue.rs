//! The error catalogue, byte for byte against `docs/errors.md`.

use whitebit_auth::{ApiError, JwtEndpointError, TokenRejection};

#[test]
fn every_private_api_error_is_exact() {
    use ApiError::*;
    let status = |error: ApiError| match error {
        MethodNotAllowed => 405,
        PayloadTooLarge => 413,
        UnsupportedMediaType => 415,
        ApiKeyNotProvided | PayloadNotProvided | SignatureNotProvided | Unauthorized
        | KeyDisabled => 401,
        InvalidPayload | RequestNotProvided | RequestPathMismatch | NonceNotProvided
        | InvalidNonce | InvalidNonceWindow => 400,
        EndpointForbidden => 403,
        RateLimited | NonceTooOld | NonceTooNew | NonceReused | NonceNotIncreasing => 429,
        EndpointNotFound => 404,
        BadGateway => 502,
        GatewayTimeout => 504,
        ServiceUnavailable => 503,
        other => panic!("{other:?} is not in the status table"),
    };
    // The bodies `{"code":0,"message":…}` by their message, then the others.
    let plain: &[(ApiError, &str)] = &[
        (MethodNotAllowed, "Method not allowed."),
        (PayloadTooLarge, "Payload too large."),
        (
            UnsupportedMediaType,
            "Content-Type must be application/json.",
        ),
        (ApiKeyNotProvided, "API key not provided."),
        (PayloadNotProvided, "Payload not provided."),
        (SignatureNotProvided, "Signature not provided."),
        (RequestNotProvided, "Request not provided."),
        (
            RequestPathMismatch,
            "Request does not match the endpoint path.",
        ),
        (NonceNotProvided, "Nonce not provided."),
        (InvalidNonce, "Invalid nonce."),
        (InvalidNonceWindow, "Invalid nonceWindow."),
        (
            EndpointForbidden,
            "You don't have permission to use this endpoint.",
        ),
        (RateLimited, "Rate limit exceeded."),
        (
            NonceTooOld,
            "Your nonce is more than 5 seconds lesser than the current nonce.",
        ),
        (
            NonceTooNew,
            "Your nonce is more than 5 seconds greater than the current nonce.",
        ),
        (EndpointNotFound, "Endpoint not found."),
        (BadGateway, "Bad gateway."),
        (GatewayTimeout, "Gateway timeout."),
        (ServiceUnavailable, "Service temporarily unavailable."),
    ];
    let others = [
        (InvalidPayload, r#"{"code":9,"message":"Invalid payload."}"#),
        (
            Unauthorized,
            r#"{"code":10,"message":"Unauthorized request."}"#,
        ),
        (
            KeyDisabled,
            r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#,
        ),
        (
            NonceReused,
            r#"{"code":0,"errors":{},"message":"Too many requests."}"#,
        ),
        (
            NonceNotIncreasing,
            r#"{"code":0,"errors":{},"message":"Too many requests."}"#,
        ),
    ];
    let table: Vec<(ApiError, String)> = plain
        .iter()
        .map(|(error, message)| (*error, format!(r#"{{"code":0,"message":"{message}"}}"#)))
        .chain(others.map(|(error, body)| (error, body.to_owned())))
        .collect();
    assert_eq!(
        table.len(),
        ApiError::ALL.len(),
        "every variant is in the table"
    );
    for (error, body) in &table {
        assert_eq!(error.status(), status(*error), "{error:?}");
        assert_eq!(error.body(), body, "{error:?}");
        let parsed: serde_json::Value = serde_json::from_str(body).expect("body is JSON");
        assert_eq!(error.message(), parsed["message"], "{error:?}");
        assert_eq!(error.to_string(), error.message());
    }
    assert!(ApiError::RateLimited.has_retry_after());
    assert!(ApiError::ServiceUnavailable.has_retry_after());
    assert!(!ApiError::NonceReused.has_retry_after());
}

#[test]
fn jwt_endpoint_answers_are_exact() {
    let both = JwtEndpointError::ValidationFailed {
        request_missing: true,
        nonce_missing: true,
    };
    assert_eq!(both.status(), 400);
    assert_eq!(
        both.body(),
        r#"{"code":0,"message":"Validation failed","errors":{"request":["The request field is required."],"nonce":["The nonce field is required."]}}"#
    );
    let nonce = JwtEndpointError::ValidationFailed {
        request_missing: false,
        nonce_missing: true,
    };
    assert_eq!(
        nonce.body(),
        r#"{"code":0,"message":"Validation failed","errors":{"nonce":["The nonce field is required."]}}"#
    );
    let invalid = JwtEndpointError::InvalidCredentials;
    assert_eq!(
        (invalid.status(), invalid.body().as_str()),
        (
            401,
            r#"{"code":0,"message":"Invalid API key, signature, or nonce"}"#
        )
    );
    let config = JwtEndpointError::ServerConfiguration;
    assert_eq!(
        (config.status(), config.body().as_str()),
        (500, r#"{"code":0,"message":"Server configuration issues"}"#)
    );

    // docs/design-decisions.md 20: rows 1, 2, 15, the 415 and outages keep their own answers; rows 3–6,
    // 8–14 and 16 become 401 "Invalid API key, signature, or nonce".
    let keep_their_answers = [
        ApiError::MethodNotAllowed,
        ApiError::PayloadTooLarge,
        ApiError::UnsupportedMediaType,
        ApiError::RateLimited,
        ApiError::ServiceUnavailable,
        ApiError::EndpointNotFound,
        ApiError::BadGateway,
        ApiError::GatewayTimeout,
    ];
    for e in ApiError::ALL {
        let mapped = e.for_jwt_endpoint();
        if keep_their_answers.contains(e) {
            assert_eq!(mapped, JwtEndpointError::Api(*e));
        } else if [ApiError::RequestNotProvided, ApiError::NonceNotProvided].contains(e) {
            assert!(matches!(mapped, JwtEndpointError::ValidationFailed { .. }));
        } else {
            assert_eq!(mapped, JwtEndpointError::InvalidCredentials, "{e:?}");
        }
    }
}

#[test]
fn token_rejections_are_exact() {
    let reasons = [
        (TokenRejection::Missing, "Token missing."),
        (TokenRejection::Malformed, "Malformed token."),
        (
            TokenRejection::AlgorithmNotAllowed,
            "Algorithm not allowed.",
        ),
        (TokenRejection::InvalidSignature, "Invalid token signature."),
        (TokenRejection::KeyMismatch, "Key mismatch."),
        (TokenRejection::UrlMismatch, "URL mismatch."),
        (TokenRejection::InvalidTimes, "Invalid token times."),
        (
            TokenRejection::LifetimeTooLong,
            "Token lifetime over 60 seconds.",
        ),
        (
            TokenRejection::IssuedInFuture,
            "Token issued in the future.",
        ),
        (TokenRejection::Expired, "Token expired."),
        (TokenRejection::InvalidAudience, "Invalid token audience."),
        (TokenRejection::OrderFieldsMissing, "Order fields missing."),
        (
            TokenRejection::OrderSignatureMismatch,
            "Order signature mismatch.",
        ),
        (TokenRejection::AlreadyUsed, "Token already used."),
        (
            TokenRejection::KeyDisabled,
            "API key disabled or deactivated: enable it, then request a new token.",
        ),
        (
            TokenRejection::KeyReplaced,
            "API key deleted or its secret changed: request a new token.",
        ),
    ];
    for (rejection, reason) in reasons {
        assert_eq!(rejection.status(), 401);
        assert_eq!(
            rejection.body(),
            format!(
                r#"{{"code":0,"message":"Request authorization failed","errors":{{"token":["{reason}"]}}}}"#
            )
        );
    }
}
