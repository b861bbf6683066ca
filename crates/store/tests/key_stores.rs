//! The key store contract, run once per backend (SQLite in a temp dir, PostgreSQL on a
//! throw-away server on 127.0.0.1), plus what only the shared store does: a wrong master key
//! refused by every instance, secrets never stored in plaintext, and change announcements
//! that reach every other instance (and a `Resync` after a lost connection).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;
use std::time::Duration;

use wbauth_store::{
    AuditEntry, Change, KeyStore, KeyUpdate, MasterKey, MasterKeySource, NewConsoleLink, NewKey,
    NewPartner, PgKeyStore, RemoteOptions, SecretBytes, SqliteKeyStore, StoreError,
};
use wbauth_testkit::PostgresServer;

mod support;
use support::new_key;

const MASTER_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const MASTER_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

static POSTGRES: LazyLock<PostgresServer> =
    LazyLock::new(|| PostgresServer::start().expect("PostgreSQL starts (./test.sh installs it)"));

fn master(hex: &str) -> MasterKey {
    MasterKey::from_source(&MasterKeySource::Env(hex.to_owned())).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store; the guard keeps the SQLite directory alive.
async fn open(backend: Backend) -> (Box<dyn KeyStore>, Option<tempfile::TempDir>, String) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteKeyStore::open(&dir.path().join("keys.sqlite"), master(MASTER_A))
                .await
                .unwrap();
            (Box::new(store), Some(dir), String::new())
        }
        Backend::Postgres => {
            let url = POSTGRES.fresh_database().unwrap();
            let store = PgKeyStore::connect(&url, master(MASTER_A), &RemoteOptions::default())
                .await
                .unwrap();
            (Box::new(store), None, url)
        }
    }
}

/// The contract every key store keeps.
async fn contract(backend: Backend) {
    let (store, _guard, _) = open(backend).await;

    // Accounts.
    let alice = store.insert_account("alice".into(), 10).await.unwrap();
    assert!(matches!(
        store.insert_account("alice".into(), 11).await,
        Err(StoreError::Conflict(_))
    ));
    let mut fetched = store.get_account("alice".into()).await.unwrap().unwrap();
    assert_eq!(fetched, alice);
    fetched.failed_attempts = 3;
    fetched.locked_until_ms = Some(99);
    assert!(store.update_account(fetched.clone()).await.unwrap());
    assert_eq!(store.list_accounts().await.unwrap(), vec![fetched]);
    assert!(store.get_account("bob".into()).await.unwrap().is_none());

    // Console passwords and one-time links (one per account; used once; expiring).
    assert_eq!(store.console_password(alice.id).await.unwrap(), None);
    store
        .set_console_password(alice.id, "$argon2id$one".into(), 20)
        .await
        .unwrap();
    store
        .set_console_password(alice.id, "$argon2id$two".into(), 21)
        .await
        .unwrap();
    assert_eq!(
        store.console_password(alice.id).await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    let (first, second) = (vec![1u8; 32], vec![2u8; 32]);
    store
        .set_console_link(NewConsoleLink {
            account_id: alice.id,
            token_sha256: first.clone(),
            expires_ms: 1_000,
            created_ms: 30,
        })
        .await
        .unwrap();
    assert_eq!(
        store.console_link(first.clone(), 999).await.unwrap(),
        Some(("alice".to_owned(), 1_000))
    );
    assert_eq!(
        store.console_link(first.clone(), 1_000).await.unwrap(),
        None
    );
    // A new link replaces the account's old one.
    store
        .set_console_link(NewConsoleLink {
            account_id: alice.id,
            token_sha256: second.clone(),
            expires_ms: 2_000,
            created_ms: 31,
        })
        .await
        .unwrap();
    assert_eq!(store.console_link(first.clone(), 40).await.unwrap(), None);
    assert_eq!(
        store
            .redeem_console_link(first, "$argon2id$x".into(), 40)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .redeem_console_link(second.clone(), "$argon2id$three".into(), 2_000)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.console_password(alice.id).await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    assert_eq!(
        store
            .redeem_console_link(second.clone(), "$argon2id$three".into(), 50)
            .await
            .unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        store.console_password(alice.id).await.unwrap().as_deref(),
        Some("$argon2id$three")
    );
    assert_eq!(
        store
            .redeem_console_link(second, "$argon2id$four".into(), 51)
            .await
            .unwrap(),
        None,
        "used once"
    );
    assert_eq!(
        store.console_password(alice.id).await.unwrap().as_deref(),
        Some("$argon2id$three")
    );

    // Keys.
    let id = store
        .insert_key(new_key("pk-1", alice.id, b"secret-one"))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_key(new_key("pk-1", alice.id, b"x")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.insert_key(new_key("pk-x", 424_242, b"x")).await,
        Err(StoreError::Conflict(_))
    ));
    let key = store.get_key(id).await.unwrap().unwrap();
    assert_eq!(key.public_key, "pk-1");
    assert_eq!(key.account_name, "alice");
    assert_eq!(key.secret.0.expose(), b"secret-one");
    assert!(key.enabled && !key.idle_deactivated);
    assert_eq!(key.ips, ["203.0.113.7"]);
    assert_eq!(key.endpoints, ["/api/v4/order/*"]);
    assert_eq!(
        (key.created_ms, key.idle_anchor_ms, key.last_used_ms),
        (1_000, 1_000, None)
    );

    assert!(
        store
            .update_key(
                id,
                KeyUpdate {
                    enabled: Some(false),
                    ips: Some(Vec::new()),
                    secret: Some(SecretBytes::new(b"secret-two".to_vec())),
                    ..KeyUpdate::default()
                },
            )
            .await
            .unwrap()
    );
    let key = store.get_key(id).await.unwrap().unwrap();
    assert!(!key.enabled);
    assert!(key.ips.is_empty());
    assert_eq!(key.endpoints, ["/api/v4/order/*"]);
    assert_eq!(key.secret.0.expose(), b"secret-two");
    assert!(!store.update_key(9_999, KeyUpdate::default()).await.unwrap());

    // Last used: batched, never moves back.
    store
        .touch_keys(vec![(id, 5_000), (9_999, 1)])
        .await
        .unwrap();
    store.touch_keys(vec![(id, 4_000)]).await.unwrap();
    assert_eq!(
        store.get_key(id).await.unwrap().unwrap().last_used_ms,
        Some(5_000)
    );

    // Replace: a new id (fresh nonce state) in one transaction; ids are never reused.
    let replaced = store
        .replace_key(
            id,
            new_key("pk-1", alice.id, b"secret-three"),
            (true, false, 7_000),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(replaced > id);
    assert!(store.get_key(id).await.unwrap().is_none());
    let key = store.get_key(replaced).await.unwrap().unwrap();
    assert_eq!(
        (key.public_key.as_str(), key.idle_anchor_ms),
        ("pk-1", 7_000)
    );
    assert!(
        store
            .replace_key(id, new_key("pk-9", alice.id, b"s"), (true, false, 1))
            .await
            .unwrap()
            .is_none()
    );
    // A failed insert (unknown account) leaves the old row in place.
    assert!(
        store
            .replace_key(replaced, new_key("pk-1", 777_777, b"s"), (true, false, 1))
            .await
            .is_err()
    );
    assert!(store.get_key(replaced).await.unwrap().is_some());
    assert!(store.delete_key(replaced).await.unwrap());
    assert!(!store.delete_key(replaced).await.unwrap());
    let next = store
        .insert_key(new_key("pk-2", alice.id, b"s"))
        .await
        .unwrap();
    assert!(next > replaced, "ids are never reused");
    assert_eq!(store.load_keys().await.unwrap().len(), 1);

    // Partners.
    let partner = NewPartner {
        name: "acme".into(),
        auth_key: "ak-1".into(),
        enc_key: SecretBytes::new(b"enc-key".to_vec()),
        created_ms: 3,
    };
    let pid = store.insert_partner(partner.clone()).await.unwrap();
    let Err(StoreError::Conflict(message)) = store
        .insert_partner(NewPartner {
            auth_key: "ak-2".into(),
            ..partner.clone()
        })
        .await
    else {
        panic!("duplicate partner name accepted");
    };
    assert!(message.contains("acme"), "{message}");
    let Err(StoreError::Conflict(message)) = store
        .insert_partner(NewPartner {
            name: "other".into(),
            ..partner
        })
        .await
    else {
        panic!("duplicate Auth Key accepted");
    };
    assert!(message.contains("ak-1"), "{message}");
    assert!(store.update_partner_enabled(pid, false).await.unwrap());
    let partners = store.load_partners().await.unwrap();
    assert_eq!(partners.len(), 1);
    assert!(!partners[0].enabled);
    assert_eq!(partners[0].enc_key.0.expose(), b"enc-key");
    assert!(store.delete_partner(pid).await.unwrap());
    assert!(!store.delete_partner(pid).await.unwrap());

    // Audit, newest first.
    for (i, action) in ["key.create", "key.disable"].into_iter().enumerate() {
        store
            .audit(AuditEntry {
                at_ms: 100 + i as u64,
                actor: "cli".into(),
                action: action.into(),
                detail: "pk-1".into(),
            })
            .await
            .unwrap();
    }
    let recent = store.recent_audit(1).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].action, "key.disable");
    store.health().await.unwrap();
}

#[tokio::test]
async fn sqlite_keeps_the_key_store_contract() {
    contract(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_keeps_the_key_store_contract() {
    contract(Backend::Postgres).await;
}

#[tokio::test]
async fn postgres_refuses_a_wrong_master_key_on_every_instance() {
    let (store, _, url) = open(Backend::Postgres).await;
    drop(store);
    let Err(StoreError::WrongMasterKey(message)) =
        PgKeyStore::connect(&url, master(MASTER_B), &RemoteOptions::default()).await
    else {
        panic!("a wrong master key was accepted");
    };
    assert!(message.contains("WBAUTH_MASTER_KEY"), "{message}");
    // The right key still works.
    PgKeyStore::connect(&url, master(MASTER_A), &RemoteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_stores_no_secret_in_plaintext() {
    let (store, _, url) = open(Backend::Postgres).await;
    let account = store.insert_account("alice".into(), 1).await.unwrap();
    let secret = b"plaintext-api-secret-0123456789";
    store
        .insert_key(new_key("pk-plain", account.id, secret))
        .await
        .unwrap();
    store
        .insert_partner(NewPartner {
            name: "acme".into(),
            auth_key: "ak".into(),
            enc_key: SecretBytes::new(b"plaintext-enc-key-0123456789".to_vec()),
            created_ms: 1,
        })
        .await
        .unwrap();
    let db = url.rsplit('/').next().unwrap();
    let dump = POSTGRES
        .psql(
            db,
            "SELECT encode(secret, 'hex') FROM api_keys UNION ALL SELECT encode(enc_key, 'hex') FROM partners",
        )
        .unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(dump.lines().count() >= 2, "{dump}");
    assert!(!dump.contains(&hex(secret)));
    assert!(!dump.contains(&hex(b"plaintext-enc-key-0123456789")));
}

/// The next announcement (bounded wait).
async fn next(feed: &mut wbauth_store::ChangeFeed) -> Change {
    tokio::time::timeout(Duration::from_secs(30), feed.recv())
        .await
        .expect("an announcement arrives")
        .expect("the feed is open")
}

#[tokio::test]
async fn postgres_announces_every_change_to_other_instances() {
    let url = POSTGRES.fresh_database().unwrap();
    let options = RemoteOptions::default();
    let a = PgKeyStore::connect(&url, master(MASTER_A), &options)
        .await
        .unwrap();
    let b = PgKeyStore::connect(&url, master(MASTER_A), &options)
        .await
        .unwrap();
    let mut feed = b.changes().expect("the shared store announces changes");
    // Listening starts with a resync (anything before it may have been missed).
    assert_eq!(next(&mut feed).await, Change::Resync);

    let account = a.insert_account("alice".into(), 1).await.unwrap();
    let id = a.insert_key(new_key("pk", account.id, b"s")).await.unwrap();
    assert_eq!(next(&mut feed).await, Change::Key(id));
    a.update_key(
        id,
        KeyUpdate {
            enabled: Some(false),
            ..KeyUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(next(&mut feed).await, Change::Key(id));
    let new_id = a
        .replace_key(id, new_key("pk", account.id, b"t"), (true, false, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next(&mut feed).await, Change::Key(id));
    assert_eq!(next(&mut feed).await, Change::Key(new_id));
    assert!(a.delete_key(new_id).await.unwrap());
    assert_eq!(next(&mut feed).await, Change::Key(new_id));
    // Nothing is announced for a change that did not happen, nor for last-used times.
    assert!(!a.delete_key(new_id).await.unwrap());
    a.touch_keys(vec![(new_id, 5)]).await.unwrap();
    let pid = a
        .insert_partner(NewPartner {
            name: "acme".into(),
            auth_key: "ak".into(),
            enc_key: SecretBytes::new(b"e".to_vec()),
            created_ms: 1,
        })
        .await
        .unwrap();
    assert_eq!(next(&mut feed).await, Change::Partner(pid));
    a.update_partner_enabled(pid, false).await.unwrap();
    assert_eq!(next(&mut feed).await, Change::Partner(pid));

    // A lost connection: the listener's backend is terminated; the feed says to resync.
    let db = url.rsplit('/').next().unwrap();
    let terminated = POSTGRES
        .psql(
            db,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .unwrap();
    assert_eq!(terminated.trim(), "1", "one listening connection");
    assert_eq!(next(&mut feed).await, Change::Resync);
    // And announcements flow again.
    a.delete_partner(pid).await.unwrap();
    loop {
        match next(&mut feed).await {
            Change::Partner(p) if p == pid => break,
            Change::Resync => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
