//! A throw-away Redis.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::{Guarded, Launch, find_program, free_port};
use crate::server_dir::server_dir;

/// A throw-away `redis-server` with `appendonly yes` and `appendfsync always`
/// (`docs/design-decisions.md` 19), stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    process: Option<Guarded>,
    next_db: AtomicU32,
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
        self.process = Some(Guarded::start(&launch, || redis_ping(port))?);
        Ok(())
    }

    /// `redis://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
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
        format!("redis://127.0.0.1:{}/{n}", self.port)
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
        redis_ping(self.port)
    }
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
