//! `wbauth accounts`: accounts and their two-factor authentication, on a running gateway
//! through its admin API.

use std::io::Write as _;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use whitebit_gateway::views::AccountView;
use zeroize::Zeroizing;

use super::Context;
use super::admin_api::{AdminArgs, AdminClient, Fields};
use crate::error::CliError;
use crate::input::{read_stdin_line, stdin_error};
use crate::output::format_time;
use crate::output::{label, print_secret_json};

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
    /// from the app (asked on standard input, or later with --code). From a script:
    /// --no-confirm, then --code CODE; with nothing on standard input it stops after
    /// enrolling, as --no-confirm does.
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
pub(crate) async fn run(args: &AccountsArgs, _ctx: &Context) -> Result<(), CliError> {
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
            let answer = client.post(&["accounts"], Some(&body)).await?;
            answer.print(json, |a| {
                let link = a.optional("console_link").map(|l| Link::read(&l));
                let link = link.transpose()?;
                println!(
                    "Created account {name}. Enable two-factor authentication before creating keys: \
                     wbauth accounts 2fa {name}"
                );
                if let Some(link) = link {
                    link.print(name);
                }
                Ok(())
            })
        }
        AccountsCommand::Link { name } => {
            let answer = client
                .post(&["accounts", name, "console-link"], None)
                .await?;
            answer.print(json, |a| {
                Link::read(&a.part("console_link")?)?.print(name);
                Ok(())
            })
        }
        AccountsCommand::List => {
            let answer = client.get(&["accounts"], None).await?;
            answer.print(json, |a| a.print_table("accounts", &COLUMNS, row))
        }
        AccountsCommand::Show { name } => {
            let answer = client.get(&["accounts", name], None).await?;
            answer.print(json, |a| {
                print_account(&a.get("account")?);
                Ok(())
            })
        }
        AccountsCommand::Password { name, .. } => {
            let password = read_password()?;
            let body = json!({"password": password.as_str()});
            let answer = client.put(&["accounts", name, "password"], &body).await?;
            answer.print(json, |_| {
                println!("Set the web console password of account {name}.");
                Ok(())
            })
        }
        AccountsCommand::TwoFactor(two) => two_factor(&client, two, json).await,
    }
}

/// A one-time console link, for the operator to hand to the account's holder (the URL carries
/// the token).
struct Link {
    url: Zeroizing<String>,
    expires_ms: u64,
}

impl Link {
    fn read(link: &Fields<'_>) -> Result<Self, CliError> {
        Ok(Self {
            url: link.secret("url")?,
            expires_ms: link.get("expires_ms")?,
        })
    }

    fn print(&self, name: &str) {
        println!(
            "One-time link for the holder of {name} to set the web console password (works once, \
             until {}; a newer link replaces it):\n{}",
            format_time(self.expires_ms),
            self.url.as_str()
        );
    }
}

/// The password on standard input: its first line, without the line end.
fn read_password() -> Result<Zeroizing<String>, CliError> {
    let line = read_stdin_line().map_err(|e| {
        CliError::Usage(format!("cannot read the password from standard input: {e}"))
    })?;
    match line {
        Some(password) if !password.is_empty() => Ok(password),
        _ => Err(CliError::Usage(
            "--password-stdin: standard input holds no password".to_owned(),
        )),
    }
}

/// The columns of `list`.
const COLUMNS: [&str; 5] = ["NAME", "2FA", "KEYS", "LOCKED UNTIL", "CREATED"];

/// An account in `list`.
fn row(a: &AccountView) -> Vec<String> {
    vec![
        a.name.clone(),
        label(&a.two_factor),
        a.keys.to_string(),
        a.locked_until_ms
            .map_or_else(|| "-".to_owned(), format_time),
        format_time(a.created_ms),
    ]
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
    let body = json!({"code": code.trim()});
    let answer = client
        .post(&["accounts", name, "2fa", "confirm"], Some(&body))
        .await?;
    answer.print(json, |_| {
        println!("Two-factor authentication is on for account {name}.");
        Ok(())
    })
}

/// Reads one line from standard input, trimmed (`None` at its end).
async fn read_code() -> Result<Option<String>, CliError> {
    tokio::task::spawn_blocking(|| {
        let line = read_stdin_line().map_err(stdin_error)?;
        Ok(line.map(|code| code.trim().to_owned()))
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
        .post(&["accounts", name, "2fa", "enrol"], Some(&body))
        .await?;
    let uri = answer.fields().secret("otpauth_uri")?;
    let secret = answer.fields().secret("secret")?;
    drop(answer);
    if json {
        print_secret_json(
            &json!({"account": name, "otpauth_uri": uri.as_str(), "secret": secret.as_str()}),
        );
    } else {
        println!("Scan this QR code with an authenticator app (or type the secret in by hand):");
        if let Some(qr) = qr_code(&uri) {
            println!("\n{qr}\n");
        }
        println!("otpauth URI: {}", uri.as_str());
        println!("secret:      {}", secret.as_str());
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
            if !interactive {
                // A script (standard input not a terminal, and nothing on it): what
                // --no-confirm does, said on stderr so stdout stays the enrolment.
                eprintln!(
                    "\nNo code on standard input (not a terminal): the enrolment is pending. \
                     Confirm with: wbauth accounts 2fa {name} --code CODE \
                     (from scripts, --no-confirm says this up front)"
                );
                return Ok(());
            }
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
