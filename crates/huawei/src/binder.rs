//! [`HuaweiBinder`]: KPS associate/batch-associate/disassociate behind the
//! shared engine, each task polled to its end, never more than 10 VMs in
//! key-pair operations at once.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use keypair_binder_core::engine::{
    CallError, Chunk, ChunkExecutor, Engine, EngineConfig, InstanceResult, RunContext, RunSpec,
};
use keypair_binder_core::http::{CallInfo, HttpClient, HttpResponse, TransportError};
use keypair_binder_core::request::RequestCommon;
use keypair_binder_core::{
    BindReport, BindRequest, Capabilities, Error, Failure, FailureKind, InstanceId, KeyPairRef, KeypairBinder,
    Operation, Plan, PlannedCall, PostCondition, RetryPolicy, UnbindRequest, VmCredential,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::auth::Authenticator;
use crate::config::{HuaweiBuilder, PROVIDER, Polling};
use crate::errors::{failure_of, snippet, vm_failure};
use crate::request::KpsRequest;
use crate::wire::{
    AssociateBody, Auth, AuthType, BatchAssociateBody, BatchResponse, DisassociateBody, FailedTasks, MAX_BATCH,
    MAX_IN_OPERATION, Phase, RunningTasks, Server, TaskResponse, TaskStatus,
};

/// The CIDR the KPS agent connects from; the VM's security group must allow SSH from it.
pub const AGENT_SOURCE_CIDR: &str = "100.125.0.0/16";
/// Tries at listing running tasks after an ambiguous submission.
const RECONCILE_ATTEMPTS: u32 = 6;
/// Wait suggested by Huawei after `APIGW.0308` when no `Retry-After` is given.
const THROTTLE_WAIT: Duration = Duration::from_secs(2);

/// Binds key pairs to Huawei Cloud ECS VMs through KPS.
///
/// The VM credential in the request picks the mode: a root password binds in
/// batches of 10 (running VMs without a key); the current private key replaces
/// a key VM by VM; no credential resets stopped VMs VM by VM.
#[derive(Clone)]
pub struct HuaweiBinder {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Url,
    auth: Authenticator,
    http: HttpClient,
    engine: Engine,
    polling: Polling,
    window: Window,
}

impl fmt::Debug for HuaweiBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiBinder")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("auth", &self.inner.auth.mode())
            .field("polling", &self.inner.polling)
            .finish_non_exhaustive()
    }
}

impl HuaweiBuilder {
    /// Checks the settings and builds the binder; nothing is sent.
    pub fn build(self) -> Result<HuaweiBinder, Error> {
        let resolved = self.resolve()?;
        let http = HttpClient::for_provider(PROVIDER, self.client.http.clone())?;
        let engine = Engine::new(EngineConfig {
            provider: PROVIDER,
            max_per_call: MAX_BATCH,
            default_concurrency: self.client.concurrency.unwrap_or(3),
            default_retry: self.client.retry.clone().unwrap_or_else(default_retry_policy),
            idempotency_tokens: false,
        });
        let auth = Authenticator::new(resolved.auth, resolved.iam_endpoint, resolved.region, resolved.project_id);
        let inner =
            Inner { endpoint: resolved.endpoint, auth, http, engine, polling: self.polling, window: Window::new() };
        Ok(HuaweiBinder { inner: Arc::new(inner) })
    }
}

/// Default retry policy for Huawei (the SDK retries nothing by default).
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(20),
        ..RetryPolicy::default()
    }
}

/// What one run does to each VM.
#[derive(Clone)]
enum Mode {
    /// batch-associate with the root password.
    Batch { keypair: String, server: ServerTemplate },
    /// associate one VM at a time (replace with the current key, or reset).
    Single { keypair: String, server: ServerTemplate },
    /// disassociate one VM at a time.
    Unbind { server: ServerTemplate },
}

#[derive(Clone)]
struct ServerTemplate {
    auth: Option<Auth>,
    disable_password: Option<bool>,
    port: Option<u16>,
}

impl ServerTemplate {
    fn for_vm(&self, id: &InstanceId) -> Server {
        Server {
            id: id.as_str().to_string(),
            auth: self.auth.clone(),
            disable_password: self.disable_password,
            port: self.port,
        }
    }
}

fn auth_of(credential: Option<&VmCredential>) -> Option<Auth> {
    credential.map(|c| match c {
        VmCredential::Password(s) => Auth { kind: AuthType::Password, key: s.clone() },
        VmCredential::PrivateKey(s) => Auth { kind: AuthType::Keypair, key: s.clone() },
    })
}

impl HuaweiBinder {
    /// A builder with nothing set.
    pub fn builder() -> HuaweiBuilder {
        HuaweiBuilder::new()
    }

    /// A binder configured from the environment and the profile file.
    pub fn from_env() -> Result<Self, Error> {
        HuaweiBuilder::from_env().build()
    }

    fn check_common(common: &RequestCommon) -> Result<(), Error> {
        if common.client_token.is_some() {
            return Err(Error::unsupported(PROVIDER, "client_token", "KPS calls take no idempotency token"));
        }
        Ok(())
    }

    fn bind_mode(request: &BindRequest) -> Result<Mode, Error> {
        Self::check_common(request.common())?;
        let KeyPairRef::Name(keypair) = request.keypair() else {
            return Err(Error::unsupported(PROVIDER, "keypair_id", "KPS names key pairs; pass the key pair name"));
        };
        let common = request.common();
        let server = ServerTemplate {
            auth: auth_of(common.credential.as_ref()),
            disable_password: request.disable_password(),
            port: common.ssh_port,
        };
        let keypair = keypair.clone();
        Ok(match common.credential {
            Some(VmCredential::Password(_)) => Mode::Batch { keypair, server },
            _ => Mode::Single { keypair, server },
        })
    }

    fn post_conditions(disable_password: Option<bool>) -> Vec<PostCondition> {
        let mut conditions = vec![PostCondition::SecurityGroupMustAllowSsh { source_cidr: AGENT_SOURCE_CIDR.into() }];
        if disable_password == Some(true) {
            conditions.push(PostCondition::PasswordLoginDisabled);
        }
        conditions
    }
}

#[async_trait]
impl KeypairBinder for HuaweiBinder {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            provider: PROVIDER,
            max_instances_per_call: MAX_BATCH,
            async_tasks: true,
            idempotency_token: false,
            keypair_by_id: false,
            post_conditions: Self::post_conditions(None),
        }
    }

    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error> {
        let mode = Self::bind_mode(&request)?;
        let executor = Executor { inner: &self.inner, mode };
        let spec = RunSpec {
            operation: Operation::Bind,
            keypair: Some(request.keypair()),
            common: request.common(),
            post_conditions: Self::post_conditions(request.disable_password()),
        };
        self.inner.engine.run(spec, &executor).await
    }

    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error> {
        let common = request.common();
        Self::check_common(common)?;
        let server =
            ServerTemplate { auth: auth_of(common.credential.as_ref()), disable_password: None, port: common.ssh_port };
        let executor = Executor { inner: &self.inner, mode: Mode::Unbind { server } };
        let spec =
            RunSpec { operation: Operation::Unbind, keypair: request.keypair(), common, post_conditions: vec![] };
        self.inner.engine.run(spec, &executor).await
    }

    fn plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }
}

/// The calls a bind would make, without a binder or any network: batches of
/// 10 with a root password, else one associate per VM.
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    let mode = HuaweiBinder::bind_mode(request)?;
    let targets = &request.common().targets;
    let calls = match mode {
        Mode::Batch { .. } => targets
            .instances()
            .chunks(MAX_BATCH)
            .map(|ids| PlannedCall {
                action: "POST /v3/{project_id}/keypairs/batch-associate".into(),
                instances: ids.to_vec(),
            })
            .collect(),
        _ => targets
            .instances()
            .iter()
            .map(|id| PlannedCall {
                action: "POST /v3/{project_id}/keypairs/associate".into(),
                instances: vec![id.clone()],
            })
            .collect(),
    };
    Ok(Plan {
        provider: PROVIDER,
        operation: Operation::Bind,
        keypair: Some(request.keypair().clone()),
        requested: targets.requested(),
        duplicates: targets.duplicates(),
        calls,
    })
}

/// Why a call got no usable answer.
enum CallFailure {
    Transport(TransportError),
    /// Could not even authenticate (token or project lookup failed).
    Auth(Failure),
}

impl Inner {
    /// Authenticates (signing afresh, or with the current token) and sends one call;
    /// a 401 in password mode gets one new token and one more try.
    async fn request(&self, ctx: &RunContext, call: &KpsRequest) -> Result<HttpResponse, CallFailure> {
        let project = self.auth.project_id(&self.http, ctx).await.map_err(CallFailure::Auth)?;
        let url = call.url(&self.endpoint);
        let host = KpsRequest::host(&self.endpoint);
        let headers = call.headers(&self.http.options().user_agent);
        let mut refreshed = false;
        loop {
            let auth = self
                .auth
                .headers(&self.http, ctx, &call.signable(&host, &headers), Some(&project))
                .await
                .map_err(CallFailure::Auth)?;
            let mut request = self.http.inner().request(call.method.clone(), url.clone());
            for (name, value) in headers.iter().chain(auth.iter()).filter(|(n, _)| n != "Host") {
                request = request.header(name, value);
            }
            if let Some(body) = &call.body {
                request = request.body(body.clone());
            }
            let request = request
                .build()
                .map_err(|e| CallFailure::Transport(TransportError::NotSent(e.without_url().to_string())))?;
            ctx.record_call();
            let info = CallInfo {
                provider: PROVIDER,
                action: call.action,
                instances: call.instances,
                request_id_header: Some("x-request-id"),
            };
            let response = self.http.send(request, info).await.map_err(CallFailure::Transport)?;
            if response.status == 401 && self.auth.can_refresh() && !refreshed {
                // An expired token: get a new one and try once more. Never for AK/SK:
                // repeated signature failures lock the key.
                tracing::debug!("401 with a token; refreshing it once");
                self.auth.invalidate().await;
                refreshed = true;
                continue;
            }
            return Ok(response);
        }
    }
}

/// One submission's result for one VM.
enum Submitted {
    Task(String),
    Done(InstanceResult),
}

struct Executor<'a> {
    inner: &'a Inner,
    mode: Mode,
}

#[async_trait]
impl ChunkExecutor for Executor<'_> {
    async fn execute(&self, ctx: &RunContext, chunk: &Chunk) -> Result<Vec<(InstanceId, InstanceResult)>, CallError> {
        let project = self.inner.auth.project_id(&self.inner.http, ctx).await.map_err(|f| {
            if f.kind == FailureKind::Auth {
                ctx.abort(&f);
            }
            CallError::not_applied(f)
        })?;
        let mut pending: VecDeque<InstanceId> = chunk.instances.iter().cloned().collect();
        let mut results = Vec::with_capacity(chunk.instances.len());
        let mut polls = FuturesUnordered::new();
        while !pending.is_empty() || !polls.is_empty() {
            if pending.is_empty() || ctx.is_aborted() {
                if let Some(reason) = ctx.abort_reason() {
                    // Credentials were refused: send nothing more.
                    let failure = Failure { message: format!("not sent: {}", reason.message), ..reason };
                    results.extend(pending.drain(..).map(|id| (id, InstanceResult::Failed(failure.clone()))));
                }
                if let Some(done) = polls.next().await {
                    results.extend(done);
                }
                continue;
            }
            tokio::select! {
                Some(done) = polls.next(), if !polls.is_empty() => results.extend(done),
                permits = self.inner.window.acquire(pending.len(), self.inner.polling.coalesce()) => {
                    let vms: Vec<InstanceId> = pending.drain(..permits.len()).collect();
                    let submitted = self.submit(ctx, &project, &vms).await;
                    let mut running = Vec::new();
                    for ((id, outcome), permit) in submitted.into_iter().zip(permits) {
                        match outcome {
                            Submitted::Task(task_id) => running.push(RunningVm { id, task_id, _slot: permit }),
                            Submitted::Done(result) => results.push((id, result)),
                        }
                    }
                    if !running.is_empty() {
                        let project = project.clone();
                        polls.push(async move { self.poll_all(ctx, &project, running).await });
                    }
                }
            }
        }
        Ok(results)
    }
}

/// The 10-VM window: at most 10 VMs in key-pair operations at once, shared
/// by every run of one binder.
struct Window {
    slots: Arc<Semaphore>,
    /// One chunk gathers slots at a time, so slots freed together form one batch.
    gather: tokio::sync::Mutex<()>,
}

impl Window {
    fn new() -> Self {
        Self { slots: Arc::new(Semaphore::new(MAX_IN_OPERATION)), gather: tokio::sync::Mutex::new(()) }
    }

    /// Waits for one slot, then keeps taking slots freed within `coalesce`
    /// (tasks polled together end together) up to `max`.
    async fn acquire(&self, max: usize, coalesce: Duration) -> Vec<OwnedSemaphorePermit> {
        let _turn = self.gather.lock().await;
        let Ok(first) = self.slots.clone().acquire_owned().await else { return Vec::new() };
        let mut permits = vec![first];
        let until = Instant::now() + coalesce;
        while permits.len() < max {
            if let Ok(p) = self.slots.clone().try_acquire_owned() {
                permits.push(p);
                continue;
            }
            match tokio::time::timeout_at(until, self.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => permits.push(p),
                _ => break,
            }
        }
        permits
    }
}

impl Executor<'_> {
    /// Submits VMs (one batch call, or one call each) and says, for each VM in
    /// order, whether a task is running or the VM is done.
    async fn submit(&self, ctx: &RunContext, project: &str, vms: &[InstanceId]) -> Vec<(InstanceId, Submitted)> {
        match &self.mode {
            Mode::Batch { keypair, server } => {
                let body = BatchAssociateBody {
                    batch_keypairs: vms
                        .iter()
                        .map(|id| AssociateBody { keypair_name: keypair.clone(), server: server.for_vm(id) })
                        .collect(),
                };
                let response = self.inner.request(ctx, &KpsRequest::batch_associate(project, &body)).await;
                self.read_submission(ctx, project, vms, response, |resp| {
                    serde_json::from_slice::<BatchResponse>(&resp.body).map(|b| b.tasks)
                })
                .await
            }
            Mode::Single { keypair, server } => {
                let singles = vms.iter().map(|id| async move {
                    let body = AssociateBody { keypair_name: keypair.clone(), server: server.for_vm(id) };
                    let response = self.inner.request(ctx, &KpsRequest::associate(project, &body)).await;
                    self.read_single(ctx, project, id, response).await
                });
                futures::future::join_all(singles).await.into_iter().flatten().collect()
            }
            Mode::Unbind { server } => {
                let singles = vms.iter().map(|id| async move {
                    let body = DisassociateBody { server: server.for_vm(id) };
                    let response = self.inner.request(ctx, &KpsRequest::disassociate(project, &body)).await;
                    self.read_single(ctx, project, id, response).await
                });
                futures::future::join_all(singles).await.into_iter().flatten().collect()
            }
        }
    }

    async fn read_single(
        &self,
        ctx: &RunContext,
        project: &str,
        id: &InstanceId,
        response: Result<HttpResponse, CallFailure>,
    ) -> Vec<(InstanceId, Submitted)> {
        let ids = std::slice::from_ref(id);
        self.read_submission(ctx, project, ids, response, |resp| {
            serde_json::from_slice::<TaskResponse>(&resp.body).map(|mut t| {
                t.server_id.get_or_insert_with(|| id.as_str().to_string());
                vec![t]
            })
        })
        .await
    }

    /// Turns a submission's answer into one result per VM, checking running
    /// tasks when the answer is ambiguous rather than sending again.
    async fn read_submission(
        &self,
        ctx: &RunContext,
        project: &str,
        vms: &[InstanceId],
        response: Result<HttpResponse, CallFailure>,
        parse: impl Fn(&HttpResponse) -> Result<Vec<TaskResponse>, serde_json::Error>,
    ) -> Vec<(InstanceId, Submitted)> {
        let all = |result: InstanceResult| vms.iter().map(|id| (id.clone(), Submitted::Done(result.clone()))).collect();
        let response = match response {
            Ok(r) => r,
            Err(CallFailure::Auth(f)) => {
                if f.kind == FailureKind::Auth {
                    ctx.abort(&f);
                }
                return all(InstanceResult::Failed(f));
            }
            Err(CallFailure::Transport(e)) if !e.maybe_applied() => return all(InstanceResult::Retry(e.to_failure())),
            Err(CallFailure::Transport(e)) => return self.reconcile(ctx, project, vms, e.to_failure()).await,
        };
        if !response.is_success() {
            let (failure, advice) = failure_of(&response);
            if matches!(advice.kind, FailureKind::Auth | FailureKind::Permission) {
                ctx.abort(&failure);
            }
            return if advice.retryable {
                let wait = failure.retry_after.or((advice.kind == FailureKind::Throttled).then_some(THROTTLE_WAIT));
                all(InstanceResult::Retry(failure.with_retry_after(wait)))
            } else if advice.maybe_applied {
                self.reconcile(ctx, project, vms, failure).await
            } else {
                all(InstanceResult::Failed(failure))
            };
        }
        let request_id = response.header("x-request-id").map(str::to_string);
        let Ok(items) = parse(&response) else {
            let failure =
                Failure::new(FailureKind::ProviderError, format!("unreadable answer: {}", snippet(&response.body)))
                    .with_status(response.status)
                    .with_request_id(request_id);
            return self.reconcile(ctx, project, vms, failure).await;
        };
        vms.iter()
            .map(|id| {
                let item = items.iter().find(|t| t.server_id.as_deref() == Some(id.as_str()));
                let outcome = match item {
                    Some(t) if t.delivered() => Submitted::Task(t.task_id.clone().unwrap_or_default()),
                    Some(t) => {
                        let failure = vm_failure(t.error_code.as_deref(), t.error_msg.as_deref())
                            .with_status(response.status)
                            .with_request_id(request_id.clone());
                        Submitted::Done(InstanceResult::Failed(failure))
                    }
                    None => Submitted::Done(InstanceResult::Unknown(
                        Failure::new(
                            FailureKind::ProviderError,
                            "the answer did not mention this VM; its task may have started",
                        )
                        .with_status(response.status)
                        .with_request_id(request_id.clone()),
                    )),
                };
                (id.clone(), outcome)
            })
            .collect()
    }

    /// After an ambiguous submission: a running task on the VM is ours to poll;
    /// otherwise the outcome is unknown (never re-sent blindly).
    async fn reconcile(
        &self,
        ctx: &RunContext,
        project: &str,
        vms: &[InstanceId],
        cause: Failure,
    ) -> Vec<(InstanceId, Submitted)> {
        let running = self.running_tasks(ctx, project).await;
        vms.iter()
            .map(|id| {
                let task = running.as_ref().and_then(|r| {
                    r.tasks.iter().find(|t| t.server_id.as_deref() == Some(id.as_str())).and_then(|t| t.task_id.clone())
                });
                let outcome = match task {
                    Some(task_id) => Submitted::Task(task_id),
                    None => {
                        let checked = if running.is_some() {
                            "no running task found for this VM"
                        } else {
                            "running tasks could not be listed"
                        };
                        Submitted::Done(InstanceResult::Unknown(Failure {
                            message: format!("{}; {checked}, so it may or may not have been applied", cause.message),
                            ..cause.clone()
                        }))
                    }
                };
                (id.clone(), outcome)
            })
            .collect()
    }

    /// The running-task list, asked again through throttling and server errors
    /// (it is a read: safe to repeat).
    async fn running_tasks(&self, ctx: &RunContext, project: &str) -> Option<RunningTasks> {
        let mut wait = self.inner.polling.interval;
        for _ in 0..RECONCILE_ATTEMPTS {
            match self.inner.request(ctx, &KpsRequest::running_tasks(project, 1000, 0)).await {
                Ok(r) if r.is_success() => return serde_json::from_slice::<RunningTasks>(&r.body).ok(),
                Ok(r) => {
                    let (failure, advice) = failure_of(&r);
                    if !advice.retryable {
                        return None;
                    }
                    wait = wait.max(failure.retry_after.unwrap_or(THROTTLE_WAIT));
                }
                Err(CallFailure::Transport(_)) => {}
                Err(CallFailure::Auth(_)) => return None,
            }
            if Instant::now() + wait >= ctx.deadline() {
                return None;
            }
            tokio::time::sleep(wait).await;
        }
        None
    }

    /// Polls the tasks of one submission to SUCCESS or FAILED, all in the same
    /// rounds, within the task timeout and the run deadline. Each VM's slot in
    /// the window is freed when its task ends; slots freed in one round free
    /// together, so the next batch can be full.
    async fn poll_all(
        &self,
        ctx: &RunContext,
        project: &str,
        mut tasks: Vec<RunningVm>,
    ) -> Vec<(InstanceId, InstanceResult)> {
        let polling = self.inner.polling;
        let deadline = (Instant::now() + polling.task_timeout).min(ctx.deadline());
        let mut results = Vec::with_capacity(tasks.len());
        let mut last_error: HashMap<String, Failure> = HashMap::new();
        let mut wait = polling.first_delay;
        while !tasks.is_empty() {
            if Instant::now() + wait >= deadline {
                for vm in tasks {
                    let timeout = || {
                        let message = format!("task {} had not ended when the time to wait for it ran out", vm.task_id);
                        Failure::new(FailureKind::Timeout, message)
                    };
                    results
                        .push((vm.id, InstanceResult::Unknown(last_error.remove(&vm.task_id).unwrap_or_else(timeout))));
                }
                break;
            }
            tokio::time::sleep(wait).await;
            wait = polling.interval;
            let steps =
                futures::future::join_all(tasks.iter().map(|vm| self.poll_once(ctx, project, &vm.task_id))).await;
            let failed: Vec<&str> = tasks
                .iter()
                .zip(&steps)
                .filter_map(|(vm, step)| matches!(step, PollStep::Failed(_)).then_some(vm.task_id.as_str()))
                .collect();
            let mut reasons =
                if failed.is_empty() { HashMap::new() } else { self.failure_reasons(ctx, project, &failed).await };
            let mut still_running = Vec::with_capacity(tasks.len());
            for (vm, step) in tasks.into_iter().zip(steps) {
                match step {
                    PollStep::Pending => still_running.push(vm),
                    PollStep::Transient(failure) => {
                        wait = wait.max(failure.retry_after.unwrap_or_default());
                        last_error.insert(vm.task_id.clone(), failure);
                        still_running.push(vm);
                    }
                    PollStep::Done(result) => results.push((vm.id, result)),
                    PollStep::Failed(status) => {
                        let failure = reasons.remove(&vm.task_id).unwrap_or_else(|| {
                            let message = format!("task {} ended {status}; KPS listed no reason", vm.task_id);
                            Failure::new(FailureKind::ProviderError, message)
                        });
                        results.push((vm.id, InstanceResult::Failed(failure)));
                    }
                }
            }
            // Every VM whose task ended this round leaves the window here, together.
            tasks = still_running;
        }
        results
    }

    /// One status query of one task.
    async fn poll_once(&self, ctx: &RunContext, project: &str, task_id: &str) -> PollStep {
        let response = match self.inner.request(ctx, &KpsRequest::task(project, task_id)).await {
            Ok(r) => r,
            Err(CallFailure::Transport(e)) => return PollStep::Transient(e.to_failure()),
            Err(CallFailure::Auth(f)) => return PollStep::Done(InstanceResult::Unknown(f)),
        };
        if !response.is_success() {
            let (failure, advice) = failure_of(&response);
            if advice.retryable {
                let wait = failure.retry_after.unwrap_or(THROTTLE_WAIT);
                return PollStep::Transient(failure.with_retry_after(Some(wait)));
            }
            // The task was submitted; we just cannot see it.
            return PollStep::Done(InstanceResult::Unknown(failure));
        }
        let Ok(status) = serde_json::from_slice::<TaskStatus>(&response.body) else {
            let message = format!("unreadable task status: {}", snippet(&response.body));
            return PollStep::Transient(Failure::new(FailureKind::ProviderError, message));
        };
        match status.phase() {
            Phase::Success => PollStep::Done(InstanceResult::Bound),
            Phase::Failed => PollStep::Failed(status.task_status),
            Phase::Pending => {
                if !status.task_status.is_empty() && !status.task_status.contains('_') {
                    tracing::debug!(task_id, status = %status.task_status, "unrecognised task status; still polling");
                }
                PollStep::Pending
            }
        }
    }

    /// The reasons of FAILED tasks, from the failed-task list (paged).
    async fn failure_reasons(&self, ctx: &RunContext, project: &str, task_ids: &[&str]) -> HashMap<String, Failure> {
        let mut found = HashMap::new();
        for page in 0..10u32 {
            let Ok(response) = self.inner.request(ctx, &KpsRequest::failed_tasks(project, 1000, page * 1000)).await
            else {
                break;
            };
            let Some(list) =
                response.is_success().then(|| serde_json::from_slice::<FailedTasks>(&response.body).ok()).flatten()
            else {
                break;
            };
            for task in &list.tasks {
                let Some(id) = task.task_id.as_deref().filter(|id| task_ids.contains(id)) else { continue };
                let mut failure = vm_failure(task.task_error_code.as_deref(), task.task_error_msg.as_deref());
                failure.request_id = response.header("x-request-id").map(str::to_string);
                found.insert(id.to_string(), failure);
            }
            if found.len() == task_ids.len() || list.tasks.len() < 1000 {
                break;
            }
        }
        found
    }
}

/// A VM whose task runs, holding its slot in the window.
struct RunningVm {
    id: InstanceId,
    task_id: String,
    /// Held, never read: dropping it frees the VM's slot.
    _slot: OwnedSemaphorePermit,
}

/// What one status query said.
enum PollStep {
    Pending,
    Transient(Failure),
    Done(InstanceResult),
    Failed(String),
}
