//! The in-memory key cache: every key is held in memory (`docs/design-decisions.md` 13), with its keyed
//! HMAC state derived once, so verification never re-keys and unknown keys never reach a
//! database.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use whitebit_auth::mac::HmacSha512Key;

use crate::ip::IpRule;
use crate::store::{KeyId, KeyRecord};
use whitebit_auth::path::pattern_matches;

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// A key as the request path needs it.
#[derive(Debug)]
pub struct ActiveKey {
    /// Store id.
    pub id: KeyId,
    /// Public key.
    pub public_key: String,
    /// Owner id.
    pub account_id: i64,
    /// Owner name (sent upstream as `X-Auth-Account`).
    pub account_name: String,
    /// Kind.
    pub kind: String,
    /// The keyed HMAC state (the secret itself is not kept here); wiped from memory when
    /// dropped.
    pub mac: HmacSha512Key,
    /// Not disabled by an operator.
    pub enabled: bool,
    /// Trusted IPs (empty: any).
    pub ips: Vec<IpRule>,
    /// A stored entry did not parse: refuse every address rather than allow any.
    ips_broken: bool,
    /// Endpoint allow-list (empty: the whole kind).
    pub endpoints: Vec<String>,
    /// Idle clock anchor (creation or last enable).
    pub idle_anchor_ms: u64,
    /// Idle-deactivated, as stored or as found by a request.
    idle_deactivated: AtomicBool,
    /// Last accepted request (0: never).
    last_used_ms: AtomicU64,
}

impl ActiveKey {
    /// Builds the cached form of a stored key. An unparsable IP entry (which validation
    /// prevents) makes the key refuse every address rather than allow any.
    #[must_use]
    pub fn from_record(record: &KeyRecord) -> Self {
        let mut ips = Vec::with_capacity(record.ips.len());
        let mut broken = false;
        for ip in &record.ips {
            match IpRule::parse(ip) {
                Ok(rule) => ips.push(rule),
                Err(_) => broken = true,
            }
        }
        Self {
            id: record.id,
            public_key: record.public_key.clone(),
            account_id: record.account_id,
            account_name: record.account_name.clone(),
            kind: record.kind.clone(),
            mac: HmacSha512Key::new(record.secret.0.expose()),
            enabled: record.enabled,
            ips,
            ips_broken: broken,
            endpoints: record.endpoints.clone(),
            idle_anchor_ms: record.idle_anchor_ms,
            idle_deactivated: AtomicBool::new(record.idle_deactivated),
            last_used_ms: AtomicU64::new(record.last_used_ms.unwrap_or(0)),
        }
    }

    /// Last accepted request, if any.
    #[must_use]
    pub fn last_used_ms(&self) -> Option<u64> {
        match self.last_used_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Records an accepted request.
    pub fn mark_used(&self, now_ms: u64) {
        self.last_used_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Whether the key has been idle longer than `idle_days` at `now_ms` (or was stored as
    /// idle-deactivated). Marks it deactivated when found idle.
    pub fn is_idle(&self, now_ms: u64, idle_days: u64) -> bool {
        if self.idle_deactivated.load(Ordering::Relaxed) {
            return true;
        }
        let since = self.last_used_ms().unwrap_or(0).max(self.idle_anchor_ms);
        let idle = now_ms.saturating_sub(since) > idle_days.saturating_mul(DAY_MS);
        if idle {
            self.idle_deactivated.store(true, Ordering::Relaxed);
        }
        idle
    }

    /// Row 13's address part: no allow-list, or the address is on it.
    #[must_use]
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        !self.ips_broken && (self.ips.is_empty() || self.ips.iter().any(|rule| rule.contains(ip)))
    }

    /// Row 14's allow-list part: no allow-list, or the path is on it (exact paths or
    /// `/prefix/*` patterns).
    #[must_use]
    pub fn allows_endpoint(&self, path: &str) -> bool {
        self.endpoints.is_empty() || self.endpoints.iter().any(|p| pattern_matches(p, path))
    }
}

impl ActiveKey {
    /// A stand-in for unknown public keys: keyed with the dummy secret nobody holds (`mac` is a
    /// copy of [`HmacSha512Key::dummy`]), so that an unknown key costs the same work as a known
    /// one (`docs/design-decisions.md` 13). Disabled, refusing every address; never accepted.
    fn stand_in(mac: HmacSha512Key) -> Self {
        Self {
            id: 0,
            public_key: String::new(),
            account_id: 0,
            account_name: String::new(),
            kind: String::new(),
            mac,
            enabled: false,
            ips: Vec::new(),
            ips_broken: true,
            endpoints: Vec::new(),
            idle_anchor_ms: 0,
            idle_deactivated: AtomicBool::new(true),
            last_used_ms: AtomicU64::new(0),
        }
    }
}

/// Slots in every bucket of the key index. A lookup compares the presented key's tag with all
/// of them, whichever are in use.
const SLOTS: usize = 8;
/// The record position of an unused slot (never a real position).
const EMPTY: u32 = u32::MAX;
/// The smallest index.
const MIN_BUCKETS: usize = 8;
/// Stand-ins per index (a power of two): a few, so that concurrent unknown keys do not all
/// share one reference count.
const STAND_INS: usize = 256;

/// A bucket's tags: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Tags([u64; SLOTS]);

/// A bucket's record positions ([`EMPTY`] for an unused slot): half a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slots([u32; SLOTS]);

/// A key, or a stand-in, with its fingerprint.
struct Record {
    tag: u64,
    check: u64,
    key: Arc<ActiveKey>,
}

/// Why a key could not be placed without rebuilding the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    /// Its bucket is full, or the index is at one key per bucket: double the buckets.
    Bucket,
    /// Another key in its bucket has the same tag (a 64-bit keyed-hash collision): re-key.
    Clash,
}

/// The key index behind [`KeyCache`]: an open table of fixed-size buckets, addressed by a
/// keyed 64-bit hash of the public key (std's SipHash with a random key per index, so nobody
/// can aim keys at one bucket or predict which stand-in or key a public key is paired with).
///
/// A key's fingerprint is two such hashes: the *tag* (its low bits pick the bucket, the whole
/// of it is stored in the slot) and the *check*. Positions `0..STAND_INS` of `records` hold
/// the stand-ins, the keys follow. Tags are unique within a bucket; slot positions always
/// point at keys.
struct Index {
    hasher: RandomState,
    /// Buckets − 1 (buckets: a power of two).
    mask: u64,
    tags: Vec<Tags>,
    slots: Vec<Slots>,
    records: Vec<Record>,
}

impl Index {
    /// An index of `buckets` buckets (a power of two) holding no key, with these stand-ins
    /// ([`STAND_INS`] of them).
    fn empty(buckets: usize, stand_ins: &[Arc<ActiveKey>], capacity: usize) -> Self {
        debug_assert!(buckets.is_power_of_two() && u32::try_from(buckets).is_ok());
        debug_assert_eq!(stand_ins.len(), STAND_INS);
        let mut records = Vec::with_capacity(STAND_INS + capacity);
        records.extend(stand_ins.iter().map(|key| Record {
            tag: 0,
            check: 0,
            key: key.clone(),
        }));
        Self {
            hasher: RandomState::new(),
            mask: buckets as u64 - 1,
            tags: vec![Tags([0; SLOTS]); buckets],
            slots: vec![Slots([EMPTY; SLOTS]); buckets],
            records,
        }
    }

    /// An index holding `keys` (a later key replaces an earlier one with the same public key)
    /// and `stand_ins`, with at least `buckets` buckets.
    fn build(keys: &[Arc<ActiveKey>], stand_ins: &[Arc<ActiveKey>], buckets: usize) -> Self {
        let mut buckets = buckets.max(keys.len()).max(MIN_BUCKETS).next_power_of_two();
        'attempt: loop {
            let mut index = Self::empty(buckets, stand_ins, keys.len());
            for key in keys {
                match index.insert(key.clone()) {
                    Ok(_) => {}
                    Err(Full::Bucket) => {
                        buckets *= 2;
                        continue 'attempt;
                    }
                    // A fresh index has a fresh hash key.
                    Err(Full::Clash) => continue 'attempt,
                }
            }
            return index;
        }
    }

    /// The fingerprint of a public key: (tag, check). The same work for every key of a given
    /// length.
    fn fingerprint(&self, public_key: &str) -> (u64, u64) {
        let half = |domain: u8| {
            let mut hasher = self.hasher.build_hasher();
            hasher.write_u8(domain);
            hasher.write(public_key.as_bytes());
            hasher.finish()
        };
        (half(0), half(1))
    }

    /// The bucket of a tag (its low bits).
    fn bucket(&self, tag: u64) -> usize {
        // Below the bucket count, which is a `usize`.
        (tag & self.mask) as usize
    }

    fn buckets(&self) -> usize {
        self.tags.len()
    }

    /// See [`KeyCache::lookup`]. Every lookup, of a known key or not, runs the same
    /// instructions in the same order and reads the same kinds of memory, each picked by a
    /// fixed function of the public key:
    ///
    /// 1. the public key's bucket, all of its slots compared in constant time;
    /// 2. a key's record: the key's own for a known key, for an unknown key the record of a
    ///    held key picked by the check (its *pair*);
    /// 3. a second bucket: for a known key one picked by the tag's high bits, for an unknown
    ///    key its pair's bucket (either way the two buckets are one holding a key and one
    ///    picked at random);
    /// 4. that key's entry: its reference count taken and given back, its keyed HMAC state
    ///    read;
    /// 5. the keyed state of a stand-in picked by the check;
    /// 6. the entry handed out (the key's, or the stand-in's), whose reference count is
    ///    taken: in the cache either way by then.
    ///
    /// So an unknown key neither skips the memory a known key costs nor finds its memory
    /// hotter: with a few stand-ins alone, always in the cache, an unknown key was answered
    /// faster than a known key whose state had to come from memory (`benches/timing.rs`).
    /// Repeating an unknown key warms the same memory each time, as repeating a known key
    /// does.
    fn lookup(&self, public_key: &str) -> (Arc<ActiveKey>, bool) {
        let (tag, check) = self.fingerprint(public_key);
        let bucket = self.bucket(tag);
        let (tags, slots) = (&self.tags[bucket].0, &self.slots[bucket].0);
        // A key paired with this public key by its check (a stand-in when there is no key),
        // replaced by the key itself when a slot matches.
        let keys = (self.records.len() - STAND_INS) as u64;
        let mut real = if keys == 0 {
            0
        } else {
            // `(check >> 32) * keys >> 32`: uniform in `0..keys`, without a division.
            STAND_INS as u64 + (((check >> 32) * keys) >> 32)
        };
        let mut found = Choice::from(0);
        for (slot_tag, &slot) in tags.iter().zip(slots) {
            let hit = slot_tag.ct_eq(&tag) & !slot.ct_eq(&EMPTY);
            real.conditional_assign(&u64::from(slot), hit);
            found |= hit;
        }
        let record = &self.records[real as usize];
        // The second bucket: the paired key's for an unknown key, one picked by the tag's
        // high bits for a known key.
        let mut second = (tag >> 32) & self.mask;
        second.conditional_assign(&(record.tag & self.mask), !found);
        let second = second as usize;
        let folded = self.tags[second]
            .0
            .iter()
            .zip(&self.slots[second].0)
            .fold(0, |acc, (t, s)| acc ^ t ^ u64::from(*s));
        std::hint::black_box(folded);
        // The key's (or paired key's) entry: its reference count taken and given back, which
        // brings its first line in owned, then its keyed state read; then the stand-in's
        // keyed state. By the time one of the two is handed out, both are in the cache.
        let touched = record.key.clone();
        std::hint::black_box(touched.mac.clone());
        drop(touched);
        let stand_in = check & (STAND_INS as u64 - 1);
        std::hint::black_box(self.records[stand_in as usize].key.mac.clone());
        let mut chosen = stand_in;
        chosen.conditional_assign(&real, found);
        let chosen = &self.records[chosen as usize];
        let known = found & chosen.check.ct_eq(&check);
        (chosen.key.clone(), known.into())
    }

    /// Where the key with this public key is: (bucket, slot). Exact, not constant-time.
    fn position(&self, public_key: &str) -> Option<(usize, usize)> {
        let (tag, _) = self.fingerprint(public_key);
        let bucket = self.bucket(tag);
        let slot = (0..SLOTS).find(|&slot| {
            let at = self.slots[bucket].0[slot];
            at != EMPTY
                && self.tags[bucket].0[slot] == tag
                && self.records[at as usize].key.public_key == public_key
        })?;
        Some((bucket, slot))
    }

    /// The key with this public key (exact).
    fn get(&self, public_key: &str) -> Option<&Arc<ActiveKey>> {
        let (bucket, slot) = self.position(public_key)?;
        Some(&self.records[self.slots[bucket].0[slot] as usize].key)
    }

    /// Places a key, replacing (and returning) the one with the same public key.
    fn insert(&mut self, key: Arc<ActiveKey>) -> Result<Option<Arc<ActiveKey>>, Full> {
        let (tag, check) = self.fingerprint(&key.public_key);
        let bucket = self.bucket(tag);
        let mut free = None;
        for slot in 0..SLOTS {
            let at = self.slots[bucket].0[slot];
            if at == EMPTY {
                free = free.or(Some(slot));
            } else if self.tags[bucket].0[slot] == tag {
                let record = &mut self.records[at as usize];
                if record.key.public_key != key.public_key {
                    return Err(Full::Clash);
                }
                return Ok(Some(std::mem::replace(&mut record.key, key)));
            }
        }
        let Some(slot) = free else {
            return Err(Full::Bucket);
        };
        if self.len() >= self.buckets() {
            return Err(Full::Bucket);
        }
        let at = u32::try_from(self.records.len())
            .ok()
            .filter(|&at| at != EMPTY)
            .ok_or(Full::Bucket)?;
        self.records.push(Record { tag, check, key });
        self.tags[bucket].0[slot] = tag;
        self.slots[bucket].0[slot] = at;
        Ok(None)
    }

    /// Removes (and returns) the key with this public key.
    fn remove(&mut self, public_key: &str) -> Option<Arc<ActiveKey>> {
        let (bucket, slot) = self.position(public_key)?;
        let at = self.slots[bucket].0[slot];
        self.slots[bucket].0[slot] = EMPTY;
        self.tags[bucket].0[slot] = 0;
        let removed = self.records.swap_remove(at as usize);
        // The last record moved into the hole: repoint its slot.
        if let Some(moved) = self.records.get(at as usize) {
            let last = u32::try_from(self.records.len()).unwrap_or(EMPTY);
            let moved_bucket = self.bucket(moved.tag);
            if let Some(slot) = self.slots[moved_bucket]
                .0
                .iter_mut()
                .find(|slot| **slot == last)
            {
                *slot = at;
            }
        }
        Some(removed.key)
    }

    /// The keys (not the stand-ins).
    fn keys(&self) -> impl Iterator<Item = &Arc<ActiveKey>> {
        self.records[STAND_INS..].iter().map(|r| &r.key)
    }

    fn len(&self) -> usize {
        self.records.len() - STAND_INS
    }

    /// Places a key, rebuilding the index when it does not fit.
    fn upsert(&mut self, key: Arc<ActiveKey>) {
        let buckets = match self.insert(key.clone()) {
            Ok(_) => return,
            Err(Full::Bucket) => self.buckets() * 2,
            Err(Full::Clash) => self.buckets(),
        };
        let mut keys: Vec<Arc<ActiveKey>> = self.keys().cloned().collect();
        keys.push(key);
        let stand_ins: Vec<Arc<ActiveKey>> = self.records[..STAND_INS]
            .iter()
            .map(|r| r.key.clone())
            .collect();
        *self = Self::build(&keys, &stand_ins, buckets);
    }
}

/// All keys by public key. Reads are lock-free in practice (an uncontended `RwLock` read);
/// writes change one entry, or rebuild the index when it grows.
///
/// The index (`Index`) lets [`KeyCache::lookup`] do the same work for a known and an unknown
/// public key: every bucket has `SLOTS` slots, all compared in constant time, and an
/// unknown key reads the memory of a held key picked by a keyed hash (without using it)
/// before it is handed one of `STAND_INS` stand-ins, which are allocated among the keys.
/// Memory: 96 bytes per bucket (about one bucket per key), 24 bytes per key, and the
/// stand-ins (about 130 KB); measured, 100,000 keys take 5.9 MB more RSS than with the hash
/// map this replaced (74.2 MB against 68.3 MB for the cache alone).
pub struct KeyCache {
    index: RwLock<Index>,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::from_records(&[])
    }
}

/// The cached form of `records`, and [`STAND_INS`] stand-ins allocated among them (one after
/// every so many keys), so that the stand-ins lie in memory the way keys do: spread over as
/// many pages, at the same mix of offsets within cache lines and pages.
fn active_keys(records: &[KeyRecord]) -> (Vec<Arc<ActiveKey>>, Vec<Arc<ActiveKey>>) {
    let dummy = HmacSha512Key::dummy();
    let stand_in = || Arc::new(ActiveKey::stand_in(dummy.clone()));
    let every = records.len().div_ceil(STAND_INS).max(1);
    let mut keys = Vec::with_capacity(records.len());
    let mut stand_ins = Vec::with_capacity(STAND_INS);
    for (i, record) in records.iter().enumerate() {
        keys.push(Arc::new(ActiveKey::from_record(record)));
        if i % every == every - 1 && stand_ins.len() < STAND_INS {
            stand_ins.push(stand_in());
        }
    }
    stand_ins.resize_with(STAND_INS, stand_in);
    (keys, stand_ins)
}

impl KeyCache {
    /// A cache holding `records`.
    #[must_use]
    pub fn from_records(records: &[KeyRecord]) -> Self {
        Self {
            index: RwLock::new({
                let (keys, stand_ins) = active_keys(records);
                Index::build(&keys, &stand_ins, 0)
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The request path's lookup (row 12): the key with this public key and `true`, or, for
    /// an unknown public key, a stand-in keyed with a dummy secret and `false`. Both cases do
    /// the same work — two keyed hashes of the public key, a constant-time comparison with
    /// every slot of one bucket, the same reads of the same kinds of memory (see
    /// `Index::lookup`), an `Arc` clone — so that, with the HMAC that follows under either
    /// key, an unknown key is answered in the same time as a known key with a wrong signature
    /// (`benches/timing.rs`). The caller must refuse the stand-in whatever its signature check
    /// says.
    ///
    /// A key is recognised by its 128-bit keyed fingerprint (two SipHash values under a
    /// per-index random key), not by a byte comparison whose length would differ between the
    /// key and a stand-in: another public key could pass for a stored one only by matching
    /// both hashes (a chance of about 2^-128 per stored key, which no one can aim at without
    /// the hash key), and would still have to be signed with that key's secret. Two stored
    /// keys never share a tag within a bucket (the index is re-keyed if they would).
    #[must_use]
    pub fn lookup(&self, public_key: &str) -> (Arc<ActiveKey>, bool) {
        self.read().lookup(public_key)
    }

    /// The key with this public key.
    #[must_use]
    pub fn get(&self, public_key: &str) -> Option<Arc<ActiveKey>> {
        self.read().get(public_key).cloned()
    }

    /// Inserts or replaces a key (its last-used time is carried over when newer).
    pub fn upsert(&self, record: &KeyRecord) {
        let fresh = ActiveKey::from_record(record);
        let mut index = self.write();
        if let Some(old) = index.get(&record.public_key)
            && let Some(used) = old.last_used_ms()
        {
            fresh.mark_used(used);
        }
        index.upsert(Arc::new(fresh));
    }

    /// Replaces every key at once (a reload from the store), carrying over last-used times
    /// seen here and not yet stored.
    pub fn replace_all(&self, records: &[KeyRecord]) {
        let (keys, stand_ins) = active_keys(records);
        let fresh = Index::build(&keys, &stand_ins, 0);
        let mut index = self.write();
        for key in fresh.keys() {
            if let Some(old) = index.get(&key.public_key)
                && old.id == key.id
                && let Some(used) = old.last_used_ms()
            {
                key.mark_used(used);
            }
        }
        *index = fresh;
    }

    /// Removes the key with store id `id`, if it is still held (a key rotated meanwhile keeps
    /// its public key under a new id and stays).
    pub fn remove_id(&self, id: KeyId) {
        let mut index = self.write();
        let gone: Vec<String> = index
            .keys()
            .filter(|key| key.id == id)
            .map(|key| key.public_key.clone())
            .collect();
        for public_key in gone {
            index.remove(&public_key);
        }
    }

    /// Removes a key.
    pub fn remove(&self, public_key: &str) {
        self.write().remove(public_key);
    }

    /// Every key, as of now (the management service's idle sweep walks it).
    #[must_use]
    pub fn snapshot(&self) -> Vec<Arc<ActiveKey>> {
        self.read().keys().cloned().collect()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use whitebit_auth::mac::PayloadMac as _;

    use super::*;
    use crate::store::{SecretBytes, SecretBytesEq};

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
        assert!(cache.is_empty());
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
        assert!(cache.is_empty());
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
}
