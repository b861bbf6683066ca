//! The network edge: the public listener and forwarding, the admin API, the console, the
//! sandbox's teaching, and the HTTP helpers they share.

pub(crate) mod admin;
pub(crate) mod builtin;
pub(crate) mod console;
pub(crate) mod fast_h1;
pub(crate) mod form;
pub(crate) mod forward;
pub(crate) mod listener;
pub(crate) mod sandbox;
pub(crate) mod server;
pub(crate) mod stream;
pub(crate) mod tls;
pub(crate) mod upstream;
pub(crate) mod wire;
