//! A throw-away PostgreSQL cluster.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::{
    Guarded, Launch, START_TIMEOUT, children_of, find_program, free_port, proc_state,
    process_alive, signal, wait_until,
};
use crate::server_dir::server_dir;
use crate::system_user::{
    chown, ensure_system_user, prefixed, running_as_root, set_mode, set_mode_0700,
};

/// The system user PostgreSQL runs as when the tests run as root.
pub const PG_USER: &str = "wbauth-pg";

/// A throw-away PostgreSQL cluster (superuser `postgres`, trust authentication on loopback
/// only), stopped when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_user: Option<String>,
    /// More `-c name=value` settings, kept across restarts (TLS: `ssl=on` and its files).
    settings: Vec<String>,
    process: Option<Guarded>,
}

impl PostgresServer {
    /// Runs `initdb` and starts `postgres` on a free port.
    ///
    /// # Errors
    /// When PostgreSQL is missing or does not start answering.
    pub fn start() -> io::Result<Self> {
        Self::start_with(|_| Ok(Vec::new()))
    }

    /// Starts a cluster that also accepts TLS (`ssl = on`) with a certificate of `ca` for
    /// `names` (host names or addresses, e.g. `["localhost", "127.0.0.1"]`). Plain connections
    /// are still accepted: a client asks for TLS with `sslmode`.
    ///
    /// # Errors
    /// As [`PostgresServer::start`], or when the certificate cannot be made or written.
    pub fn start_tls(ca: &crate::TestCa, names: &[&str]) -> io::Result<Self> {
        let cert = ca.server_cert(names)?;
        Self::start_with(|server| {
            let dir = server.dir.path();
            let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&crt, &cert.chain_pem)?;
            std::fs::write(&key, &cert.key_pem)?;
            // PostgreSQL reads its key only when the server's user owns it, mode 0600.
            for file in [&crt, &key] {
                if let Some(user) = &server.as_user {
                    chown(file, user)?;
                }
                set_mode(file, 0o600)?;
            }
            Ok(vec![
                "ssl=on".to_owned(),
                format!("ssl_cert_file={}", crt.display()),
                format!("ssl_key_file={}", key.display()),
            ])
        })
    }

    /// `initdb`, then `settings` (given the initialised server, whose directory it may
    /// write to) become `-c` arguments of every start.
    fn start_with(settings: impl FnOnce(&Self) -> io::Result<Vec<String>>) -> io::Result<Self> {
        let bin = postgres_bin_dir()?;
        let dir = server_dir("wbauth-pg-")?;
        let as_user = if running_as_root() {
            ensure_system_user(PG_USER)?;
            chown(dir.path(), PG_USER)?;
            Some(PG_USER.to_owned())
        } else {
            None
        };
        set_mode_0700(dir.path())?;
        let data = dir.path().join("data");
        let mut initdb = prefixed(as_user.as_deref(), &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ])
            .stdin(Stdio::null());
        let out = initdb.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut server = Self {
            port: free_port()?,
            dir,
            bin,
            as_user,
            settings: Vec::new(),
            process: None,
        };
        server.settings = settings(&server)?;
        server.launch()?;
        Ok(server)
    }

    /// Makes a hot standby of `primary` with `pg_basebackup` (streaming replication, as
    /// `application_name` `name`) and starts it on a free port. Make it synchronous with
    /// `synchronous_standby_names` on the primary.
    ///
    /// # Errors
    /// When `pg_basebackup` fails or the standby does not start answering.
    pub fn start_standby_of(primary: &Self, name: &str) -> io::Result<Self> {
        let dir = server_dir("wbauth-pg-standby-")?;
        if let Some(user) = &primary.as_user {
            chown(dir.path(), user)?;
        }
        set_mode_0700(dir.path())?;
        let data = dir.path().join("data");
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres application_name={name}",
            primary.port
        );
        let mut backup = prefixed(
            primary.as_user.as_deref(),
            &primary.bin.join("pg_basebackup"),
        );
        backup
            .arg("-D")
            .arg(&data)
            .args(["-d", &conninfo, "-X", "stream", "-R", "-c", "fast"])
            .stdin(Stdio::null());
        let out = backup.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "pg_basebackup failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut server = Self {
            port: free_port()?,
            dir,
            bin: primary.bin.clone(),
            as_user: primary.as_user.clone(),
            settings: Vec::new(),
            process: None,
        };
        server.launch()?;
        Ok(server)
    }

    /// Makes the standby `name` (its `application_name`) this primary's synchronous standby
    /// (`synchronous_standby_names = 'FIRST 1 (name)'`, `synchronous_commit = on`) and waits,
    /// bounded, until `pg_stat_replication` reports it `sync`.
    ///
    /// # Errors
    /// When `psql` fails or the standby does not become synchronous within a minute.
    pub fn make_synchronous(&self, name: &str) -> io::Result<()> {
        for sql in [
            format!("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({name})'"),
            "ALTER SYSTEM SET synchronous_commit = 'on'".to_owned(),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            self.psql("postgres", &sql)?;
        }
        wait_until("a synchronous standby", Duration::from_secs(60), || {
            self.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            )
            .is_ok_and(|n| n.trim() == "1")
        })
    }

    /// Promotes a standby to primary (`pg_promote()`, which waits until it is done).
    ///
    /// # Errors
    /// When `psql` fails or the promotion does not complete.
    pub fn promote(&self) -> io::Result<()> {
        let done = self.psql("postgres", "SELECT pg_promote(true, 60)")?;
        if done.trim() == "t" {
            Ok(())
        } else {
            Err(io::Error::other(format!("pg_promote answered {done:?}")))
        }
    }

    fn launch(&mut self) -> io::Result<()> {
        let data = self.dir.path().join("data");
        let mut args: Vec<String> = vec![
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            format!("unix_socket_directories={}", self.dir.path().display()),
            "-c".into(),
            "max_connections=200".into(),
            "-c".into(),
            "shared_buffers=32MB".into(),
        ];
        for setting in &self.settings {
            args.extend(["-c".to_owned(), setting.clone()]);
        }
        let prefix: Vec<&str> = match &self.as_user {
            Some(user) => vec!["runuser", "-u", user, "--"],
            None => Vec::new(),
        };
        let (bin, port) = (&self.bin, self.port);
        let launch = Launch {
            name: "postgres",
            ready_when: "accepting connections",
            port,
            program: &bin.join("postgres"),
            args: &args,
            prefix: &prefix,
            log: &self.dir.path().join("postgres.log"),
            more_logs: &[],
        };
        let process = Guarded::start(&launch, || pg_isready(bin, port))?;
        self.process = Some(process);
        Ok(())
    }

    /// The URL of database `db` as the superuser.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a database with a name not used before on this server; its URL.
    ///
    /// # Errors
    /// When `psql` fails.
    pub fn fresh_database(&self) -> io::Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t{}_{n}", std::process::id()))
    }

    /// Creates database `name` (a fresh one per test keeps tests apart on one server).
    ///
    /// # Errors
    /// When `psql` fails.
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Runs one SQL command with `psql` on database `db`; its output.
    ///
    /// # Errors
    /// When `psql` fails.
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "psql {sql:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Kills every server process with SIGKILL — the postmaster and all its backends — as in
    /// a crash; a restart runs crash recovery.
    pub fn kill(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let lock = self.dir.path().join("data").join("postmaster.pid");
        let postmaster = std::fs::read_to_string(&lock)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
        // Backends run in sessions of their own: kill them by parentage. The postmaster is
        // stopped first, so that it cannot fork a backend (a new connection, an autovacuum
        // worker) after its children are listed: such an orphan would keep the shared memory
        // attached and the restart would refuse to start.
        if let Some(pid) = postmaster {
            signal(pid, "-STOP");
            let _ = wait_until("the postmaster to stop", START_TIMEOUT, || {
                proc_state(pid).is_none_or(|(state, _)| matches!(state, 'T' | 't' | 'Z' | 'X'))
            });
        }
        let mut victims: Vec<u32> = postmaster.map(children_of).unwrap_or_default();
        victims.extend(postmaster);
        for pid in &victims {
            signal(*pid, "-KILL");
        }
        process.kill();
        let _ = wait_until(
            "the killed postgres processes to end",
            START_TIMEOUT,
            || victims.iter().all(|pid| !process_alive(*pid)),
        );
        // The dead postmaster may linger as a zombie nobody reaps: its lock file would make the
        // next start think it still runs.
        let _ = std::fs::remove_file(&lock);
        let socket = format!(".s.PGSQL.{}", self.port);
        let _ = std::fs::remove_file(self.dir.path().join(format!("{socket}.lock")));
        let _ = std::fs::remove_file(self.dir.path().join(socket));
    }

    /// Starts the server again on the same port and data directory.
    ///
    /// # Errors
    /// When it does not start answering.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        // The killed postmaster's lock file names a dead process: postgres removes it itself.
        self.launch()
    }

    /// Whether the server accepts connections.
    #[must_use]
    pub fn is_up(&self) -> bool {
        pg_isready(&self.bin, self.port)
    }
}

fn pg_isready(bin: &Path, port: u16) -> bool {
    Command::new(bin.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The directory of `initdb`/`postgres`/`pg_isready`: `WBAUTH_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else `PATH`.
fn postgres_bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WBAUTH_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let initdb = find_program("initdb", &[])?;
    initdb
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("initdb has no directory"))
}
