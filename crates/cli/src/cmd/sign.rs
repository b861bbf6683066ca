//! `wbauth sign`: the three headers for an exact body (and optionally a curl command).

use clap::Args;
use whitebit_auth::doctor::{Capture, Severity, diagnose};
use whitebit_auth::json::{self, JsonValue};
use whitebit_client::headers;

use super::Context;
use crate::error::CliError;
use crate::input::BodyArgs;

/// Signs an exact body and prints the X-TXC-* headers.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    server: super::ServerArgs,
    #[command(flatten)]
    body: BodyArgs,
    /// Print a ready-to-run curl command instead of the headers.
    #[arg(long)]
    curl: bool,
}

/// Quotes a string for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs the command.
pub(crate) async fn run(args: &SignArgs, ctx: &Context) -> Result<(), CliError> {
    let credentials = ctx.credentials(&args.server)?;
    let body = args.body.read()?.ok_or_else(|| {
        CliError::Usage("give the body with --body JSON or --body-file PATH".into())
    })?;
    let client = credentials.client(false, 0)?;
    // Warn about bodies the server would refuse (the signature itself is fine: we make it).
    for finding in diagnose(&Capture {
        body: Some(&body),
        ..Capture::default()
    }) {
        if finding.severity == Severity::Problem {
            eprintln!("warning: {}", finding.message);
        }
    }
    let signed = client.sign_body(body);
    if !args.curl {
        println!("{}: {}", headers::API_KEY, client.api_key());
        println!("{}: {}", headers::PAYLOAD, signed.payload);
        println!("{}: {}", headers::SIGNATURE, signed.signature);
        return Ok(());
    }
    let path = match json::parse(&signed.body) {
        Ok(JsonValue::Object(obj)) => match obj.get("request") {
            Some(JsonValue::String(p)) => p.to_string(),
            _ => {
                return Err(CliError::Usage(
                    "--curl needs a \"request\" string in the body to know the URL".into(),
                ));
            }
        },
        _ => return Err(CliError::Usage("--curl needs a JSON object body".into())),
    };
    let body_text = String::from_utf8(signed.body)
        .map_err(|_| CliError::Usage("--curl needs a UTF-8 body".into()))?;
    println!(
        "curl -sS -X POST {} \\\n  -H 'Content-Type: application/json' \\\n  -H {} \\\n  -H {} \\\n  -H {} \\\n  --data-raw {}",
        shell_quote(&format!("{}{path}", client.base_url())),
        shell_quote(&format!("{}: {}", headers::API_KEY, client.api_key())),
        shell_quote(&format!("{}: {}", headers::PAYLOAD, signed.payload)),
        shell_quote(&format!("{}: {}", headers::SIGNATURE, signed.signature)),
        shell_quote(&body_text),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
