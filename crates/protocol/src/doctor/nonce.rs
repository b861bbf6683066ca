//! The `nonce` field: its form, and its magnitude and timing.

use crate::error::ApiError;
use crate::json::{self, JsonObject, JsonValue};
use crate::nonce::{check_window_time, parse_u64_digits};
use crate::time::{Precision, format_utc};
use crate::verify;

use super::code;
use super::report::{Out, answer, duration};

/// A time for messages: `2023-11-14 22:13:20.000 UTC`.
pub(super) fn utc(ms: u64) -> String {
    format_utc(ms, Precision::Millisecond)
}

/// What `nonceWindow` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Window {
    /// Absent: strict mode.
    Absent,
    /// A boolean: `true` is window mode.
    Set(bool),
    /// Present but not a boolean (rejected).
    Invalid,
}

pub(super) fn check_nonce(
    fields: &JsonObject<'_>,
    name: &str,
    window: Window,
    now_ms: Option<u64>,
    out: &mut Out<'_>,
) {
    let value = fields
        .get("nonce")
        .filter(|v| !matches!(v, JsonValue::Null));
    let nonce = match (verify::nonce_field(fields), value) {
        (Ok(nonce), _) => nonce,
        (Err(refusal), Some(value)) => {
            explain_invalid_nonce(value, refusal, out);
            return;
        }
        (Err(refusal), None) => {
            out.problem(
                code::NONCE_MISSING,
                format!(
                    "The {name} has no \"nonce\" field (or it is null). It must be the current \
                     Unix time in milliseconds as a JSON integer, e.g. 1700000000000 ({}).",
                    answer(refusal)
                ),
            );
            return;
        }
    };
    // An accepted nonce is written canonically, as a JSON integer or a string of digits.
    let text = nonce.to_string();
    let quoted = matches!(value, Some(JsonValue::String(_)));
    if quoted {
        out.note(
            code::NONCE_STRING,
            format!(
                "\"nonce\" is a string of digits ({text:?}); that is accepted, though a JSON \
                 integer is the canonical form."
            ),
        );
    }
    let problems_before = out.problem_count();
    let mut plausible_ms = false;
    let digits = text.len();
    match digits {
        10 => out.problem(
            code::NONCE_SECONDS,
            format!(
                "\"nonce\" {nonce} has 10 digits: that is Unix time in seconds ({}), not \
                 milliseconds ({nonce}000). With \"nonceWindow\": true it fails the ±5 s window \
                 (as milliseconds it is decades in the past); in strict mode it caps the client \
                 at one request per second, because every request in the same second reuses the \
                 nonce and is rejected ({}). Use milliseconds (Date.now(), \
                 System.currentTimeMillis(), time.time_ns() // 1_000_000).",
                utc(nonce.saturating_mul(1000)),
                answer(ApiError::NonceNotIncreasing)
            ),
        ),
        16.. => {
            let (unit, ms) = match digits {
                16 => ("microseconds", nonce / 1_000),
                19 => ("nanoseconds", nonce / 1_000_000),
                _ => ("micro- or nanoseconds", nonce / 1_000),
            };
            let when = if digits == 16 || digits == 19 {
                format!(" (as {unit} that is {})", utc(ms))
            } else {
                String::new()
            };
            out.problem(
                code::NONCE_TOO_HIGH,
                format!(
                    "\"nonce\" {nonce} has {digits} digits: it looks like {unit}{when}, not \
                     milliseconds (13 digits). In strict mode the key's nonce high-water mark is \
                     raised to it and can never be lowered again: every later millisecond nonce \
                     is rejected as not increasing, and the only way out is to rotate the key's \
                     secret. With \"nonceWindow\": true it fails the ±5 s window. Use \
                     milliseconds."
                ),
            );
        }
        13 => plausible_ms = true,
        1..=9 => {
            out.note(
                code::NONCE_SMALL_COUNTER,
                format!(
                    "\"nonce\" {nonce} is a small counter, not a Unix time in milliseconds. \
                     Strict mode accepts that as long as every nonce is greater than the last \
                     one this key used, but the counter must survive restarts and never go \
                     back; window mode (\"nonceWindow\": true) always rejects it."
                ),
            );
            if window == Window::Set(true) && now_ms.is_none() {
                out.problem(
                    code::NONCE_OUTSIDE_WINDOW,
                    format!(
                        "\"nonceWindow\" is true, so the nonce must be the current Unix time in \
                         milliseconds (±5 s), but {nonce} is a small counter ({}).",
                        answer(ApiError::NonceTooOld)
                    ),
                );
            }
        }
        _ => {
            out.note(
                code::NONCE_UNUSUAL_MAGNITUDE,
                format!(
                    "\"nonce\" {nonce} has {digits} digits; a Unix time in milliseconds has 13 \
                     (read as milliseconds it is {}). Strict mode accepts it if it is greater \
                     than the key's last nonce, but it is probably not the intended unit.",
                    utc(nonce)
                ),
            );
            if window == Window::Set(true) && now_ms.is_none() {
                out.problem(
                    code::NONCE_OUTSIDE_WINDOW,
                    format!(
                        "\"nonceWindow\" is true, so the nonce must be within ±5 s of the \
                         gateway's clock, but {nonce} ({}) is nowhere near the present ({}).",
                        utc(nonce),
                        answer(if digits < 13 {
                            ApiError::NonceTooOld
                        } else {
                            ApiError::NonceTooNew
                        })
                    ),
                );
            }
        }
    }

    let mut timing = String::new();
    if let Some(now) = now_ms {
        let diff = i128::from(nonce) - i128::from(now);
        let distance = diff.unsigned_abs();
        let direction = if diff < 0 { "behind" } else { "ahead of" };
        if window == Window::Set(true) {
            if let Err(refusal) = check_window_time(nonce, now) {
                out.problem(
                    code::NONCE_OUTSIDE_WINDOW,
                    format!(
                        "\"nonceWindow\" is true, so the nonce must be within ±5 s of the \
                         gateway's clock, but it is {} {direction} the current time ({}) ({}). \
                         Check the client's clock (NTP) and take the nonce right before sending.",
                        duration(distance),
                        utc(now),
                        answer(refusal)
                    ),
                );
            } else {
                out.ok(
                    code::NONCE_IN_WINDOW,
                    format!(
                        "The nonce is {} {direction} the current time, inside the ±5 s window.",
                        duration(distance)
                    ),
                );
            }
        } else if plausible_ms && diff > 60_000 {
            out.note(
                code::NONCE_IN_FUTURE,
                format!(
                    "The nonce is {} ahead of the current time. In strict mode that is \
                     accepted, but it raises the key's high-water mark, so later requests \
                     using the real time are rejected until the clock catches up. Check the \
                     client's clock.",
                    duration(distance)
                ),
            );
        } else if plausible_ms {
            timing = format!(
                " It is {} {direction} the current time.",
                duration(distance)
            );
        }
    }

    if plausible_ms && out.problem_count() == problems_before {
        let mode = match window {
            Window::Invalid => {
                "Its mode cannot be told because \"nonceWindow\" is not a boolean (see \
                 nonce-window-not-boolean)."
            }
            Window::Set(true) => {
                if now_ms.is_some() {
                    "Window mode (\"nonceWindow\": true): it must be within ±5 s of the \
                     gateway's clock and used only once."
                } else {
                    "Window mode (\"nonceWindow\": true): it must be within ±5 s of the \
                     gateway's clock and used only once (no current time was given to check \
                     the window)."
                }
            }
            _ => {
                "Strict mode (\"nonceWindow\" absent or false): it must be greater than every \
                 nonce this key used before."
            }
        };
        out.ok(
            code::NONCE_OK,
            format!(
                "\"nonce\" {nonce} is a Unix time in milliseconds ({}). {mode}{timing}",
                utc(nonce)
            ),
        );
    }
}

/// Explains a `nonce` the verifier refused ([`verify::nonce_field`]) although it is present.
fn explain_invalid_nonce(value: &JsonValue<'_>, refusal: ApiError, out: &mut Out<'_>) {
    let invalid = answer(refusal);
    let (text, quoted) = match value {
        JsonValue::Number(text) => (*text, false),
        JsonValue::String(text) => (text.as_ref(), true),
        other => {
            out.problem(
                code::NONCE_INVALID,
                format!(
                    "\"nonce\" is a {} (`{}`); it must be a JSON integer of milliseconds \
                     ({invalid}).",
                    other.type_name(),
                    out.show(other)
                ),
            );
            return;
        }
    };
    let shown = if quoted {
        format!("the string {text:?}")
    } else {
        text.to_owned()
    };
    if text.is_empty() {
        out.problem(
            code::NONCE_INVALID,
            format!("\"nonce\" is the empty string ({invalid})."),
        );
        return;
    }
    let is_number_text = matches!(json::parse(text.as_bytes()), Ok(JsonValue::Number(_)));
    if is_number_text && text.contains(['.', 'e', 'E']) {
        let advice = match float_as_integer(text) {
            Some(integer) => format!(
                "Its value is {integer}: send that as an integer (in Python use \
                 time.time_ns() // 1_000_000 rather than time.time() * 1000)."
            ),
            None => "It has a fractional part: round down to whole milliseconds (in Python \
                     time.time_ns() // 1_000_000)."
                .to_owned(),
        };
        out.problem(
            code::NONCE_FLOAT,
            format!(
                "\"nonce\" is {shown}, a floating-point number. The nonce must be a whole \
                 number of milliseconds written as a JSON integer; floats are rejected \
                 ({invalid}). {advice}"
            ),
        );
        return;
    }
    if is_number_text && text.starts_with('-') {
        out.problem(
            code::NONCE_NEGATIVE,
            format!(
                "\"nonce\" is {shown}, which is negative. It must be a non-negative integer \
                 (Unix time in milliseconds) ({invalid})."
            ),
        );
        return;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        let why = if text.trim() != text {
            "it has surrounding whitespace"
        } else {
            "it is not a plain string of digits"
        };
        out.problem(
            code::NONCE_INVALID,
            format!("\"nonce\" is {shown}: {why}. It must be a JSON integer of milliseconds ({invalid})."),
        );
        return;
    }
    if quoted && text.len() > 1 && text.starts_with('0') {
        out.problem(
            code::NONCE_LEADING_ZERO,
            format!(
                "\"nonce\" is {shown}, which has a leading zero. A digit-string nonce must be \
                 canonical (\"0\" or no leading zero) ({invalid})."
            ),
        );
        return;
    }
    if parse_u64_digits(text).is_none() {
        out.problem(
            code::NONCE_TOO_LARGE,
            format!(
                "\"nonce\" is {shown}, which does not fit in an unsigned 64-bit integer (the \
                 largest is 18446744073709551615) ({invalid})."
            ),
        );
    } else {
        out.problem(
            code::NONCE_INVALID,
            format!("\"nonce\" is {shown}: it is not a valid nonce ({invalid})."),
        );
    }
}

/// For a JSON number with a fraction or exponent, the integer it equals, if it is one.
pub(super) fn float_as_integer(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest.get(at + 1..)?.parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = format!("{int}{frac}");
    let shift = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    if shift >= 0 {
        if shift > 40 {
            return None;
        }
        digits.extend(std::iter::repeat_n('0', usize::try_from(shift).ok()?));
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).ok()?;
        let keep = digits.len().saturating_sub(cut);
        if !digits[keep..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(keep);
    }
    let trimmed = digits.trim_start_matches('0');
    let value = if trimmed.is_empty() { "0" } else { trimmed };
    Some(if negative && value != "0" {
        format!("-{value}")
    } else {
        value.to_owned()
    })
}
