use std::net::IpAddr;

use whitebit_auth::mac::PayloadMac as _;

use super::index::{EMPTY, Full, MIN_BUCKETS, SLOTS};
use super::*;
use wbauth_store::{SecretBytes, SecretBytesEq};

fn record(id: KeyId, public_key: &str) -> KeyRecord {
    KeyRecord {
        id,
        public_key: public_key.to_owned(),
        account_id: 1,
        account_name: "acme".to_owned(),
        kind: "trade".to_owned(),
        secret: SecretBytesEq(SecretBytes::new(format!("secret-{id}").into_bytes())),
        enabled: true,
        idle_deactivated: false,
        ips: Vec::new(),
        endpoints: Vec::new(),
        created_ms: 0,
        idle_anchor_ms: 0,
        last_used_ms: None,
    }
}

fn records(count: usize) -> Vec<KeyRecord> {
    (1..=count)
        .map(|i| record(i as KeyId, &format!("{i:032x}")))
        .collect()
}

/// A stand-in: never accepted, and its HMAC is the dummy secret's.
fn assert_stand_in(key: &ActiveKey) {
    assert_eq!(key.id, 0);
    assert!(!key.enabled);
    assert!(key.is_idle(0, 1));
    assert!(!key.allows_ip(IpAddr::from([127, 0, 0, 1])));
    assert_eq!(
        key.mac.sign(b"m").to_hex(),
        HmacSha512Key::dummy().sign(b"m").to_hex()
    );
}

#[test]
fn hit_and_miss() {
    let cache = KeyCache::from_records(&records(3));
    assert_eq!(cache.len(), 3);
    for i in 1..=3_u64 {
        let public_key = format!("{i:032x}");
        let (key, known) = cache.lookup(&public_key);
        assert!(known);
        assert_eq!(key.id, i);
        assert_eq!(key.public_key, public_key);
        let got = cache.get(&public_key).expect("held");
        assert!(Arc::ptr_eq(&key, &got));
    }
    for unknown in ["", "x", &format!("{:032x}", 4), &format!("{:033x}", 1)] {
        let (key, known) = cache.lookup(unknown);
        assert!(!known, "{unknown:?}");
        assert_stand_in(&key);
        assert!(cache.get(unknown).is_none());
    }
}

#[test]
fn empty_cache_hands_out_stand_ins() {
    let cache = KeyCache::default();
    assert_eq!(cache.len(), 0);
    let (key, known) = cache.lookup("anything");
    assert!(!known);
    assert_stand_in(&key);
}

#[test]
fn stand_ins_are_spread_and_never_accepted() {
    let cache = KeyCache::from_records(&records(1000));
    let index = cache.read();
    assert_eq!(index.buckets(), 1024);
    let mut seen = Vec::new();
    for i in 0..4000_u32 {
        let (key, known) = index.lookup(&format!("unknown-{i}"));
        assert!(!known);
        assert_stand_in(&key);
        if !seen.iter().any(|k| Arc::ptr_eq(k, &key)) {
            seen.push(key);
        }
    }
    // Spread over all of them, not one shared stand-in.
    assert_eq!(seen.len(), STAND_INS);
    for stand_in in &seen {
        assert!(index.keys().all(|key| !Arc::ptr_eq(key, stand_in)));
    }
}

#[test]
fn one_bucket_holds_its_slots_then_is_full() {
    // Every key collides into bucket 0 (room for `SLOTS` keys as far as the load limit
    // of one key per bucket goes).
    let keys: Vec<Arc<ActiveKey>> = records(SLOTS + 1)
        .iter()
        .map(|r| Arc::new(ActiveKey::from_record(r)))
        .collect();
    let mut index = Index::empty(SLOTS, &active_keys(&[]).1, 0);
    index.mask = 0;
    for key in &keys[..SLOTS] {
        assert_eq!(
            index.insert(key.clone()).map(|old| old.is_some()),
            Ok(false)
        );
    }
    assert_eq!(index.len(), SLOTS);
    assert_eq!(index.insert(keys[SLOTS].clone()).err(), Some(Full::Bucket));
    for key in &keys[..SLOTS] {
        let (found, known) = index.lookup(&key.public_key);
        assert!(known);
        assert!(Arc::ptr_eq(&found, key));
    }
    let (found, known) = index.lookup(&keys[SLOTS].public_key);
    assert!(!known);
    assert_stand_in(&found);
    // Replacing a key in a full bucket works and returns the old one.
    let again = Arc::new(ActiveKey::from_record(&records(3)[2]));
    let old = index.insert(again.clone()).expect("replaced").expect("old");
    assert!(Arc::ptr_eq(&old, &keys[2]));
    assert!(Arc::ptr_eq(&index.lookup(&again.public_key).0, &again));
    // Removal from the shared bucket leaves the others found.
    assert!(index.remove(&keys[0].public_key).is_some());
    assert!(!index.lookup(&keys[0].public_key).1);
    for key in &keys[1..SLOTS] {
        assert!(index.lookup(&key.public_key).1);
    }
}

#[test]
fn a_tag_clash_is_refused() {
    let mut index = Index::empty(8, &active_keys(&[]).1, 0);
    let keys: Vec<Arc<ActiveKey>> = records(2)
        .iter()
        .map(|r| Arc::new(ActiveKey::from_record(r)))
        .collect();
    index.insert(keys[0].clone()).expect("placed");
    // Forge a second key's tag into the first key's slot: the same tag, another key.
    let (tag, _) = index.fingerprint(&keys[1].public_key);
    let (first, _) = index.fingerprint(&keys[0].public_key);
    let (bucket, slot) = index.position(&keys[0].public_key).expect("held");
    index.tags[bucket].0[slot] = tag;
    let moved = index.bucket(tag);
    index.tags.swap(bucket, moved);
    index.slots.swap(bucket, moved);
    assert_eq!(index.insert(keys[1].clone()).err(), Some(Full::Clash));
    assert_ne!(first, tag);
}

#[test]
fn growth_keeps_every_key() {
    let cache = KeyCache::default();
    assert_eq!(cache.read().buckets(), MIN_BUCKETS);
    let all = records(5000);
    for r in &all {
        cache.upsert(r);
    }
    assert_eq!(cache.len(), 5000);
    let index = cache.read();
    assert!(index.buckets() >= 5000, "{} buckets", index.buckets());
    for r in &all {
        let (key, known) = index.lookup(&r.public_key);
        assert!(known);
        assert_eq!(key.id, r.id);
    }
    // Every slot points at a key whose tag it holds.
    for (tags, slots) in index.tags.iter().zip(&index.slots) {
        for (&tag, &at) in tags.0.iter().zip(&slots.0) {
            if at != EMPTY {
                let key = &index.records[at as usize].key;
                assert!(at as usize >= STAND_INS);
                assert_eq!(index.records[at as usize].tag, tag);
                assert_eq!(index.fingerprint(&key.public_key).0, tag);
            }
        }
    }
}

#[test]
fn removal_keeps_the_others() {
    let cache = KeyCache::from_records(&records(300));
    for i in (1..=300).step_by(3) {
        cache.remove(&format!("{i:032x}"));
    }
    cache.remove_id(2);
    cache.remove("not held");
    assert_eq!(cache.len(), 199);
    for i in 1..=300_u64 {
        let (key, known) = cache.lookup(&format!("{i:032x}"));
        let gone = i % 3 == 1 || i == 2;
        assert_eq!(known, !gone, "key {i}");
        if gone {
            assert_stand_in(&key);
            assert!(cache.get(&format!("{i:032x}")).is_none());
        } else {
            assert_eq!(key.id, i);
        }
    }
    let mut ids: Vec<KeyId> = cache.snapshot().iter().map(|k| k.id).collect();
    ids.sort_unstable();
    let expected: Vec<KeyId> = (1..=300).filter(|i| i % 3 != 1 && *i != 2).collect();
    assert_eq!(ids, expected);
    // Removed keys come back.
    cache.upsert(&record(1, &format!("{:032x}", 1)));
    assert!(cache.lookup(&format!("{:032x}", 1)).1);
    assert_eq!(cache.len(), 200);
}

#[test]
fn remove_id_spares_a_rotated_key() {
    let cache = KeyCache::from_records(&[record(7, "pk")]);
    cache.upsert(&record(8, "pk"));
    cache.remove_id(7);
    assert_eq!(cache.get("pk").map(|k| k.id), Some(8));
    cache.remove_id(8);
    assert_eq!(cache.len(), 0);
}

#[test]
fn last_used_times_are_carried_over() {
    let cache = KeyCache::from_records(&records(2));
    let key = cache.get(&format!("{:032x}", 1)).expect("held");
    key.mark_used(1234);
    // Upsert keeps it.
    cache.upsert(&records(2)[0]);
    assert_eq!(
        cache
            .get(&format!("{:032x}", 1))
            .and_then(|k| k.last_used_ms()),
        Some(1234)
    );
    // A reload keeps it for the same id, not for a new id under the same public key.
    cache
        .get(&format!("{:032x}", 2))
        .expect("held")
        .mark_used(99);
    let mut reloaded = records(2);
    reloaded[1].id = 20;
    reloaded.push(record(3, "third"));
    cache.replace_all(&reloaded);
    assert_eq!(cache.len(), 3);
    assert_eq!(
        cache
            .get(&format!("{:032x}", 1))
            .and_then(|k| k.last_used_ms()),
        Some(1234)
    );
    assert_eq!(
        cache
            .get(&format!("{:032x}", 2))
            .and_then(|k| k.last_used_ms()),
        None
    );
    assert!(cache.lookup("third").1);
    // Dropped by the reload.
    cache.replace_all(&records(1));
    assert_eq!(cache.len(), 1);
    assert!(!cache.lookup(&format!("{:032x}", 2)).1);
}

#[test]
fn a_later_duplicate_wins() {
    let cache = KeyCache::from_records(&[record(1, "same"), record(2, "same")]);
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.get("same").map(|k| k.id), Some(2));
}
