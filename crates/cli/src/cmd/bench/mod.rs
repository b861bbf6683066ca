//! `wbauth bench`: the project's own load generator. Unlike wrk it signs every request during
//! the run (one cached keyed HMAC-SHA512 state per key, about 1 µs a request), keeps window
//! nonces within one key's ~1000 requests/s (`docs/design-decisions.md` 28) and reports its own CPU use:
//! a run where the generator was busier than 90 % is invalid (`docs/design-decisions.md` 34).
//!
//! Each connection is a keep-alive HTTP/1.1 connection (hyper's low-level client) driven as a
//! closed loop: one request in flight, the next one written as soon as the previous answer's
//! body has been read.
//!
//! The parts: [`args`] (the command line), [`plan`] (the target and everything checked before
//! anything is sent), [`keys`] (key files and which connection signs with which key),
//! [`connection`] (one connection's closed loop), [`load`] (the shared state and the whole run:
//! connect, warm up, measure), [`progress`] (the progress line), [`cpu`] (the generator's own
//! CPU use) and [`report`] (the results, as a table or JSON).

mod args;
mod connection;
mod cpu;
mod keys;
mod load;
mod plan;
mod progress;
mod report;
mod run;
#[cfg(test)]
mod tests;
mod tls;

use std::io::Write as _;

pub(crate) use self::args::BenchArgs;
use self::plan::Plan;
use self::run::drive;
use super::Context;
use crate::error::CliError;
use crate::output::print_json;

/// Runs the command: the load runs on its own runtime in its own thread, so the number of
/// threads whose CPU is measured is exactly `--threads`.
pub(crate) async fn run(args: &BenchArgs, _ctx: &Context) -> Result<(), CliError> {
    let plan = Plan::from_args(args)?;
    let json_output = args.json;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wbauth-bench".into())
        .spawn(move || {
            let runtime = if plan.threads == 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(plan.threads)
                    .thread_name("wbauth-bench")
                    .enable_all()
                    .build()
            };
            let result = match runtime {
                Ok(runtime) => runtime.block_on(drive(plan)),
                Err(e) => Err(CliError::Config(format!(
                    "cannot start the load runtime: {e}"
                ))),
            };
            let _ = tx.send(result);
        })
        .map_err(|e| CliError::Config(format!("cannot start the load thread: {e}")))?;
    let report = rx
        .await
        .map_err(|_| CliError::Config("the load thread stopped unexpectedly".into()))??;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if json_output {
        print_json(&report.to_json());
    } else {
        print!("{}", report.table());
        let _ = std::io::stdout().flush();
    }
    Ok(())
}
