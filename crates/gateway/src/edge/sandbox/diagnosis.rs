//! The diagnosis of a refused request: the sandbox feeds it to the doctor
//! (`whitebit_auth::doctor`, the same code as `wbauth doctor`) with what only the server knows
//! (the secret, whether it holds the key, the key's last accepted nonce, the body-match
//! policy, the time). Out come the `X-Sandbox-Diagnosis` codes, the `X-Sandbox-Hint` sentence
//! and the report for the sandbox's terminal. The secret never appears (the doctor redacts it),
//! nor does the signature sent.

use axum::http::HeaderMap;
use axum::http::request::Parts;
use whitebit_auth::ApiError;
use whitebit_auth::doctor::{Capture, Finding, KeyFacts, Severity, code, diagnose, refused_at};
use whitebit_auth::headers;

/// What the sandbox knows beyond the request itself.
pub(crate) struct Known<'a> {
    /// The secret of the key sent, when the sandbox holds that key.
    pub(crate) secret: Option<&'a [u8]>,
    /// Whether the sandbox holds the key sent.
    pub(crate) key_known: bool,
    /// The key to name when the one sent is unknown (the demo key).
    pub(crate) example_key: Option<&'a str>,
    /// The key's greatest accepted nonce.
    pub(crate) last_nonce: Option<u64>,
    /// The gateway's body-match policy.
    pub(crate) body_match: whitebit_auth::BodyMatch,
    /// Now, on the gateway's clock.
    pub(crate) now_ms: u64,
}

/// A refusal explained.
pub(crate) struct Diagnosis {
    /// The codes for `X-Sandbox-Diagnosis`: the doctor's problems, then the sandbox's own code
    /// for a refusal the doctor cannot see (`rate-limited`, `key-disabled` …).
    pub(crate) codes: Vec<&'static str>,
    /// One short ASCII sentence for `X-Sandbox-Hint`.
    pub(crate) hint: &'static str,
    /// Every finding (problems, notes, passed checks), for the terminal.
    pub(crate) findings: Vec<Finding>,
}

/// The value of the one header `name` the request carried first, as text.
pub(crate) fn first<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// Diagnoses a request refused with `refusal` (`None`: the token endpoint's own refusal).
pub(crate) fn explain(
    head: &Parts,
    body: &[u8],
    refusal: Option<ApiError>,
    known: &Known<'_>,
) -> Diagnosis {
    // Rows 1 and 2 are about the request's shape, before anything the doctor reads.
    let findings = match refusal {
        Some(ApiError::MethodNotAllowed | ApiError::PayloadTooLarge) => Vec::new(),
        _ => run_doctor(head, body, known),
    };
    let mut codes: Vec<&'static str> = Vec::new();
    for finding in findings.iter().filter(|f| f.is_problem()) {
        if !codes.contains(&finding.code) {
            codes.push(finding.code);
        }
    }
    if let Some(refusal) = refusal
        && refused_at(&findings) != Some(refusal.row())
        && let Some(own) = own_code(refusal)
        && !codes.contains(&own.0)
    {
        codes.push(own.0);
    }
    if codes.is_empty() {
        codes.push(match refusal {
            None => "request-or-nonce-missing",
            Some(e) => own_code(e).map_or("refused", |c| c.0),
        });
    }
    let hint = codes
        .iter()
        .find_map(|c| code::hint(c).or_else(|| own_hint(c)))
        .unwrap_or("Run the request through wbauth doctor for the details.");
    Diagnosis {
        codes,
        hint,
        findings,
    }
}

fn run_doctor(head: &Parts, body: &[u8], known: &Known<'_>) -> Vec<Finding> {
    let sent: Vec<(&str, &[u8])> = head
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let api_key = first(&head.headers, headers::API_KEY_LOWERCASE);
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    diagnose(&Capture {
        body: Some(body),
        payload: first(&head.headers, headers::PAYLOAD_LOWERCASE),
        signature: first(&head.headers, headers::SIGNATURE_LOWERCASE),
        secret: known.secret,
        path: Some(path),
        now_ms: Some(known.now_ms),
        headers: Some(&sent),
        key: api_key.map(|sent| KeyFacts {
            sent,
            known: known.key_known,
            example: known.example_key,
        }),
        last_nonce: known.last_nonce,
        body_match: known.body_match,
    })
}

/// The sandbox's own code (and hint) for a refusal the doctor cannot see from the request.
fn own_code(refusal: ApiError) -> Option<(&'static str, &'static str)> {
    Some(match refusal {
        ApiError::MethodNotAllowed => ("method-not-post", "Private endpoints take POST only."),
        ApiError::PayloadTooLarge => ("body-too-large", "Send a smaller body."),
        ApiError::ApiKeyNotProvided => ("api-key-not-given", "Send your API key in X-TXC-APIKEY."),
        ApiError::PayloadNotProvided => (
            code::PAYLOAD_NOT_GIVEN,
            "Send X-TXC-PAYLOAD: the standard base64 of the body.",
        ),
        ApiError::SignatureNotProvided => (
            code::SIGNATURE_NOT_GIVEN,
            "Send X-TXC-SIGNATURE: hex HMAC-SHA512 of the payload.",
        ),
        ApiError::KeyDisabled => (
            "key-disabled",
            "The key is disabled, idle, or not allowed from this IP.",
        ),
        ApiError::EndpointForbidden => (
            "endpoint-not-allowed",
            "This key's kind does not open this endpoint.",
        ),
        ApiError::EndpointNotFound => ("endpoint-not-found", "No route serves this path."),
        ApiError::RateLimited => (
            "rate-limited",
            "Wait for Retry-After seconds, then retry with a fresh nonce.",
        ),
        ApiError::NonceReused => (
            "nonce-reused",
            "This nonce was already accepted; take a fresh one per request.",
        ),
        ApiError::NonceNotIncreasing => (
            code::NONCE_NOT_INCREASING,
            "Use a nonce greater than the last one this key had accepted.",
        ),
        ApiError::ServiceUnavailable => (
            "store-unavailable",
            "Retry after Retry-After seconds with a fresh nonce.",
        ),
        _ => return None,
    })
}

fn own_hint(code: &str) -> Option<&'static str> {
    ApiError::ALL
        .iter()
        .filter_map(|e| own_code(*e))
        .find(|(c, _)| *c == code)
        .map(|(_, hint)| hint)
}

/// The report for the sandbox's terminal: what was refused, how, the codes, then the doctor's
/// findings one per paragraph, with the signature sent replaced by `<signature>`.
pub(crate) fn report(head: &Parts, status: u16, body: &[u8], diagnosis: &Diagnosis) -> String {
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!(
        "sandbox: refused {} {path}: {status} {}\n  diagnosis: {}\n  hint: {}\n",
        head.method,
        String::from_utf8_lossy(body),
        diagnosis.codes.join(", "),
        diagnosis.hint,
    );
    let signature = first(&head.headers, headers::SIGNATURE_LOWERCASE).filter(|s| s.len() >= 8);
    for finding in &diagnosis.findings {
        let label = match finding.severity {
            Severity::Ok => "ok     ",
            Severity::Note => "note   ",
            Severity::Problem => "PROBLEM",
        };
        let mut message = finding.message.clone();
        if let Some(signature) = signature {
            message = message.replace(signature, "<signature>");
        }
        let message = format!("{}: {message}", finding.code);
        for (i, line) in wrap(&message, 96).iter().enumerate() {
            let lead = if i == 0 { label } else { "       " };
            out.push_str(&format!("  {lead}  {line}\n"));
        }
    }
    out
}

/// Wraps text at spaces to `width` columns (long words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}
