//! Fiat Gateway partner management end to end: the real `wbauth serve` (test clock), managed
//! through the real `wbauth partners` command (the admin API). The Enc Key is shown once, never
//! in the audit log, the gateway's stderr, a listing or the data files; partners survive a
//! `kill -9`.

#![cfg(feature = "test-clock")]

mod common;

use common::gateway::*;

use serde_json::{Value, json};

/// `auth_key=…` and `enc_key=…` from `partners create`'s text output.
fn created_keys(out: &str) -> (String, String) {
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {out}"))
            .to_owned()
    };
    (field("auth_key="), field("enc_key="))
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir` (recursively).
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_lifecycle_through_the_cli() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;

    // None yet.
    assert_eq!(
        gw.ok(&["partners", "list"]),
        "AUTH KEY  NAME  STATE  CREATED\n"
    );
    assert_eq!(gw.ok_json(&["partners", "list"]), json!({"partners": []}));

    // Create: the Auth Key and the Enc Key, printed once.
    let out = gw.ok(&["partners", "create", "acme"]);
    let (auth, enc) = created_keys(&out);
    assert!(
        is_lower_hex(auth.strip_prefix("auth-").expect("auth-"), 20),
        "{auth}"
    );
    assert!(
        is_lower_hex(enc.strip_prefix("enc-").expect("enc-"), 32),
        "{enc}"
    );
    assert_eq!(
        out,
        format!(
            "Created partner acme:\nauth_key={auth}\nenc_key={enc}\n\
             Store the Enc Key now: it is never shown again.\n\n\
             auth key:  {auth}\nname:      acme\nstate:     active\n\
             created:   2025-06-15 15:07:00 UTC\n"
        )
    );
    gw.refused(
        &["partners", "create", "acme"],
        "a partner named \"acme\" already exists",
    );
    gw.refused(
        &["partners", "create", "has space"],
        "partner name \"has space\": use 1 to 64 letters, digits, '.', '_', '-' or '@'",
    );

    // With --json; the admin API's answer is never cached.
    let bolt = gw.ok_json(&["partners", "create", "bolt"]);
    let bolt_auth = bolt["partner"]["auth_key"]
        .as_str()
        .expect("auth")
        .to_owned();
    let bolt_enc = bolt["enc_key"].as_str().expect("enc").to_owned();
    assert_eq!(
        bolt["partner"],
        json!({"auth_key": bolt_auth, "name": "bolt", "state": "active", "enabled": true, "created_ms": T0})
    );
    assert_ne!(bolt_auth, auth);
    assert_ne!(bolt_enc, enc);
    let answer = gw
        .admin_request("/admin/partners", r#"{"name":"cora"}"#.to_owned())
        .await;
    assert_eq!(answer.status().as_u16(), 201);
    assert_eq!(
        answer
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let cora: Value = serde_json::from_str(&answer.text().await.expect("body")).expect("json");
    let cora_enc = cora["enc_key"].as_str().expect("enc").to_owned();
    let cora_auth = cora["partner"]["auth_key"]
        .as_str()
        .expect("auth")
        .to_owned();
    let anonymous = reqwest::Client::new()
        .get(format!("{}/admin/partners", gw.admin))
        .send()
        .await
        .expect("list");
    assert_eq!(anonymous.status().as_u16(), 401);
    let enc_keys = [enc.as_str(), bolt_enc.as_str(), cora_enc.as_str()];

    // Listings and show never carry an Enc Key.
    let list = gw.ok(&["partners", "list"]);
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.starts_with("AUTH KEY"), "{list}");
    assert!(list.contains(&auth) && list.contains("acme") && list.contains("active"));
    let listed = gw.ok_json(&["partners", "list"]);
    let names: Vec<&str> = listed["partners"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["acme", "bolt", "cora"]);
    assert_eq!(
        gw.ok(&["partners", "show", &auth]),
        format!(
            "auth key:  {auth}\nname:      acme\nstate:     active\ncreated:   2025-06-15 15:07:00 UTC\n"
        )
    );
    for text in [
        list,
        listed.to_string(),
        gw.ok(&["partners", "show", &auth]),
    ] {
        for secret in enc_keys {
            assert!(!text.contains(secret), "{text}");
        }
    }

    // Disable, enable.
    assert!(gw.ok(&["partners", "disable", &auth]).starts_with(&format!(
        "Disabled partner {auth}.\nauth key:  {auth}\nname:      acme\nstate:     disabled\n"
    )));
    assert_eq!(
        gw.ok_json(&["partners", "show", &auth])["partner"]["state"],
        "disabled"
    );
    let enabled = gw.ok_json(&["partners", "enable", &auth]);
    assert_eq!(enabled["partner"]["state"], "active");
    assert_eq!(enabled["partner"]["enabled"], true);

    // Delete.
    assert_eq!(
        gw.ok(&["partners", "delete", &cora_auth]),
        format!("Deleted partner {cora_auth}.\n")
    );
    for args in [
        ["partners", "show", cora_auth.as_str()],
        ["partners", "delete", cora_auth.as_str()],
        ["partners", "enable", cora_auth.as_str()],
        ["partners", "disable", cora_auth.as_str()],
    ] {
        gw.refused(&args, &format!("No partner with Auth Key \"{cora_auth}\"."));
    }

    // bolt stays disabled across the restart.
    gw.ok(&["partners", "disable", &bolt_auth]);

    // Audited, never with an Enc Key (neither in the stored log nor on stderr).
    let audit = gw.ok_json(&["keys", "audit", "--limit", "100"]);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "partner.disable",
            "partner.delete",
            "partner.enable",
            "partner.disable",
            "partner.create",
            "partner.create",
            "partner.create",
        ]
    );
    let entry = &audit["entries"][6];
    assert_eq!(entry["detail"], json!({"auth_key": auth, "name": "acme"}));
    let audit_text = audit.to_string();
    let stderr = gw.stderr_text();
    assert!(stderr.contains("partner.create"), "{stderr}");
    for secret in enc_keys {
        assert!(!audit_text.contains(secret), "{audit_text}");
        assert!(!stderr.contains(secret), "{stderr}");
    }

    // kill -9 and restart: the partners and their states are still there.
    let gw = gw.kill9_and_restart(1, T0 + 60_000);
    let listed = gw.ok_json(&["partners", "list"]);
    assert_eq!(
        listed["partners"],
        json!([
            {"auth_key": auth, "name": "acme", "state": "active", "enabled": true, "created_ms": T0},
            {"auth_key": bolt_auth, "name": "bolt", "state": "disabled", "enabled": false, "created_ms": T0},
        ])
    );
    let enabled = gw.ok_json(&["partners", "enable", &bolt_auth]);
    assert_eq!(enabled["partner"]["state"], "active");
    // The Enc Keys are encrypted at rest: no file of the data directory holds one.
    for file in files(&gw.data_dir) {
        let bytes = std::fs::read(&file).expect("read");
        for secret in enc_keys {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{} holds an Enc Key",
                file.display()
            );
        }
    }
    let stderr = gw.stderr_text();
    for secret in enc_keys {
        assert!(!stderr.contains(secret), "{stderr}");
    }
    let status = gw.terminate();
    assert!(status.success(), "{status}");
}
