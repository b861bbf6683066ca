//! `wbauth partners`: Fiat Gateway partners (Auth Key → Enc Key) on a running gateway, through
//! its admin API. A change is in force on the gateway's very next request.

use std::io::Write as _;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;
use zeroize::Zeroizing;

use whitebit_gateway::manage_partners::PartnerView;

use super::admin_api::{AdminArgs, AdminClient, Answer, format_time, label, print_table};
use super::print_json;
use crate::error::CliError;

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

/// Runs the command.
pub(crate) async fn run(args: &PartnersArgs) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin)?;
    let json = args.admin.json;
    match &args.command {
        PartnersCommand::Create { name, auth_key } => {
            let body = match auth_key {
                None => json!({"name": name}),
                Some(auth_key) => {
                    let mut enc_key = zeroize::Zeroizing::new(String::new());
                    std::io::stdin()
                        .read_line(&mut enc_key)
                        .map_err(|source| CliError::Io {
                            path: "standard input".into(),
                            source,
                        })?;
                    let enc_key = enc_key.trim_end_matches(['\r', '\n']);
                    json!({"name": name, "auth_key": auth_key, "enc_key": enc_key})
                }
            };
            let answer = client
                .call(Method::POST, &AdminClient::path(&["partners"]), Some(&body))
                .await?;
            print_enc_key(&answer, json)?;
        }
        PartnersCommand::List => {
            let answer = client
                .call(Method::GET, &AdminClient::path(&["partners"]), None)
                .await?;
            if json {
                print_json(answer.json());
            } else {
                let partners: Vec<PartnerView> = answer.fields().list("partners")?;
                let rows: Vec<Vec<String>> = partners
                    .iter()
                    .map(|p| {
                        vec![
                            p.auth_key.clone(),
                            p.name.clone(),
                            label(&p.state),
                            format_time(p.created_ms),
                        ]
                    })
                    .collect();
                print_table(&["AUTH KEY", "NAME", "STATE", "CREATED"], &rows);
            }
        }
        PartnersCommand::Show { auth_key } => {
            let answer = client
                .call(
                    Method::GET,
                    &AdminClient::path(&["partners", auth_key]),
                    None,
                )
                .await?;
            print_partner_answer(&answer, json, None)?;
        }
        PartnersCommand::Enable { auth_key } => {
            let answer = client
                .call(
                    Method::POST,
                    &AdminClient::path(&["partners", auth_key, "enable"]),
                    None,
                )
                .await?;
            print_partner_answer(&answer, json, Some("Enabled"))?;
        }
        PartnersCommand::Disable { auth_key } => {
            let answer = client
                .call(
                    Method::POST,
                    &AdminClient::path(&["partners", auth_key, "disable"]),
                    None,
                )
                .await?;
            print_partner_answer(&answer, json, Some("Disabled"))?;
        }
        PartnersCommand::Delete { auth_key } => {
            let answer = client
                .call(
                    Method::DELETE,
                    &AdminClient::path(&["partners", auth_key]),
                    None,
                )
                .await?;
            if json {
                print_json(answer.json());
            } else {
                println!("Deleted partner {auth_key}.");
            }
        }
    }
    Ok(())
}

fn print_partner(p: &PartnerView) {
    println!("auth key:  {}", p.auth_key);
    println!("name:      {}", p.name);
    println!("state:     {}", label(&p.state));
    println!("created:   {}", format_time(p.created_ms));
}

fn print_partner_answer(answer: &Answer, json: bool, done: Option<&str>) -> Result<(), CliError> {
    if json {
        print_json(answer.json());
        return Ok(());
    }
    let partner: PartnerView = answer.fields().get("partner")?;
    if let Some(done) = done {
        println!("{done} partner {}.", partner.auth_key);
    }
    print_partner(&partner);
    Ok(())
}

/// Prints the answer to `create`: `auth_key=`/`enc_key=` lines and a reminder that the Enc Key
/// is never shown again.
fn print_enc_key(answer: &Answer, json: bool) -> Result<(), CliError> {
    if json {
        let mut out = std::io::stdout().lock();
        let line = Zeroizing::new(answer.json().to_string());
        let _ = writeln!(out, "{}", line.as_str());
        let _ = out.flush();
        return Ok(());
    }
    let partner: PartnerView = answer.fields().get("partner")?;
    let enc_key = answer.fields().secret("enc_key")?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Created partner {}:", partner.name);
    let _ = writeln!(out, "auth_key={}", partner.auth_key);
    let _ = writeln!(out, "enc_key={}", enc_key.as_str());
    let _ = writeln!(out, "Store the Enc Key now: it is never shown again.\n");
    drop(out);
    print_partner(&partner);
    Ok(())
}
