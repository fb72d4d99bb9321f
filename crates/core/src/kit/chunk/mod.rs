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

mod retry;
mod settle;
mod states;
mod submit;

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

impl Inst {
    /// Back to waiting and out of operation (its window slot goes back):
    /// taken up again at once, or after the wait `failure` asks for, never
    /// past `bound`.
    fn release(&mut self, failure: Failure, now: Instant, bound: Duration) {
        self.not_before = now + failure.retry_after.unwrap_or_default().min(bound);
        self.last = Some(failure);
        self.slot = None;
    }
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
