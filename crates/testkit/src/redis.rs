//! A throw-away Redis, plain or over TLS.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::process::{Guarded, Launch, find_program, free_port};
use crate::server_dir::server_dir;

/// A throw-away `redis-server` with `appendonly yes` and `appendfsync always`
/// (`docs/design-decisions.md` 19), stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Over TLS only (`--port 0 --tls-port PORT`): how the kit's own PING connects.
    tls: Option<TlsPing>,
    process: Option<Guarded>,
    next_db: AtomicU32,
}

/// A TLS client for the readiness PING: trusts the test CA, names the server as its
/// certificate does.
#[derive(Clone)]
struct TlsPing {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsPing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPing")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// Starts a durable Redis (AOF, fsync on every write).
    ///
    /// # Errors
    /// When `redis-server` is missing or does not start answering.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// Starts Redis with these extra configuration arguments (e.g. `--appendonly no`).
    ///
    /// # Errors
    /// When `redis-server` is missing or does not start answering.
    pub fn start_with(extra: &[&str]) -> io::Result<Self> {
        let mut server = Self {
            port: free_port()?,
            dir: server_dir("wbauth-redis-")?,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: None,
            process: None,
            next_db: AtomicU32::new(1),
        };
        server.launch()?;
        Ok(server)
    }

    /// Starts a durable Redis that speaks TLS only (`--port 0`, `--tls-port` on a free
    /// port, clients not asked for certificates), with a certificate of `ca` for `names`
    /// (host names or addresses; the first is the one the kit's PING checks). [`url`] is
    /// then `rediss://127.0.0.1:PORT/`.
    ///
    /// # Errors
    /// When the certificate cannot be made or written, or as [`RedisServer::start`].
    ///
    /// [`url`]: RedisServer::url
    pub fn start_tls(ca: &crate::TestCa, names: &[&str]) -> io::Result<Self> {
        let first = names
            .first()
            .ok_or_else(|| io::Error::other("a TLS server needs at least one name"))?;
        let name = ServerName::try_from((*first).to_owned()).map_err(io::Error::other)?;
        let cert = ca.server_cert(names)?;
        let dir = server_dir("wbauth-redis-")?;
        let path = |file: &str| dir.path().join(file).display().to_string();
        let (crt, key, ca_file) = (path("server.crt"), path("server.key"), path("ca.crt"));
        std::fs::write(&crt, &cert.chain_pem)?;
        std::fs::write(&key, &cert.key_pem)?;
        std::fs::write(&ca_file, ca.pem())?;
        let port = free_port()?;
        let mut extra: Vec<String> = ["--appendonly", "yes", "--appendfsync", "always"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        extra.extend([
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            crt,
            "--tls-key-file".to_owned(),
            key,
            "--tls-ca-cert-file".to_owned(),
            ca_file,
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ]);
        let mut server = Self {
            port,
            dir,
            extra,
            tls: Some(TlsPing {
                config: ca.client_config()?,
                name,
            }),
            process: None,
            next_db: AtomicU32::new(1),
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> io::Result<()> {
        let program = find_program("redis-server", &[])?;
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &self.dir.path().display().to_string(),
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            // One database per test: a test binary shares one server among its tests.
            "--databases",
            "1024",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(self.extra.iter().cloned());
        let port = self.port;
        let tls = self.tls.clone();
        let launch = Launch {
            name: "redis-server",
            ready_when: "answering PING",
            port,
            program: &program,
            args: &args,
            prefix: &[],
            log: &self.dir.path().join("redis.log"),
            more_logs: &[],
        };
        self.process = Some(Guarded::start(&launch, || ping(port, tls.as_ref()))?);
        Ok(())
    }

    /// `redis://127.0.0.1:PORT/` (`rediss://` when started with [`RedisServer::start_tls`]).
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/", self.scheme(), self.port)
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// The URL of a database not handed out before by this server (0–1023), so tests sharing
    /// one server keep apart.
    ///
    /// # Panics
    /// When all 1024 databases are taken.
    #[must_use]
    pub fn fresh_database_url(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        assert!(n < 1024, "redis-server has 1024 databases");
        format!("{}://127.0.0.1:{}/{n}", self.scheme(), self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL (a crash; the AOF keeps what was acknowledged).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same port and data directory (the AOF is replayed).
    ///
    /// # Errors
    /// When it does not start answering.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.launch()
    }

    /// Starts the server again on the same port and data directory as a replica of the
    /// Redis on `master_port` (a failed master rejoining its group).
    ///
    /// # Errors
    /// When it does not start answering.
    pub fn restart_as_replica_of(&mut self, master_port: u16) -> io::Result<()> {
        if let Some(at) = self.extra.iter().position(|arg| arg == "--replicaof") {
            self.extra.drain(at..(at + 3).min(self.extra.len()));
        }
        self.extra.extend([
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            master_port.to_string(),
        ]);
        self.restart()
    }

    /// Whether the server answers `PING`.
    #[must_use]
    pub fn is_up(&self) -> bool {
        ping(self.port, self.tls.as_ref())
    }
}

fn ping(port: u16, tls: Option<&TlsPing>) -> bool {
    match tls {
        Some(tls) => tls_ping(port, tls),
        None => redis_ping(port),
    }
}

/// `PING` over TLS, trusting the test CA only.
fn tls_ping(port: u16, tls: &TlsPing) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let Ok(client) = ClientConnection::new(tls.config.clone(), tls.name.clone()) else {
        return false;
    };
    let mut stream = StreamOwned::new(client, stream);
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Sends `PING` in RESP and expects `+PONG`.
pub(crate) fn redis_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
