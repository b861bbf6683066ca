//! `wbauth fiat-token`: a partner token for the Fiat Gateway.

use clap::Args;
use whitebit_auth::fiat::OrderFields;
use whitebit_client::{ExposeSecret as _, FiatCredentials};

use super::Context;
use crate::error::CliError;

/// Builds an HS256 partner token (millisecond iat/exp, 60 s) from the Auth Key and Enc Key
/// (WBAUTH_FIAT_AUTH_KEY / WBAUTH_FIAT_ENC_KEY or the [fiat] section of the credentials file)
/// and prints the headers to send.
#[derive(Debug, Args)]
pub(crate) struct FiatTokenArgs {
    #[command(flatten)]
    server: super::ServerArgs,
    /// The endpoint path the token is for.
    #[arg(long)]
    url: String,
    /// Order currency.
    #[arg(long)]
    currency: String,
    /// Order amount, exactly as it appears in the request body.
    #[arg(long)]
    amount: String,
    /// Order id, exactly as it appears in the request body.
    #[arg(long)]
    order_id: String,
    /// Print only the token.
    #[arg(long)]
    token_only: bool,
}

/// Runs the command.
pub(crate) async fn run(args: &FiatTokenArgs, ctx: &Context) -> Result<(), CliError> {
    let c = ctx.credentials(&args.server)?;
    let (Some(auth_key), Some(enc_key)) = (&c.fiat_auth_key, &c.fiat_enc_key) else {
        return Err(CliError::Config(
            "no Fiat Gateway credentials: set WBAUTH_FIAT_AUTH_KEY and WBAUTH_FIAT_ENC_KEY, or [fiat] auth_key/enc_key in the credentials file".into(),
        ));
    };
    if !args.url.starts_with('/') {
        return Err(CliError::Usage(
            "--url is the endpoint path, e.g. /api/v1/fiat/deposit".into(),
        ));
    }
    let creds = FiatCredentials::new(auth_key.clone(), enc_key);
    let order = OrderFields {
        currency: &args.currency,
        amount: &args.amount,
        order_id: &args.order_id,
    };
    let token = creds.token(&args.url, &order);
    if args.token_only {
        println!("{}", token.token.expose_secret());
        return Ok(());
    }
    for (name, value) in token.headers() {
        println!("{name}: {value}");
    }
    Ok(())
}
