//! Test support: throw-away Redis (alone, or a master with replicas and Sentinels), PostgreSQL,
//! nginx and HTTPS servers for the integration tests. Redis and PostgreSQL also run with TLS
//! and a certificate of a test CA (`RedisServer::start_tls`, `PostgresServer::start_tls`).
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
//!
//! The parts: `process` (guarded processes, free ports, bounded waits), `server_dir` (the
//! servers' data directories), and one module per server: `redis`, `sentinel` (a highly
//! available Redis), `nginx`, `postgres` (with `system_user` for running it as another user);
//! `tls`, a certificate authority made at test time and an HTTPS server that says what it saw.

mod nginx;
mod postgres;
mod process;
mod redis;
mod sentinel;
mod server_dir;
mod system_user;
mod tls;

pub use nginx::NginxServer;
pub use postgres::{PG_USER, PostgresServer};
pub use process::{free_port, wait_until};
pub use redis::RedisServer;
pub use sentinel::{REDIS_GROUP, RedisHa, info_field, redis_cli};
pub use tls::{ServerCert, TestCa, TlsEcho};

#[cfg(test)]
mod tests;
