//! Console sessions: random 256-bit ids in a server-side map, each with its CSRF token, its
//! account and the stamp of the password it signed in with once signed in, and an expiry on the
//! gateway's clock (idle and absolute).

use std::collections::HashMap;
use std::sync::Mutex;

use subtle::ConstantTimeEq as _;
use whitebit_auth::encoding::hex_encode;

use crate::manage::PasswordStamp;

/// Sessions kept at most; beyond it expired ones are dropped, then the oldest.
const MAX_SESSIONS: usize = 100_000;
/// A session that never signed in lives this long without a request.
const ANONYMOUS_IDLE_MS: u64 = 10 * 60 * 1000;

/// One session.
#[derive(Clone)]
pub(crate) struct Session {
    /// The signed-in account (none: only the sign-in form's CSRF token).
    pub(crate) account: Option<String>,
    /// The password it signed in with: a new one ends the session.
    pub(crate) stamp: Option<PasswordStamp>,
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

/// The session map.
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle_ms: u64,
    max_ms: u64,
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
        Self {
            map: Mutex::new(HashMap::new()),
            idle_ms,
            max_ms,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn alive(&self, session: &Session, now: u64) -> bool {
        let idle = if session.account.is_some() {
            self.idle_ms
        } else {
            ANONYMOUS_IDLE_MS
        };
        now.saturating_sub(session.last_ms) <= idle
            && now.saturating_sub(session.created_ms) <= self.max_ms
    }

    /// A new session (anonymous, or signed in as an account with a password stamp); its id, or
    /// none without randomness.
    pub(crate) fn create(
        &self,
        signed_in: Option<(String, PasswordStamp)>,
        now: u64,
    ) -> Option<(String, Session)> {
        let id = random_token()?;
        let (account, stamp) = signed_in.unzip();
        let session = Session {
            account,
            stamp,
            csrf: random_token()?,
            flash: None,
            created_ms: now,
            last_ms: now,
        };
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| self.alive(s, now));
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_ms)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session `id` (its idle clock restarted); an expired one is removed.
    pub(crate) fn get(&self, id: &str, now: u64) -> Option<Session> {
        let mut map = self.lock();
        let alive = map.get(id).map(|s| self.alive(s, now))?;
        if !alive {
            map.remove(id);
            return None;
        }
        let session = map.get_mut(id)?;
        session.last_ms = now;
        Some(session.clone())
    }

    /// Takes the flash message of a session.
    pub(crate) fn take_flash(&self, id: &str) -> Option<String> {
        self.lock().get_mut(id).and_then(|s| s.flash.take())
    }

    /// Leaves a message for the next page.
    pub(crate) fn set_flash(&self, id: &str, message: String) {
        if let Some(s) = self.lock().get_mut(id) {
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
