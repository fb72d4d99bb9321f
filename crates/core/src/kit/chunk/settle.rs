//! Settling calls whose answer was lost or left instances out: same-token
//! resends, reconciliation listings, and reads of state.

use super::*;

impl ChunkRun<'_, '_> {
    /// Instances that may have been applied: resend the same call with the
    /// same token, or reconcile, or report them unknown.
    pub(super) async fn ambiguous(
        &mut self,
        list: Vec<(usize, Failure)>,
        ids: &[InstanceId],
        token: Option<String>,
        attempt: u32,
    ) {
        for (m, f) in &list {
            self.insts[*m].maybe = Some(f.clone());
        }
        let mut finished = Vec::new();
        if let Some(token) = token {
            if let Err((list, _)) = self.open_again(list, ids, token, attempt) {
                for (m, f) in list {
                    self.finalize(m, InstanceOutcome::unknown(f), &mut finished);
                }
            }
        } else if self.provider.reconciler().is_some() {
            self.reconcile(list).await;
        } else if self.profile.converge && self.provider.states().is_some() {
            self.settle_by_state(list).await;
        } else {
            for (m, f) in list {
                self.finalize(m, InstanceOutcome::unknown(f), &mut finished);
            }
        }
        self.run.finished(&finished);
    }

    /// Looks for running tasks of this key pair and operation: found ones are
    /// followed; the rest end unknown (never re-sent blindly).
    pub(super) async fn reconcile(&mut self, list: Vec<(usize, Failure)>) {
        let Some(reconciler) = self.provider.reconciler() else { return };
        let ids: Vec<InstanceId> = list.iter().map(|(m, _)| self.insts[*m].id.clone()).collect();
        let mut found: IdMap<String> = IdMap::default();
        let mut complete = false;
        'pages: for page in 0..RECONCILE_PAGES {
            let mut retries = ReadRetries::default();
            loop {
                let (run, provider) = (self.run, self.provider);
                let exchange = alongside(
                    &mut self.polls,
                    &mut self.polled,
                    run.exchange(provider, Purpose::Read, &|| reconciler.query(page)),
                )
                .await;
                let failure = match exchange {
                    Exchange::Answered(response) => match reconciler.read(&ids, &response) {
                        Ok((answers, more)) => {
                            for (id, answer) in answers {
                                if let Answer::Task(task) = answer {
                                    found.entry(id).or_insert(task);
                                }
                            }
                            if !more {
                                complete = true;
                                break 'pages;
                            }
                            continue 'pages;
                        }
                        Err(f) if f.retryable => f,
                        Err(_) => break 'pages,
                    },
                    Exchange::NotSent(f) | Exchange::NoAnswer(f) => f,
                    Exchange::Refused(_) | Exchange::Held(_) => break 'pages,
                };
                // The listing is a read: asked again within the retry policy's allowances.
                let Some(delay) = retries.after(&self.run.retry, &failure) else { break 'pages };
                if Instant::now() + delay >= self.run.hard_stop() {
                    break 'pages;
                }
                if self.pause(delay).await {
                    break 'pages;
                }
            }
        }
        let mut finished = Vec::new();
        let mut tasks = Vec::new();
        let mut idle = Vec::new();
        for (m, cause) in list {
            let id = self.insts[m].id.clone();
            match found.remove(&id) {
                Some(task) => tasks.push(self.followed(m, task)),
                None if complete => idle.push((m, cause)),
                None => {
                    let checked = if complete {
                        "no running task of this key pair and operation was found for it"
                    } else {
                        "running tasks could not be listed"
                    };
                    let failure = Failure {
                        message: format!("{}; {checked}, so it may or may not have been applied", cause.message),
                        ..cause
                    };
                    // Nothing running (known idle) frees its slot; an unclear state keeps it for the run.
                    if !complete && let Some(slot) = self.insts[m].slot.take() {
                        self.run.park(slot);
                    }
                    self.finalize(m, InstanceOutcome::unknown(failure), &mut finished);
                }
            }
        }
        self.run.finished(&finished);
        if !tasks.is_empty() {
            for t in &tasks {
                self.record_task(t);
                self.insts[t.member].busy = true;
            }
            self.follow(Group::new(tasks, Instant::now()));
        }
        if !idle.is_empty() {
            self.settle_idle(idle).await;
        }
    }

    /// A call without a token that may have been applied, on a cloud that
    /// applies at once: the instances' key pair says whether it was. Read a
    /// few times (the read may lag the write; a refused read is tried again);
    /// what holds the key pair is bound, what still does not is proven not
    /// applied and re-issued, what cannot be read stays unknown.
    pub(super) async fn settle_by_state(&mut self, list: Vec<(usize, Failure)>) {
        let mut left = list;
        let mut reads = 0;
        // Instances some read showed (not holding the key pair): only those are proven not applied.
        let mut seen: IdSet = IdSet::default();
        // Reads spread over the cloud's grace: the last one comes after it.
        let gap = STATE_READ_GAP.max(self.profile.settle_grace / (STATE_READS - 1));
        // A read refused (throttled, dropped) is tried again: only reads that answered count.
        for round in 0..STATE_READS * 3 {
            if reads == STATE_READS {
                break;
            }
            if round > 0 {
                let delay = self.run.retry.delay(round.min(STATE_READS), None, &mut rand::rng()).max(gap);
                if self.pause(delay).await {
                    break;
                }
            }
            let members: Vec<usize> = left.iter().map(|(m, _)| *m).collect();
            let Ok(views) = self.views(&members).await else { continue };
            reads += 1;
            let mut finished = Vec::new();
            let mut still = Vec::new();
            let mut started = Vec::new();
            for (m, cause) in left {
                let view = views.get(&self.insts[m].id);
                if let Some(v) = view {
                    seen.insert(self.insts[m].id.clone());
                    self.insts[m].kind = v.call_kind;
                }
                let applied = view.map(|v| self.in_requested_state(v));
                // An operation started since the state was read before sending: ours, to follow.
                let moved = match (view.and_then(|v| v.latest_operation.as_ref()), &self.insts[m].marker) {
                    (Some(now), Some(before)) => before.as_ref() != Some(now),
                    _ => false,
                };
                match (applied, view) {
                    (Some(true), _) => self.finalize(m, InstanceOutcome::Bound, &mut finished),
                    (_, Some(v)) if moved => {
                        let task = v.latest_operation.clone().unwrap_or_default();
                        started.push(self.followed(m, task));
                    }
                    _ => still.push((m, cause)),
                }
            }
            self.run.finished(&finished);
            self.adopt(started);
            left = still;
            if left.is_empty() {
                return;
            }
        }
        // Never shown by a read that answered: nothing proves it either way.
        let (unseen, left): (Vec<_>, Vec<_>) = left.into_iter().partition(|(m, _)| !seen.contains(&self.insts[*m].id));
        let mut finished = Vec::new();
        for (m, f) in unseen {
            let message = format!("{}; its state could not be read, so it may or may not have been applied", f.message);
            self.finalize(m, InstanceOutcome::unknown(f.with_message(message)), &mut finished);
        }
        self.run.finished(&finished);
        if !left.is_empty() {
            // Read again and again without the key pair: the call did not apply to them.
            for (m, _) in &left {
                self.insts[*m].maybe = None;
            }
            let retry = left
                .into_iter()
                .map(|(m, f)| {
                    (
                        m,
                        f.with_message("the call's outcome was not seen, and the instance does not hold the key pair")
                            .retryable(true),
                    )
                })
                .collect();
            self.schedule_retry(retry);
        }
    }

    /// Instances whose call may have been applied and that run nothing now:
    /// their key pair says whether it was. Held `unknown` when it cannot be
    /// read, or when it was not applied in this run (the task may have failed
    /// or still be on its way); sent again when an earlier run left them.
    pub(super) async fn settle_idle(&mut self, idle: Vec<(usize, Failure)>) {
        let members: Vec<usize> = idle.iter().map(|(m, _)| *m).collect();
        let views = if self.profile.converge { self.views(&members).await.ok() } else { None };
        let mut finished = Vec::new();
        for (m, cause) in idle {
            let view = views.as_ref().and_then(|v| v.get(&self.insts[m].id));
            let applied = view.map(|v| self.in_requested_state(v));
            match applied {
                Some(true) => self.finalize(m, InstanceOutcome::Bound, &mut finished),
                Some(false) if self.resumed => {
                    let inst = &mut self.insts[m];
                    inst.maybe = None;
                    inst.slot = None;
                }
                _ => {
                    let failure = Failure {
                        message: format!(
                            "{}; no running task of this key pair and operation was found for it, so it may or may not have been applied",
                            cause.message
                        ),
                        ..cause
                    };
                    self.finalize(m, InstanceOutcome::unknown(failure), &mut finished);
                }
            }
        }
        self.run.finished(&finished);
    }
}
