//! Fiat Gateway partners.

use whitebit_auth::fiat::{EncKey, OrderFields, PartnerClaims, split_jws};

use super::*;

/// Whether the cached partner verifies a token signed with `enc_key`.
fn cached_key_verifies(partners: &PartnerCache, auth_key: &str, enc_key: &str) -> bool {
    let Some(partner) = partners.get_enabled(auth_key) else {
        return false;
    };
    let order = OrderFields {
        currency: "BTC",
        amount: "0.001",
        order_id: "1",
    };
    let token = PartnerClaims::new(auth_key, "/api/v1/x", &order, T0, 60_000)
        .encode(&EncKey::new(enc_key.as_bytes()));
    let jws = split_jws(&token).expect("jws");
    partner
        .enc
        .verify(jws.signing_input.as_bytes(), &jws.signature)
}

#[tokio::test]
async fn partner_lifecycle_keeps_the_cache_current() {
    let f = fixture().await;
    let created = f.create_partner("acme").await.expect("created");
    let auth = created.partner.auth_key.clone();
    let enc = created.expose_enc_key().to_owned();
    assert_eq!(created.partner.name, "acme");
    assert_eq!(created.partner.state, PartnerState::Active);
    assert_eq!(created.partner.created_ms, T0);
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let auth_hex = auth.strip_prefix("auth-").expect("auth- prefix");
    assert!(auth_hex.len() == 20 && hex(auth_hex), "{auth}");
    let enc_hex = enc.strip_prefix("enc-").expect("enc- prefix");
    assert!(enc_hex.len() == 32 && hex(enc_hex));
    assert!(!format!("{created:?}").contains(&enc));

    // In force at once: the cache holds the Enc Key's HMAC state.
    assert!(cached_key_verifies(&f.partners, &auth, &enc));
    assert!(!cached_key_verifies(&f.partners, &auth, "enc-wrong"));
    // The store holds the same, encrypted.
    let stored = f.store.load_partners().await.expect("load");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].enc_key.0.expose(), enc.as_bytes());

    // A second partner gets different keys.
    let other = f.create_partner("bolt").await.expect("created");
    assert_ne!(other.partner.auth_key, auth);
    assert_ne!(other.expose_enc_key(), enc);
    assert_eq!(f.partners.len(), 2);

    let view = f
        .service
        .disable_partner(&auth, &admin())
        .await
        .expect("disable");
    assert_eq!((view.state, view.enabled), (PartnerState::Disabled, false));
    assert!(f.partners.get_enabled(&auth).is_none());
    assert!(!f.store.load_partners().await.expect("load")[0].enabled);
    assert_eq!(
        f.service.show_partner(&auth).await.expect("show").state,
        PartnerState::Disabled
    );

    let view = f
        .service
        .enable_partner(&auth, &admin())
        .await
        .expect("enable");
    assert_eq!(view.state, PartnerState::Active);
    assert!(cached_key_verifies(&f.partners, &auth, &enc));

    let list = f.service.list_partners().await.expect("list");
    assert_eq!(
        list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["acme", "bolt"]
    );

    f.service
        .delete_partner(&auth, &admin())
        .await
        .expect("delete");
    assert!(f.partners.get_enabled(&auth).is_none());
    assert_eq!(f.partners.len(), 1);
    for e in [
        f.service
            .delete_partner(&auth, &admin())
            .await
            .expect_err("gone"),
        f.service
            .enable_partner(&auth, &admin())
            .await
            .expect_err("gone"),
        f.service
            .disable_partner(&auth, &admin())
            .await
            .expect_err("gone"),
        f.service.show_partner(&auth).await.expect_err("gone"),
    ] {
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.to_string(),
            format!("No partner with Auth Key \"{auth}\".")
        );
    }
    assert_eq!(f.service.list_partners().await.expect("list").len(), 1);

    // Audited, never with an Enc Key.
    let audit = f.service.audit_log(100).await.expect("audit");
    let text = serde_json::to_string(&audit).expect("json");
    assert!(!text.contains(&enc));
    assert!(!text.contains(other.expose_enc_key()));
    for action in [
        "partner.create",
        "partner.disable",
        "partner.enable",
        "partner.delete",
    ] {
        let entry = audit
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("{action}: {text}"));
        assert_eq!(entry.actor, "admin@127.0.0.1");
    }
    let created_entry = audit
        .iter()
        .rev()
        .find(|e| e.action == "partner.create")
        .expect("create");
    assert_eq!(
        created_entry.detail,
        serde_json::json!({"auth_key": auth, "name": "acme"})
    );
}

#[tokio::test]
async fn partner_names_are_unique_and_checked() {
    let f = fixture().await;
    f.create_partner("acme").await.expect("created");
    let e = f.create_partner("acme").await.expect_err("duplicate");
    assert_eq!(e.status(), 409);
    assert_eq!(e.to_string(), "a partner named \"acme\" already exists");
    for bad in ["", "has space", "x\u{e9}", &"a".repeat(65)] {
        let e = f.create_partner(bad).await.expect_err(bad);
        assert_eq!(e.status(), 400, "{bad:?}");
    }
    assert_eq!(f.partners.len(), 1);
    let e = f.service.show_partner("").await.expect_err("empty");
    assert_eq!(e.status(), 404);
    let e = f
        .service
        .show_partner(&"x".repeat(300))
        .await
        .expect_err("long");
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn a_new_cache_from_the_store_matches() {
    let f = fixture().await;
    let created = f.create_partner("acme").await.expect("created");
    let disabled = f.create_partner("bolt").await.expect("created");
    f.service
        .disable_partner(&disabled.partner.auth_key, &admin())
        .await
        .expect("disabled");
    // What the gateway builds at start.
    let fresh = PartnerCache::from_records(&f.store.load_partners().await.expect("load"));
    assert_eq!(fresh.len(), 2);
    assert!(cached_key_verifies(
        &fresh,
        &created.partner.auth_key,
        created.expose_enc_key()
    ));
    assert!(fresh.get_enabled(&disabled.partner.auth_key).is_none());
}
