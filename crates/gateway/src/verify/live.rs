//! The settings a live reload replaces (`docs/operations.md`): the configuration and what is
//! derived from it, read by a request as one snapshot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use whitebit_auth::BodyMatch;

use crate::config::Config;
use crate::error::GatewayError;
use crate::ip::{IpRule, client_ip};
use crate::tokens::TokenIssuer;
use crate::verify::rate::RateLimiter;
use crate::verify::routing::{Answers, Routes};

/// The settings a live reload replaces as a whole (`docs/operations.md`): the configuration
/// and what is derived from it. A request takes one snapshot ([`Gateway::live`]) and finishes
/// under it, whatever reload happens meanwhile.
#[derive(Debug)]
pub(crate) struct Live {
    pub(super) config: Arc<Config>,
    pub(super) body_match: BodyMatch,
    /// Kind → path patterns.
    pub(super) kinds: HashMap<String, Vec<String>>,
    pub(super) trusted_proxies: Vec<IpRule>,
    /// Where requests go (private, Fiat and public routes).
    pub(super) routes: Routes,
    /// Kept across a reload that leaves `[rate_limit]` as it was, so counts carry on.
    pub(super) rate: Arc<RateLimiter>,
    /// Issues and verifies the gateway's own tokens.
    pub(super) tokens: Arc<TokenIssuer>,
}

impl Live {
    /// The settings of `config`; `rate` is reused when its limits are the same.
    pub(super) fn new(
        config: Config,
        tokens: Arc<TokenIssuer>,
        answers: Answers,
        previous: Option<&Live>,
    ) -> Result<Self, GatewayError> {
        let trusted_proxies = config
            .proxy
            .trusted
            .iter()
            .map(|t| IpRule::parse(t).map_err(GatewayError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let kinds = config
            .kinds
            .iter()
            .map(|k| (k.name.clone(), k.paths.clone()))
            .collect();
        let rate = match previous {
            Some(old) if old.config.rate_limit == config.rate_limit => old.rate.clone(),
            _ => Arc::new(RateLimiter::new(config.rate_limit.kinds.clone())),
        };
        Ok(Self {
            body_match: config.verify.body_match.into(),
            kinds,
            trusted_proxies,
            routes: Routes::new(&config, answers).map_err(GatewayError::Invalid)?,
            rate,
            tokens,
            config: Arc::new(config),
        })
    }

    /// The configuration of this snapshot.
    #[must_use]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The gateway's own token issuer (the token endpoint, the JWKS document).
    #[must_use]
    pub(crate) fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    /// The token issuer, to keep it across a reload.
    #[must_use]
    pub(crate) fn shared_tokens(&self) -> Arc<TokenIssuer> {
        self.tokens.clone()
    }

    /// The client address (`docs/design-decisions.md` 11).
    #[must_use]
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted_proxies.is_empty() {
            return crate::ip::canonical(peer);
        }
        let name = match self.config.proxy.client_ip_header {
            crate::config::ClientIpHeader::XForwardedFor => "x-forwarded-for",
            crate::config::ClientIpHeader::Forwarded => "forwarded",
        };
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        client_ip(peer, &self.trusted_proxies, &values)
    }
}
