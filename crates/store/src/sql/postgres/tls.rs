//! TLS to PostgreSQL: the URL's `sslmode` and `sslrootcert`, checked before connecting, and
//! handshake failures explained (`crate::tls`).

use std::path::PathBuf;

use crate::StoreError;
use crate::tls::{Trust, advice, read_ca};

/// The `sslmode` values and what they do (sqlx reads `allow` as `disable`: not offered).
const MODES: [&str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];

/// The TLS settings of one PostgreSQL URL.
#[derive(Debug)]
pub(crate) struct PgTls {
    /// `sslmode` as written (or `PGSSLMODE`), when given.
    mode: Option<String>,
    /// `sslrootcert` as written (or `PGSSLROOTCERT`), when a file.
    root_cert: Option<String>,
}

impl PgTls {
    /// Reads `sslmode` and `sslrootcert` from `url` (as sqlx does, falling back to `PGSSLMODE`
    /// and `PGSSLROOTCERT`), and checks them: a known mode, a readable CA file holding a
    /// certificate.
    ///
    /// # Errors
    /// [`StoreError::Refused`] for an unknown `sslmode` or a CA file without a certificate;
    /// [`StoreError::Io`] when the CA file cannot be read. `shown` is the URL without its
    /// password.
    pub(crate) fn read(url: &str, shown: &str) -> Result<Self, StoreError> {
        let mut mode = std::env::var("PGSSLMODE").ok();
        let mut root_cert = std::env::var("PGSSLROOTCERT").ok();
        if let Ok(parsed) = url::Url::parse(url) {
            for (key, value) in parsed.query_pairs() {
                match &*key {
                    "sslmode" | "ssl-mode" => mode = Some(value.into_owned()),
                    "sslrootcert" | "ssl-root-cert" | "ssl-ca" => {
                        root_cert = Some(value.into_owned());
                    }
                    _ => {}
                }
            }
        }
        if let Some(mode) = &mode
            && !MODES.contains(&mode.to_ascii_lowercase().as_str())
        {
            return Err(StoreError::Refused(format!(
                "{shown}: sslmode={mode} is not a TLS mode this gateway knows; use one of {} \
                 (verify-full checks the server's certificate and host name)",
                MODES.join(", ")
            )));
        }
        // Inline PEM (sqlx takes it too) needs no reading.
        let root_cert = root_cert.filter(|cert| !cert.trim_start().starts_with("-----BEGIN"));
        if let Some(file) = &root_cert {
            read_ca(&PathBuf::from(file), "sslrootcert in the URL")?;
        }
        let tls = Self { mode, root_cert };
        if tls.root_cert.is_some() && !tls.verifies() {
            tracing::warn!(
                target: "wbauth::store",
                postgres = %shown,
                "sslrootcert is set but sslmode={} does not check the server's certificate: \
                 use sslmode=verify-full (or verify-ca) for the CA to be used",
                tls.mode.as_deref().unwrap_or("prefer")
            );
        }
        Ok(tls)
    }

    fn verifies(&self) -> bool {
        self.mode.as_deref().is_some_and(|mode| {
            mode.eq_ignore_ascii_case("verify-ca") || mode.eq_ignore_ascii_case("verify-full")
        })
    }

    /// `e` with what is wrong and what to do added, when it tells of a TLS problem.
    pub(crate) fn explain(&self, e: StoreError) -> StoreError {
        let trust = Trust {
            store: "PostgreSQL",
            setting: "sslrootcert=FILE in the URL",
            ca: self.root_cert.as_deref(),
            default_roots: "the Mozilla roots built into the gateway",
            enable: "turn TLS on at the server (ssl = on, ssl_cert_file and ssl_key_file in \
                     postgresql.conf)",
            plain: "use sslmode=prefer or sslmode=disable on a network you trust",
            without_name: Some("sslmode=verify-ca"),
        };
        let add = |message: String| match advice(&message, &trust) {
            Some(advice) => format!("{message}. {advice}"),
            None => message,
        };
        match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(add(m)),
            StoreError::Refused(m) => StoreError::Refused(add(m)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PgTls;

    #[test]
    fn unknown_modes_and_missing_ca_files_are_refused() {
        let e = PgTls::read("postgres://u:s3cret@db/k?sslmode=verify_full", "shown")
            .expect_err("unknown mode");
        assert!(e.to_string().contains("use one of disable, prefer"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = PgTls::read(
            "postgres://db/k?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "shown",
        )
        .expect_err("missing file");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let tls = PgTls::read("postgres://db/k?sslmode=verify-full", "shown").expect("valid");
        assert!(tls.verifies());
    }
}
