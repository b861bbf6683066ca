//! Test support: throw-away Redis, PostgreSQL and nginx servers for the integration tests.
//!
//! Each server runs on a free port of 127.0.0.1 with its data in a fresh temporary directory,
//! inside its own process group, under a small guard shell that kills the whole group when the
//! test process goes away (its stdin, a pipe from the test process, reaches end of file). So a
//! server held in a `static` does not outlive the test binary, and [`Drop`] stops it at once.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, `initdb` and `postgres` run
//! as the system user [`PG_USER`] (created when missing) through `runuser`, with the data
//! directory owned by that user, mode 0700 (`docs/design-decisions.md` 31). Any cluster the distribution
//! package created on port 5432 is ignored.
//!
//! Nothing here sleeps for a fixed time: readiness is a bounded wait on a condition (the
//! server answers), checked every few milliseconds.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The system user PostgreSQL runs as when the tests run as root.
pub const PG_USER: &str = "wbauth-pg";

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the command; kills its whole process group when stdin reaches end of file (the test
/// process is gone) or when the command itself ends (so an exit is seen at once).
const GUARD: &str = r#"exec 3<&0; "$@" </dev/null & c=$!; { read -r _ <&3; kill -KILL 0; } & wait "$c"; kill -KILL 0"#;

/// A free TCP port on 127.0.0.1 (bound and released; the caller starts its server on it).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `ready` holds, checking every 20 ms, for at most `timeout`.
///
/// # Errors
/// `TimedOut` naming `what` when the condition never held.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} did not happen within {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A guarded server process: its own process group, killed with the test process.
#[derive(Debug)]
struct Guarded {
    child: Child,
    // Held open: end of file tells the guard shell to kill the group.
    stdin: Option<ChildStdin>,
}

impl Guarded {
    fn spawn(program: &Path, args: &[String], log: &Path, prefix: &[&str]) -> io::Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD)
            .arg("wbauth-testkit-guard")
            .args(prefix)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// SIGKILL to the whole process group: the server dies as in a crash.
    fn kill(&mut self) {
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.stdin = None;
        let _ = self.child.wait();
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_program(name: &str, extra_dirs: &[PathBuf]) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra_dirs
        .iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} is not installed (./test.sh installs it with apt-get)"),
            )
        })
}

/// A fresh directory for a server's data, `/tmp/PREFIXxxxx`, marked with the test process's id.
/// A server held in a `static` is never dropped, so its directory outlives the test binary;
/// each new one first removes the directories of the same prefix whose test process is gone.
fn server_dir(prefix: &str) -> io::Result<tempfile::TempDir> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(prefix) {
                continue;
            }
            let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE))
                .ok()
                .and_then(|pid| pid.trim().parse::<u32>().ok());
            // Only directories this kit marked, and whose test process has ended.
            if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())?;
    Ok(dir)
}

/// The file naming the test process that owns a server directory.
const OWNER_FILE: &str = "wbauth-testkit.owner";

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// A throw-away `redis-server` with `appendonly yes` and `appendfsync always`
/// (`docs/design-decisions.md` 19), stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    process: Option<Guarded>,
    next_db: std::sync::atomic::AtomicU32,
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
            next_db: std::sync::atomic::AtomicU32::new(1),
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
        let log = self.dir.path().join("redis.log");
        let mut process = Guarded::spawn(&program, &args, &log, &[])?;
        let port = self.port;
        let ready = wait_until("redis-server answering PING", START_TIMEOUT, || {
            process.exited() || redis_ping(port)
        });
        if process.exited() || ready.is_err() {
            return Err(io::Error::other(format!(
                "redis-server did not start on port {port}: {}",
                read_log(&log)
            )));
        }
        self.process = Some(process);
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
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

    /// Whether the server answers `PING`.
    #[must_use]
    pub fn is_up(&self) -> bool {
        redis_ping(self.port)
    }
}

/// Sends `PING` in RESP and expects `+PONG`.
fn redis_ping(port: u16) -> bool {
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

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

/// A throw-away nginx reverse proxy on a free loopback port, in one process
/// (`master_process off`, so it runs as the invoking user), stopped when dropped.
#[derive(Debug)]
pub struct NginxServer {
    port: u16,
    _dir: tempfile::TempDir,
    _process: Guarded,
}

impl NginxServer {
    /// Starts nginx with `location` (the body of a `location / { … }` block, e.g.
    /// `proxy_pass http://127.0.0.1:8081/;`) as its only location.
    ///
    /// # Errors
    /// When nginx is missing or does not start accepting connections.
    pub fn start(location: &str) -> io::Result<Self> {
        let program = find_program("nginx", &[PathBuf::from("/usr/sbin")])?;
        let port = free_port()?;
        let dir = server_dir("wbauth-nginx-")?;
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    \
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
             uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    \
             server {{\n        listen 127.0.0.1:{port};\n        \
             location / {{\n            {location}\n        }}\n    }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config)?;
        let args = vec![
            "-p".to_owned(),
            d.to_string(),
            "-c".to_owned(),
            conf.display().to_string(),
        ];
        let log = dir.path().join("out.log");
        let mut process = Guarded::spawn(&program, &args, &log, &[])?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let ready = wait_until("nginx accepting connections", START_TIMEOUT, || {
            process.exited()
                || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if process.exited() || ready.is_err() {
            return Err(io::Error::other(format!(
                "nginx did not start on port {port}: {}{}",
                read_log(&log),
                read_log(&dir.path().join("error.log"))
            )));
        }
        Ok(Self {
            port,
            _dir: dir,
            _process: process,
        })
    }

    /// Its address, `127.0.0.1:PORT`.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// A throw-away PostgreSQL cluster (superuser `postgres`, trust authentication on loopback
/// only), stopped when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_user: Option<String>,
    process: Option<Guarded>,
}

impl PostgresServer {
    /// Runs `initdb` and starts `postgres` on a free port.
    ///
    /// # Errors
    /// When PostgreSQL is missing or does not start answering.
    pub fn start() -> io::Result<Self> {
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
            process: None,
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> io::Result<()> {
        let data = self.dir.path().join("data");
        let args: Vec<String> = vec![
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
        let log = self.dir.path().join("postgres.log");
        let prefix: Vec<&str> = match &self.as_user {
            Some(user) => vec!["runuser", "-u", user, "--"],
            None => Vec::new(),
        };
        let mut process = Guarded::spawn(&self.bin.join("postgres"), &args, &log, &prefix)?;
        let (bin, port) = (self.bin.clone(), self.port);
        let ready = wait_until("postgres accepting connections", START_TIMEOUT, || {
            process.exited() || pg_isready(&bin, port)
        });
        if process.exited() || ready.is_err() {
            return Err(io::Error::other(format!(
                "postgres did not start on port {port}: {}",
                read_log(&log)
            )));
        }
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
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// Sends a signal (`-STOP`, `-KILL`) with kill(1); a process already gone is not an error.
fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill")
        .args([which, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The processes whose parent is `parent` (from `/proc`).
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let (_, ppid) = proc_state(pid)?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// `(state, ppid)` of a process from `/proc/PID/stat`.
fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (not gone, not a zombie).
fn process_alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
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

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn ensure_system_user(user: &str) -> io::Result<()> {
    let exists = Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if exists {
        return Ok(());
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ])
        .output()?;
    // Another test binary may have created it at the same moment.
    let exists_now = Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if exists_now {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cannot create the system user {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

fn chown(path: &Path, user: &str) -> io::Result<()> {
    let status = Command::new("chown").arg(user).arg(path).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "chown {user} {} failed",
            path.display()
        )))
    }
}

fn set_mode_0700(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

fn prefixed(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn directories_of_ended_test_processes_are_swept() -> io::Result<()> {
        let prefix = "wbauth-sweep-test-";
        // A process that has ended: its id names no running process.
        let mut child = Command::new("true").spawn()?;
        let ended = child.id();
        child.wait()?;
        let stale = tempfile::Builder::new().prefix(prefix).tempdir()?.keep();
        std::fs::write(stale.join(OWNER_FILE), ended.to_string())?;
        let unmarked = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let ours = server_dir(prefix)?;
        let again = server_dir(prefix)?;
        assert!(!stale.exists(), "the ended process's directory is removed");
        assert!(
            unmarked.path().exists(),
            "a directory the kit did not mark is left alone"
        );
        assert!(ours.path().exists(), "a live process's directory is kept");
        assert_eq!(
            std::fs::read_to_string(again.path().join(OWNER_FILE))?,
            std::process::id().to_string()
        );
        Ok(())
    }

    use super::*;

    #[test]
    fn redis_starts_survives_a_kill_with_its_data_and_stops() -> io::Result<()> {
        let mut redis = RedisServer::start()?;
        assert!(redis.is_up());
        redis.kill();
        assert!(!redis.is_up());
        redis.restart()?;
        assert!(redis.is_up());
        let port = redis.port();
        drop(redis);
        assert!(!redis_ping(port));
        Ok(())
    }

    #[test]
    fn postgres_starts_as_a_non_root_user_and_restarts_after_a_kill() -> io::Result<()> {
        let mut pg = PostgresServer::start()?;
        let url = pg.create_database("kit")?;
        assert!(url.ends_with("/kit"));
        pg.psql(
            "kit",
            "CREATE TABLE t (v BIGINT); INSERT INTO t VALUES (42)",
        )?;
        let user = pg.psql("kit", "SELECT current_setting('data_directory')")?;
        assert!(user.contains("wbauth-pg-"), "{user}");
        pg.kill();
        assert!(!pg.is_up());
        pg.restart()?;
        assert_eq!(pg.psql("kit", "SELECT v FROM t")?.trim(), "42");
        Ok(())
    }
}
