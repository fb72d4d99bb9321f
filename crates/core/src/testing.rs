//! An in-memory cloud behind the [`KeypairBinder`] trait, for tests of code
//! that uses the trait and of the engine itself. It runs the real
//! [`crate::kit::Engine`] with a real provider over an in-process
//! [`Transport`]: JSON requests and answers, idempotency tokens, asynchronous
//! tasks, an in-operation window and scripted faults.

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

/// The key the in-memory cloud accepts unless told otherwise.
pub const MEMORY_KEY: &str = "memory-key";

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
    /// Refuses it as changing state this many times, then applies.
    ChangingThenApply(u32),
}

/// A fault of one whole call, taken in arrival order by key-pair calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFault {
    /// 429 with this `Retry-After`; nothing applied.
    Throttle(Duration),
    /// 503; nothing applied.
    Unavailable,
    /// The connection fails before the request is read; nothing applied.
    NotSent,
    /// Applied, then the connection drops without an answer.
    DropAfterApply,
    /// Applied, then a 502 answer.
    BadGatewayAfterApply,
    /// Not applied, and the connection drops after the request was sent.
    LostBeforeApply,
}

/// One call the in-memory cloud received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Bind or unbind.
    pub operation: Operation,
    /// Instances in the call.
    pub instances: Vec<InstanceId>,
    /// Idempotency token, if any.
    pub token: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Debug)]
struct Task {
    instance: InstanceId,
    keypair: String,
    operation: Operation,
    ends: Instant,
    ok: bool,
}

#[derive(Debug, Default)]
struct State {
    bound: HashMap<InstanceId, String>,
    applications: HashMap<InstanceId, u32>,
    retries_left: HashMap<InstanceId, u32>,
    calls: Vec<CallRecord>,
    faults: VecDeque<CallFault>,
    replies: HashMap<String, Value>,
    tasks: HashMap<String, Task>,
    next_task: u64,
    in_flight: usize,
    max_in_flight: usize,
    writes_in_flight: usize,
    max_writes_in_flight: usize,
    max_in_operation: usize,
    refused: u32,
    window_refusals: u32,
    started: HashMap<InstanceId, u32>,
    total_calls: u64,
    task_queries: u64,
}

/// The in-memory cloud: the other end of the transport.
#[derive(Debug)]
struct Cloud {
    behaviors: HashMap<InstanceId, Behavior>,
    latency: Duration,
    task_duration: Option<Duration>,
    window: Option<usize>,
    key: String,
    state: Mutex<State>,
}

impl Cloud {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn advance(&self, state: &mut State, now: Instant) {
        let due: Vec<String> = state.tasks.iter().filter(|(_, t)| t.ends <= now).map(|(id, _)| id.clone()).collect();
        for id in due {
            if let Some(task) = state.tasks.get(&id)
                && task.ok
                && !state
                    .bound
                    .get(&task.instance)
                    .is_some_and(|k| *k == task.keypair && task.operation == Operation::Bind)
            {
                let (instance, keypair, operation) = (task.instance.clone(), task.keypair.clone(), task.operation);
                apply(state, &instance, &keypair, operation);
            }
            if let Some(task) = state.tasks.get_mut(&id) {
                task.ends = far_future();
            }
        }
    }

    fn running(state: &State) -> usize {
        state.tasks.values().filter(|t| t.ends != far_future()).count()
    }

    fn answer(&self, request: &OutgoingRequest) -> Result<HttpResponse, TransportError> {
        let now = Instant::now();
        let mut state = self.state();
        self.advance(&mut state, now);
        if request.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("memory {}", self.key)) {
            state.refused += 1;
            return Ok(json_response(401, json!({"code": "Unauthorized", "message": "the key was refused"})));
        }
        let path = request.uri.path().to_string();
        if let Some(task) = path.strip_prefix("/task/") {
            state.task_queries += 1;
            let status = match state.tasks.get(task) {
                None => return Ok(json_response(404, json!({"code": "NoTask", "message": "no such task"}))),
                Some(t) if t.ends != far_future() => "running",
                Some(t) if t.ok => "succeeded",
                Some(_) => "failed",
            };
            return Ok(json_response(200, json!({"status": status})));
        }
        if path == "/running" {
            let tasks: Vec<Value> = state
                .tasks
                .iter()
                .filter(|(_, t)| t.ends != far_future())
                .map(|(id, t)| json!({"id": id, "instance": t.instance, "keypair": t.keypair, "op": t.operation}))
                .collect();
            return Ok(json_response(200, json!({"tasks": tasks})));
        }
        if path == "/states" {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let mut views = Vec::new();
            for id in body["ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let Ok(id) = InstanceId::new(id) else { continue };
                let changing = match self.behaviors.get(&id) {
                    Some(Behavior::ChangingThenApply(times)) => {
                        let left = state.retries_left.entry(id.clone()).or_insert(*times);
                        let changing = *left > 0;
                        *left = left.saturating_sub(1);
                        changing
                    }
                    _ => false,
                };
                views.push(json!({"id": id, "status": if changing { "STARTING" } else { "RUNNING" },
                    "keypair": state.bound.get(&id)}));
            }
            return Ok(json_response(200, json!({"instances": views})));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let operation = if body["op"] == "unbind" { Operation::Unbind } else { Operation::Bind };
        let keypair = body["keypair"].as_str().unwrap_or("").to_string();
        let token = body["token"].as_str().map(str::to_string);
        let ids: Vec<InstanceId> = body["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().and_then(|s| InstanceId::new(s).ok()))
            .collect();
        state.calls.push(CallRecord { operation, instances: ids.clone(), token: token.clone(), at: now });
        let fault = state.faults.pop_front();
        match fault {
            Some(CallFault::Throttle(wait)) => {
                let mut r = json_response(429, json!({"code": "Throttled", "message": "slow down"}));
                if let Ok(v) = format!("{:.3}", wait.as_secs_f64()).parse() {
                    r.headers.insert("retry-after", v);
                }
                return Ok(r);
            }
            Some(CallFault::Unavailable) => {
                return Ok(json_response(503, json!({"code": "Unavailable", "message": "try later"})));
            }
            Some(CallFault::NotSent) => return Err(TransportError::NotSent("connection refused".into())),
            Some(CallFault::LostBeforeApply) => {
                return Err(TransportError::MaybeSent("connection reset before an answer".into()));
            }
            _ => {}
        }
        if let Some(token) = &token
            && let Some(reply) = state.replies.get(token)
        {
            let reply = reply.clone();
            return Ok(json_response(200, reply));
        }
        let mut results = Vec::with_capacity(ids.len());
        for id in &ids {
            let behavior = self.behaviors.get(id).cloned().unwrap_or(Behavior::Apply);
            let entry = match behavior {
                Behavior::Fail(f) => {
                    json!({"id": id, "status": "failed", "kind": f.kind, "code": f.code, "message": f.message})
                }
                Behavior::RetryThenApply(times, _) | Behavior::ChangingThenApply(times)
                    if *state.retries_left.entry(id.clone()).or_insert(times) > 0 =>
                {
                    *state.retries_left.get_mut(id).unwrap_or(&mut 0) -= 1;
                    if matches!(behavior, Behavior::ChangingThenApply(_)) {
                        json!({"id": id, "status": "changing", "message": "instance is changing state"})
                    } else {
                        json!({"id": id, "status": "retry", "message": "throttled for this instance"})
                    }
                }
                _ if self.window.is_some_and(|w| Self::running(&state) >= w) => {
                    state.window_refusals += 1;
                    json!({"id": id, "status": "failed", "code": "WindowFull", "message": "too many in operation"})
                }
                other => {
                    *state.started.entry(id.clone()).or_default() += 1;
                    let status = if let Some(duration) = self.task_duration {
                        state.next_task += 1;
                        let task = format!("task-{}", state.next_task);
                        state.tasks.insert(
                            task.clone(),
                            Task {
                                instance: id.clone(),
                                keypair: keypair.clone(),
                                operation,
                                ends: now + duration,
                                ok: true,
                            },
                        );
                        let running = Self::running(&state);
                        state.max_in_operation = state.max_in_operation.max(running);
                        json!({"id": id, "status": "task", "task": task})
                    } else {
                        apply(&mut state, id, &keypair, operation);
                        json!({"id": id, "status": "bound"})
                    };
                    match other {
                        Behavior::ApplyButUnknown(f) => json!({"id": id, "status": "ambiguous", "message": f.message}),
                        Behavior::ApplyButOmit => continue,
                        _ => status,
                    }
                }
            };
            results.push(entry);
        }
        let reply = json!({"results": results});
        if let Some(token) = token {
            state.replies.insert(token, reply.clone());
        }
        match fault {
            Some(CallFault::DropAfterApply) => Err(TransportError::MaybeSent("connection reset".into())),
            Some(CallFault::BadGatewayAfterApply) => {
                Ok(json_response(502, json!({"code": "BadGateway", "message": "backend timeout"})))
            }
            _ => Ok(json_response(200, reply)),
        }
    }
}

fn apply(state: &mut State, id: &InstanceId, keypair: &str, operation: Operation) {
    *state.applications.entry(id.clone()).or_default() += 1;
    match operation {
        Operation::Bind => state.bound.insert(id.clone(), keypair.to_string()),
        Operation::Unbind => state.bound.remove(id),
    };
}

fn far_future() -> Instant {
    static FAR: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *FAR.get_or_init(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn json_response(status: u16, body: Value) -> HttpResponse {
    HttpResponse::new(status, serde_json::to_vec(&body).unwrap_or_default())
}

#[derive(Debug)]
struct MemoryTransport {
    cloud: Arc<Cloud>,
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn send(&self, request: OutgoingRequest, _provider: &'static str) -> Result<HttpResponse, TransportError> {
        let write = request.uri.path() == "/call";
        {
            let mut state = self.cloud.state();
            state.total_calls += 1;
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            if write {
                state.writes_in_flight += 1;
                state.max_writes_in_flight = state.max_writes_in_flight.max(state.writes_in_flight);
            }
        }
        if !self.cloud.latency.is_zero() {
            tokio::time::sleep(self.cloud.latency).await;
        }
        let answer = self.cloud.answer(&request);
        let mut state = self.cloud.state();
        state.in_flight -= 1;
        if write {
            state.writes_in_flight -= 1;
        }
        answer
    }
}

/// The provider half: builds JSON calls and reads the cloud's answers.
struct MemoryProvider {
    profile: Profile,
    reconcile: bool,
    operation: Operation,
    keypair: String,
}

fn uri(path: &str) -> Uri {
    format!("http://memory.invalid{path}").parse().unwrap_or_else(|_| Uri::from_static("http://memory.invalid/"))
}

fn failure_of(response: &HttpResponse) -> Failure {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let kind = match response.status {
        429 => FailureKind::Throttled,
        401 => FailureKind::Auth,
        _ => FailureKind::ProviderError,
    };
    Failure::new(kind, body["message"].as_str().unwrap_or("error"))
        .with_code_opt(body["code"].as_str().map(str::to_string))
        .with_status(response.status)
        .retryable(matches!(response.status, 429 | 502 | 503))
        .with_retry_after(response.retry_after())
}

#[async_trait]
impl Provider for MemoryProvider {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        _now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let Credential::Token(key) = credential else { return Err(Failure::new(FailureKind::Auth, "not a key")) };
        let value =
            format!("memory {}", key.expose()).parse().map_err(|_| Failure::new(FailureKind::Auth, "bad key"))?;
        request.headers.insert("authorization", value);
        Ok(())
    }

    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem> {
        (response.status == 401).then(|| CredentialProblem::Refused(failure_of(response)))
    }

    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure> {
        let body = json!({"op": self.operation, "keypair": self.keypair, "ids": call.instances, "token": call.token});
        Ok(OutgoingRequest::new(Method::POST, uri("/call"), "memory:call")
            .with_body(serde_json::to_vec(&body).unwrap_or_default())
            .with_instances(call.instances.len()))
    }

    fn classify(&self, _call: &Call<'_>, response: &HttpResponse) -> CallAnswer {
        if !response.is_success() {
            let failure = failure_of(response);
            return CallAnswer::All(match response.status {
                502 | 504 => Answer::Ambiguous(failure),
                429 | 503 => Answer::Retry(failure),
                _ => Answer::Failed(failure),
            });
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let answers = body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let id = InstanceId::new(r["id"].as_str()?).ok()?;
                let message = r["message"].as_str().unwrap_or("").to_string();
                let answer = match r["status"].as_str()? {
                    "bound" => Answer::Bound,
                    "task" => Answer::Task(r["task"].as_str()?.to_string()),
                    "retry" => Answer::Retry(Failure::new(FailureKind::Throttled, message).retryable(true)),
                    "changing" => Answer::CheckState(Failure::new(FailureKind::InvalidState, message)),
                    "ambiguous" => Answer::Ambiguous(Failure::new(FailureKind::ProviderError, message)),
                    _ => {
                        let kind = serde_json::from_value(r["kind"].clone()).unwrap_or(FailureKind::ProviderError);
                        Answer::Failed(
                            Failure::new(kind, message).with_code_opt(r["code"].as_str().map(str::to_string)),
                        )
                    }
                };
                Some((id, answer))
            })
            .collect();
        CallAnswer::Instances(answers)
    }

    fn tasks(&self) -> Option<&dyn TaskQueries> {
        Some(self)
    }

    fn reconciler(&self) -> Option<&dyn Reconciler> {
        (!self.profile.idempotency_tokens && self.reconcile).then_some(self as &dyn Reconciler)
    }

    fn states(&self) -> Option<&dyn StateQueries> {
        Some(self)
    }
}

impl TaskQueries for MemoryProvider {
    fn query(&self, task: &TaskRef<'_>) -> Result<OutgoingRequest, Failure> {
        Ok(OutgoingRequest::new(Method::GET, uri(&format!("/task/{}", task.task)), "memory:task"))
    }

    fn read(&self, _task: &TaskRef<'_>, response: &HttpResponse) -> TaskAnswer {
        if !response.is_success() {
            let failure = failure_of(response);
            return if failure.retryable { TaskAnswer::Transient(failure) } else { TaskAnswer::Lost(failure) };
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match body["status"].as_str() {
            Some("succeeded") => TaskAnswer::Succeeded,
            Some("failed") => TaskAnswer::Failed(Some(Failure::new(FailureKind::ProviderError, "task failed"))),
            _ => TaskAnswer::Running,
        }
    }
}

impl Reconciler for MemoryProvider {
    fn query(&self, _page: u32) -> Result<OutgoingRequest, Failure> {
        Ok(OutgoingRequest::new(Method::GET, uri("/running"), "memory:running"))
    }

    fn read(
        &self,
        instances: &[InstanceId],
        response: &HttpResponse,
    ) -> Result<(Vec<(InstanceId, Answer)>, bool), Failure> {
        if !response.is_success() {
            return Err(failure_of(response));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let op = serde_json::to_value(self.operation).unwrap_or(Value::Null);
        let found = body["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["keypair"] == self.keypair.as_str() && t["op"] == op)
            .filter_map(|t| {
                let id = InstanceId::new(t["instance"].as_str()?).ok()?;
                instances.contains(&id).then(|| (id, Answer::Task(t["id"].as_str().unwrap_or("").to_string())))
            })
            .collect();
        Ok((found, false))
    }
}

impl StateQueries for MemoryProvider {
    fn max_per_query(&self) -> usize {
        100
    }

    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        Ok(OutgoingRequest::new(Method::POST, uri("/states"), "memory:states")
            .with_body(serde_json::to_vec(&json!({"ids": instances})).unwrap_or_default()))
    }

    fn read(&self, instances: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure> {
        if !response.is_success() {
            return Err(failure_of(response));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok(body["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(at, v)| {
                let id = shared_id(instances, v["id"].as_str()?, at)?;
                let status = v["status"].as_str().unwrap_or("").to_string();
                let readiness = if status == "STARTING" {
                    Readiness::Wait(
                        Failure::new(FailureKind::InvalidState, "instance is STARTING")
                            .retryable(true)
                            .with_retry_after(Some(Duration::from_millis(50))),
                    )
                } else {
                    Readiness::Ready
                };
                Some(
                    InstanceView::new(id, status, readiness)
                        .with_keypair(v["keypair"].as_str().map(str::to_string), None),
                )
            })
            .collect())
    }
}

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
