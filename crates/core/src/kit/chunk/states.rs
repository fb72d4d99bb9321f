//! State reads: pre-checks, waiting for a state by reading it, and
//! verification of reported successes.

use super::*;

impl ChunkRun<'_, '_> {
    /// Waits `delay` while the tasks being polled go on; true when the run
    /// stopped meanwhile.
    pub(super) async fn pause(&mut self, delay: Duration) -> bool {
        let run = self.run;
        alongside(&mut self.polls, &mut self.polled, async {
            tokio::select! {
                () = tokio::time::sleep(delay) => false,
                () = run.stopped() => true,
            }
        })
        .await
    }

    /// Instance views by id, or why a query failed.
    pub(super) async fn views(&mut self, members: &[usize]) -> Result<IdMap<InstanceView>, Failure> {
        let ids: Vec<InstanceId> = members.iter().map(|&m| self.insts[m].id.clone()).collect();
        let (run, provider) = (self.run, self.provider);
        alongside(&mut self.polls, &mut self.polled, views(run, provider, ids)).await
    }

    /// Reads states before the first send: instances already in the
    /// requested state end unchanged; with the pre-check, refused instances
    /// fail unsent, changing ones wait; the rest go.
    pub(super) async fn precheck(&mut self, members: &[usize]) {
        let converge = self.profile.converge && !self.run.force;
        let precheck = self.profile.precheck_states;
        let views = match self.views(members).await {
            Ok(views) => views,
            Err(failure) if precheck => {
                // The check decides what may be sent (a running VM must not be power-cycled): ask again later.
                let failure = Failure {
                    message: format!("the state pre-check could not be read: {}", failure.message),
                    ..failure
                }
                .retryable(true);
                self.schedule_retry(members.iter().map(|&m| (m, failure.clone())).collect());
                return;
            }
            Err(failure) => {
                // A run that stopped sending (refused or missing credentials) says so once, elsewhere.
                if self.run.aborted().is_none() {
                    tracing::warn!(instances = members.len(), reason = %failure.message, "state read failed; sending without it");
                }
                for &m in members {
                    self.insts[m].checked = true;
                }
                return;
            }
        };
        let mut finished = Vec::new();
        let mut waits = Vec::new();
        for &m in members {
            let id = self.insts[m].id.clone();
            let view = views.get(&id);
            self.insts[m].marker = Some(view.and_then(|v| v.latest_operation.clone()));
            self.insts[m].kind = view.map_or(CallKind::SAME, |v| v.call_kind);
            if converge && view.is_some_and(|v| self.in_requested_state(v)) {
                self.finalize(m, InstanceOutcome::Unchanged, &mut finished);
                continue;
            }
            if !precheck {
                self.insts[m].checked = true;
                continue;
            }
            match view.map(|v| &v.readiness) {
                None => {
                    let f = Failure::new(FailureKind::InstanceNotFound, format!("pre-check: {id} does not exist"));
                    self.finalize(m, InstanceOutcome::failed(f), &mut finished);
                }
                Some(Readiness::Refuse(f)) => self.finalize(m, InstanceOutcome::failed(f.clone()), &mut finished),
                Some(Readiness::Wait(f)) => waits.push((m, f.clone().retryable(true))),
                Some(Readiness::Ready) => self.insts[m].checked = true,
            }
        }
        self.run.finished(&finished);
        // Not ready yet: waited for by reading, never by sending.
        let unread = self.await_states(waits, false);
        self.schedule_retry(unread);
    }

    /// After a state refusal: the instances wait for a state their call
    /// accepts by reading it (the first read at once), not by writing again.
    /// Without state queries they are re-issued after a backoff, as any
    /// retryable refusal.
    pub(super) fn await_states(&mut self, list: Vec<(usize, Failure)>, after_write: bool) -> Vec<(usize, Failure)> {
        if self.provider.states().is_none() {
            return list.into_iter().map(|(m, f)| (m, f.retryable(true))).collect();
        }
        let now = Instant::now();
        for (m, f) in list {
            let inst = &mut self.insts[m];
            // The first read at once, unless the state asks for a wait.
            inst.release(f, now, self.run.state_wait);
            if inst.awaiting.is_none() {
                inst.awaiting = Some(Awaiting { since: now, reads: 0, status: None, after_write });
            }
        }
        Vec::new()
    }

    /// Reads the states of instances waiting for one: a state the call
    /// accepts sends it again (within the retry budget), a transitional one
    /// is read again after a backoff until the wait's bound (never past the
    /// deadline), any other fails with the state named.
    pub(super) async fn read_awaited(&mut self, members: &[usize]) {
        let views = self.views(members).await;
        let now = Instant::now();
        let mut finished = Vec::new();
        for &m in members {
            let view = views.as_ref().ok().and_then(|v| v.get(&self.insts[m].id));
            let Some(v) = view else {
                match &views {
                    // No such instance any more.
                    Ok(_) => {
                        let id = &self.insts[m].id;
                        let f = Failure::new(FailureKind::InstanceNotFound, format!("{id} no longer exists"));
                        self.finalize(m, InstanceOutcome::failed(f), &mut finished);
                    }
                    // The read failed: read again later, within the same bound.
                    Err(_) => self.keep_awaiting(m, None, now, &mut finished),
                }
                continue;
            };
            self.insts[m].marker = Some(v.latest_operation.clone());
            self.insts[m].kind = v.call_kind;
            let status = v.status.clone();
            let done = self.in_requested_state(v);
            match v.readiness.clone() {
                // Something else brought it to the requested state meanwhile: nothing to send.
                _ if done => self.finalize(m, InstanceOutcome::Unchanged, &mut finished),
                Readiness::Ready => {
                    let last = self.insts[m].last.clone().unwrap_or_else(|| {
                        Failure::new(FailureKind::InvalidState, "refused for the instance's state").retryable(true)
                    });
                    let after_write = self.insts[m].awaiting.as_ref().is_some_and(|a| a.after_write);
                    if !after_write || self.allows(m, &last) {
                        if after_write {
                            self.spend(&[(m, last)]);
                        }
                        let inst = &mut self.insts[m];
                        inst.awaiting = None;
                        inst.checked = true;
                        inst.not_before = now;
                    } else {
                        let message = format!("{}; now {status}, but the retry budget is spent", last.message);
                        let f = last.with_message(message).retryable(true);
                        self.finalize(m, InstanceOutcome::failed(f), &mut finished);
                    }
                }
                Readiness::Wait(w) => {
                    if let Some(awaiting) = self.insts[m].awaiting.as_mut() {
                        awaiting.status = Some(status);
                    }
                    self.keep_awaiting(m, w.retry_after, now, &mut finished);
                }
                Readiness::Refuse(f) => {
                    let message = format!("{} (instance is {status})", f.message);
                    let f = f.with_message(message);
                    self.finalize(m, InstanceOutcome::failed(f), &mut finished);
                }
            }
        }
        self.run.finished(&finished);
    }

    /// Schedules the next state read of a waiting instance, or fails it
    /// (`invalid_state`, retryable, with the last state seen) when the wait's
    /// bound or the deadline comes first.
    pub(super) fn keep_awaiting(
        &mut self,
        m: usize,
        hint: Option<Duration>,
        now: Instant,
        finished: &mut Vec<(InstanceId, bool)>,
    ) {
        let Some(awaiting) = self.insts[m].awaiting.as_mut() else { return };
        awaiting.reads += 1;
        let (since, reads) = (awaiting.since, awaiting.reads);
        let backoff = self.run.retry.delay(reads.min(8), None, &mut rand::rng());
        let waited = now.saturating_duration_since(since);
        let left = self.run.state_wait.saturating_sub(waited);
        // The last read comes at the bound itself.
        let delay = hint.map_or(backoff, |h| h.max(backoff / 2)).max(MIN_STATE_READ_GAP).min(left);
        if !left.is_zero() && self.run.halt(delay).is_none() {
            self.insts[m].not_before = now + delay;
            return;
        }
        let seen = self.insts[m].awaiting.as_ref().and_then(|a| a.status.clone());
        let last = self.insts[m].last.clone();
        let seen = seen.map_or("its state could not be read".to_string(), |s| format!("it was still {s}"));
        let message = format!(
            "{}; after waiting {waited:.0?} for a state that allows the call, {seen}",
            last.as_ref().map_or("refused for the instance's state", |f| f.message.as_str())
        );
        let f = Failure::new(FailureKind::InvalidState, message)
            .with_code_opt(last.as_ref().and_then(|f| f.code.clone()))
            .with_status_opt(last.as_ref().and_then(|f| f.http_status))
            .retryable(true);
        self.insts[m].awaiting = None;
        self.finalize(m, InstanceOutcome::failed(f), finished);
    }

    /// Whether a view shows the instance already in the run's requested
    /// state: holding the key pair for a bind, not holding it for an unbind.
    pub(super) fn in_requested_state(&self, view: &InstanceView) -> bool {
        let holds = holds(view, self.run.keypair);
        if self.run.operation == Operation::Bind { holds } else { !holds }
    }

    /// Confirms reported successes with a state query; a success the
    /// instance does not show becomes `unknown`.
    pub(super) async fn verify(&mut self, bound: &[usize], finished: &mut Vec<(InstanceId, bool)>) {
        let Ok(views) = self.views(bound).await else {
            tracing::warn!(instances = bound.len(), "could not verify bindings; keeping the reported results");
            for &m in bound {
                self.finalize(m, InstanceOutcome::Bound, finished);
            }
            return;
        };
        for &m in bound {
            let view = views.get(&self.insts[m].id);
            let holds = view.is_some_and(|v| holds(v, self.run.keypair));
            let confirmed = match self.run.operation {
                Operation::Bind => holds,
                Operation::Unbind => view.is_some() && !holds,
            };
            let outcome = if confirmed {
                InstanceOutcome::Bound
            } else {
                let seen = view.map_or("no such instance".to_string(), |v| {
                    format!("key pair {:?}", v.keypair_name.as_deref().or(v.keypair_id.as_deref()).unwrap_or("none"))
                });
                InstanceOutcome::unknown(Failure::new(
                    FailureKind::ProviderError,
                    format!("the cloud reported success, but a state query shows {seen}"),
                ))
            };
            self.finalize(m, outcome, finished);
        }
    }
}

/// Instance views by id, up to the provider's cap per query, or why a query failed.
async fn views(
    run: &RunState<'_>,
    provider: &dyn Provider,
    ids: Vec<InstanceId>,
) -> Result<IdMap<InstanceView>, Failure> {
    let states = provider.states().ok_or_else(|| Failure::new(FailureKind::ProviderError, "no state queries"))?;
    // Reads have their own budget: they run ahead of the writes, not in their slots.
    let Some(_slot) = run.read_slot().await else {
        return Err(Failure::new(FailureKind::Cancelled, "the run stopped"));
    };
    let queries = ids.chunks(states.max_per_query().max(1)).map(|part| async move {
        // A read refused for a passing reason (throttled, unavailable, lost) is asked again
        // within the retry policy's allowances: it costs the instances no write retry.
        let mut retries = ReadRetries::default();
        loop {
            let failure = match run.exchange(provider, Purpose::Read, &|| states.query(part)).await {
                Exchange::Answered(response) => match states.read(part, &response) {
                    Err(f) if f.retryable => f,
                    answer => return answer,
                },
                Exchange::NotSent(f) | Exchange::NoAnswer(f) => f,
                Exchange::Refused(f) => return Err(f),
                Exchange::Held(_) => return Err(Failure::new(FailureKind::Cancelled, "the run stopped")),
            };
            let Some(delay) = retries.after(&run.retry, &failure) else { return Err(failure) };
            if Instant::now() + delay >= run.hard_stop() {
                return Err(failure);
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = run.stopped() => return Err(failure),
            }
        }
    });
    let mut views = IdMap::with_capacity_and_hasher(ids.len(), Default::default());
    for answer in futures::future::join_all(queries).await {
        for view in answer? {
            views.insert(view.id.clone(), view);
        }
    }
    Ok(views)
}

/// Whether an instance holds the run's key pair.
fn holds(view: &InstanceView, keypair: Option<&KeyPairRef>) -> bool {
    match keypair {
        Some(KeyPairRef::Name(name)) => view.keypair_name.as_deref() == Some(name.as_str()),
        Some(KeyPairRef::Id(id)) => view.keypair_id.as_deref() == Some(id.as_str()),
        None => view.keypair_name.is_some() || view.keypair_id.is_some(),
    }
}
