//! How the Redis nonce store reaches its master.
//!
//! - `redis://…` / `rediss://…`: one address, through a [`ConnectionManager`] that reconnects
//!   to it by itself.
//! - `redis+sentinel://[user[:password]@]host:port[,host:port…]/<master group>[/<db>]`: the
//!   master of a Sentinel group. The Sentinels are asked where the master is (and the answer
//!   is checked with `ROLE`); after any failed or timed-out operation the next one asks them
//!   again, so the store follows a failover without a restart. The user name and password
//!   are the Redis nodes'; the Sentinels are contacted without them.
//!
//! One multiplexed connection is enough while nothing waits; with `WAIT` each waiting write
//! holds its connection until the replicas answer, so the store then opens several
//! ([`Connections`], used in turn).
//!
//! Everything here runs inside the caller's operation timeout.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use ::redis::{IntoConnectionInfo, RedisConnectionInfo, RedisResult};

use crate::remote::{PERCENT_ENCODE, scrub_url_secrets};
use crate::{RemoteOptions, StoreError};

/// The scheme of a Sentinel URL.
pub(crate) const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// The port of a Sentinel named without one.
const SENTINEL_PORT: u16 = 26379;

/// A `redis+sentinel://` URL, read.
#[derive(Debug)]
pub(crate) struct SentinelUrl {
    /// `host:port` of every Sentinel.
    pub(crate) sentinels: Vec<String>,
    /// The master group's name.
    pub(crate) master: String,
    /// Database, user and password for the Redis nodes.
    node: RedisConnectionInfo,
}

/// Reads a `redis+sentinel://` URL; the message says what is wrong (without the password:
/// the caller scrubs it).
pub(crate) fn parse_sentinel_url(url: &str) -> Result<SentinelUrl, String> {
    let rest = url
        .strip_prefix(SENTINEL_SCHEME)
        .ok_or_else(|| format!("a Sentinel URL starts with {SENTINEL_SCHEME}"))?;
    if rest.contains(['?', '#']) {
        return Err("a Sentinel URL takes no query or fragment".into());
    }
    let (authority, path) = rest.split_once('/').ok_or(
        "name the master group after the Sentinels: \
         redis+sentinel://host:port,host:port/<master group>[/<db>]",
    )?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return Err("an empty Sentinel address in the list (host:port,host:port)".into());
        }
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.contains(']'));
        let address = if has_port {
            host.to_owned()
        } else {
            format!("{host}:{SENTINEL_PORT}")
        };
        let (_, port) = address.rsplit_once(':').unwrap_or_default();
        if port.parse::<u16>().is_err() {
            return Err(format!("Sentinel address {address:?} has no valid port"));
        }
        sentinels.push(address);
    }
    let mut segments = path.split('/');
    let master = segments.next().unwrap_or_default().to_owned();
    if master.is_empty() {
        return Err("the master group's name is missing after the Sentinels".into());
    }
    let db = match segments.next() {
        None | Some("") => 0,
        Some(db) => db
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| format!("database {db:?} is not a number"))?,
    };
    if segments.next().is_some() {
        return Err("too many path segments (expected /<master group>[/<db>])".into());
    }
    // The Redis nodes' credentials, percent-decoded as the redis crate decodes redis:// URLs.
    let node_url = match userinfo {
        Some(userinfo) => format!("redis://{userinfo}@127.0.0.1/{db}"),
        None => format!("redis://127.0.0.1/{db}"),
    };
    let node = node_url
        .into_connection_info()
        .map_err(|e| format!("cannot read the user name and password: {e}"))?
        .redis_settings()
        .clone();
    Ok(SentinelUrl {
        sentinels,
        master,
        node,
    })
}

/// Connects to the master of the Sentinel group `url` names, within the connect timeout.
///
/// # Errors
/// [`StoreError::Unavailable`] saying why, without the URL's secrets.
pub(crate) async fn open_sentinel(
    url: &str,
    shown: &str,
    options: &RemoteOptions,
    config: ConnectionManagerConfig,
    connections: usize,
) -> Result<Link, StoreError> {
    let scrub = |text: String| scrub_url_secrets(&text, url);
    let parsed = parse_sentinel_url(url).map_err(|e| {
        StoreError::Unavailable(scrub(format!(
            "{shown} is not a usable Redis Sentinel URL ({e}; {PERCENT_ENCODE})"
        )))
    })?;
    tokio::time::timeout(
        options.connect_timeout,
        Link::sentinel(parsed, config, connections),
    )
    .await
    .map_err(|_| {
        StoreError::Unavailable(format!(
            "cannot reach the master through the Sentinels of {shown}: no connection within \
             {:?}",
            options.connect_timeout
        ))
    })?
    .map_err(|e| {
        StoreError::Unavailable(scrub(format!(
            "cannot reach the master through the Sentinels of {shown}: {e}. Check that the \
             Sentinels run at the addresses given and monitor a master group of that name"
        )))
    })
}

/// The connection in use and how it was obtained.
pub(crate) struct Lease {
    pub(crate) con: ConnectionManager,
    generation: u64,
}

impl Lease {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

/// Connections to one server, used in turn.
pub(crate) struct Connections {
    all: Vec<ConnectionManager>,
    next: AtomicUsize,
}

impl Connections {
    /// Opens `n` (at least one) connections through `client`.
    pub(crate) async fn open(
        client: &::redis::Client,
        config: &ConnectionManagerConfig,
        n: usize,
    ) -> RedisResult<Self> {
        let mut all = Vec::with_capacity(n.max(1));
        for _ in 0..n.max(1) {
            all.push(ConnectionManager::new_with_config(client.clone(), config.clone()).await?);
        }
        Ok(Self {
            all,
            next: AtomicUsize::new(0),
        })
    }

    fn pick(&self) -> ConnectionManager {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.all.len();
        self.all[at].clone()
    }
}

/// The way to the master.
pub(crate) enum Link {
    /// One address.
    Fixed(Connections),
    /// The master of a Sentinel group, looked up again after a failure.
    Sentinel(Box<Follower>),
}

/// Follows the master of a Sentinel group.
pub(crate) struct Follower {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    config: ConnectionManagerConfig,
    /// Connections opened to each master.
    connections: usize,
    group: String,
    current: Mutex<Current>,
}

struct Current {
    generation: u64,
    managers: Option<std::sync::Arc<Connections>>,
    /// `host:port` of the master in use.
    master: String,
    /// An operation on `managers` failed: look the master up again before the next one.
    stale: bool,
}

impl Link {
    /// Connects to the master named by the Sentinel URL `url` (read by
    /// [`parse_sentinel_url`]).
    pub(crate) async fn sentinel(
        url: SentinelUrl,
        config: ConnectionManagerConfig,
        connections: usize,
    ) -> RedisResult<Self> {
        let sentinels: Vec<String> = url
            .sentinels
            .iter()
            .map(|address| format!("redis://{address}"))
            .collect();
        let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(url.node);
        let client = SentinelClient::build(
            sentinels,
            url.master.clone(),
            Some(node),
            SentinelServerType::Master,
        )?;
        let follower = Follower {
            sentinel: tokio::sync::Mutex::new(client),
            config,
            connections,
            group: url.master,
            current: Mutex::new(Current {
                generation: 0,
                managers: None,
                master: String::new(),
                stale: true,
            }),
        };
        follower.refresh().await?;
        Ok(Self::Sentinel(Box::new(follower)))
    }

    /// The connection to use now: for a Sentinel group, after a failure, the master the
    /// Sentinels name now.
    pub(crate) async fn connection(&self) -> RedisResult<Lease> {
        match self {
            Link::Fixed(connections) => Ok(Lease {
                con: connections.pick(),
                generation: 0,
            }),
            Link::Sentinel(follower) => follower.connection().await,
        }
    }

    /// An operation on the connection of `generation` failed or timed out.
    pub(crate) fn failed(&self, generation: u64) {
        if let Link::Sentinel(follower) = self {
            let mut current = follower.lock();
            if current.generation == generation {
                current.stale = true;
            }
        }
    }

    /// `host:port` of the master in use (Sentinel groups only).
    pub(crate) fn master(&self) -> Option<String> {
        match self {
            Link::Fixed(_) => None,
            Link::Sentinel(follower) => Some(follower.lock().master.clone()),
        }
    }
}

impl Follower {
    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self) -> Option<Lease> {
        let current = self.lock();
        match (&current.managers, current.stale) {
            (Some(managers), false) => Some(Lease {
                con: managers.pick(),
                generation: current.generation,
            }),
            _ => None,
        }
    }

    async fn connection(&self) -> RedisResult<Lease> {
        match self.fresh() {
            Some(lease) => Ok(lease),
            None => self.refresh().await,
        }
    }

    /// Asks the Sentinels where the master is and connects to it (one caller at a time; the
    /// others then find the fresh connection).
    async fn refresh(&self) -> RedisResult<Lease> {
        let mut sentinel = self.sentinel.lock().await;
        if let Some(lease) = self.fresh() {
            return Ok(lease);
        }
        let client = sentinel.async_get_client().await?;
        drop(sentinel);
        let address = client.get_connection_info().addr().to_string();
        let managers =
            std::sync::Arc::new(Connections::open(&client, &self.config, self.connections).await?);
        let mut current = self.lock();
        current.generation += 1;
        current.managers = Some(managers.clone());
        current.stale = false;
        if current.master != address {
            tracing::info!(
                target: "wbauth::store",
                group = %self.group,
                master = %address,
                "the Redis nonce store uses the master the Sentinels name"
            );
            current.master = address;
        }
        Ok(Lease {
            con: managers.pick(),
            generation: current.generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_sentinel_url;

    #[test]
    fn sentinel_urls_are_read() {
        let url = parse_sentinel_url("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/3")
            .expect("valid");
        assert_eq!(url.sentinels, ["127.0.0.1:26379", "127.0.0.1:26380"]);
        assert_eq!(url.master, "mymaster");
        assert_eq!(url.node.db(), 3);
        assert_eq!(url.node.password(), None);

        let url = parse_sentinel_url("redis+sentinel://u:p%40ss@s1,s2:1/group").expect("valid");
        assert_eq!(url.sentinels, ["s1:26379", "s2:1"]);
        assert_eq!((url.node.db(), url.node.username()), (0, Some("u")));
        assert_eq!(url.node.password(), Some("p@ss"));

        // Shown without the password, which is found for scrubbing.
        let url = "redis+sentinel://u:s3cret@s1:1,s2:2/group/0";
        assert_eq!(
            crate::redact_url(url),
            "redis+sentinel://***@s1:1,s2:2/group/0"
        );
        assert!(crate::remote::url_secrets(url).contains(&"s3cret".to_owned()));
        let plain = "redis+sentinel://s1:1,s2:2/group/0";
        assert_eq!(crate::redact_url(plain), plain);

        for (bad, says) in [
            ("redis+sentinel://127.0.0.1:26379", "master group"),
            ("redis+sentinel://127.0.0.1:26379/", "name is missing"),
            ("redis+sentinel://a:1,,b:2/m", "empty Sentinel address"),
            ("redis+sentinel://a:x/m", "valid port"),
            ("redis+sentinel://a:1/m/x", "not a number"),
            ("redis+sentinel://a:1/m/0/1", "too many"),
            ("redis+sentinel://a:1/m?x=1", "no query"),
        ] {
            let e = parse_sentinel_url(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
