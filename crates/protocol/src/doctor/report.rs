//! Collecting findings and writing them: the collector that keeps the secret out of every
//! message, and the text helpers messages are made with.

use std::borrow::Cow;

use crate::error::ApiError;
use crate::json::{self, JsonValue};

use super::findings::{Finding, Severity};

/// Bytes of context shown on each side of a difference or an error position.
const CONTEXT: usize = 20;

/// Collects findings, and keeps the secret out of them.
pub(super) struct Out<'s> {
    findings: Vec<Finding>,
    /// The secret, when it is long enough to be recognised in text (4 bytes or more).
    secret: Option<&'s [u8]>,
}

impl<'s> Out<'s> {
    pub(super) fn new(secret: Option<&'s [u8]>) -> Self {
        Self {
            findings: Vec::new(),
            secret: secret.filter(|s| s.len() >= 4),
        }
    }

    pub(super) fn contains_secret(&self, haystack: &[u8]) -> bool {
        self.secret
            .is_some_and(|s| haystack.windows(s.len()).any(|w| w == s))
    }

    /// `bytes` with every occurrence of the secret overwritten by `*` (same length, so
    /// offsets stay valid).
    fn masked<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        let Some(secret) = self.secret else {
            return Cow::Borrowed(bytes);
        };
        if !self.contains_secret(bytes) {
            return Cow::Borrowed(bytes);
        }
        let mut out = bytes.to_vec();
        let mut i = 0;
        while i + secret.len() <= bytes.len() {
            if &bytes[i..i + secret.len()] == secret {
                out[i..i + secret.len()].fill(b'*');
                i += secret.len();
            } else {
                i += 1;
            }
        }
        Cow::Owned(out)
    }

    /// [`context`] of the masked bytes.
    pub(super) fn context(&self, bytes: &[u8], offset: usize) -> String {
        context(&self.masked(bytes), offset)
    }

    /// [`escape_bytes`] of the masked bytes.
    pub(super) fn escape(&self, bytes: &[u8]) -> String {
        escape_bytes(&self.masked(bytes))
    }

    /// A JSON value as compact text, masked before it is shortened to 60 characters.
    pub(super) fn show(&self, value: &JsonValue<'_>) -> String {
        let mut text = String::new();
        value.write_compact(&mut text);
        truncate(&self.redact(text), 60)
    }

    /// `text` with the secret (raw, JSON-escaped or Rust-escaped) replaced by `<secret>`.
    pub(super) fn redact(&self, mut text: String) -> String {
        let Some(secret) = self.secret.and_then(|s| std::str::from_utf8(s).ok()) else {
            return text;
        };
        let mut json_form = String::new();
        json::write_string(secret, &mut json_form);
        let debug_form = format!("{secret:?}");
        for form in [
            secret,
            json_form.trim_matches('"'),
            debug_form.trim_matches('"'),
        ] {
            if !form.is_empty() && text.contains(form) {
                text = text.replace(form, "<secret>");
            }
        }
        text
    }

    fn push(&mut self, severity: Severity, code: &'static str, message: String) {
        self.findings.push(Finding {
            severity,
            code,
            message,
        });
    }

    pub(super) fn ok(&mut self, code: &'static str, message: String) {
        self.push(Severity::Ok, code, message);
    }

    pub(super) fn note(&mut self, code: &'static str, message: String) {
        self.push(Severity::Note, code, message);
    }

    pub(super) fn problem(&mut self, code: &'static str, message: String) {
        self.push(Severity::Problem, code, message);
    }

    pub(super) fn has_problem(&self) -> bool {
        self.findings.iter().any(Finding::is_problem)
    }

    pub(super) fn problem_count(&self) -> usize {
        self.findings.iter().filter(|f| f.is_problem()).count()
    }

    /// The findings, with any occurrence of the secret's text replaced by `<secret>`.
    pub(super) fn finish(mut self) -> Vec<Finding> {
        let mut findings = std::mem::take(&mut self.findings);
        for finding in &mut findings {
            finding.message = self.redact(std::mem::take(&mut finding.message));
        }
        findings
    }
}

/// How the gateway answers `error`, for messages.
pub(super) fn answer(error: ApiError) -> String {
    format!(
        "the gateway answers {} \"{}\"",
        error.status(),
        error.message()
    )
}

/// Escapes bytes for a message: control characters as `\n`, `\r`, `\t` or `\xNN`, invalid
/// UTF-8 as `\xNN`, everything else as is.
pub(super) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let code = u32::from(c);
                    if code <= 0xff {
                        out.push_str(&format!("\\x{code:02x}"));
                    } else {
                        out.push_str(&format!("\\u{{{code:x}}}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Up to [`CONTEXT`] bytes either side of `offset`, escaped, with `»` at `offset`.
pub(super) fn context(bytes: &[u8], offset: usize) -> String {
    let offset = offset.min(bytes.len());
    let start = offset.saturating_sub(CONTEXT);
    let end = offset.saturating_add(CONTEXT).min(bytes.len());
    format!(
        "{}{}»{}{}",
        if start > 0 { "…" } else { "" },
        escape_bytes(&bytes[start..offset]),
        escape_bytes(&bytes[offset..end]),
        if end < bytes.len() { "…" } else { "" }
    )
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// A duration in milliseconds as seconds, with days or years for large values.
pub(super) fn duration(ms: u128) -> String {
    const DAY: u128 = 86_400_000;
    const YEAR: u128 = 31_557_600_000;
    let secs = format!("{}.{:03} s", ms / 1000, ms % 1000);
    if ms >= YEAR {
        format!("{secs} (about {} years)", tenths(ms, YEAR))
    } else if ms >= DAY {
        format!("{secs} (about {} days)", tenths(ms, DAY))
    } else {
        secs
    }
}

/// `value / unit` rounded to tenths, as a display string.
fn tenths(value: u128, unit: u128) -> String {
    let t = (value * 10 + unit / 2) / unit;
    format!("{}.{}", t / 10, t % 10)
}
