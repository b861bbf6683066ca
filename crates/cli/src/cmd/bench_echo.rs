//! `wbauth bench-echo`: the upstream limit of a benchmark. A bare hyper HTTP/1.1 server with
//! the gateway's listener settings (keep-alive, header read timeout, header buffer limit)
//! on the same runtime, answering every request `200 {"ok":true}` (`docs/design-decisions.md` 34).

use std::net::SocketAddr;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use whitebit_gateway::{HttpSettings, accept};

use super::Context;
use crate::error::CliError;
use crate::listen::{bind, shutdown_signal};
use crate::output::print_fields;

/// The fixed answer.
const ANSWER: &[u8] = br#"{"ok":true}"#;

/// Runs a minimal upstream for benchmarks: every request is read to the end and answered
/// 200 with `{"ok":true}`. Prints `listening=http://HOST:PORT` on start; stops on SIGINT or
/// SIGTERM.
#[derive(Debug, Args)]
pub(crate) struct BenchEchoArgs {
    /// Listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// Runs the command.
pub(crate) async fn run(args: &BenchEchoArgs, _ctx: &Context) -> Result<(), CliError> {
    let (listener, addr) = bind(args.listen, "echo").await?;
    print_fields(&[("listening", format!("http://{addr}"))]);
    // The gateway's own connection settings.
    let builder = HttpSettings::gateway_defaults().http1();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection =
            builder.serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer));
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    Ok(())
}

/// Reads and discards the request body, then answers `200 {"ok":true}`.
async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(ANSWER)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
