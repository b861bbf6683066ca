//! Keys: the second factor they need, input checks, the lifecycle.

use super::*;
use crate::service::keys::{PUBLIC_KEY_BYTES, SECRET_BYTES};
use crate::service::two_factor::TOTP_SECRET_BYTES;

#[tokio::test]
async fn keys_need_2fa_and_a_fresh_code() {
    let f = fixture().await;
    f.create_account("alice").await.expect("account");
    let e = f
        .create_key(&create("alice", "trade", "123456"))
        .await
        .expect_err("no 2FA");
    assert!(matches!(e, ManageError::TwoFactorRequired { .. }), "{e}");
    assert_eq!(e.status(), 403);

    let enrolment = f
        .service
        .enrol_2fa("alice", None, false, &admin())
        .await
        .expect("enrol");
    assert!(!format!("{enrolment:?}").contains(enrolment.expose_secret_base32()));
    let secret = base32_decode(enrolment.expose_secret_base32());
    assert_eq!(secret.len(), TOTP_SECRET_BYTES);
    // Pending is not on.
    let e = f
        .create_key(&create("alice", "trade", &code(&secret, T0)))
        .await
        .expect_err("pending");
    assert!(matches!(e, ManageError::TwoFactorRequired { .. }), "{e}");
    let now = f.clock.now_ms();
    let confirm_code = code(&secret, now);
    f.service
        .confirm_2fa("alice", &confirm_code, &admin())
        .await
        .expect("confirm");

    // The confirmation code cannot be used again.
    let e = f
        .create_key(&create("alice", "trade", &confirm_code))
        .await
        .expect_err("reused");
    assert!(
        matches!(
            e,
            ManageError::WrongCode {
                reused: true,
                attempts_left: 4
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.body(),
        r#"{"code":0,"message":"This TOTP code was already used; wait for the next one. 4 attempts left before the account is locked."}"#
    );
    let e = f
        .create_key(&create("alice", "trade", &wrong_code(&secret, now)))
        .await
        .expect_err("wrong");
    assert!(
        matches!(
            e,
            ManageError::WrongCode {
                reused: false,
                attempts_left: 3
            }
        ),
        "{e}"
    );
    let e = f
        .create_key(&CreateKey {
            code: None,
            ..create("alice", "trade", "")
        })
        .await
        .expect_err("no code");
    assert!(matches!(e, ManageError::CodeRequired(_)), "{e}");

    f.clock.advance(STEP_MS);
    let created = f
        .create_key(&CreateKey {
            ips: vec!["127.0.0.1".into(), "2001:db8::/32".into()],
            endpoints: vec!["/api/v4/order/*".into()],
            ..create("alice", "trade", &code(&secret, f.clock.now_ms()))
        })
        .await
        .expect("created");
    assert_eq!(created.key.public_key.len(), PUBLIC_KEY_BYTES * 2);
    assert_eq!(created.expose_secret().len(), SECRET_BYTES * 2);
    assert!(!format!("{created:?}").contains(created.expose_secret()));
    assert_eq!(created.key.state, KeyState::Active);
    assert_eq!(created.key.ips, ["127.0.0.1", "2001:db8::/32"]);
    // In the cache, with the secret's HMAC state.
    let cached = f.cache.get(&created.key.public_key).expect("cached");
    assert_eq!(
        whitebit_auth::PayloadMac::sign(&cached.mac, b"x").to_hex(),
        whitebit_auth::mac::sign_payload(created.expose_secret().as_bytes(), b"x")
    );
    // The account's failed attempts were reset by the good code.
    let account = f.service.show_account("alice").await.expect("account");
    assert_eq!((account.failed_attempts, account.keys), (0, 1));
}

#[tokio::test]
async fn inputs_are_validated_before_the_code_is_used() {
    let f = fixture().await;
    let secret = account_with_2fa(&f, "alice").await;
    let now = f.clock.now_ms();
    let good = code(&secret, now);
    // One field of a good request changed.
    let with_endpoints = |endpoint: &str| CreateKey {
        endpoints: vec![endpoint.to_owned()],
        ..create("alice", "trade", &good)
    };
    let with_ips = |ips: Vec<String>| CreateKey {
        ips,
        ..create("alice", "trade", &good)
    };
    let cases: Vec<(CreateKey, &str)> = vec![
        (
            create("alice", "nope", &good),
            "unknown key kind \"nope\" (configured kinds: trade, main)",
        ),
        (
            with_endpoints("/api/v4/main-account/balance"),
            "endpoint \"/api/v4/main-account/balance\" is outside the \"trade\" kind, which opens: /api/v4/trade-account/*, /api/v4/order/*",
        ),
        (
            with_endpoints("/api/v4/*"),
            "endpoint \"/api/v4/*\" is outside the \"trade\" kind, which opens: /api/v4/trade-account/*, /api/v4/order/*",
        ),
        (
            with_endpoints("/api//v4/order/new"),
            "endpoint \"/api//v4/order/new\" is not normalised (write \"/api/v4/order/new\")",
        ),
        (
            with_ips(vec!["10.0.0.1/8".into()]),
            "trusted IP #1: \"10.0.0.1/8\": host bits are set below the /8 prefix (write 10.0.0.0/8)",
        ),
        (
            with_ips((0..51).map(|i| format!("10.0.{i}.0/24")).collect()),
            "too many trusted IPs: 51 given, a key holds at most 50 (keys.max_ips; a CIDR block counts as one entry)",
        ),
        (create("bob", "trade", &good), "No account named \"bob\"."),
    ];
    for (request, message) in cases {
        let e = f.create_key(&request).await.expect_err(message);
        assert_eq!(e.to_string(), message);
        assert!(matches!(e.status(), 400 | 404), "{e}");
    }
    // The code is still good, and 50 entries (duplicates dropped) are fine.
    let created = f
        .create_key(&CreateKey {
            ips: (0..50)
                .map(|i| format!("10.0.{i}.0/24"))
                .chain(["10.0.0.0/24".to_owned()])
                .collect(),
            endpoints: vec![
                "/api/v4/order/new".into(),
                "/api/v4/trade-account/*".into(),
                "/api/v4/trade-account/x/*".into(),
            ],
            ..create("alice", "trade", &good)
        })
        .await
        .expect("created");
    assert_eq!(created.key.ips.len(), 50);
    let pk = created.key.public_key.clone();
    let e = f
        .service
        .set_ips(
            &pk,
            &(0..51)
                .map(|i| format!("2001:db8:{i:x}::/48"))
                .collect::<Vec<_>>(),
            &admin(),
        )
        .await
        .expect_err("51");
    assert!(e.to_string().starts_with("too many trusted IPs: 51"), "{e}");
    let e = f
        .service
        .set_endpoints(&pk, &["/api/v4/main-account/balance".into()], &admin())
        .await
        .expect_err("outside");
    assert_eq!(e.status(), 400);
    let view = f
        .service
        .set_endpoints(&pk, &["/api/v4/order/new".into()], &admin())
        .await
        .expect("narrowed");
    assert_eq!(view.endpoints, ["/api/v4/order/new"]);
    assert_eq!(
        f.cache.get(&pk).expect("cached").endpoints,
        ["/api/v4/order/new"]
    );
    let e = f.service.show_key("nope").await.expect_err("unknown");
    assert_eq!(e.body(), r#"{"code":0,"message":"No API key \"nope\"."}"#);
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn lifecycle_enable_disable_idle_rotate_delete() {
    let f = fixture().await;
    let secret = account_with_2fa(&f, "alice").await;
    let created = f
        .create_key(&create("alice", "trade", &code(&secret, f.clock.now_ms())))
        .await
        .expect("created");
    let pk = created.key.public_key.clone();
    let first_id = f.cache.get(&pk).expect("cached").id;

    let view = f.service.disable_key(&pk, &admin()).await.expect("disable");
    assert_eq!(view.state, KeyState::Disabled);
    assert!(!f.cache.get(&pk).expect("cached").enabled);
    let view = f.service.enable_key(&pk, &admin()).await.expect("enable");
    assert_eq!(view.state, KeyState::Active);

    // Idle: found, persisted, audited; enable restarts the clock.
    f.clock.advance(15 * DAY_MS);
    assert_eq!(f.service.sweep_idle().await.expect("sweep"), 1);
    assert_eq!(f.service.sweep_idle().await.expect("sweep"), 0);
    let stored = f.store.get_key(first_id).await.expect("get").expect("key");
    assert!(stored.idle_deactivated);
    assert_eq!(
        f.service.show_key(&pk).await.expect("show").state,
        KeyState::Idle
    );
    let view = f.service.enable_key(&pk, &admin()).await.expect("enable");
    assert_eq!(
        (view.state, view.idle_anchor_ms),
        (KeyState::Active, f.clock.now_ms())
    );
    assert!(
        !f.cache
            .get(&pk)
            .expect("cached")
            .is_idle(f.clock.now_ms(), 14)
    );
    let stored = f.store.get_key(first_id).await.expect("get").expect("key");
    assert!(!stored.idle_deactivated && stored.enabled);

    // Rotation: a new secret and a new id (fresh nonce state), same rules.
    f.service
        .set_ips(&pk, &["127.0.0.1".into()], &admin())
        .await
        .expect("ips");
    f.clock.advance(STEP_MS);
    let e = f
        .service
        .rotate_secret(&pk, None, &admin())
        .await
        .expect_err("needs code");
    assert!(matches!(e, ManageError::CodeRequired(_)), "{e}");
    let rotated = f
        .service
        .rotate_secret(&pk, Some(&code(&secret, f.clock.now_ms())), &admin())
        .await
        .expect("rotated");
    assert_ne!(rotated.expose_secret(), created.expose_secret());
    assert_eq!(rotated.key.public_key, pk);
    assert_eq!(rotated.key.ips, ["127.0.0.1"]);
    let cached = f.cache.get(&pk).expect("cached");
    assert_ne!(cached.id, first_id);
    let new_sig = whitebit_auth::mac::sign_payload(rotated.expose_secret().as_bytes(), b"p");
    let old_sig = whitebit_auth::mac::sign_payload(created.expose_secret().as_bytes(), b"p");
    let computed = whitebit_auth::PayloadMac::sign(&cached.mac, b"p").to_hex();
    assert_eq!(computed, new_sig);
    assert_ne!(computed, old_sig);
    assert_eq!(
        f.service
            .list_keys(Some("alice"))
            .await
            .expect("list")
            .len(),
        1
    );

    f.service.delete_key(&pk, &admin()).await.expect("delete");
    assert!(f.cache.get(&pk).is_none());
    assert_eq!(
        f.service
            .delete_key(&pk, &admin())
            .await
            .expect_err("gone")
            .status(),
        404
    );
    assert!(f.service.list_keys(None).await.expect("list").is_empty());
    assert_eq!(
        f.service
            .list_keys(Some("zed"))
            .await
            .expect_err("no account")
            .status(),
        404
    );

    // No audit entry carries a secret.
    let audit = f.service.audit_log(1000).await.expect("audit");
    let text = serde_json::to_string(&audit).expect("json");
    for secret in [created.expose_secret(), rotated.expose_secret()] {
        assert!(!text.contains(secret));
    }
    assert!(!text.contains(&totp::base32_encode(&secret)));
    for action in [
        "account.create",
        "account.2fa.enrol",
        "account.2fa.confirm",
        "key.create",
        "key.disable",
        "key.enable",
        "key.idle_deactivate",
        "key.set_ips",
        "key.rotate_secret",
        "key.delete",
    ] {
        assert!(audit.iter().any(|e| e.action == action), "{action}: {text}");
    }
}
