// Requires: Rust 1.94+ with the crates hmac, sha2, base64 and reqwest (blocking; rustls for https).
// Run: cd examples/rust && WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 cargo run -p bytes-example
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
use std::env;
use std::error::Error;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::blocking::Client;
use reqwest::redirect::Policy;
use sha2::Sha512;

static LAST_NONCE: Mutex<u64> = Mutex::new(0);

/// Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond.
fn next_nonce() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = since_epoch.as_millis() as u64;
    let mut last = LAST_NONCE.lock().unwrap_or_else(PoisonError::into_inner);
    *last = now.max(*last + 1);
    *last
}

fn call(http: &Client, base_url: &str, key: &str, secret: &str, path: &str) -> bool {
    // Build the body once; sign and send exactly these bytes.
    let nonce = next_nonce();
    let body = format!(r#"{{"request":"{path}","nonce":{nonce},"nonceWindow":true}}"#);
    let payload = BASE64.encode(&body);
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    let digest = mac.finalize().into_bytes();
    let signature: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let answer = http
        .post(format!("{}{path}", base_url.trim_end_matches('/')))
        .header("Content-Type", "application/json")
        .header("X-TXC-APIKEY", key)
        .header("X-TXC-PAYLOAD", payload)
        .header("X-TXC-SIGNATURE", signature)
        .body(body) // the String itself: sent as is
        .send()
        .and_then(|response| Ok((response.status().as_u16(), response.text()?)));
    match &answer {
        Ok((200, text)) => println!("POST {path} 200 {text}"),
        // The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
        Ok((status, text)) => eprintln!("POST {path} {status} {text}"),
        Err(e) => {
            // Connection refused, timeout, ...: the error and its causes.
            let chain = std::iter::successors(Some(e as &dyn Error), |&e| e.source());
            let causes: Vec<String> = chain.map(ToString::to_string).collect();
            eprintln!("POST {path} failed: {}", causes.join(": "));
        }
    }
    matches!(answer, Ok((200, _)))
}

fn main() -> Result<ExitCode, reqwest::Error> {
    let key = env::var("WBAUTH_API_KEY").unwrap_or_default();
    let secret = env::var("WBAUTH_API_SECRET").unwrap_or_default();
    if key.is_empty() || secret.is_empty() {
        eprintln!("set WBAUTH_API_KEY and WBAUTH_API_SECRET");
        return Ok(ExitCode::FAILURE);
    }
    let base_url = env::var("WBAUTH_BASE_URL").unwrap_or_else(|_| "https://whitebit.com".into());
    // Never follow a redirect: it would hand the signed request to another address.
    let http = Client::builder().redirect(Policy::none()).build()?; // timeout: 30 s by default
    let mut ok = true;
    for path in ["/api/v4/trade-account/balance", "/api/v4/jwt"] {
        ok &= call(&http, &base_url, &key, &secret, path);
    }
    Ok(ExitCode::from(if ok { 0 } else { 1 }))
}
