//! TLS to an `https://` target of `wbauth bench`: rustls with the aws-lc-rs provider, the roots
//! of `--cacert` (else the system's), HTTP/2 or HTTP/1.1 by ALPN (`--http1`: HTTP/1.1 only),
//! and the client's session cache, so a reconnecting connection resumes its session as a real
//! client would.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::error::CliError;

/// How every connection of a run speaks TLS.
pub(super) struct BenchTls {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// The target without its path and query (`https://host:port/`), for HTTP/2 requests.
    uri: hyper::Uri,
}

impl BenchTls {
    /// TLS to `host`, trusting `cacert` (PEM) or the system's roots; HTTP/2 offered unless
    /// `http1_only`. `uri` is the absolute request target HTTP/2 requests carry.
    pub(super) fn new(
        host: &str,
        cacert: Option<&Path>,
        http1_only: bool,
        uri: hyper::Uri,
    ) -> Result<Self, CliError> {
        let mut roots = RootCertStore::empty();
        match cacert {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| CliError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let added = cert
                        .map_err(|e| e.to_string())
                        .and_then(|cert| roots.add(cert).map_err(|e| e.to_string()));
                    added.map_err(|e| {
                        CliError::Usage(format!("--cacert {}: {e}", path.display()))
                    })?;
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        if roots.is_empty() {
            return Err(CliError::Usage(
                "no root certificate to check the server's with: give --cacert FILE (PEM)".into(),
            ));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CliError::Usage(format!("TLS set-up failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = if http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| CliError::Usage(format!("{host:?} is not a TLS server name: {e}")))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            uri,
        })
    }

    /// The absolute request target of HTTP/2 requests.
    pub(super) fn uri(&self) -> &hyper::Uri {
        &self.uri
    }

    /// The TLS handshake on `stream`; whether the server chose HTTP/2.
    pub(super) async fn handshake(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, bool), String> {
        let stream = self
            .connector
            .connect(self.name.clone(), stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((stream, h2))
    }
}
