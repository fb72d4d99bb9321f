//! [`VolcengineBinder`]: `AttachKeyPair`/`DetachKeyPair` behind the shared engine.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use keypair_binder_core::engine::{
    CallError, Chunk, ChunkExecutor, Engine, EngineConfig, InstanceResult, RunContext, RunSpec, derive_token,
};
use keypair_binder_core::http::{CallInfo, HttpClient, HttpResponse, TransportError};
use keypair_binder_core::request::RequestCommon;
use keypair_binder_core::{
    BindReport, BindRequest, Capabilities, Error, Failure, FailureKind, InstanceId, KeyPairRef, KeypairBinder,
    Operation, Plan, PlannedCall, PostCondition, RetryPolicy, UnbindRequest, ValidationError,
};
use url::Url;

use crate::config::{PROVIDER, VolcengineBuilder};
use crate::errors::{instance_failure, read_result};
use crate::request::{Invocation, prepare};
use crate::signer::Credentials;
use crate::wire::{self, Action, DescribeInstancesResult, Instance, MAX_INSTANCES_PER_CALL, OperationResult};

/// Default least wait before re-issuing an instance that is changing state.
const STATE_CHANGE_WAIT: Duration = Duration::from_secs(5);
/// Default least wait before re-issuing instances throttled one by one.
const THROTTLE_WAIT: Duration = Duration::from_millis(500);

/// Binds key pairs to Volcengine ECS instances, 100 per call, each call
/// carrying a `ClientToken` so that retries never apply anything twice.
#[derive(Clone)]
pub struct VolcengineBinder {
    inner: Arc<Inner>,
}

struct Inner {
    credentials: Credentials,
    region: String,
    endpoint: Url,
    http: HttpClient,
    engine: Engine,
    throttle_wait: Duration,
    state_change_wait: Duration,
    verify: bool,
    precheck: bool,
}

impl fmt::Debug for VolcengineBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolcengineBinder")
            .field("region", &self.inner.region)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("access_key", &self.inner.credentials.access_key)
            .finish_non_exhaustive()
    }
}

impl VolcengineBuilder {
    /// Checks the settings and builds the binder; nothing is sent.
    pub fn build(self) -> Result<VolcengineBinder, Error> {
        let (credentials, region, endpoint) = self.resolve()?;
        let http = HttpClient::for_provider(PROVIDER, self.client.http.clone())?;
        let engine = Engine::new(EngineConfig {
            provider: PROVIDER,
            max_per_call: MAX_INSTANCES_PER_CALL,
            default_concurrency: self.client.concurrency.unwrap_or(8),
            default_retry: self.client.retry.clone().unwrap_or_else(default_retry_policy),
            idempotency_tokens: true,
        });
        let inner = Inner {
            credentials,
            region,
            endpoint,
            http,
            engine,
            throttle_wait: self.throttle_wait.unwrap_or(THROTTLE_WAIT),
            state_change_wait: self.state_change_wait.unwrap_or(STATE_CHANGE_WAIT),
            verify: self.verify_bindings,
            precheck: self.precheck_states,
        };
        Ok(VolcengineBinder { inner: Arc::new(inner) })
    }
}

impl VolcengineBinder {
    /// A builder with nothing set.
    pub fn builder() -> VolcengineBuilder {
        VolcengineBuilder::new()
    }

    /// A binder configured from the environment and the CLI profile.
    pub fn from_env() -> Result<Self, Error> {
        VolcengineBuilder::from_env().build()
    }

    /// The region calls are signed for.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    fn check_common(common: &RequestCommon) -> Result<(), Error> {
        if common.credential.is_some() {
            return Err(Error::unsupported(
                PROVIDER,
                "credential",
                "Volcengine binds through its agent; no VM credential is used",
            ));
        }
        if common.ssh_port.is_some() {
            return Err(Error::unsupported(PROVIDER, "ssh_port", "Volcengine does not take an SSH port"));
        }
        Ok(())
    }

    async fn run(
        &self,
        operation: Operation,
        keypair: &KeyPairRef,
        common: &RequestCommon,
    ) -> Result<BindReport, Error> {
        let action = match operation {
            Operation::Bind => Action::AttachKeyPair,
            Operation::Unbind => Action::DetachKeyPair,
        };
        let retry = common.options.retry.as_ref().unwrap_or(&self.inner.engine.config().default_retry);
        let executor = KeypairCallExecutor { inner: &self.inner, action, keypair, max_attempts: retry.max_attempts() };
        let post_conditions = match operation {
            Operation::Bind => vec![PostCondition::RebootRequired, PostCondition::PasswordLoginDisabled],
            Operation::Unbind => vec![PostCondition::RebootRequired],
        };
        let spec = RunSpec { operation, keypair: Some(keypair), common, post_conditions };
        self.inner.engine.run(spec, &executor).await
    }
}

impl Inner {
    /// Signs (afresh, with the current time) and sends one GET call.
    async fn call(
        &self,
        ctx: &RunContext,
        action: Action,
        query: &[(String, String)],
        instances: usize,
        invocation: Option<Invocation<'_>>,
    ) -> Result<HttpResponse, TransportError> {
        let prepared = prepare(&self.endpoint, &self.region, &self.credentials, query, invocation, Utc::now());
        let mut request = self.http.inner().get(prepared.url).header("Accept", "application/json");
        for (name, value) in &prepared.headers {
            if name != "Host" {
                request = request.header(name, value);
            }
        }
        let request = request.build().map_err(|e| TransportError::NotSent(e.without_url().to_string()))?;
        ctx.record_call();
        let info = CallInfo { provider: PROVIDER, action: action.as_str(), instances, request_id_header: None };
        self.http.send(request, info).await
    }

    /// Instances as `DescribeInstances` shows them (at most 100 ids), by id.
    async fn describe(&self, ctx: &RunContext, ids: &[InstanceId]) -> Option<HashMap<String, Instance>> {
        let query = wire::describe_instances(ids, None);
        let response = self.call(ctx, Action::DescribeInstances, &query, ids.len(), None).await.ok()?;
        let (result, _) = read_result::<DescribeInstancesResult>(&response).ok()?;
        Some(result.instances.into_iter().map(|i| (i.instance_id.clone(), i)).collect())
    }

    /// Checks reported successes against `DescribeInstances`; a success the
    /// instance does not show becomes `Unknown`.
    async fn verify(
        &self,
        ctx: &RunContext,
        action: Action,
        keypair: &KeyPairRef,
        results: &mut [(InstanceId, InstanceResult)],
    ) {
        let bound: Vec<InstanceId> =
            results.iter().filter(|(_, r)| matches!(r, InstanceResult::Bound)).map(|(id, _)| id.clone()).collect();
        if bound.is_empty() {
            return;
        }
        let Some(shown) = self.describe(ctx, &bound).await else {
            tracing::warn!(
                instances = bound.len(),
                "could not verify bindings with DescribeInstances; keeping the reported results"
            );
            return;
        };
        for (id, result) in results.iter_mut().filter(|(_, r)| matches!(r, InstanceResult::Bound)) {
            let holds = |i: &Instance| match keypair {
                KeyPairRef::Name(name) => &i.key_pair_name == name,
                KeyPairRef::Id(kp) => &i.key_pair_id == kp,
            };
            let confirmed = match (action, shown.get(id.as_str())) {
                (Action::DetachKeyPair, Some(i)) => !holds(i),
                (_, Some(i)) => holds(i),
                (_, None) => false,
            };
            if !confirmed {
                let seen = shown.get(id.as_str()).map_or("no such instance".to_string(), |i| {
                    format!("key pair {:?}", if i.key_pair_name.is_empty() { "none" } else { &i.key_pair_name })
                });
                let message = format!("{} reported success, but DescribeInstances shows {seen}", action.as_str());
                *result = InstanceResult::Unknown(Failure::new(FailureKind::ProviderError, message));
            }
        }
    }
}

struct KeypairCallExecutor<'a> {
    inner: &'a Inner,
    action: Action,
    keypair: &'a KeyPairRef,
    max_attempts: u32,
}

impl KeypairCallExecutor<'_> {
    /// Checks states with `DescribeInstances` before attaching: instances
    /// that cannot take the key are settled without being sent, those changing
    /// state wait; returns the ones to send.
    async fn precheck(
        &self,
        ctx: &RunContext,
        chunk: &Chunk,
        results: &mut Vec<(InstanceId, InstanceResult)>,
    ) -> Vec<InstanceId> {
        let Some(shown) = self.inner.describe(ctx, &chunk.instances).await else {
            tracing::warn!(instances = chunk.instances.len(), "state pre-check failed; sending without it");
            return chunk.instances.clone();
        };
        let mut ready = Vec::with_capacity(chunk.instances.len());
        for id in &chunk.instances {
            let refuse = |kind, message: String| Failure::new(kind, format!("pre-check: {message}"));
            match shown.get(id.as_str()) {
                None => results.push((
                    id.clone(),
                    InstanceResult::Failed(refuse(FailureKind::InstanceNotFound, format!("{id} does not exist"))),
                )),
                Some(i) if i.os_type.eq_ignore_ascii_case("windows") => results.push((
                    id.clone(),
                    InstanceResult::Failed(refuse(
                        FailureKind::UnsupportedImage,
                        "key pairs cannot be used with Windows".into(),
                    )),
                )),
                Some(i) if wire::is_transitional(&i.status) => {
                    let failure = refuse(FailureKind::InvalidState, format!("instance is {}", i.status))
                        .retryable(true)
                        .with_retry_after(Some(self.inner.state_change_wait));
                    results.push((id.clone(), InstanceResult::Retry(failure)));
                }
                Some(i) if !matches!(i.status.to_ascii_uppercase().as_str(), "RUNNING" | "STOPPED") => results.push((
                    id.clone(),
                    InstanceResult::Failed(refuse(FailureKind::InvalidState, format!("instance is {}", i.status))),
                )),
                Some(_) => ready.push(id.clone()),
            }
        }
        ready
    }
}

#[async_trait]
impl ChunkExecutor for KeypairCallExecutor<'_> {
    async fn execute(&self, ctx: &RunContext, chunk: &Chunk) -> Result<Vec<(InstanceId, InstanceResult)>, CallError> {
        let mut results = Vec::with_capacity(chunk.instances.len());
        let (instances, token) = if self.inner.precheck {
            let ready = self.precheck(ctx, chunk, &mut results).await;
            if ready.is_empty() {
                return Ok(results);
            }
            // Fewer instances make another call: its own token, the same on every retry of it.
            let token = match &chunk.token {
                Some(t) if ready.len() < chunk.instances.len() => {
                    let operation =
                        if self.action == Action::DetachKeyPair { Operation::Unbind } else { Operation::Bind };
                    Some(derive_token(t, operation, Some(self.keypair), &ready, 0))
                }
                other => other.clone(),
            };
            (ready, token)
        } else {
            (chunk.instances.clone(), chunk.token.clone())
        };
        let query = wire::keypair_call(self.action, &instances, self.keypair, token.as_deref());
        let invocation =
            token.as_deref().map(|id| Invocation { id, attempt: chunk.attempt + 1, max_attempts: self.max_attempts });
        let response = self.inner.call(ctx, self.action, &query, instances.len(), invocation).await.map_err(|e| {
            // Every call carries a ClientToken, so resending after an
            // ambiguous failure replays the stored result instead of applying twice.
            CallError { failure: e.to_failure(), maybe_applied: e.maybe_applied() }
        })?;
        let (result, request_id) = read_result::<OperationResult>(&response)?;
        tracing::debug!(
            request_id = request_id.as_deref().unwrap_or(""),
            details = result.details.len(),
            "operation details"
        );

        let mut changing_state = Vec::new();
        for detail in result.details {
            let Ok(id) = InstanceId::new(detail.instance_id) else { continue };
            let outcome = match detail.error {
                None => InstanceResult::Bound,
                Some(error) => {
                    let failure = instance_failure(&error.code, &error.message)
                        .with_status(response.status)
                        .with_request_id(request_id.clone());
                    match error.code.as_str() {
                        "InvalidInstanceStatus" => {
                            changing_state.push((id, failure));
                            continue;
                        }
                        _ if failure.retryable => {
                            InstanceResult::Retry(failure.with_retry_after(Some(self.inner.throttle_wait)))
                        }
                        _ => InstanceResult::Failed(failure),
                    }
                }
            };
            results.push((id, outcome));
        }
        if !changing_state.is_empty() {
            let ids: Vec<InstanceId> = changing_state.iter().map(|(id, _)| id.clone()).collect();
            let shown = self.inner.describe(ctx, &ids).await;
            for (id, failure) in changing_state {
                let status = shown.as_ref().and_then(|s| s.get(id.as_str())).map(|i| &i.status);
                let result = match status {
                    Some(status) if wire::is_transitional(status) => InstanceResult::Retry(
                        Failure { message: format!("{} (instance is {status})", failure.message), ..failure }
                            .retryable(true)
                            .with_retry_after(Some(self.inner.state_change_wait)),
                    ),
                    Some(status) => InstanceResult::Failed(Failure {
                        message: format!("{} (instance is {status})", failure.message),
                        ..failure
                    }),
                    None => InstanceResult::Failed(failure),
                };
                results.push((id, result));
            }
        }
        if self.inner.verify {
            self.inner.verify(ctx, self.action, self.keypair, &mut results).await;
        }
        Ok(results)
    }
}

#[async_trait]
impl KeypairBinder for VolcengineBinder {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            provider: PROVIDER,
            max_instances_per_call: MAX_INSTANCES_PER_CALL,
            async_tasks: false,
            idempotency_token: true,
            keypair_by_id: true,
            post_conditions: vec![PostCondition::RebootRequired, PostCondition::PasswordLoginDisabled],
        }
    }

    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error> {
        check_bind(&request)?;
        self.run(Operation::Bind, request.keypair(), request.common()).await
    }

    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error> {
        Self::check_common(request.common())?;
        let keypair = request.keypair().ok_or(Error::Validation(ValidationError::NoKeyPair))?;
        self.run(Operation::Unbind, keypair, request.common()).await
    }

    fn plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }
}

/// The calls a bind would make, without a binder or any network: one
/// `AttachKeyPair` per 100 instances.
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    check_bind(request)?;
    let targets = &request.common().targets;
    let calls = targets
        .instances()
        .chunks(MAX_INSTANCES_PER_CALL)
        .map(|ids| PlannedCall { action: Action::AttachKeyPair.as_str().to_string(), instances: ids.to_vec() })
        .collect();
    Ok(Plan {
        provider: PROVIDER,
        operation: Operation::Bind,
        keypair: Some(request.keypair().clone()),
        requested: targets.requested(),
        duplicates: targets.duplicates(),
        calls,
    })
}

/// Options of a bind that Volcengine cannot honour.
fn check_bind(request: &BindRequest) -> Result<(), Error> {
    VolcengineBinder::check_common(request.common())?;
    if request.disable_password().is_some() {
        return Err(Error::unsupported(
            PROVIDER,
            "disable_password",
            "Volcengine always disables password login on attach",
        ));
    }
    Ok(())
}

/// Default retry policy for Volcengine: the SDK's 300 ms base, more patience.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        initial_backoff: Duration::from_millis(300),
        max_backoff: Duration::from_secs(20),
        ..RetryPolicy::default()
    }
}
