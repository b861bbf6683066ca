//! TLS to the networked stores, and what to tell the operator when a handshake fails.
//!
//! - PostgreSQL: the URL's `sslmode` (`disable`, `prefer` — sqlx's default —, `require`,
//!   `verify-ca`, `verify-full`) and `sslrootcert=FILE` (PEM), through sqlx and rustls.
//!   Without `sslrootcert` the server's certificate must chain to the Mozilla roots built into
//!   the gateway (`webpki-roots`); with it, to that CA as well.
//! - Redis: `rediss://` URLs, with the CA file of `[store] redis_ca` ([`RemoteOptions::redis_ca`])
//!   or, without one, the system's roots. TLS through Sentinel is not supported: a
//!   `redis+sentinel://` URL with `redis_ca` is refused.
//!
//! rustls's own words stay in the message (they name the host and the names the certificate
//! holds); [`advice`] adds what is wrong in the operator's terms and what to do.
//!
//! [`RemoteOptions::redis_ca`]: crate::RemoteOptions::redis_ca

use std::path::Path;

use crate::StoreError;

/// The problems a handshake can have, as far as the message tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// The certificate does not chain to a trusted CA.
    UnknownIssuer,
    /// The certificate is not issued for the host name connected to.
    WrongName,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The other end does not speak TLS (a plain port).
    NotTls,
}

fn problem(text: &str) -> Option<Problem> {
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["UnknownIssuer", "unknown issuer", "BadSignature"]) {
        Some(Problem::UnknownIssuer)
    } else if has(&["not valid for name", "NotValidForName"]) {
        Some(Problem::WrongName)
    } else if has(&["Expired", "expired", "NotValidYet", "not valid yet"]) {
        Some(Problem::Expired)
    } else if has(&[
        "corrupt message",
        "InvalidContentType",
        "InvalidMessage",
        "peer is incompatible",
        "does not support TLS",
    ]) {
        Some(Problem::NotTls)
    } else {
        None
    }
}

/// What the store's TLS settings are, for the advice.
pub(crate) struct Trust<'a> {
    /// `PostgreSQL` or `Redis`.
    pub(crate) store: &'a str,
    /// Where the CA is set: `sslrootcert in the URL`, `[store] redis_ca`.
    pub(crate) setting: &'a str,
    /// The CA file given, if any.
    pub(crate) ca: Option<&'a str>,
    /// Whether the roots without a CA file are the system's or the built-in Mozilla set.
    pub(crate) default_roots: &'a str,
    /// How to turn TLS on at the server.
    pub(crate) enable: &'a str,
    /// How to do without TLS.
    pub(crate) plain: &'a str,
    /// How to check the CA without the name, when that exists.
    pub(crate) without_name: Option<&'a str>,
}

/// What is wrong and what to do, when `text` (an error's message) tells of a TLS problem.
pub(crate) fn advice(text: &str, trust: &Trust<'_>) -> Option<String> {
    let Trust {
        store,
        setting,
        ca,
        default_roots,
        enable,
        plain,
        without_name,
    } = trust;
    let trusted = match ca {
        Some(ca) => format!("the CA in {ca} ({setting})"),
        None => format!("a CA among {default_roots} (no CA file is given with {setting})"),
    };
    Some(match problem(text)? {
        Problem::UnknownIssuer => format!(
            "The {store} server's certificate is not signed by {trusted}: give the CA \
             certificate (PEM) that issued the server's certificate with {setting}"
        ),
        Problem::WrongName => format!(
            "The {store} server's certificate is not issued for the host name in the URL: \
             connect by a name or address the certificate lists (its subject alternative \
             names), or issue the server a certificate for this one{}",
            without_name.map_or(String::new(), |w| format!(" ({w} checks the CA only)"))
        ),
        Problem::Expired => format!(
            "The {store} server's certificate has expired or is not valid yet: renew it on \
             the server (and check the clocks)"
        ),
        Problem::NotTls => {
            format!("The {store} server does not speak TLS at this address: {enable}, or {plain}")
        }
    })
}

/// A CA file's PEM, read and checked for at least one certificate.
///
/// # Errors
/// [`StoreError::Io`] when it cannot be read; [`StoreError::Refused`] when it holds no PEM
/// certificate.
pub(crate) fn read_ca(path: &Path, setting: &str) -> Result<Vec<u8>, StoreError> {
    let pem = std::fs::read(path).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            e.kind(),
            format!(
                "cannot read the CA file {} ({setting}): {e}; give the path of the CA \
                 certificate (PEM) that issued the server's certificate",
                path.display()
            ),
        ))
    })?;
    if !pem
        .windows(CERT_BEGIN.len())
        .any(|w| w == CERT_BEGIN.as_bytes())
    {
        return Err(StoreError::Refused(format!(
            "the CA file {} ({setting}) holds no PEM certificate (-----BEGIN CERTIFICATE-----); \
             give the CA certificate that issued the server's certificate",
            path.display()
        )));
    }
    Ok(pem)
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

#[cfg(test)]
mod tests {
    use super::{Trust, advice};

    const TRUST: Trust<'static> = Trust {
        store: "PostgreSQL",
        setting: "sslrootcert in the URL",
        ca: Some("ca.pem"),
        default_roots: "the built-in Mozilla roots",
        enable: "set ssl = on",
        plain: "use sslmode=disable",
        without_name: Some("sslmode=verify-ca"),
    };

    #[test]
    fn handshake_failures_are_explained() {
        for (text, says) in [
            (
                "invalid peer certificate: UnknownIssuer",
                "not signed by the CA in ca.pem",
            ),
            (
                "invalid peer certificate: certificate not valid for name \"127.0.0.1\"",
                "sslmode=verify-ca checks the CA only",
            ),
            (
                "invalid peer certificate: certificate expired: …",
                "has expired",
            ),
            (
                "received corrupt message of type InvalidContentType",
                "does not speak TLS",
            ),
            ("server does not support TLS", "use sslmode=disable"),
        ] {
            let said = advice(text, &TRUST).unwrap_or_default();
            assert!(said.contains(says), "{text}: {said}");
        }
        assert_eq!(advice("connection refused", &TRUST), None);
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.pem");
        let e = super::read_ca(&missing, "[store] redis_ca").expect_err("missing");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let e = super::read_ca(&empty, "[store] redis_ca").expect_err("empty");
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    }
}
