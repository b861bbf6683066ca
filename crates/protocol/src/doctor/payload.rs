//! The payload checks: `X-TXC-PAYLOAD` is strict standard base64 of exactly the body.

use crate::encoding::base64_decode;
use crate::error::ApiError;
use crate::json::{self, JsonObject, JsonValue};
use crate::verify::{self, BodyMatch};

use super::code;
use super::report::{Out, answer};
use super::style::{describe_reserialisation, is_ws};

pub(super) fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Checks the payload's base64. Returns the strictly decoded bytes, or (when strict
/// decoding fails) the bytes it decodes to once the problems found are repaired.
pub(super) fn check_payload_base64(
    payload: &str,
    out: &mut Out<'_>,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let refusal = match verify::decode_payload(payload) {
        Ok(decoded) => return (Some(decoded), None),
        Err(refusal) => refusal,
    };
    let bytes = payload.as_bytes();
    let rejected = answer(refusal);
    let mut explained = false;
    if payload.trim_start().starts_with('{') {
        out.problem(
            code::PAYLOAD_NOT_BASE64,
            format!(
                "X-TXC-PAYLOAD is broken base64: it looks like the raw JSON itself (`{}`). It \
                 must be the standard base64 of the body bytes ({rejected}).",
                out.escape(&bytes[..bytes.len().min(40)])
            ),
        );
        return (None, None);
    }

    // Whitespace and line breaks.
    let line_breaks = bytes.iter().filter(|&&b| b == b'\n').count();
    let lone_cr = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .count();
    let spaces = bytes.iter().filter(|&&b| b == b' ' || b == b'\t').count();
    if let Some(first) = bytes.iter().position(|&b| is_ws(b)) {
        let mut parts = Vec::new();
        if line_breaks + lone_cr > 0 {
            parts.push(format!("{} line break(s)", line_breaks + lone_cr));
        }
        if spaces > 0 {
            parts.push(format!("{spaces} space(s) or tab(s)"));
        }
        let wrapped = if line_breaks + lone_cr > 0 {
            " Encoders that wrap lines (every 76 characters: Python's base64.encodebytes, \
             Java's MIME encoder, the `base64` or `openssl base64` command without -w0 / -A) \
             produce this."
        } else {
            ""
        };
        explained = true;
        out.problem(
            code::PAYLOAD_WHITESPACE,
            format!(
                "X-TXC-PAYLOAD contains whitespace: {}, the first at character {first}. Standard \
                 base64 in this header must be one unbroken line without spaces ({rejected}).{wrapped}",
                parts.join(" and ")
            ),
        );
    }

    // URL-safe alphabet.
    let url_safe: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'-' || b == b'_')
        .map(|(i, _)| i)
        .collect();
    if let Some(&first) = url_safe.first() {
        explained = true;
        out.problem(
            code::PAYLOAD_URL_SAFE_BASE64,
            format!(
                "X-TXC-PAYLOAD uses the URL-safe base64 alphabet: '-' or '_' appears {} time(s), \
                 the first at character {first}. The gateway accepts only the standard alphabet \
                 ('+' and '/') ({rejected}). Use standard base64 (Python base64.b64encode, not \
                 urlsafe_b64encode; Node Buffer.toString('base64'), not 'base64url').",
                url_safe.len()
            ),
        );
    }

    // Padding (looked at with whitespace removed).
    let core: Vec<u8> = bytes.iter().copied().filter(|&b| !is_ws(b)).collect();
    let trailing_pad = core.iter().rev().take_while(|&&b| b == b'=').count();
    let data_len = core.len() - trailing_pad;
    let misplaced_pad = core[..data_len].iter().position(|&b| b == b'=');
    let padding_problem = if let Some(at) = misplaced_pad {
        Some(format!(
            "'=' padding appears in the middle (at character {at} once whitespace is removed), \
             which usually means two base64 strings were joined or the body was encoded in \
             pieces"
        ))
    } else if trailing_pad > 2 {
        Some(format!(
            "it ends with {trailing_pad} '=' characters; base64 has at most two"
        ))
    } else if trailing_pad > 0 && !core.len().is_multiple_of(4) {
        Some(format!(
            "it has {trailing_pad} '=' but its length ({}) is not a multiple of 4, so the \
             padding is wrong (padding may be left out entirely, but when present it must be \
             correct)",
            core.len()
        ))
    } else {
        None
    };
    if let Some(reason) = padding_problem {
        explained = true;
        out.problem(
            code::PAYLOAD_BAD_PADDING,
            format!("X-TXC-PAYLOAD has bad padding: {reason} ({rejected})."),
        );
    }

    // What it would decode to with those problems repaired.
    let repaired_text: Vec<u8> = core[..data_len]
        .iter()
        .filter(|&&b| b != b'=')
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    let repaired = base64_decode(&repaired_text);
    if repaired.is_none() || !explained {
        let detail = if let Some((at, bad)) = payload.char_indices().find(|&(_, c)| {
            !(c.is_ascii()
                && (is_base64_char(c as u8)
                    || matches!(c, '=' | '-' | '_' | ' ' | '\t' | '\r' | '\n')))
        }) {
            format!("{bad:?} at character {at} is not in the base64 alphabet")
        } else if data_len % 4 == 1 {
            format!(
                "its length without padding ({data_len}) leaves one stray character, which no \
                 byte string encodes to: it was probably cut off"
            )
        } else {
            "its last character carries non-zero unused bits, so it is not the encoding of \
             any byte string: it was probably cut off or altered"
                .to_owned()
        };
        out.problem(
            code::PAYLOAD_NOT_BASE64,
            format!("X-TXC-PAYLOAD is broken base64: {detail} ({rejected})."),
        );
    }
    (None, repaired)
}

/// Compares the body with the strictly decoded payload.
pub(super) fn compare_body_and_payload(
    body: &[u8],
    decoded: &[u8],
    payload_text: &str,
    body_match: BodyMatch,
    out: &mut Out<'_>,
) {
    if body == decoded {
        out.ok(
            code::PAYLOAD_MATCHES_BODY,
            format!(
                "X-TXC-PAYLOAD is the standard base64 of exactly the body bytes ({} bytes).",
                body.len()
            ),
        );
        return;
    }
    let offset = body
        .iter()
        .zip(decoded)
        .position(|(a, b)| a != b)
        .unwrap_or(body.len().min(decoded.len()));
    let sizes = if body.len() == decoded.len() {
        format!(
            "X-TXC-PAYLOAD decodes to {} bytes, as long as the body, but",
            decoded.len()
        )
    } else {
        format!(
            "X-TXC-PAYLOAD decodes to {} bytes while the body is {} bytes, and",
            decoded.len(),
            body.len()
        )
    };
    let mut message = format!(
        "{sizes} they first differ at byte {offset} (» marks it): body `{}` vs decoded payload \
         `{}`.",
        out.context(body, offset),
        out.context(decoded, offset)
    );
    let rejected = answer(ApiError::InvalidPayload);

    let body_json = json::parse(body);
    let payload_json = json::parse(decoded);
    if let (Ok(b), Ok(p)) = (&body_json, &payload_json)
        && b.same_value(p)
    {
        if body_match == BodyMatch::Json {
            out.note(
                code::PAYLOAD_BODY_SAME_JSON,
                format!(
                    "The body and the decoded payload differ in bytes but are the same JSON \
                     value ({}); this server has body_match = \"json\", so that is accepted \
                     (it forwards the payload's bytes, which are what was signed).",
                    describe_reserialisation(body, decoded, b, p)
                ),
            );
            return;
        }
        message.push_str(&format!(
            " The two are the same JSON value written differently: {}. That is what an HTTP \
             library does when it re-serialises the JSON it was given. With the gateway's \
             default body_match = \"exact\" this is rejected ({rejected}): the client must send \
             exactly the bytes it signed (serialise the JSON once, base64 those bytes for \
             X-TXC-PAYLOAD, and send the same bytes as the body instead of handing the HTTP \
             library an object to serialise).",
            describe_reserialisation(body, decoded, b, p)
        ));
        out.problem(code::PAYLOAD_BODY_MISMATCH, message);
        out.note(
            code::PAYLOAD_BODY_SAME_JSON,
            "Only a gateway configured with body_match = \"json\" accepts a body that is the \
             same JSON value as the payload (it then forwards the payload's bytes, which are \
             what was signed)."
                .to_owned(),
        );
        return;
    }

    let mut hints = Vec::new();
    if body == payload_text.as_bytes() {
        hints.push(
            "the body is the base64 payload text itself; send the JSON as the body".to_owned(),
        );
    } else if base64_decode(decoded).as_deref() == Some(body) {
        hints.push("the payload is base64-encoded twice; encode the body once".to_owned());
    }
    match (&body_json, &payload_json) {
        (Err(e), _) => hints.push(format!("the body is not valid JSON ({e})")),
        (Ok(JsonValue::Object(b)), Ok(JsonValue::Object(p))) => {
            let differences = describe_field_differences(b, p, out);
            if !differences.is_empty() {
                hints.push(format!(
                    "the JSON values differ: {}",
                    differences.join("; ")
                ));
            }
        }
        _ => {}
    }
    if !hints.is_empty() {
        message.push_str(&format!(" Also, {}.", hints.join("; ")));
    }
    message.push_str(&format!(
        " The body is not what was signed ({rejected}). Build the body once and use exactly \
         those bytes both for X-TXC-PAYLOAD and as the body (a common cause is building the \
         JSON twice, for example with a fresh nonce)."
    ));
    out.problem(code::PAYLOAD_BODY_MISMATCH, message);
}

/// Top-level fields whose values differ between two objects (at most five).
fn describe_field_differences(
    body: &JsonObject<'_>,
    payload: &JsonObject<'_>,
    out: &Out<'_>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (key, value) in payload.iter() {
        match body.get(key) {
            None => differences.push(format!("{key:?} is only in the payload")),
            Some(other) if !other.same_value(value) => differences.push(format!(
                "{key:?} is {} in the body but {} in the payload",
                out.show(other),
                out.show(value)
            )),
            Some(_) => {}
        }
    }
    for (key, _) in body.iter() {
        if payload.get(key).is_none() {
            differences.push(format!("{key:?} is only in the body"));
        }
    }
    let more = differences.len().saturating_sub(5);
    differences.truncate(5);
    if more > 0 {
        differences.push(format!("and {more} more"));
    }
    differences
}
