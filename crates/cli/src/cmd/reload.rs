//! `wbauth reload`: a running gateway reads its configuration file again (what `SIGHUP` does),
//! through its admin API.

use clap::Args;

use super::Context;
use super::admin_api::{AdminArgs, AdminClient};
use crate::error::CliError;

/// Makes a running gateway read its configuration file again and put routes, kinds, rate
/// limits, Fiat routes, token keys and the log level in force from its next request (the same
/// as `kill -HUP`). A file that is not valid, or that changes a setting only a restart can
/// change (listeners, stores), is refused with the file, line and key, and the running
/// configuration is kept.
#[derive(Debug, Args)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

/// Runs the command.
pub(crate) async fn run(args: &ReloadArgs, _ctx: &Context) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin)?;
    let answer = client.post(&["reload"], None).await?;
    answer.print(args.admin.json, |fields| {
        let file: String = fields.get("file")?;
        let changed: Vec<String> = fields.get("changed")?;
        if changed.is_empty() {
            println!("Reloaded {file}: no setting changed (token key files read again).");
        } else {
            println!("Reloaded {file}: changed {}.", changed.join(", "));
        }
        let kept: Vec<String> = fields.get("certificate_problems").unwrap_or_default();
        for problem in kept {
            println!("Warning: {problem}.");
        }
        Ok(())
    })
}
