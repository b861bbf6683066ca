//! The client and its builder.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use whitebit_auth::NonceMode;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::{SignedRequest, sign_body, sign_request};
use whitebit_auth::time::estimate_offset_ms;

use crate::error::{ApiFailure, Error};
use crate::nonce::{NonceSource, unix_ms};
use crate::retry::RetryPolicy;

/// The global server.
pub const GLOBAL_URL: &str = "https://whitebit.com";
/// The EU server.
pub const EU_URL: &str = "https://whitebit.eu";

/// Header names of the scheme.
pub use whitebit_auth::headers;

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// `https://whitebit.com`
    Global,
    /// `https://whitebit.eu`
    Eu,
    /// Any other server speaking the protocol (a gateway, the sandbox).
    Custom(String),
}

impl BaseUrl {
    /// The URL text, without a trailing slash.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            BaseUrl::Global => GLOBAL_URL,
            BaseUrl::Eu => EU_URL,
            BaseUrl::Custom(url) => url.trim_end_matches('/'),
        }
    }
}

impl From<&str> for BaseUrl {
    fn from(url: &str) -> Self {
        match url.trim_end_matches('/') {
            GLOBAL_URL => BaseUrl::Global,
            EU_URL => BaseUrl::Eu,
            other => BaseUrl::Custom(other.to_owned()),
        }
    }
}

impl From<String> for BaseUrl {
    fn from(url: String) -> Self {
        Self::from(url.as_str())
    }
}

impl From<&String> for BaseUrl {
    fn from(url: &String) -> Self {
        Self::from(url.as_str())
    }
}

/// A token issued by `POST /api/v4/jwt`.
#[derive(Clone)]
pub struct IssuedToken {
    /// The JWT (a bearer credential: keep it out of logs).
    pub token: SecretString,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Builds a [`Client`].
#[must_use]
pub struct ClientBuilder {
    api_key: Option<String>,
    secret: Option<SecretString>,
    base_url: BaseUrl,
    mode: NonceMode,
    nonce: Option<NonceSource>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    http: Option<reqwest::Client>,
    /// PEM bundles of root certificates trusted besides the system's.
    roots: Vec<Vec<u8>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("mode", &self.mode)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            secret: None,
            base_url: BaseUrl::Global,
            mode: NonceMode::Window,
            nonce: None,
            retry: RetryPolicy::none(),
            timeout: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(10),
            http: None,
            roots: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// The API key and its secret.
    pub fn credentials(
        mut self,
        api_key: impl Into<String>,
        secret: impl Into<SecretString>,
    ) -> Self {
        self.api_key = Some(api_key.into());
        self.secret = Some(secret.into());
        self
    }

    /// Reads `WBAUTH_API_KEY`, `WBAUTH_API_SECRET` and (optionally) `WBAUTH_BASE_URL`.
    pub fn from_env(mut self) -> Self {
        if let (Ok(key), Ok(secret)) = (
            std::env::var("WBAUTH_API_KEY"),
            std::env::var("WBAUTH_API_SECRET"),
        ) {
            self = self.credentials(key, secret);
        }
        if let Ok(url) = std::env::var("WBAUTH_BASE_URL")
            && !url.is_empty()
        {
            self.base_url = BaseUrl::from(url.as_str());
        }
        self
    }

    /// The server (default: the global server).
    pub fn base_url(mut self, base_url: impl Into<BaseUrl>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Window mode (`nonceWindow: true`, the default) or strict mode.
    pub fn nonce_mode(mut self, mode: NonceMode) -> Self {
        self.mode = mode;
        self
    }

    /// Strict mode: each nonce strictly greater than the last one the server accepted.
    pub fn strict_nonces(self) -> Self {
        self.nonce_mode(NonceMode::Strict)
    }

    /// Shares a nonce source with other clients of the same key.
    pub fn nonce_source(mut self, source: NonceSource) -> Self {
        self.nonce = Some(source);
        self
    }

    /// Retry policy (default: no retries).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Whole-request timeout (default 30 s; `None` for none).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connection timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Trusts the root certificates of this PEM bundle (one or more `CERTIFICATE` blocks)
    /// besides the system's: for a server whose certificate a private CA issued. Host names
    /// and validity are still checked. May be called again to add more; an unreadable bundle
    /// fails [`build`](Self::build).
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Uses this reqwest client (its own timeouts apply). Build it with
    /// `.redirect(reqwest::redirect::Policy::none())`: a client that follows redirects would
    /// send the signed headers and body to wherever a redirect points (where they could be
    /// replayed) before this client can refuse; such a followed redirect is reported as
    /// [`Error::Config`].
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client. Fails when credentials are missing or the base URL is not an
    /// http(s) URL.
    pub fn build(self) -> Result<Client, Error> {
        let api_key = self
            .api_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::Config("no API key (set WBAUTH_API_KEY)".into()))?;
        let secret = self
            .secret
            .filter(|s| !s.expose_secret().is_empty())
            .ok_or_else(|| Error::Config("no API secret (set WBAUTH_API_SECRET)".into()))?;
        if api_key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(Error::Config(
                "the API key must be visible ASCII without spaces".into(),
            ));
        }
        let base = self.base_url.as_str().to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| Error::Config(format!("invalid base URL {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(Error::Config(format!(
                "invalid base URL {base:?}: expected http(s)://host[:port]"
            )));
        }
        let http = match self.http {
            Some(_) if !self.roots.is_empty() => {
                return Err(Error::Config(
                    "root certificates apply to the HTTP client the builder makes: add them to \
                     the reqwest client given with http_client instead"
                        .into(),
                ));
            }
            Some(http) => http,
            None => {
                // Never follow a redirect: it would hand the signed request to another
                // address, where it could be replayed.
                let mut builder = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(self.connect_timeout)
                    .user_agent(concat!("whitebit-client/", env!("CARGO_PKG_VERSION")));
                if let Some(timeout) = self.timeout {
                    builder = builder.timeout(timeout);
                }
                for pem in &self.roots {
                    let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                        Error::Config(format!(
                            "the root certificates are not PEM certificates: {e}"
                        ))
                    })?;
                    if certificates.is_empty() {
                        return Err(Error::Config(
                            "no CERTIFICATE block in the root certificates given".into(),
                        ));
                    }
                    for certificate in certificates {
                        builder = builder.add_root_certificate(certificate);
                    }
                }
                builder.build().map_err(Error::transport)?
            }
        };
        let mac = HmacSha512Key::new(secret.expose_secret().as_bytes());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                api_key,
                mac,
                mode: self.mode,
                nonce: self.nonce.unwrap_or_default(),
                retry: self.retry,
                clock_offset_ms: AtomicI64::new(0),
            }),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    api_key: String,
    /// The keyed HMAC state; the secret itself is not kept.
    mac: HmacSha512Key,
    mode: NonceMode,
    nonce: NonceSource,
    retry: RetryPolicy,
    clock_offset_ms: AtomicI64,
}

/// An async client for the private API. Cheap to clone (one `Arc`); clones share the
/// connection pool, the nonce source and the clock offset.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base)
            .field("api_key", &self.inner.api_key)
            .field("secret", &"<redacted>")
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with defaults: global server, window mode, no retries.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The server this client talks to.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The public API key.
    #[must_use]
    pub fn api_key(&self) -> &str {
        &self.inner.api_key
    }

    /// The nonce mode.
    #[must_use]
    pub fn nonce_mode(&self) -> NonceMode {
        self.inner.mode
    }

    /// The shared nonce source.
    #[must_use]
    pub fn nonce_source(&self) -> &NonceSource {
        &self.inner.nonce
    }

    /// The estimated server clock minus the local clock, in ms (0 until
    /// [`Client::sync_clock`]).
    #[must_use]
    pub fn clock_offset_ms(&self) -> i64 {
        self.inner.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// The next nonce: in window mode the local clock corrected by the estimated offset,
    /// in strict mode the local clock; always strictly increasing.
    #[must_use]
    pub fn next_nonce(&self) -> u64 {
        let local = unix_ms();
        let now = match self.inner.mode {
            NonceMode::Window => local.saturating_add_signed(self.clock_offset_ms()),
            NonceMode::Strict => local,
        };
        self.inner.nonce.next_at(now)
    }

    /// Builds and signs a request for `path` with a fresh nonce, without sending it.
    pub fn sign(&self, path: &str, params: &Map<String, Value>) -> Result<SignedRequest, Error> {
        let window = self.inner.mode == NonceMode::Window;
        Ok(sign_request(
            path,
            self.next_nonce(),
            Some(window),
            params,
            &self.inner.mac,
        )?)
    }

    /// Signs exact body bytes (no nonce handling: the body is sent as given).
    #[must_use]
    pub fn sign_body(&self, body: Vec<u8>) -> SignedRequest {
        sign_body(body, &self.inner.mac)
    }

    /// A request to `path` (e.g. `/api/v4/trade-account/balance`).
    pub fn request(&self, path: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            path: path.into(),
            params: Ok(Map::new()),
            idempotent: false,
        }
    }

    /// Signs and sends `params` to `path`; returns the JSON answer. `params` must serialise
    /// to a JSON object (or be `()` / `null` for none).
    pub async fn post(&self, path: &str, params: impl Serialize) -> Result<Value, Error> {
        self.request(path).params(params).send().await
    }

    /// Like [`Client::post`], deserialising the answer into `T`.
    pub async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        params: impl Serialize,
    ) -> Result<T, Error> {
        self.request(path).params(params).send_as().await
    }

    /// `POST /api/v4/jwt`: a short-lived token for the Fiat Gateway.
    pub async fn issue_jwt(&self) -> Result<IssuedToken, Error> {
        #[derive(serde::Deserialize)]
        struct Data {
            token: String,
            expires_at: u64,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            data: Data,
        }
        let answer: Answer = self.request("/api/v4/jwt").send_as().await?;
        Ok(IssuedToken {
            token: SecretString::from(answer.data.token),
            expires_at: answer.data.expires_at,
        })
    }

    /// `GET /api/v4/public/time`: server time in Unix seconds.
    pub async fn server_time(&self) -> Result<u64, Error> {
        Ok(self.fetch_server_time().await?.0)
    }

    async fn fetch_server_time(&self) -> Result<(u64, u64, u64), Error> {
        let url = format!("{}/api/v4/public/time", self.inner.base);
        let sent = unix_ms();
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(Error::transport)?;
        refuse_redirect(&response)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(Error::transport)?;
        let received = unix_ms();
        if !(200..300).contains(&status) {
            return Err(Error::Api(ApiFailure::parse(status, &body, None)));
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| Error::InvalidResponse(format!("server time is not JSON: {e}")))?;
        let seconds = value
            .get("time")
            .and_then(|t| {
                t.as_u64()
                    .or_else(|| t.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            })
            .ok_or_else(|| Error::InvalidResponse("server time has no numeric \"time\"".into()))?;
        Ok((seconds, sent, received))
    }

    /// Estimates the server clock's offset from `GET /api/v4/public/time` (whole seconds;
    /// the server's time is taken as the middle of its second at the round trip's
    /// midpoint) and applies it to window-mode nonces from now on. Returns the offset in ms.
    pub async fn sync_clock(&self) -> Result<i64, Error> {
        let (seconds, sent, received) = self.fetch_server_time().await?;
        let offset = estimate_offset_ms(seconds, sent, received);
        self.inner.clock_offset_ms.store(offset, Ordering::Relaxed);
        Ok(offset)
    }

    async fn send_once(&self, path: &str, signed: SignedRequest) -> Result<Value, Error> {
        let url = format!("{}{}", self.inner.base, path);
        let sent_to = reqwest::Url::parse(&url)
            .map_err(|e| Error::Config(format!("invalid request URL: {e}")))?;
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(headers::JSON_MEDIA_TYPE),
        );
        let header = |value: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| Error::Config("a header value is not valid ASCII".into()))
        };
        headers.insert(headers::API_KEY, header(&self.inner.api_key)?);
        headers.insert(headers::PAYLOAD, header(&signed.payload)?);
        headers.insert(headers::SIGNATURE, header(&signed.signature)?);
        // The body is sent as the exact bytes that were signed.
        let response = self
            .inner
            .http
            .post(sent_to.clone())
            .headers(headers)
            .body(signed.body)
            .send()
            .await
            .map_err(Error::transport)?;
        refuse_redirect(&response)?;
        if response.url() != &sent_to {
            // A caller's HTTP client followed a redirect (see `ClientBuilder::http_client`).
            return Err(Error::Config(format!(
                "the HTTP client given to ClientBuilder::http_client followed a redirect to \
                 {}, so the signed request was sent there; build that client with \
                 reqwest::redirect::Policy::none()",
                crate::error::shown_target(response.url())
            )));
        }
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(Error::transport)?;
        if !(200..300).contains(&status) {
            return Err(Error::Api(ApiFailure::parse(status, &body, retry_after)));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| Error::InvalidResponse(format!("the answer is not JSON: {e}")))?;
        if value.get("success") == Some(&Value::Bool(false)) {
            return Err(Error::Api(ApiFailure::parse(status, &body, retry_after)));
        }
        Ok(value)
    }
}

/// A redirect answer becomes [`Error::Redirect`]; it is never followed.
fn refuse_redirect(response: &reqwest::Response) -> Result<(), Error> {
    if !response.status().is_redirection() {
        return Ok(());
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok());
    Err(Error::redirect(
        response.status().as_u16(),
        response.url(),
        location,
    ))
}

/// One call to a private endpoint, built step by step.
#[must_use = "a request does nothing until .send() is awaited"]
pub struct RequestBuilder {
    client: Client,
    path: String,
    params: Result<Map<String, Value>, String>,
    idempotent: bool,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("path", &self.path)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    /// Replaces the parameters with `params`, which must serialise to a JSON object
    /// (`()` and `null` mean none).
    pub fn params(mut self, params: impl Serialize) -> Self {
        self.params = match serde_json::to_value(params) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Null) => Ok(Map::new()),
            Ok(other) => Err(format!("parameters must be a JSON object, not {other}")),
            Err(e) => Err(e.to_string()),
        };
        self
    }

    /// Adds one parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        if let Ok(map) = &mut self.params {
            match serde_json::to_value(value) {
                Ok(v) => {
                    map.insert(name.into(), v);
                }
                Err(e) => self.params = Err(e.to_string()),
            }
        }
        self
    }

    /// Marks the call as safe to repeat (a read): timeouts and 502–504 may then be retried.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Signs and sends, retrying per the client's policy (a fresh nonce every attempt).
    pub async fn send(self) -> Result<Value, Error> {
        let params = self.params.map_err(Error::InvalidParams)?;
        let policy = self.client.inner.retry;
        let mut retry = 0;
        loop {
            let signed = self.client.sign(&self.path, &params)?;
            match self.client.send_once(&self.path, signed).await {
                Ok(value) => return Ok(value),
                Err(error) => match policy.delay_for(&error, self.idempotent, retry) {
                    Some(delay) => {
                        tokio::time::sleep(delay).await;
                        retry += 1;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    /// Like [`RequestBuilder::send`], deserialising the answer into `T`.
    pub async fn send_as<T: DeserializeOwned>(self) -> Result<T, Error> {
        let value = self.send().await?;
        serde_json::from_value(value).map_err(|e| Error::InvalidResponse(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_takes_a_string_read_at_run_time() {
        let read: String = "http://127.0.0.1:8080/".to_owned();
        for client in [
            Client::builder()
                .credentials("k", "s")
                .base_url(&read)
                .build(),
            Client::builder()
                .credentials("k", "s")
                .base_url(read.clone())
                .build(),
        ] {
            assert_eq!(client.expect("client").base_url(), "http://127.0.0.1:8080");
        }
        assert_eq!(
            BaseUrl::from("https://whitebit.com/".to_owned()),
            BaseUrl::Global
        );
    }

    #[test]
    fn builder_validates_and_debug_hides_the_secret() {
        let err = Client::builder().build().expect_err("no credentials");
        assert!(err.to_string().contains("WBAUTH_API_KEY"));
        let err = Client::builder()
            .credentials("key", "s3cr3t-value")
            .base_url("ftp://x")
            .build()
            .expect_err("bad scheme");
        assert!(err.to_string().contains("invalid base URL"));
        let client = Client::builder()
            .credentials("key", "s3cr3t-value")
            .base_url("http://127.0.0.1:1/")
            .build()
            .expect("valid");
        assert_eq!(client.base_url(), "http://127.0.0.1:1");
        assert!(!format!("{client:?}").contains("s3cr3t"));
        let builder = Client::builder().credentials("key", "s3cr3t-value");
        assert!(!format!("{builder:?}").contains("s3cr3t"));
        assert_eq!(BaseUrl::from("https://whitebit.eu/"), BaseUrl::Eu);
    }
}
