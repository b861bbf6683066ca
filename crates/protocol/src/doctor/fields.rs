//! The JSON document and its fields: one object without repeated keys, `request` against the
//! URL path, and `nonceWindow`.

use crate::error::ApiError;
use crate::json::{self, JsonErrorKind, JsonObject, JsonValue, ObjectError};
use crate::path::{PathRejection, normalize_path};
use crate::verify;

use super::capture::Capture;
use super::code;
use super::nonce::{Window, check_nonce};
use super::report::{Out, answer};
use super::style::is_ws;

/// Which bytes the JSON checks ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Payload,
    Body,
    RepairedPayload,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Payload => "decoded payload",
            Source::Body => "body",
            Source::RepairedPayload => "payload (decoded after repairing its base64)",
        }
    }
}

pub(super) fn check_document(
    document: &[u8],
    source: Source,
    capture: &Capture<'_>,
    out: &mut Out<'_>,
) {
    let name = source.name();
    let rejected = answer(ApiError::InvalidPayload);
    let fields = match json::parse_object(document) {
        Ok(fields) => fields,
        Err(ObjectError::NotObject(root)) => {
            out.problem(
                code::JSON_NOT_OBJECT,
                format!(
                    "The {name} is a JSON {} (`{}`), but it must be a JSON object such as \
                     {{\"request\":\"/api/v4/trade-account/balance\",\"nonce\":1700000000000}} \
                     ({rejected}).",
                    root.type_name(),
                    out.show(&root)
                ),
            );
            return;
        }
        Err(ObjectError::Json(e)) => {
            if let JsonErrorKind::DuplicateKey(key) = &e.kind {
                out.problem(
                    code::JSON_DUPLICATE_KEY,
                    format!(
                        "The {name} has the key {key:?} twice in one object ({e}). Keys are \
                         compared after unescaping (\"nonce\" and \"\\u006eonce\" are the same \
                         key). Parsers disagree on which duplicate wins, so the gateway rejects \
                         them ({rejected})."
                    ),
                );
            } else {
                let mut message = format!("The {name} is not valid JSON: {e}.");
                if document.iter().all(|&b| is_ws(b)) {
                    message.push_str(" It is empty.");
                } else {
                    message.push_str(&format!(
                        " Around there: `{}`.",
                        out.context(document, e.offset)
                    ));
                    if !document.trim_ascii_start().starts_with(b"{") && document.contains(&b'=') {
                        message.push_str(
                            " It looks form-encoded (key=value&…); the body must be a JSON \
                             object.",
                        );
                    }
                }
                message.push_str(&format!(" ({rejected})."));
                out.problem(code::JSON_INVALID, message);
            }
            return;
        }
    };
    check_request_field(&fields, name, capture.path, out);
    let window = match verify::nonce_window_field(&fields) {
        Ok(None) => Window::Absent,
        Ok(Some(b)) => Window::Set(b),
        Err(_) => Window::Invalid,
    };
    check_nonce(&fields, name, window, capture.now_ms, out);
    if let Some(last) = capture.last_nonce {
        super::server::check_last_nonce(&fields, window, last, out);
    }
    check_nonce_window(&fields, out);
}

pub(super) fn check_url_path(path: &str, out: &mut Out<'_>) {
    let mismatch = answer(ApiError::RequestPathMismatch);
    match normalize_path(path) {
        Ok(_) => {}
        Err(PathRejection::QueryOrFragment) => out.problem(
            code::PATH_HAS_QUERY,
            format!(
                "The URL path {path:?} has a query string or fragment. Private endpoints take \
                 every parameter in the signed JSON body, and a URL with a query never matches \
                 `request` ({mismatch}). Move the parameters into the body."
            ),
        ),
        Err(rejection) => out.problem(
            code::PATH_INVALID,
            format!("The URL path {path:?} cannot be used: {rejection} ({mismatch})."),
        ),
    }
}

fn check_request_field(fields: &JsonObject<'_>, name: &str, path: Option<&str>, out: &mut Out<'_>) {
    let mismatch = answer(ApiError::RequestPathMismatch);
    let request = match verify::request_field(fields) {
        Ok(request) => request,
        Err(refusal) => {
            match fields
                .get("request")
                .filter(|v| !matches!(v, JsonValue::Null))
            {
                None => out.problem(
                    code::REQUEST_MISSING,
                    format!(
                        "The {name} has no \"request\" field (or it is null). It must be the \
                         endpoint path, e.g. \"/api/v4/trade-account/balance\" ({}).",
                        answer(refusal)
                    ),
                ),
                Some(other) => out.problem(
                    code::REQUEST_NOT_STRING,
                    format!(
                        "\"request\" is a {} (`{}`), but it must be a string holding the \
                         endpoint path ({}).",
                        other.type_name(),
                        out.show(other),
                        answer(refusal)
                    ),
                ),
            }
            return;
        }
    };
    let normalized = match normalize_path(request) {
        Ok(normalized) => normalized,
        Err(PathRejection::NotAbsolute) => {
            let hint = if request.starts_with("http://") || request.starts_with("https://") {
                "it is a full URL; use only its path, e.g. \"/api/v4/trade-account/balance\""
                    .to_owned()
            } else {
                format!("it must be the path starting with '/', e.g. \"/{request}\"")
            };
            out.problem(
                code::REQUEST_NOT_ABSOLUTE,
                format!("\"request\" is {request:?}, which does not start with '/': {hint} ({mismatch})."),
            );
            return;
        }
        Err(PathRejection::QueryOrFragment) => {
            let query = request
                .find(['?', '#'])
                .and_then(|at| request.get(at..))
                .unwrap_or_default();
            out.problem(
                code::REQUEST_HAS_QUERY,
                format!(
                    "\"request\" is {request:?}, which has a query string or fragment \
                     ({query:?}). Private endpoints take every parameter in the signed JSON \
                     body: put them into the body as fields and make \"request\" the bare path \
                     ({mismatch})."
                ),
            );
            return;
        }
        Err(rejection) => {
            out.problem(
                code::REQUEST_INVALID_PATH,
                format!("\"request\" is {request:?}, which is not an acceptable path: {rejection} ({mismatch})."),
            );
            return;
        }
    };
    let Some(path) = path else {
        out.ok(
            code::REQUEST_OK,
            format!(
                "\"request\" is {request:?}, a well-formed path (no URL path was given to \
                 compare it with)."
            ),
        );
        return;
    };
    let Ok(url) = normalize_path(path) else {
        // Already reported by check_url_path.
        return;
    };
    let Err(refusal) = verify::request_path(path, request) else {
        let merged = if url.as_ref() != path || normalized.as_ref() != request {
            " (after merging repeated slashes)"
        } else {
            ""
        };
        out.ok(
            code::REQUEST_MATCHES_PATH,
            format!("\"request\" {request:?} matches the URL path{merged}."),
        );
        return;
    };
    let hint = if url.eq_ignore_ascii_case(&normalized) {
        " They differ only in letter case; paths are compared case-sensitively."
    } else if url.trim_end_matches('/') == normalized.trim_end_matches('/') {
        " They differ only in a trailing slash."
    } else if url.ends_with(normalized.as_ref()) {
        " \"request\" must be the full path, including the leading part (such as /api/v4)."
    } else {
        " The path signed in the body must be the path the request is sent to."
    };
    out.problem(
        code::REQUEST_PATH_MISMATCH,
        format!(
            "\"request\" is {request:?} but the request was sent to {path:?}.{hint} ({}).",
            answer(refusal)
        ),
    );
}

fn check_nonce_window(fields: &JsonObject<'_>, out: &mut Out<'_>) {
    let Err(refusal) = verify::nonce_window_field(fields) else {
        return;
    };
    let detail = match fields.get("nonceWindow") {
        Some(JsonValue::String(s)) if s == "true" || s == "false" => {
            format!("the string \"{s}\"; it must be the JSON boolean {s} (without quotes)")
        }
        Some(JsonValue::Number(n)) => {
            format!("the number {n}; it must be the JSON boolean true or false")
        }
        Some(JsonValue::Null) => {
            "null; leave the field out or send false (null is not accepted)".to_owned()
        }
        Some(other) => format!(
            "a {} (`{}`); it must be the JSON boolean true or false",
            other.type_name(),
            out.show(other)
        ),
        None => "not a JSON boolean".to_owned(),
    };
    out.problem(
        code::NONCE_WINDOW_NOT_BOOLEAN,
        format!("\"nonceWindow\" is {detail} ({}).", answer(refusal)),
    );
}
