//! # wbauth-conformance
//!
//! The conformance suite of the WhiteBIT-style private API authentication scheme
//! (`docs/protocol.md`, `docs/errors.md`, `docs/interop.md`), runnable against any server
//! that speaks it: this project's gateway, another implementation, a mock in a CI pipeline.
//! `wbauth conformance` is a thin wrapper around [`run`].
//!
//! ```no_run
//! use wbauth_conformance::{Credentials, Options, Target, run};
//! let target = Target::parse("http://127.0.0.1:8080", Credentials::new("KEY", "SECRET"), false)?;
//! let report = run(&target, &Options::default());
//! print!("{}", report.text());
//! assert_eq!(report.failed(), 0);
//! # Ok::<(), wbauth_conformance::ConformanceError>(())
//! ```
//!
//! Groups: [`Group::Errors`] (every row a client can provoke, alone and in pairs that prove
//! the order of the checks), [`Group::Interop`] (what real clients send), [`Group::Nonces`]
//! (window edges, uniqueness, strict order, refusals consume nothing), [`Group::Replay`]
//! (concurrent copies accepted exactly once), [`Group::Jwt`] (the token endpoint and its JWKS),
//! [`Group::Fiat`] (partner tokens: single use, millisecond expiry, every refusal's reason).
//! Requests are paced ([`Options::max_rps`]) and bounded; replay storms send
//! [`Options::storm`] copies at once.

mod cases;
mod error;
mod http;
mod report;
mod target;
mod wire;

pub use error::ConformanceError;
pub use http::Answer;
pub use report::{CaseReport, Report, Verdict};
pub use target::{Credentials, DEFAULT_FIAT_PATH, DEFAULT_PATH, Partner, Target};

/// A group of cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Group {
    /// Every row of the check table a client can provoke, and their order.
    Errors,
    /// What real clients send.
    Interop,
    /// Window edges, uniqueness, strict order.
    Nonces,
    /// Concurrent copies of one request.
    Replay,
    /// The token endpoint and its JWKS.
    Jwt,
    /// Fiat Gateway partner tokens (needs a partner: [`Target::partner`]).
    Fiat,
}

impl Group {
    /// Every group, in the order they run.
    pub const ALL: &'static [Group] = &[
        Group::Errors,
        Group::Interop,
        Group::Nonces,
        Group::Replay,
        Group::Jwt,
        Group::Fiat,
    ];

    /// Its name on the command line and in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Group::Errors => "errors",
            Group::Interop => "interop",
            Group::Nonces => "nonces",
            Group::Replay => "replay",
            Group::Jwt => "jwt",
            Group::Fiat => "fiat",
        }
    }

    /// Parses a comma-separated list of group names.
    ///
    /// # Errors
    /// [`ConformanceError::Usage`] naming an unknown group and the known ones.
    pub fn parse_list(list: &str) -> Result<Vec<Group>, ConformanceError> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                Group::ALL
                    .iter()
                    .copied()
                    .find(|g| g.name() == name)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
                        ConformanceError::Usage(format!(
                            "unknown group {name:?} (known: {})",
                            known.join(", ")
                        ))
                    })
            })
            .collect()
    }
}

/// How a run goes.
#[derive(Debug, Clone)]
#[must_use]
pub struct Options {
    /// The groups to run (all by default).
    pub groups: Vec<Group>,
    /// Requests started per second at most (default 50). Storms send their copies at once.
    pub max_rps: u32,
    /// Copies in each replay storm (default 16).
    pub storm: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            groups: Group::ALL.to_vec(),
            max_rps: 50,
            storm: 16,
        }
    }
}

/// Runs the chosen groups against `target`. Never panics on what the server answers: a wrong
/// or missing answer is a failed case.
pub fn run(target: &Target, options: &Options) -> Report {
    let session = target::Session::new(target, options.max_rps);
    let mut report = Report::default();
    report.notes.push(if session.clock_known {
        "the server's clock was read from GET /api/v4/public/time".to_owned()
    } else {
        "GET /api/v4/public/time did not answer: window cases use this machine's clock".to_owned()
    });
    for group in Group::ALL.iter().filter(|g| options.groups.contains(g)) {
        match group {
            Group::Errors => cases::errors::run(&session, &mut report.cases),
            Group::Interop => cases::interop::run(&session, &mut report.cases),
            Group::Nonces => cases::nonces::run(&session, &mut report.cases),
            Group::Replay => {
                cases::replay::run(&session, options.storm.clamp(2, 256), &mut report.cases)
            }
            Group::Jwt => cases::jwt::run(&session, &mut report.cases),
            Group::Fiat => cases::fiat::run(&session, &mut report.cases),
        }
    }
    report
}
