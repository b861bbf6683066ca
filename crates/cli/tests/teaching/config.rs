//! `wbauth sandbox --config FILE`, the `WBAUTH_GATEWAY__…` variables and `--body-match`: the
//! gateway's behaviours offline, as `wbauth serve` reads them.

use std::process::Command;

use crate::common::catalogue::{BAD_PAYLOAD, BALANCE, FORBIDDEN, MAIN_BALANCE, ORDER};
use crate::common::gateway::{UPSTREAM_ANSWER, Upstream};
use crate::common::{
    Answer, DEMO_KEY, DEMO_SECRET, Sandbox, assert_answer, now_ms, post, signed, signed_headers,
};
use crate::diagnosis::codes;

pub(crate) const TRADE_BALANCE: &str =
    r#"{"BTC":{"available":"0.5","freeze":"0"},"USDT":{"available":"1000","freeze":"0"}}"#;
pub(crate) const RATE_LIMITED: &str = r#"{"code":0,"message":"Rate limit exceeded."}"#;

/// The demo credentials and `args`.
pub(crate) fn demo<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&'a str> = vec!["--demo-key", DEMO_KEY, "--demo-secret", DEMO_SECRET];
    all.extend_from_slice(args);
    all
}

/// What a legacy SDK sends: the payload signed over compact JSON, the body re-serialised with
/// spaces (`json.dumps` defaults).
pub(crate) async fn legacy_sdk_request(sb: &Sandbox, path: &str) -> Answer {
    let nonce = now_ms();
    let compact = format!(r#"{{"request":"{path}","nonce":{nonce}}}"#);
    let spaced = format!(r#"{{"request": "{path}", "nonce": {nonce}}}"#);
    let s = sb.sign(&compact);
    post(
        &sb.url(path),
        &signed_headers(&sb.key, &s.payload, &s.signature),
        spaced,
    )
    .await
}

fn body(path: &str) -> String {
    format!(r#"{{"request":"{path}","nonce":{}}}"#, now_ms())
}

#[tokio::test]
async fn body_match_json_from_the_flag_and_from_the_environment() {
    let exact = Sandbox::start();
    assert_answer(&legacy_sdk_request(&exact, BALANCE).await, 400, BAD_PAYLOAD);

    let flag = Sandbox::start_with(&demo(&["--body-match", "json"]));
    assert_answer(
        &legacy_sdk_request(&flag, BALANCE).await,
        200,
        TRADE_BALANCE,
    );

    let env = Sandbox::start_env(
        &demo(&[]),
        &[(
            "WBAUTH_GATEWAY__VERIFY__BODY_MATCH".to_owned(),
            "json".to_owned(),
        )],
    );
    assert_answer(&legacy_sdk_request(&env, BALANCE).await, 200, TRADE_BALANCE);

    // The flag wins over the environment.
    let both = Sandbox::start_env(
        &demo(&["--body-match", "exact"]),
        &[(
            "WBAUTH_GATEWAY__VERIFY__BODY_MATCH".to_owned(),
            "json".to_owned(),
        )],
    );
    assert_answer(&legacy_sdk_request(&both, BALANCE).await, 400, BAD_PAYLOAD);
}

#[tokio::test]
async fn a_config_file_brings_routes_kinds_and_rate_limits() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "[[kind]]\nname = \"trade\"\npaths = [\"/api/v4/trade-account/*\", \"/api/v4/order/*\"]\n\n\
             [rate_limit.trade]\nrequests = 2\nwindow_ms = 600000\n\n\
             [[route]]\nprefix = \"/api/v4/order\"\nupstream = \"http://{}\"\n",
            upstream.addr
        ),
    )
    .expect("config written");
    let path = file.to_str().expect("utf-8 path");
    let sb = Sandbox::start_with(&demo(&["--config", path, "--demo-kind", "trade"]));

    // A routed path reaches the real upstream with the signed bytes.
    let order = body(ORDER);
    assert_answer(&signed(&sb, ORDER, &order).await, 200, UPSTREAM_ANSWER);
    assert_eq!(upstream.count(), 1);
    assert_eq!(upstream.last().body, order.as_bytes());
    // A path no route serves gets the built-in answer.
    assert_answer(
        &signed(&sb, BALANCE, &body(BALANCE)).await,
        200,
        TRADE_BALANCE,
    );
    // The demo key's kind does not open the main account.
    let forbidden = signed(&sb, MAIN_BALANCE, &body(MAIN_BALANCE)).await;
    assert_answer(&forbidden, 403, FORBIDDEN);
    assert_eq!(codes(&forbidden), ["endpoint-not-allowed"]);
    // The third request in the window is over the kind's limit (the 403 above counted).
    let limited = signed(&sb, BALANCE, &body(BALANCE)).await;
    assert_answer(&limited, 429, RATE_LIMITED);
    assert!(limited.headers.contains_key("retry-after"), "{limited:?}");
    assert_eq!(codes(&limited), ["rate-limited"]);
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn a_rate_limit_from_the_environment_applies_to_the_demo_key() {
    let vars = [
        ("WBAUTH_GATEWAY__RATE_LIMIT__SANDBOX__REQUESTS", "1"),
        ("WBAUTH_GATEWAY__RATE_LIMIT__SANDBOX__WINDOW_MS", "600000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let sb = Sandbox::start_env(&demo(&[]), &vars);
    assert_answer(
        &signed(&sb, BALANCE, &body(BALANCE)).await,
        200,
        TRADE_BALANCE,
    );
    assert_answer(
        &signed(&sb, BALANCE, &body(BALANCE)).await,
        429,
        RATE_LIMITED,
    );
}

/// `wbauth sandbox ARGS` that must exit at once with an error; its stderr.
fn refused_to_start(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("wbauth runs");
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_is_named() {
    let err = refused_to_start(&["--demo-kind", "trade"]);
    assert!(
        err.contains("--demo-kind trade") && err.contains("sandbox"),
        "{err}"
    );
    let err = refused_to_start(&["--config", "/nonexistent/gateway.toml"]);
    assert!(err.contains("/nonexistent/gateway.toml"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[verify]\nbody_match = \"loose\"\n").expect("written");
    let err = refused_to_start(&["--config", file.to_str().expect("utf-8")]);
    assert!(
        err.contains("bad.toml") && err.contains("body_match"),
        "{err}"
    );
    let err = refused_to_start(&["--body-match", "loose"]);
    assert!(err.contains("loose"), "{err}");
}
