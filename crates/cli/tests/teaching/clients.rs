//! Real clients against the real sandbox: python-requests and Node's `fetch` make the common
//! signing mistakes (`clients/mistakes.py`, `clients/mistakes.mjs`), and each is answered with
//! the live service's body plus the finding code in `X-Sandbox-Diagnosis` and a hint. Needs
//! `python3` with `requests` and `node` 18 or later on the PATH.

use std::process::Command;

use serde_json::Value;

use crate::common::Sandbox;
use crate::config::{TRADE_BALANCE, demo};

/// Runs `program script` against `sb`; one JSON object per line of its output.
fn run(program: &str, script: &str, sb: &Sandbox, env: &[(&str, &str)]) -> Vec<Value> {
    let path = format!(
        "{}/tests/teaching/clients/{script}",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(program)
        .arg(&path)
        .env("SANDBOX", &sb.base)
        .env("KEY", &sb.key)
        .env("SECRET", &sb.secret)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run ({e}): install it to run this test"));
    assert!(
        out.status.success(),
        "{program} {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// Every case: accepted ones plain, the others diagnosed with the code they are named after.
fn assert_cases(results: &[Value], expected: usize) {
    assert_eq!(results.len(), expected, "{results:#?}");
    for r in results {
        let case = r["case"].as_str().expect("case");
        if case == "ok" || case.ends_with("-is-fine") {
            assert_eq!(
                (r["status"].as_u64(), r["body"].as_str()),
                (Some(200), Some(TRADE_BALANCE)),
                "{r}"
            );
            assert!(r["diagnosis"].is_null() && r["hint"].is_null(), "{r}");
            continue;
        }
        let codes = r["diagnosis"]
            .as_str()
            .unwrap_or_else(|| panic!("no diagnosis: {r}"));
        let expected = if case == "legacy-sdk" {
            "payload-body-mismatch"
        } else {
            case
        };
        assert!(codes.split(", ").any(|c| c == expected), "{case}: {r}");
        assert!(
            r["hint"]
                .as_str()
                .is_some_and(|h| h.is_ascii() && !h.is_empty()),
            "{r}"
        );
        // The body is the live service's, byte for byte: JSON with a code and a message.
        let body: Value = serde_json::from_str(r["body"].as_str().expect("body")).expect("json");
        assert!(body["code"].is_i64() && body["message"].is_string(), "{r}");
    }
}

#[test]
fn python_requests_mistakes_are_diagnosed() {
    let sb = Sandbox::start();
    let results = run("python3", "mistakes.py", &sb, &[]);
    assert_cases(&results, 11);
    let seconds = results
        .iter()
        .find(|r| r["case"] == "nonce-not-increasing")
        .expect("case");
    assert!(
        seconds["diagnosis"]
            .as_str()
            .is_some_and(|d| d.contains("nonce-seconds")),
        "{seconds}"
    );
}

#[test]
fn the_legacy_sdk_is_accepted_with_body_match_json() {
    let sb = Sandbox::start_with(&demo(&["--body-match", "json"]));
    let results = run("python3", "mistakes.py", &sb, &[("ONLY", "legacy-sdk")]);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["status"], 200, "{results:?}");
    assert_eq!(results[0]["body"], TRADE_BALANCE);
    assert!(results[0]["diagnosis"].is_null());
}

#[test]
fn node_fetch_mistakes_are_diagnosed() {
    let sb = Sandbox::start();
    let results = run("node", "mistakes.mjs", &sb, &[]);
    assert_cases(&results, 8);
}
