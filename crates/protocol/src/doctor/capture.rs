//! What the doctor is given.

use std::fmt;

use crate::verify::BodyMatch;

/// What was captured of one request. Every part is optional: the doctor checks what it is
/// given and says what it could not check.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Capture<'a> {
    /// The HTTP body, exactly as sent.
    pub body: Option<&'a [u8]>,
    /// The `X-TXC-PAYLOAD` header value, exactly as sent.
    pub payload: Option<&'a str>,
    /// The `X-TXC-SIGNATURE` header value, exactly as sent.
    pub signature: Option<&'a str>,
    /// The API secret (as its UTF-8 bytes), to check the signature. Never shown.
    pub secret: Option<&'a [u8]>,
    /// The URL path the request was sent to.
    pub path: Option<&'a str>,
    /// The current time in Unix milliseconds, to check a window-mode nonce.
    pub now_ms: Option<u64>,
    /// Every header of the request as sent (name, value), to check `Content-Type` and
    /// `X-TXC-*` headers sent more than once. Values of the `X-TXC-*` headers are not shown.
    pub headers: Option<&'a [(&'a str, &'a [u8])]>,
    /// What the server knows of the `X-TXC-APIKEY` sent (a server diagnosing its own refusal).
    pub key: Option<KeyFacts<'a>>,
    /// The greatest nonce the server has accepted for the key, to explain a strict-mode nonce
    /// that is not greater.
    pub last_nonce: Option<u64>,
    /// The server's body-match policy (`docs/interop.md`); the default is byte for byte.
    pub body_match: BodyMatch,
}

/// What a server knows of the API key a request names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyFacts<'a> {
    /// The `X-TXC-APIKEY` value sent.
    pub sent: &'a str,
    /// Whether the server holds that key.
    pub known: bool,
    /// A key the server does hold, named when the one sent is unknown (a public key, not a
    /// secret: the sandbox's demo key).
    pub example: Option<&'a str>,
}

impl fmt::Debug for Capture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("body_len", &self.body.map(<[u8]>::len))
            .field("payload", &self.payload)
            .field("signature", &self.signature)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .field("path", &self.path)
            .field("now_ms", &self.now_ms)
            .field("headers", &self.headers.map(<[_]>::len))
            .field("key", &self.key)
            .field("last_nonce", &self.last_nonce)
            .field("body_match", &self.body_match)
            .finish()
    }
}
