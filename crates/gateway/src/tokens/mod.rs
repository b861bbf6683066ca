//! The gateway's own tokens: issued by `POST /api/v4/jwt`, verified on Fiat Gateway routes
//! that accept them, and published as a JWKS document (`docs/design-decisions.md` 21 and 22).
//!
//! * [`SigningKey`] — one private key (RS256 by default; ES256 and EdDSA as options) with its
//!   `kid`. Loaded from a PEM file ([`SigningKey::load_pem_file`]) or generated in memory for
//!   the sandbox ([`SigningKey::generate_rs256`], kept with
//!   [`SigningKey::write_pkcs8_pem_file`]).
//! * [`TokenIssuer`] — the configured keys (oldest first; the last one signs), the `iss` and
//!   `aud` claims and the lifetime. [`TokenIssuer::issue`] answers `POST /api/v4/jwt`,
//!   [`TokenIssuer::jwks`] is the JWKS document and [`TokenIssuer::verify`] checks a token
//!   presented in `Authorization`.
//!
//! All signing and verification is done by aws-lc-rs (never the `rsa` crate, RUSTSEC-2023-0071).
//! The JWS is built and checked by hand like the partner tokens of `whitebit_auth::fiat`: the
//! verifying key is chosen by the header's `kid`, and the header's `alg` must equal that key's
//! algorithm — a key or an algorithm is never chosen from `alg` alone, so `none` and the
//! HS256-with-the-RSA-public-key confusion are refused.
//!
//! Wiring sketch:
//!
//! ```no_run
//! use std::path::Path;
//! use whitebit_gateway::tokens::{SigningKey, TokenIssuer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::load_pem_file(Path::new("/etc/wbauth/jwt-2025.pem"))?; // kid = thumbprint
//! let issuer = TokenIssuer::new("wbauth", "fiat-gateway", vec![key])?.with_lifetime_ms(60_000);
//! // POST /api/v4/jwt, after the usual checks: 200 with `Cache-Control: no-store`, or on
//! // `Err` the 500 `JwtEndpointError::ServerConfiguration` (`From<TokenError>`).
//! let issued = issuer.issue("account-name", 1_700_000_000_000)?;
//! let body = issued.response_body();
//! // GET /.well-known/jwks.json (or wherever the lead mounts it):
//! let jwks = issuer.jwks();
//! // Fiat Gateway route without `x-auth-key`: 401 `rejection.body()` on `Err`.
//! let verified = issuer.verify(&["Bearer eyJ…"], 1_700_000_001_000);
//! # let _ = (body, jwks, verified);
//! # Ok(())
//! # }
//! ```

mod error;
mod from_config;
mod issue;
mod jwk;
mod keys;
mod pem;
#[cfg(test)]
mod tests;
mod verify;

pub use error::{KeyError, TokenError};
pub(crate) use from_config::{BadKey, issuer_for};
pub use issue::TokenIssuer;
pub use issue::{
    DEFAULT_IAT_LEEWAY_MS, DEFAULT_LIFETIME_MS, IssuedToken, MIN_LIFETIME_MS, TokenKey,
};
pub use keys::Algorithm;
pub use keys::SigningKey;
pub use verify::VerifiedIssuedToken;
