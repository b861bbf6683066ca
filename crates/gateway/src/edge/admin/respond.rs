//! The admin API's answers: JSON bodies, errors that carry their status and public message
//! ([`ManageError`] is an [`IntoResponse`]), and answers holding a secret, never cached.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::service::ManageError;

/// A JSON answer. Handlers return `Result<Answer, ManageError>`.
pub(super) struct Answer {
    status: StatusCode,
    body: Zeroizing<String>,
    no_store: bool,
}

impl Answer {
    /// 200 with `value`.
    pub(super) fn ok(value: &Value) -> Self {
        Self::with(StatusCode::OK, value)
    }

    /// 201 with `value`.
    pub(super) fn created(value: &Value) -> Self {
        Self::with(StatusCode::CREATED, value)
    }

    /// `status` with `value`.
    pub(super) fn with(status: StatusCode, value: &Value) -> Self {
        Self {
            status,
            body: Zeroizing::new(value.to_string()),
            no_store: false,
        }
    }

    /// The same answer marked never to be cached (it carries a secret).
    pub(super) fn no_store(self) -> Self {
        Self {
            no_store: true,
            ..self
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = json_text(self.status, self.body.as_bytes().to_vec());
        if self.no_store {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}

impl IntoResponse for ManageError {
    fn into_response(self) -> Response {
        if self.status() >= 500 {
            eprintln!("wbauth admin API: {self}");
        }
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_text(status, self.body().into_bytes());
        if let Some(seconds) = self.retry_after_s() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// An answer, failures included, marked never to be cached: for routes whose successful answer
/// carries a secret, so that no cache keeps any answer of theirs.
pub(super) struct NoStore<T>(pub(super) T);

impl<T: IntoResponse> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// `{"code":0,"message":TEXT}` with `status`.
pub(super) fn message(status: StatusCode, text: &str) -> Response {
    Answer::with(status, &json!({"code": 0, "message": text})).into_response()
}

fn json_text(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON request body (empty means `{}`).
pub(super) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ManageError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| ManageError::Invalid(format!("invalid JSON body: {e}")))
}

/// A view as JSON.
pub(super) fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ManageError> {
    serde_json::to_value(value).map_err(|e| ManageError::Internal(format!("cannot encode: {e}")))
}
