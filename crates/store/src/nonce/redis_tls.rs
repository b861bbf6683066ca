//! TLS to a Redis nonce store: a `rediss://` URL, with the CA of `[store] redis_ca`
//! ([`RemoteOptions::redis_ca`]) or the system's trusted roots, and a first connection that
//! says what is wrong when it fails (the connection manager would retry until the connect
//! timeout and only say that it ran out).
//!
//! TLS through Sentinel is not supported: the Sentinels and the masters they name are
//! reached over plain TCP, and `redis_ca` with a `redis+sentinel://` URL is refused.

use std::path::Path;
use std::time::Duration;

use ::redis::aio::{ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, TlsCertificates};

use super::redis_link::{Connections, Link, SENTINEL_SCHEME};
use crate::remote::{PERCENT_ENCODE, scrub_url_secrets};
use crate::tls::{Trust, advice, read_ca};
use crate::{RemoteOptions, StoreError};

/// Where the CA is set, in messages.
const SETTING: &str = "[store] redis_ca";

/// The scheme of a Redis URL over TLS.
const TLS_SCHEME: &str = "rediss://";

/// The CA file's PEM when `[store] redis_ca` is set, after checking that it fits `url`.
///
/// # Errors
/// [`StoreError::Refused`] when `redis_ca` is set for a `redis://` or `redis+sentinel://` URL,
/// or the file holds no certificate; [`StoreError::Io`] when it cannot be read.
pub(crate) fn ca_for(
    url: &str,
    shown: &str,
    options: &RemoteOptions,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(ca) = &options.redis_ca else {
        return Ok(None);
    };
    if url.starts_with(SENTINEL_SCHEME) {
        return Err(StoreError::Refused(format!(
            "{SETTING} is set, but {shown} is a Sentinel URL: this gateway reaches the Sentinels \
             and the masters they name over plain TCP only. Remove redis_ca (and keep that \
             traffic on a trusted network), or name the master directly with rediss://host:port"
        )));
    }
    if !url.starts_with(TLS_SCHEME) {
        return Err(StoreError::Refused(format!(
            "{SETTING} is set, but {shown} is not a TLS URL: write rediss://… (and the \
             server's tls-port) to use TLS, or remove redis_ca"
        )));
    }
    read_ca(ca, SETTING).map(Some)
}

/// A client for `url`, trusting the CA `ca` (PEM) when given.
pub(crate) fn client(url: &str, ca: Option<Vec<u8>>) -> ::redis::RedisResult<Client> {
    match ca {
        Some(root_cert) => Client::build_with_tls(
            url,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        ),
        None => Client::open(url),
    }
}

/// Connects to the one Redis at `url` (`redis://` or `rediss://`, trusting `ca` when given):
/// first one connection and a `PING` that say what is wrong when they fail, then the
/// store's `connections`.
///
/// # Errors
/// [`StoreError::Unavailable`] saying why, without the URL's secrets.
pub(crate) async fn open_fixed(
    url: &str,
    shown: &str,
    ca: Option<Vec<u8>>,
    options: &RemoteOptions,
    config: &ConnectionManagerConfig,
    connections: usize,
) -> Result<Link, StoreError> {
    let scrub = |text: String| scrub_url_secrets(&text, url);
    let client = client(url, ca).map_err(|e| {
        StoreError::Unavailable(scrub(format!(
            "{shown} is not a usable Redis URL ({PERCENT_ENCODE}): {e}"
        )))
    })?;
    let explain = |e: String| {
        let message = format!("cannot connect to Redis at {shown}: {e}");
        StoreError::Unavailable(explain(scrub(message), url, options.redis_ca.as_deref()))
    };
    probe(&client, options.connect_timeout, options.op_timeout)
        .await
        .map_err(explain)?;
    match tokio::time::timeout(
        options.connect_timeout,
        Connections::open(&client, config, connections),
    )
    .await
    {
        Ok(Ok(connections)) => Ok(Link::Fixed(connections)),
        Ok(Err(e)) => Err(explain(e.to_string())),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot connect to Redis at {shown}: no connection within {:?}",
            options.connect_timeout
        ))),
    }
}

/// One connection and a `PING`, within `timeout`: the reason when the server cannot be used
/// (a refused certificate, a port that does or does not speak TLS), in the library's words.
pub(crate) async fn probe(
    client: &Client,
    connect_timeout: Duration,
    op_timeout: Duration,
) -> Result<(), String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(op_timeout));
    let attempt = async {
        let mut con: MultiplexedConnection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        ::redis::cmd("PING").query_async::<String>(&mut con).await
    };
    match tokio::time::timeout(connect_timeout + op_timeout, attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no connection and answer to PING within {:?}",
            connect_timeout + op_timeout
        )),
    }
}

/// `message` (about a connection to `url`) with what is wrong and what to do added when it
/// tells of a TLS problem, or of a plain connection a TLS port dropped.
pub(crate) fn explain(message: String, url: &str, ca: Option<&Path>) -> String {
    let ca = ca.map(|ca| ca.display().to_string());
    let trust = Trust {
        store: "Redis",
        setting: SETTING,
        ca: ca.as_deref(),
        default_roots: "the system's trusted roots",
        enable: "point the URL at the server's tls-port",
        plain: "write redis:// for a plain port",
        without_name: None,
    };
    if url.starts_with(TLS_SCHEME) {
        return match advice(&message, &trust) {
            Some(advice) => format!("{message}. {advice}"),
            // A plain Redis takes the TLS hello for the start of a command and waits for the
            // rest: the handshake times out.
            None if message.contains("timed out") => format!(
                "{message}. The TLS handshake got no answer: if the server does not speak TLS \
                 on this port, point the URL at its tls-port, or write redis:// for a plain port"
            ),
            None => message,
        };
    }
    let refused = message.contains("refused");
    if url.starts_with(SENTINEL_SCHEME) || refused {
        return message;
    }
    format!(
        "{message}. If the server speaks TLS on this port (its tls-port), write rediss://… \
         (with {SETTING} for a private CA)"
    )
}

#[cfg(test)]
mod tests {
    use super::{ca_for, explain};
    use crate::RemoteOptions;

    #[test]
    fn a_ca_needs_a_tls_url() {
        let options = RemoteOptions {
            redis_ca: Some("/nonexistent/ca.pem".into()),
            ..RemoteOptions::default()
        };
        for (url, says) in [
            ("redis://h:1/0", "not a TLS URL"),
            ("redis+sentinel://h:1/m", "plain TCP only"),
            ("rediss://h:1/0", "/nonexistent/ca.pem"),
        ] {
            let e = ca_for(url, url, &options).expect_err(url);
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
        assert_eq!(
            ca_for("rediss://h:1/0", "", &RemoteOptions::default()).ok(),
            Some(None)
        );
    }

    #[test]
    fn failures_say_what_to_do() {
        let said = explain(
            "invalid peer certificate: UnknownIssuer".into(),
            "rediss://h:1/0",
            Some("ca.pem".as_ref()),
        );
        assert!(said.contains("not signed by the CA in ca.pem"), "{said}");
        let said = explain("timed out".into(), "rediss://h:1/0", None);
        assert!(said.contains("write redis:// for a plain port"), "{said}");
        let said = explain("broken pipe".into(), "redis://h:1/0", None);
        assert!(said.contains("write rediss://"), "{said}");
        let said = explain("Connection refused".into(), "redis://h:1/0", None);
        assert_eq!(said, "Connection refused");
    }
}
