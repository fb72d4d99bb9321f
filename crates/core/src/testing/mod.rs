//! An in-memory cloud behind the [`KeypairBinder`] trait, for tests of code
//! that uses the trait and of the engine itself. It runs the real
//! [`crate::kit::Engine`] with a real provider over an in-process
//! [`Transport`]: JSON requests and answers, idempotency tokens, asynchronous
//! tasks, an in-operation window and scripted faults.

mod cloud;
mod provider;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::{Method, Uri};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::binder::{Capabilities, KeypairBinder, PostCondition};
use crate::error::Error;
use crate::http::{HttpResponse, TransportError};
use crate::ids::{InstanceId, KeyPairRef};
use crate::kit::{
    Answer, Call, CallAnswer, Credential, CredentialProblem, Credentials, Engine, InstanceView, OutgoingRequest,
    Polling, Profile, Provider, Readiness, Reconciler, RunSpec, StateQueries, TaskAnswer, TaskQueries, TaskRef,
    Transport, chunks, shared_id,
};
use crate::plan::{Plan, PlannedCall};
use crate::report::{BindReport, Failure, FailureKind, Operation};
use crate::request::{BindRequest, RequestCommon, UnbindRequest};
use crate::retry::RetryPolicy;
use crate::secret::Secret;

pub use cloud::{Behavior, CallFault, CallRecord, MEMORY_KEY};
use cloud::{Cloud, MemoryTransport, State};
use provider::MemoryProvider;

/// An in-memory cloud behind the [`KeypairBinder`] trait.
#[derive(Debug)]
pub struct InMemoryBinder {
    engine: Engine,
    cloud: Arc<Cloud>,
    profile: Profile,
    reconcile: bool,
}

/// Builds an [`InMemoryBinder`].
#[derive(Debug)]
pub struct InMemoryBinderBuilder {
    profile: Profile,
    reconcile: bool,
    behaviors: HashMap<InstanceId, Behavior>,
    faults: VecDeque<CallFault>,
    latency: Duration,
    task_duration: Option<Duration>,
    window: Option<usize>,
    client_key: String,
}

impl InMemoryBinder {
    /// Starts a builder: cap 10 per call, 4 calls at once, tokens on, synchronous calls.
    pub fn builder() -> InMemoryBinderBuilder {
        InMemoryBinderBuilder {
            reconcile: true,
            profile: Profile::new("memory", 10)
                .concurrency(4)
                .idempotency_tokens(true)
                .converge(true)
                .retry(RetryPolicy { initial_backoff: Duration::from_millis(10), ..RetryPolicy::default() }),
            behaviors: HashMap::new(),
            faults: VecDeque::new(),
            latency: Duration::ZERO,
            task_duration: None,
            window: None,
            client_key: MEMORY_KEY.into(),
        }
    }

    /// The key pair bound to an instance now.
    pub fn bound_keypair(&self, id: &InstanceId) -> Option<String> {
        self.cloud.state().bound.get(id).cloned()
    }

    /// How many times the operation was applied to an instance.
    pub fn applications(&self, id: &InstanceId) -> u32 {
        self.cloud.state().applications.get(id).copied().unwrap_or(0)
    }

    /// How many times an instance's operation was started (applied or as a task).
    pub fn started(&self, id: &InstanceId) -> u32 {
        self.cloud.state().started.get(id).copied().unwrap_or(0)
    }

    /// Calls refused because the in-operation window was full.
    pub fn window_refusals(&self) -> u32 {
        self.cloud.state().window_refusals
    }

    /// Every key-pair call received, in order of arrival.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.cloud.state().calls.clone()
    }

    /// Every request received, reads included.
    pub fn total_calls(&self) -> u64 {
        self.cloud.state().total_calls
    }

    /// Task status queries received.
    pub fn task_queries(&self) -> u64 {
        self.cloud.state().task_queries
    }

    /// Requests refused for their credentials.
    pub fn refused_calls(&self) -> u32 {
        self.cloud.state().refused
    }

    /// The most calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.cloud.state().max_in_flight
    }

    /// Most key-pair calls (writes) in flight at once.
    pub fn max_writes_in_flight(&self) -> usize {
        self.cloud.state().max_writes_in_flight
    }

    /// The most instances whose tasks ran at once.
    pub fn max_in_operation(&self) -> usize {
        self.cloud.state().max_in_operation
    }

    async fn run(
        &self,
        operation: Operation,
        keypair: Option<&KeyPairRef>,
        common: &RequestCommon,
    ) -> Result<BindReport, Error> {
        let provider = MemoryProvider {
            profile: self.profile.clone(),
            reconcile: self.reconcile,
            operation,
            keypair: keypair.map(KeyPairRef::to_string).unwrap_or_default(),
        };
        let post = if operation == Operation::Bind { vec![PostCondition::RebootRequired] } else { vec![] };
        self.engine.run(&provider, RunSpec::new(operation, keypair, common).post_conditions(post)).await
    }
}

impl InMemoryBinderBuilder {
    /// Provider name in reports.
    pub fn provider(mut self, name: &'static str) -> Self {
        self.profile.provider = name;
        self
    }

    /// Most instances per call.
    pub fn max_per_call(mut self, cap: usize) -> Self {
        self.profile.max_per_call = cap.max(1);
        self
    }

    /// Default calls in flight.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.profile = self.profile.concurrency(concurrency);
        self
    }

    /// Default retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.profile = self.profile.retry(policy);
        self
    }

    /// Whether calls carry idempotency tokens (default on). Without them an
    /// ambiguous call is reconciled through the running-task list.
    pub fn idempotency_tokens(mut self, on: bool) -> Self {
        self.profile = self.profile.idempotency_tokens(on);
        self
    }

    /// Reads key pairs before the first send, so re-runs converge (default on).
    pub fn converge(mut self, on: bool) -> Self {
        self.profile = self.profile.converge(on);
        self
    }

    /// Without tokens, whether ambiguous calls are settled through the
    /// running-task list (default) or, without it, through the key-pair read.
    pub fn reconciler(mut self, on: bool) -> Self {
        self.reconcile = on;
        self
    }

    /// Checks states before the first send.
    pub fn precheck_states(mut self, on: bool) -> Self {
        self.profile = self.profile.precheck_states(on);
        self
    }

    /// Calls start tasks that end after `duration`, followed with `polling`.
    pub fn tasks(mut self, duration: Duration, polling: Polling) -> Self {
        self.task_duration = Some(duration);
        self.profile = self.profile.polling(polling);
        self
    }

    /// At most `size` instances in operation at once (the cloud refuses more).
    pub fn window(mut self, size: usize) -> Self {
        self.window = Some(size);
        self
    }

    /// What happens to one instance (default: [`Behavior::Apply`]).
    pub fn behavior(mut self, id: &str, behavior: Behavior) -> Self {
        let id = InstanceId::new(id).expect("valid instance id in test script");
        self.behaviors.insert(id, behavior);
        self
    }

    /// Fails the next key-pair call (in arrival order) as a whole; may be repeated.
    pub fn fault(mut self, fault: CallFault) -> Self {
        self.faults.push_back(fault);
        self
    }

    /// Time each call takes.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Signs calls with a key the cloud refuses.
    pub fn wrong_key(mut self) -> Self {
        self.client_key = "not-the-key".into();
        self
    }

    /// Builds the binder.
    pub fn build(self) -> InMemoryBinder {
        let state = State { faults: self.faults, ..State::default() };
        let cloud = Arc::new(Cloud {
            behaviors: self.behaviors,
            latency: self.latency,
            task_duration: self.task_duration,
            window: self.window,
            key: MEMORY_KEY.into(),
            state: Mutex::new(state),
        });
        let credentials = Credentials::fixed(Credential::Token(Secret::new(self.client_key)));
        let mut engine = Engine::new(Arc::new(MemoryTransport { cloud: cloud.clone() }), credentials);
        if let Some(size) = self.window {
            engine = engine.with_window(size);
        }
        InMemoryBinder { engine, cloud, profile: self.profile, reconcile: self.reconcile }
    }
}

#[async_trait]
impl KeypairBinder for InMemoryBinder {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            provider: self.profile.provider,
            max_instances_per_call: self.profile.max_per_call,
            async_tasks: self.cloud.task_duration.is_some(),
            idempotency_token: self.profile.idempotency_tokens,
            keypair_by_id: true,
            post_conditions: vec![PostCondition::RebootRequired],
        }
    }

    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error> {
        self.run(Operation::Bind, Some(request.keypair()), request.common()).await
    }

    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error> {
        self.run(Operation::Unbind, request.keypair(), request.common()).await
    }

    fn plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        let targets = &request.common().targets;
        let calls = chunks(targets.instances(), self.profile.max_per_call)
            .map(|c| PlannedCall { action: "bind".into(), instances: c.to_vec() })
            .collect();
        Ok(Plan {
            provider: self.profile.provider,
            operation: Operation::Bind,
            keypair: Some(request.keypair().clone()),
            requested: targets.requested(),
            duplicates: targets.duplicates(),
            calls,
        })
    }
}
