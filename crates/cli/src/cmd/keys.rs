//! `wbauth keys`: API keys on a running gateway, through its admin API. A change is in force
//! on the gateway's very next request.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use whitebit_gateway::views::{AuditView, KeyView};

use super::Context;
use super::admin_api::{Action, AdminArgs, AdminClient, Fields, Records};
use crate::error::CliError;
use crate::output::format_time;
use crate::output::{
    format_opt_time, joined, label, print_json, print_shown_once, write_keys_file,
};

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
    out: Option<PathBuf>,
}

/// API keys, one by one: `/admin/keys/{public_key}`.
const KEYS: Records = Records {
    collection: "keys",
    noun: "API key",
    print: print_key_answer,
};

/// Runs the command.
pub(crate) async fn run(args: &KeysArgs, _ctx: &Context) -> Result<(), CliError> {
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
                return create_batch(&client, body, count, out, json).await;
            }
            let answer = client.post(&["keys"], Some(&body)).await?;
            answer.print_secret(json, |a| print_secret(a, "Created API key"))
        }
        KeysCommand::List { account } => {
            let query = account.as_deref().map(|a| ("account", a));
            let answer = client.get(&["keys"], query).await?;
            answer.print(json, |a| a.print_table("keys", &COLUMNS, row))
        }
        KeysCommand::Show { public_key } => client.act(&KEYS, public_key, Action::Show, json).await,
        KeysCommand::Enable { public_key } => {
            client.act(&KEYS, public_key, Action::Enable, json).await
        }
        KeysCommand::Disable { public_key } => {
            client.act(&KEYS, public_key, Action::Disable, json).await
        }
        KeysCommand::Delete { public_key } => {
            client.act(&KEYS, public_key, Action::Delete, json).await
        }
        KeysCommand::SetIps {
            public_key,
            ips,
            clear,
        } => set_list(&client, &IPS, public_key, ips, *clear, json).await,
        KeysCommand::SetEndpoints {
            public_key,
            endpoints,
            clear,
        } => set_list(&client, &ENDPOINTS, public_key, endpoints, *clear, json).await,
        KeysCommand::RotateSecret { public_key, code } => {
            let body = json!({"code": code.trim()});
            let answer = client
                .post(&["keys", public_key, "rotate-secret"], Some(&body))
                .await?;
            answer.print_secret(json, |a| {
                print_secret(
                    a,
                    "New secret (the old one is refused from now on) for API key",
                )
            })
        }
        KeysCommand::Audit { limit } => {
            let limit = limit.to_string();
            let answer = client.get(&["audit"], Some(("limit", &limit))).await?;
            answer.print(json, |a| {
                a.print_table("entries", &AUDIT_COLUMNS, audit_row)
            })
        }
    }
}

/// `create --count N --out FILE`: N keys alike, their secrets written to FILE only.
async fn create_batch(
    client: &AdminClient,
    mut body: Value,
    count: usize,
    out: &Path,
    json: bool,
) -> Result<(), CliError> {
    body["count"] = json!(count);
    let answer = client.post(&["keys", "batch"], Some(&body)).await?;
    let pairs: Vec<(String, String)> = answer
        .fields()
        .items("keys")?
        .iter()
        .map(|k| Ok((k.get::<KeyView>("key")?.public_key, k.get("secret")?)))
        .collect::<Result<_, CliError>>()?;
    write_keys_file(out, "wbauth keys create --count", &pairs)?;
    if json {
        print_json(&json!({"created": pairs.len(), "file": out.display().to_string()}));
    } else {
        println!(
            "Created {} API keys; public keys and secrets are in {} (mode 0600).",
            pairs.len(),
            out.display()
        );
    }
    Ok(())
}

/// A list of a key that `set-ips` or `set-endpoints` replaces.
struct KeyList {
    /// Its field in the admin API: `PUT /admin/keys/{public_key}/{field}`.
    field: &'static str,
    /// What to say when the new list is empty without `--clear`.
    missing: &'static str,
    /// What to say when it is replaced.
    done: &'static str,
}

/// The trusted IPs.
const IPS: KeyList = KeyList {
    field: "ips",
    missing: "give the trusted IPs, or --clear to allow any address",
    done: "Updated the trusted IPs of",
};

/// The endpoint allow-list.
const ENDPOINTS: KeyList = KeyList {
    field: "endpoints",
    missing: "give the endpoints, or --clear to open the key's whole kind",
    done: "Updated the endpoints of",
};

/// Replaces `list` of key `public_key` with `items` (none only with `--clear`).
async fn set_list(
    client: &AdminClient,
    list: &KeyList,
    public_key: &str,
    items: &[String],
    clear: bool,
    json: bool,
) -> Result<(), CliError> {
    if items.is_empty() && !clear {
        return Err(CliError::Usage(list.missing.into()));
    }
    let mut body = serde_json::Map::new();
    body.insert(list.field.to_owned(), json!(items));
    let answer = client
        .put(&["keys", public_key, list.field], &body.into())
        .await?;
    answer.print(json, |a| print_key_answer(a, Some(list.done)))
}

/// The columns of `list`.
const COLUMNS: [&str; 7] = [
    "PUBLIC KEY",
    "ACCOUNT",
    "KIND",
    "STATE",
    "TRUSTED IPS",
    "ENDPOINTS",
    "LAST USED",
];

/// A key in `list`.
fn row(k: &KeyView) -> Vec<String> {
    vec![
        k.public_key.clone(),
        k.account.clone(),
        k.kind.clone(),
        label(&k.state),
        joined(&k.ips, "any"),
        joined(&k.endpoints, "whole kind"),
        format_opt_time(k.last_used_ms),
    ]
}

/// The columns of `audit`.
const AUDIT_COLUMNS: [&str; 4] = ["AT", "ACTOR", "ACTION", "DETAIL"];

/// An entry of the audit log.
fn audit_row(e: &AuditView) -> Vec<String> {
    vec![
        format_time(e.at_ms),
        e.actor.clone(),
        e.action.clone(),
        e.detail.to_string(),
    ]
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

/// Prints the key of an answer, after a line saying what was `done` to it.
fn print_key_answer(answer: &Fields<'_>, done: Option<&str>) -> Result<(), CliError> {
    let key: KeyView = answer.get("key")?;
    if let Some(done) = done {
        println!("{done} API key {}.", key.public_key);
    }
    print_key(&key);
    Ok(())
}

/// Prints an answer that carries a secret (creation, rotation): `api_key=`/`api_secret=`
/// lines, like the sandbox, a reminder that the secret is never shown again, and the key.
fn print_secret(answer: &Fields<'_>, headline: &str) -> Result<(), CliError> {
    let key: KeyView = answer.get("key")?;
    let secret = answer.secret("secret")?;
    print_shown_once(
        &format!("{headline} {}", key.public_key),
        &[("api_key", &key.public_key), ("api_secret", &secret)],
        "the secret",
    );
    print_key(&key);
    Ok(())
}
