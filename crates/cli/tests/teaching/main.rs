//! The sandbox that teaches, through the real `wbauth sandbox`: every gateway
//! behaviour offline (`--config`, the `WBAUTH_GATEWAY__…` variables, `--body-match`), the
//! diagnosis of every refusal, the request log, and faults on demand.

#[path = "../common/mod.rs"]
mod common;

mod clients;
mod config;
mod diagnosis;
mod faults;
