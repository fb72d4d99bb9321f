//! One run's shared state and its one send path: the gate, the abort and
//! cancellation checks, the write and read budgets, a fresh authorisation
//! per attempt, call counting, and the deadline. The engine builds it; each
//! chunk and task poll holds a reference to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use governor::DefaultDirectRateLimiter;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::http::{HttpResponse, TransportError};
use crate::ids::{InstanceId, KeyPairRef};
use crate::journal::Journal;
use crate::kit::credentials::Credentials;
use crate::kit::gate::Gate;
use crate::kit::net::Net;
use crate::kit::outgoing::OutgoingRequest;
use crate::kit::polling::Estimator;
use crate::kit::provider::{CredentialProblem, Provider};
use crate::kit::transport::Transport;
use crate::kit::window::{Slot, Window};
use crate::progress::{ProgressEvent, ProgressObserver};
use crate::report::{BindReport, Failure, FailureKind, InstanceOutcome, Operation};
use crate::retry::RetryPolicy;

/// The cloud's documented per-action call rates, kept on the client side.
#[derive(Debug)]
pub(crate) struct Pacing {
    pub(crate) submit: DefaultDirectRateLimiter,
    pub(crate) read: DefaultDirectRateLimiter,
}

/// Shared state of one run.
pub(crate) struct RunState<'a> {
    pub(crate) provider: &'static str,
    pub(crate) transport: &'a dyn Transport,
    /// The binder's credentials, asked before each signature.
    pub(crate) credentials: &'a Credentials,
    /// Their source had none to give.
    pub(crate) no_credentials: OnceLock<()>,
    pub(crate) window: Option<&'a Window>,
    pub(crate) limiter: Option<&'a DefaultDirectRateLimiter>,
    pub(crate) pacing: Option<&'a Pacing>,
    pub(crate) deadline: Instant,
    pub(crate) cancel: CancellationToken,
    pub(crate) abandon: CancellationToken,
    pub(crate) cancelled_at: OnceLock<Instant>,
    pub(crate) abandoned_at: OnceLock<Instant>,
    pub(crate) grace: Duration,
    pub(crate) gate: Gate,
    pub(crate) abort: Mutex<Option<Failure>>,
    pub(crate) api_calls: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) latency_nanos: AtomicU64,
    pub(crate) observer: Option<Arc<dyn ProgressObserver>>,
    pub(crate) estimator: Mutex<Estimator>,
    /// Window slots of instances that may still be in operation: held until the run ends.
    pub(crate) parked: Mutex<Vec<Slot>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) operation: Operation,
    pub(crate) keypair: Option<&'a KeyPairRef>,
    pub(crate) client_token: Option<String>,
    /// Send every instance, without reading whether it is already done.
    pub(crate) force: bool,
    /// How long an instance in a transitional state is waited for by reading.
    pub(crate) state_wait: Duration,
    /// Where each step is recorded before it goes on, and what an earlier run left.
    pub(crate) journal: Option<Arc<Journal>>,
    pub(crate) total: usize,
    /// Writes in flight: `concurrency` bounds these.
    pub(crate) write_slots: tokio::sync::Semaphore,
    /// Chunks reading state at once, apart from the writes: the read of one
    /// chunk runs while another chunk's write is in flight.
    pub(crate) read_slots: tokio::sync::Semaphore,
}

/// Why a run sends nothing more.
#[derive(Clone, Debug)]
pub(crate) enum Halt {
    /// Credentials were refused.
    Aborted(Failure),
    /// The caller cancelled.
    Cancelled,
    /// The deadline leaves no time for another call.
    Deadline,
}

/// How one exchange went.
pub(crate) enum Exchange {
    /// An answer came (any status but a credential refusal).
    Answered(HttpResponse),
    /// Nothing was sent (connection refused, auth setup failed): safe to resend.
    NotSent(Failure),
    /// Sent, but no answer: it may have been applied.
    NoAnswer(Failure),
    /// Sent and refused for its credentials: nothing it carried was applied,
    /// and the run stops.
    Refused(Failure),
    /// Held back: the run stopped sending, or an earlier call's credentials were refused.
    Held(Halt),
}

/// Whether an exchange starts an operation or only reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Binds or unbinds: not sent once the run stops sending.
    Submit,
    /// A read (task, running list, states): goes on during a cancellation's grace.
    Read,
}

impl RunState<'_> {
    pub fn emit(&self, event: ProgressEvent) {
        if let Some(o) = &self.observer {
            o.on_event(&event);
        }
    }

    /// Keeps a window slot of an instance whose operation may still run.
    pub fn park(&self, slot: Slot) {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
    }

    pub fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Records instances that reached their outcome.
    pub fn finished(&self, outcomes: &[(InstanceId, bool)]) {
        if outcomes.is_empty() {
            return;
        }
        for (id, bound) in outcomes {
            self.emit(ProgressEvent::InstanceFinished { instance: id.clone(), bound: *bound });
        }
        let done = self.done.fetch_add(outcomes.len() as u64, Ordering::Relaxed) as usize + outcomes.len();
        self.emit(ProgressEvent::InstancesDone { done, total: self.total });
    }

    pub fn abort(&self, failure: &Failure) {
        self.abort.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| failure.clone());
        self.gate.wake_all();
    }

    pub fn aborted(&self) -> Option<Failure> {
        self.abort.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn cancelled_at(&self) -> Option<Instant> {
        if self.cancel.is_cancelled() {
            let mut first = false;
            let at = *self.cancelled_at.get_or_init(|| {
                first = true;
                Instant::now()
            });
            if first {
                self.emit(ProgressEvent::Stopping { reason: "cancelled".into() });
                tracing::info!(provider = self.provider, "run cancelled: sending nothing more");
            }
            Some(at)
        } else {
            None
        }
    }

    /// When the run was abandoned (first seen), if it was.
    fn abandoned_at(&self) -> Option<Instant> {
        self.abandon.is_cancelled().then(|| *self.abandoned_at.get_or_init(Instant::now))
    }

    /// When everything stops: the deadline, the end of a cancellation's
    /// grace, or the moment the run was abandoned (fixed once seen, so that
    /// every loop that compares the clock with it ends).
    pub fn hard_stop(&self) -> Instant {
        if let Some(at) = self.abandoned_at() {
            return at.min(self.deadline);
        }
        match self.cancelled_at() {
            Some(at) => (at + self.grace).min(self.deadline),
            None => self.deadline,
        }
    }

    /// Completes when the run must stop waiting for anything.
    pub async fn stopped(&self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.deadline) => {}
            () = self.abandon.cancelled() => {}
            () = async {
                self.cancel.cancelled().await;
                let at = self.cancelled_at().unwrap_or_else(Instant::now);
                tokio::time::sleep_until(at + self.grace).await;
            } => {}
        }
    }

    /// Completes when the run stops sending new operations.
    pub async fn halted(&self) {
        tokio::select! {
            () = self.stopped() => {}
            () = self.cancel.cancelled() => {}
        }
    }

    pub fn past_hard_stop(&self) -> bool {
        Instant::now() >= self.hard_stop()
    }

    /// Why nothing more may be submitted, if so; `wait` is time to pass before the send.
    pub fn halt(&self, wait: Duration) -> Option<Halt> {
        if let Some(f) = self.aborted() {
            return Some(Halt::Aborted(f));
        }
        if self.cancelled_at().is_some() || self.abandon.is_cancelled() {
            return Some(Halt::Cancelled);
        }
        let latency = Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed));
        (Instant::now() + wait + latency >= self.deadline).then_some(Halt::Deadline)
    }

    /// The failure of an instance never sent (or proven not applied) when the run halts.
    pub fn halt_failure(&self, halt: &Halt, last: Option<&Failure>) -> Failure {
        let after = last.map(|f| format!("; last answer: {f}")).unwrap_or_default();
        match halt {
            Halt::Aborted(f) => Failure::new(f.kind, format!("not sent: an earlier call failed: {}{after}", f.message))
                .with_code_opt(f.code.clone())
                .with_status_opt(f.http_status)
                .with_request_id(f.request_id.clone()),
            Halt::Cancelled => {
                Failure::new(FailureKind::Cancelled, format!("not sent: the run was cancelled{after}")).retryable(true)
            }
            Halt::Deadline => Failure::new(
                FailureKind::Timeout,
                format!("not sent: the run deadline left no time for another call{after}"),
            )
            .retryable(true),
        }
    }

    /// A read outside the chunks (setup, key pairs), asked again within the
    /// run's retry policy while it fails for a retryable reason; ended by the
    /// run's stop.
    pub(crate) async fn read_retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut retries = crate::retry::ReadRetries::default();
        loop {
            let failure = tokio::select! {
                result = attempt() => match result {
                    Err(f) if f.retryable && self.aborted().is_none() => f,
                    other => return other,
                },
                () = self.stopped() => return Err(self.stop_failure()),
            };
            let Some(delay) = retries.after(&self.retry, &failure) else { return Err(failure) };
            if self.halt(delay).is_some() {
                return Err(failure);
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.stopped() => return Err(failure),
            }
        }
    }

    pub(crate) fn stop_failure(&self) -> Failure {
        if self.cancel.is_cancelled() {
            Failure::new(FailureKind::Cancelled, "the run was cancelled").retryable(true)
        } else {
            Failure::new(FailureKind::Timeout, "the run deadline was reached").retryable(true)
        }
    }

    fn record_latency(&self, took: Duration) {
        let nanos = took.as_nanos().min(u64::MAX as u128) as u64;
        self.latency_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Sends one raw request within the hard stop, counting it.
    async fn transmit(&self, request: OutgoingRequest, purpose: Purpose) -> Result<HttpResponse, TransportError> {
        let paced = self.pacing.map(|p| match purpose {
            Purpose::Submit => &p.submit,
            Purpose::Read => &p.read,
        });
        for limiter in [paced, self.limiter].into_iter().flatten() {
            tokio::select! {
                () = limiter.until_ready() => {}
                () = self.stopped() => {}
            }
        }
        if self.past_hard_stop() {
            return Err(TransportError::NotSent("the run stopped before this call was sent".into()));
        }
        self.api_calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let sent = tokio::time::timeout_at(self.hard_stop(), self.transport.send(request, self.provider)).await;
        self.record_latency(started.elapsed());
        match sent {
            Ok(result) => result,
            Err(_) => Err(TransportError::MaybeSent("the run stopped while the call was in flight".into())),
        }
    }

    /// The one send path: gate, abort and cancellation checks, a fresh
    /// authorisation, the call, and the credential check of its answer.
    pub async fn exchange(
        &self,
        provider: &dyn Provider,
        purpose: Purpose,
        build: &(dyn Fn() -> Result<OutgoingRequest, Failure> + Sync),
    ) -> Exchange {
        let mut refreshed = false;
        loop {
            if let Some(halt) = self.held(purpose) {
                return Exchange::Held(halt);
            }
            let pass = tokio::select! {
                pass = self.gate.enter() => pass,
                () = self.stopped() => return Exchange::Held(Halt::Deadline),
            };
            if let Some(halt) = self.held(purpose) {
                return Exchange::Held(halt);
            }
            // A write takes one of the run's write slots for as long as it is in flight.
            let _slot = match purpose {
                Purpose::Submit => tokio::select! {
                    slot = self.write_slots.acquire() => slot.ok(),
                    () = self.stopped() => return Exchange::Held(Halt::Deadline),
                },
                Purpose::Read => None,
            };
            if let Some(halt) = self.held(purpose) {
                return Exchange::Held(halt);
            }
            let mut request = match build() {
                Ok(r) => r,
                Err(f) => return Exchange::NotSent(f),
            };
            // The credential to sign with: cached, or loaded now (one load for every caller).
            let source_net = SourceNet { run: self };
            let loaded = tokio::select! {
                loaded = self.credentials.current(&source_net) => loaded,
                () = self.stopped() => Err(self.stop_failure()),
            };
            if let Err(failure) = &loaded
                && !failure.retryable
            {
                // No credentials at all: nothing goes to the cloud.
                let _ = self.no_credentials.set(());
            }
            let authorized = loaded.and_then(|current| {
                provider.authorize(&mut request, &current.issued.credential, chrono::Utc::now()).map(|()| current)
            });
            let current = match authorized {
                Ok(current) => current,
                Err(failure) if matches!(failure.kind, FailureKind::Auth | FailureKind::Permission) => {
                    self.abort(&failure);
                    return Exchange::Held(Halt::Aborted(failure));
                }
                Err(failure) => return Exchange::NotSent(failure.retryable(true)),
            };
            let response = match self.transmit(request, purpose).await {
                Ok(r) => r,
                Err(e) if e.maybe_applied() => return Exchange::NoAnswer(e.to_failure()),
                Err(e) => return Exchange::NotSent(e.to_failure()),
            };
            match provider.credential_problem(&response) {
                None => {
                    pass.accepted();
                    return Exchange::Answered(response);
                }
                Some(CredentialProblem::Expired(failure)) => {
                    // Not a refusal: one fresh credential and one more try, when the source can give one.
                    if !refreshed && self.credentials.expire(&current).await {
                        tracing::debug!(provider = self.provider, "credentials expired; loading fresh ones once");
                        refreshed = true;
                        drop(pass);
                        continue;
                    }
                    self.abort(&failure);
                    return Exchange::Refused(failure);
                }
                Some(CredentialProblem::Refused(failure)) => {
                    self.abort(&failure);
                    return Exchange::Refused(failure);
                }
            }
        }
    }

    /// One of the run's read slots, for a chunk's state read; `None` once the run stops.
    pub async fn read_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::select! {
            slot = self.read_slots.acquire() => slot.ok(),
            () = self.stopped() => None,
        }
    }

    fn held(&self, purpose: Purpose) -> Option<Halt> {
        if let Some(f) = self.aborted() {
            return Some(Halt::Aborted(f));
        }
        match purpose {
            Purpose::Submit => self.halt(Duration::ZERO),
            Purpose::Read => self.past_hard_stop().then_some(Halt::Deadline),
        }
    }

    /// Turns a run where nothing could be applied for one shared reason into
    /// an `Error`, as the trait promises; otherwise returns the report.
    pub(crate) fn request_level_error(&self, report: BindReport) -> Result<BindReport, Error> {
        let provider = self.provider;
        let nothing_applied = report.outcomes.iter().all(|(_, o)| matches!(o, InstanceOutcome::Failed(_)));
        if !nothing_applied {
            return Ok(report);
        }
        if let Some(failure) = self.aborted().filter(|f| matches!(f.kind, FailureKind::Auth | FailureKind::Permission))
        {
            let failure = Box::new(failure);
            if self.no_credentials.get().is_some() {
                return Err(Error::NoCredentials { provider, failure });
            }
            return Err(match failure.kind {
                FailureKind::Permission => Error::PermissionDenied { provider, failure },
                _ => Error::Authentication { provider, failure },
            });
        }
        let unreachable =
            report.outcomes.iter().all(|(_, o)| o.failure().is_some_and(|f| f.kind == FailureKind::Transport));
        if unreachable && let Some(failure) = report.outcomes.first().and_then(|(_, o)| o.failure()) {
            return Err(Error::Unreachable { provider, failure: Box::new(failure.clone()) });
        }
        Ok(report)
    }
}

/// The engine's send path, lent to a provider's setup calls: authorised,
/// gated and checked like every other call.
pub(crate) struct RunNet<'a, 'b> {
    pub(crate) run: &'a RunState<'b>,
    pub(crate) provider: &'a dyn Provider,
}

#[async_trait]
impl Net for RunNet<'_, '_> {
    async fn send(&self, request: OutgoingRequest) -> Result<HttpResponse, Failure> {
        // Setup calls (key lookups, project ids) are reads as far as pacing goes.
        match self.run.exchange(self.provider, Purpose::Read, &|| Ok(request.clone())).await {
            Exchange::Answered(response) => Ok(response),
            Exchange::NotSent(f) | Exchange::NoAnswer(f) | Exchange::Refused(f) => Err(f),
            Exchange::Held(Halt::Aborted(f)) => Err(f),
            Exchange::Held(_) => Err(self.run.stop_failure()),
        }
    }
}

/// The send path as a credential source uses it: counted, paced and within
/// the hard stop, sent as it is (a source has no credential to sign with).
struct SourceNet<'a, 'b> {
    run: &'a RunState<'b>,
}

#[async_trait]
impl Net for SourceNet<'_, '_> {
    async fn send(&self, request: OutgoingRequest) -> Result<HttpResponse, Failure> {
        if let Some(f) = self.run.aborted() {
            return Err(f);
        }
        self.run.transmit(request, Purpose::Read).await.map_err(|e| e.to_failure())
    }
}
