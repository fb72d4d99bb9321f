//! The engine: everything between a validated request and its report.
//!
//! It owns the one send path (fresh signature per attempt, call counting,
//! abort and cancellation checks right before each send, the credential
//! gate), chunking, bounded concurrency, the in-operation window, retries,
//! sticky ambiguity, idempotency tokens, task polling, the deadline and
//! cancellation. Providers supply pure parts through [`Provider`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use tokio::time::Instant;

use crate::binder::PostCondition;
use crate::error::Error;
use crate::ids::{InstanceId, KeyPairRef};
use crate::kit::chunk::ChunkRun;
use crate::kit::credentials::Credentials;
use crate::kit::gate::Gate;
use crate::kit::polling::Estimator;
use crate::kit::provider::Profile;
use crate::kit::provider::Provider;
use crate::kit::run::{Pacing, RunNet, RunState};
use crate::kit::transport::Transport;
use crate::kit::window::Window;
use crate::progress::ProgressEvent;
use crate::rate::RateLimit;
use crate::report::{BindReport, Failure, FailureKind, InstanceOutcome, Operation, RunStats};
use crate::request::{DEFAULT_DEADLINE, DEFAULT_GRACE, DEFAULT_STATE_WAIT, RequestCommon, RunOptions};
use governor::DefaultDirectRateLimiter;

/// What a run is about, for the report.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunSpec<'a> {
    /// Bind or unbind.
    pub operation: Operation,
    /// The key pair, if named.
    pub keypair: Option<&'a KeyPairRef>,
    /// Instances, credential, token base, options.
    pub common: &'a RequestCommon,
    /// Post-conditions to put in the report.
    pub post_conditions: Vec<PostCondition>,
}

impl<'a> RunSpec<'a> {
    /// A run of `operation` over the request's instances.
    pub fn new(operation: Operation, keypair: Option<&'a KeyPairRef>, common: &'a RequestCommon) -> Self {
        Self { operation, keypair, common, post_conditions: Vec::new() }
    }

    /// Sets the post-conditions of the report.
    pub fn post_conditions(mut self, post_conditions: Vec<PostCondition>) -> Self {
        self.post_conditions = post_conditions;
        self
    }
}

/// One binder's engine: its transport, its credentials and, where the cloud
/// has one, the in-operation window every run of the binder shares.
#[derive(Debug, Clone)]
pub struct Engine {
    transport: Arc<dyn Transport>,
    credentials: Arc<Credentials>,
    window: Option<Arc<Window>>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pacing: Option<Arc<Pacing>>,
}

impl Engine {
    /// An engine sending through `transport`, signing with `credentials`.
    pub fn new(transport: Arc<dyn Transport>, credentials: Credentials) -> Self {
        Self { transport, credentials: Arc::new(credentials), window: None, limiter: None, pacing: None }
    }

    /// Where this engine's credentials come from.
    pub fn credential_source(&self) -> &'static str {
        self.credentials.source_name()
    }

    /// Limits every call of every run of this binder to `rate`.
    pub fn with_rate_limit(mut self, rate: Option<RateLimit>) -> Self {
        self.limiter = rate.map(|r| r.limiter());
        self
    }

    /// Keeps calls within the cloud's own per-action limits: `submit` for
    /// binding calls, `read` for status and state queries (the caller's
    /// [`with_rate_limit`](Self::with_rate_limit) applies on top).
    pub fn with_pacing(mut self, submit: RateLimit, read: RateLimit) -> Self {
        self.pacing = Some(Arc::new(Pacing { submit: submit.spaced(), read: read.spaced() }));
        self
    }

    /// Limits instances in operation at once to `size`, across every run.
    pub fn with_window(mut self, size: usize) -> Self {
        self.window = Some(Arc::new(Window::new(size)));
        self
    }

    /// The state of one run (or of one key-pair import) of `profile`'s provider.
    pub(crate) fn state<'a>(
        &'a self,
        profile: &Profile,
        options: &RunOptions,
        operation: Operation,
        keypair: Option<&'a KeyPairRef>,
        common: Option<&RequestCommon>,
    ) -> RunState<'a> {
        let started = Instant::now();
        let concurrency = options.concurrency.unwrap_or(profile.default_concurrency).max(1);
        RunState {
            provider: profile.provider,
            transport: self.transport.as_ref(),
            credentials: &self.credentials,
            no_credentials: OnceLock::new(),
            window: self.window.as_deref(),
            limiter: self.limiter.as_deref(),
            pacing: self.pacing.as_deref(),
            deadline: started + options.deadline.unwrap_or(DEFAULT_DEADLINE),
            cancel: options.cancel.clone().unwrap_or_default(),
            abandon: options.abandon.clone().unwrap_or_default(),
            cancelled_at: OnceLock::new(),
            abandoned_at: OnceLock::new(),
            grace: options.grace.unwrap_or(DEFAULT_GRACE),
            gate: Gate::new(),
            abort: Mutex::new(None),
            api_calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            done: AtomicU64::new(0),
            latency_nanos: AtomicU64::new(0),
            observer: options.observer.clone(),
            estimator: Mutex::new(Estimator::default()),
            parked: Mutex::new(Vec::new()),
            retry: options.retry.clone().unwrap_or_else(|| profile.default_retry.clone()),
            operation,
            keypair,
            client_token: common.and_then(|c| c.client_token.clone()),
            force: options.force,
            state_wait: options.state_wait.unwrap_or(DEFAULT_STATE_WAIT),
            journal: options.journal.clone(),
            total: common.map_or(0, |c| c.targets.instances().len()),
            write_slots: tokio::sync::Semaphore::new(concurrency),
            read_slots: tokio::sync::Semaphore::new(concurrency),
        }
    }

    /// Runs the whole request: every distinct instance ends in the report once, in input order.
    pub async fn run(&self, provider: &dyn Provider, spec: RunSpec<'_>) -> Result<BindReport, Error> {
        let profile = provider.profile();
        let options = &spec.common.options;
        let started = Instant::now();
        let concurrency = options.concurrency.unwrap_or(profile.default_concurrency).max(1);
        let run = self.state(profile, options, spec.operation, spec.keypair, Some(spec.common));
        let instances = spec.common.targets.instances();
        run.emit(ProgressEvent::Started { total: instances.len() });

        let prepared = {
            // Setup calls go through the send path: the first of them proves the credentials.
            let net = RunNet { run: &run, provider };
            // Setup is a read: a retryable refusal (throttled, 5xx) is asked again within the policy.
            run.read_retrying(|| provider.prepare(&net)).await
        };
        let outcomes: Vec<(InstanceId, InstanceOutcome)> = match prepared {
            Err(failure) => {
                if matches!(failure.kind, FailureKind::Auth | FailureKind::Permission) {
                    run.abort(&failure);
                }
                // Refused credentials are the reason, whatever the setup call made of them.
                let failure = run.aborted().unwrap_or(failure);
                let failure = Failure::new(failure.kind, format!("not sent: {}", failure.message))
                    .with_code_opt(failure.code.clone())
                    .with_status_opt(failure.http_status)
                    .retryable(failure.retryable);
                instances.iter().map(|id| (id.clone(), InstanceOutcome::failed(failure.clone()))).collect()
            }
            Ok(replaced) => {
                let provider: &dyn Provider = replaced.as_deref().unwrap_or(provider);
                let cap = profile.max_per_call;
                let run_ref = &run;
                let count = instances.len().div_ceil(cap);
                let total = instances.len();
                // Chunks are built as they start, so only those in flight hold their state.
                let calls = (0..count).map(move |index| {
                    let ids = &instances[index * cap..((index + 1) * cap).min(total)];
                    let chunk = ChunkRun::new(run_ref, provider, index, ids);
                    async move { (index, chunk.run().await) }
                });
                let mut by_chunk: Vec<Vec<(InstanceId, InstanceOutcome)>> = vec![Vec::new(); count];
                // Twice as many chunks as writes in flight: while some write, the next ones read
                // their state (each budget is `concurrency`, held by the send path and the reads).
                let mut stream = futures::stream::iter(calls).buffer_unordered(concurrency.saturating_mul(2));
                while let Some((index, outcomes)) = stream.next().await {
                    by_chunk[index] = outcomes;
                }
                drop(stream);
                // Moved chunk by chunk into a vector of the final size: no second copy of the fleet.
                let mut outcomes = Vec::with_capacity(total);
                for chunk in by_chunk {
                    outcomes.extend(chunk);
                }
                outcomes
            }
        };
        let stats = RunStats {
            requested: spec.common.targets.requested(),
            duplicates: spec.common.targets.duplicates(),
            api_calls: run.api_calls.load(Ordering::Relaxed),
            retries: run.retries.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        };
        let report = BindReport {
            provider: profile.provider,
            operation: spec.operation,
            keypair: spec.keypair.cloned(),
            outcomes,
            stats,
            post_conditions: spec.post_conditions.clone(),
            credential_source: Some(self.credentials.source_name()),
        };
        run.request_level_error(report)
    }
}
