//! Guarded server processes, free ports, bounded waits, and what `/proc` tells about a process.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start answering.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);

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

/// How to start one server and tell that it answers.
pub(crate) struct Launch<'a> {
    /// Named in errors: `redis-server`, `nginx`, `postgres`.
    pub(crate) name: &'a str,
    /// What the readiness check waits for: `answering PING`.
    pub(crate) ready_when: &'a str,
    pub(crate) port: u16,
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [String],
    /// Put before the program: `runuser -u USER --`, or nothing.
    pub(crate) prefix: &'a [&'a str],
    /// Receives the server's stdout and stderr.
    pub(crate) log: &'a Path,
    /// Logs the server writes itself, shown after `log` when it does not start.
    pub(crate) more_logs: &'a [PathBuf],
}

/// A guarded server process: its own process group, killed with the test process.
#[derive(Debug)]
pub(crate) struct Guarded {
    child: Child,
    // Held open: end of file tells the guard shell to kill the group.
    stdin: Option<ChildStdin>,
}

impl Guarded {
    /// Spawns the server and waits (at most [`START_TIMEOUT`]) until `ready` holds.
    ///
    /// # Errors
    /// When it cannot be spawned, or exits or never gets ready: the error names the server,
    /// its port and what its logs say.
    pub(crate) fn start(launch: &Launch<'_>, mut ready: impl FnMut() -> bool) -> io::Result<Self> {
        let mut process = Self::spawn(launch)?;
        let waited = wait_until(
            &format!("{} {}", launch.name, launch.ready_when),
            START_TIMEOUT,
            || process.exited() || ready(),
        );
        if process.exited() || waited.is_err() {
            let logs: String = std::iter::once(launch.log)
                .chain(launch.more_logs.iter().map(PathBuf::as_path))
                .map(read_log)
                .collect();
            return Err(io::Error::other(format!(
                "{} did not start on port {}: {logs}",
                launch.name, launch.port
            )));
        }
        Ok(process)
    }

    fn spawn(launch: &Launch<'_>) -> io::Result<Self> {
        let log_file = std::fs::File::create(launch.log)?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD)
            .arg("wbauth-testkit-guard")
            .args(launch.prefix)
            .arg(launch.program)
            .args(launch.args)
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// SIGKILL to the whole process group: the server dies as in a crash.
    pub(crate) fn kill(&mut self) {
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

pub(crate) fn find_program(name: &str, extra_dirs: &[PathBuf]) -> io::Result<PathBuf> {
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

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Sends a signal (`-STOP`, `-KILL`) with kill(1); a process already gone is not an error.
pub(crate) fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill")
        .args([which, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The processes whose parent is `parent` (from `/proc`).
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
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
pub(crate) fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (not gone, not a zombie).
pub(crate) fn process_alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}
