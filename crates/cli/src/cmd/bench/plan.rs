//! What a run of `wbauth bench` will do, checked before anything is sent: the target, the
//! keys, how the measured phase ends.

use std::sync::Arc;
use std::time::Duration;

use hyper::Uri;
use hyper::header::HeaderValue;
use serde_json::{Map, Value};
use whitebit_auth::sign::build_body;

use super::args::{BenchArgs, DEFAULT_DURATION, Mode};
use super::keys::{Signer, load_signers};
use crate::error::CliError;

/// The target of the run.
#[derive(Debug)]
pub(super) struct Target {
    /// The URL as given (without secrets: URLs with user info are refused).
    pub(super) url: String,
    /// Host name or address to connect to (no brackets).
    pub(super) host: String,
    /// TCP port.
    pub(super) port: u16,
    /// The `Host` header.
    pub(super) host_header: HeaderValue,
    /// The request target (origin form: path and query).
    pub(super) origin: Uri,
    /// The signed `request`: the path.
    pub(super) path: String,
    /// `https://`: TLS to the target.
    pub(super) https: bool,
}

/// Parses an `http://HOST:PORT/path` or `https://…` URL.
pub(super) fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "the URL must start with http:// or https://, e.g. http://127.0.0.1:8080/api/v4/trade-account/balance (got {url:?})"
            ));
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("the URL {url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err("the URL may not carry user information (user@host)".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("the URL {url:?} has no host"));
    }
    let origin: Uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e| format!("invalid path in {url:?}: {e}"))?;
    let host_header = HeaderValue::from_str(authority.as_str())
        .map_err(|e| format!("invalid host in {url:?}: {e}"))?;
    Ok(Target {
        url: url.to_owned(),
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        host_header,
        origin,
        path: uri.path().to_owned(),
        https,
    })
}

/// How the measured phase ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stop {
    /// After this long (requests in flight at the end still count).
    After(Duration),
    /// After exactly this many requests.
    Requests(u64),
}

/// Everything the load thread needs, checked before anything is sent.
pub(super) struct Plan {
    pub(super) target: Target,
    pub(super) connections: usize,
    pub(super) threads: usize,
    pub(super) stop: Stop,
    pub(super) warmup: Duration,
    /// `--rate`: requests started a second, in all.
    pub(super) rate: Option<u64>,
    pub(super) mode: Mode,
    pub(super) extra: Map<String, Value>,
    pub(super) signers: Vec<Arc<Signer>>,
    pub(super) progress: bool,
    /// Server processes whose CPU time is read over the measured phase (`--watch`).
    pub(super) watch: Vec<(String, u32)>,
    /// TLS to an `https://` target.
    pub(super) tls: Option<Arc<super::tls::BenchTls>>,
}

impl Plan {
    /// Checks the arguments and loads the keys.
    pub(super) fn from_args(args: &BenchArgs) -> Result<Self, CliError> {
        let target = parse_target(&args.url).map_err(CliError::Usage)?;
        let extra = match serde_json::from_str::<Value>(&args.body_extra) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(CliError::Usage(
                    "--body-extra must be a JSON object, e.g. {\"ticker\":\"BTC\"}".into(),
                ));
            }
            Err(e) => return Err(CliError::Usage(format!("--body-extra: invalid JSON: {e}"))),
        };
        // Refuses reserved names (request, nonce, nonceWindow) once, up front.
        build_body(&target.path, 0, Some(true), &extra)
            .map_err(|e| CliError::Usage(format!("--body-extra: {e}")))?;
        let connections = usize::try_from(args.connections).unwrap_or(usize::MAX);
        let signers = if args.plain {
            Vec::new()
        } else {
            load_signers(args)?
        };
        if args.mode == Mode::Strict && !args.plain && signers.len() < connections {
            return Err(CliError::Usage(format!(
                "strict mode needs one key per connection (nonces of a key must arrive in order): \
                 {} connection(s) but {} key(s); give more keys with --keys FILE or lower --connections",
                connections,
                signers.len()
            )));
        }
        let stop = match (args.requests, args.duration) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(d)) if d.is_zero() => {
                return Err(CliError::Usage("--duration must be above 0".into()));
            }
            (None, d) => Stop::After(d.unwrap_or(DEFAULT_DURATION)),
        };
        let tls = if target.https {
            let uri: hyper::Uri = args
                .url
                .parse()
                .map_err(|e| CliError::Usage(format!("invalid URL {:?}: {e}", args.url)))?;
            let tls =
                super::tls::BenchTls::new(&target.host, args.cacert.as_deref(), args.http1, uri)?;
            Some(Arc::new(tls))
        } else {
            None
        };
        Ok(Self {
            target,
            connections,
            threads: usize::from(args.threads),
            stop,
            warmup: args.warmup,
            rate: args.rate,
            mode: args.mode,
            extra,
            signers,
            progress: !args.json && !args.quiet,
            watch: args.watch.clone(),
            tls,
        })
    }
}
