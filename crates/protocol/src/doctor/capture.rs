//! What the doctor is given.

use std::fmt;

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
            .finish()
    }
}
