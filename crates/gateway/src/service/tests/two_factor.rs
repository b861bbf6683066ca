//! The second factor: wrong-code locks per account and per source, re-enrolment.

use super::*;

#[tokio::test]
async fn five_wrong_codes_lock_the_account_for_15_minutes() {
    let f = fixture().await;
    let secret = account_with_2fa(&f, "alice").await;
    let now = f.clock.now_ms();
    for left in (1..=4).rev() {
        let e = f
            .create_key(&create("alice", "trade", &wrong_code(&secret, now)))
            .await
            .expect_err("wrong");
        assert!(
            matches!(e, ManageError::WrongCode { attempts_left, .. } if attempts_left == left),
            "{e}"
        );
    }
    let e = f
        .create_key(&create("alice", "trade", &wrong_code(&secret, now)))
        .await
        .expect_err("locked");
    assert_eq!(e.status(), 429);
    assert_eq!(e.retry_after_s(), Some(900));
    assert_eq!(
        e.body(),
        r#"{"code":0,"message":"Account alice is locked after too many wrong codes; try again in 15 min."}"#
    );
    let account = f.service.show_account("alice").await.expect("account");
    assert_eq!(account.locked_until_ms, Some(now + ACCOUNT_LOCK_MS));
    // Even the right code is refused while locked.
    f.clock.advance(10 * 60 * 1000 + 500);
    let e = f
        .create_key(&create("alice", "trade", &code(&secret, f.clock.now_ms())))
        .await
        .expect_err("still locked");
    assert_eq!(
        e.to_string(),
        "Account alice is locked after too many wrong codes; try again in 5 min."
    );
    f.clock.advance(5 * 60 * 1000);
    f.create_key(&create("alice", "trade", &code(&secret, f.clock.now_ms())))
        .await
        .expect("unlocked");
    let actions: Vec<String> = f
        .service
        .audit_log(100)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"account.lock".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn twenty_wrong_codes_from_one_address_lock_it() {
    let f = fixture().await;
    let mut secrets = Vec::new();
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        secrets.push((name, account_with_2fa(&f, name).await));
    }
    let now = f.clock.now_ms();
    let mut last = None;
    // 4 wrong codes per account (no account lock), 5 accounts: the 20th locks the address.
    for (name, secret) in &secrets {
        for _ in 0..4 {
            last = Some(
                f.create_key(&create(name, "trade", &wrong_code(secret, now)))
                    .await
                    .expect_err("wrong"),
            );
        }
    }
    let e = last.expect("an error");
    assert_eq!(
        e.to_string(),
        "Address 127.0.0.1 is locked after too many wrong codes; try again in 15 min."
    );
    // A right code from that address is refused; from another address it works.
    let (name, secret) = &secrets[0];
    let e = f
        .create_key(&create(name, "trade", &code(secret, now)))
        .await
        .expect_err("address locked");
    assert_eq!(e.status(), 429);
    let other = Caller::new("admin@10.0.0.1", Some(IpAddr::from([10, 0, 0, 1])));
    f.service
        .create_key(&create(name, "trade", &code(secret, now)), &other)
        .await
        .expect("other address");
    f.clock.advance(IP_LOCK_MS + 1);
    let (name, secret) = &secrets[1];
    f.create_key(&create(name, "trade", &code(secret, f.clock.now_ms())))
        .await
        .expect("address unlocked");
}

#[tokio::test]
async fn reenrolment_needs_a_code_or_force() {
    let f = fixture().await;
    let secret = account_with_2fa(&f, "alice").await;
    let e = f
        .service
        .enrol_2fa("alice", None, false, &admin())
        .await
        .expect_err("needs code");
    assert!(matches!(e, ManageError::CodeRequired(_)), "{e}");
    let now = f.clock.now_ms();
    let e = f
        .service
        .enrol_2fa("alice", Some(&wrong_code(&secret, now)), false, &admin())
        .await
        .expect_err("wrong code");
    assert!(matches!(e, ManageError::WrongCode { .. }), "{e}");
    let again = f
        .service
        .enrol_2fa("alice", Some(&code(&secret, now)), false, &admin())
        .await
        .expect("re-enrolled");
    let new_secret = base32_decode(again.expose_secret_base32());
    assert_ne!(new_secret, secret);
    assert_eq!(
        f.service.show_account("alice").await.expect("a").two_factor,
        TwoFactor::Pending
    );
    f.service
        .enrol_2fa("alice", None, true, &admin())
        .await
        .expect("forced");
    let audit = f.service.audit_log(100).await.expect("audit");
    let forced = audit
        .iter()
        .find(|e| e.action == "account.2fa.enrol" && e.detail["forced"] == true)
        .expect("forced enrolment audited");
    assert_eq!(forced.detail["account"], "alice");
    let e = f
        .service
        .confirm_2fa("nobody", "123456", &admin())
        .await
        .expect_err("unknown");
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn failure_maps_stay_bounded() {
    let f = fixture().await;
    let extra = 500;
    for i in 0..u32::try_from(MAX_TRACKED_IPS + extra).expect("small") {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        f.service.record_ip_failure(Some(ip), T0);
    }
    let tracked = lock(&f.service.ip_failures).len();
    assert!(tracked <= MAX_TRACKED_IPS, "{tracked} addresses tracked");
}

#[tokio::test]
async fn wrong_codes_from_one_ipv6_network_count_together() {
    let f = fixture().await;
    let ip = |net: u16, host: u16| {
        Some(IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001, 0xdb8, 1, net, 0, host, 0, 1,
        )))
    };
    // Every wrong code from another address of the same /64: the 20th locks the /64.
    for host in 1..u16::try_from(MAX_IP_FAILURES).expect("small") {
        assert_eq!(f.service.record_ip_failure(ip(2, host), T0), None);
    }
    assert_eq!(
        f.service.record_ip_failure(ip(2, 999), T0),
        Some(T0 + IP_LOCK_MS)
    );
    assert_eq!(
        f.service.ip_locked_until(ip(2, 4000), T0),
        Some(T0 + IP_LOCK_MS)
    );
    // The next /64 is not locked.
    assert_eq!(f.service.ip_locked_until(ip(3, 1), T0), None);
}
