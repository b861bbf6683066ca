//! What operators watch: request counters and store gauges for `/metrics`, store health for
//! `/readyz`.

pub(crate) mod health;
pub(crate) mod metrics;
