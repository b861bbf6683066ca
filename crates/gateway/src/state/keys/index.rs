//! The key index behind [`KeyCache`](super::KeyCache): fixed-size buckets compared in
//! constant time, and stand-ins for unknown public keys.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::ActiveKey;

/// Slots in every bucket of the key index. A lookup compares the presented key's tag with all
/// of them, whichever are in use.
pub(super) const SLOTS: usize = 8;
/// The record position of an unused slot (never a real position).
pub(super) const EMPTY: u32 = u32::MAX;
/// The smallest index.
pub(super) const MIN_BUCKETS: usize = 8;
/// Stand-ins per index (a power of two): a few, so that concurrent unknown keys do not all
/// share one reference count.
pub(super) const STAND_INS: usize = 256;

/// A bucket's tags: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Tags(pub(super) [u64; SLOTS]);

/// A bucket's record positions ([`EMPTY`] for an unused slot): half a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(super) struct Slots(pub(super) [u32; SLOTS]);

/// A key, or a stand-in, with its fingerprint.
pub(super) struct Record {
    pub(super) tag: u64,
    check: u64,
    pub(super) key: Arc<ActiveKey>,
}

/// Why a key could not be placed without rebuilding the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
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
pub(super) struct Index {
    hasher: RandomState,
    /// Buckets − 1 (buckets: a power of two).
    pub(super) mask: u64,
    pub(super) tags: Vec<Tags>,
    pub(super) slots: Vec<Slots>,
    pub(super) records: Vec<Record>,
}

impl Index {
    /// An index of `buckets` buckets (a power of two) holding no key, with these stand-ins
    /// ([`STAND_INS`] of them).
    pub(super) fn empty(buckets: usize, stand_ins: &[Arc<ActiveKey>], capacity: usize) -> Self {
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
    pub(super) fn build(
        keys: &[Arc<ActiveKey>],
        stand_ins: &[Arc<ActiveKey>],
        buckets: usize,
    ) -> Self {
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
    pub(super) fn fingerprint(&self, public_key: &str) -> (u64, u64) {
        let half = |domain: u8| {
            let mut hasher = self.hasher.build_hasher();
            hasher.write_u8(domain);
            hasher.write(public_key.as_bytes());
            hasher.finish()
        };
        (half(0), half(1))
    }

    /// The bucket of a tag (its low bits).
    pub(super) fn bucket(&self, tag: u64) -> usize {
        // Below the bucket count, which is a `usize`.
        (tag & self.mask) as usize
    }

    pub(super) fn buckets(&self) -> usize {
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
    pub(super) fn lookup(&self, public_key: &str) -> (Arc<ActiveKey>, bool) {
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
    pub(super) fn position(&self, public_key: &str) -> Option<(usize, usize)> {
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
    pub(super) fn get(&self, public_key: &str) -> Option<&Arc<ActiveKey>> {
        let (bucket, slot) = self.position(public_key)?;
        Some(&self.records[self.slots[bucket].0[slot] as usize].key)
    }

    /// Places a key, replacing (and returning) the one with the same public key.
    pub(super) fn insert(&mut self, key: Arc<ActiveKey>) -> Result<Option<Arc<ActiveKey>>, Full> {
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
    pub(super) fn remove(&mut self, public_key: &str) -> Option<Arc<ActiveKey>> {
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
    pub(super) fn keys(&self) -> impl Iterator<Item = &Arc<ActiveKey>> {
        self.records[STAND_INS..].iter().map(|r| &r.key)
    }

    pub(super) fn len(&self) -> usize {
        self.records.len() - STAND_INS
    }

    /// Places a key, rebuilding the index when it does not fit.
    pub(super) fn upsert(&mut self, key: Arc<ActiveKey>) {
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
