//! Writing only to a primary, and only to one whose commits wait for a synchronous standby
//! when `[store] require_sync_standby = true` (README "Running highly available").
//!
//! - Every new pool connection asks `pg_is_in_recovery()` and `transaction_read_only`: a
//!   connection that landed on a standby (or a read-only server) is closed and the attempt
//!   fails, so it is never used; the next attempt connects again (through the floating
//!   address or TCP proxy, which by then may lead to the new primary).
//! - With `require_sync_standby`, start-up reads `synchronous_standby_names` and
//!   `synchronous_commit` and refuses to run unless a commit waits for a standby.

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};

use crate::StoreError;

/// `true` when the server cannot take writes: a standby, or `default_transaction_read_only`.
const READ_ONLY_SQL: &str =
    "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'";

/// The `after_connect` check: a read-only server's connection is refused.
pub(crate) async fn refuse_read_only(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let read_only: bool = sqlx::query_scalar(READ_ONLY_SQL).fetch_one(conn).await?;
    if read_only {
        return Err(sqlx::Error::Protocol(
            "the server is read-only (a standby in recovery, or transaction_read_only = on): \
             the connection is dropped and another is opened; point the store's address at \
             the current primary (floating address or TCP proxy)"
                .into(),
        ));
    }
    Ok(())
}

/// Start-up: one connection says whether the server takes writes, so that a store pointed
/// at a standby says so instead of timing out (the pool keeps refusing its connections).
///
/// # Errors
/// [`StoreError::Refused`] for a read-only server; [`StoreError::Unavailable`] when it cannot
/// be reached within `timeout`.
pub(crate) async fn check_writable(
    options: &PgConnectOptions,
    shown: &str,
    timeout: Duration,
) -> Result<(), StoreError> {
    let probe = async {
        let mut conn = PgConnection::connect_with(options).await?;
        let read_only: bool = sqlx::query_scalar(READ_ONLY_SQL)
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(read_only)
    };
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(false)) => Ok(()),
        Ok(Ok(true)) => Err(StoreError::Refused(format!(
            "PostgreSQL at {shown} is read-only (a standby in recovery, or \
             default_transaction_read_only = on): the gateway writes only to a primary. Point \
             the URL at the current primary (its floating address or the TCP proxy in front \
             of it)"
        ))),
        Ok(Err(e)) => Err(super::db_error(&format!("cannot connect to {shown}"), e)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot connect to {shown}: no connection within {timeout:?}"
        ))),
    }
}

/// The `synchronous_commit` values that make a commit wait for a synchronous standby to have
/// flushed (`on`) or applied (`remote_apply`) it.
const WAITING_COMMITS: [&str; 2] = ["on", "remote_apply"];

/// Start-up check of `require_sync_standby`: commits on `pool` wait for a synchronous standby.
///
/// # Errors
/// [`StoreError::Refused`] saying which setting is wrong and what to set;
/// [`StoreError::Unavailable`] when the settings cannot be read.
pub(crate) async fn check_sync_standby(pool: &PgPool, shown: &str) -> Result<(), StoreError> {
    let read = |name: &'static str| async move {
        sqlx::query_scalar::<_, String>("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(pool)
            .await
            .map_err(|e| super::db_error(&format!("{shown}: reading {name}"), e))
    };
    let names = read("synchronous_standby_names").await?;
    let commit = read("synchronous_commit").await?;
    let mut wrong = Vec::new();
    if names.trim().is_empty() {
        wrong.push(
            "synchronous_standby_names is empty (no standby is synchronous); set it to the \
             standby's application_name, e.g. 'FIRST 1 (standby1)' or 'ANY 1 (s1, s2)'"
                .to_owned(),
        );
    }
    if !WAITING_COMMITS.contains(&commit.as_str()) {
        wrong.push(format!(
            "synchronous_commit is {commit} (a commit does not wait for the standby); set it \
             to on or remote_apply"
        ));
    }
    if wrong.is_empty() {
        tracing::info!(
            target: "wbauth::store",
            postgres = %shown,
            synchronous_standby_names = %names,
            synchronous_commit = %commit,
            "commits wait for a synchronous standby"
        );
        return Ok(());
    }
    Err(StoreError::Refused(format!(
        "store.require_sync_standby = true, but PostgreSQL at {shown} does not make commits \
         wait for a synchronous standby: {}. Change postgresql.conf on the primary (and \
         reload), or remove require_sync_standby and accept that a failover may lose the \
         last commits (README \"Running highly available\")",
        wrong.join("; ")
    )))
}
