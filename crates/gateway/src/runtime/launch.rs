//! Starting a gateway in three calls: [`Launch::open`] opens the stores, [`Launch::listen`]
//! builds the gateway and binds its listeners, [`Listening::run`] serves until shutdown.
//!
//! ```no_run
//! # async fn start(config: whitebit_gateway::config::Config) -> Result<(), whitebit_gateway::GatewayError> {
//! use whitebit_gateway::{Launch, Options, ServeClock};
//! let launch = Launch::open(config, ServeClock::new(), Options::default()).await?;
//! let listening = launch.listen().await?;
//! println!("listening on http://{}", listening.addresses().public);
//! listening.run(std::future::pending()).await
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::run::PublicSide;
use super::servers::{
    AdminServer, ConsoleServer, Reloading, ServeClock, admin_router_for, metrics_router,
};
use super::{Stores, bind, build_gateway, key_service, open_stores, run, run_with_admin};
use crate::config::Config;
use crate::edge::admin::{ADMIN_TOKEN_ENV, AdminHosts, AdminToken};
use crate::edge::sandbox::Teacher;
pub use crate::edge::sandbox::faults::{Fault, Faults};
use crate::edge::tls::{Certificates, ListenerTls};
use crate::error::GatewayError;
use crate::service::KeyService;
use crate::service::reload::{LogFilter, Reloader};
pub use crate::verify::Answers;
use crate::verify::Gateway;

/// Whether the admin listener (management API, health, metrics, and the web console when
/// `[console] listen` is set) runs beside the public one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdminListener {
    /// On `[admin] addr`, with the admin token from `WBAUTH_ADMIN_TOKEN` or the data dir.
    #[default]
    On,
    /// Only the public listener (the sandbox).
    Off,
}

/// What the public listener adds for people learning the API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Teaching {
    /// Nothing: the live service's answers and headers only (`wbauth serve`).
    #[default]
    Off,
    /// The sandbox's: every refusal diagnosed by the doctor (`X-Sandbox-Diagnosis`,
    /// `X-Sandbox-Hint`, the full report on stderr), the request log at
    /// `GET /sandbox/requests`, and faults on demand (`X-Sandbox-Fault`, [`Options::faults`]).
    /// Answer bodies stay byte for byte; accepted requests get no extra header.
    DiagnoseRefusals,
}

/// How [`Launch`] assembles a gateway. The default is `wbauth serve`'s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Options {
    /// Who answers verified requests.
    pub answers: Answers,
    /// Whether the admin listener runs.
    pub admin: AdminListener,
    /// Whether refusals are diagnosed (and the other teaching behaviours run).
    pub teaching: Teaching,
    /// The faults played at random (only with [`Teaching::DiagnoseRefusals`]).
    pub faults: Faults,
}

impl Options {
    /// The sandbox's: built-in answers, no admin listener, refusals diagnosed, no random
    /// faults.
    pub const SANDBOX: Self = Self {
        answers: Answers::BuiltIn,
        admin: AdminListener::Off,
        teaching: Teaching::DiagnoseRefusals,
        faults: Faults::NONE,
    };
}

/// A gateway whose stores are open: seed keys through [`Launch::stores`], then
/// [`Launch::listen`].
#[derive(Debug)]
#[must_use]
pub struct Launch {
    config: Config,
    stores: Stores,
    clock: ServeClock,
    options: Options,
    demo_key: Option<String>,
    reload: Option<ReloadFrom>,
}

/// Where a live reload reads the configuration, and the logger it may adjust.
struct ReloadFrom {
    file: Option<PathBuf>,
    log: Option<Arc<dyn LogFilter>>,
}

impl std::fmt::Debug for ReloadFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadFrom")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Launch {
    /// Opens the stores `[store]` names (see [`super::open_stores`]).
    ///
    /// # Errors
    /// A store that cannot be opened, or a configuration the stores refuse.
    pub async fn open(
        config: Config,
        clock: ServeClock,
        options: Options,
    ) -> Result<Self, GatewayError> {
        let stores = open_stores(&config, clock.clock.now_ms()).await?;
        Ok(Self {
            config,
            stores,
            clock,
            options,
            demo_key: None,
            reload: None,
        })
    }

    /// Turns on live reload (`SIGHUP`, and `POST /admin/reload` on the admin listener): the
    /// configuration is read again from `file` (`None`: the defaults) with the process's
    /// `WBAUTH_GATEWAY__…` variables, validated, and put in force from the next request; a
    /// change to `[log] level` is passed to `log`.
    pub fn reload_from(mut self, file: Option<PathBuf>, log: Option<Arc<dyn LogFilter>>) -> Self {
        self.reload = Some(ReloadFrom { file, log });
        self
    }

    /// The key a diagnosis names when a request's key is unknown ("this sandbox's key is …");
    /// a public key, never a secret.
    pub fn name_demo_key(mut self, public_key: &str) -> Self {
        self.demo_key = Some(public_key.to_owned());
        self
    }

    /// The opened stores (to seed keys before listening).
    #[must_use]
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Now (Unix ms) on the gateway's clock.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.clock.clock.now_ms()
    }

    /// Loads the admin token (with the admin listener), binds the public listener, the admin
    /// listener and the console's when configured, and builds the gateway from the stores.
    ///
    /// # Errors
    /// An address that cannot be bound, an unreadable admin token, or a configuration the
    /// gateway cannot be built from.
    pub async fn listen(self) -> Result<Listening, GatewayError> {
        let Self {
            config,
            stores,
            clock,
            options,
            demo_key,
            reload,
        } = self;
        let teacher = match options.teaching {
            Teaching::Off => None,
            Teaching::DiagnoseRefusals => Some(Arc::new(Teacher::new(options.faults, demo_key))),
        };
        let token = match options.admin {
            AdminListener::On => {
                let env_token = std::env::var(ADMIN_TOKEN_ENV).ok();
                Some(AdminToken::load_or_create(
                    &config.store.data_dir,
                    env_token.as_deref(),
                )?)
            }
            AdminListener::Off => None,
        };
        let name = match options.answers {
            Answers::Upstreams => "public",
            Answers::BuiltIn => "sandbox",
        };
        // Certificates are read before anything is bound: a missing file is said at once.
        let mut certificates = Certificates::default();
        let public_tls = listener_tls(name, config.listen.tls.as_ref(), &mut certificates)?;
        let admin_tls = match token {
            Some(_) => listener_tls("admin", config.admin.tls.as_ref(), &mut certificates)?,
            None => None,
        };
        let public = bind(config.listen.addr, name).await?;
        let admin_bound = match token {
            Some(token) => {
                let listener = bind(config.admin.addr, "admin").await?;
                let addr = local_addr(&listener)?;
                Some((token, listener, addr, AdminHosts::new(addr, &config.admin)))
            }
            None => None,
        };
        let gateway = build_gateway(config, &stores, clock.clock.clone(), options.answers).await?;
        let console = match &admin_bound {
            Some(_) => {
                let tls = gateway.config().console.tls.clone();
                let console_tls = listener_tls("console", tls.as_ref(), &mut certificates)?;
                Some(console_tls)
            }
            None => None,
        };
        let reloader = reload.map(|from| {
            let reloader = Reloader::new(
                gateway.clone(),
                from.file,
                from.log,
                options.answers == Answers::BuiltIn,
            );
            Arc::new(if certificates.is_empty() {
                reloader
            } else {
                reloader.also_reloading(Arc::new(certificates.clone()))
            })
        });
        // Installed before the addresses are printed: from then on SIGHUP reloads instead of
        // ending the process.
        let hangups = match &reloader {
            Some(reloader) => Some(Hangups::install(reloader.clone())?),
            None => None,
        };
        let mut addresses = Addresses {
            public: local_addr(&public)?,
            admin: None,
            console: None,
        };
        let admin = match admin_bound {
            Some((token, listener, addr, hosts)) => {
                let service = Arc::new(key_service(&gateway));
                let console_tls = console.flatten();
                let console =
                    ConsoleServer::bind_if_configured(&gateway, &service, console_tls).await?;
                if let Some(console) = &console {
                    addresses.console = Some(local_addr(&console.listener)?);
                }
                addresses.admin = Some(addr);
                let token_origin = token.origin().to_owned();
                let router = admin_router_for(
                    service.clone(),
                    &stores,
                    token,
                    &clock,
                    Some(metrics_router(gateway.clone())),
                    hosts,
                    Reloading {
                        reloader: reloader.clone(),
                        certificates: certificates.clone(),
                    },
                );
                Some(AdminSide {
                    server: AdminServer {
                        listener,
                        tls: admin_tls,
                        router,
                    },
                    console,
                    service,
                    token_origin,
                })
            }
            None => None,
        };
        Ok(Listening {
            gateway,
            stores,
            public,
            public_tls,
            admin,
            addresses,
            teacher,
            hangups,
            certificates,
        })
    }
}

/// Where a [`Listening`] gateway answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// The public listener (`[listen] addr`; port 0 picks a free port).
    pub public: SocketAddr,
    /// The admin listener, when it runs.
    pub admin: Option<SocketAddr>,
    /// The web console's listener, when `[console] listen` is set.
    pub console: Option<SocketAddr>,
}

/// A gateway with its listeners bound; [`Listening::run`] serves them.
#[derive(Debug)]
#[must_use]
pub struct Listening {
    gateway: Arc<Gateway>,
    stores: Stores,
    public: TcpListener,
    public_tls: Option<Arc<ListenerTls>>,
    admin: Option<AdminSide>,
    addresses: Addresses,
    teacher: Option<Arc<Teacher>>,
    hangups: Option<Hangups>,
    /// Every TLS listener's, watched for changes while serving.
    certificates: Certificates,
}

#[derive(Debug)]
struct AdminSide {
    server: AdminServer,
    console: Option<ConsoleServer>,
    service: Arc<KeyService>,
    token_origin: String,
}

impl Listening {
    /// The bound addresses.
    #[must_use]
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// The public listener's base URL: `https://ADDR` with TLS, else `http://ADDR`.
    #[must_use]
    pub fn public_url(&self) -> String {
        url(self.public_tls.is_some(), self.addresses.public)
    }

    /// The admin listener's base URL, when it runs.
    #[must_use]
    pub fn admin_url(&self) -> Option<String> {
        let admin = self.admin.as_ref()?;
        Some(url(admin.server.tls.is_some(), self.addresses.admin?))
    }

    /// The web console's base URL, when it runs.
    #[must_use]
    pub fn console_url(&self) -> Option<String> {
        let console = self.admin.as_ref()?.console.as_ref()?;
        Some(url(console.tls.is_some(), self.addresses.console?))
    }

    /// How many API keys the gateway holds.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.gateway.key_count()
    }

    /// Where the admin token came from (the environment or its file), when the admin listener
    /// runs.
    #[must_use]
    pub fn admin_token_origin(&self) -> Option<&str> {
        self.admin.as_ref().map(|a| a.token_origin.as_str())
    }

    /// Serves every listener and the background tasks until `shutdown`, then drains requests
    /// and flushes the stores.
    ///
    /// # Errors
    /// A listener that failed, or a store that could not be flushed.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), GatewayError> {
        let reloading = self.hangups.take().map(Hangups::spawn);
        let watching = (!self.certificates.is_empty()).then(|| {
            tokio::spawn(std::mem::take(&mut self.certificates).watch(CERTIFICATE_POLL_INTERVAL))
        });
        let served = self.serve(shutdown).await;
        for task in [reloading, watching].into_iter().flatten() {
            task.abort();
        }
        served
    }

    async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), GatewayError> {
        match self.admin {
            Some(admin) => {
                run_with_admin(
                    self.gateway,
                    &self.stores,
                    PublicSide {
                        listener: self.public,
                        tls: self.public_tls,
                        teacher: self.teacher,
                    },
                    admin.server,
                    admin.console,
                    admin.service,
                    shutdown,
                )
                .await
            }
            None => {
                run(
                    self.gateway,
                    &self.stores,
                    PublicSide {
                        listener: self.public,
                        tls: self.public_tls,
                        teacher: self.teacher,
                    },
                    shutdown,
                )
                .await
            }
        }
    }
}

fn url(tls: bool, addr: SocketAddr) -> String {
    if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

/// Reads every listener's certificate files as a start would (`wbauth serve --check`).
///
/// # Errors
/// The first listener whose files cannot be used, and why.
pub fn check_certificates(config: &Config) -> Result<(), GatewayError> {
    let mut all = Certificates::default();
    listener_tls("public", config.listen.tls.as_ref(), &mut all)?;
    listener_tls("admin", config.admin.tls.as_ref(), &mut all)?;
    listener_tls("console", config.console.tls.as_ref(), &mut all)?;
    Ok(())
}

/// How often the certificate files are checked for changes.
const CERTIFICATE_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads a listener's certificate files when it has TLS, and adds it to `all`.
fn listener_tls(
    listener: &'static str,
    tls: Option<&crate::config::TlsConfig>,
    all: &mut Certificates,
) -> Result<Option<Arc<ListenerTls>>, GatewayError> {
    let Some(files) = tls else {
        return Ok(None);
    };
    let tls = ListenerTls::load(listener, files)?;
    all.push(tls.clone());
    Ok(Some(tls))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, GatewayError> {
    listener.local_addr().map_err(|source| GatewayError::Io {
        context: "reading a bound listener's address".into(),
        source,
    })
}

/// `SIGHUP` received as a request to reload (on other systems: nothing).
#[derive(Debug)]
struct Hangups {
    reloader: Arc<Reloader>,
    #[cfg(unix)]
    signals: tokio::signal::unix::Signal,
}

impl Hangups {
    fn install(reloader: Arc<Reloader>) -> Result<Self, GatewayError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::hangup()).map_err(|source| GatewayError::Io {
                context: "listening for SIGHUP (live reload)".into(),
                source,
            })?;
            Ok(Self { reloader, signals })
        }
        #[cfg(not(unix))]
        Ok(Self { reloader })
    }

    /// Reloads on every `SIGHUP` until aborted (the outcome is logged by the reloader).
    fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                let Self {
                    reloader,
                    mut signals,
                } = self;
                while signals.recv().await.is_some() {
                    let _ = reloader.reload().await;
                }
            }
            #[cfg(not(unix))]
            drop(self);
        })
    }
}
