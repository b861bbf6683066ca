//! Upstream failure drill: behind the real gateway, upstreams that refuse the
//! connection, never answer, answer only part of their head or body and then reset or close
//! the connection, or send their head and then stall. Under concurrent load mixed with good
//! requests, every failed request gets exactly 502 `{"code":0,"message":"Bad gateway."}` or
//! 504 `{"code":0,"message":"Gateway timeout."}` (`docs/errors.md`), the gateway stays healthy
//! (`/healthz` 200, the good route keeps answering 200), and a replay of every request is
//! refused: a failed forward still consumed its nonce, nothing is accepted twice.
//!
//! No timing: the stalling upstreams never answer, so only the route's timeout can end them.

#![cfg(feature = "test-clock")]

mod common;
mod drill_support;

use std::net::SocketAddr;
use std::time::Duration;

use common::gateway::{Gateway, T0, UPSTREAM_ANSWER, Upstream};
use drill_support::{Prepared, Reply, Rng, Scale, Tally, accepted_twice, send, send_batches};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How a faulty upstream behaves once it has read a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing listens on the port.
    Refused,
    /// Reads the request and never answers.
    Silent,
    /// Half a status line and headers, then a TCP reset.
    ResetInHead,
    /// A whole head (`Content-Length: 64`), a few body bytes, then a TCP reset.
    ResetInBody,
    /// A whole head, a few body bytes, then a clean close (FIN) before the body is complete.
    ClosedInBody,
    /// A whole head, a few body bytes, then nothing more (the connection stays open).
    StallInBody,
}

const FAULTS: [Fault; 6] = [
    Fault::Refused,
    Fault::Silent,
    Fault::ResetInHead,
    Fault::ResetInBody,
    Fault::ClosedInBody,
    Fault::StallInBody,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Refused => "refused",
            Fault::Silent => "silent",
            Fault::ResetInHead => "reset-in-head",
            Fault::ResetInBody => "reset-in-body",
            Fault::ClosedInBody => "closed-in-body",
            Fault::StallInBody => "stall-in-body",
        }
    }

    /// The route of this fault (opened by the `trade` kind: `/api/v4/order/*`).
    fn path(self) -> String {
        format!("/api/v4/order/{}", self.name())
    }

    /// What the client must get.
    fn expected(self) -> (u16, &'static str) {
        match self {
            Fault::Silent | Fault::StallInBody => (504, drill_support::GATEWAY_TIMEOUT),
            _ => (502, drill_support::BAD_GATEWAY),
        }
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body); false when the peer closed.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[allow(deprecated)] // `set_linger(0)` is exactly what makes the close a reset.
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn misbehave(
    mut stream: TcpStream,
    fault: Fault,
    parked: tokio::sync::mpsc::Sender<TcpStream>,
) {
    if !read_request(&mut stream).await {
        return;
    }
    const HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n";
    match fault {
        Fault::Refused => unreachable!("nothing listens"),
        Fault::Silent => {
            let _ = parked.send(stream).await;
        }
        Fault::ResetInHead => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-ty").await;
            let _ = stream.flush().await;
            reset(stream);
        }
        Fault::ResetInBody | Fault::ClosedInBody | Fault::StallInBody => {
            let _ = stream.write_all(HEAD).await;
            let _ = stream.write_all(br#"{"ok":tr"#).await;
            let _ = stream.flush().await;
            match fault {
                Fault::ResetInBody => reset(stream),
                Fault::ClosedInBody => {
                    let _ = stream.shutdown().await;
                }
                _ => {
                    let _ = parked.send(stream).await;
                }
            }
        }
    }
}

/// Starts a faulty upstream; its address.
async fn faulty_upstream(fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    if fault == Fault::Refused {
        // A port that was free a moment ago and that nothing listens on now.
        drop(listener);
        return addr;
    }
    // Connections that must stay open (never answered) are parked here until the test ends.
    let (parked, mut holder) = tokio::sync::mpsc::channel::<TcpStream>(1024);
    tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Some(stream) = holder.recv().await {
            kept.push(stream);
        }
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(misbehave(stream, fault, parked.clone()));
        }
    });
    addr
}

async fn healthz(gateway: &Gateway) -> u16 {
    reqwest::get(format!("{}/healthz", gateway.admin))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_answer_502_or_504_and_the_gateway_stays_healthy() {
    let scale = Scale::from_env();
    let seed = drill_support::seed();
    let mut rng = Rng::new(seed);
    let (rounds, per_fault, good) = scale.pick((2, 3, 8), (20, 10, 40));

    let upstream = Upstream::start().await;
    let mut extra = String::new();
    for fault in FAULTS {
        let addr = faulty_upstream(fault).await;
        extra.push_str(&format!(
            "\n[[route]]\nprefix = \"{}\"\nupstream = \"http://{addr}\"\ntimeout_ms = 300\n",
            fault.path()
        ));
    }
    let gateway = Gateway::start_with(&upstream, &extra).await;
    let (key, secret) = gateway.provision_key("drill", "trade", &[]).await;
    // Window mode, clock frozen: every nonce is unique and inside the window, so only the
    // nonce store can refuse one (and must, on replay).
    let frozen = gateway.clock(json!({"set_ms": T0 + 600_000})).await;
    let mut next_nonce = frozen - 4_000;
    let good_path = "/api/v4/order/new";

    let mut tally = Tally::default();
    let mut sent: Vec<(Prepared, Reply)> = Vec::new();
    for round in 0..rounds {
        // A shuffled mix of every fault and good requests, sent 16 at a time.
        let mut batch: Vec<(Option<Fault>, Prepared)> = Vec::new();
        for fault in FAULTS {
            for _ in 0..per_fault {
                batch.push((
                    Some(fault),
                    Prepared::new(&key, &secret, &fault.path(), next_nonce, true),
                ));
                next_nonce += 1;
            }
        }
        for _ in 0..good {
            batch.push((
                None,
                Prepared::new(&key, &secret, good_path, next_nonce, true),
            ));
            next_nonce += 1;
        }
        for i in (1..batch.len()).rev() {
            batch.swap(i, rng.between(0, i));
        }
        let requests: Vec<Prepared> = batch.iter().map(|(_, p)| p.clone()).collect();
        let replies = send_batches(&gateway.base, &requests, 16).await;
        tally.add_all(&replies);
        for ((fault, prepared), reply) in batch.into_iter().zip(replies) {
            let (status, body) = fault.map_or((200, UPSTREAM_ANSWER), Fault::expected);
            assert_eq!(
                (
                    reply.status,
                    reply.body.as_str(),
                    reply.content_type.as_deref()
                ),
                (Some(status), body, Some("application/json")),
                "round {round}, {}: {reply:?}",
                fault.map_or("good", Fault::name)
            );
            sent.push((prepared, reply));
        }
        // Healthy after every round: the process lives, /healthz answers 200.
        assert_eq!(healthz(&gateway).await, 200, "round {round}");
    }
    assert_eq!(
        next_nonce - (frozen - 4_000),
        sent.len() as u64,
        "one nonce per request"
    );
    assert!(next_nonce < frozen + 5_000, "every nonce inside the window");

    // A good request after everything: answered by the good upstream.
    let last = Prepared::new(&key, &secret, good_path, next_nonce, true);
    let reply = send(&gateway.base, &last).await;
    tally.add(&reply);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (Some(200), UPSTREAM_ANSWER)
    );
    sent.push((last, reply));

    // Replay everything: every nonce was consumed, failed forwards included.
    let requests: Vec<Prepared> = sent.iter().map(|(p, _)| p.clone()).collect();
    let replies = send_batches(&gateway.base, &requests, 16).await;
    tally.add_all(&replies);
    for (request, reply) in requests.iter().zip(&replies) {
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (Some(429), drill_support::NONCE_REFUSED),
            "replay of {}",
            request.body
        );
    }
    let replay: Vec<(Prepared, Reply)> = requests.into_iter().zip(replies).collect();
    let twice = accepted_twice(&upstream, &sent, &replay);
    // Exactly the good requests reached the good upstream, once each.
    assert_eq!(upstream.deliveries().len(), (rounds * good + 1) as usize);
    assert_eq!(healthz(&gateway).await, 200);
    assert!(
        gateway.stderr_text().contains("upstream timed out"),
        "the gateway logged its timeouts"
    );
    tally.report(
        "upstream",
        &[
            ("scale", scale.name().to_owned()),
            ("seed", seed.to_string()),
            ("faults", FAULTS.len().to_string()),
        ],
        twice.len(),
    );
}
