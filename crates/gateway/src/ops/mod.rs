//! What operators watch: request counters and store gauges for `/metrics`, store health for
//! `/readyz`.

pub mod health;
pub mod metrics;
