//! Password checks: off the runtime, at most `PASSWORD_JOBS` at once, never under the write
//! lock.

use std::sync::Mutex;

use super::*;

/// Where password checks wait in a test, counting who came and how many were inside at
/// once. Every wait is bounded.
#[derive(Default)]
pub(in crate::service) struct Gate {
    state: Mutex<GateState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct GateState {
    open: bool,
    entered: usize,
    inside: usize,
    most_inside: usize,
}

const GATE_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

impl Gate {
    fn install(service: &KeyService) -> Arc<Self> {
        let gate = Arc::new(Self::default());
        assert!(service.password_gate.set(gate.clone()).is_ok());
        gate
    }

    /// A password check arrives: waits until the gate opens (at most [`GATE_BOUND`]).
    pub(in crate::service) fn pass(&self) {
        let mut state = lock(&self.state);
        state.entered += 1;
        state.inside += 1;
        state.most_inside = state.most_inside.max(state.inside);
        self.changed.notify_all();
        state = self
            .changed
            .wait_timeout_while(state, GATE_BOUND, |s| !s.open)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
        state.inside -= 1;
        self.changed.notify_all();
    }

    /// Waits (at most [`GATE_BOUND`]) until `ready` holds; whether it does.
    async fn wait_for(self: &Arc<Self>, ready: fn(&GateState) -> bool) -> bool {
        let gate = self.clone();
        tokio::task::spawn_blocking(move || {
            let state = lock(&gate.state);
            let (state, _) = gate
                .changed
                .wait_timeout_while(state, GATE_BOUND, |s| !ready(s))
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ready(&state)
        })
        .await
        .expect("waiter")
    }

    fn open(&self) {
        lock(&self.state).open = true;
        self.changed.notify_all();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_never_hold_the_write_lock() {
    let f = Arc::new(fixture().await);
    f.create_account("alice").await.expect("account");
    f.service
        .set_password("alice", "correct horse battery", &admin())
        .await
        .expect("password");
    let gate = Gate::install(&f.service);
    let tries: Vec<_> = (1..=3u8)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                let ip = IpAddr::from([192, 0, 2, i]);
                let caller = Caller::console(format!("console:alice@{ip}"), Some(ip));
                f.service
                    .sign_in("alice", "not the password", None, &caller)
                    .await
            })
        })
        .collect();
    assert!(gate.wait_for(|s| s.inside >= 1).await, "a check started");
    // While password checks run, a change (it takes the write lock) goes through.
    let operator = admin();
    let change = tokio::time::timeout(GATE_BOUND, f.service.create_account("bob", &operator));
    change
        .await
        .expect("a change waited for a password check")
        .expect("account");
    gate.open();
    for attempt in tries {
        let e = attempt.await.expect("task").expect_err("wrong password");
        assert_eq!(e.status(), 401, "{e}");
    }
    let state = lock(&gate.state);
    assert_eq!(state.entered, 3);
    assert!(state.most_inside <= PASSWORD_JOBS, "{}", state.most_inside);
}
