//! `wbauth sandbox`: the zero-config offline double of the real service.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use whitebit_gateway::config::{BodyMatchConfig, TlsConfig};
use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key, seed_extra_keys};
use whitebit_gateway::{Faults, Launch, Options, ServeClock, TempDataDir};

use super::Context;
use crate::error::CliError;
use crate::listen::{gateway_error, shutdown_signal};
use crate::logging;
use crate::output::{print_fields, write_keys_file};

/// Runs an offline sandbox: a temporary data dir, one demo key that opens every private path,
/// built-in balances and an echo of every other verified request. Prints
/// `listening=…`, `api_key=…`, `api_secret=…` on start.
#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Use this demo API key instead of a random one.
    #[arg(long, requires = "demo_secret")]
    demo_key: Option<String>,
    /// Use this demo API secret instead of a random one.
    #[arg(long, requires = "demo_key")]
    demo_secret: Option<String>,
    /// Create this many more demo keys (random) for load tests: window mode allows about
    /// 1,000 requests per second per key.
    #[arg(long, default_value_t = 0, value_name = "N")]
    extra_keys: usize,
    /// Write every demo key as `public_key,secret` lines to this file (mode 0600), the demo
    /// key first; `wbauth bench --keys FILE` reads it.
    #[arg(long, value_name = "FILE")]
    keys_out: Option<std::path::PathBuf>,
    /// A gateway configuration (TOML) read as `wbauth serve` reads it, WBAUTH_GATEWAY__…
    /// variables over it: body match, kinds, rate limits, routes to real upstreams (paths no
    /// route serves get the built-in answers). The sandbox keeps its own listen address
    /// (--listen) and temporary data dir.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// How the body must match X-TXC-PAYLOAD (over --config and the environment): `exact`
    /// byte for byte, `json` the same JSON value (for SDKs that re-serialise the body).
    #[arg(long, value_enum, value_name = "POLICY")]
    body_match: Option<BodyMatchArg>,
    /// The demo key's kind: a [[kind]] of --config (default: `sandbox`, every path).
    #[arg(long, value_name = "KIND")]
    demo_kind: Option<String>,
    /// Faults played at random, e.g.
    /// "rate_limit=0.05,nonce=0.02,unavailable=0.01,latency=20ms..200ms,reset=0.01" (also
    /// timeout and slow_body). Injected answers are the live service's and record no nonce.
    /// A request's `X-Sandbox-Fault: NAME` header asks for one fault whatever this says.
    #[arg(long, value_name = "LIST", value_parser = parse_faults)]
    faults: Option<Faults>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate chain (PEM, leaf first);
    /// with --tls-key. Clients then need the CA that issued it (`wbauth call --cacert`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The seed of --faults' draws: the same requests in the same order meet the same faults.
    #[arg(long, value_name = "N", requires = "faults")]
    seed: Option<u64>,
}

fn parse_faults(text: &str) -> Result<Faults, String> {
    text.parse()
}

/// `--body-match`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BodyMatchArg {
    /// Byte for byte (the default).
    Exact,
    /// The same JSON value.
    Json,
}

impl From<BodyMatchArg> for BodyMatchConfig {
    fn from(value: BodyMatchArg) -> Self {
        match value {
            BodyMatchArg::Exact => BodyMatchConfig::Exact,
            BodyMatchArg::Json => BodyMatchConfig::Json,
        }
    }
}

/// Runs the command.
pub(crate) async fn run(args: &SandboxArgs, _ctx: &Context) -> Result<(), CliError> {
    let options = SandboxOptions {
        listen: args.listen,
        demo_key: args.demo_key.clone(),
        demo_secret: args.demo_secret.clone(),
        config_file: args.config.clone(),
        body_match: args.body_match.map(Into::into),
        demo_kind: args.demo_kind.clone(),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: None,
            }),
            _ => None,
        },
    };
    let dir = TempDataDir::create().map_err(gateway_error)?;
    let overrides: Vec<(String, String)> = std::env::vars().collect();
    let config = sandbox_config(&options, dir.path(), &overrides).map_err(gateway_error)?;
    logging::init(&config.log.level);
    let mut faults = args.faults.unwrap_or(Faults::NONE);
    if let Some(seed) = args.seed {
        faults = faults.with_seed(seed);
    }
    let launch_options = Options {
        faults,
        ..Options::SANDBOX
    };
    let launch = Launch::open(config, ServeClock::system(), launch_options)
        .await
        .map_err(gateway_error)?;
    let now = launch.now_ms();
    let (api_key, api_secret) = seed_demo_key(launch.stores(), &options, now)
        .await
        .map_err(gateway_error)?;
    let extra = seed_extra_keys(launch.stores(), args.extra_keys, now)
        .await
        .map_err(gateway_error)?;
    if let Some(path) = &args.keys_out {
        let all: Vec<(String, String)> = std::iter::once((api_key.clone(), api_secret.clone()))
            .chain(extra)
            .collect();
        write_keys_file(path, "wbauth sandbox demo keys", &all)?;
    }
    let listening = launch
        .name_demo_key(&api_key)
        .listen()
        .await
        .map_err(gateway_error)?;
    let listening_at = listening.public_url();
    print_fields(&[
        ("listening", listening_at.as_str()),
        ("api_key", &api_key),
        ("api_secret", &api_secret),
    ]);
    // The stores close when `run` returns, before the data dir is removed.
    let result = listening
        .run(shutdown_signal())
        .await
        .map_err(gateway_error);
    drop(dir);
    result
}
