//! What `accounts`, `keys` and `partners` share: the admin API of a running gateway
//! (`--admin-url`, the token from `WBAUTH_ADMIN_TOKEN` or the gateway's `admin.token` file;
//! `docs/design-decisions.md` 27: one code path, so the gateway's caches stay right), and its
//! answers, read into the gateway's own view types or printed as sent (`--json`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use whitebit_client::{ExposeSecret as _, SecretString};
use whitebit_gateway::admin::{ACTOR_HEADER, ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::output::{print_json, print_secret_json, print_table};

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
    /// With an https:// admin URL: root certificates (PEM) trusted besides the system's.
    #[arg(long, global = true, env = "WBAUTH_ADMIN_CACERT", value_name = "FILE")]
    pub(crate) admin_cacert: Option<PathBuf>,
    /// A client certificate (PEM chain) for an admin listener that asks for one
    /// (`[admin] tls.client_ca`); with --admin-key.
    #[arg(
        long,
        global = true,
        env = "WBAUTH_ADMIN_CERT",
        value_name = "FILE",
        requires = "admin_key"
    )]
    pub(crate) admin_cert: Option<PathBuf>,
    /// The private key (PEM) of --admin-cert.
    #[arg(
        long,
        global = true,
        env = "WBAUTH_ADMIN_KEY",
        value_name = "FILE",
        requires = "admin_cert"
    )]
    pub(crate) admin_key: Option<PathBuf>,
}

fn read_pem(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The admin client's TLS: `--admin-cacert` roots and the `--admin-cert`/`--admin-key`
/// identity, when given.
fn with_tls(
    mut builder: reqwest::ClientBuilder,
    args: &AdminArgs,
) -> Result<reqwest::ClientBuilder, CliError> {
    if let Some(path) = &args.admin_cacert {
        let certs = reqwest::Certificate::from_pem_bundle(&read_pem(path)?).map_err(|e| {
            CliError::Config(format!(
                "--admin-cacert {}: not a PEM certificate file: {e}",
                path.display()
            ))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&args.admin_cert, &args.admin_key) {
        let mut pem = read_pem(cert)?;
        pem.push(b'\n');
        pem.extend_from_slice(&Zeroizing::new(read_pem(key)?));
        let pem = Zeroizing::new(pem);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            CliError::Config(format!(
                "--admin-cert {} / --admin-key {}: not a PEM certificate and private key: {e}",
                cert.display(),
                key.display()
            ))
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// A client of the admin API.
pub(crate) struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    actor: Option<String>,
    /// What to add to a failed connection to an https:// admin URL without `--admin-cert`: a
    /// listener that asks for client certificates closes such connections, and an HTTP/2
    /// client may only see the connection closed, not the TLS alert saying why.
    no_identity_hint: &'static str,
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
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        let http = with_tls(builder, args)?
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
        let no_identity_hint = if base.starts_with("https://") && args.admin_cert.is_none() {
            " (if this admin listener asks for client certificates, give --admin-cert and \
             --admin-key)"
        } else {
            ""
        };
        Ok(Self {
            http,
            base,
            token,
            actor,
            no_identity_hint,
        })
    }

    /// `/admin/…` with each of `segments` percent-encoded, and `?name=value` (value
    /// percent-encoded) when there is a query.
    fn path(segments: &[&str], query: Option<(&str, &str)>) -> String {
        use whitebit_auth::encoding::percent_encode;
        let mut out = String::from("/admin");
        for segment in segments {
            out.push('/');
            out.push_str(&percent_encode(segment));
        }
        if let Some((name, value)) = query {
            out.push_str(&format!("?{name}={}", percent_encode(value)));
        }
        out
    }

    /// `GET /admin/{segments}[?query]`.
    pub(crate) async fn get(
        &self,
        segments: &[&str],
        query: Option<(&str, &str)>,
    ) -> Result<Answer, CliError> {
        self.call(Method::GET, &Self::path(segments, query), None)
            .await
    }

    /// `POST /admin/{segments}`, with a JSON body or none.
    pub(crate) async fn post(
        &self,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<Answer, CliError> {
        self.call(Method::POST, &Self::path(segments, None), body)
            .await
    }

    /// `PUT /admin/{segments}` with a JSON body.
    pub(crate) async fn put(&self, segments: &[&str], body: &Value) -> Result<Answer, CliError> {
        self.call(Method::PUT, &Self::path(segments, None), Some(body))
            .await
    }

    /// `DELETE /admin/{segments}`.
    pub(crate) async fn delete(&self, segments: &[&str]) -> Result<Answer, CliError> {
        self.call(Method::DELETE, &Self::path(segments, None), None)
            .await
    }

    /// Does `action` to record `id` of `records` and prints the answer.
    pub(crate) async fn act(
        &self,
        records: &Records,
        id: &str,
        action: Action,
        json: bool,
    ) -> Result<(), CliError> {
        let collection = records.collection;
        let answer = match action {
            Action::Show => self.get(&[collection, id], None).await?,
            Action::Enable => self.post(&[collection, id, "enable"], None).await?,
            Action::Disable => self.post(&[collection, id, "disable"], None).await?,
            Action::Delete => self.delete(&[collection, id]).await?,
        };
        answer.print(json, |a| match action {
            Action::Show => (records.print)(a, None),
            Action::Enable => (records.print)(a, Some("Enabled")),
            Action::Disable => (records.print)(a, Some("Disabled")),
            Action::Delete => {
                println!("Deleted {} {id}.", records.noun);
                Ok(())
            }
        })
    }

    /// Sends a request; the answer on success, [`CliError::Admin`] with the gateway's message
    /// otherwise.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CliError> {
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
            message: format!(
                "cannot reach the admin API at {}: {}{}",
                self.base,
                whitebit_client::causes(&e),
                self.no_identity_hint
            ),
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
            return value
                .map(|json| Answer { status, json })
                .ok_or_else(|| CliError::Admin {
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

/// A kind of record the admin API manages one by one (API keys, partners).
pub(crate) struct Records {
    /// Where the records are: `/admin/{collection}/{id}`.
    pub(crate) collection: &'static str,
    /// What one is called in messages.
    pub(crate) noun: &'static str,
    /// Prints the record of an answer, after a line saying what was done to it.
    pub(crate) print: fn(&Fields<'_>, Option<&str>) -> Result<(), CliError>,
}

/// What `show`, `enable`, `disable` and `delete` do to one record.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    /// See it.
    Show,
    /// Switch it on.
    Enable,
    /// Switch it off.
    Disable,
    /// Delete it.
    Delete,
}

/// An answer of the admin API: its JSON exactly as the gateway sent it (what `--json` prints),
/// read with [`Answer::fields`] into the gateway's own view types.
pub(crate) struct Answer {
    status: u16,
    json: Value,
}

impl Answer {
    /// Prints the answer: with `--json` (`json`) as the gateway sent it, otherwise as `text`
    /// prints its fields.
    pub(crate) fn print(
        &self,
        json: bool,
        text: impl FnOnce(&Fields<'_>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        self.print_with(json.then_some(print_json), text)
    }

    /// [`Answer::print`] for an answer that carries a secret: with `--json`, one compact line
    /// through a buffer wiped afterwards.
    pub(crate) fn print_secret(
        &self,
        json: bool,
        text: impl FnOnce(&Fields<'_>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        self.print_with(json.then_some(print_secret_json), text)
    }

    /// The JSON with `print_json` when there is one, else the fields with `text`.
    fn print_with(
        &self,
        print_json: Option<fn(&Value)>,
        text: impl FnOnce(&Fields<'_>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        match print_json {
            Some(print) => {
                print(&self.json);
                Ok(())
            }
            None => text(&self.fields()),
        }
    }

    /// The whole answer, to read field by field.
    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            value: &self.json,
            path: String::new(),
            status: self.status,
        }
    }
}

/// A value inside an [`Answer`] and where it is (e.g. `keys[2].key`): a field that is missing
/// or of the wrong type is an error that names it, never an empty cell.
pub(crate) struct Fields<'a> {
    value: &'a Value,
    path: String,
    status: u16,
}

impl<'a> Fields<'a> {
    /// Where field `name` of this value is.
    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn error(&self, message: String) -> CliError {
        CliError::Admin {
            status: self.status,
            message,
        }
    }

    /// Field `name`; `None` when it is absent or null.
    pub(crate) fn optional(&self, name: &str) -> Option<Fields<'a>> {
        let value = self.value.get(name).filter(|v| !v.is_null())?;
        Some(Fields {
            value,
            path: self.path_of(name),
            status: self.status,
        })
    }

    /// Field `name`, which must be there.
    pub(crate) fn part(&self, name: &str) -> Result<Fields<'a>, CliError> {
        self.optional(name).ok_or_else(|| {
            self.error(format!(
                "the admin API's answer lacks {}",
                self.path_of(name)
            ))
        })
    }

    /// Field `name` as a `T`: one of the gateway's views, or a plain value.
    pub(crate) fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, CliError> {
        self.part(name)?.view()
    }

    /// Field `name`, a string that holds a secret, in a buffer wiped when dropped.
    pub(crate) fn secret(&self, name: &str) -> Result<Zeroizing<String>, CliError> {
        self.get::<String>(name).map(Zeroizing::new)
    }

    /// Field `name`, an array of `T`s.
    pub(crate) fn list<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, CliError> {
        self.items(name)?.iter().map(Fields::view).collect()
    }

    /// Field `name`, an array of `T`s, as a table: `columns`, then the cells `row` gives
    /// each item.
    pub(crate) fn print_table<T: DeserializeOwned>(
        &self,
        name: &str,
        columns: &[&str],
        row: fn(&T) -> Vec<String>,
    ) -> Result<(), CliError> {
        let rows: Vec<Vec<String>> = self.list(name)?.iter().map(row).collect();
        print_table(columns, &rows);
        Ok(())
    }

    /// Field `name`, an array: its elements.
    pub(crate) fn items(&self, name: &str) -> Result<Vec<Fields<'a>>, CliError> {
        let part = self.part(name)?;
        let items = part.value.as_array().ok_or_else(|| {
            self.error(format!(
                "the admin API's answer has an unexpected {}: not an array",
                part.path
            ))
        })?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(index, value)| Fields {
                value,
                path: format!("{}[{index}]", part.path),
                status: self.status,
            })
            .collect())
    }

    /// This value as a `T`.
    fn view<T: DeserializeOwned>(&self) -> Result<T, CliError> {
        T::deserialize(self.value).map_err(|e| {
            let text = e.to_string();
            match text
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                Some(field) => self.error(format!(
                    "the admin API's answer lacks {}",
                    self.path_of(field)
                )),
                None => self.error(format!(
                    "the admin API's answer has an unexpected {}: {text}",
                    self.path
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::format_time;

    #[test]
    fn times_and_segments() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            whitebit_auth::encoding::percent_encode("a b/c"),
            "a%20b%2Fc"
        );
        assert_eq!(
            AdminClient::path(&["keys", "ab/c"], None),
            "/admin/keys/ab%2Fc"
        );
        assert_eq!(
            AdminClient::path(&["keys"], Some(("account", "a b"))),
            "/admin/keys?account=a%20b"
        );
    }

    #[test]
    fn answers_name_the_field_they_lack() {
        let answer = Answer {
            status: 201,
            json: serde_json::json!({"keys": [
                {"key": {"public_key": "k1"}, "secret": "s1"},
                {"key": {"public_key": 7}},
            ]}),
        };
        let message = |e: CliError| match e {
            CliError::Admin {
                status: 201,
                message,
            } => message,
            other => format!("unexpected {other:?}"),
        };
        let items = answer.fields().items("keys").unwrap_or_default();
        assert_eq!(items.len(), 2);
        let first = items.first().map(|k| k.get::<String>("secret"));
        assert!(matches!(first, Some(Ok(ref s)) if s == "s1"), "{first:?}");
        let errors: Vec<String> = items
            .iter()
            .filter_map(|k| k.get::<whitebit_gateway::views::KeyView>("key").err())
            .map(message)
            .collect();
        assert_eq!(
            errors,
            [
                "the admin API's answer lacks keys[0].key.account",
                "the admin API's answer has an unexpected keys[1].key: invalid type: integer `7`, \
                 expected a string",
            ]
        );
        assert_eq!(
            answer
                .fields()
                .secret("secret")
                .err()
                .map(message)
                .as_deref(),
            Some("the admin API's answer lacks secret")
        );
        assert!(answer.fields().optional("nothing").is_none());
    }
}
