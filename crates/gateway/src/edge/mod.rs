//! The network edge: the public listener and forwarding, the admin API, the console, and the
//! HTTP helpers they share.

pub mod admin;
pub mod builtin;
pub mod console;
pub(crate) mod form;
pub mod forward;
pub mod server;
