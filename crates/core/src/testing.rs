//! An in-memory [`KeypairBinder`] with scriptable results, for tests of code
//! that uses the trait. It runs the real [`Engine`], so chunking, retries and
//! the report behave exactly as with a cloud provider.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::binder::{Capabilities, KeypairBinder, PostCondition};
use crate::engine::{CallError, Chunk, ChunkExecutor, Engine, EngineConfig, InstanceResult, RunContext, RunSpec};
use crate::error::Error;
use crate::ids::{InstanceId, KeyPairRef};
use crate::plan::{Plan, PlannedCall};
use crate::report::{BindReport, Failure, Operation};
use crate::request::{BindRequest, UnbindRequest};
use crate::retry::RetryPolicy;

/// What the in-memory cloud does with one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Applies the operation.
    Apply,
    /// Refuses it with this failure every time.
    Fail(Failure),
    /// Answers "retry" this many times (with this failure), then applies.
    RetryThenApply(u32, Failure),
    /// Applies it, but reports the outcome as ambiguous.
    ApplyButUnknown(Failure),
    /// Applies it, but leaves it out of the response.
    ApplyButOmit,
}

/// One call the in-memory cloud received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Bind or unbind.
    pub operation: Operation,
    /// Chunk number.
    pub chunk: usize,
    /// Instances in the call.
    pub instances: Vec<InstanceId>,
    /// Attempt number of the chunk.
    pub attempt: u32,
    /// Idempotency token, if any.
    pub token: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    bound: HashMap<InstanceId, String>,
    applications: HashMap<InstanceId, u32>,
    retries_left: HashMap<InstanceId, u32>,
    calls: Vec<CallRecord>,
    faults: VecDeque<CallError>,
    in_flight: usize,
    max_in_flight: usize,
}

/// An in-memory cloud behind the [`KeypairBinder`] trait.
#[derive(Debug)]
pub struct InMemoryBinder {
    engine: Engine,
    behaviors: HashMap<InstanceId, Behavior>,
    latency: Duration,
    state: Mutex<State>,
}

/// Builds an [`InMemoryBinder`].
#[derive(Debug)]
pub struct InMemoryBinderBuilder {
    config: EngineConfig,
    behaviors: HashMap<InstanceId, Behavior>,
    faults: VecDeque<CallError>,
    latency: Duration,
}

impl InMemoryBinder {
    /// Starts a builder: cap 10 per call, 4 calls at once, tokens on.
    pub fn builder() -> InMemoryBinderBuilder {
        InMemoryBinderBuilder {
            config: EngineConfig {
                provider: "memory",
                max_per_call: 10,
                default_concurrency: 4,
                default_retry: RetryPolicy { initial_backoff: Duration::from_millis(10), ..RetryPolicy::default() },
                idempotency_tokens: true,
            },
            behaviors: HashMap::new(),
            faults: VecDeque::new(),
            latency: Duration::ZERO,
        }
    }

    /// The key pair bound to an instance now.
    pub fn bound_keypair(&self, id: &InstanceId) -> Option<String> {
        self.state().bound.get(id).cloned()
    }

    /// How many times the operation was applied to an instance.
    pub fn applications(&self, id: &InstanceId) -> u32 {
        self.state().applications.get(id).copied().unwrap_or(0)
    }

    /// Every call received, in order of arrival.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state().calls.clone()
    }

    /// The most calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state().max_in_flight
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn plan_calls(&self, instances: &[InstanceId]) -> Vec<PlannedCall> {
        self.engine.chunks(instances).map(|c| PlannedCall { action: "bind".into(), instances: c.to_vec() }).collect()
    }
}

impl InMemoryBinderBuilder {
    /// Provider name in reports.
    pub fn provider(mut self, name: &'static str) -> Self {
        self.config.provider = name;
        self
    }

    /// Most instances per call.
    pub fn max_per_call(mut self, cap: usize) -> Self {
        self.config.max_per_call = cap;
        self
    }

    /// Default calls in flight.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.config.default_concurrency = concurrency;
        self
    }

    /// Default retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.default_retry = policy;
        self
    }

    /// What happens to one instance (default: [`Behavior::Apply`]).
    pub fn behavior(mut self, id: &str, behavior: Behavior) -> Self {
        let id = InstanceId::new(id).expect("valid instance id in test script");
        self.behaviors.insert(id, behavior);
        self
    }

    /// Fails the next call (in arrival order) as a whole; may be repeated.
    pub fn fault(mut self, error: CallError) -> Self {
        self.faults.push_back(error);
        self
    }

    /// Time each call takes.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Builds the binder.
    pub fn build(self) -> InMemoryBinder {
        let state = State { faults: self.faults, ..State::default() };
        InMemoryBinder {
            engine: Engine::new(self.config),
            behaviors: self.behaviors,
            latency: self.latency,
            state: Mutex::new(state),
        }
    }
}

struct Executor<'a> {
    binder: &'a InMemoryBinder,
    operation: Operation,
    keypair: String,
}

#[async_trait]
impl ChunkExecutor for Executor<'_> {
    async fn execute(&self, ctx: &RunContext, chunk: &Chunk) -> Result<Vec<(InstanceId, InstanceResult)>, CallError> {
        ctx.record_call();
        {
            let mut state = self.binder.state();
            state.calls.push(CallRecord {
                operation: self.operation,
                chunk: chunk.index,
                instances: chunk.instances.clone(),
                attempt: chunk.attempt,
                token: chunk.token.clone(),
            });
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
        }
        if !self.binder.latency.is_zero() {
            tokio::time::sleep(self.binder.latency).await;
        }
        let mut state = self.binder.state();
        state.in_flight -= 1;
        if let Some(fault) = state.faults.pop_front() {
            return Err(fault);
        }
        let mut results = Vec::with_capacity(chunk.instances.len());
        for id in &chunk.instances {
            let behavior = self.binder.behaviors.get(id).cloned().unwrap_or(Behavior::Apply);
            let result = match behavior {
                Behavior::Apply => InstanceResult::Bound,
                Behavior::Fail(f) => {
                    results.push((id.clone(), InstanceResult::Failed(f)));
                    continue;
                }
                Behavior::RetryThenApply(times, f) => {
                    let left = state.retries_left.entry(id.clone()).or_insert(times);
                    if *left > 0 {
                        *left -= 1;
                        results.push((id.clone(), InstanceResult::Retry(f)));
                        continue;
                    }
                    InstanceResult::Bound
                }
                Behavior::ApplyButUnknown(f) => InstanceResult::Unknown(f),
                Behavior::ApplyButOmit => InstanceResult::Bound,
            };
            *state.applications.entry(id.clone()).or_default() += 1;
            match self.operation {
                Operation::Bind => state.bound.insert(id.clone(), self.keypair.clone()),
                Operation::Unbind => state.bound.remove(id),
            };
            if !matches!(self.binder.behaviors.get(id), Some(Behavior::ApplyButOmit)) {
                results.push((id.clone(), result));
            }
        }
        Ok(results)
    }
}

#[async_trait]
impl KeypairBinder for InMemoryBinder {
    fn capabilities(&self) -> Capabilities {
        let config = self.engine.config();
        Capabilities {
            provider: config.provider,
            max_instances_per_call: config.max_per_call,
            async_tasks: false,
            idempotency_token: config.idempotency_tokens,
            keypair_by_id: true,
            post_conditions: vec![PostCondition::RebootRequired],
        }
    }

    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error> {
        let executor = Executor { binder: self, operation: Operation::Bind, keypair: request.keypair().to_string() };
        let spec = RunSpec {
            operation: Operation::Bind,
            keypair: Some(request.keypair()),
            common: request.common(),
            post_conditions: self.capabilities().post_conditions,
        };
        self.engine.run(spec, &executor).await
    }

    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error> {
        let keypair = request.keypair().map(KeyPairRef::to_string).unwrap_or_default();
        let executor = Executor { binder: self, operation: Operation::Unbind, keypair };
        let spec = RunSpec {
            operation: Operation::Unbind,
            keypair: request.keypair(),
            common: request.common(),
            post_conditions: vec![],
        };
        self.engine.run(spec, &executor).await
    }

    fn plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        let targets = &request.common().targets;
        Ok(Plan {
            provider: self.engine.config().provider,
            operation: Operation::Bind,
            keypair: Some(request.keypair().clone()),
            requested: targets.requested(),
            duplicates: targets.duplicates(),
            calls: self.plan_calls(targets.instances()),
        })
    }
}
