//! TLS to an `https://` upstream, as a route configures it: the roots (the route's `ca`, else
//! the system's), the name checked (the upstream's host, sent as SNI), an optional client
//! certificate, and HTTP/2 offered by ALPN when `http2 = true`. Read when the settings are
//! put in force (at start and at every reload), so a replaced CA or client certificate is
//! used by the connections opened after the reload.

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::config::RouteConfig;
use crate::pem_files;

/// An upstream's TLS settings, ready to connect with.
#[derive(Clone)]
pub(crate) struct UpstreamTls {
    /// The rustls client configuration.
    pub(crate) config: Arc<ClientConfig>,
    /// The name the certificate must carry, sent as SNI.
    pub(crate) server_name: ServerName<'static>,
    /// Offer HTTP/2.
    pub(crate) http2: bool,
    /// What tells two settings apart (the files and options): connections are pooled per
    /// upstream and settings.
    pub(crate) identity: Arc<str>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity && self.server_name == other.server_name
    }
}

impl Eq for UpstreamTls {}

impl UpstreamTls {
    /// The TLS of `route`, whose upstream's host is `host` (without brackets); `None` for an
    /// `http://` upstream.
    ///
    /// # Errors
    /// A file that cannot be read or holds nothing usable, no system roots, or a host that is
    /// not a DNS name or IP address; the message names the setting.
    pub(crate) fn for_route(route: &RouteConfig, host: &str) -> Result<Option<Self>, String> {
        if !route.upstream.starts_with("https://") {
            return Ok(None);
        }
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("upstream {:?}: {e}", route.upstream))?;
        let roots = match &route.ca {
            Some(path) => pem_files::roots(path).map_err(|e| format!("ca: {e}"))?,
            None => system_roots()?,
        };
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .with_root_certificates(roots);
        let mut config = match (&route.client_cert, &route.client_key) {
            (Some(cert), Some(key)) => {
                let chain = pem_files::certificates(cert, "certificate file")
                    .map_err(|e| format!("client_cert: {e}"))?;
                let key_der =
                    pem_files::private_key(key).map_err(|e| format!("client_key: {e}"))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    format!(
                        "client_key: {} does not go with {}: {e}",
                        key.display(),
                        cert.display()
                    )
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = if route.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        let identity = format!(
            "ca={:?} cert={:?} h2={}",
            route.ca, route.client_cert, route.http2
        );
        Ok(Some(Self {
            config: Arc::new(config),
            server_name,
            http2: route.http2,
            identity: identity.into(),
        }))
    }
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "no CA certificate found among the system's roots: install them (Debian: \
             ca-certificates) or give the route a ca = \"file.pem\""
                .to_owned(),
        );
    }
    Ok(roots)
}
