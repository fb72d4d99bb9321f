//! One chunk of a run: the calls for its instances until each has an
//! outcome. Every per-instance rule of the engine lives here:
//! sticky ambiguity, fixed tokens, the window, retries and the halts.

use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::ids::{IdMap, IdSet, InstanceId, KeyPairRef};
use crate::journal::Prior;
use crate::kit::poll::{self, Followed, Group};
use crate::kit::provider::{Answer, Call, CallAnswer, CallKind, InstanceView, Profile, Provider, Readiness};
use crate::kit::run::{Exchange, Halt, Purpose, RunState};
use crate::kit::token::derive_token;
use crate::kit::window::Slot;
use crate::progress::ProgressEvent;
use crate::report::{Failure, FailureKind, InstanceOutcome, Operation};
use crate::retry::ReadRetries;

/// Reads of an ambiguous instance's key pair before it counts as not applied.
const STATE_READS: u32 = 3;
/// Least wait between those reads: a read may lag the write.
const STATE_READ_GAP: Duration = Duration::from_millis(500);
/// Least wait between two reads of a state being waited for.
const MIN_STATE_READ_GAP: Duration = Duration::from_millis(200);
/// Most pages of a reconciliation listing.
const RECONCILE_PAGES: u32 = 10;

/// One instance of the chunk.
struct Inst {
    id: InstanceId,
    outcome: Option<InstanceOutcome>,
    /// Sticky: an attempt may have applied it. Cleared only by an answer about this instance.
    maybe: Option<Failure>,
    /// The last not-applied answer, for the report if it never goes through.
    last: Option<Failure>,
    /// Passed the state pre-check.
    checked: bool,
    not_before: Instant,
    /// Its task is being followed, or it waits in an open set.
    busy: bool,
    slot: Option<Slot>,
    /// Re-issues spent after other errors and after throttling.
    retries: u32,
    throttled: u32,
    /// Most instances of a call carrying it, halved each time a call is
    /// refused as a whole for an instance it does not name.
    cap: usize,
    /// The instance's latest operation when its state was last read: an
    /// ambiguous call started one exactly when this moved.
    marker: Option<Option<String>>,
    /// Refused for a transitional state: its state is read until it allows
    /// the call (waiting is reading, not writing).
    awaiting: Option<Awaiting>,
    /// The kind of call its last state read asked for.
    kind: CallKind,
}

/// An instance waiting, by reading, for a state its call accepts.
struct Awaiting {
    since: Instant,
    reads: u32,
    /// The last state a read showed.
    status: Option<String>,
    /// A write was refused for the state (the next one spends a retry); else only a read showed it.
    after_write: bool,
}

/// A call that may have been applied, to resend as it was (token providers).
struct OpenSet {
    ids: Vec<InstanceId>,
    token: String,
    /// Members still waiting for an answer about them.
    waiting: Vec<usize>,
    attempt: u32,
    not_before: Instant,
}

type Polled = (Group, Vec<(usize, InstanceOutcome)>);
type PollFuture<'r> = BoxFuture<'r, Polled>;

/// Awaits `work` while the chunk's task polls go on, keeping what they return.
async fn alongside<T>(
    polls: &mut FuturesUnordered<PollFuture<'_>>,
    polled: &mut Vec<Polled>,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            Some(done) = polls.next(), if !polls.is_empty() => polled.push(done),
        }
    }
}

pub(crate) struct ChunkRun<'r, 'a> {
    run: &'r RunState<'a>,
    provider: &'r dyn Provider,
    profile: &'r Profile,
    index: usize,
    insts: Vec<Inst>,
    open: Vec<OpenSet>,
    polls: FuturesUnordered<PollFuture<'r>>,
    /// Poll results that came in while the chunk was busy with something else.
    polled: Vec<Polled>,
    generation: u32,
    /// Settling what an earlier run left in flight.
    resumed: bool,
    /// Extra calls left for isolating instances a call was refused for.
    splits_left: usize,
}

/// What woke an idle chunk.
enum Wake {
    Polled((Group, Vec<(usize, InstanceOutcome)>)),
    Slots(Vec<Slot>),
    Timer,
}

impl<'r, 'a> ChunkRun<'r, 'a> {
    pub fn new(run: &'r RunState<'a>, provider: &'r dyn Provider, index: usize, ids: &[InstanceId]) -> Self {
        let now = Instant::now();
        let insts = ids
            .iter()
            .map(|id| Inst {
                id: id.clone(),
                outcome: None,
                maybe: None,
                last: None,
                checked: false,
                not_before: now,
                busy: false,
                slot: None,
                retries: 0,
                throttled: 0,
                cap: usize::MAX,
                marker: None,
                awaiting: None,
                kind: CallKind::SAME,
            })
            .collect();
        let splits_left = 2 * ids.len();
        Self {
            run,
            provider,
            profile: provider.profile(),
            index,
            insts,
            open: Vec::new(),
            polls: FuturesUnordered::new(),
            polled: Vec::new(),
            generation: 0,
            resumed: false,
            splits_left,
        }
    }

    pub async fn run(mut self) -> Vec<(InstanceId, InstanceOutcome)> {
        self.resume().await;
        loop {
            // Every turn gives the runtime a chance to run timers and I/O,
            // even when each step below happens to be ready at once.
            tokio::task::coop::consume_budget().await;
            for done in std::mem::take(&mut self.polled) {
                self.absorb(done);
            }
            if self.run.past_hard_stop() {
                break;
            }
            if let Some(halt) = self.run.halt(Duration::ZERO) {
                self.settle_halted(&halt);
                if self.polls.is_empty() {
                    break;
                }
                tokio::select! {
                    Some(polled) = self.polls.next() => self.absorb(polled),
                    // Past the grace (or abandoned): what is still followed is settled by `finish`.
                    () = self.run.stopped() => break,
                }
                continue;
            }
            let now = Instant::now();
            if let Some(pos) = self.open.iter().position(|s| s.not_before <= now) {
                let set = self.open.swap_remove(pos);
                self.resend(set).await;
                continue;
            }
            let ready: Vec<usize> = (0..self.insts.len())
                .filter(|&m| {
                    let i = &self.insts[m];
                    i.outcome.is_none() && !i.busy && i.maybe.is_none() && i.not_before <= now
                })
                .collect();
            if !ready.is_empty() {
                let awaiting: Vec<usize> =
                    ready.iter().copied().filter(|&m| self.insts[m].awaiting.is_some()).collect();
                if !awaiting.is_empty() {
                    self.read_awaited(&awaiting).await;
                    continue;
                }
                let unchecked: Vec<usize> = ready.iter().copied().filter(|&m| !self.insts[m].checked).collect();
                let converge = self.profile.converge && !self.run.force;
                let check = self.profile.precheck_states || converge;
                if check && self.provider.states().is_some() && !unchecked.is_empty() {
                    self.precheck(&unchecked).await;
                } else {
                    self.submit(ready).await;
                }
                continue;
            }
            let wake_at = self
                .insts
                .iter()
                .filter(|i| i.outcome.is_none() && !i.busy && i.maybe.is_none())
                .map(|i| i.not_before)
                .chain(self.open.iter().map(|s| s.not_before))
                .min();
            if wake_at.is_none() && self.polls.is_empty() {
                break;
            }
            let wake = tokio::select! {
                Some(polled) = self.polls.next(), if !self.polls.is_empty() => Wake::Polled(polled),
                () = sleep_until_opt(wake_at) => Wake::Timer,
                () = self.run.halted() => Wake::Timer,
            };
            if let Wake::Polled(polled) = wake {
                self.absorb(polled);
            }
        }
        self.finish()
    }

    /// Takes up what a journal says an earlier run left: succeeded instances
    /// are reported as they were, calls that may have been applied are settled
    /// first (resent under their token, their tasks followed, or reconciled).
    async fn resume(&mut self) {
        let Some(journal) = self.run.journal.clone() else { return };
        let mut finished = Vec::new();
        let mut tasks = Vec::new();
        let mut reconcile = Vec::new();
        for m in 0..self.insts.len() {
            let id = self.insts[m].id.clone();
            let in_flight = || Failure::new(FailureKind::Transport, "in flight when an earlier run stopped");
            match journal.prior(&id) {
                None => {}
                Some(Prior::Succeeded { changed }) => {
                    let outcome = if *changed { InstanceOutcome::Bound } else { InstanceOutcome::Unchanged };
                    let inst = &mut self.insts[m];
                    finished.push((id, true));
                    inst.outcome = Some(outcome);
                }
                Some(Prior::InFlight { task: Some(task), .. }) => {
                    self.insts[m].busy = true;
                    tasks.push(self.followed(m, task.clone()));
                }
                Some(Prior::InFlight { instances, token: Some(token), .. }) => {
                    let inst = &mut self.insts[m];
                    inst.maybe = Some(in_flight());
                    inst.busy = true;
                    match self.open.iter_mut().find(|s| &s.token == token) {
                        Some(set) => set.waiting.push(m),
                        None => self.open.push(OpenSet {
                            ids: instances.clone(),
                            token: token.clone(),
                            waiting: vec![m],
                            attempt: 2,
                            not_before: Instant::now(),
                        }),
                    }
                }
                Some(Prior::InFlight { .. }) => {
                    self.insts[m].maybe = Some(in_flight());
                    reconcile.push((m, in_flight()));
                }
            }
        }
        self.run.finished(&finished);
        if !tasks.is_empty() {
            self.follow(Group::new(tasks, Instant::now()));
        }
        if !reconcile.is_empty() {
            self.resumed = true;
            self.ambiguous(reconcile, &[], None, 1).await;
            self.resumed = false;
        }
    }

    /// The chunk's outcomes, in its input order, once the run stopped or all are settled.
    fn finish(mut self) -> Vec<(InstanceId, InstanceOutcome)> {
        let halt = self.run.halt(Duration::ZERO).unwrap_or(Halt::Deadline);
        self.settle_halted(&halt);
        let mut finished = Vec::new();
        for inst in &mut self.insts {
            if inst.outcome.is_none() {
                let failure = inst.maybe.clone().unwrap_or_else(|| {
                    Failure::new(FailureKind::Timeout, "the run stopped before this instance's task ended")
                });
                inst.outcome = Some(InstanceOutcome::unknown(failure));
                finished.push((inst.id.clone(), false));
            }
        }
        self.run.finished(&finished);
        // A fresh vector of the outcomes' size: `collect` would reuse the
        // (much larger) buffer of the chunk's state, and every finished chunk
        // would keep it until the report is assembled.
        let mut outcomes = Vec::with_capacity(self.insts.len());
        outcomes.extend(self.insts.into_iter().map(|i| (i.id, i.outcome.unwrap_or_else(unreachable_outcome))));
        outcomes
    }

    /// Settles every instance the run will no longer send.
    fn settle_halted(&mut self, halt: &Halt) {
        let mut finished = Vec::new();
        for set in std::mem::take(&mut self.open) {
            for m in set.waiting {
                self.insts[m].busy = false;
            }
        }
        for m in 0..self.insts.len() {
            let inst = &self.insts[m];
            if inst.outcome.is_some() || inst.busy {
                continue;
            }
            let outcome = match &inst.maybe {
                Some(f) => InstanceOutcome::unknown(f.clone()),
                None => InstanceOutcome::failed(self.run.halt_failure(halt, inst.last.as_ref())),
            };
            self.finalize(m, outcome, &mut finished);
        }
        self.run.finished(&finished);
    }

    fn finalize(&mut self, m: usize, outcome: InstanceOutcome, finished: &mut Vec<(InstanceId, bool)>) {
        let inst = &mut self.insts[m];
        if inst.outcome.is_some() {
            return;
        }
        finished.push((inst.id.clone(), outcome.is_bound()));
        if let Some(journal) = &self.run.journal
            && let Err(e) = journal.outcome(&inst.id, &outcome)
        {
            tracing::warn!(error = %e, "could not record an outcome in the journal");
        }
        inst.outcome = Some(outcome);
        inst.busy = false;
        inst.slot = None;
    }

    fn absorb(&mut self, (group, outcomes): (Group, Vec<(usize, InstanceOutcome)>)) {
        let mut finished = Vec::new();
        for (m, outcome) in outcomes {
            self.finalize(m, outcome, &mut finished);
        }
        self.run.finished(&finished);
        if !group.tasks.is_empty() {
            self.follow(group);
        }
    }

    fn follow(&mut self, group: Group) {
        let Some(tasks) = self.provider.tasks() else {
            // A provider that starts tasks without a way to follow them: their outcome is unknown.
            let mut finished = Vec::new();
            for t in group.tasks {
                let f = Failure::new(FailureKind::ProviderError, format!("task {} cannot be followed", t.task));
                self.finalize(t.member, InstanceOutcome::unknown(f), &mut finished);
            }
            self.run.finished(&finished);
            return;
        };
        let (run, provider) = (self.run, self.provider);
        self.polls.push(Box::pin(poll::follow(run, provider, tasks, group)));
    }

    /// A task of member `m` to follow, with the operation its state showed before.
    fn followed(&self, m: usize, task: String) -> Followed {
        let inst = &self.insts[m];
        Followed { member: m, id: inst.id.clone(), task, before: inst.marker.clone().flatten() }
    }

    fn record_task(&self, task: &Followed) {
        if let Some(journal) = &self.run.journal
            && let Err(e) = journal.task(&task.id, &task.task)
        {
            tracing::warn!(error = %e, "could not record a task in the journal");
        }
    }

    /// Tasks an answer proved started: no longer ambiguous, recorded, followed.
    fn adopt(&mut self, tasks: Vec<Followed>) {
        if tasks.is_empty() {
            return;
        }
        for t in &tasks {
            self.record_task(t);
            let inst = &mut self.insts[t.member];
            inst.busy = true;
            inst.maybe = None;
        }
        self.follow(Group::new(tasks, Instant::now()));
    }

    fn new_token(&mut self, ids: &[InstanceId]) -> Option<String> {
        if !self.profile.idempotency_tokens {
            return None;
        }
        let token = match &self.run.client_token {
            Some(base) => derive_token(base, self.run.operation, self.run.keypair, ids, self.generation),
            None => uuid::Uuid::new_v4().to_string(),
        };
        self.generation += 1;
        Some(token)
    }

    /// Sends a new call for instances nothing of which may have been applied.
    async fn submit(&mut self, mut members: Vec<usize>) {
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
    async fn resend(&mut self, set: OpenSet) {
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

    async fn call(&mut self, ids: &[InstanceId], token: Option<&str>, attempt: u32, kind: CallKind) -> CallOutcome {
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
    async fn apply(
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

    /// Instances refused only because of another in their call: back to the
    /// queue at once, without spending a retry.
    fn requeue(&mut self, list: Vec<(usize, Failure)>) {
        let now = Instant::now();
        for (m, f) in list {
            let inst = &mut self.insts[m];
            // The first read at once, unless the state asks for a wait (never past the wait's bound).
            inst.not_before = now + f.retry_after.unwrap_or_default().min(self.run.state_wait);
            inst.last = Some(f);
            inst.slot = None;
        }
    }

    /// A call refused as a whole for an instance it does not name: its
    /// instances go again in calls half the size; alone, the refusal is theirs.
    fn split(&mut self, list: Vec<(usize, Failure)>, finished: &mut Vec<(InstanceId, bool)>) {
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
    fn schedule_retry(&mut self, retry: Vec<(usize, Failure)>) {
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
    fn reopen(&mut self, retry: Vec<(usize, Failure)>, ids: &[InstanceId], token: String, attempt: u32) {
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
    fn open_again(
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
    fn allows(&self, m: usize, failure: &Failure) -> bool {
        let (policy, inst) = (&self.run.retry, &self.insts[m]);
        if failure.kind == FailureKind::Throttled {
            inst.throttled < policy.max_throttled_retries
        } else {
            inst.retries < policy.max_retries
        }
    }

    fn budget_allows(&self, list: &[(usize, Failure)]) -> bool {
        list.iter().all(|(m, f)| self.allows(*m, f))
    }

    /// Re-issues the members have had, for the backoff.
    fn round(&self, members: &[usize]) -> u32 {
        members.iter().map(|&m| self.insts[m].retries + self.insts[m].throttled).max().unwrap_or(0)
    }

    /// The backoff before re-issuing `members`, honouring the longest wait asked for.
    fn delay(&self, members: &[usize], failures: &[(usize, Failure)]) -> Duration {
        let wait = failures.iter().filter_map(|(_, f)| f.retry_after).max();
        self.run.retry.delay(self.round(members), wait, &mut rand::rng())
    }

    fn spend(&mut self, list: &[(usize, Failure)]) {
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

    /// Instances that may have been applied: resend the same call with the
    /// same token, or reconcile, or report them unknown.
    async fn ambiguous(
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
    async fn reconcile(&mut self, list: Vec<(usize, Failure)>) {
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
    async fn settle_by_state(&mut self, list: Vec<(usize, Failure)>) {
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
    async fn settle_idle(&mut self, idle: Vec<(usize, Failure)>) {
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

    /// Waits `delay` while the tasks being polled go on; true when the run
    /// stopped meanwhile.
    async fn pause(&mut self, delay: Duration) -> bool {
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
    async fn views(&mut self, members: &[usize]) -> Result<IdMap<InstanceView>, Failure> {
        let ids: Vec<InstanceId> = members.iter().map(|&m| self.insts[m].id.clone()).collect();
        let (run, provider) = (self.run, self.provider);
        alongside(&mut self.polls, &mut self.polled, views(run, provider, ids)).await
    }

    /// Reads states before the first send: instances already in the
    /// requested state end unchanged; with the pre-check, refused instances
    /// fail unsent, changing ones wait; the rest go.
    async fn precheck(&mut self, members: &[usize]) {
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
            Err(_) => {
                tracing::warn!(instances = members.len(), "state read failed; sending without it");
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
    fn await_states(&mut self, list: Vec<(usize, Failure)>, after_write: bool) -> Vec<(usize, Failure)> {
        if self.provider.states().is_none() {
            return list.into_iter().map(|(m, f)| (m, f.retryable(true))).collect();
        }
        let now = Instant::now();
        for (m, f) in list {
            let inst = &mut self.insts[m];
            // The first read at once, unless the state asks for a wait (never past the wait's bound).
            inst.not_before = now + f.retry_after.unwrap_or_default().min(self.run.state_wait);
            inst.last = Some(f);
            // Not in operation while it waits: its window slot goes back.
            inst.slot = None;
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
    async fn read_awaited(&mut self, members: &[usize]) {
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
    fn keep_awaiting(
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
    fn in_requested_state(&self, view: &InstanceView) -> bool {
        let holds = holds(view, self.run.keypair);
        if self.run.operation == Operation::Bind { holds } else { !holds }
    }

    /// Confirms reported successes with a state query; a success the
    /// instance does not show becomes `unknown`.
    async fn verify(&mut self, bound: &[usize], finished: &mut Vec<(InstanceId, bool)>) {
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

/// A call's result from the chunk's side.
enum CallOutcome {
    Answer(CallAnswer),
    /// Not sent: the run halted first.
    Held,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn unreachable_outcome() -> InstanceOutcome {
    InstanceOutcome::unknown(Failure::new(FailureKind::ProviderError, "no outcome was recorded for this instance"))
}
