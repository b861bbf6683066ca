//! Failure counters in memory, bounded, on the gateway's clock: the growing delays of console
//! sign-ins (per name and source, and per source), the console's wrong-code locks per account
//! and the admin API's wrong-code lock per source.
//!
//! A *source* is an IPv4 address or the /64 network of an IPv6 address: one subscriber usually
//! holds a whole /64, so counting single IPv6 addresses would let one host start afresh at will.
//!
//! Every map holds at most a fixed number of entries. When one is full, the entry touched
//! longest ago goes first (forgotten ones are dropped before that), so pushing out a recent
//! entry — an attacker's own delay included — takes filling the whole map with newer failures,
//! which the per-source delay stops one source from doing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Failed console sign-ins per (name, source) before that pair has to wait.
pub(crate) const SIGN_IN_FREE_PER_NAME: u32 = 5;
/// Failed console sign-ins per source (any names) before that source has to wait.
pub(crate) const SIGN_IN_FREE_PER_SOURCE: u32 = 20;
/// The first wait; each further failure doubles it.
pub(crate) const SIGN_IN_FIRST_DELAY_MS: u64 = 30 * 1000;
/// The longest wait.
pub(crate) const SIGN_IN_MAX_DELAY_MS: u64 = 15 * 60 * 1000;
/// Failures are forgotten this long after the last one.
pub(crate) const SIGN_IN_FORGET_MS: u64 = 60 * 60 * 1000;
/// (name, source) pairs tracked at most.
pub(crate) const MAX_TRACKED_PAIRS: usize = 100_000;
/// Sources tracked at most.
pub(crate) const MAX_TRACKED_SOURCES: usize = 100_000;

/// Where a request comes from, as failures are counted: an IPv4 address, the /64 network of an
/// IPv6 address, or unknown (no peer address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Source {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(Ipv4Addr),
    /// The /64 network of an IPv6 address (the low 64 bits zero).
    V6(Ipv6Addr),
    /// No address known.
    Unknown,
}

impl Source {
    /// The source of a request from `ip`.
    #[must_use]
    pub(crate) fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(crate::ip::canonical) {
            Some(IpAddr::V4(v4)) => Source::V4(v4),
            Some(IpAddr::V6(v6)) => {
                Source::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))
            }
            None => Source::Unknown,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(ip) => write!(f, "{ip}"),
            Source::V6(net) => write!(f, "{net}/64"),
            Source::Unknown => f.write_str("unknown"),
        }
    }
}

struct Slot<V> {
    value: V,
    seq: u64,
    at_ms: u64,
}

/// A map of at most `cap` entries; making room drops the entry touched longest ago.
pub(crate) struct Recent<K, V> {
    entries: HashMap<K, Slot<V>>,
    /// Touch order (oldest first): sequence number → key.
    order: BTreeMap<u64, K>,
    next: u64,
    cap: usize,
}

impl<K: Eq + Hash + Clone, V: Default> Recent<K, V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            cap: cap.max(1),
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|s| &s.value)
    }

    /// The entry of `key`, left where it is in the touch order.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|s| &mut s.value)
    }

    /// The entry of `key` (a default one when missing, room made first), marked as touched at
    /// `now_ms`: the newest.
    pub(crate) fn touch(&mut self, key: K, now_ms: u64) -> &mut V {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.cap {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
        }
        let slot = self.entries.entry(key.clone()).or_insert_with(|| Slot {
            value: V::default(),
            seq,
            at_ms: now_ms,
        });
        self.order.remove(&slot.seq);
        slot.seq = seq;
        slot.at_ms = now_ms;
        self.order.insert(seq, key);
        &mut slot.value
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(slot) = self.entries.remove(key) {
            self.order.remove(&slot.seq);
        }
    }

    /// Drops the entries last touched before `cutoff_ms`, oldest first (stops at the first
    /// newer one, so the cost is the number dropped).
    pub(crate) fn forget_before(&mut self, cutoff_ms: u64) {
        while let Some((&seq, key)) = self.order.first_key_value() {
            if self.entries.get(key).is_some_and(|s| s.at_ms >= cutoff_ms) {
                break;
            }
            let key = key.clone();
            self.order.remove(&seq);
            self.entries.remove(&key);
        }
    }
}

/// Failures of one pair or source.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Failures {
    count: u32,
    last_ms: u64,
    until_ms: u64,
}

/// Growing delays: the `free`-th failure starts a wait of `first_ms`, doubled by each further failure up
/// to `max_ms`; everything forgotten `forget_ms` after the last failure.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    free: u32,
    first_ms: u64,
    max_ms: u64,
    forget_ms: u64,
}

impl Backoff {
    fn wait(self, failures: &Failures, now_ms: u64) -> Option<u64> {
        (failures.until_ms > now_ms).then(|| failures.until_ms - now_ms)
    }

    /// Takes back one failure (and the wait it started, below the free count).
    fn undo(self, failures: &mut Failures) {
        failures.count = failures.count.saturating_sub(1);
        if failures.count < self.free {
            failures.until_ms = 0;
        }
    }

    /// Counts a failure; the wait it starts, if any.
    fn fail(self, failures: &mut Failures, now_ms: u64) -> Option<u64> {
        if now_ms.saturating_sub(failures.last_ms) > self.forget_ms {
            *failures = Failures::default();
        }
        failures.count = failures.count.saturating_add(1);
        failures.last_ms = now_ms;
        let doublings = failures.count.checked_sub(self.free)?;
        let delay = self
            .first_ms
            .saturating_mul(1u64 << doublings.min(32))
            .min(self.max_ms);
        failures.until_ms = now_ms.saturating_add(delay);
        Some(delay)
    }
}

const PER_NAME: Backoff = Backoff {
    free: SIGN_IN_FREE_PER_NAME,
    first_ms: SIGN_IN_FIRST_DELAY_MS,
    max_ms: SIGN_IN_MAX_DELAY_MS,
    forget_ms: SIGN_IN_FORGET_MS,
};

const PER_SOURCE: Backoff = Backoff {
    free: SIGN_IN_FREE_PER_SOURCE,
    first_ms: SIGN_IN_FIRST_DELAY_MS,
    max_ms: SIGN_IN_MAX_DELAY_MS,
    forget_ms: SIGN_IN_FORGET_MS,
};

/// A name as the throttle keys it: its SHA-256 (fixed size, whatever was typed).
pub(crate) type NameKey = [u8; 32];

/// The key of a typed name.
pub(crate) fn name_key(name: &str) -> NameKey {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Console sign-in failures: growing delays per (typed name, source) and per source. Names are
/// counted whether an account has them or not, so the answers never tell them apart.
pub(crate) struct SignInThrottle {
    pairs: Recent<(NameKey, Source), Failures>,
    sources: Recent<Source, Failures>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::with_caps(MAX_TRACKED_PAIRS, MAX_TRACKED_SOURCES)
    }
}

impl SignInThrottle {
    pub(crate) fn with_caps(pairs: usize, sources: usize) -> Self {
        Self {
            pairs: Recent::new(pairs),
            sources: Recent::new(sources),
        }
    }

    /// How long a sign-in as `name` from `source` still has to wait (none: it may try now).
    pub(crate) fn wait_ms(&self, name: &NameKey, source: Source, now_ms: u64) -> Option<u64> {
        let pair = self
            .pairs
            .get(&(*name, source))
            .and_then(|f| PER_NAME.wait(f, now_ms));
        let source = self
            .sources
            .get(&source)
            .and_then(|f| PER_SOURCE.wait(f, now_ms));
        pair.max(source)
    }

    /// Counts a failed sign-in; the wait it starts (the longer one), if any.
    pub(crate) fn fail(&mut self, name: &NameKey, source: Source, now_ms: u64) -> Option<u64> {
        let cutoff = now_ms.saturating_sub(SIGN_IN_FORGET_MS);
        self.pairs.forget_before(cutoff);
        self.sources.forget_before(cutoff);
        let pair = PER_NAME.fail(self.pairs.touch((*name, source), now_ms), now_ms);
        let source = PER_SOURCE.fail(self.sources.touch(source, now_ms), now_ms);
        pair.max(source)
    }

    /// A successful sign-in (counted by [`Self::fail`] beforehand) clears its pair and takes
    /// its count back from the source (whose earlier failures stay).
    pub(crate) fn succeed(&mut self, name: &NameKey, source: Source) {
        self.pairs.remove(&(*name, source));
        if let Some(failures) = self.sources.get_mut(&source) {
            PER_SOURCE.undo(failures);
        }
    }

    /// Takes back one count of [`Self::fail`] (a try that could not be checked).
    pub(crate) fn undo(&mut self, name: &NameKey, source: Source) {
        if let Some(failures) = self.pairs.get_mut(&(*name, source)) {
            PER_NAME.undo(failures);
        }
        if let Some(failures) = self.sources.get_mut(&source) {
            PER_SOURCE.undo(failures);
        }
    }

    /// Entries held (pairs, sources).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.pairs.len(), self.sources.len())
    }
}

/// Wrong codes in a row of one account (or source), and its lock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CodeFailures {
    count: u32,
    since_ms: u64,
    locked_until_ms: u64,
}

/// What counting a wrong code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Still open: this many wrong codes left before the lock.
    Left(u32),
    /// Locked now, until this time (Unix ms).
    LockedUntil(u64),
}

/// Wrong-code locks: `max` wrong codes (within `window_ms` of the first, when set) lock the
/// subject for `lock_ms`; a right code clears the count.
pub(crate) struct CodeLocks<K> {
    map: Recent<K, CodeFailures>,
    max: u32,
    lock_ms: u64,
    window_ms: Option<u64>,
}

impl<K: Eq + Hash + Clone> CodeLocks<K> {
    pub(crate) fn new(cap: usize, max: u32, lock_ms: u64, window_ms: Option<u64>) -> Self {
        Self {
            map: Recent::new(cap),
            max: max.max(1),
            lock_ms,
            window_ms,
        }
    }

    /// Until when `key` is locked, while it is.
    pub(crate) fn locked_until(&self, key: &K, now_ms: u64) -> Option<u64> {
        self.map
            .get(key)
            .map(|f| f.locked_until_ms)
            .filter(|until| *until > now_ms)
    }

    /// Counts a wrong code of `key`.
    pub(crate) fn fail(&mut self, key: K, now_ms: u64) -> Counted {
        let (max, lock_ms, window_ms) = (self.max, self.lock_ms, self.window_ms);
        let entry = self.map.touch(key, now_ms);
        if entry.locked_until_ms > now_ms {
            return Counted::LockedUntil(entry.locked_until_ms);
        }
        let window_over = window_ms.is_some_and(|w| now_ms.saturating_sub(entry.since_ms) > w);
        // A first failure, one after a lock ended, or one after the window: a fresh count.
        if entry.count == 0 || entry.locked_until_ms != 0 || window_over {
            *entry = CodeFailures {
                count: 0,
                since_ms: now_ms,
                locked_until_ms: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count >= max {
            entry.count = 0;
            entry.locked_until_ms = now_ms.saturating_add(lock_ms);
            return Counted::LockedUntil(entry.locked_until_ms);
        }
        Counted::Left(max - entry.count)
    }

    /// A right code: the count starts again.
    pub(crate) fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn v4(n: u32) -> Source {
        Source::of(Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))))
    }

    #[test]
    fn sources_are_addresses_and_v6_networks() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(Source::of(ip("::ffff:1.2.3.4")), Source::of(ip("1.2.3.4")));
        assert_ne!(Source::of(ip("1.2.3.4")), Source::of(ip("1.2.3.5")));
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(Source::of(ip("1.2.3.4")).to_string(), "1.2.3.4");
        assert_eq!(Source::of(None).to_string(), "unknown");
    }

    #[test]
    fn delays_start_after_five_and_double_up_to_the_cap() {
        let mut t = SignInThrottle::default();
        let (name, source) = (name_key("alice"), v4(1));
        let mut now = T0;
        for _ in 1..SIGN_IN_FREE_PER_NAME {
            assert_eq!(t.fail(&name, source, now), None);
            assert_eq!(t.wait_ms(&name, source, now), None);
        }
        let mut waits = Vec::new();
        for _ in 0..7 {
            let wait = t.fail(&name, source, now).expect("a wait");
            assert_eq!(t.wait_ms(&name, source, now), Some(wait));
            assert_eq!(t.wait_ms(&name, source, now + wait), None);
            waits.push(wait / 1000);
            now += wait;
        }
        assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900]);
        // Another source, and another name, are not held up.
        assert_eq!(t.wait_ms(&name, v4(2), T0), None);
        assert_eq!(t.wait_ms(&name_key("bob"), source, T0), None);
        // A success clears the pair; an hour without failures forgets it.
        t.succeed(&name, source);
        assert_eq!(t.fail(&name, source, now), None);
        for _ in 1..SIGN_IN_FREE_PER_NAME {
            t.fail(&name, source, now);
        }
        assert!(t.wait_ms(&name, source, now).is_some());
        now += SIGN_IN_FORGET_MS + 1;
        assert_eq!(t.fail(&name, source, now), None);
    }

    #[test]
    fn successes_and_unchecked_tries_take_their_count_back() {
        let mut t = SignInThrottle::default();
        let source = v4(3);
        // Twenty people behind one address sign in, each counted first: nobody waits.
        for i in 0..2 * SIGN_IN_FREE_PER_SOURCE {
            let name = name_key(&format!("user{i}"));
            assert_eq!(t.wait_ms(&name, source, T0), None);
            t.fail(&name, source, T0);
            t.succeed(&name, source);
        }
        // Tries the service could not check do not count either.
        let name = name_key("alice");
        for _ in 0..2 * SIGN_IN_FREE_PER_NAME {
            assert_eq!(t.wait_ms(&name, source, T0), None);
            t.fail(&name, source, T0);
            t.undo(&name, source);
        }
        // Real failures still add up.
        for _ in 0..SIGN_IN_FREE_PER_NAME {
            t.fail(&name, source, T0);
        }
        assert_eq!(t.wait_ms(&name, source, T0), Some(SIGN_IN_FIRST_DELAY_MS));
    }

    #[test]
    fn one_source_trying_many_names_waits_after_twenty() {
        let mut t = SignInThrottle::default();
        let source = Source::of(Some("2001:db8::1".parse().expect("ip")));
        for i in 0..SIGN_IN_FREE_PER_SOURCE - 1 {
            assert_eq!(t.fail(&name_key(&format!("user{i}")), source, T0), None);
        }
        assert_eq!(
            t.fail(&name_key("user-last"), source, T0),
            Some(SIGN_IN_FIRST_DELAY_MS)
        );
        // Every name from anywhere in that /64 waits; other sources do not.
        let elsewhere = Source::of(Some("2001:db8::ffff".parse().expect("ip")));
        assert_eq!(
            t.wait_ms(&name_key("fresh"), elsewhere, T0),
            Some(SIGN_IN_FIRST_DELAY_MS)
        );
        assert_eq!(t.wait_ms(&name_key("fresh"), v4(9), T0), None);
    }

    #[test]
    fn full_maps_drop_the_oldest_first_and_stay_bounded() {
        let mut t = SignInThrottle::with_caps(8, 8);
        let (victim, attacker) = (name_key("victim"), v4(1));
        // The attacker's own pair waits...
        for _ in 0..SIGN_IN_FREE_PER_NAME {
            t.fail(&victim, attacker, T0);
        }
        assert!(t.wait_ms(&victim, attacker, T0).is_some());
        // ...and while it waits, it cannot add entries from that source: the sign-in checks
        // the wait first. Other sources filling the map push out older entries first: the
        // attacker's entry goes only after 8 newer ones, and the maps never grow past the cap.
        for i in 2..9 {
            t.fail(&name_key("x"), v4(i), T0 + u64::from(i));
            assert!(t.wait_ms(&victim, attacker, T0).is_some(), "kept at {i}");
        }
        for i in 9..1000 {
            t.fail(&name_key(&format!("n{i}")), v4(i), T0 + u64::from(i));
            let (pairs, sources) = t.tracked();
            assert!(pairs <= 8 && sources <= 8, "{pairs} {sources}");
        }
        // Forgotten entries go before any live one.
        let mut r: Recent<u32, Failures> = Recent::new(3);
        r.touch(1, T0);
        r.touch(2, T0 + 10);
        r.touch(1, T0 + 20);
        r.forget_before(T0 + 15);
        assert_eq!((r.len(), r.get(&2).is_none()), (1, true));
        r.touch(3, T0 + 30);
        r.touch(4, T0 + 40);
        r.touch(5, T0 + 50);
        assert!(r.get(&1).is_none() && r.get(&5).is_some());
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn code_locks_count_lock_and_clear() {
        let mut locks: CodeLocks<i64> = CodeLocks::new(4, 5, 900_000, None);
        for left in (1..5).rev() {
            assert_eq!(locks.fail(7, T0), Counted::Left(left));
        }
        assert_eq!(locks.fail(7, T0), Counted::LockedUntil(T0 + 900_000));
        assert_eq!(locks.locked_until(&7, T0 + 1), Some(T0 + 900_000));
        assert_eq!(locks.locked_until(&7, T0 + 900_000), None);
        // After the lock a fresh count.
        assert_eq!(locks.fail(7, T0 + 900_000), Counted::Left(4));
        locks.clear(&7);
        assert_eq!(locks.fail(7, T0 + 900_000), Counted::Left(4));
        // A window forgets old failures.
        let mut windowed: CodeLocks<i64> = CodeLocks::new(4, 3, 1_000, Some(100));
        assert_eq!(windowed.fail(1, T0), Counted::Left(2));
        assert_eq!(windowed.fail(1, T0 + 101), Counted::Left(2));
        for i in 0..100 {
            windowed.fail(i, T0);
        }
        assert!(windowed.len() <= 4);
    }
}
