//! What only a server knows, for a server diagnosing its own refusal (the sandbox): the
//! request's headers as sent, whether it holds the key, and the key's last accepted nonce.

use crate::error::ApiError;
use crate::headers;
use crate::json::JsonObject;
use crate::verify::{self, HeaderValue};

use super::capture::KeyFacts;
use super::code;
use super::nonce::Window;
use super::report::{Out, answer};

/// `Content-Type` (each value must name JSON) and `X-TXC-*` headers sent more than once, by the
/// verifier's own classification ([`HeaderValue::from_values`]).
pub(super) fn check_headers<'a>(sent: &'a [(&'a str, &'a [u8])], out: &mut Out<'_>) {
    fn values<'a>(
        sent: &'a [(&'a str, &'a [u8])],
        name: &'a str,
    ) -> impl Iterator<Item = &'a [u8]> {
        sent.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
    for value in values(sent, "content-type") {
        if !headers::is_json_content_type(value) {
            out.problem(
                code::CONTENT_TYPE_NOT_JSON,
                format!(
                    "Content-Type is `{}`, but a signed request's body is JSON: send \
                     `Content-Type: application/json` or no Content-Type ({}).",
                    out.escape(value),
                    answer(ApiError::UnsupportedMediaType)
                ),
            );
        }
    }
    for (name, repeated_code, refusal) in [
        (
            headers::PAYLOAD,
            code::PAYLOAD_HEADER_REPEATED,
            ApiError::InvalidPayload,
        ),
        (
            headers::API_KEY,
            code::HEADER_REPEATED,
            ApiError::Unauthorized,
        ),
        (
            headers::SIGNATURE,
            code::HEADER_REPEATED,
            ApiError::Unauthorized,
        ),
    ] {
        let count = values(sent, name).count();
        // HTTP libraries (fetch, browsers) join a header set twice into one value with ", ".
        let joined = values(sent, name)
            .find(|v| v.windows(2).any(|w| w == b", "))
            .map(|v| v.split(|b| *b == b',').count());
        if let (1, Some(parts)) = (count, joined) {
            out.problem(
                repeated_code,
                format!(
                    "{name} holds {parts} values joined with \", \": the header was set more \
                     than once and the HTTP library joined the values. Each X-TXC-* header must \
                     be sent exactly once ({}).",
                    answer(refusal)
                ),
            );
        } else if count > 1 && HeaderValue::from_values(values(sent, name)) == HeaderValue::Invalid
        {
            out.problem(
                repeated_code,
                format!(
                    "{name} was sent {count} times; each X-TXC-* header must be sent exactly \
                     once, or the request is refused ({}). Check for a default header set on \
                     the HTTP session plus the same header set per request.",
                    answer(refusal)
                ),
            );
        }
    }
}

/// An `X-TXC-APIKEY` the server does not hold.
pub(super) fn check_key(key: &KeyFacts<'_>, out: &mut Out<'_>) {
    if key.known || key.sent.is_empty() {
        return;
    }
    let mut message = format!(
        "X-TXC-APIKEY `{}` is not a key this server holds ({}).",
        out.escape(key.sent.as_bytes()),
        answer(ApiError::Unauthorized)
    );
    if let Some(example) = key.example {
        message.push_str(&format!(" This server's key is `{example}`."));
    }
    out.problem(code::KEY_UNKNOWN, message);
}

/// A strict-mode nonce that is not greater than the key's last accepted one.
pub(super) fn check_last_nonce(
    fields: &JsonObject<'_>,
    window: Window,
    last: u64,
    out: &mut Out<'_>,
) {
    if matches!(window, Window::Set(true) | Window::Invalid) {
        return;
    }
    let Ok(nonce) = verify::nonce_field(fields) else {
        return;
    };
    if nonce > last {
        return;
    }
    let behind = if nonce == last {
        "the same nonce".to_owned()
    } else {
        format!("{} behind it", last - nonce)
    };
    out.problem(
        code::NONCE_NOT_INCREASING,
        format!(
            "\"nonce\" {nonce} is not greater than {last}, the last nonce this key had \
             accepted ({behind}). In strict mode (\"nonceWindow\" absent or false) every \
             nonce must be greater than the key's last one ({}); two clients or threads sharing \
             a key, or a retry that reuses its nonce, do this.",
            answer(ApiError::NonceNotIncreasing)
        ),
    );
}
