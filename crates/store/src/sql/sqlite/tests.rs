//! The embedded store's own tests: what the files on disk hold, atomicity, ids, the master key
//! file (the contract both stores keep is in `tests/key_stores.rs`).

use std::fs;
use std::path::Path;

use crate::master_key::{MASTER_KEY_FILE, NONCE_LEN, TAG_LEN};
use crate::{
    AccountRecord, AuditEntry, KeyId, KeyStore, KeyUpdate, MASTER_KEY_ENV, MasterKey,
    MasterKeySource, NewKey, NewPartner, PartnerRecord, SecretBytes, SecretBytesEq, SqliteKeyStore,
    StoreError, TotpRecord, load_or_create_master_key,
};

#[path = "../../../tests/support/mod.rs"]
mod support;
use support::new_key;

const DB_FILE_NAME: &str = "keys.sqlite";

const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn master(hex: &str) -> MasterKey {
    MasterKey::from_source(&MasterKeySource::Env(hex.to_owned())).expect("valid key")
}

async fn open(dir: &Path, hex: &str) -> SqliteKeyStore {
    SqliteKeyStore::open(&dir.join(DB_FILE_NAME), master(hex))
        .await
        .expect("open")
}

/// Creates account `name` (at 1 ms).
async fn add_account(store: &SqliteKeyStore, name: &str) -> AccountRecord {
    store
        .insert_account(name.to_owned(), 1)
        .await
        .expect("account")
}

/// Inserts [`new_key`]`(public_key, account_id, secret)`.
async fn add_key(
    store: &SqliteKeyStore,
    public_key: &str,
    account_id: i64,
    secret: &[u8],
) -> KeyId {
    store
        .insert_key(new_key(public_key, account_id, secret))
        .await
        .expect("key")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn new_partner(name: &str, auth_key: &str, enc_key: &[u8]) -> NewPartner {
    NewPartner {
        name: name.to_owned(),
        auth_key: auth_key.to_owned(),
        enc_key: SecretBytes::new(enc_key.to_vec()),
        created_ms: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn replace_key_is_atomic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let account = add_account(&store, "alice").await;
    let a = store
        .insert_key(new_key("pk-a", account.id, b"secret-a"))
        .await
        .expect("a");
    store
        .insert_key(new_key("pk-b", account.id, b"secret-b"))
        .await
        .expect("b");
    store
        .update_key(
            a,
            KeyUpdate {
                enabled: Some(false),
                ..KeyUpdate::default()
            },
        )
        .await
        .expect("disable");

    // A replacement that cannot be inserted (its public key is taken) changes nothing.
    let failed = store
        .replace_key(a, new_key("pk-b", account.id, b"new"), (false, false, 5))
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    let kept = store
        .get_key(a)
        .await
        .expect("get")
        .expect("the old row is still there");
    assert_eq!(kept.secret.0.expose(), b"secret-a");

    // A good replacement: a new id, the new secret, the state carried over.
    let b_id = store
        .replace_key(a, new_key("pk-a", account.id, b"rotated"), (false, true, 7))
        .await
        .expect("replace");
    let id = b_id.expect("replaced");
    assert_ne!(id, a, "a new id: a fresh nonce state");
    assert!(store.get_key(a).await.expect("get").is_none());
    let new = store.get_key(id).await.expect("get").expect("new row");
    assert_eq!(new.secret.0.expose(), b"rotated");
    assert_eq!(
        (new.enabled, new.idle_deactivated, new.idle_anchor_ms),
        (false, true, 7)
    );
    assert_eq!(
        store
            .replace_key(a, new_key("pk-x", account.id, b"x"), (true, false, 0))
            .await
            .expect("no-op"),
        None
    );
}

#[tokio::test]
async fn partners_round_trip_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    assert!(store.load_partners().await.expect("load").is_empty());
    let a = store
        .insert_partner(new_partner("acme", "auth-aaaa", b"enc-aaaa"))
        .await
        .expect("insert");
    let b = store
        .insert_partner(new_partner("bolt", "auth-bbbb", b"enc-bbbb"))
        .await
        .expect("insert");
    assert!(b > a);
    let loaded = store.load_partners().await.expect("load");
    assert_eq!(
        loaded,
        vec![
            PartnerRecord {
                id: a,
                name: "acme".into(),
                auth_key: "auth-aaaa".into(),
                enc_key: SecretBytesEq(SecretBytes::new(b"enc-aaaa".to_vec())),
                enabled: true,
                created_ms: 1_700_000_000_000,
            },
            PartnerRecord {
                id: b,
                name: "bolt".into(),
                auth_key: "auth-bbbb".into(),
                enc_key: SecretBytesEq(SecretBytes::new(b"enc-bbbb".to_vec())),
                enabled: true,
                created_ms: 1_700_000_000_000,
            },
        ]
    );
    // The Debug output of a record never shows the Enc Key.
    assert!(!format!("{loaded:?}").contains("enc-aaaa"));

    assert!(
        store
            .update_partner_enabled(a, false)
            .await
            .expect("disable")
    );
    assert!(
        !store
            .update_partner_enabled(9_999, false)
            .await
            .expect("missing")
    );
    assert!(store.delete_partner(b).await.expect("delete"));
    assert!(!store.delete_partner(b).await.expect("gone"));
    store.close().await;

    let store = open(dir.path(), KEY_A).await;
    let loaded = store.load_partners().await.expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, "acme");
    assert!(!loaded[0].enabled);
    assert_eq!(loaded[0].enc_key.0.expose(), b"enc-aaaa");
    assert!(store.update_partner_enabled(a, true).await.expect("enable"));
    assert!(store.load_partners().await.expect("load")[0].enabled);
    // Ids are never reused.
    let c = store
        .insert_partner(new_partner("bolt", "auth-bbbb", b"enc-cccc"))
        .await
        .expect("insert");
    assert!(c > b, "{b} {c}");
    store.close().await;
}

#[tokio::test]
async fn partner_enc_keys_are_not_stored_in_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let enc = b"enc-PLAINTEXT-ENC-KEY-0f1e2d3c4b5a";
    let id = store
        .insert_partner(new_partner("acme", "auth-plain", enc))
        .await
        .expect("insert");
    let raw: Vec<u8> = sqlx::query_scalar("SELECT enc_key FROM partners WHERE id = ?1")
        .bind(id)
        .fetch_one(&store.pool)
        .await
        .expect("raw");
    assert_eq!(raw.len(), NONCE_LEN + enc.len() + TAG_LEN);
    assert!(!contains(&raw, enc));
    for entry in fs::read_dir(dir.path()).expect("dir") {
        let bytes = fs::read(entry.expect("entry").path()).expect("read");
        assert!(!contains(&bytes, enc));
    }
    store.close().await;
    let db = fs::read(dir.path().join(DB_FILE_NAME)).expect("read db");
    assert!(contains(&db, b"auth-plain"), "the file does hold the row");
    assert!(!contains(&db, enc));

    // Bound to its row: moved to another partner, it no longer decrypts.
    let store = open(dir.path(), KEY_A).await;
    let other = store
        .insert_partner(new_partner("bolt", "auth-other", b"enc-other"))
        .await
        .expect("insert");
    sqlx::query(
        "UPDATE partners SET enc_key = (SELECT enc_key FROM partners WHERE id = ?1) WHERE id = ?2",
    )
    .bind(id)
    .bind(other)
    .execute(&store.pool)
    .await
    .expect("swap");
    match store.load_partners().await {
        Err(StoreError::Corrupt(msg)) => assert!(!msg.contains("PLAINTEXT"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    store.close().await;

    // A different master key is refused before any partner is read.
    assert!(matches!(
        SqliteKeyStore::open(&dir.path().join(DB_FILE_NAME), master(KEY_B)).await,
        Err(StoreError::WrongMasterKey(_))
    ));
}

#[tokio::test]
async fn partner_names_and_auth_keys_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    store
        .insert_partner(new_partner("acme", "auth-1", b"enc-secret-one"))
        .await
        .expect("insert");
    match store
        .insert_partner(new_partner("acme", "auth-2", b"enc-secret-two"))
        .await
    {
        Err(StoreError::Conflict(msg)) => {
            assert_eq!(msg, "a partner named \"acme\" already exists");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store
        .insert_partner(new_partner("bolt", "auth-1", b"enc-secret-two"))
        .await
    {
        Err(StoreError::Conflict(msg)) => {
            assert_eq!(msg, "a partner with Auth Key auth-1 already exists");
            assert!(!msg.contains("enc-secret"), "{msg}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.load_partners().await.expect("load").len(), 1);
    store.close().await;
}

#[tokio::test]
async fn accounts_keys_and_audit_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;

    let alice = store
        .insert_account("alice".to_owned(), 1_000)
        .await
        .expect("insert account");
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.totp, None);
    assert_eq!(
        store.get_account("alice".to_owned()).await.expect("get"),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_account("bob".to_owned()).await.expect("get"),
        None
    );

    // TOTP state, failure counter and lock.
    let mut changed = alice.clone();
    changed.totp = Some(TotpRecord {
        secret: SecretBytesEq(SecretBytes::new(b"totp-secret-bytes-0001".to_vec())),
        confirmed: true,
        last_step: Some(56_666_666),
    });
    changed.failed_attempts = 3;
    changed.locked_until_ms = Some(2_000);
    assert!(store.update_account(changed.clone()).await.expect("update"));
    assert_eq!(
        store.get_account("alice".to_owned()).await.expect("get"),
        Some(changed.clone())
    );
    let mut wrong_name = changed.clone();
    wrong_name.name = "mallory".to_owned();
    assert!(!store.update_account(wrong_name).await.expect("update"));
    let mut missing = changed.clone();
    missing.id = 9_999;
    assert!(!store.update_account(missing).await.expect("update"));
    // Clearing TOTP.
    let mut cleared = changed.clone();
    cleared.totp = None;
    cleared.failed_attempts = 0;
    cleared.locked_until_ms = None;
    assert!(store.update_account(cleared.clone()).await.expect("update"));
    assert_eq!(store.list_accounts().await.expect("list"), vec![cleared]);

    // Keys.
    let id = store
        .insert_key(new_key("pk-1", alice.id, b"secret-one"))
        .await
        .expect("insert key");
    let key = store.get_key(id).await.expect("get").expect("exists");
    assert_eq!(key.public_key, "pk-1");
    assert_eq!(key.account_id, alice.id);
    assert_eq!(key.account_name, "alice");
    assert_eq!(key.kind, "trade");
    assert_eq!(key.secret.0.expose(), b"secret-one");
    assert!(key.enabled);
    assert!(!key.idle_deactivated);
    assert_eq!(key.ips, vec!["203.0.113.7".to_owned()]);
    assert_eq!(key.endpoints, vec!["/api/v4/order/*".to_owned()]);
    assert_eq!(key.created_ms, 1_000);
    assert_eq!(key.idle_anchor_ms, 1_000);
    assert_eq!(key.last_used_ms, None);
    assert_eq!(store.load_keys().await.expect("load"), vec![key.clone()]);

    // Only the `Some` fields change.
    let update = KeyUpdate {
        enabled: Some(false),
        ips: Some(vec![]),
        ..KeyUpdate::default()
    };
    assert!(store.update_key(id, update).await.expect("update"));
    let after = store.get_key(id).await.expect("get").expect("exists");
    assert!(!after.enabled);
    assert!(after.ips.is_empty());
    assert_eq!(after.endpoints, key.endpoints);
    assert_eq!(after.secret, key.secret);
    assert_eq!(after.idle_anchor_ms, key.idle_anchor_ms);

    let update = KeyUpdate {
        enabled: Some(true),
        idle_deactivated: Some(true),
        idle_anchor_ms: Some(1_800_000_000_000),
        endpoints: Some(vec!["/a".to_owned(), "/b".to_owned()]),
        secret: Some(SecretBytes::new(b"secret-two".to_vec())),
        ..KeyUpdate::default()
    };
    assert!(store.update_key(id, update).await.expect("update"));
    let after = store.get_key(id).await.expect("get").expect("exists");
    assert!(after.enabled);
    assert!(after.idle_deactivated);
    assert_eq!(after.idle_anchor_ms, 1_800_000_000_000);
    assert_eq!(after.endpoints, vec!["/a".to_owned(), "/b".to_owned()]);
    assert_eq!(after.secret.0.expose(), b"secret-two");
    assert!(after.ips.is_empty());

    assert!(
        !store
            .update_key(id + 100, KeyUpdate::default())
            .await
            .expect("update")
    );
    assert!(
        store
            .update_key(id, KeyUpdate::default())
            .await
            .expect("no-op update of an existing key")
    );
    assert!(
        !store
            .update_key(u64::MAX, KeyUpdate::default())
            .await
            .expect("update")
    );

    // A key for a missing account.
    assert!(matches!(
        store.insert_key(new_key("pk-x", 4_242, b"s")).await,
        Err(StoreError::Conflict(_))
    ));

    // Deletes.
    assert!(store.delete_key(id).await.expect("delete"));
    assert!(!store.delete_key(id).await.expect("delete again"));
    assert_eq!(store.get_key(id).await.expect("get"), None);
    assert!(store.load_keys().await.expect("load").is_empty());

    // Audit, newest first.
    for (i, action) in ["key.create", "key.disable", "key.delete"]
        .iter()
        .enumerate()
    {
        store
            .audit(AuditEntry {
                at_ms: 10 + i as u64,
                actor: "cli".to_owned(),
                action: (*action).to_owned(),
                detail: format!("key id {id}"),
            })
            .await
            .expect("audit");
    }
    let recent = store.recent_audit(2).await.expect("recent");
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].action, "key.delete");
    assert_eq!(recent[0].at_ms, 12);
    assert_eq!(recent[1].action, "key.disable");
    assert_eq!(store.recent_audit(10).await.expect("recent").len(), 3);
    store.close().await;
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let acct = store
        .insert_account("carol".to_owned(), 5)
        .await
        .expect("account");
    let id = add_key(&store, "pk-c", acct.id, b"carol-secret").await;
    store.touch_keys(vec![(id, 77)]).await.expect("touch");
    store.close().await;

    let store = open(dir.path(), KEY_A).await;
    let keys = store.load_keys().await.expect("load");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].secret.0.expose(), b"carol-secret");
    assert_eq!(keys[0].last_used_ms, Some(77));
    store.close().await;
}

#[tokio::test]
async fn secrets_are_not_stored_in_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let api_secret = b"PLAINTEXT-API-SECRET-6f1c2d3e4a5b";
    let totp_secret = b"PLAINTEXT-TOTP-SECRET-99887766";
    let mut acct = add_account(&store, "dave").await;
    acct.totp = Some(TotpRecord {
        secret: SecretBytesEq(SecretBytes::new(totp_secret.to_vec())),
        confirmed: false,
        last_step: None,
    });
    assert!(store.update_account(acct.clone()).await.expect("update"));
    let id = add_key(&store, "pk-d", acct.id, api_secret).await;

    // The raw column holds nonce || ciphertext || tag, not the secret.
    let raw: Vec<u8> = sqlx::query_scalar("SELECT secret FROM api_keys WHERE id = ?1")
        .bind(i64::try_from(id).expect("id"))
        .fetch_one(&store.pool)
        .await
        .expect("raw secret");
    assert_eq!(raw.len(), NONCE_LEN + api_secret.len() + TAG_LEN);
    assert!(!contains(&raw, api_secret));
    let raw_totp: Vec<u8> = sqlx::query_scalar("SELECT totp_secret FROM accounts WHERE id = ?1")
        .bind(acct.id)
        .fetch_one(&store.pool)
        .await
        .expect("raw totp");
    assert!(!contains(&raw_totp, totp_secret));

    // Two encryptions of the same secret differ (random nonce).
    let id2 = add_key(&store, "pk-d2", acct.id, api_secret).await;
    let raw2: Vec<u8> = sqlx::query_scalar("SELECT secret FROM api_keys WHERE id = ?1")
        .bind(i64::try_from(id2).expect("id"))
        .fetch_one(&store.pool)
        .await
        .expect("raw secret");
    assert_ne!(raw, raw2);

    // Nothing in the files on disk (database, WAL) holds a secret.
    let before_close = fs::read_dir(dir.path()).expect("dir");
    for entry in before_close {
        let bytes = fs::read(entry.expect("entry").path()).expect("read");
        assert!(!contains(&bytes, api_secret));
        assert!(!contains(&bytes, totp_secret));
    }
    store.close().await;
    let db = fs::read(dir.path().join(DB_FILE_NAME)).expect("read db");
    assert!(contains(&db, b"pk-d"), "the file does hold the rows");
    assert!(!contains(&db, api_secret));
    assert!(!contains(&db, totp_secret));
}

#[tokio::test]
async fn ciphertexts_cannot_move_between_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let acct = add_account(&store, "erin").await;
    let a = add_key(&store, "pk-a", acct.id, b"secret-a").await;
    let b = add_key(&store, "pk-b", acct.id, b"secret-b").await;
    sqlx::query(
        "UPDATE api_keys SET secret = (SELECT secret FROM api_keys WHERE id = ?1) WHERE id = ?2",
    )
    .bind(i64::try_from(a).expect("id"))
    .bind(i64::try_from(b).expect("id"))
    .execute(&store.pool)
    .await
    .expect("swap");
    assert!(matches!(store.get_key(a).await, Ok(Some(_))));
    match store.get_key(b).await {
        Err(StoreError::Corrupt(msg)) => assert!(!msg.contains("secret-a"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.load_keys().await,
        Err(StoreError::Corrupt(_))
    ));
    store.close().await;
}

#[tokio::test]
async fn a_different_master_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let acct = add_account(&store, "frank").await;
    add_key(&store, "pk-f", acct.id, b"frank-secret").await;
    store.close().await;

    let path = dir.path().join(DB_FILE_NAME);
    match SqliteKeyStore::open(&path, master(KEY_B)).await {
        Err(StoreError::WrongMasterKey(msg)) => {
            assert!(msg.contains("does not match this data directory"), "{msg}");
            assert!(!msg.contains(KEY_B) && !msg.contains(KEY_A), "{msg}");
        }
        other => panic!("expected WrongMasterKey, got {other:?}"),
    }

    // The right key still works and nothing was damaged.
    let store = open(dir.path(), KEY_A).await;
    let keys = store.load_keys().await.expect("load");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].secret.0.expose(), b"frank-secret");
    store.close().await;
}

#[tokio::test]
async fn duplicates_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let acct = add_account(&store, "gina").await;
    assert!(matches!(
        store.insert_account("gina".to_owned(), 2).await,
        Err(StoreError::Conflict(_))
    ));
    add_key(&store, "pk-g", acct.id, b"one").await;
    match store.insert_key(new_key("pk-g", acct.id, b"two")).await {
        Err(StoreError::Conflict(msg)) => assert!(!msg.contains("two"), "{msg}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.load_keys().await.expect("load").len(), 1);
    assert_eq!(store.list_accounts().await.expect("list").len(), 1);
    store.close().await;
}

#[tokio::test]
async fn touch_keys_keeps_the_latest_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let acct = add_account(&store, "hank").await;
    let a = add_key(&store, "pk-h1", acct.id, b"1").await;
    let b = add_key(&store, "pk-h2", acct.id, b"2").await;
    store
        .touch_keys(vec![
            (a, 500),
            (b, 300),
            (a, 400),
            (9_999, 1),
            (u64::MAX, 1),
        ])
        .await
        .expect("touch");
    let used = |id| {
        let store = &store;
        async move {
            store
                .get_key(id)
                .await
                .expect("get")
                .expect("exists")
                .last_used_ms
        }
    };
    assert_eq!(used(a).await, Some(500));
    assert_eq!(used(b).await, Some(300));
    store
        .touch_keys(vec![(a, 100), (b, 900)])
        .await
        .expect("touch");
    assert_eq!(used(a).await, Some(500));
    assert_eq!(used(b).await, Some(900));
    store.touch_keys(vec![]).await.expect("empty batch");
    store.close().await;
}

#[tokio::test]
async fn ids_are_never_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), KEY_A).await;
    let acct = add_account(&store, "ivy").await;
    let a = add_key(&store, "pk-i1", acct.id, b"1").await;
    let b = add_key(&store, "pk-i2", acct.id, b"2").await;
    assert!(store.delete_key(b).await.expect("delete"));
    let c = add_key(&store, "pk-i2", acct.id, b"3").await;
    assert!(c > b && b > a, "{a} {b} {c}");
    assert!(store.delete_key(c).await.expect("delete"));
    store.close().await;

    // Also across a restart.
    let store = open(dir.path(), KEY_A).await;
    let d = add_key(&store, "pk-i3", acct.id, b"4").await;
    assert!(d > c, "{c} {d}");
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn master_key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let key = load_or_create_master_key(&data, None).expect("generate");
    assert!(
        key.origin().starts_with("generated into"),
        "{}",
        key.origin()
    );
    let hex = fs::read_to_string(data.join(MASTER_KEY_FILE)).expect("read");
    assert!(!format!("{key:?}").contains(hex.trim()));
    assert_eq!(mode(&data), 0o700);
    let file = data.join(MASTER_KEY_FILE);
    assert_eq!(mode(&file), 0o600);
    let text = fs::read_to_string(&file).expect("read");
    assert_eq!(text.trim().len(), 64);
    assert!(text.trim().bytes().all(|c| c.is_ascii_hexdigit()));
    // No temporary file left behind.
    assert_eq!(fs::read_dir(&data).expect("dir").count(), 1);

    // The store is created with it; the same file opens it again.
    let db = data.join(DB_FILE_NAME);
    let store = SqliteKeyStore::open(&db, key).await.expect("open");
    store.close().await;
    assert_eq!(mode(&db), 0o600);
    let again = load_or_create_master_key(&data, None).expect("read");
    assert!(again.origin().starts_with("file "), "{}", again.origin());
    let store = SqliteKeyStore::open(&db, again).await.expect("reopen");
    store.close().await;

    // The environment wins over the file.
    let env = load_or_create_master_key(&data, Some(KEY_B)).expect("env");
    assert_eq!(env.origin(), MASTER_KEY_ENV);
    assert!(matches!(
        SqliteKeyStore::open(&db, env).await,
        Err(StoreError::WrongMasterKey(_))
    ));
}
