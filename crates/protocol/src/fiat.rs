//! Fiat Gateway partner tokens (`docs/protocol.md`): HS256 JWTs signed with the
//! partner's Enc Key whose `iat`/`exp` are **milliseconds**.
//!
//! The checks are done here, by hand, in the order of `docs/design-decisions.md` 23: no JWT library's
//! seconds-based `exp` handling is involved, and the key is chosen by `x-auth-key`, never by
//! the token's `alg`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::encoding::hex_encode;
use crate::error::TokenRejection;
use crate::json::{self, JsonObject, JsonValue, write_string};
use crate::nonce::parse_u64_digits;
use crate::path::normalize_path;

/// The longest lifetime a partner token may have, in milliseconds.
pub const MAX_LIFETIME_MS: u64 = 60_000;

/// `iat` values below this are seconds, not milliseconds.
pub const MIN_MILLIS_IAT: u64 = 1_000_000_000_000;

/// The order signature: sha256 hex of the JSON string literal of
/// `currency#amount#orderId` (quotes included, escaped as `JSON.stringify` does).
#[must_use]
pub fn order_signature(currency: &str, amount: &str, order_id: &str) -> String {
    let data = format!("{currency}#{amount}#{order_id}");
    let mut literal = String::with_capacity(data.len() + 2);
    write_string(&data, &mut literal);
    hex_encode(&Sha256::digest(literal.as_bytes()))
}

/// The order fields a token's `signature` claim covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderFields<'a> {
    /// Currency ticker.
    pub currency: &'a str,
    /// Amount, as its exact JSON text.
    pub amount: &'a str,
    /// Order id, as its exact JSON text.
    pub order_id: &'a str,
}

impl OrderFields<'_> {
    /// [`order_signature`] of these fields.
    #[must_use]
    pub fn signature(&self) -> String {
        order_signature(self.currency, self.amount, self.order_id)
    }
}

/// Names of the body fields that carry the order (configurable in the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFieldNames {
    /// Default `currency`.
    pub currency: String,
    /// Default `amount`.
    pub amount: String,
    /// Default `orderId`.
    pub order_id: String,
}

impl Default for OrderFieldNames {
    fn default() -> Self {
        Self {
            currency: "currency".to_owned(),
            amount: "amount".to_owned(),
            order_id: "orderId".to_owned(),
        }
    }
}

/// Order fields owned, as read from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedOrderFields {
    /// Currency ticker.
    pub currency: String,
    /// Amount (exact JSON text of a number, or the string's value).
    pub amount: String,
    /// Order id (exact JSON text of a number, or the string's value).
    pub order_id: String,
}

impl OwnedOrderFields {
    /// Borrowed view.
    #[must_use]
    pub fn as_fields(&self) -> OrderFields<'_> {
        OrderFields {
            currency: &self.currency,
            amount: &self.amount,
            order_id: &self.order_id,
        }
    }
}

/// Reads the order fields from a JSON body (`docs/design-decisions.md` 24): `currency` a string,
/// `amount` and `orderId` strings or numbers (a number by its exact text). `None` when the
/// body is not a JSON object or a field is missing or of another type.
#[must_use]
pub fn order_fields_from_body(body: &[u8], names: &OrderFieldNames) -> Option<OwnedOrderFields> {
    let root = json::parse(body).ok()?;
    let JsonValue::Object(obj) = &root else {
        return None;
    };
    let text = |name: &str, numbers: bool| match obj.get(name)? {
        JsonValue::String(s) => Some(s.to_string()),
        JsonValue::Number(n) if numbers => Some((*n).to_owned()),
        _ => None,
    };
    Some(OwnedOrderFields {
        currency: text(&names.currency, false)?,
        amount: text(&names.amount, true)?,
        order_id: text(&names.order_id, true)?,
    })
}

/// A partner's Enc Key with its HMAC-SHA256 state cached, wiped from memory when dropped
/// (like [`crate::mac::HmacSha512Key`]).
#[derive(Clone)]
pub struct EncKey {
    keyed: Hmac<Sha256>,
}

// Every part of `Hmac<Sha256>` zeroizes itself on drop (see the test
// `mac::tests::keyed_states_are_wiped_on_drop`).
impl zeroize::ZeroizeOnDrop for EncKey {}

impl EncKey {
    /// Keys HMAC-SHA256 with the Enc Key's UTF-8 bytes.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        Self { keyed }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(message);
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Verifies an HS256 JWS signature over `signing_input` in constant time.
    #[must_use]
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let expected = self.mac(signing_input);
        signature.len() == expected.len() && bool::from(expected.ct_eq(signature))
    }
}

impl fmt::Debug for EncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncKey(<redacted>)")
    }
}

/// The claims of a partner token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerClaims {
    /// The endpoint path the token is for.
    pub url: String,
    /// Issued at, Unix milliseconds.
    pub iat: u64,
    /// Expires at, Unix milliseconds.
    pub exp: u64,
    /// The partner's Auth Key.
    pub key: String,
    /// The order signature ([`order_signature`]).
    pub signature: String,
}

impl PartnerClaims {
    /// Claims for a token issued at `now_ms` and valid for `lifetime_ms` (at most 60000).
    #[must_use]
    pub fn new(
        auth_key: &str,
        url: &str,
        order: &OrderFields<'_>,
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Self {
        Self {
            url: url.to_owned(),
            iat: now_ms,
            exp: now_ms.saturating_add(lifetime_ms.min(MAX_LIFETIME_MS)),
            key: auth_key.to_owned(),
            signature: order.signature(),
        }
    }

    /// Encodes and signs the claims as an HS256 JWT (claims in the order of the
    /// documentation's example: `url`, `iat`, `exp`, `key`, `signature`).
    #[must_use]
    pub fn encode(&self, enc_key: &EncKey) -> String {
        let mut claims = String::with_capacity(128 + self.url.len() + self.key.len());
        claims.push_str("{\"url\":");
        write_string(&self.url, &mut claims);
        claims.push_str(&format!(
            ",\"iat\":{},\"exp\":{},\"key\":",
            self.iat, self.exp
        ));
        write_string(&self.key, &mut claims);
        claims.push_str(",\"signature\":");
        write_string(&self.signature, &mut claims);
        claims.push('}');
        let mut token = String::with_capacity(claims.len() * 2);
        token.push_str(&URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#));
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.as_bytes()));
        let signature = enc_key.mac(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }
}

/// A partner token that passed every check but the single-use one, which needs a store.
/// `Debug` leaves out the signature bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedPartnerToken {
    /// The partner's Auth Key.
    pub auth_key: String,
    /// The 32 signature bytes: the token's identity in the replay store.
    pub replay_id: [u8; 32],
    /// Until when the replay entry must be kept (the token's `exp`, ms).
    pub expires_at_ms: u64,
}

impl fmt::Debug for VerifiedPartnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedPartnerToken")
            .field("auth_key", &self.auth_key)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// What the partner-token verifier is given. `Debug` leaves out the tokens.
#[derive(Clone, Copy)]
pub struct PartnerTokenRequest<'a> {
    /// Every `Authorization` header value the request carried.
    pub authorization: &'a [&'a str],
    /// The `x-auth-key` header value.
    pub x_auth_key: &'a str,
    /// The request path (normalised here before comparison).
    pub url: &'a str,
    /// The order fields of the body, `None` when missing.
    pub order: Option<OrderFields<'a>>,
    /// Server time, Unix milliseconds.
    pub now_ms: u64,
    /// How far in the future `iat` may be, in milliseconds.
    pub iat_leeway_ms: u64,
}

impl fmt::Debug for PartnerTokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartnerTokenRequest")
            .field(
                "authorization",
                &format_args!("<{} values>", self.authorization.len()),
            )
            .field("x_auth_key", &self.x_auth_key)
            .field("url", &self.url)
            .field("order", &self.order)
            .field("now_ms", &self.now_ms)
            .field("iat_leeway_ms", &self.iat_leeway_ms)
            .finish()
    }
}

/// Strips an optional `Bearer ` prefix; `None` unless exactly one token remains (a bare
/// `Bearer` is no token).
#[must_use]
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Option<&'a str> {
    let [value] = authorization else {
        return None;
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    };
    if token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace() || b == b',') {
        return None;
    }
    Some(token)
}

/// A JWS compact serialisation split into its three strict base64url parts. `Debug` shows
/// the header and claims, never the signing input or the signature.
pub struct JwsParts<'a> {
    /// `header.claims`, the signed bytes.
    pub signing_input: &'a str,
    /// Decoded header JSON.
    pub header: Vec<u8>,
    /// Decoded claims JSON.
    pub claims: Vec<u8>,
    /// Decoded signature.
    pub signature: Vec<u8>,
}

impl fmt::Debug for JwsParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwsParts")
            .field("header", &String::from_utf8_lossy(&self.header))
            .field("claims", &String::from_utf8_lossy(&self.claims))
            .finish_non_exhaustive()
    }
}

/// Splits and decodes a compact JWS (unpadded base64url, trailing bits zero).
#[must_use]
pub fn split_jws(token: &str) -> Option<JwsParts<'_>> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    Some(JwsParts {
        signing_input: &token[..h.len() + 1 + c.len()],
        header: decode(h)?,
        claims: decode(c)?,
        signature: decode(s)?,
    })
}

/// The header's `alg`, after checking the header is a JSON object without duplicates.
fn header_alg(header: &[u8]) -> Result<Option<String>, TokenRejection> {
    match json::parse(header) {
        Ok(JsonValue::Object(obj)) => Ok(match obj.get("alg") {
            Some(JsonValue::String(alg)) => Some(alg.to_string()),
            _ => None,
        }),
        _ => Err(TokenRejection::Malformed),
    }
}

fn claim_u64(obj: &JsonObject<'_>, name: &str) -> Option<u64> {
    match obj.get(name)? {
        JsonValue::Number(text) => parse_u64_digits(text),
        _ => None,
    }
}

/// The signature step of an HS256 token, and nothing else: splits the compact JWS (strict
/// unpadded base64url), checks the header is a JSON object whose `alg` is `HS256`, and
/// verifies the signature over `header.claims` under `key` in constant time. `None` (an
/// unknown or disabled partner) costs the same HMAC against a dummy key and fails. The claims
/// are returned decoded but unchecked: [`verify_partner_token`] runs this step first
/// and then checks them (`docs/design-decisions.md` 23); known-answer tests (RFC 7515 A.1, whose `exp` is
/// in seconds) run through this step alone.
///
/// # Errors
/// [`TokenRejection::Malformed`], [`TokenRejection::AlgorithmNotAllowed`] or
/// [`TokenRejection::InvalidSignature`], in that order of checks.
pub fn verify_hs256_signature<'t>(
    token: &'t str,
    key: Option<&EncKey>,
) -> Result<JwsParts<'t>, TokenRejection> {
    let jws = split_jws(token).ok_or(TokenRejection::Malformed)?;
    if header_alg(&jws.header)?.as_deref() != Some("HS256") {
        return Err(TokenRejection::AlgorithmNotAllowed);
    }
    let signature_ok = match key {
        Some(key) => key.verify(jws.signing_input.as_bytes(), &jws.signature),
        None => {
            thread_local! {
                static DUMMY: EncKey = EncKey::new(b"whitebit-auth dummy partner key");
            }
            DUMMY.with(|dummy| dummy.verify(jws.signing_input.as_bytes(), &jws.signature));
            false
        }
    };
    if signature_ok {
        Ok(jws)
    } else {
        Err(TokenRejection::InvalidSignature)
    }
}

/// Verifies a partner token, every check of `docs/design-decisions.md` 23 except "already used".
///
/// `enc_key_for` maps an Auth Key to its Enc Key (`None` for unknown or disabled partners,
/// which then cost the same HMAC as a known one).
pub fn verify_partner_token<'k, F>(
    request: &PartnerTokenRequest<'_>,
    enc_key_for: F,
) -> Result<VerifiedPartnerToken, TokenRejection>
where
    F: FnOnce(&str) -> Option<&'k EncKey>,
{
    let token = bearer_token(request.authorization).ok_or(TokenRejection::Missing)?;
    let jws = verify_hs256_signature(token, enc_key_for(request.x_auth_key))?;

    let Ok(JsonValue::Object(claims)) = json::parse(&jws.claims) else {
        return Err(TokenRejection::Malformed);
    };
    if ["key", "url", "iat", "exp", "signature"]
        .iter()
        .any(|name| claims.get(name).is_none())
    {
        return Err(TokenRejection::Malformed);
    }
    match claims.get("key") {
        Some(JsonValue::String(k)) if k == request.x_auth_key => {}
        _ => return Err(TokenRejection::KeyMismatch),
    }
    let url_matches = match (claims.get("url"), normalize_path(request.url)) {
        (Some(JsonValue::String(claim)), Ok(path)) => {
            normalize_path(claim).is_ok_and(|claim| claim == path)
        }
        _ => false,
    };
    if !url_matches {
        return Err(TokenRejection::UrlMismatch);
    }
    let (Some(iat), Some(exp)) = (claim_u64(&claims, "iat"), claim_u64(&claims, "exp")) else {
        return Err(TokenRejection::InvalidTimes);
    };
    if iat < MIN_MILLIS_IAT || exp <= iat {
        return Err(TokenRejection::InvalidTimes);
    }
    if exp - iat > MAX_LIFETIME_MS {
        return Err(TokenRejection::LifetimeTooLong);
    }
    if iat > request.now_ms.saturating_add(request.iat_leeway_ms) {
        return Err(TokenRejection::IssuedInFuture);
    }
    if request.now_ms >= exp {
        return Err(TokenRejection::Expired);
    }
    let order = request.order.ok_or(TokenRejection::OrderFieldsMissing)?;
    let signature_matches = match claims.get("signature") {
        Some(JsonValue::String(claim)) => {
            claim.as_bytes().ct_eq(order.signature().as_bytes()).into()
        }
        _ => false,
    };
    if !signature_matches {
        return Err(TokenRejection::OrderSignatureMismatch);
    }
    let mut replay_id = [0u8; 32];
    if jws.signature.len() == replay_id.len() {
        replay_id.copy_from_slice(&jws.signature);
    }
    Ok(VerifiedPartnerToken {
        auth_key: request.x_auth_key.to_owned(),
        replay_id,
        expires_at_ms: exp,
    })
}
