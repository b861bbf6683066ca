//! [`TokenIssuer::verify`]: checking a gateway-issued token presented in `Authorization`.

use whitebit_auth::TokenRejection;
use whitebit_auth::fiat::{bearer_token, split_jws};
use whitebit_auth::json::{self, JsonObject, JsonValue};
use whitebit_auth::nonce::parse_u64_digits;

use super::issue::TokenIssuer;

/// A gateway-issued token that passed [`TokenIssuer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIssuedToken {
    /// The `sub` claim: the account the token was issued to.
    pub subject: String,
    /// The `jti` claim (for a replay store, kept until `expires_at_s`).
    pub jti: String,
    /// The `exp` claim, Unix seconds.
    pub expires_at_s: u64,
    /// The `key` claim: the public API key that asked for the token (tokens from
    /// [`TokenIssuer::issue_for_key`]).
    pub key: Option<String>,
    /// The `key_id` claim: that key's store id when the token was issued (a new secret gives
    /// the key a new id).
    pub key_id: Option<u64>,
}
impl TokenIssuer {
    /// Verifies a gateway-issued token from the `Authorization` values (one value, with or
    /// without `Bearer `) at `now_ms` (Unix milliseconds).
    ///
    /// Checks, in order, and their reasons:
    /// 1. not exactly one token → [`TokenRejection::Missing`];
    /// 2. not three strict base64url parts, header not a JSON object without duplicates, or a
    ///    `crit` header → [`TokenRejection::Malformed`];
    /// 3. `alg` missing, or not the algorithm of any configured key (`none`, `HS256`, …) →
    ///    [`TokenRejection::AlgorithmNotAllowed`];
    /// 4. `kid` missing or unknown → [`TokenRejection::InvalidSignature`];
    /// 5. `alg` ≠ the algorithm of the key named by `kid` → [`TokenRejection::AlgorithmNotAllowed`];
    /// 6. signature wrong for that key → [`TokenRejection::InvalidSignature`];
    /// 7. claims not a JSON object without duplicates; `iss`, `sub`, `aud`, `iat`, `exp` or
    ///    `jti` missing; `sub` or `jti` not a string; `key` present but not a string or
    ///    `key_id` present but not a non-negative integer → [`TokenRejection::Malformed`];
    /// 8. `iss` ≠ the configured issuer → [`TokenRejection::InvalidSignature`] (a token naming
    ///    another issuer is not one this issuer signed);
    /// 9. `aud` neither the configured audience nor an array containing it →
    ///    [`TokenRejection::InvalidAudience`];
    /// 10. `iat`/`exp` not non-negative integers, or `exp ≤ iat` → [`TokenRejection::InvalidTimes`];
    /// 11. `iat` (seconds) later than now plus the leeway → [`TokenRejection::IssuedInFuture`];
    /// 12. `now ≥ exp` (no leeway) → [`TokenRejection::Expired`].
    ///
    /// Single use and the state of the key named by `key` are not checked here: the Fiat
    /// Gateway check of the request path does both.
    ///
    /// # Errors
    /// The [`TokenRejection`] of the first failing check; answer 401 with its `body()`.
    pub fn verify(
        &self,
        authorization: &[&str],
        now_ms: u64,
    ) -> Result<VerifiedIssuedToken, TokenRejection> {
        let token = bearer_token(authorization).ok_or(TokenRejection::Missing)?;
        let jws = split_jws(token).ok_or(TokenRejection::Malformed)?;
        let Ok(JsonValue::Object(header)) = json::parse(&jws.header) else {
            return Err(TokenRejection::Malformed);
        };
        if header.get("crit").is_some() {
            return Err(TokenRejection::Malformed);
        }
        let Some(JsonValue::String(alg)) = header.get("alg") else {
            return Err(TokenRejection::AlgorithmNotAllowed);
        };
        if !self.keys.iter().any(|k| k.algorithm.name() == alg) {
            return Err(TokenRejection::AlgorithmNotAllowed);
        }
        let Some(JsonValue::String(kid)) = header.get("kid") else {
            return Err(TokenRejection::InvalidSignature);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == *kid)
            .ok_or(TokenRejection::InvalidSignature)?;
        if key.algorithm.name() != alg {
            return Err(TokenRejection::AlgorithmNotAllowed);
        }
        if !key.verify_signature(jws.signing_input.as_bytes(), &jws.signature) {
            return Err(TokenRejection::InvalidSignature);
        }

        let Ok(JsonValue::Object(claims)) = json::parse(&jws.claims) else {
            return Err(TokenRejection::Malformed);
        };
        if ["iss", "sub", "aud", "iat", "exp", "jti"]
            .iter()
            .any(|name| claims.get(name).is_none())
        {
            return Err(TokenRejection::Malformed);
        }
        let (Some(JsonValue::String(subject)), Some(JsonValue::String(jti))) =
            (claims.get("sub"), claims.get("jti"))
        else {
            return Err(TokenRejection::Malformed);
        };
        let key = match claims.get("key") {
            None => None,
            Some(JsonValue::String(key)) => Some(key.to_string()),
            Some(_) => return Err(TokenRejection::Malformed),
        };
        let key_id = match claims.get("key_id") {
            None => None,
            Some(_) => Some(claim_u64(&claims, "key_id").ok_or(TokenRejection::Malformed)?),
        };
        match claims.get("iss") {
            Some(JsonValue::String(iss)) if *iss == self.issuer => {}
            _ => return Err(TokenRejection::InvalidSignature),
        }
        let audience_ok = match claims.get("aud") {
            Some(JsonValue::String(aud)) => *aud == self.audience,
            Some(JsonValue::Array(auds)) => auds
                .iter()
                .any(|aud| matches!(aud, JsonValue::String(aud) if *aud == self.audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenRejection::InvalidAudience);
        }
        let (Some(iat), Some(exp)) = (claim_u64(&claims, "iat"), claim_u64(&claims, "exp")) else {
            return Err(TokenRejection::InvalidTimes);
        };
        if exp <= iat {
            return Err(TokenRejection::InvalidTimes);
        }
        if iat.saturating_mul(1000) > now_ms.saturating_add(self.iat_leeway_ms) {
            return Err(TokenRejection::IssuedInFuture);
        }
        if now_ms >= exp.saturating_mul(1000) {
            return Err(TokenRejection::Expired);
        }
        Ok(VerifiedIssuedToken {
            subject: subject.to_string(),
            jti: jti.to_string(),
            expires_at_s: exp,
            key,
            key_id,
        })
    }
}
fn claim_u64(obj: &JsonObject<'_>, name: &str) -> Option<u64> {
    match obj.get(name)? {
        JsonValue::Number(text) => parse_u64_digits(text),
        _ => None,
    }
}
