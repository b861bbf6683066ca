//! Accounts, 2FA and key management end to end: the real `wbauth serve` (test clock) in front
//! of a recording upstream on 127.0.0.1, managed through the real `wbauth accounts` / `wbauth
//! keys` commands (the admin API), and signed requests through the gateway. The test clock is
//! frozen and moved (30 s between TOTP actions, 15 days for idleness): nothing sleeps.

#![cfg(feature = "test-clock")]

mod common;

use std::process::Command;

use common::assert_answer;
use common::catalogue::{BALANCE, FORBIDDEN, KEY_DISABLED, MAIN_BALANCE, ORDER, UNAUTHORIZED};
use common::gateway::*;
use serde_json::json;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// `keys create --account ACCOUNT --kind KIND --code CODE`, then `more`.
fn create_key<'a>(
    account: &'a str,
    kind: &'a str,
    code: &'a str,
    more: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "keys",
        "create",
        "--account",
        account,
        "--kind",
        kind,
        "--code",
        code,
    ];
    args.extend_from_slice(more);
    args
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_through_the_cli_and_the_gateway() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let mut now = T0;

    // Health on the admin listener; the admin API wants the token.
    let health = reqwest::get(format!("{}/healthz", gw.admin))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.expect("body"), r#"{"status":"ok"}"#);
    let ready = reqwest::get(format!("{}/readyz", gw.admin))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(ready.text().await.expect("body"), r#"{"status":"ready"}"#);
    let anonymous = reqwest::get(format!("{}/admin/accounts", gw.admin))
        .await
        .expect("accounts");
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(
        anonymous.text().await.expect("body"),
        r#"{"code":0,"message":"Admin token missing or wrong (Authorization: Bearer <token>)."}"#
    );
    let wrong_token = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(["accounts", "list", "--admin-url", &gw.admin])
        .env("WBAUTH_ADMIN_TOKEN", "not-the-admin-token-at-all")
        .output()
        .expect("runs");
    assert_eq!(wrong_token.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&wrong_token.stderr),
        "error: Admin token missing or wrong (Authorization: Bearer <token>).\n"
    );

    // An account; no key without 2FA.
    assert_eq!(
        gw.ok(&["accounts", "create", "alice"]),
        "Created account alice. Enable two-factor authentication before creating keys: wbauth accounts 2fa alice\n"
    );
    gw.refused(
        &["accounts", "create", "alice"],
        "an account named \"alice\" already exists",
    );
    gw.refused(
        &create_key("alice", "trade", "123456", &[]),
        "Account alice has no two-factor authentication; enable it first (wbauth accounts 2fa alice).",
    );

    // 2FA: URI, QR code, confirmed with a code typed at the prompt.
    let totp = enrol_interactively(&gw, "alice", now);
    let confirm_code = code(&totp, now);
    let account = gw.ok_json(&["accounts", "show", "alice"]);
    assert_eq!(account["account"]["two_factor"], "on");

    // The confirmation code was used; a wrong code is refused; inputs are checked first.
    gw.refused(
        &create_key("alice", "trade", &confirm_code, &[]),
        "This TOTP code was already used; wait for the next one. 4 attempts left before the account is locked.",
    );
    gw.refused(
        &create_key("alice", "trade", &wrong_code(&totp, now), &[]),
        "Wrong TOTP code. 3 attempts left before the account is locked.",
    );
    gw.refused(
        &create_key("alice", "nope", "000000", &[]),
        "unknown key kind \"nope\" (configured kinds: trade, main)",
    );
    gw.refused(
        &create_key("alice", "trade", "000000", &["--endpoint", MAIN_BALANCE]),
        "endpoint \"/api/v4/main-account/balance\" is outside the \"trade\" kind, which opens: /api/v4/trade-account/*, /api/v4/order/*",
    );
    gw.refused(
        &create_key("alice", "trade", "000000", &["--ip", "10.0.0.1/8"]),
        "trusted IP #1: \"10.0.0.1/8\": host bits are set below the /8 prefix (write 10.0.0.0/8)",
    );
    let fifty_one: Vec<String> = (0..51).map(|i| format!("10.{i}.0.0/16")).collect();
    let mut args = create_key("alice", "trade", "000000", &[]);
    for ip in &fifty_one {
        args.extend(["--ip", ip.as_str()]);
    }
    gw.refused(
        &args,
        "too many trusted IPs: 51 given, a key holds at most 50 (keys.max_ips; a CIDR block counts as one entry)",
    );

    // A trade key for 127.0.0.1, with the next code.
    now = gw.advance(30_000).await;
    let created = gw.ok_json(&create_key(
        "alice",
        "trade",
        &code(&totp, now),
        &["--ip", "127.0.0.1"],
    ));
    let key = created["key"]["public_key"]
        .as_str()
        .expect("public key")
        .to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert_eq!((key.len(), secret.len()), (32, 64));
    assert_eq!(created["key"]["ips"], json!(["127.0.0.1"]));
    assert_eq!(created["key"]["state"], "active");
    assert_eq!(created["key"]["account"], "alice");
    // Never shown again.
    let shown = gw.ok(&["keys", "show", &key]);
    assert!(!shown.contains(&secret), "{shown}");
    assert!(
        shown.starts_with(&format!("public key:   {key}\n")),
        "{shown}"
    );
    assert!(shown.contains("trusted IPs:  127.0.0.1\n"), "{shown}");

    // Accepted and forwarded: the decoded payload as the body, the gateway's identity headers.
    let (a, sent) = gw.signed_body(&key, &secret, BALANCE).await;
    assert_answer(&a, 200, UPSTREAM_ANSWER);
    let seen = upstream.last();
    assert_eq!(seen.path, BALANCE);
    let body = String::from_utf8(seen.body.clone()).expect("utf8");
    assert_eq!(body, sent, "the decoded payload is the upstream's body");
    assert_eq!(seen.headers["x-auth-key"], key.as_str());
    assert_eq!(seen.headers["x-auth-account"], "alice");
    assert_eq!(
        seen.headers["content-length"],
        body.len().to_string().as_str()
    );
    no_txc_headers(&seen);
    let forwarded = upstream.count();

    // Disabled: refused on the very next request; enabled: accepted.
    assert!(
        gw.ok(&["keys", "disable", &key])
            .starts_with(&format!("Disabled API key {key}.\n"))
    );
    assert_answer(&gw.signed(&key, &secret, BALANCE).await, 401, KEY_DISABLED);
    assert_eq!(
        upstream.count(),
        forwarded,
        "a refused request reaches no upstream"
    );
    assert_eq!(
        gw.ok_json(&["keys", "show", &key])["key"]["state"],
        "disabled"
    );
    assert!(
        gw.ok(&["keys", "enable", &key])
            .starts_with(&format!("Enabled API key {key}.\n"))
    );
    assert_answer(
        &gw.signed(&key, &secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );

    // Another trusted address: refused; back to loopback (v4 and v6): accepted.
    gw.ok(&["keys", "set-ips", &key, "192.0.2.7"]);
    assert_answer(&gw.signed(&key, &secret, BALANCE).await, 401, KEY_DISABLED);
    let ips = gw.ok_json(&["keys", "set-ips", &key, "127.0.0.0/8", "::1"]);
    assert_eq!(ips["key"]["ips"], json!(["127.0.0.0/8", "::1"]));
    assert_answer(
        &gw.signed(&key, &secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );
    let out = gw.cli(&["keys", "set-ips", &key]);
    assert_eq!(out.status.code(), Some(2), "no addresses without --clear");

    // Narrowed endpoints: the rest of the kind is forbidden; outside the kind too.
    gw.ok(&["keys", "set-endpoints", &key, ORDER]);
    assert_answer(&gw.signed(&key, &secret, BALANCE).await, 403, FORBIDDEN);
    assert_answer(&gw.signed(&key, &secret, ORDER).await, 200, UPSTREAM_ANSWER);
    assert_eq!(upstream.last().path, ORDER);
    assert_answer(
        &gw.signed(&key, &secret, MAIN_BALANCE).await,
        403,
        FORBIDDEN,
    );
    gw.refused(
        &["keys", "set-endpoints", &key, MAIN_BALANCE],
        "endpoint \"/api/v4/main-account/balance\" is outside the \"trade\" kind, which opens: /api/v4/trade-account/*, /api/v4/order/*",
    );
    gw.ok(&["keys", "set-endpoints", &key, "--clear"]);
    assert_answer(
        &gw.signed(&key, &secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );

    // Idle for 15 days: deactivated; enable restarts the idle clock.
    now = gw.advance(15 * DAY_MS).await;
    assert_answer(&gw.signed(&key, &secret, BALANCE).await, 401, KEY_DISABLED);
    let idle = gw.ok_json(&["keys", "show", &key]);
    assert_eq!(idle["key"]["state"], "idle");
    assert_eq!(idle["key"]["idle_deactivated"], true);
    let enabled = gw.ok_json(&["keys", "enable", &key]);
    assert_eq!(enabled["key"]["state"], "active");
    assert_eq!(enabled["key"]["idle_anchor_ms"], now);
    assert_answer(
        &gw.signed(&key, &secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );

    // 50 trusted IPs is the limit.
    let mut fifty: Vec<String> = (0..49).map(|i| format!("2001:db8:{i:x}::/48")).collect();
    fifty.push("127.0.0.1".to_owned());
    let mut args = vec!["keys", "set-ips", key.as_str()];
    args.extend(fifty.iter().map(String::as_str));
    assert_eq!(
        gw.ok_json(&args)["key"]["ips"]
            .as_array()
            .expect("ips")
            .len(),
        50
    );
    assert_answer(
        &gw.signed(&key, &secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );
    let mut args = vec!["keys", "set-ips", key.as_str()];
    args.extend(fifty_one.iter().map(String::as_str));
    gw.refused(
        &args,
        "too many trusted IPs: 51 given, a key holds at most 50 (keys.max_ips; a CIDR block counts as one entry)",
    );
    assert_answer(
        &gw.signed(&key, &secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );

    // Rotation: a new secret shown once; the old one refused from then on.
    now = gw.advance(30_000).await;
    let rotated = gw.ok(&["keys", "rotate-secret", &key, "--code", &code(&totp, now)]);
    let new_secret = rotated
        .lines()
        .find_map(|l| l.strip_prefix("api_secret="))
        .expect("api_secret= line")
        .to_owned();
    assert!(rotated.contains(&format!("api_key={key}\n")), "{rotated}");
    assert!(
        rotated.contains("Store the secret now: it is never shown again."),
        "{rotated}"
    );
    assert_ne!(new_secret, secret);
    assert_answer(&gw.signed(&key, &secret, BALANCE).await, 401, UNAUTHORIZED);
    assert_answer(
        &gw.signed(&key, &new_secret, BALANCE).await,
        200,
        UPSTREAM_ANSWER,
    );
    gw.refused(
        &["keys", "rotate-secret", &key, "--code", &code(&totp, now)],
        "This TOTP code was already used; wait for the next one. 4 attempts left before the account is locked.",
    );

    // Listing.
    let listed = gw.ok_json(&["keys", "list", "--account", "alice"]);
    assert_eq!(listed["keys"].as_array().expect("keys").len(), 1);
    assert_eq!(listed["keys"][0]["public_key"], key.as_str());
    let table = gw.ok(&["keys", "list"]);
    assert!(table.starts_with("PUBLIC KEY"), "{table}");
    assert!(table.contains(&key), "{table}");
    gw.refused(
        &["keys", "list", "--account", "nobody"],
        "No account named \"nobody\".",
    );

    // Deleted: unknown from the next request on.
    assert_eq!(
        gw.ok(&["keys", "delete", &key]),
        format!("Deleted API key {key}.\n")
    );
    assert_answer(
        &gw.signed(&key, &new_secret, BALANCE).await,
        401,
        UNAUTHORIZED,
    );
    gw.refused(&["keys", "show", &key], &format!("No API key \"{key}\"."));

    // The audit log: every change, no secret, also on the gateway's stderr.
    let audit = gw.ok_json(&["keys", "audit", "--limit", "1000"]);
    let entries = audit["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    for action in [
        "account.create",
        "account.2fa.enrol",
        "account.2fa.confirm",
        "account.code_rejected",
        "key.create",
        "key.disable",
        "key.enable",
        "key.set_ips",
        "key.set_endpoints",
        "key.rotate_secret",
        "key.delete",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    // Operators by address; the idle deactivation found by the gateway itself by `system`.
    for e in entries {
        let actor = e["actor"].as_str().expect("actor");
        if e["action"] == "key.idle_deactivate" {
            assert_eq!(actor, "system");
            assert_eq!(e["detail"]["public_key"], key.as_str());
        } else {
            assert!(actor.ends_with("@127.0.0.1"), "{e}");
        }
    }
    assert!(actions.contains(&"key.idle_deactivate"), "{actions:?}");
    let audit_text = audit.to_string();
    let stderr = gw.stderr_text();
    let totp_base32 = whitebit_gateway::totp::base32_encode(&totp);
    for secret in [secret.as_str(), new_secret.as_str(), totp_base32.as_str()] {
        assert!(!audit_text.contains(secret), "a secret in the audit log");
        assert!(!stderr.contains(secret), "a secret on the gateway's stderr");
    }
    let audit_lines = stderr
        .lines()
        .filter(|l| l.contains(r#"{"audit":"#))
        .count();
    assert!(audit_lines >= entries.len(), "{stderr}");
    let table = gw.ok(&["keys", "audit"]);
    assert!(table.starts_with("AT"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_codes_lock_the_account_and_reenrolment_needs_a_code() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let mut now = T0;
    gw.ok(&["accounts", "create", "bob"]);
    // Enrol without confirming, then confirm with --code.
    let enrolment = gw.ok_json(&["accounts", "2fa", "bob", "--no-confirm"]);
    let totp = base32_decode(enrolment["secret"].as_str().expect("secret"));
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .expect("uri")
            .starts_with("otpauth://totp/wbauth:bob?secret=")
    );
    assert_eq!(
        gw.ok_json(&["accounts", "show", "bob"])["account"]["two_factor"],
        "pending"
    );
    assert_eq!(
        gw.ok(&["accounts", "2fa", "bob", "--code", &code(&totp, now)]),
        "Two-factor authentication is on for account bob.\n"
    );
    now = gw.advance(30_000).await;

    for left in ["4 attempts", "3 attempts", "2 attempts", "1 attempt"] {
        gw.refused(
            &create_key("bob", "main", &wrong_code(&totp, now), &[]),
            &format!("Wrong TOTP code. {left} left before the account is locked."),
        );
    }
    let locked = "Account bob is locked after too many wrong codes; try again in 15 min.";
    gw.refused(
        &create_key("bob", "main", &wrong_code(&totp, now), &[]),
        locked,
    );
    // Locked: even the right code is refused, and the admin API says for how long.
    gw.refused(&create_key("bob", "main", &code(&totp, now), &[]), locked);
    let body = json!({"account": "bob", "kind": "main", "code": code(&totp, now)});
    let answer = gw.admin_request("/admin/keys", body.to_string()).await;
    assert_eq!(answer.status().as_u16(), 429);
    assert_eq!(
        answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("900")
    );
    assert_eq!(
        answer.text().await.expect("body"),
        json!({"code": 0, "message": locked}).to_string()
    );
    let shown = gw.ok_json(&["accounts", "show", "bob"]);
    assert_eq!(shown["account"]["locked_until_ms"], now + 15 * 60 * 1000);

    // After 15 minutes the right code works.
    now = gw.advance(15 * 60 * 1000).await;
    let created = gw.ok(&create_key("bob", "main", &code(&totp, now), &[]));
    assert!(created.contains("api_secret="), "{created}");
    assert!(created.contains("kind:         main\n"), "{created}");

    // Re-enrolling needs a current code, or --force (audited).
    gw.refused(
        &["accounts", "2fa", "bob", "--no-confirm"],
        "Two-factor authentication is already on for account bob: re-enrolling needs a current code (--current-code) or --force.",
    );
    now = gw.advance(30_000).await;
    let again = gw.ok_json(&[
        "accounts",
        "2fa",
        "bob",
        "--no-confirm",
        "--current-code",
        &code(&totp, now),
    ]);
    assert_ne!(again["secret"], enrolment["secret"]);
    gw.ok(&["accounts", "2fa", "bob", "--no-confirm", "--force"]);
    let audit = gw.ok_json(&["keys", "audit"]);
    let forced = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "account.2fa.enrol" && e["detail"]["forced"] == true)
        .expect("the forced enrolment is audited");
    assert_eq!(forced["detail"]["account"], "bob");
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "account.lock")
    );
    let accounts = gw.ok(&["accounts", "list"]);
    assert!(accounts.starts_with("NAME"), "{accounts}");
    assert!(accounts.contains("bob"), "{accounts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_file_and_a_wrong_master_key() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), upstream.addr, "");

    // No WBAUTH_ADMIN_TOKEN: a token file is generated (0600) and the CLI reads it.
    let gw = spawn_serve(dir.path(), &config, &[], "first.log")
        .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    let token_file = gw.data_dir.join("admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        gw.stderr_text().contains(&format!(
            "admin token: generated into {}",
            token_file.display()
        )),
        "{}",
        gw.stderr_text()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args([
            "accounts",
            "create",
            "carol",
            "--admin-url",
            &gw.admin,
            "--data-dir",
        ])
        .arg(&gw.data_dir)
        .env_remove("WBAUTH_ADMIN_TOKEN")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(["accounts", "list", "--admin-url", &gw.admin])
        .current_dir(dir.path())
        .env_remove("WBAUTH_ADMIN_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "no token, no ./wbauth-data");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no admin token: set WBAUTH_ADMIN_TOKEN, or pass --data-dir with the gateway's data directory (it holds admin.token)\n"
    );
    assert!(gw.terminate().success());

    // A master key that is not the one the store was created with: a clear start-up error.
    let wrong = "00".repeat(32);
    let (status, stderr) = spawn_serve(
        dir.path(),
        &config,
        &[("WBAUTH_MASTER_KEY", wrong.as_str())],
        "second.log",
    )
    .map(|_| ())
    .expect_err("refused to start");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: wrong master key: "), "{stderr}");
    assert!(
        stderr.contains("master key does not match this data directory"),
        "{stderr}"
    );
    assert!(!stderr.contains(&wrong), "the key itself is never printed");
}

/// Many keys with one code (`keys create --count N --out FILE`): one transaction, secrets only
/// in a private file, every key usable at once; the count is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_keys_with_one_code() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    gw.ok(&["accounts", "create", "bots"]);
    let now = gw.advance(0).await;
    let totp = enrol_interactively(&gw, "bots", now);
    let now = gw.advance(30_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("keys.csv");
    let out_text = out.to_str().expect("utf8 path");
    let code = code(&totp, now);
    let batch = |count| {
        create_key(
            "bots",
            "trade",
            &code,
            &["--count", count, "--out", out_text],
        )
    };
    for count in ["0", "10001"] {
        gw.refused(&batch(count), "count must be between 1 and 10000");
    }
    let printed = gw.ok(&batch("25"));
    assert!(printed.starts_with("Created 25 API keys;"), "{printed}");
    let text = std::fs::read_to_string(&out).expect("keys file");
    assert!(!printed.contains(text.lines().nth(1).expect("a key line")));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_once(',').expect("key,secret"))
        .collect();
    assert_eq!(pairs.len(), 25);
    for (key, secret) in &pairs {
        let answer = gw.signed(key, secret, "/api/v4/order/new").await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let listed = gw.ok_json(&["keys", "list", "--account", "bots"]);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(25));
    let audit = gw.ok(&["keys", "audit"]);
    assert!(audit.contains("\"count\":25"), "{audit}");
}
