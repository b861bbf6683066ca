//! Console sessions, signed-in only: random 256-bit ids in a server-side map, each with its
//! account, the stamp of the password it signed in with, its CSRF token and an expiry on the
//! gateway's clock (idle and absolute).
//!
//! Nothing is stored before sign-in (the sign-in and one-time-link forms carry a signed token
//! instead, see [`super::anonymous`]), so anonymous traffic neither fills the map nor pushes
//! anyone out. An account holds at most [`MAX_SESSIONS_PER_ACCOUNT`] sessions (a new sign-in
//! ends that account's least recently used one); when the map holds [`MAX_SESSIONS`] live
//! sessions a new sign-in is refused rather than ending someone else's.

use std::collections::HashMap;
use std::sync::Mutex;

use subtle::ConstantTimeEq as _;
use whitebit_auth::encoding::hex_encode;

use crate::service::PasswordStamp;

/// Signed-in sessions kept at most.
pub(crate) const MAX_SESSIONS: usize = 100_000;
/// Signed-in sessions of one account kept at most.
pub(crate) const MAX_SESSIONS_PER_ACCOUNT: usize = 16;

/// One signed-in session.
#[derive(Clone)]
pub(crate) struct Session {
    /// The account.
    pub(crate) account: String,
    /// The password it signed in with: a new one ends the session.
    pub(crate) stamp: PasswordStamp,
    /// The CSRF token every form of this session carries.
    pub(crate) csrf: String,
    /// A message for the next page (shown once).
    pub(crate) flash: Option<String>,
    created_ms: u64,
    last_ms: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Why no session was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotCreated {
    /// [`MAX_SESSIONS`] live sessions.
    Full,
    /// No randomness for the id.
    NoRandomness,
}

#[derive(Default)]
struct Table {
    sessions: HashMap<String, Session>,
    /// Each account's session ids.
    by_account: HashMap<String, Vec<String>>,
}

impl Table {
    fn remove(&mut self, id: &str) {
        let Some(session) = self.sessions.remove(id) else {
            return;
        };
        if let Some(ids) = self.by_account.get_mut(&session.account) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_account.remove(&session.account);
            }
        }
    }
}

/// The session map.
pub(crate) struct Sessions {
    table: Mutex<Table>,
    idle_ms: u64,
    max_ms: u64,
    max_sessions: usize,
    per_account: usize,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// 32 random bytes as hex.
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex_encode(&bytes))
}

impl Sessions {
    pub(crate) fn new(idle_ms: u64, max_ms: u64) -> Self {
        Self::with_caps(idle_ms, max_ms, MAX_SESSIONS, MAX_SESSIONS_PER_ACCOUNT)
    }

    fn with_caps(idle_ms: u64, max_ms: u64, max_sessions: usize, per_account: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            idle_ms,
            max_ms,
            max_sessions: max_sessions.max(1),
            per_account: per_account.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn alive(&self, session: &Session, now: u64) -> bool {
        now.saturating_sub(session.last_ms) <= self.idle_ms
            && now.saturating_sub(session.created_ms) <= self.max_ms
    }

    /// A new session of `account`, signed in with `stamp`.
    pub(crate) fn create(
        &self,
        account: &str,
        stamp: PasswordStamp,
        now: u64,
    ) -> Result<(String, Session), NotCreated> {
        let id = random_token().ok_or(NotCreated::NoRandomness)?;
        let csrf = random_token().ok_or(NotCreated::NoRandomness)?;
        let session = Session {
            account: account.to_owned(),
            stamp,
            csrf,
            flash: None,
            created_ms: now,
            last_ms: now,
        };
        let mut table = self.lock();
        // The account's own: expired ones go, then the least recently used beyond the cap.
        let mut own: Vec<(bool, u64, String)> = table
            .by_account
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let s = table.sessions.get(id)?;
                Some((self.alive(s, now), s.last_ms, id.clone()))
            })
            .collect();
        own.sort();
        let live = own.iter().filter(|(alive, _, _)| *alive).count();
        let mut excess = (live + 1).saturating_sub(self.per_account);
        for (alive, _, id) in own {
            if !alive {
                table.remove(&id);
            } else if excess > 0 {
                table.remove(&id);
                excess -= 1;
            }
        }
        if table.sessions.len() >= self.max_sessions {
            let expired: Vec<String> = table
                .sessions
                .iter()
                .filter(|(_, s)| !self.alive(s, now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                table.remove(id);
            }
            if table.sessions.len() >= self.max_sessions {
                return Err(NotCreated::Full);
            }
        }
        table
            .by_account
            .entry(account.to_owned())
            .or_default()
            .push(id.clone());
        table.sessions.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session `id` (its idle clock restarted); an expired one is removed.
    pub(crate) fn get(&self, id: &str, now: u64) -> Option<Session> {
        let mut table = self.lock();
        let alive = table.sessions.get(id).map(|s| self.alive(s, now))?;
        if !alive {
            table.remove(id);
            return None;
        }
        let session = table.sessions.get_mut(id)?;
        session.last_ms = now;
        Some(session.clone())
    }

    /// Takes the flash message of a session.
    pub(crate) fn take_flash(&self, id: &str) -> Option<String> {
        self.lock()
            .sessions
            .get_mut(id)
            .and_then(|s| s.flash.take())
    }

    /// Leaves a message for the next page.
    pub(crate) fn set_flash(&self, id: &str, message: String) {
        if let Some(s) = self.lock().sessions.get_mut(id) {
            s.flash = Some(message);
        }
    }

    /// Ends a session.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// Whether a presented CSRF token is the session's (constant time).
pub(crate) fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn stamp() -> PasswordStamp {
        PasswordStamp::for_tests(1)
    }

    #[test]
    fn an_account_keeps_its_newest_sessions_and_others_are_never_pushed_out() {
        let sessions = Sessions::with_caps(60_000, 600_000, 4, 2);
        let (alice1, _) = sessions.create("alice", stamp(), T0).expect("alice 1");
        let (bob, _) = sessions.create("bob", stamp(), T0 + 1).expect("bob");
        let (alice2, _) = sessions.create("alice", stamp(), T0 + 2).expect("alice 2");
        // A third sign-in of alice ends her least recently used session, no one else's.
        assert!(
            sessions.get(&alice1, T0 + 3).is_some(),
            "alice 1 used again"
        );
        let (alice3, _) = sessions.create("alice", stamp(), T0 + 4).expect("alice 3");
        assert!(sessions.get(&alice2, T0 + 5).is_none());
        for id in [&alice1, &alice3, &bob] {
            assert!(sessions.get(id, T0 + 5).is_some());
        }
        // Full of live sessions: a new sign-in is refused, nobody is signed out.
        let (carol, _) = sessions.create("carol", stamp(), T0 + 6).expect("carol");
        assert_eq!(
            sessions.create("dave", stamp(), T0 + 7).map(|_| ()),
            Err(NotCreated::Full)
        );
        for id in [&alice1, &alice3, &bob, &carol] {
            assert!(sessions.get(id, T0 + 8).is_some());
        }
        // Once some have expired, they make room.
        sessions
            .get(&carol, T0 + 60_000)
            .expect("carol stays active");
        let (dave, _) = sessions
            .create("dave", stamp(), T0 + 60_010)
            .expect("room after expiry");
        assert!(sessions.get(&dave, T0 + 60_011).is_some());
        assert!(sessions.get(&bob, T0 + 60_011).is_none(), "bob idled out");
    }
}
