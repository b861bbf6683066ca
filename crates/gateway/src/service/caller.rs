//! [`Caller`]: who asks for an operation.

use std::net::IpAddr;

/// Who asks for an operation: recorded in the audit log; the address counts wrong codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// Recorded as the audit entry's actor (`admin@127.0.0.1`, `system`, …).
    pub(crate) actor: String,
    /// The address the request came from, when there is one.
    pub(crate) ip: Option<IpAddr>,
    /// An account holder in the web console (wrong codes count apart from the admin API's).
    pub(crate) console: bool,
}

impl Caller {
    /// A caller through the admin API (or the gateway itself).
    #[must_use]
    pub(crate) fn new(actor: impl Into<String>, ip: Option<IpAddr>) -> Self {
        Self {
            actor: actor.into(),
            ip,
            console: false,
        }
    }

    /// An account holder in the web console.
    #[must_use]
    pub(crate) fn console(actor: impl Into<String>, ip: Option<IpAddr>) -> Self {
        Self {
            console: true,
            ..Self::new(actor, ip)
        }
    }

    /// The gateway itself (background tasks).
    #[must_use]
    pub(crate) fn system() -> Self {
        Self::new("system", None)
    }
}
