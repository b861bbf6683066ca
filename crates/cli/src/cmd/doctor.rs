//! `wbauth doctor`: explain what is wrong with a captured request.

use std::path::PathBuf;

use clap::Args;
use whitebit_auth::doctor::{Capture, Severity, diagnose};
use whitebit_auth::headers;
use whitebit_client::ExposeSecret as _;

use super::Context;
use crate::error::CliError;
use crate::input::{BodyArgs, read_input};

/// Diagnoses a captured request: give a raw HTTP request (--request), or the parts
/// (--body/--body-file, --payload, --signature, --path). The secret is read from
/// WBAUTH_API_SECRET (or the credentials file) to check the signature; it is never printed.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    server: super::ServerArgs,
    /// A raw HTTP request as captured (request line, headers, blank line, body); `-` for stdin.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["body", "body_file"])]
    request: Option<PathBuf>,
    #[command(flatten)]
    body: BodyArgs,
    /// The X-TXC-PAYLOAD header value.
    #[arg(long)]
    payload: Option<String>,
    /// The X-TXC-SIGNATURE header value.
    #[arg(long)]
    signature: Option<String>,
    /// The URL path the request was sent to.
    #[arg(long)]
    path: Option<String>,
}

/// The parts of a raw HTTP/1.1 request.
#[derive(Debug, Default, PartialEq, Eq)]
struct RawRequest {
    path: Option<String>,
    payload: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
}

fn parse_raw(raw: &[u8]) -> Result<RawRequest, CliError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        })
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..split.0]);
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next(), parts.next());
    if method.is_none() || target.is_none() {
        return Err(CliError::Usage(
            "the captured request has no request line (e.g. POST /api/v4/... HTTP/1.1)".into(),
        ));
    }
    let mut out = RawRequest {
        path: target.map(|t| {
            // An absolute-form target: keep the path.
            t.split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                .unwrap_or_else(|| t.to_owned())
        }),
        ..RawRequest::default()
    };
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            headers::PAYLOAD_LOWERCASE => out.payload = Some(value),
            headers::SIGNATURE_LOWERCASE => out.signature = Some(value),
            "content-length" => content_length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let mut body = raw[split.1..].to_vec();
    if let Some(len) = content_length {
        body.truncate(len);
    }
    out.body = body;
    Ok(out)
}

/// Runs the command.
pub(crate) async fn run(args: &DoctorArgs, ctx: &Context) -> Result<(), CliError> {
    let credentials = ctx.credentials(&args.server)?;
    let mut raw = match &args.request {
        Some(path) => parse_raw(&read_input(path)?)?,
        None => RawRequest::default(),
    };
    if let Some(body) = args.body.read()? {
        raw.body = body;
    }
    let has_body =
        args.request.is_some() || args.body.body.is_some() || args.body.body_file.is_some();
    let payload = args.payload.clone().or(raw.payload);
    let signature = args.signature.clone().or(raw.signature);
    let path = args.path.clone().or(raw.path);
    if !has_body && payload.is_none() {
        return Err(CliError::Usage(
            "nothing to diagnose: give --request FILE, or --body/--body-file and --payload".into(),
        ));
    }
    let secret = credentials.api_secret.as_ref();
    let now = whitebit_client::unix_ms();
    let findings = diagnose(&Capture {
        body: has_body.then_some(raw.body.as_slice()),
        payload: payload.as_deref(),
        signature: signature.as_deref(),
        secret: secret.map(|s| s.expose_secret().as_bytes()),
        path: path.as_deref(),
        now_ms: Some(now),
        ..Capture::default()
    });
    let mut problems = 0;
    for finding in &findings {
        let label = match finding.severity {
            Severity::Ok => "ok     ",
            Severity::Note => "note   ",
            Severity::Problem => {
                problems += 1;
                "PROBLEM"
            }
        };
        for (i, line) in wrap(&finding.message, 90).iter().enumerate() {
            if i == 0 {
                println!("{label}  {line}");
            } else {
                println!("         {line}");
            }
        }
    }
    if problems > 0 {
        Err(CliError::Problems(problems))
    } else {
        Ok(())
    }
}

/// Wraps text at word boundaries to `width` columns (long words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrapping() {
        assert_eq!(super::wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(super::wrap("aaaaaaa b\nc", 3), ["aaaaaaa", "b", "c"]);
    }

    use super::*;

    #[test]
    fn raw_requests_are_split() {
        let raw = b"POST /api/v4/x HTTP/1.1\r\nHost: h\r\nX-TXC-Payload: cGF5\r\nx-txc-signature: abc\r\nContent-Length: 2\r\n\r\n{}extra";
        let parsed = parse_raw(raw).expect("parses");
        assert_eq!(parsed.path.as_deref(), Some("/api/v4/x"));
        assert_eq!(parsed.payload.as_deref(), Some("cGF5"));
        assert_eq!(parsed.signature.as_deref(), Some("abc"));
        assert_eq!(parsed.body, b"{}");
        let lf = parse_raw(b"POST http://h:1/p HTTP/1.1\nA: b\n\nbody").expect("parses");
        assert_eq!(
            (lf.path.as_deref(), lf.body.as_slice()),
            (Some("/p"), &b"body"[..])
        );
        assert!(parse_raw(b"").is_err());
    }
}
