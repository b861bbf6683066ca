//! The sandbox that teaches (`Options::teaching`, set only by `wbauth sandbox`): every refusal
//! gets `X-Sandbox-Diagnosis` and `X-Sandbox-Hint` headers and the doctor's full report on the
//! sandbox's terminal ([`diagnosis`]); `GET /sandbox/requests` lists the last 100 requests
//! ([`log`]); faults are played on demand ([`faults`]). Answer bodies stay byte for byte the
//! live service's; accepted requests get no extra header. `wbauth serve` never runs this.

pub(crate) mod diagnosis;
pub(crate) mod faults;
pub(crate) mod log;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use whitebit_auth::ApiError;

use crate::edge::server::{AppState, CloseConnection, Peer, answered, error_response};
use crate::ops::metrics::Outcome;
use crate::verify::gateway::Gateway;
use diagnosis::{Known, explain, first, report};
use faults::{Dice, Fault, Faults};
use log::{Entry, RequestLog};

/// `X-Sandbox-Diagnosis`: the finding codes of a refusal, or `injected-…`.
pub(crate) static DIAGNOSIS: HeaderName = HeaderName::from_static("x-sandbox-diagnosis");
/// `X-Sandbox-Hint`: one short sentence.
pub(crate) static HINT: HeaderName = HeaderName::from_static("x-sandbox-hint");
/// `X-Sandbox-Fault`: the fault a request asks for.
pub(crate) static FAULT: HeaderName = HeaderName::from_static("x-sandbox-fault");
/// The request log's path.
pub(crate) const REQUESTS_PATH: &str = "/sandbox/requests";

/// How long an injected timeout holds the request before answering 504.
const TIMEOUT_HOLD: Duration = Duration::from_secs(120);
/// The pieces of a slow body, and the pause before each.
const SLOW_PIECES: usize = 8;
const SLOW_PAUSE: Duration = Duration::from_millis(150);

/// The sandbox's teaching state, beside the gateway.
#[derive(Debug)]
pub(crate) struct Teacher {
    log: RequestLog,
    dice: Dice,
    /// The key named when a request's key is unknown.
    demo_key: Option<String>,
    /// Per public key, the greatest nonce accepted.
    last_nonce: Mutex<HashMap<String, u64>>,
    /// Turns `true` when the sandbox begins to shut down (ends an injected timeout's hold).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Teacher {
    pub(crate) fn new(faults: Faults, demo_key: Option<String>) -> Self {
        Self {
            log: RequestLog::default(),
            dice: Dice::new(faults),
            demo_key,
            last_nonce: Mutex::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Shutdown has begun: held requests are answered now, so the drain does not wait for them.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    fn nonces(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.last_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn with_marks(mut response: Response, codes: &[&str], hint: Option<&str>) -> Response {
    if let Ok(value) = HeaderValue::from_str(&codes.join(", ")) {
        response.headers_mut().insert(DIAGNOSIS.clone(), value);
    }
    if let Some(Ok(value)) = hint.map(HeaderValue::from_str) {
        response.headers_mut().insert(HINT.clone(), value);
    }
    response
}

/// The sandbox's public router: every request goes through [`handle`] (the teaching around the
/// gateway's own answer).
pub(crate) fn router(gateway: Arc<Gateway>, teacher: Arc<Teacher>) -> axum::Router {
    #[derive(Clone)]
    struct Sandbox {
        app: AppState,
        teacher: Arc<Teacher>,
    }
    async fn fallback(
        axum::extract::State(sandbox): axum::extract::State<Sandbox>,
        peer: Option<axum::extract::Extension<Peer>>,
        request: Request,
    ) -> Response {
        handle(&sandbox.app, &sandbox.teacher, peer, request).await
    }
    axum::Router::new().fallback(fallback).with_state(Sandbox {
        app: AppState::new(gateway),
        teacher,
    })
}

/// One request through the sandbox: the request log, an injected fault or the gateway's
/// answer, and the diagnosis of a refusal.
async fn handle(
    state: &AppState,
    teacher: &Teacher,
    peer: Option<axum::extract::Extension<Peer>>,
    request: Request,
) -> Response {
    let now = state.gateway.clock().now_ms();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let entry = |status: Option<u16>, codes: Vec<String>| Entry {
        time_ms: now,
        method: method.to_string(),
        path: path.clone(),
        status,
        codes,
    };
    if method == Method::GET && request.uri().path() == REQUESTS_PATH {
        let mut response = Response::new(Body::from(teacher.log.json()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return response;
    }
    let asked = request.headers().get(&FAULT).map(|v| {
        std::str::from_utf8(v.as_bytes())
            .map_err(|_| "X-Sandbox-Fault is not text".to_owned())
            .and_then(Fault::named)
    });
    let (fault, latency) = match asked {
        Some(Ok(fault)) => (Some(fault), 0),
        Some(Err(problem)) => {
            let body = serde_json::json!({
                "code": 0,
                "message": format!("X-Sandbox-Fault: {problem}."),
            })
            .to_string();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            teacher
                .log
                .record(entry(Some(400), vec!["unknown-fault".into()]));
            return with_marks(
                response,
                &["unknown-fault"],
                Some("Fix the X-Sandbox-Fault header."),
            );
        }
        None => teacher.dice.roll(),
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(fault) = fault
        && let Some(error) = injected_error(fault)
    {
        // Logged before a timeout's long hold, so the log shows it at once.
        eprintln!("sandbox: injected {} for {method} {path}", fault.name());
        let status = error.map(ApiError::status);
        teacher
            .log
            .record(entry(status, vec![fault.marker().into()]));
        return injected(teacher, fault, error).await;
    }

    // The gateway's own answer, the body copied as the checks read it.
    let (head, body) = request.into_parts();
    let copy: Arc<Mutex<Vec<u8>>> = Arc::default();
    let tee = copy.clone();
    let body = Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            tee.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(data);
        }
        frame
    }));
    let (response, outcome) = answered(state, peer, Request::from_parts(head.clone(), body)).await;
    let body = std::mem::take(
        &mut *copy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let refusal = match outcome {
        Outcome::Refused(ApiError::BadGateway | ApiError::GatewayTimeout) | Outcome::Accepted => {
            remember_nonce(teacher, &head, &body);
            None
        }
        Outcome::Refused(e) => Some(Some(e)),
        Outcome::MissingFields => Some(None),
        Outcome::TokenRefused => {
            // A Fiat Gateway token (docs/errors.md section 3): not the doctor's subject.
            let code = "token-refused";
            teacher
                .log
                .record(entry(Some(response.status().as_u16()), vec![code.into()]));
            let hint = "Check the partner token against docs/errors.md section 3.";
            return with_marks(response, &[code], Some(hint));
        }
        Outcome::Public | Outcome::Transport => None,
    };
    let Some(refusal) = refusal else {
        let status = Some(response.status().as_u16());
        return if fault == Some(Fault::SlowBody) {
            let marker = Fault::SlowBody.marker();
            teacher.log.record(entry(status, vec![marker.into()]));
            slow(with_marks(response, &[marker], None)).await
        } else {
            teacher.log.record(entry(status, Vec::new()));
            response
        };
    };
    let secret = match first(&head.headers, whitebit_auth::headers::API_KEY_LOWERCASE) {
        Some(key) => state.gateway.secret_of(key).await,
        None => None,
    };
    let api_key = first(&head.headers, whitebit_auth::headers::API_KEY_LOWERCASE).unwrap_or("");
    let known = Known {
        secret: secret.as_ref().map(wbauth_store::SecretBytes::expose),
        key_known: state.gateway.holds_key(api_key),
        example_key: teacher.demo_key.as_deref(),
        last_nonce: teacher.nonces().get(api_key).copied(),
        body_match: state.gateway.body_match(),
        now_ms: now,
    };
    let diagnosis = explain(&head, &body, refusal, &known);
    let status = response.status().as_u16();
    let (parts, answer) = response.into_parts();
    let answer = answer
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    eprint!("{}", report(&head, status, &answer, &diagnosis));
    teacher.log.record(entry(
        Some(status),
        diagnosis.codes.iter().map(|c| (*c).to_owned()).collect(),
    ));
    let response = Response::from_parts(parts, Body::from(answer));
    with_marks(response, &diagnosis.codes, Some(diagnosis.hint))
}

/// Records the nonce of an accepted request as the key's last (the greatest seen).
fn remember_nonce(teacher: &Teacher, head: &axum::http::request::Parts, body: &[u8]) {
    let Some(key) = first(&head.headers, whitebit_auth::headers::API_KEY_LOWERCASE) else {
        return;
    };
    let Ok(fields) = whitebit_auth::json::parse_object(body) else {
        return;
    };
    let Ok(nonce) = whitebit_auth::verify::nonce_field(&fields) else {
        return;
    };
    let mut nonces = teacher.nonces();
    let last = nonces.entry(key.to_owned()).or_insert(nonce);
    *last = (*last).max(nonce);
}

/// The answer of an injected fault: `Some(None)` for a connection closed without one (`reset`),
/// `None` for a fault that lets the request through (`slow_body`).
fn injected_error(fault: Fault) -> Option<Option<ApiError>> {
    Some(match fault {
        Fault::RateLimit => Some(ApiError::RateLimited),
        Fault::Nonce => Some(ApiError::NonceNotIncreasing),
        Fault::Unavailable => Some(ApiError::ServiceUnavailable),
        Fault::Timeout => Some(ApiError::GatewayTimeout),
        Fault::Reset => None,
        Fault::SlowBody => return None,
    })
}

/// Plays an injected fault: the live service's answer for `error` (after a long hold for
/// `timeout`), or a closed connection.
async fn injected(teacher: &Teacher, fault: Fault, error: Option<ApiError>) -> Response {
    let Some(error) = error else {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(CloseConnection);
        return response;
    };
    if fault == Fault::Timeout {
        let mut stopping = teacher.stopping.subscribe();
        tokio::select! {
            () = tokio::time::sleep(TIMEOUT_HOLD) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }
    with_marks(error_response(error), &[fault.marker()], None)
}

/// The same answer, its body sent in pieces with a pause before each.
async fn slow(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let size = bytes.len().div_ceil(SLOW_PIECES).max(1);
    let pieces = (0..bytes.len())
        .step_by(size)
        .map(|at| bytes.slice(at..(at + size).min(bytes.len())))
        .collect();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = SlowBody {
        pieces,
        pause: Box::pin(tokio::time::sleep(SLOW_PAUSE)),
    };
    Response::from_parts(parts, Body::new(body))
}

/// A body that sends its pieces one by one, each after [`SLOW_PAUSE`].
struct SlowBody {
    pieces: std::collections::VecDeque<Bytes>,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for SlowBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::future::Future as _;
        if self.pieces.is_empty() {
            return std::task::Poll::Ready(None);
        }
        if self.pause.as_mut().poll(cx).is_pending() {
            return std::task::Poll::Pending;
        }
        let next = tokio::time::Instant::now() + SLOW_PAUSE;
        self.pause.as_mut().reset(next);
        let piece = self.pieces.pop_front();
        std::task::Poll::Ready(piece.map(|p| Ok(hyper::body::Frame::data(p))))
    }
}
