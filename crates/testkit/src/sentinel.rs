//! A throw-away highly available Redis: one master, its replicas and a set of Sentinels
//! (`redis-server --sentinel`), all on free loopback ports.

use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Guarded, Launch, START_TIMEOUT, find_program, free_port, wait_until};
use crate::redis::{RedisServer, redis_ping};
use crate::server_dir::server_dir;

/// The master group every [`RedisHa`] names.
pub const REDIS_GROUP: &str = "wbauth";

/// One Sentinel process.
#[derive(Debug)]
struct Sentinel {
    port: u16,
    _dir: tempfile::TempDir,
    _process: Guarded,
}

impl Sentinel {
    fn start(master_port: u16, quorum: usize) -> io::Result<Self> {
        let program = find_program("redis-server", &[])?;
        let port = free_port()?;
        let dir = server_dir("wbauth-sentinel-")?;
        // Sentinel rewrites its configuration file: it must be a writable file of its own.
        let config = dir.path().join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {dir}\n\
                 sentinel monitor {REDIS_GROUP} 127.0.0.1 {master_port} {quorum}\n\
                 sentinel down-after-milliseconds {REDIS_GROUP} 1000\n\
                 sentinel failover-timeout {REDIS_GROUP} 4000\n\
                 sentinel parallel-syncs {REDIS_GROUP} 1\n",
                dir = dir.path().display()
            ),
        )?;
        let args = vec![config.display().to_string(), "--sentinel".to_owned()];
        let launch = Launch {
            name: "redis-server --sentinel",
            ready_when: "answering PING",
            port,
            program: &program,
            args: &args,
            prefix: &[],
            log: &dir.path().join("sentinel.log"),
            more_logs: &[],
        };
        let process = Guarded::start(&launch, || redis_ping(port))?;
        Ok(Self {
            port,
            _dir: dir,
            _process: process,
        })
    }
}

/// A master, its replicas and Sentinels watching them (quorum: a majority of the
/// Sentinels), every Redis durable (`appendonly yes`, `appendfsync always`). Stopped when
/// dropped.
#[derive(Debug)]
pub struct RedisHa {
    servers: Vec<RedisServer>,
    /// Killed servers, kept for a restart.
    dead: Vec<RedisServer>,
    sentinels: Vec<Sentinel>,
}

impl RedisHa {
    /// Starts the master, `replicas` replicas and `sentinels` Sentinels, and waits (bounded)
    /// until every replica is in sync and every Sentinel sees every replica and every other
    /// Sentinel, so that a failover can happen.
    ///
    /// # Errors
    /// When a server does not start or the set does not come together in time.
    pub fn start(replicas: usize, sentinels: usize) -> io::Result<Self> {
        let durable = ["--appendonly", "yes", "--appendfsync", "always"];
        let master = RedisServer::start_with(&durable)?;
        let master_port = master.port();
        let mut servers = vec![master];
        for _ in 0..replicas {
            let port = master_port.to_string();
            let mut args = durable.to_vec();
            args.extend(["--replicaof", "127.0.0.1", &port]);
            servers.push(RedisServer::start_with(&args)?);
        }
        wait_until("the replicas to be in sync", START_TIMEOUT, || {
            info_field(master_port, "replication", "connected_slaves")
                .is_some_and(|n| n == replicas.to_string())
                && servers[1..].iter().all(|replica| {
                    info_field(replica.port(), "replication", "master_link_status").as_deref()
                        == Some("up")
                })
        })?;
        let quorum = sentinels / 2 + 1;
        let sentinels = (0..sentinels)
            .map(|_| Sentinel::start(master_port, quorum))
            .collect::<io::Result<Vec<_>>>()?;
        let ha = Self {
            servers,
            dead: Vec::new(),
            sentinels,
        };
        let others = ha.sentinels.len().saturating_sub(1).to_string();
        wait_until(
            "every Sentinel to see the replicas and the other Sentinels",
            START_TIMEOUT,
            || {
                ha.sentinels.iter().all(|s| {
                    let fields = sentinel_master(s.port);
                    fields.get("num-slaves") == Some(&replicas.to_string())
                        && fields.get("num-other-sentinels") == Some(&others)
                })
            },
        )?;
        Ok(ha)
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,…/wbauth/<db>`.
    #[must_use]
    pub fn sentinel_url(&self, db: u32) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{REDIS_GROUP}/{db}", hosts.join(","))
    }

    /// The ports of the Sentinels.
    #[must_use]
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The port of the master the first Sentinel that answers names.
    #[must_use]
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = redis_cli(
                s.port,
                &["SENTINEL", "get-master-addr-by-name", REDIS_GROUP],
            )
            .ok()?;
            out.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// The ports of every Redis (master and replicas) still running.
    #[must_use]
    pub fn server_ports(&self) -> Vec<u16> {
        self.servers.iter().map(RedisServer::port).collect()
    }

    /// Kills the master (SIGKILL) and returns its port.
    ///
    /// # Errors
    /// When the Sentinels name no master among the servers.
    pub fn kill_master(&mut self) -> io::Result<u16> {
        let port = self
            .master_port()
            .ok_or_else(|| io::Error::other("no Sentinel names a master"))?;
        self.kill_server(port)?;
        Ok(port)
    }

    /// Kills the Redis on `port` (SIGKILL).
    ///
    /// # Errors
    /// When no server of the set runs there.
    pub fn kill_server(&mut self, port: u16) -> io::Result<()> {
        let at = self
            .servers
            .iter()
            .position(|s| s.port() == port)
            .ok_or_else(|| io::Error::other(format!("no Redis of the set on :{port}")))?;
        let mut server = self.servers.remove(at);
        server.kill();
        self.dead.push(server);
        Ok(())
    }

    /// Restarts the killed Redis of `port` as a replica of the master the Sentinels name now,
    /// and waits (bounded) until it is in sync.
    ///
    /// # Errors
    /// When no server of the set was killed there, or it does not come back in sync.
    pub fn rejoin(&mut self, port: u16) -> io::Result<()> {
        let at = self
            .dead
            .iter()
            .position(|s| s.port() == port)
            .ok_or_else(|| io::Error::other(format!("no killed Redis of the set on :{port}")))?;
        let master = self
            .master_port()
            .ok_or_else(|| io::Error::other("no Sentinel names a master"))?;
        let mut server = self.dead.remove(at);
        server.restart_as_replica_of(master)?;
        self.servers.push(server);
        // In sync once the master the Sentinels name has every other server as a replica
        // (the Sentinels may have failed over again meanwhile).
        let replicas = (self.servers.len() - 1).to_string();
        wait_until("the rejoined replica to be in sync", START_TIMEOUT, || {
            self.master_port().is_some_and(|master| {
                info_field(master, "replication", "role").as_deref() == Some("master")
                    && info_field(master, "replication", "connected_slaves").as_ref()
                        == Some(&replicas)
            })
        })
        .map_err(|e| {
            let info = redis_cli(port, &["INFO", "replication"]).unwrap_or_default();
            io::Error::other(format!("{e}; INFO replication of :{port}: {info}"))
        })
    }

    /// Waits (bounded by `timeout`) until the Sentinels name another master than `old` and
    /// it answers as a master; its port.
    ///
    /// # Errors
    /// When no failover completes in time.
    pub fn wait_for_failover(&self, old: u16, timeout: Duration) -> io::Result<u16> {
        let mut new = None;
        wait_until("a Sentinel failover", timeout, || {
            new = self.master_port().filter(|port| {
                *port != old
                    && info_field(*port, "replication", "role").as_deref() == Some("master")
            });
            new.is_some()
        })?;
        new.ok_or_else(|| io::Error::other("no new master"))
    }
}

/// `SENTINEL master <group>` on the Sentinel at `port`, as a map.
fn sentinel_master(port: u16) -> std::collections::HashMap<String, String> {
    let out = redis_cli(port, &["SENTINEL", "master", REDIS_GROUP]).unwrap_or_default();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    lines
        .chunks(2)
        .filter_map(|pair| match pair {
            [name, value] => Some(((*name).to_owned(), (*value).to_owned())),
            _ => None,
        })
        .collect()
}

/// One field of `INFO <section>` of the Redis at `port`.
#[must_use]
pub fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    let out = redis_cli(port, &["INFO", section]).ok()?;
    out.lines().find_map(|line| {
        let value = line.trim().strip_prefix(field)?.strip_prefix(':')?;
        Some(value.to_owned())
    })
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT ARGS…` (raw output).
///
/// # Errors
/// When `redis-cli` is missing or fails.
pub fn redis_cli(port: u16, args: &[&str]) -> io::Result<String> {
    let program = find_program("redis-cli", &[])?;
    let out = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw"])
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "redis-cli {args:?} on :{port} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
