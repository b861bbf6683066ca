//! `wbauth partners`: Fiat Gateway partners (Auth Key → Enc Key) on a running gateway, through
//! its admin API. A change is in force on the gateway's very next request.

use clap::{Args, Subcommand};
use serde_json::json;
use whitebit_gateway::views::PartnerView;

use super::Context;
use super::admin_api::{Action, AdminArgs, AdminClient, Fields, Records};
use crate::error::CliError;
use crate::input::{read_stdin_line, stdin_error};
use crate::output::format_time;
use crate::output::{label, print_shown_once};

/// Manages Fiat Gateway partners on a running gateway: create (the Enc Key is shown once),
/// list, show, enable, disable, delete.
#[derive(Debug, Args)]
pub(crate) struct PartnersArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: PartnersCommand,
}

#[derive(Debug, Subcommand)]
enum PartnersCommand {
    /// Create a partner; prints its Auth Key and its Enc Key, which is never shown again.
    Create {
        /// A unique name.
        name: String,
        /// Import this existing Auth Key instead of generating one (the Enc Key is then read
        /// from standard input).
        #[arg(long, value_name = "KEY")]
        auth_key: Option<String>,
    },
    /// List partners.
    List,
    /// Show one partner.
    Show {
        /// The Auth Key.
        auth_key: String,
    },
    /// Enable a partner.
    Enable {
        /// The Auth Key.
        auth_key: String,
    },
    /// Disable a partner (its tokens are refused).
    Disable {
        /// The Auth Key.
        auth_key: String,
    },
    /// Delete a partner.
    Delete {
        /// The Auth Key.
        auth_key: String,
    },
}

/// Partners, one by one: `/admin/partners/{auth_key}`.
const PARTNERS: Records = Records {
    collection: "partners",
    noun: "partner",
    print: print_partner_answer,
};

/// Runs the command.
pub(crate) async fn run(args: &PartnersArgs, _ctx: &Context) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin)?;
    let json = args.admin.json;
    match &args.command {
        PartnersCommand::Create { name, auth_key } => {
            let body = match auth_key {
                None => json!({"name": name}),
                Some(auth_key) => {
                    let enc_key = read_stdin_line().map_err(stdin_error)?;
                    let enc_key = enc_key.as_ref().map_or("", |k| k.as_str());
                    json!({"name": name, "auth_key": auth_key, "enc_key": enc_key})
                }
            };
            let answer = client.post(&["partners"], Some(&body)).await?;
            answer.print_secret(json, print_enc_key)
        }
        PartnersCommand::List => {
            let answer = client.get(&["partners"], None).await?;
            answer.print(json, |a| a.print_table("partners", &COLUMNS, row))
        }
        PartnersCommand::Show { auth_key } => {
            client.act(&PARTNERS, auth_key, Action::Show, json).await
        }
        PartnersCommand::Enable { auth_key } => {
            client.act(&PARTNERS, auth_key, Action::Enable, json).await
        }
        PartnersCommand::Disable { auth_key } => {
            client.act(&PARTNERS, auth_key, Action::Disable, json).await
        }
        PartnersCommand::Delete { auth_key } => {
            client.act(&PARTNERS, auth_key, Action::Delete, json).await
        }
    }
}

/// The columns of `list`.
const COLUMNS: [&str; 4] = ["AUTH KEY", "NAME", "STATE", "CREATED"];

/// A partner in `list`.
fn row(p: &PartnerView) -> Vec<String> {
    vec![
        p.auth_key.clone(),
        p.name.clone(),
        label(&p.state),
        format_time(p.created_ms),
    ]
}

fn print_partner(p: &PartnerView) {
    println!("auth key:  {}", p.auth_key);
    println!("name:      {}", p.name);
    println!("state:     {}", label(&p.state));
    println!("created:   {}", format_time(p.created_ms));
}

/// Prints the partner of an answer, after a line saying what was `done` to it.
fn print_partner_answer(answer: &Fields<'_>, done: Option<&str>) -> Result<(), CliError> {
    let partner: PartnerView = answer.get("partner")?;
    if let Some(done) = done {
        println!("{done} partner {}.", partner.auth_key);
    }
    print_partner(&partner);
    Ok(())
}

/// Prints the answer to `create`: `auth_key=`/`enc_key=` lines, a reminder that the Enc Key is
/// never shown again, and the partner.
fn print_enc_key(answer: &Fields<'_>) -> Result<(), CliError> {
    let partner: PartnerView = answer.get("partner")?;
    let enc_key = answer.secret("enc_key")?;
    print_shown_once(
        &format!("Created partner {}", partner.name),
        &[("auth_key", &partner.auth_key), ("enc_key", &enc_key)],
        "the Enc Key",
    );
    print_partner(&partner);
    Ok(())
}
