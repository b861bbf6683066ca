//! `wbauth keys`: API keys on a running gateway, through its admin API. A change is in force
//! on the gateway's very next request.

use std::io::Write as _;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;
use zeroize::Zeroizing;

use whitebit_gateway::manage::{AuditView, KeyView};

use super::admin_api::{
    AdminArgs, AdminClient, Answer, format_opt_time, format_time, joined, label, print_table,
};
use super::print_json;
use crate::error::CliError;

/// Manages API keys on a running gateway: create (the secret is shown once), list, show,
/// enable, disable, delete, trusted IPs, endpoint allow-lists, secret rotation, audit log.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key for an account whose 2FA is on; prints the public key and the secret,
    /// which is never shown again.
    Create(CreateArgs),
    /// List keys.
    List {
        /// Only this account's keys.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// Show one key.
    Show {
        /// The public key.
        public_key: String,
    },
    /// Enable a key (also after idle deactivation; restarts the idle clock).
    Enable {
        /// The public key.
        public_key: String,
    },
    /// Disable a key.
    Disable {
        /// The public key.
        public_key: String,
    },
    /// Delete a key.
    Delete {
        /// The public key.
        public_key: String,
    },
    /// Replace a key's trusted IPs (addresses or CIDR blocks, v4 or v6).
    SetIps {
        /// The public key.
        public_key: String,
        /// The new list (at most keys.max_ips entries, 50 by default).
        ips: Vec<String>,
        /// Remove every trusted IP: any address may use the key.
        #[arg(long, conflicts_with = "ips")]
        clear: bool,
    },
    /// Replace a key's endpoint allow-list (exact paths or /prefix/*, inside its kind).
    SetEndpoints {
        /// The public key.
        public_key: String,
        /// The new list.
        endpoints: Vec<String>,
        /// Remove the allow-list: every endpoint of the key's kind.
        #[arg(long, conflicts_with = "endpoints")]
        clear: bool,
    },
    /// Give a key a new secret (shown once) and a fresh nonce state; the old secret is
    /// refused from then on.
    RotateSecret {
        /// The public key.
        public_key: String,
        /// A current TOTP code of the key's account.
        #[arg(long, value_name = "TOTP")]
        code: String,
    },
    /// Show the audit log, newest first.
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `wbauth keys create`.
#[derive(Debug, Args)]
struct CreateArgs {
    /// The owner (its 2FA must be on).
    #[arg(long, value_name = "NAME")]
    account: String,
    /// The key kind: a configured endpoint group ([[kind]] in the gateway's configuration).
    #[arg(long)]
    kind: String,
    /// A current TOTP code of the account.
    #[arg(long, value_name = "TOTP")]
    code: String,
    /// A trusted IP or CIDR block (repeat for more; none: any address).
    #[arg(long = "ip", value_name = "ADDR")]
    ips: Vec<String>,
    /// An endpoint the key may use, inside its kind (repeat; none: the whole kind).
    #[arg(long = "endpoint", value_name = "PATH")]
    endpoints: Vec<String>,
    /// Create this many keys alike with the one code (at most 10,000), for many bots or a
    /// load test; their secrets go to --out, never to the terminal.
    #[arg(long, value_name = "N", requires = "out")]
    count: Option<usize>,
    /// With --count: write `public_key,secret` lines to this new file (mode 0600).
    #[arg(long, value_name = "FILE", requires = "count")]
    out: Option<std::path::PathBuf>,
}

/// Runs the command.
pub(crate) async fn run(args: &KeysArgs) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin)?;
    let json = args.admin.json;
    match &args.command {
        KeysCommand::Create(create) => {
            let body = json!({
                "account": create.account,
                "kind": create.kind,
                "code": create.code.trim(),
                "ips": create.ips,
                "endpoints": create.endpoints,
            });
            if let (Some(count), Some(out)) = (create.count, &create.out) {
                let mut body = body;
                body["count"] = json!(count);
                let answer = client
                    .call(
                        Method::POST,
                        &AdminClient::path(&["keys", "batch"]),
                        Some(&body),
                    )
                    .await?;
                let pairs: Vec<(String, String)> = answer
                    .fields()
                    .items("keys")?
                    .iter()
                    .map(|k| Ok((k.get::<KeyView>("key")?.public_key, k.get("secret")?)))
                    .collect::<Result<_, CliError>>()?;
                super::write_keys_file(out, "wbauth keys create --count", &pairs)?;
                if json {
                    print_json(&json!({"created": pairs.len(), "file": out.display().to_string()}));
                } else {
                    println!(
                        "Created {} API keys; public keys and secrets are in {} (mode 0600).",
                        pairs.len(),
                        out.display()
                    );
                }
                return Ok(());
            }
            let answer = client
                .call(Method::POST, &AdminClient::path(&["keys"]), Some(&body))
                .await?;
            print_secret(&answer, json, "Created API key")?;
        }
        KeysCommand::List { account } => {
            let query = account
                .as_deref()
                .map(|a| format!("?account={}", whitebit_auth::encoding::percent_encode(a)))
                .unwrap_or_default();
            let answer = client
                .call(
                    Method::GET,
                    &format!("{}{query}", AdminClient::path(&["keys"])),
                    None,
                )
                .await?;
            if json {
                print_json(answer.json());
            } else {
                let keys: Vec<KeyView> = answer.fields().list("keys")?;
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.public_key.clone(),
                            k.account.clone(),
                            k.kind.clone(),
                            label(&k.state),
                            joined(&k.ips, "any"),
                            joined(&k.endpoints, "whole kind"),
                            format_opt_time(k.last_used_ms),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "PUBLIC KEY",
                        "ACCOUNT",
                        "KIND",
                        "STATE",
                        "TRUSTED IPS",
                        "ENDPOINTS",
                        "LAST USED",
                    ],
                    &rows,
                );
            }
        }
        KeysCommand::Show { public_key } => {
            let answer = client
                .call(Method::GET, &AdminClient::path(&["keys", public_key]), None)
                .await?;
            print_key_answer(&answer, json, None)?;
        }
        KeysCommand::Enable { public_key } => {
            let answer = client
                .call(
                    Method::POST,
                    &AdminClient::path(&["keys", public_key, "enable"]),
                    None,
                )
                .await?;
            print_key_answer(&answer, json, Some("Enabled"))?;
        }
        KeysCommand::Disable { public_key } => {
            let answer = client
                .call(
                    Method::POST,
                    &AdminClient::path(&["keys", public_key, "disable"]),
                    None,
                )
                .await?;
            print_key_answer(&answer, json, Some("Disabled"))?;
        }
        KeysCommand::Delete { public_key } => {
            let answer = client
                .call(
                    Method::DELETE,
                    &AdminClient::path(&["keys", public_key]),
                    None,
                )
                .await?;
            if json {
                print_json(answer.json());
            } else {
                println!("Deleted API key {public_key}.");
            }
        }
        KeysCommand::SetIps {
            public_key,
            ips,
            clear,
        } => {
            if ips.is_empty() && !clear {
                return Err(CliError::Usage(
                    "give the trusted IPs, or --clear to allow any address".into(),
                ));
            }
            let answer = client
                .call(
                    Method::PUT,
                    &AdminClient::path(&["keys", public_key, "ips"]),
                    Some(&json!({"ips": ips})),
                )
                .await?;
            print_key_answer(&answer, json, Some("Updated the trusted IPs of"))?;
        }
        KeysCommand::SetEndpoints {
            public_key,
            endpoints,
            clear,
        } => {
            if endpoints.is_empty() && !clear {
                return Err(CliError::Usage(
                    "give the endpoints, or --clear to open the key's whole kind".into(),
                ));
            }
            let answer = client
                .call(
                    Method::PUT,
                    &AdminClient::path(&["keys", public_key, "endpoints"]),
                    Some(&json!({"endpoints": endpoints})),
                )
                .await?;
            print_key_answer(&answer, json, Some("Updated the endpoints of"))?;
        }
        KeysCommand::RotateSecret { public_key, code } => {
            let answer = client
                .call(
                    Method::POST,
                    &AdminClient::path(&["keys", public_key, "rotate-secret"]),
                    Some(&json!({"code": code.trim()})),
                )
                .await?;
            print_secret(
                &answer,
                json,
                "New secret (the old one is refused from now on) for API key",
            )?;
        }
        KeysCommand::Audit { limit } => {
            let answer = client
                .call(
                    Method::GET,
                    &format!("{}?limit={limit}", AdminClient::path(&["audit"])),
                    None,
                )
                .await?;
            if json {
                print_json(answer.json());
            } else {
                let entries: Vec<AuditView> = answer.fields().list("entries")?;
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            format_time(e.at_ms),
                            e.actor.clone(),
                            e.action.clone(),
                            e.detail.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["AT", "ACTOR", "ACTION", "DETAIL"], &rows);
            }
        }
    }
    Ok(())
}

fn print_key(k: &KeyView) {
    println!("public key:   {}", k.public_key);
    println!("account:      {}", k.account);
    println!("kind:         {}", k.kind);
    println!("state:        {}", label(&k.state));
    println!("trusted IPs:  {}", joined(&k.ips, "any address"));
    println!("endpoints:    {}", joined(&k.endpoints, "the whole kind"));
    println!("created:      {}", format_time(k.created_ms));
    println!("last used:    {}", format_opt_time(k.last_used_ms));
}

fn print_key_answer(answer: &Answer, json: bool, done: Option<&str>) -> Result<(), CliError> {
    if json {
        print_json(answer.json());
        return Ok(());
    }
    let key: KeyView = answer.fields().get("key")?;
    if let Some(done) = done {
        println!("{done} API key {}.", key.public_key);
    }
    print_key(&key);
    Ok(())
}

/// Prints an answer that carries a secret (creation, rotation): `api_key=`/`api_secret=`
/// lines, like the sandbox, and a reminder that the secret is never shown again.
fn print_secret(answer: &Answer, json: bool, headline: &str) -> Result<(), CliError> {
    if json {
        let mut out = std::io::stdout().lock();
        let line = Zeroizing::new(answer.json().to_string());
        let _ = writeln!(out, "{}", line.as_str());
        let _ = out.flush();
        return Ok(());
    }
    let key: KeyView = answer.fields().get("key")?;
    let secret = answer.fields().secret("secret")?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{headline} {}:", key.public_key);
    let _ = writeln!(out, "api_key={}", key.public_key);
    let _ = writeln!(out, "api_secret={}", secret.as_str());
    let _ = writeln!(out, "Store the secret now: it is never shown again.\n");
    drop(out);
    print_key(&key);
    Ok(())
}
