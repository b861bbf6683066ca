//! Assembling a gateway from its configuration (stores, caches, background tasks, listeners)
//! and running it until shutdown. [`Launch`] is the way in.

mod assemble;
mod launch;
mod run;
pub(crate) mod sandbox;
mod servers;
mod stores;
mod sync;
mod workers;

pub use crate::state::Stores;
pub use assemble::build_gateway;
pub(crate) use assemble::key_service;
pub use launch::{
    Addresses, AdminListener, Answers, Fault, Faults, Launch, Listening, Options, Teaching,
    check_certificates,
};
pub use run::bind;
pub(crate) use run::{run, run_with_admin};
pub use servers::ServeClock;
pub use stores::{TempDataDir, open_stores};
pub(crate) use sync::sync_caches;
