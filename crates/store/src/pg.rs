//! What the PostgreSQL stores share: one set of migrations (`migrations/postgres/`, applied by
//! whichever store connects first, under sqlx's advisory lock), the connection pool, the
//! order-preserving u64 mapping and error mapping.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{RemoteOptions, StoreError, redact_url};

/// Every PostgreSQL table of the gateway: key store and nonce store. Both stores run the same
/// migrator, so they may share one database or use two.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A u64 as an order-preserving signed BIGINT: `(n XOR 2^63) as i64` (`docs/design-decisions.md` 6), so
/// SQL's `<` on the column is `<` on the nonces.
#[must_use]
pub const fn u64_to_ordered_i64(n: u64) -> i64 {
    i64::from_ne_bytes((n ^ (1 << 63)).to_ne_bytes())
}

/// The inverse of [`u64_to_ordered_i64`].
#[must_use]
pub const fn ordered_i64_to_u64(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes()) ^ (1 << 63)
}

/// Connects a pool to `url` with the configured size and timeouts and applies the migrations.
///
/// # Errors
/// [`StoreError::Unavailable`] when the server cannot be reached in time (the URL's password is
/// never part of the message); [`StoreError::Corrupt`] when the schema is newer than this
/// version or the migrations fail.
pub async fn connect(url: &str, options: &RemoteOptions) -> Result<PgPool, StoreError> {
    let shown = redact_url(url);
    let connect_options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
        StoreError::Unavailable(format!(
            "{shown} is not a usable PostgreSQL URL ({}): {}",
            super::PERCENT_ENCODE,
            strip(&e)
        ))
    })?;
    let connect_options = connect_options.application_name("wbauth");
    let pool = PgPoolOptions::new()
        .max_connections(options.pool_size)
        .min_connections(0)
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect_options)
        .await
        .map_err(|e| db_error(&format!("cannot connect to {shown}"), e))?;
    MIGRATOR.run(&pool).await.map_err(|e| {
        StoreError::Corrupt(format!(
            "cannot migrate the PostgreSQL schema at {shown}: {e}"
        ))
    })?;
    Ok(pool)
}

/// A sqlx error without anything that could carry a URL or a bound value.
fn strip(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid configuration".to_owned(),
        other => other.to_string(),
    }
}

/// Maps a sqlx error. PostgreSQL's messages never contain bound values (secrets travel only as
/// bound parameters), and connection errors name no password.
#[must_use]
pub fn db_error(context: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Conflict(format!("{context}: {}", e.message()))
        }
        sqlx::Error::Database(e) => StoreError::Unavailable(format!("{context}: {}", e.message())),
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }) => StoreError::Corrupt(format!("{context}: {e}")),
        e => StoreError::Unavailable(format!("{context}: {}", strip(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_preserves_order_and_round_trips() {
        let samples = [
            0,
            1,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            i64::MAX as u64,
            (i64::MAX as u64) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for pair in samples.windows(2) {
            assert!(
                u64_to_ordered_i64(pair[0]) < u64_to_ordered_i64(pair[1]),
                "{pair:?}"
            );
        }
        for n in samples {
            assert_eq!(ordered_i64_to_u64(u64_to_ordered_i64(n)), n);
        }
        assert_eq!(u64_to_ordered_i64(0), i64::MIN);
        assert_eq!(u64_to_ordered_i64(u64::MAX), i64::MAX);
    }
}
