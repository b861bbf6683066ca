//! TLS on the listeners (`tls = { cert, key }` under `[listen]`, `[admin]`, `[console]`):
//! rustls with the aws-lc-rs provider, TLS 1.3 and 1.2, ALPN `h2` then `http/1.1`, and on the
//! admin listener optionally a client certificate from `client_ca` (mutual TLS).
//!
//! A listener's [`ListenerTls`] holds the rustls configuration in service behind an
//! `ArcSwap`: each new connection takes the one current when it arrives, so a reload never
//! touches connections already open. The files are read again at every reload and when they
//! change on disk ([`ListenerTls::reload_if_changed`], polled by the runtime); a pair that
//! cannot be used leaves the previous one in service, and the reason is logged and shown by
//! `/readyz` until a later reload succeeds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ServerConfig, version};
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;
use crate::error::GatewayError;
use crate::pem_files;

/// The first byte of a TLS record carrying a handshake message (a `ClientHello`).
const TLS_HANDSHAKE: u8 = 0x16;

/// What a plain-HTTP request sent to a TLS port gets back (the port cannot speak HTTP without
/// TLS, so it says so in HTTP rather than dropping the connection).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: text/plain; charset=utf-8\r\n\
connection: close\r\n\
content-length: 88\r\n\
\r\n\
This port speaks HTTPS and the request came as plain HTTP: use an https:// address here.\n";

/// How long a refused connection is kept open, reading and dropping what the client still
/// sends, before it is closed.
const LINGER: Duration = Duration::from_secs(2);

/// Closes `stream` without resetting it: end of stream first, then what the client still
/// sends is read and dropped until it closes (or [`LINGER`] passes). Closing a socket with
/// unread data resets the connection, and a reset can destroy the last thing written before it
/// (the plain-HTTP 400, a TLS alert) before the client reads it.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0_u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// When the files were last read: what [`ListenerTls::reload_if_changed`] compares.
type Stamp = Vec<Option<(SystemTime, u64)>>;

/// TLS of one listener: the configuration in service and where it comes from.
pub(crate) struct ListenerTls {
    listener: &'static str,
    files: TlsConfig,
    current: ArcSwap<ServerConfig>,
    stamp: Mutex<Stamp>,
    /// Why the last reload was refused (cleared by the next one that succeeds).
    problem: Mutex<Option<String>>,
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls")
            .field("listener", &self.listener)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ListenerTls {
    /// Reads the files of `listener`'s TLS (`"public"`, `"admin"`, `"console"`).
    ///
    /// # Errors
    /// A file that cannot be read, holds no certificate or key, or a key that does not match
    /// the certificate: the message names the listener and the file.
    pub(crate) fn load(
        listener: &'static str,
        files: &TlsConfig,
    ) -> Result<Arc<Self>, GatewayError> {
        let stamp = stamp(files);
        let config = server_config(files)
            .map_err(|e| GatewayError::Invalid(format!("TLS of the {listener} listener: {e}")))?;
        Ok(Arc::new(Self {
            listener,
            files: files.clone(),
            current: ArcSwap::from_pointee(config),
            stamp: Mutex::new(stamp),
            problem: Mutex::new(None),
        }))
    }

    /// Which listener this is.
    pub(crate) fn listener(&self) -> &'static str {
        self.listener
    }

    /// Reads the files again and puts the new pair in service for new connections. A pair
    /// that cannot be used leaves the previous one in service; the reason is logged, kept for
    /// `/readyz` and returned.
    ///
    /// # Errors
    /// Why the files cannot be used.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let stamp = stamp(&self.files);
        let outcome = server_config(&self.files);
        if let Ok(mut last) = self.stamp.lock() {
            *last = stamp;
        }
        let problem = match outcome {
            Ok(config) => {
                self.current.store(Arc::new(config));
                tracing::info!(
                    target: "wbauth::tls",
                    "the {} listener's certificate was read again from {}",
                    self.listener,
                    self.files.cert.display()
                );
                None
            }
            Err(e) => {
                let message = format!(
                    "the {} listener's certificate files cannot be used ({e}); the previous \
                     certificate stays in service until they are fixed",
                    self.listener
                );
                tracing::error!(target: "wbauth::tls", "{message}");
                Some(message)
            }
        };
        let result = problem.clone().map_or(Ok(()), Err);
        if let Ok(mut slot) = self.problem.lock() {
            *slot = problem;
        }
        result
    }

    /// [`ListenerTls::reload`] when a file changed (time, size, or appeared/vanished) since
    /// it was last read.
    pub(crate) fn reload_if_changed(&self) {
        let now = stamp(&self.files);
        let changed = self.stamp.lock().map(|last| *last != now).unwrap_or(false);
        if changed {
            let _ = self.reload();
        }
    }

    /// Why the last reload was refused, if it was.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem.lock().ok().and_then(|p| p.clone())
    }

    /// Accepts a TLS connection on `stream` within `timeout`. A peer that sends plain HTTP is
    /// answered `400` in plain HTTP saying the port speaks HTTPS; a failed handshake (no
    /// client certificate on the admin listener, a client refusing the certificate, TLS
    /// garbage) is logged at debug level. `None`: the connection is over.
    pub(crate) async fn accept(
        &self,
        mut stream: TcpStream,
        timeout: Duration,
        peer: std::net::SocketAddr,
    ) -> Option<Accepted> {
        let mut first = [0_u8; 1];
        match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
            Ok(Ok(1)) => {}
            _ => return None,
        }
        if first[0] != TLS_HANDSHAKE {
            if first[0].is_ascii_alphabetic() {
                let _ = tokio::time::timeout(timeout, stream.write_all(PLAIN_HTTP_ANSWER)).await;
                linger(stream).await;
            }
            tracing::debug!(
                target: "wbauth::tls",
                %peer,
                listener = self.listener,
                "not a TLS handshake: connection closed"
            );
            return None;
        }
        let acceptor = TlsAcceptor::from(self.current.load_full());
        match tokio::time::timeout(timeout, acceptor.accept(stream).into_fallible()).await {
            Ok(Ok(stream)) => {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                Some(Accepted { stream, h2 })
            }
            Ok(Err((e, stream))) => {
                tracing::debug!(
                    target: "wbauth::tls",
                    %peer,
                    listener = self.listener,
                    "TLS handshake failed: {e}"
                );
                // The alert saying why was written: let it reach the client.
                linger(stream).await;
                None
            }
            Err(_) => {
                tracing::debug!(
                    target: "wbauth::tls",
                    %peer,
                    listener = self.listener,
                    "TLS handshake timed out"
                );
                None
            }
        }
    }
}

/// A connection after its TLS handshake.
pub(crate) struct Accepted {
    /// The decrypted stream.
    pub(crate) stream: TlsStream<TcpStream>,
    /// The client chose HTTP/2 by ALPN.
    pub(crate) h2: bool,
}

/// The TLS of every listener that has some: reloaded together.
#[derive(Debug, Default, Clone)]
pub(crate) struct Certificates(Vec<Arc<ListenerTls>>);

impl Certificates {
    /// Adds a listener's TLS.
    pub(crate) fn push(&mut self, tls: Arc<ListenerTls>) {
        self.0.push(tls);
    }

    /// Whether no listener has TLS.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every listener's.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<ListenerTls>> {
        self.0.iter()
    }

    /// Reads every listener's files again; the problems, one per listener that kept its
    /// previous certificate.
    pub(crate) fn reload(&self) -> Vec<String> {
        self.0.iter().filter_map(|tls| tls.reload().err()).collect()
    }

    /// Watches the files: every `every`, reloads a listener whose files changed. Runs until
    /// dropped.
    pub(crate) async fn watch(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let certificates = self.clone();
            // File metadata and reads are blocking calls: off the event loop.
            let _ = tokio::task::spawn_blocking(move || {
                for tls in certificates.iter() {
                    tls.reload_if_changed();
                }
            })
            .await;
        }
    }
}

impl crate::service::reload::AlsoReload for Certificates {
    fn reload(&self) -> Vec<String> {
        Certificates::reload(self)
    }
}

fn stamp(files: &TlsConfig) -> Stamp {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
    .collect()
}

/// The rustls configuration `files` describe.
fn server_config(files: &TlsConfig) -> Result<ServerConfig, String> {
    let chain = pem_files::certificates(&files.cert, "certificate file")?;
    let key = pem_files::private_key(&files.key)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = pem_files::roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "the key {} does not go with the certificate {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
