//! The policy every provider shares: chunking, bounded concurrency, retry with
//! backoff and jitter, a total deadline, progress, and exactly one outcome per
//! instance whatever the chunks return.
//!
//! A provider supplies a [`ChunkExecutor`] that makes one attempt at a chunk;
//! the [`Engine`] decides what to retry, when, and what each instance's outcome is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::Instrument;

use crate::binder::PostCondition;
use crate::error::Error;
use crate::ids::{InstanceId, KeyPairRef};
use crate::progress::{ProgressEvent, ProgressObserver};
use crate::report::{BindReport, Failure, FailureKind, InstanceOutcome, Operation, RunStats};
use crate::request::{MAX_CLIENT_TOKEN_LEN, RequestCommon};
use crate::retry::RetryPolicy;

/// Default run deadline when the caller sets none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);

/// The instances of one logical API call, and where it stands.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// The chunk's number in the run (stable across its retries).
    pub index: usize,
    /// Instances it carries, at most the provider's cap.
    pub instances: Vec<InstanceId>,
    /// 0 for the first attempt, then one more per retry.
    pub attempt: u32,
    /// Idempotency token: the same on every retry of this exact set of
    /// instances, a new one when only some instances are re-issued.
    pub token: Option<String>,
}

/// What one attempt decided about one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceResult {
    /// Applied and confirmed.
    Bound,
    /// Not applied; final.
    Failed(Failure),
    /// May or may not have been applied; final.
    Unknown(Failure),
    /// Not applied, and worth re-issuing (per-instance throttling, transient state).
    Retry(Failure),
}

/// A failure of a whole attempt: no instance got its own answer.
#[derive(Clone, Debug)]
pub struct CallError {
    /// What went wrong.
    pub failure: Failure,
    /// Whether the cloud may have applied the call anyway (e.g. the connection
    /// broke after the request was sent).
    pub maybe_applied: bool,
}

impl CallError {
    /// A failure that certainly applied nothing.
    pub fn not_applied(failure: Failure) -> Self {
        Self { failure, maybe_applied: false }
    }

    /// A failure after which the call may have been applied.
    pub fn maybe_applied(failure: Failure) -> Self {
        Self { failure, maybe_applied: true }
    }
}

/// Shared state of one run, for executors: call counting, deadline, progress.
pub struct RunContext {
    api_calls: AtomicU64,
    retries: AtomicU64,
    deadline: Instant,
    observer: Option<std::sync::Arc<dyn ProgressObserver>>,
    abort: Mutex<Option<Failure>>,
}

impl RunContext {
    fn new(deadline: Instant, observer: Option<std::sync::Arc<dyn ProgressObserver>>) -> Self {
        Self { api_calls: AtomicU64::new(0), retries: AtomicU64::new(0), deadline, observer, abort: Mutex::new(None) }
    }

    /// Counts one HTTP call to the cloud.
    pub fn record_call(&self) {
        self.api_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// When the run must stop sending.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sends a progress event to the caller's observer.
    pub fn emit(&self, event: ProgressEvent) {
        if let Some(o) = &self.observer {
            o.on_event(&event);
        }
    }

    /// Stops the run from sending anything more (credentials refused).
    pub fn abort(&self, failure: &Failure) {
        let mut guard = self.abort.lock().unwrap_or_else(|e| e.into_inner());
        guard.get_or_insert_with(|| failure.clone());
    }

    /// Whether an earlier call refused the credentials; send nothing more.
    pub fn is_aborted(&self) -> bool {
        self.aborted().is_some()
    }

    /// Why the run stopped sending, for instances it never sent.
    pub fn abort_reason(&self) -> Option<Failure> {
        self.aborted()
    }

    fn aborted(&self) -> Option<Failure> {
        self.abort.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One attempt at a chunk: the only part of a run a provider writes.
#[async_trait]
pub trait ChunkExecutor: Send + Sync {
    /// Makes one attempt at `chunk`. The report may omit instances (they end
    /// `Unknown`) but must not invent outcomes; ids not in the chunk are ignored.
    async fn execute(&self, ctx: &RunContext, chunk: &Chunk) -> Result<Vec<(InstanceId, InstanceResult)>, CallError>;
}

/// A provider's fixed parameters for the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Provider name for reports and errors.
    pub provider: &'static str,
    /// Most instances in one chunk.
    pub max_per_call: usize,
    /// Chunks in flight when the caller does not say.
    pub default_concurrency: usize,
    /// Retry policy when the caller does not say.
    pub default_retry: RetryPolicy,
    /// Whether to give each chunk an idempotency token.
    pub idempotency_tokens: bool,
}

/// What a run is about, for the report.
#[derive(Clone, Debug)]
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

/// Runs chunks through a [`ChunkExecutor`] under the shared policy.
#[derive(Clone, Debug)]
pub struct Engine {
    config: EngineConfig,
}

impl Engine {
    /// An engine for one provider.
    pub fn new(config: EngineConfig) -> Self {
        assert!(config.max_per_call > 0, "max_per_call must be positive");
        Self { config }
    }

    /// The provider's parameters.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Splits instances into chunks of at most the provider's cap, in order.
    pub fn chunks<'a>(&self, instances: &'a [InstanceId]) -> impl Iterator<Item = &'a [InstanceId]> {
        instances.chunks(self.config.max_per_call)
    }

    /// Runs the whole request: every distinct instance ends in the report once.
    pub async fn run(&self, spec: RunSpec<'_>, executor: &dyn ChunkExecutor) -> Result<BindReport, Error> {
        let started = Instant::now();
        let options = &spec.common.options;
        let retry = options.retry.clone().unwrap_or_else(|| self.config.default_retry.clone());
        let concurrency = options.concurrency.unwrap_or(self.config.default_concurrency).max(1);
        let deadline = started + options.deadline.unwrap_or(DEFAULT_DEADLINE);
        let ctx = RunContext::new(deadline, options.observer.clone());
        let instances = spec.common.targets.instances();
        let total = instances.len();
        ctx.emit(ProgressEvent::Started { total });

        let done = AtomicU64::new(0);
        // Chunks are built as they start, so only those in flight hold a copy of their ids.
        let cap = self.config.max_per_call;
        let (ctx_ref, retry_ref, spec_ref, done_ref) = (&ctx, &retry, &spec, &done);
        let lineages = (0..total.div_ceil(cap)).map(move |index| {
            let (ctx, retry, spec, done) = (ctx_ref, retry_ref, spec_ref, done_ref);
            let ids = &instances[index * cap..((index + 1) * cap).min(total)];
            let chunk = Chunk { index, instances: ids.to_vec(), attempt: 0, token: self.token(spec, ids, 0) };
            async move {
                let outcomes = self.run_lineage(ctx, retry, spec, executor, chunk).await;
                let finished = done.fetch_add(outcomes.len() as u64, Ordering::Relaxed) as usize + outcomes.len();
                for (id, outcome) in &outcomes {
                    ctx.emit(ProgressEvent::InstanceFinished { instance: id.clone(), bound: outcome.is_bound() });
                }
                ctx.emit(ProgressEvent::InstancesDone { done: finished, total });
                (index, order_outcomes(ids, outcomes))
            }
        });
        let mut by_chunk: Vec<Vec<(InstanceId, InstanceOutcome)>> = vec![Vec::new(); total.div_ceil(cap)];
        let mut stream = futures::stream::iter(lineages).buffer_unordered(concurrency);
        while let Some((index, outcomes)) = stream.next().await {
            by_chunk[index] = outcomes;
        }
        drop(stream);

        let outcomes: Vec<(InstanceId, InstanceOutcome)> = by_chunk.into_iter().flatten().collect();
        let stats = RunStats {
            requested: spec.common.targets.requested(),
            duplicates: spec.common.targets.duplicates(),
            api_calls: ctx.api_calls.load(Ordering::Relaxed),
            retries: ctx.retries.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        };
        let report = BindReport {
            provider: self.config.provider,
            operation: spec.operation,
            keypair: spec.keypair.cloned(),
            outcomes,
            stats,
            post_conditions: spec.post_conditions.clone(),
        };
        self.request_level_error(&ctx, report)
    }

    /// Turns a run where nothing could be applied for one shared reason into
    /// an `Error`, as the trait promises; otherwise returns the report.
    fn request_level_error(&self, ctx: &RunContext, report: BindReport) -> Result<BindReport, Error> {
        let provider = self.config.provider;
        let nothing_applied = report.outcomes.iter().all(|(_, o)| matches!(o, InstanceOutcome::Failed(_)));
        if !nothing_applied {
            return Ok(report);
        }
        if let Some(failure) = ctx.aborted() {
            let failure = Box::new(failure);
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

    fn token(&self, spec: &RunSpec<'_>, ids: &[InstanceId], generation: u32) -> Option<String> {
        self.config.idempotency_tokens.then(|| match &spec.common.client_token {
            Some(base) => derive_token(base, spec.operation, spec.keypair, ids, generation),
            None => uuid::Uuid::new_v4().to_string(),
        })
    }

    async fn run_lineage(
        &self,
        ctx: &RunContext,
        retry: &RetryPolicy,
        spec: &RunSpec<'_>,
        executor: &dyn ChunkExecutor,
        mut chunk: Chunk,
    ) -> Vec<(InstanceId, InstanceOutcome)> {
        let mut out = Vec::with_capacity(chunk.instances.len());
        let mut generation = 0u32;
        let mut budget = Budget { policy: retry, retries: 0, throttled: 0 };
        loop {
            if let Some(failure) = ctx.aborted() {
                let failure =
                    Failure { message: format!("not sent: an earlier call failed: {}", failure.message), ..failure };
                finish_all(&mut out, &chunk.instances, |_| InstanceOutcome::Failed(failure.clone()));
                return out;
            }
            let now = Instant::now();
            if now >= ctx.deadline {
                let failure = Failure::new(FailureKind::Timeout, "run deadline reached before this instance was sent")
                    .retryable(true);
                finish_all(&mut out, &chunk.instances, |_| InstanceOutcome::Failed(failure.clone()));
                return out;
            }
            ctx.emit(ProgressEvent::ChunkStarted {
                chunk: chunk.index,
                instances: chunk.instances.len(),
                attempt: chunk.attempt,
            });
            let span = tracing::debug_span!(
                "chunk",
                provider = self.config.provider,
                chunk = chunk.index,
                instances = chunk.instances.len(),
                attempt = chunk.attempt
            );
            let attempt = tokio::time::timeout_at(ctx.deadline, executor.execute(ctx, &chunk)).instrument(span).await;

            let (retry_ids, reason, retry_after, throttled) = match attempt {
                Err(_elapsed) => {
                    let failure = Failure::new(
                        FailureKind::Timeout,
                        "run deadline reached while the call was in flight; it may have been applied",
                    )
                    .retryable(true);
                    finish_all(&mut out, &chunk.instances, |_| InstanceOutcome::Unknown(failure.clone()));
                    return out;
                }
                Ok(Err(error)) => {
                    let f = &error.failure;
                    if matches!(f.kind, FailureKind::Auth | FailureKind::Permission) {
                        ctx.abort(f);
                    }
                    if f.retryable && budget.allows(f) && ctx.aborted().is_none() {
                        // Same instances, same token: the retry of one logical call.
                        (None, f.to_string(), f.retry_after, f.kind == FailureKind::Throttled)
                    } else {
                        let outcome =
                            if error.maybe_applied { InstanceOutcome::Unknown } else { InstanceOutcome::Failed };
                        finish_all(&mut out, &chunk.instances, |_| outcome(f.clone()));
                        return out;
                    }
                }
                Ok(Ok(results)) => {
                    let again = self.settle(ctx, &chunk, results, &budget, &mut out);
                    if again.ids.is_empty() {
                        return out;
                    }
                    (Some(again.ids), again.reason, again.retry_after, again.throttled)
                }
            };

            let delay = retry.delay(chunk.attempt, retry_after, &mut rand::rng());
            let remaining = match &retry_ids {
                Some(ids) => ids.clone(),
                None => chunk.instances.clone(),
            };
            if Instant::now() + delay >= ctx.deadline {
                let failure =
                    Failure::new(FailureKind::Timeout, format!("run deadline leaves no time to retry ({reason})"))
                        .retryable(true);
                finish_all(&mut out, &remaining, |_| InstanceOutcome::Failed(failure.clone()));
                return out;
            }
            ctx.emit(ProgressEvent::RetryScheduled {
                chunk: chunk.index,
                instances: remaining.len(),
                attempt: chunk.attempt + 1,
                delay,
                reason: reason.clone(),
            });
            tracing::debug!(chunk = chunk.index, ?delay, %reason, "retry scheduled");
            tokio::time::sleep(delay).await;
            ctx.retries.fetch_add(1, Ordering::Relaxed);
            budget.spend(throttled);
            chunk.attempt += 1;
            if retry_ids.is_some() {
                // Only some instances go again: a different call, so a new token.
                generation += 1;
                chunk.token = self.token(spec, &remaining, generation);
                chunk.instances = remaining;
            }
        }
    }

    /// Records final per-instance results of one attempt and returns the ones
    /// to re-issue, with the reason and the longest wait the cloud asked for.
    fn settle(
        &self,
        ctx: &RunContext,
        chunk: &Chunk,
        results: Vec<(InstanceId, InstanceResult)>,
        budget: &Budget<'_>,
        out: &mut Vec<(InstanceId, InstanceOutcome)>,
    ) -> Reissue {
        let mut by_id: HashMap<InstanceId, InstanceResult> = HashMap::with_capacity(results.len());
        for (id, result) in results {
            by_id.entry(id).or_insert(result);
        }
        let (mut bound, mut failed, mut unknown) = (0, 0, 0);
        let mut again = Reissue { ids: Vec::new(), reason: String::new(), retry_after: None, throttled: true };
        for id in &chunk.instances {
            let outcome = match by_id.remove(id) {
                Some(InstanceResult::Bound) => InstanceOutcome::Bound,
                Some(InstanceResult::Failed(f)) => InstanceOutcome::Failed(f),
                Some(InstanceResult::Unknown(f)) => InstanceOutcome::Unknown(f),
                Some(InstanceResult::Retry(f)) if budget.allows(&f) && ctx.aborted().is_none() => {
                    again.retry_after = again.retry_after.max(f.retry_after);
                    again.throttled &= f.kind == FailureKind::Throttled;
                    if again.reason.is_empty() {
                        again.reason = f.to_string();
                    }
                    again.ids.push(id.clone());
                    continue;
                }
                Some(InstanceResult::Retry(f)) => InstanceOutcome::Failed(f),
                None => InstanceOutcome::Unknown(Failure::new(
                    FailureKind::ProviderError,
                    "the provider's response did not mention this instance; it may have been applied",
                )),
            };
            match outcome {
                InstanceOutcome::Bound => bound += 1,
                InstanceOutcome::Failed(_) => failed += 1,
                InstanceOutcome::Unknown(_) => unknown += 1,
            }
            out.push((id.clone(), outcome));
        }
        if !by_id.is_empty() {
            tracing::warn!(extra = by_id.len(), "provider answered for instances that were not in the call; ignored");
        }
        ctx.emit(ProgressEvent::ChunkFinished {
            chunk: chunk.index,
            bound,
            failed,
            unknown,
            retrying: again.ids.len(),
        });
        again
    }
}

/// What a chunk has spent of its retry policy: throttling has its own allowance.
struct Budget<'a> {
    policy: &'a RetryPolicy,
    retries: u32,
    throttled: u32,
}

impl Budget<'_> {
    fn allows(&self, failure: &Failure) -> bool {
        if failure.kind == FailureKind::Throttled {
            self.throttled < self.policy.max_throttled_retries
        } else {
            self.retries < self.policy.max_retries
        }
    }

    fn spend(&mut self, throttled: bool) {
        if throttled {
            self.throttled += 1;
        } else {
            self.retries += 1;
        }
    }
}

/// Instances of an attempt to send again.
struct Reissue {
    ids: Vec<InstanceId>,
    reason: String,
    retry_after: Option<Duration>,
    /// Every one of them was throttled.
    throttled: bool,
}

fn finish_all(
    out: &mut Vec<(InstanceId, InstanceOutcome)>,
    ids: &[InstanceId],
    outcome: impl Fn(&InstanceId) -> InstanceOutcome,
) {
    out.extend(ids.iter().map(|id| (id.clone(), outcome(id))));
}

/// Puts a chunk's outcomes in input order; an instance without one (which
/// the engine never produces) would end `Unknown` rather than vanish.
fn order_outcomes(
    instances: &[InstanceId],
    collected: Vec<(InstanceId, InstanceOutcome)>,
) -> Vec<(InstanceId, InstanceOutcome)> {
    let mut by_id: HashMap<InstanceId, InstanceOutcome> = collected.into_iter().collect();
    instances
        .iter()
        .map(|id| {
            let outcome = by_id.remove(id).unwrap_or_else(|| {
                InstanceOutcome::Unknown(Failure::new(
                    FailureKind::ProviderError,
                    "no outcome was recorded for this instance",
                ))
            });
            (id.clone(), outcome)
        })
        .collect()
}

/// An idempotency token derived from the caller's base token and the call's
/// contents, so re-running the same request reuses the same tokens while a
/// different set of instances never does. At most 64 ASCII characters.
pub fn derive_token(
    base: &str,
    operation: Operation,
    keypair: Option<&KeyPairRef>,
    instances: &[InstanceId],
    generation: u32,
) -> String {
    let mut hash = Sha256::new();
    for part in [base, &operation.to_string(), keypair.map(KeyPairRef::as_str).unwrap_or("")] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for id in instances {
        hash.update(id.as_str().as_bytes());
        hash.update([0]);
    }
    hash.update(generation.to_be_bytes());
    let digest = hex::encode(&hash.finalize()[..12]);
    let prefix_len = MAX_CLIENT_TOKEN_LEN - digest.len() - 1;
    let prefix: String = base.chars().take(prefix_len).collect();
    format!("{prefix}-{digest}")
}
