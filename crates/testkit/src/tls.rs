//! A certificate authority made at test time, and an HTTPS server on a free loopback port that
//! answers every request with what it saw: for the clients' TLS tests (a private CA, a wrong
//! host name, an expired certificate, HTTP/2 by ALPN).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A certificate authority of one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate (with its chain) and its private key.
#[derive(Clone)]
pub struct ServerCert {
    /// The certificate then the CA's, as PEM.
    pub chain_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA named `name`.
    ///
    /// # Errors
    /// Key generation or signing failed.
    pub fn new(name: &str) -> io::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(other)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(other)?;
        Ok(Self { issuer })
    }

    /// The CA's certificate, PEM: what a client is given to trust.
    #[must_use]
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses), valid now.
    ///
    /// # Errors
    /// A name that is not a host name or address, or signing failed.
    pub fn server_cert(&self, names: &[&str]) -> io::Result<ServerCert> {
        self.issue(names, None)
    }

    /// A server certificate for `names` that expired in 2001.
    ///
    /// # Errors
    /// As [`TestCa::server_cert`].
    pub fn expired_server_cert(&self, names: &[&str]) -> io::Result<ServerCert> {
        self.issue(names, Some((2000, 2001)))
    }

    /// A client certificate (for mutual TLS), valid now.
    ///
    /// # Errors
    /// Signing failed.
    pub fn client_cert(&self) -> io::Result<ServerCert> {
        self.issue_for(&[], None, true)
    }

    fn issue(&self, names: &[&str], years: Option<(i32, i32)>) -> io::Result<ServerCert> {
        self.issue_for(names, years, false)
    }

    fn issue_for(
        &self,
        names: &[&str],
        years: Option<(i32, i32)>,
        client: bool,
    ) -> io::Result<ServerCert> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(other)?;
        let role = if client { "client" } else { "server" };
        params
            .distinguished_name
            .push(DnType::CommonName, format!("wbauth test {role}"));
        if client {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        if let Some((from, to)) = years {
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(to, 1, 1);
        }
        let key = KeyPair::generate().map_err(other)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(other)?;
        let chain = vec![cert.der().clone(), self.issuer.der().clone()];
        Ok(ServerCert {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            chain,
            key_der: key.serialize_der(),
        })
    }
}

/// An HTTPS server answering every request `200` with a JSON object of what it saw:
/// `{"version":"HTTP/2.0","method":"POST","path":"/…","api_key":"…","body_bytes":N}`.
/// It offers HTTP/2 and HTTP/1.1 by ALPN.
#[derive(Debug)]
pub struct TlsEcho {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsEcho {
    /// Starts the server with `cert` on the current tokio runtime.
    ///
    /// # Errors
    /// The certificate or key is refused by rustls, or no port can be bound.
    pub async fn start(cert: &ServerCert) -> io::Result<Self> {
        Self::start_with_client_ca(cert, None).await
    }

    /// [`TlsEcho::start`], asking clients for a certificate issued by `client_ca` when given
    /// (a client without one fails the handshake).
    ///
    /// # Errors
    /// As [`TlsEcho::start`].
    pub async fn start_with_client_ca(
        cert: &ServerCert,
        client_ca: Option<&TestCa>,
    ) -> io::Result<Self> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(other)?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = tokio_rustls::rustls::RootCertStore::empty();
                roots.add(ca.issuer.der().clone()).map_err(other)?;
                let verifier =
                    tokio_rustls::rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()
                    .map_err(other)?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(cert.chain.clone(), key)
            .map_err(other)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A failed handshake (a client refusing the certificate, or without the
                    // client certificate asked for): the alert was written; end the stream and
                    // read what the client still sends until it closes, so that no reset
                    // destroys the alert before the client reads it.
                    let tls = match acceptor.accept(stream).into_fallible().await {
                        Ok(tls) => tls,
                        Err((_, mut stream)) => {
                            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                            let _ = stream.shutdown().await;
                            let mut sink = [0_u8; 4096];
                            let drained = async {
                                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                            };
                            let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
                            return;
                        }
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service_fn(answer))
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `https://localhost:PORT`.
    #[must_use]
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.addr.port())
    }
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    use http_body_util::BodyExt as _;
    let version = format!("{:?}", request.version());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let api_key = request
        .headers()
        .get("x-txc-apikey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = request.into_body().collect().await?.to_bytes();
    let text = format!(
        r#"{{"version":"{version}","method":"{method}","path":"{path}","api_key":"{api_key}","body_bytes":{}}}"#,
        body.len()
    );
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

impl TestCa {
    /// The CA's certificate, DER: what the kit's own clients trust.
    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A TLS client configuration (rustls on aws-lc-rs) that trusts this CA only.
    ///
    /// # Errors
    /// The CA's certificate is refused by rustls.
    pub(crate) fn client_config(&self) -> io::Result<Arc<tokio_rustls::rustls::ClientConfig>> {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(self.der()).map_err(other)?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
