// Requires: Rust 1.94+, the whitebit-client crate (crates/client of this repository) and tokio.
// Run: cd examples/rust && WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 cargo run -p client-example
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
use std::process::ExitCode;

use serde_json::json;
use whitebit_client::{Client, Error};

#[tokio::main]
async fn main() -> ExitCode {
    // WBAUTH_API_KEY, WBAUTH_API_SECRET and WBAUTH_BASE_URL (default https://whitebit.com). Window
    // mode (nonceWindow: true) is the default; nonces come from the client's NonceSource,
    // max(now_ms, last + 1) in one atomic, shared by every clone of the client and every task.
    let client = match Client::builder().from_env().build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    for path in ["/api/v4/trade-account/balance", "/api/v4/jwt"] {
        // Builds {"request":PATH,"nonce":…,"nonceWindow":true} once, signs it and sends exactly
        // those bytes; never follows a redirect.
        match client.post(path, ()).await {
            Ok(answer) => println!("POST {path} 200 {answer}"),
            // The server's error, parsed (status, kind, code, message) and printed back as JSON,
            // e.g. 401 {"code":10,"message":"Unauthorized request."}. Programs branch on failure.kind.
            Err(Error::Api(failure)) => {
                let body = json!({ "code": failure.code, "message": failure.message });
                eprintln!("POST {path} {} {body}", failure.status);
                ok = false;
            }
            Err(e) => {
                // Connection refused, timeout, ...: the error and its causes.
                let chain =
                    std::iter::successors(Some(&e as &dyn std::error::Error), |&e| e.source());
                let causes: Vec<String> = chain.map(ToString::to_string).collect();
                eprintln!("POST {path} failed: {}", causes.join(": "));
                ok = false;
            }
        }
    }
    ExitCode::from(if ok { 0 } else { 1 })
}
