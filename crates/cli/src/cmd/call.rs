//! `wbauth call`: sign, send, print the answer.

use clap::Args;

use super::Context;
use crate::error::CliError;
use crate::items::parse_items;
use crate::output::print_json;

/// Signs and sends a request to a private endpoint and prints the JSON answer.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    server: super::ServerArgs,
    /// The endpoint path, e.g. /api/v4/trade-account/balance.
    path: String,
    /// Parameters: `key=value` (string) or `key:=json` (typed value, e.g. limit:=100).
    items: Vec<String>,
    /// Strict nonces (nonceWindow: false) instead of the ±5 s window mode.
    #[arg(long)]
    strict: bool,
    /// Retry nonce rejections and rate limits up to N times.
    #[arg(long, default_value_t = 0, value_name = "N")]
    retries: u32,
}

/// Runs the command.
pub(crate) async fn run(args: &CallArgs, ctx: &Context) -> Result<(), CliError> {
    let credentials = ctx.credentials(&args.server)?;
    let params = parse_items(&args.items).map_err(CliError::Usage)?;
    if !args.path.starts_with('/') {
        return Err(CliError::Usage(format!(
            "the path must start with '/', e.g. /{}",
            args.path
        )));
    }
    let client = credentials.client(args.strict, args.retries)?;
    let answer = client.post(&args.path, params).await?;
    print_json(&answer);
    Ok(())
}
