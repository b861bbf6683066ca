//! `wbauth accounts`: accounts and their two-factor authentication, on a running gateway
//! through its admin API.

use std::io::Write as _;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use whitebit_gateway::manage::AccountView;

use super::admin_api::{AdminArgs, AdminClient, Fields, format_time, label, print_table};
use super::print_json;
use crate::error::CliError;

/// Manages accounts (key holders) and their TOTP two-factor authentication on a running
/// gateway. A key can be created only for an account whose 2FA is on.
#[derive(Debug, Args)]
pub(crate) struct AccountsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: AccountsCommand,
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Create an account (2FA off until `wbauth accounts 2fa NAME`). Without
    /// --password-stdin, and when the gateway has a web console, prints a one-time link for
    /// the account's holder to choose the console password.
    Create {
        /// Letters, digits, '.', '_', '-', '@' (up to 64).
        name: String,
        /// Read the web console password from standard input (one line; at least 10
        /// characters), stored as an argon2id hash.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set (or replace) an account's web console password.
    Password {
        /// The account.
        name: String,
        /// Read the password from standard input (one line; at least 10 characters).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Print a new one-time link for the account's holder to set the web console password
    /// (first visit, or a forgotten password); it replaces any earlier link.
    Link {
        /// The account.
        name: String,
    },
    /// List the accounts.
    List,
    /// Show one account.
    Show {
        /// The account.
        name: String,
    },
    /// Enrol TOTP 2FA: print the otpauth:// URI and a QR code, then confirm with a code
    /// from the app (asked on standard input, or later with --code).
    #[command(name = "2fa")]
    TwoFactor(TwoFactorArgs),
}

/// `wbauth accounts 2fa`.
#[derive(Debug, Args)]
struct TwoFactorArgs {
    /// The account.
    name: String,
    /// Confirm a pending enrolment with this code from the app (no new secret).
    #[arg(long, value_name = "CODE", conflicts_with_all = ["current_code", "force", "no_confirm"])]
    code: Option<String>,
    /// Re-enrolling an account whose 2FA is on needs a current code of the old secret.
    #[arg(long, value_name = "CODE", conflicts_with = "force")]
    current_code: Option<String>,
    /// Re-enrol without a current code (operator override; audited).
    #[arg(long)]
    force: bool,
    /// Only enrol and print; confirm later with --code.
    #[arg(long)]
    no_confirm: bool,
}

/// Runs the command.
pub(crate) async fn run(args: &AccountsArgs) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin)?;
    let json = args.admin.json;
    match &args.command {
        AccountsCommand::Create {
            name,
            password_stdin,
        } => {
            let body = if *password_stdin {
                let password = read_password()?;
                json!({"name": name, "password": password.as_str()})
            } else {
                json!({"name": name})
            };
            let answer = client
                .call(Method::POST, &AdminClient::path(&["accounts"]), Some(&body))
                .await?;
            if json {
                print_json(answer.json());
            } else {
                println!(
                    "Created account {name}. Enable two-factor authentication before creating keys: \
                     wbauth accounts 2fa {name}"
                );
                if let Some(link) = answer.fields().optional("console_link") {
                    print_link(name, &link)?;
                }
            }
        }
        AccountsCommand::Link { name } => {
            let answer = client
                .call(
                    Method::POST,
                    &AdminClient::path(&["accounts", name, "console-link"]),
                    None,
                )
                .await?;
            if json {
                print_json(answer.json());
            } else {
                print_link(name, &answer.fields().part("console_link")?)?;
            }
        }
        AccountsCommand::List => {
            let answer = client
                .call(Method::GET, &AdminClient::path(&["accounts"]), None)
                .await?;
            if json {
                print_json(answer.json());
            } else {
                let accounts: Vec<AccountView> = answer.fields().list("accounts")?;
                let rows: Vec<Vec<String>> = accounts
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            label(&a.two_factor),
                            a.keys.to_string(),
                            a.locked_until_ms
                                .map_or_else(|| "-".to_owned(), format_time),
                            format_time(a.created_ms),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "2FA", "KEYS", "LOCKED UNTIL", "CREATED"], &rows);
            }
        }
        AccountsCommand::Show { name } => {
            let answer = client
                .call(Method::GET, &AdminClient::path(&["accounts", name]), None)
                .await?;
            if json {
                print_json(answer.json());
            } else {
                print_account(&answer.fields().get("account")?);
            }
        }
        AccountsCommand::Password { name, .. } => {
            let password = read_password()?;
            let body = json!({"password": password.as_str()});
            let answer = client
                .call(
                    Method::PUT,
                    &AdminClient::path(&["accounts", name, "password"]),
                    Some(&body),
                )
                .await?;
            if json {
                print_json(answer.json());
            } else {
                println!("Set the web console password of account {name}.");
            }
        }
        AccountsCommand::TwoFactor(two) => two_factor(&client, two, json).await?,
    }
    Ok(())
}

/// A one-time console link, for the operator to hand to the account's holder.
fn print_link(name: &str, link: &Fields<'_>) -> Result<(), CliError> {
    let url = link.secret("url")?;
    let expires = format_time(link.get("expires_ms")?);
    println!(
        "One-time link for the holder of {name} to set the web console password (works once, \
         until {expires}; a newer link replaces it):\n{}",
        url.as_str()
    );
    Ok(())
}

/// The password on standard input: its first line, without the line end.
fn read_password() -> Result<Zeroizing<String>, CliError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line).map_err(|e| {
        CliError::Usage(format!("cannot read the password from standard input: {e}"))
    })?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::Usage(
            "--password-stdin: standard input holds no password".to_owned(),
        ));
    }
    Ok(Zeroizing::new(password.to_owned()))
}

fn print_account(a: &AccountView) {
    println!("account:         {}", a.name);
    println!("2FA:             {}", label(&a.two_factor));
    println!("keys:            {}", a.keys);
    println!("wrong codes:     {}", a.failed_attempts);
    if let Some(until) = a.locked_until_ms {
        println!("locked until:    {}", format_time(until));
    }
    println!("created:         {}", format_time(a.created_ms));
}

/// The QR code of `data` in Unicode half blocks (two modules per character cell), for a
/// terminal with a dark background.
fn qr_code(data: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

async fn confirm(client: &AdminClient, name: &str, code: &str, json: bool) -> Result<(), CliError> {
    let answer = client
        .call(
            Method::POST,
            &AdminClient::path(&["accounts", name, "2fa", "confirm"]),
            Some(&json!({"code": code.trim()})),
        )
        .await?;
    if json {
        print_json(answer.json());
    } else {
        println!("Two-factor authentication is on for account {name}.");
    }
    Ok(())
}

/// Reads one line from standard input (`None` at its end).
async fn read_code() -> Result<Option<String>, CliError> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line.trim().to_owned())),
            Err(source) => Err(CliError::Io {
                path: "standard input".into(),
                source,
            }),
        }
    })
    .await
    .map_err(|e| CliError::Usage(format!("reading standard input failed: {e}")))?
}

async fn two_factor(
    client: &AdminClient,
    args: &TwoFactorArgs,
    json: bool,
) -> Result<(), CliError> {
    let name = args.name.as_str();
    if let Some(code) = &args.code {
        return confirm(client, name, code, json).await;
    }
    let mut body = json!({"force": args.force});
    if let Some(code) = &args.current_code {
        body["code"] = Value::String(code.trim().to_owned());
    }
    let answer = client
        .call(
            Method::POST,
            &AdminClient::path(&["accounts", name, "2fa", "enrol"]),
            Some(&body),
        )
        .await?;
    let uri = answer.fields().secret("otpauth_uri")?;
    let secret = answer.fields().secret("secret")?;
    drop(answer);
    {
        let mut out = std::io::stdout().lock();
        if json {
            let line = Zeroizing::new(
                json!({"account": name, "otpauth_uri": uri.as_str(), "secret": secret.as_str()})
                    .to_string(),
            );
            let _ = writeln!(out, "{}", line.as_str());
        } else {
            let _ = writeln!(
                out,
                "Scan this QR code with an authenticator app (or type the secret in by hand):"
            );
            if let Some(qr) = qr_code(&uri) {
                let _ = writeln!(out, "\n{qr}\n");
            }
            let _ = writeln!(out, "otpauth URI: {}", uri.as_str());
            let _ = writeln!(out, "secret:      {}", secret.as_str());
        }
        let _ = out.flush();
    }
    if args.no_confirm {
        if !json {
            println!("Then confirm with: wbauth accounts 2fa {name} --code CODE");
        }
        return Ok(());
    }
    use std::io::IsTerminal as _;
    let interactive = std::io::stdin().is_terminal();
    let mut tries = 0;
    loop {
        tries += 1;
        eprint!("Code from the app: ");
        let _ = std::io::stderr().flush();
        let Some(code) = read_code().await? else {
            return Err(CliError::Usage(format!(
                "no code given; confirm later with: wbauth accounts 2fa {name} --code CODE"
            )));
        };
        match confirm(client, name, &code, json).await {
            Err(CliError::Admin {
                status: 403,
                message,
            }) if interactive && tries < 3 => {
                eprintln!("{message}");
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_render_in_half_blocks() {
        let qr = qr_code("otpauth://totp/wbauth:alice?secret=GEZDGNBVGY3TQOJQ&issuer=wbauth")
            .expect("qr");
        assert!(qr.lines().count() > 10);
        assert!(qr.contains('▀') || qr.contains('▄') || qr.contains('█'));
    }
}
