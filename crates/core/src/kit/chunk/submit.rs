//! Sending a chunk's calls and routing their answers per instance.

use super::*;

impl ChunkRun<'_, '_> {
    /// Sends a new call for instances nothing of which may have been applied.
    pub(super) async fn submit(&mut self, mut members: Vec<usize>) {
        // One call carries instances of one kind (Huawei: stopped VMs are reset one by one).
        let kind = self.insts[members[0]].kind;
        members.retain(|&m| self.insts[m].kind == kind);
        // Halves of a refused call go out apart, so the one at fault ends up alone.
        let cap = self.insts[members[0]].cap;
        members.retain(|&m| self.insts[m].cap == cap);
        members.truncate(self.provider.kind_cap(kind).min(cap).max(1));
        if let Some(window) = self.run.window {
            let need = members.len();
            let wake = tokio::select! {
                slots = window.acquire(need) => Wake::Slots(slots),
                Some(polled) = self.polls.next(), if !self.polls.is_empty() => Wake::Polled(polled),
                () = self.run.halted() => Wake::Timer,
            };
            match wake {
                Wake::Slots(slots) => {
                    members.truncate(slots.len());
                    for (&m, slot) in members.iter().zip(slots) {
                        self.insts[m].slot = Some(slot);
                    }
                }
                Wake::Polled(polled) => return self.absorb(polled),
                Wake::Timer => return,
            }
            if members.is_empty() {
                return;
            }
        }
        let ids: Vec<InstanceId> = members.iter().map(|&m| self.insts[m].id.clone()).collect();
        let token = self.new_token(&ids);
        let answer = self.call(&ids, token.as_deref(), 1, kind).await;
        self.apply(&members, &ids, token, 1, answer).await;
    }

    /// Resends a call that may have been applied, exactly as it was.
    pub(super) async fn resend(&mut self, set: OpenSet) {
        // A resend is the same call: its first member's kind is the call's.
        let kind = set.waiting.first().map_or(CallKind::SAME, |&m| self.insts[m].kind);
        let answer = self.call(&set.ids, Some(&set.token), set.attempt, kind).await;
        let waiting = set.waiting.clone();
        for &m in &waiting {
            self.insts[m].busy = false;
        }
        let members: Vec<usize> = waiting.into_iter().filter(|&m| self.insts[m].outcome.is_none()).collect();
        self.apply(&members, &set.ids, Some(set.token), set.attempt, answer).await;
    }

    pub(super) async fn call(
        &mut self,
        ids: &[InstanceId],
        token: Option<&str>,
        attempt: u32,
        kind: CallKind,
    ) -> CallOutcome {
        let call = Call::new(ids, token, attempt, self.run.retry.max_attempts()).of_kind(kind);
        if let Some(journal) = &self.run.journal
            && attempt == 1
            && let Err(e) = journal.call(ids, token)
        {
            // Without the record a crash could lose this call: send nothing more.
            self.run.abort(&Failure::new(FailureKind::ProviderError, e.to_string()));
            return CallOutcome::Held;
        }
        self.run.emit(ProgressEvent::ChunkStarted { chunk: self.index, instances: ids.len(), attempt: attempt - 1 });
        let provider = self.provider;
        let run = self.run;
        let exchange = alongside(
            &mut self.polls,
            &mut self.polled,
            run.exchange(provider, Purpose::Submit, &|| provider.build_call(&call)),
        )
        .await;
        match exchange {
            Exchange::Answered(response) => CallOutcome::Answer(provider.classify(&call, &response)),
            Exchange::NotSent(f) if f.retryable => CallOutcome::Answer(CallAnswer::All(Answer::Retry(f))),
            Exchange::NotSent(f) => CallOutcome::Answer(CallAnswer::All(Answer::Failed(f))),
            Exchange::NoAnswer(f) => CallOutcome::Answer(CallAnswer::All(Answer::Ambiguous(f))),
            Exchange::Refused(f) => CallOutcome::Answer(CallAnswer::All(Answer::Failed(f))),
            Exchange::Held(_) => CallOutcome::Held,
        }
    }

    /// Applies a call's answer to `members` (the instances it may speak for).
    pub(super) async fn apply(
        &mut self,
        members: &[usize],
        ids: &[InstanceId],
        token: Option<String>,
        attempt: u32,
        outcome: CallOutcome,
    ) {
        let CallOutcome::Answer(answer) = outcome else {
            // Held before sending: nothing changed; the loop settles them.
            for &m in members {
                if self.insts[m].maybe.is_none() {
                    self.insts[m].slot = None;
                }
            }
            return;
        };
        let (per_instance, answers): (bool, Vec<(usize, Answer)>) = match answer {
            CallAnswer::All(a) => (false, members.iter().map(|&m| (m, a.clone())).collect()),
            CallAnswer::Instances(list) => {
                let mut by_id: IdMap<Answer> = IdMap::with_capacity_and_hasher(list.len(), Default::default());
                for (id, a) in list {
                    by_id.entry(id).or_insert(a);
                }
                let answers = members
                    .iter()
                    .map(|&m| {
                        let a = by_id.remove(&self.insts[m].id).unwrap_or_else(|| {
                            Answer::Ambiguous(Failure::new(
                                FailureKind::ProviderError,
                                "the answer did not mention this instance; it may have been applied",
                            ))
                        });
                        (m, a)
                    })
                    .collect();
                (true, answers)
            }
        };
        let mut finished = Vec::new();
        let (mut bound, mut retry, mut tasks, mut ambiguous, mut check) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut resend, mut split, mut unsaid) = (Vec::new(), Vec::new(), Vec::new());
        // What a received answer did not settle for an instance (left out, or
        // said to be unknown) is read, not sent again: the same token would
        // only replay the same answer.
        let read_unsaid = per_instance && token.is_some() && self.provider.states().is_some();
        // A free resend is only for the innocent beside an instance at fault.
        let someone_failed = answers.iter().any(|(_, a)| matches!(a, Answer::Failed(_) | Answer::CheckState(_)));
        for (m, a) in answers {
            if self.insts[m].outcome.is_some() {
                continue;
            }
            // Sticky ambiguity: only an answer about this very instance clears it.
            let a = match (a, &self.insts[m].maybe, per_instance) {
                (Answer::Failed(f) | Answer::Retry(f) | Answer::CheckState(f), Some(_), false) => Answer::Ambiguous(f),
                (Answer::Resend(f) | Answer::Split(f), Some(_), _) => Answer::Ambiguous(f),
                (Answer::Resend(f), None, _) if !someone_failed => Answer::Retry(f),
                (a, _, _) => a,
            };
            match a {
                Answer::Bound => bound.push(m),
                Answer::Failed(f) => self.finalize(m, InstanceOutcome::failed(f), &mut finished),
                Answer::Retry(f) => retry.push((m, f)),
                Answer::CheckState(f) => check.push((m, f)),
                Answer::Task(task) => tasks.push(self.followed(m, task)),
                Answer::Ambiguous(f) if read_unsaid => unsaid.push((m, f)),
                Answer::Ambiguous(f) => ambiguous.push((m, f)),
                Answer::Resend(f) => resend.push((m, f)),
                Answer::Split(f) => split.push((m, f)),
            }
        }
        self.requeue(resend);
        self.split(split, &mut finished);
        let counts = (bound.len(), finished.len());
        if self.profile.verify_bindings && !bound.is_empty() {
            self.verify(&bound, &mut finished).await;
        } else {
            for m in bound {
                self.finalize(m, InstanceOutcome::Bound, &mut finished);
            }
        }
        self.run.finished(&finished);
        self.adopt(tasks);
        let unknown_before =
            self.insts.iter().filter(|i| matches!(i.outcome, Some(InstanceOutcome::Unknown(_)))).count();
        if !ambiguous.is_empty() {
            self.ambiguous(ambiguous, ids, token.clone(), attempt).await;
        }
        if !unsaid.is_empty() {
            for (m, f) in &unsaid {
                self.insts[*m].maybe = Some(f.clone());
            }
            self.settle_by_state(unsaid).await;
        }
        if !check.is_empty() {
            retry.extend(self.await_states(check, true));
        }
        let retrying = retry.len();
        match token {
            // The same call again, with the same token: one logical call across its retries.
            Some(token) if !per_instance && !retry.is_empty() => self.reopen(retry, ids, token, attempt),
            _ => self.schedule_retry(retry),
        }
        let unknown = self.insts.iter().filter(|i| matches!(i.outcome, Some(InstanceOutcome::Unknown(_)))).count();
        self.run.emit(ProgressEvent::ChunkFinished {
            chunk: self.index,
            bound: counts.0,
            failed: counts.1,
            unknown: unknown - unknown_before,
            retrying,
        });
    }
}

/// A call's result from the chunk's side.
pub(super) enum CallOutcome {
    Answer(CallAnswer),
    /// Not sent: the run halted first.
    Held,
}
