//! Settings of the networked stores and their URLs: which parts are secret, and how to show
//! a URL (or a message quoting one) without them.

/// Settings of the networked stores (`[store]`): pool size, timeouts, Redis's CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Connections per store and instance (Redis: one multiplexed connection, or this many
    /// with `nonce_replicas_ack` above 0, since WAIT holds its connection).
    pub pool_size: u32,
    /// Giving up on (re)connecting after this long.
    pub connect_timeout: std::time::Duration,
    /// Giving up on one operation after this long: the request fails closed (503).
    pub op_timeout: std::time::Duration,
    /// Accept a Redis without `appendonly yes` + `appendfsync always` (`docs/design-decisions.md` 19).
    pub allow_non_durable: bool,
    /// Replicas that must hold each nonce recorded in Redis before it counts (`WAIT N`);
    /// 0 does not wait (`[store] nonce_replicas_ack`).
    pub nonce_replicas_ack: u32,
    /// Refuse a PostgreSQL store whose commits do not wait for a synchronous standby
    /// (`[store] require_sync_standby`).
    pub require_sync_standby: bool,
    /// The CA certificate (PEM file) a `rediss://` nonce store's certificate must chain to
    /// (`[store] redis_ca`); `None`: the system's trusted roots. PostgreSQL takes its CA in
    /// the URL (`sslrootcert=FILE`).
    pub redis_ca: Option<std::path::PathBuf>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: std::time::Duration::from_secs(2),
            op_timeout: std::time::Duration::from_secs(1),
            allow_non_durable: false,
            nonce_replicas_ack: 0,
            require_sync_standby: false,
            redis_ca: None,
        }
    }
}

/// What to do about a store URL that does not parse.
pub(crate) const PERCENT_ENCODE: &str = "check it; in the user name and password, write / ? # @ : and % \
     as %2F %3F %23 %40 %3A and %25";

/// Hides the credentials of a store URL (`postgres://user:secret@host/db` →
/// `postgres://user:***@host/db`), for logs and errors. The URL is read with a URL parser;
/// sensitive query parameters (`?password=…`, `sslpassword`, anything naming a secret or a
/// token) lose their values too. When the parser cannot tell where the user information ends
/// — it fails, or an `@` is left in the path (a password holding an unencoded `/`, `?` or `#`)
/// — everything between `://` and the last `@` is hidden. Text with an `@` but no `://` loses
/// everything before its last `@`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        };
    };
    if let Some(parsed) = unambiguous(url) {
        let user = parsed.username();
        let userinfo = match (user.is_empty(), parsed.password().is_some()) {
            (_, true) => format!("{user}:***@"),
            (false, false) => format!("{user}@"),
            (true, false) => String::new(),
        };
        let host_and_path = &parsed[url::Position::BeforeHost..url::Position::AfterPath];
        let query = parsed
            .query()
            .map(|q| format!("?{}", redact_query(q)))
            .unwrap_or_default();
        return format!("{}://{userinfo}{host_and_path}{query}", parsed.scheme());
    }
    match rest.rsplit_once('@') {
        Some((_, after)) => {
            let (host_and_path, query) = after.split_once('?').unwrap_or((after, ""));
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", redact_query(query))
            };
            format!("{scheme}://***@{host_and_path}{query}")
        }
        None => {
            let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
            if query.is_empty() {
                url.to_owned()
            } else {
                format!("{scheme}://{head}?{}", redact_query(query))
            }
        }
    }
}

/// The URL as parsed, when the parser's idea of its user information can be trusted: it
/// parses, has a host, and no `@` is left after the user information.
fn unambiguous(text: &str) -> Option<url::Url> {
    let parsed = url::Url::parse(text).ok()?;
    let after_host = &parsed[url::Position::BeforeHost..];
    (parsed.has_host() && !after_host.contains('@')).then_some(parsed)
}

/// `a=1&password=x` → `a=1&password=***`.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if sensitive_parameter(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn sensitive_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

/// The secret parts of a store URL as they may appear in a library's message (as written and
/// percent-decoded): its password, or everything after the user name when the URL is
/// ambiguous, and the values of sensitive query parameters. For scrubbing messages that
/// might quote the URL.
#[must_use]
pub(crate) fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let decoded = |text: &str| {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    let mut push = |text: &str| {
        if !text.is_empty() {
            secrets.push(text.to_owned());
            if let Some(plain) = decoded(text).filter(|p| p != text && !p.is_empty()) {
                secrets.push(plain);
            }
        }
    };
    let query = match unambiguous(url) {
        Some(parsed) => {
            if let Some(password) = parsed.password() {
                push(password);
            }
            parsed.query().map(str::to_owned)
        }
        None => {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            let after = match rest.rsplit_once('@') {
                Some((userinfo, after)) => {
                    // The whole user information: where the user name ends is not known.
                    push(userinfo);
                    if let Some((_, password)) = userinfo.split_once(':') {
                        push(password);
                    }
                    after
                }
                None => rest,
            };
            after.split_once('?').map(|(_, q)| q.to_owned())
        }
    };
    for pair in query.as_deref().unwrap_or("").split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && sensitive_parameter(name)
        {
            push(value);
        }
    }
    secrets
}

/// `text` with every secret of `url` ([`url_secrets`]) replaced by `***`.
#[must_use]
pub(crate) fn scrub_url_secrets(text: &str, url: &str) -> String {
    let mut secrets = url_secrets(url);
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

/// `text` with every URL in it passed through [`redact_url`]: a safety net for messages that
/// may quote a URL (a configuration error, a library's error).
#[must_use]
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '`' | '\'' | '<' | '>'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://wb:s3cret@db:5432/keys?sslmode=require"),
            "postgres://wb:***@db:5432/keys?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache/0"),
            "redis://:***@cache/0"
        );
        assert_eq!(redact_url("redis://user@cache/0"), "redis://user@cache/0");
        assert_eq!(redact_url("redis://cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(redact_url("sqlite"), "sqlite");
        assert_eq!(redact_url("embedded"), "embedded");
        // A password with a `/` (unencoded): the parser cannot read it; all of it is hidden.
        assert_eq!(
            redact_url("redis://:S3cret/Pass@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://wb:a/b?c#d@db/keys"),
            "postgres://***@db/keys"
        );
        // Encoded, it parses and is hidden by the parser's reading.
        assert_eq!(
            redact_url("redis://:S3cret%2FPass@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        // An `@` after the host may end a password: hidden up to it.
        assert_eq!(redact_url("postgres://db/a@b"), "postgres://***@b");
        // Passwords in the query.
        assert_eq!(
            redact_url("postgres://db/keys?user=wb&password=s3cret&sslmode=require"),
            "postgres://db/keys?user=wb&password=***&sslmode=require"
        );
        assert_eq!(redact_url("wb:s3cret@db/keys"), "***@db/keys");
        for url in [
            "postgres://wb:s3cret@db:5432/keys",
            "redis://:s3cret/x@cache/0",
            "rediss://u:s3cret%40x@cache/0",
            "postgres://db/k?sslpassword=s3cret",
            "mysql://root:s3cret@db",
        ] {
            assert!(!redact_url(url).contains("s3cret"), "{url}");
        }
    }

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let url = "redis://:S3cret/Pass@127.0.0.1:1/0";
        let message = format!("cannot use {url}: password S3cret/Pass refused");
        let scrubbed = super::scrub_url_secrets(&message, url);
        assert!(!scrubbed.contains("S3cret"), "{scrubbed}");
        let encoded = "redis://u:p%40ss%2Fw0rd@cache/0";
        let scrubbed = super::scrub_url_secrets("auth p@ss/w0rd failed", encoded);
        assert_eq!(scrubbed, "auth *** failed");
        let text = super::redact_urls_in(
            "unknown variant `postgres://wb:S3cret@db/x`, expected `a`; see \"redis://:p/q@h/0\"",
        );
        assert_eq!(
            text,
            "unknown variant `postgres://wb:***@db/x`, expected `a`; see \"redis://***@h/0\""
        );
    }
}
