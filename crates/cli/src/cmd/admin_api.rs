//! What `accounts`, `keys` and `partners` share: the admin API of a running gateway
//! (`--admin-url`, the token from `WBAUTH_ADMIN_TOKEN` or the gateway's `admin.token` file), and
//! text output helpers (`docs/design-decisions.md` 27: one code path, so the gateway's caches stay right).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use whitebit_client::{ExposeSecret as _, SecretString};
use whitebit_gateway::admin::{ACTOR_HEADER, ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE};

use crate::error::CliError;

/// The admin API's default address (`[admin] addr` of the default configuration).
pub(crate) const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8081";

/// The default data directory (`[store] data_dir` of the default configuration).
const DEFAULT_DATA_DIR: &str = "wbauth-data";

/// Where the running gateway's admin API is, and how to print.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The gateway's admin API. The token comes from WBAUTH_ADMIN_TOKEN, else from the
    /// admin.token file of --data-dir (default ./wbauth-data).
    #[arg(
        long,
        global = true,
        env = "WBAUTH_ADMIN_URL",
        default_value = DEFAULT_ADMIN_URL,
        value_name = "URL"
    )]
    pub(crate) admin_url: String,
    /// The gateway's data directory, to read its admin.token when WBAUTH_ADMIN_TOKEN is not
    /// set.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Print the admin API's JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// A client of the admin API.
pub(crate) struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    actor: Option<String>,
}

/// The token: `WBAUTH_ADMIN_TOKEN`, else `DIR/admin.token`.
fn admin_token(data_dir: Option<&Path>) -> Result<SecretString, CliError> {
    if let Some(token) = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(SecretString::from(token));
    }
    let (dir, explicit) = match data_dir {
        Some(dir) => (dir.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_DATA_DIR), false),
    };
    let path = dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(SecretString::from(text.trim().to_owned())),
        Err(e) if explicit || e.kind() != std::io::ErrorKind::NotFound => Err(CliError::Io {
            path: path.display().to_string(),
            source: e,
        }),
        Err(_) => Err(CliError::Config(format!(
            "no admin token: set {ADMIN_TOKEN_ENV}, or pass --data-dir with the gateway's data \
             directory (it holds {ADMIN_TOKEN_FILE})"
        ))),
    }
}

impl AdminClient {
    /// A client for `--admin-url` with the resolved token.
    pub(crate) fn new(args: &AdminArgs) -> Result<Self, CliError> {
        let base = args.admin_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--admin-url {base:?}: expected http://host:port"
            )));
        }
        let token = admin_token(args.data_dir.as_deref())?;
        // Never follow a redirect: it would resend the body (TOTP codes, passwords) elsewhere.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CliError::Config(format!("cannot build an HTTP client: {e}")))?;
        let actor = std::env::var("USER")
            .ok()
            .filter(|u| {
                !u.is_empty()
                    && u.len() <= 60
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            })
            .map(|u| format!("cli:{u}"));
        Ok(Self {
            http,
            base,
            token,
            actor,
        })
    }

    /// `/admin/…` with each of `segments` percent-encoded.
    pub(crate) fn path(parts: &[&str]) -> String {
        let mut out = String::from("/admin");
        for part in parts {
            out.push('/');
            out.push_str(&whitebit_auth::encoding::percent_encode(part));
        }
        out
    }

    /// Sends a request; the answer's JSON on success, [`CliError::Admin`] with the gateway's
    /// message otherwise.
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
            .map_err(|_| {
                CliError::Config(format!(
                    "the admin token ({ADMIN_TOKEN_ENV} or {ADMIN_TOKEN_FILE}) is not a valid header value"
                ))
            })?;
        auth.set_sensitive(true);
        let mut request = self.http.request(method, &url).header(AUTHORIZATION, auth);
        if let Some(actor) = &self.actor {
            request = request.header(ACTOR_HEADER, actor);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| CliError::Admin {
            status: 0,
            message: format!("cannot reach the admin API at {}: {e}", self.base),
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| CliError::Admin {
            status,
            message: format!("reading the admin API's answer failed: {e}"),
        })?;
        if (300..400).contains(&status) {
            return Err(CliError::Admin {
                status,
                message: format!(
                    "the admin API at {} answered HTTP {status}, a redirect; it was not followed \
                     (it would resend the request elsewhere): point --admin-url at the gateway's \
                     admin listener itself",
                    self.base
                ),
            });
        }
        let value: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return value.ok_or_else(|| CliError::Admin {
                status,
                message: "the admin API answered something that is not JSON".to_owned(),
            });
        }
        let message = value
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map_or_else(
                || format!("the admin API answered HTTP {status}"),
                str::to_owned,
            );
        Err(CliError::Admin { status, message })
    }
}

/// A Unix ms time as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_time(ms: u64) -> String {
    whitebit_auth::time::format_utc(ms, whitebit_auth::time::Precision::Second)
}

/// An optional time field.
pub(crate) fn format_opt_time(value: &Value) -> String {
    value
        .as_u64()
        .map_or_else(|| "never".to_owned(), format_time)
}

/// A JSON string field, or "".
pub(crate) fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

/// A JSON array of strings, joined; `empty` when there are none.
pub(crate) fn list(value: &Value, field: &str, empty: &str) -> String {
    let items: Vec<&str> = value
        .get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(", ")
    }
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_segments() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            whitebit_auth::encoding::percent_encode("a b/c"),
            "a%20b%2Fc"
        );
        assert_eq!(AdminClient::path(&["keys", "ab/c"]), "/admin/keys/ab%2Fc");
    }
}
