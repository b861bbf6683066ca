//! How a JSON text is written (spacing, line breaks, escapes), to explain why two texts of the
//! same value differ.

use crate::encoding::hex_decode;
use crate::json::{self, JsonValue};

use super::code;
use super::report::Out;

/// JSON whitespace (also what breaks a base64 line).
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Formatting features of a JSON text.
#[derive(Debug, Default)]
struct Style {
    /// Spaces or tabs outside strings.
    spaces: bool,
    /// Line breaks outside strings.
    newlines: bool,
    /// The only line breaks are at the very end.
    only_trailing_newline: bool,
    /// `\/` inside a string.
    escaped_slash: bool,
    /// First `\uXXXX` escape of a printable ASCII character.
    escaped_printable: Option<String>,
    /// First `\uXXXX` escape of a non-ASCII character.
    escaped_non_ascii: Option<String>,
}

impl Style {
    fn features(&self) -> Vec<String> {
        let mut features = Vec::new();
        if self.spaces {
            features.push("spaces between tokens (like `\": \"` or `\", \"`)".to_owned());
        }
        if self.newlines {
            features.push(if self.only_trailing_newline {
                "a trailing line break".to_owned()
            } else {
                "line breaks and indentation (pretty-printed)".to_owned()
            });
        }
        if self.escaped_slash {
            features.push("`\\/` for `/`".to_owned());
        }
        if let Some(example) = &self.escaped_printable {
            features.push(format!(
                "`\\uXXXX` escapes of printable characters (e.g. `{example}`)"
            ));
        }
        if let Some(example) = &self.escaped_non_ascii {
            features.push(format!(
                "`\\uXXXX` escapes of non-ASCII characters (e.g. `{example}`)"
            ));
        }
        features
    }
}

/// Scans a JSON text for formatting features (strings tracked, so whitespace inside
/// strings does not count).
fn scan_style(bytes: &[u8]) -> Style {
    let mut style = Style::default();
    let mut in_string = false;
    let mut last_non_ws = 0;
    let mut first_newline = None;
    let mut first_space = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => {
                    match bytes.get(i + 1) {
                        Some(b'/') => style.escaped_slash = true,
                        Some(b'u') => {
                            let hex = bytes.get(i + 2..i + 6).and_then(hex_decode);
                            if let Some(&[hi, lo]) = hex.as_deref() {
                                let cp = u16::from_be_bytes([hi, lo]);
                                let text = String::from_utf8_lossy(&bytes[i..i + 6]).into_owned();
                                if (0x20..=0x7e).contains(&cp) {
                                    style.escaped_printable.get_or_insert(text);
                                } else if cp >= 0x80 {
                                    style.escaped_non_ascii.get_or_insert(text);
                                }
                            }
                            i += 6;
                            continue;
                        }
                        _ => {}
                    }
                    i += 2;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
            last_non_ws = i;
        } else {
            match b {
                b'"' => {
                    in_string = true;
                    last_non_ws = i;
                }
                b' ' | b'\t' => {
                    first_space.get_or_insert(i);
                }
                b'\n' | b'\r' => {
                    first_newline.get_or_insert(i);
                }
                _ => last_non_ws = i,
            }
        }
        i += 1;
    }
    style.newlines = first_newline.is_some();
    style.only_trailing_newline = first_newline.is_some_and(|at| at > last_non_ws);
    // Spaces count when they sit before the end of the value (between tokens or leading).
    style.spaces = first_space.is_some_and(|at| at < last_non_ws);
    style
}

/// The JSON text with whitespace outside strings removed.
fn strip_insignificant_ws(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            out.push(b);
        } else if !is_ws(b) {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    out
}

/// A Note when the body is valid JSON written in a non-canonical style.
pub(super) fn note_body_style(
    subject: &[u8],
    is_body: bool,
    decoded: Option<&[u8]>,
    body: Option<&[u8]>,
    out: &mut Out<'_>,
) {
    if json::parse(subject).is_err() {
        return;
    }
    let features = scan_style(subject).features();
    if features.is_empty() {
        return;
    }
    let what = if is_body { "body" } else { "decoded payload" };
    let status = match (decoded, body) {
        (Some(d), Some(b)) if d == b => " Here it is, so this is fine.",
        (Some(_), Some(_)) => " Here it is not (see payload-body-mismatch).",
        _ => " Make sure the body is sent exactly as signed, not re-serialised.",
    };
    out.note(
        code::BODY_NONCANONICAL_JSON,
        format!(
            "The {what} is JSON with {}. That is acceptable only if X-TXC-PAYLOAD is the base64 of \
             exactly these bytes and the body is sent unchanged.{status}",
            features.join(", ")
        ),
    );
}

/// Why two byte strings holding the same JSON value differ.
pub(super) fn describe_reserialisation(
    body: &[u8],
    payload: &[u8],
    body_json: &JsonValue<'_>,
    payload_json: &JsonValue<'_>,
) -> String {
    let b = scan_style(body);
    let p = scan_style(payload);
    let mut reasons = Vec::new();
    if strip_insignificant_ws(body) == strip_insignificant_ws(payload) {
        reasons.push("the difference is only whitespace".to_owned());
    }
    for (side, style, other) in [("body", &b, &p), ("payload", &p, &b)] {
        if style.newlines && !other.newlines {
            if style.only_trailing_newline {
                reasons.push(format!("the {side} ends with a line break"));
            } else {
                reasons.push(format!(
                    "the {side} is pretty-printed (line breaks and indentation)"
                ));
            }
        }
        if style.spaces && !other.spaces {
            reasons.push(format!(
                "the {side} has spaces between tokens (like `\": \"` and `\", \"`)"
            ));
        }
        if style.escaped_slash && !other.escaped_slash {
            reasons.push(format!("the {side} writes `/` as `\\/`"));
        }
        if let Some(example) = &style.escaped_printable
            && other.escaped_printable.is_none()
        {
            reasons.push(format!(
                "the {side} escapes printable characters as `\\uXXXX` (e.g. `{example}`)"
            ));
        }
        if let Some(example) = &style.escaped_non_ascii
            && other.escaped_non_ascii.is_none()
        {
            reasons.push(format!(
                "the {side} escapes non-ASCII characters as `\\uXXXX` (e.g. `{example}`)"
            ));
        }
    }
    if let (JsonValue::Object(bo), JsonValue::Object(po)) = (body_json, payload_json) {
        let order_b: Vec<&str> = bo.iter().map(|(k, _)| k).collect();
        let order_p: Vec<&str> = po.iter().map(|(k, _)| k).collect();
        if order_b != order_p {
            reasons.push("the keys are in a different order".to_owned());
        }
    }
    if reasons.is_empty() {
        reasons.push("the formatting or escaping differs".to_owned());
    }
    reasons.join("; ")
}
