//! `wbauth jwt`: fetch a token from `POST /api/v4/jwt`.

use clap::Args;
use serde_json::json;
use whitebit_client::ExposeSecret as _;

use super::Context;
use crate::error::CliError;
use crate::output::print_json;

/// Requests a short-lived Fiat Gateway token (POST /api/v4/jwt) and prints it.
#[derive(Debug, Args)]
pub(crate) struct JwtArgs {
    #[command(flatten)]
    server: super::ServerArgs,
    /// Print only the token.
    #[arg(long)]
    token_only: bool,
}

/// Runs the command.
pub(crate) async fn run(args: &JwtArgs, ctx: &Context) -> Result<(), CliError> {
    let token = ctx
        .credentials(&args.server)?
        .client(false, 0)?
        .issue_jwt()
        .await?;
    if args.token_only {
        println!("{}", token.token.expose_secret());
    } else {
        print_json(&json!({"token": token.token.expose_secret(), "expires_at": token.expires_at}));
    }
    Ok(())
}
