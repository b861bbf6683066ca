//! The error catalogue, byte for byte against `docs/errors.md`.

use whitebit_auth::{ApiError, JwtEndpointError, TokenRejection};

#[test]
fn every_private_api_error_is_exact() {
    let table: &[(ApiError, u16, &str)] = &[
        (
            ApiError::MethodNotAllowed,
            405,
            r#"{"code":0,"message":"Method not allowed."}"#,
        ),
        (
            ApiError::PayloadTooLarge,
            413,
            r#"{"code":0,"message":"Payload too large."}"#,
        ),
        (
            ApiError::UnsupportedMediaType,
            415,
            r#"{"code":0,"message":"Content-Type must be application/json."}"#,
        ),
        (
            ApiError::ApiKeyNotProvided,
            401,
            r#"{"code":0,"message":"API key not provided."}"#,
        ),
        (
            ApiError::PayloadNotProvided,
            401,
            r#"{"code":0,"message":"Payload not provided."}"#,
        ),
        (
            ApiError::SignatureNotProvided,
            401,
            r#"{"code":0,"message":"Signature not provided."}"#,
        ),
        (
            ApiError::InvalidPayload,
            400,
            r#"{"code":9,"message":"Invalid payload."}"#,
        ),
        (
            ApiError::RequestNotProvided,
            400,
            r#"{"code":0,"message":"Request not provided."}"#,
        ),
        (
            ApiError::RequestPathMismatch,
            400,
            r#"{"code":0,"message":"Request does not match the endpoint path."}"#,
        ),
        (
            ApiError::NonceNotProvided,
            400,
            r#"{"code":0,"message":"Nonce not provided."}"#,
        ),
        (
            ApiError::InvalidNonce,
            400,
            r#"{"code":0,"message":"Invalid nonce."}"#,
        ),
        (
            ApiError::InvalidNonceWindow,
            400,
            r#"{"code":0,"message":"Invalid nonceWindow."}"#,
        ),
        (
            ApiError::Unauthorized,
            401,
            r#"{"code":10,"message":"Unauthorized request."}"#,
        ),
        (
            ApiError::KeyDisabled,
            401,
            r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#,
        ),
        (
            ApiError::EndpointForbidden,
            403,
            r#"{"code":0,"message":"You don't have permission to use this endpoint."}"#,
        ),
        (
            ApiError::RateLimited,
            429,
            r#"{"code":0,"message":"Rate limit exceeded."}"#,
        ),
        (
            ApiError::NonceTooOld,
            429,
            r#"{"code":0,"message":"Your nonce is more than 5 seconds lesser than the current nonce."}"#,
        ),
        (
            ApiError::NonceTooNew,
            429,
            r#"{"code":0,"message":"Your nonce is more than 5 seconds greater than the current nonce."}"#,
        ),
        (
            ApiError::NonceReused,
            429,
            r#"{"code":0,"errors":{},"message":"Too many requests."}"#,
        ),
        (
            ApiError::NonceNotIncreasing,
            429,
            r#"{"code":0,"errors":{},"message":"Too many requests."}"#,
        ),
        (
            ApiError::EndpointNotFound,
            404,
            r#"{"code":0,"message":"Endpoint not found."}"#,
        ),
        (
            ApiError::BadGateway,
            502,
            r#"{"code":0,"message":"Bad gateway."}"#,
        ),
        (
            ApiError::GatewayTimeout,
            504,
            r#"{"code":0,"message":"Gateway timeout."}"#,
        ),
        (
            ApiError::ServiceUnavailable,
            503,
            r#"{"code":0,"message":"Service temporarily unavailable."}"#,
        ),
    ];
    assert_eq!(
        table.len(),
        ApiError::ALL.len(),
        "every variant is in the table"
    );
    for (error, status, body) in table {
        assert_eq!(error.status(), *status, "{error:?}");
        assert_eq!(error.body(), *body, "{error:?}");
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
    for e in ApiError::ALL {
        let mapped = e.for_jwt_endpoint();
        match e {
            ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge
            | ApiError::UnsupportedMediaType
            | ApiError::RateLimited
            | ApiError::ServiceUnavailable
            | ApiError::EndpointNotFound
            | ApiError::BadGateway
            | ApiError::GatewayTimeout => assert_eq!(mapped, JwtEndpointError::Api(*e)),
            ApiError::RequestNotProvided | ApiError::NonceNotProvided => {
                assert!(matches!(mapped, JwtEndpointError::ValidationFailed { .. }));
            }
            _ => assert_eq!(mapped, JwtEndpointError::InvalidCredentials, "{e:?}"),
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
