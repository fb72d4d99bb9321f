//! Retries: backoff, the per-instance budgets, requeueing and halving calls.

use super::*;

impl ChunkRun<'_, '_> {
    /// Instances refused only because of another in their call: back to the
    /// queue at once, without spending a retry.
    pub(super) fn requeue(&mut self, list: Vec<(usize, Failure)>) {
        let now = Instant::now();
        for (m, f) in list {
            self.insts[m].release(f, now, self.run.state_wait);
        }
    }

    /// A call refused as a whole for an instance it does not name: its
    /// instances go again in calls half the size; alone, the refusal is theirs.
    pub(super) fn split(&mut self, list: Vec<(usize, Failure)>, finished: &mut Vec<(InstanceId, bool)>) {
        let size = list.len();
        if size <= 1 || self.splits_left < 2 {
            for (m, f) in list {
                let f = if size > 1 {
                    let message =
                        format!("{} (refused with other instances; the one at fault could not be isolated)", f.message);
                    f.with_message(message)
                } else {
                    f
                };
                self.finalize(m, InstanceOutcome::failed(f), finished);
            }
            return;
        }
        self.splits_left -= 2;
        let half = size.div_ceil(2);
        for (m, _) in &list {
            self.insts[*m].cap = half;
        }
        self.requeue(list);
    }

    /// Instances an answer did not settle but proved not applied: re-issue
    /// after a backoff, within the budget and the deadline.
    pub(super) fn schedule_retry(&mut self, retry: Vec<(usize, Failure)>) {
        if retry.is_empty() {
            return;
        }
        let mut finished = Vec::new();
        let (retry, spent): (Vec<_>, Vec<_>) = retry.into_iter().partition(|(m, f)| self.allows(*m, f));
        for (m, f) in spent {
            self.insts[m].maybe = None;
            self.finalize(m, InstanceOutcome::failed(f), &mut finished);
        }
        self.run.finished(&finished);
        finished.clear();
        if retry.is_empty() {
            return;
        }
        let members: Vec<usize> = retry.iter().map(|(m, _)| *m).collect();
        let delay = self.delay(&members, &retry);
        if let Some(halt) = self.run.halt(delay) {
            for (m, f) in retry {
                self.insts[m].maybe = None;
                let failure = self.run.halt_failure(&halt, Some(&f));
                self.finalize(m, InstanceOutcome::failed(failure), &mut finished);
            }
            self.run.finished(&finished);
            return;
        }
        self.spend(&retry);
        let reason = retry[0].1.to_string();
        let until = Instant::now() + delay;
        for (m, f) in &retry {
            let inst = &mut self.insts[*m];
            inst.maybe = None;
            inst.last = Some(f.clone());
            inst.not_before = until;
            inst.slot = None;
        }
        self.run.emit(ProgressEvent::RetryScheduled {
            chunk: self.index,
            instances: retry.len(),
            attempt: self.round(&members),
            delay,
            reason: reason.clone(),
        });
        tracing::debug!(chunk = self.index, ?delay, %reason, "retry scheduled");
    }

    /// A whole call refused without applying anything: resend it as it was.
    pub(super) fn reopen(&mut self, retry: Vec<(usize, Failure)>, ids: &[InstanceId], token: String, attempt: u32) {
        if let Err((retry, halt)) = self.open_again(retry, ids, token, attempt) {
            let mut finished = Vec::new();
            for (m, f) in retry {
                let f = match &halt {
                    Some(h) => self.run.halt_failure(h, Some(&f)),
                    None => f,
                };
                self.finalize(m, InstanceOutcome::failed(f), &mut finished);
            }
            self.run.finished(&finished);
        }
    }

    /// Schedules the same call, under the same token, for `list` after a
    /// backoff; gives the list back (with the halt, if that was why) when the
    /// budget or the deadline refuses.
    #[allow(clippy::type_complexity)]
    pub(super) fn open_again(
        &mut self,
        list: Vec<(usize, Failure)>,
        ids: &[InstanceId],
        token: String,
        attempt: u32,
    ) -> Result<(), (Vec<(usize, Failure)>, Option<Halt>)> {
        let waiting: Vec<usize> = list.iter().map(|(m, _)| *m).collect();
        let delay = self.delay(&waiting, &list);
        let halt = self.run.halt(delay);
        if !self.budget_allows(&list) || halt.is_some() {
            return Err((list, halt));
        }
        self.spend(&list);
        self.run.emit(ProgressEvent::RetryScheduled {
            chunk: self.index,
            instances: list.len(),
            attempt: self.round(&waiting),
            delay,
            reason: list[0].1.to_string(),
        });
        for (m, f) in list {
            let inst = &mut self.insts[m];
            inst.busy = true;
            if inst.maybe.is_none() {
                inst.last = Some(f);
            }
        }
        let not_before = Instant::now() + delay;
        self.open.push(OpenSet { ids: ids.to_vec(), token, waiting, attempt: attempt + 1, not_before });
        Ok(())
    }

    /// Whether an instance may be re-issued once more after `failure`;
    /// throttling has its own allowance.
    pub(super) fn allows(&self, m: usize, failure: &Failure) -> bool {
        let (policy, inst) = (&self.run.retry, &self.insts[m]);
        if failure.kind == FailureKind::Throttled {
            inst.throttled < policy.max_throttled_retries
        } else {
            inst.retries < policy.max_retries
        }
    }

    pub(super) fn budget_allows(&self, list: &[(usize, Failure)]) -> bool {
        list.iter().all(|(m, f)| self.allows(*m, f))
    }

    /// Re-issues the members have had, for the backoff.
    pub(super) fn round(&self, members: &[usize]) -> u32 {
        members.iter().map(|&m| self.insts[m].retries + self.insts[m].throttled).max().unwrap_or(0)
    }

    /// The backoff before re-issuing `members`, honouring the longest wait asked for.
    pub(super) fn delay(&self, members: &[usize], failures: &[(usize, Failure)]) -> Duration {
        let wait = failures.iter().filter_map(|(_, f)| f.retry_after).max();
        self.run.retry.delay(self.round(members), wait, &mut rand::rng())
    }

    pub(super) fn spend(&mut self, list: &[(usize, Failure)]) {
        for (m, f) in list {
            let inst = &mut self.insts[*m];
            if f.kind == FailureKind::Throttled {
                inst.throttled += 1;
            } else {
                inst.retries += 1;
            }
        }
        self.run.count_retry();
    }
}
