//! Fail fast on refused credentials: the first call of a run goes alone, and
//! the others wait until its answer shows the credentials were accepted.

use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No call has proven the credentials yet, and none is trying.
    Untested,
    /// One call is out proving them.
    Probing,
    /// A call was answered without a credential refusal.
    Open,
}

/// The run's credential gate.
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
    changed: Notify,
}

/// A pass through the gate; a probe must say how its call went.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: Option<&'a Gate>,
}

impl Gate {
    pub fn new() -> Self {
        Self { state: Mutex::new(State::Untested), changed: Notify::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until this call may go: at once when the gate is open, as the
    /// probe when untested, else after the probe's answer.
    pub async fn enter(&self) -> Pass<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state();
                match *state {
                    State::Open => return Pass { gate: None },
                    State::Untested => {
                        *state = State::Probing;
                        return Pass { gate: Some(self) };
                    }
                    State::Probing => {}
                }
            }
            changed.await;
        }
    }

    fn settle(&self, accepted: bool) {
        *self.state() = if accepted { State::Open } else { State::Untested };
        self.changed.notify_waiters();
    }

    /// Wakes every waiter, for a run that stops (they then see the abort).
    pub fn wake_all(&self) {
        self.changed.notify_waiters();
    }
}

impl Pass<'_> {
    /// The credentials were accepted (any answer but a refusal).
    pub fn accepted(mut self) {
        if let Some(gate) = self.gate.take() {
            gate.settle(true);
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        // A probe that got no answer proves nothing: the next call probes.
        if let Some(gate) = self.gate.take() {
            gate.settle(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_probe_at_a_time_until_accepted() {
        let gate = Arc::new(Gate::new());
        let probe = gate.enter().await;
        let through = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (gate, through) = (gate.clone(), through.clone());
                tokio::spawn(async move {
                    gate.enter().await.accepted();
                    through.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(through.load(Ordering::SeqCst), 0);
        drop(probe); // no answer: one waiter becomes the probe and opens it
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(through.load(Ordering::SeqCst), 3);
    }
}
