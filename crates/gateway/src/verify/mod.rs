//! The check table of `docs/errors.md`, run in order: one function per row (in `verify/rows.rs`), and
//! [`Gateway::check`] calling them as the table lists them. Where a request goes is decided
//! once, before any check ([`crate::verify::routing`]); a Fiat Gateway route swaps rows 3–16 for the token
//! checks ([`fiat`]). Nothing downstream re-reads the raw request: a private request comes out
//! as a [`Verified`] whose body is the decoded payload.

pub(crate) mod fiat;
pub(crate) mod gateway;
mod live;
mod outcome;
pub(crate) mod rate;
pub(crate) mod routing;
mod rows;
pub(crate) mod upstream_tls;

use std::net::IpAddr;

use axum::body::Body;
use axum::http::Method;
use axum::http::request::Parts;
use bytes::Bytes;

pub use crate::verify::routing::Answers;
pub(crate) use crate::verify::routing::{Destination, Target};
pub use gateway::Gateway;
pub(crate) use live::Live;
pub use outcome::Verified;
pub(crate) use outcome::{Admitted, FiatAdmitted};
pub use outcome::{Incoming, Refusal};

impl Live {
    /// Where a request goes (decided once, before any check).
    #[must_use]
    pub(crate) fn destination(&self, method: &Method, uri: &axum::http::Uri) -> Destination<'_> {
        self.routes.destination(method, uri)
    }
}

impl Gateway {
    /// The check table of `docs/errors.md`, in order, for a request going to `destination`
    /// (not a public GET route), under the settings `live` the request started with. Reads
    /// the body (row 2).
    pub(crate) async fn check(
        &self,
        live: &Live,
        destination: Destination<'_>,
        head: &Parts,
        body: Body,
        peer: IpAddr,
    ) -> Result<Admitted, Refusal> {
        rows::method(&head.method)?; // row 1
        let body = rows::size(&head.headers, body, &live.config).await?; // row 2
        rows::content_type(&head.headers)?; // 415
        let target = match destination {
            Destination::Fiat(_) => {
                let path = rows::fiat_path(&head.uri)?;
                let client_ip = live.client_ip(peer, &head.headers);
                let identity = fiat::authorize(self, live, &head.headers, &path, &body).await?;
                return Ok(Admitted::Fiat(FiatAdmitted {
                    identity,
                    path,
                    body,
                    client_ip,
                }));
            }
            Destination::Private(target) => target,
            // Answered before any check.
            Destination::Jwks | Destination::Time => None,
        };
        let incoming = Incoming {
            method: &head.method,
            path_and_query: head.uri.path_and_query().map_or("/", |p| p.as_str()),
            headers: &head.headers,
            body: &body,
            peer,
        };
        self.verify_for(live, &incoming, target)
            .await
            .map(Admitted::Private)
    }

    /// Rows 3–16 for a request that passed rows 1, 2 and the 415 check.
    pub async fn verify(&self, req: &Incoming<'_>) -> Result<Verified, Refusal> {
        let live = self.live();
        let path = req.path_and_query.split('?').next().unwrap_or_default();
        let target = whitebit_auth::path::normalize_path(path)
            .ok()
            .and_then(|path| live.routes.private_target(&path));
        self.verify_for(&live, req, target).await
    }

    /// Rows 3–16, the route already known.
    async fn verify_for(
        &self,
        live: &Live,
        req: &Incoming<'_>,
        target: Option<&Target>,
    ) -> Result<Verified, Refusal> {
        let fields = rows::fields(req, live.body_match)?; // rows 3–11
        let key = rows::signature(&self.keys, &fields)?; // row 12
        let now = self.clock.now_ms();
        let client_ip = live.client_ip(req.peer, req.headers);
        rows::key_state(&key, now, live.config.keys.idle_days, client_ip)?; // row 13
        let target = rows::route(target)?; // 404
        rows::scope(&live.kinds, &key, fields.path())?; // row 14
        let (nonce, mode) = (fields.nonce(), fields.nonce_mode());
        rows::rate_limit(&*self.nonces, &live.rate, &key, nonce, mode, now).await?; // row 15
        rows::nonce(&*self.nonces, &key, nonce, mode, now).await?; // row 16

        key.mark_used(now);
        self.touch.record(key.id, now);
        Ok(Verified {
            path: fields.path().to_owned(),
            payload: Bytes::from(fields.into_decoded_payload()),
            key,
            nonce,
            client_ip,
            target,
        })
    }
}
