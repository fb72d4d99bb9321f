//! [`TencentBinder`]: CVM `AssociateInstancesKeyPairs` /
//! `DisassociateInstancesKeyPairs` as pure parts for the shared engine.
//!
//! The calls validate all-or-nothing and start an asynchronous operation per
//! instance, identified by the call's `RequestId`: the engine follows it
//! through `DescribeInstances` (`LatestOperationRequestId`/`State`). No
//! idempotency token exists: a call that may have started is settled by
//! whether the instances' latest operation moved since it was read before
//! sending, never by sending it again blindly.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keypair_binder_core::http::{HttpClient, HttpResponse};
use keypair_binder_core::kit::{
    Answer, Call, CallAnswer, CloudBinder, Credential, CredentialProblem, Engine, InstanceView, Net, OutgoingRequest,
    Polling, Profile, Provider, RateLimit, Readiness, Refusals, RunOf, STATE_CHANGE_WAIT, Signer, StateQueries,
    StoredKeypair, TaskAnswer, TaskQueries, TaskRef, shared_id,
};
use keypair_binder_core::request::RequestCommon;
use keypair_binder_core::{
    BindRequest, Capabilities, Error, Failure, FailureKind, InstanceId, KeyPairRef, Operation, Plan, PostCondition,
    PublicKey, RetryPolicy, UnbindRequest,
};
use url::Url;

use crate::config::{PROVIDER, TencentBuilder};
use crate::errors::{Class, Scope, failure_of, named_instances};
use crate::request::{CvmSigner, unsigned};
use crate::wire::{
    self, Action, DESCRIBE_LIMIT, DescribeInstancesCall, DescribeKeyPairsCall, Filter, Instance, InstancesAnswer,
    KeyPairsAnswer, KeyPairsCall, MAX_IDS_PER_CALL,
};

/// First wait before a retry: throttling starts at a second (the SDK retries nothing unless asked).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Default time an ambiguous call's instances are watched (Terraform waits 10 s; the spec says ≥ 30 s).
const DEFAULT_SETTLE_GRACE: Duration = Duration::from_secs(30);
/// Longest one instance's operation may run before it is reported unknown.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Documented per-action limits: key-pair calls, and `DescribeInstances`.
const SUBMIT_RATE: u32 = 10;
const READ_RATE: u32 = 40;

/// Binds key pairs to Tencent Cloud CVM instances, 100 a call.
#[derive(Clone)]
pub struct TencentBinder {
    inner: Arc<Inner>,
}

struct Inner {
    region: String,
    endpoint: Url,
    engine: Engine,
    profile: Profile,
}

impl fmt::Debug for TencentBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentBinder")
            .field("region", &self.inner.region)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("credentials", &self.inner.engine.credential_source())
            .finish_non_exhaustive()
    }
}

impl TencentBuilder {
    /// Checks the settings and builds the binder; nothing is sent.
    pub fn build(self) -> Result<TencentBinder, Error> {
        let (credentials, region, endpoint) = self.resolve()?;
        let http = HttpClient::for_provider(PROVIDER, &self.client, &[&endpoint])?;
        let profile = Profile::new(PROVIDER, MAX_IDS_PER_CALL)
            .concurrency(self.client.concurrency.unwrap_or(4))
            .retry(self.client.retry_or(RetryPolicy::cloud(FIRST_BACKOFF)))
            .precheck_states(true)
            .converge(true)
            .polling(Polling::adaptive(OPERATION_TIMEOUT))
            .settle_grace(self.settle_grace.unwrap_or(DEFAULT_SETTLE_GRACE));
        let per_second = |n: u32| RateLimit::per_second(n.try_into().unwrap_or(std::num::NonZeroU32::MIN));
        let engine = Engine::new(Arc::new(http), credentials)
            .with_rate_limit(self.client.rate_limit)
            .with_pacing(per_second(SUBMIT_RATE), per_second(READ_RATE));
        let inner = Inner { region, endpoint, engine, profile };
        Ok(TencentBinder { inner: Arc::new(inner) })
    }
}

impl TencentBinder {
    /// A builder with nothing set.
    pub fn builder() -> TencentBuilder {
        TencentBuilder::new()
    }

    /// A binder configured from the environment and the profile files.
    pub fn from_env() -> Result<Self, Error> {
        TencentBuilder::from_env().build()
    }

    /// The region calls name.
    pub fn region(&self) -> &str {
        &self.inner.region
    }
}

/// What CVM does not take.
const REFUSALS: Refusals = Refusals::NONE
    .credential("CVM binds without the VM's credential")
    .ssh_port("CVM does not take an SSH port")
    .client_token("AssociateInstancesKeyPairs takes no idempotency token")
    .disable_password("AssociateInstancesKeyPairs always disables password login")
    .unbind_needs_keypair();

impl TencentBinder {
    fn run<'a>(
        &'a self,
        operation: Operation,
        keypair: &'a KeyPairRef,
        common: &RequestCommon,
    ) -> RunOf<TencentRun<'a>> {
        let action = if operation == Operation::Bind {
            Action::AssociateInstancesKeyPairs
        } else {
            Action::DisassociateInstancesKeyPairs
        };
        let force_stop = common.force_stop;
        let run = TencentRun { inner: &self.inner, action, operation, keypair, force_stop, key_id: None };
        RunOf::new(run, post_conditions(operation, force_stop))
    }
}

impl CloudBinder for TencentBinder {
    type Run<'a> = TencentRun<'a>;
    const PROVIDER: &'static str = PROVIDER;
    const REFUSALS: Refusals = REFUSALS;

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn cloud_capabilities(&self) -> Capabilities {
        Capabilities::new(PROVIDER, MAX_IDS_PER_CALL).post_conditions(post_conditions(Operation::Bind, false))
    }

    fn bind_run<'a>(&'a self, request: &'a BindRequest) -> Result<RunOf<TencentRun<'a>>, Error> {
        Ok(self.run(Operation::Bind, request.keypair(), request.common()))
    }

    fn unbind_run<'a>(
        &'a self,
        request: &'a UnbindRequest,
        keypair: Option<&'a KeyPairRef>,
    ) -> Result<RunOf<TencentRun<'a>>, Error> {
        let keypair = keypair.map_or_else(|| request.required_keypair(), Ok)?;
        Ok(self.run(Operation::Unbind, keypair, request.common()))
    }

    fn bind_plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }

    fn import_run<'a>(&'a self, keypair: &'a KeyPairRef) -> Option<TencentRun<'a>> {
        let (action, operation) = (Action::ImportKeyPair, Operation::Bind);
        Some(TencentRun { inner: &self.inner, action, operation, keypair, force_stop: false, key_id: None })
    }
}

/// The fields of a read's answer and its request id, or why there are none:
/// CVM's own error, or a failure worth asking again (no answer, unreadable).
fn read<T: serde::de::DeserializeOwned + Default>(
    response: &HttpResponse,
    action: Action,
) -> Result<(T, Option<String>), Failure> {
    let action = action.as_str();
    if !response.is_success() {
        return Err(Failure::new(FailureKind::ProviderError, format!("{action} was not answered"))
            .with_status(response.status)
            .retryable(true));
    }
    let answer = wire::parse::<T>(&response.body).ok_or_else(|| {
        Failure::new(FailureKind::ProviderError, format!("unreadable {action} answer")).retryable(true)
    })?;
    match answer.error {
        Some(error) => Err(failure_of(&error, answer.request_id).0),
        None => Ok((answer.body, answer.request_id)),
    }
}

fn post_conditions(operation: Operation, force_stop: bool) -> Vec<PostCondition> {
    let mut post = Vec::new();
    if operation == Operation::Bind {
        // CVM documents that a key bound before stops working.
        post.extend([PostCondition::PasswordLoginDisabled, PostCondition::ExistingKeyPairReplaced]);
    }
    post.push(PostCondition::StartRequired);
    if force_stop {
        post.push(PostCondition::RunningInstancesRestarted);
    }
    post
}

/// One run's pure parts.
#[derive(Clone)]
pub struct TencentRun<'a> {
    inner: &'a Inner,
    action: Action,
    operation: Operation,
    keypair: &'a KeyPairRef,
    force_stop: bool,
    /// The key id the calls carry, found by `prepare` before the first call.
    key_id: Option<String>,
}

impl TencentRun<'_> {
    fn request(&self, action: Action, body: &impl serde::Serialize) -> Result<OutgoingRequest, Failure> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Failure::new(FailureKind::InvalidRequest, format!("cannot encode the call: {e}")))?;
        unsigned(&self.inner.endpoint, action, &self.inner.region, body)
    }

    fn key_id(&self) -> Result<&str, Failure> {
        self.key_id
            .as_deref()
            .ok_or_else(|| Failure::new(FailureKind::KeyPairNotFound, "the key pair was not resolved"))
    }

    fn describe(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        let ids: Vec<&str> = instances.iter().map(InstanceId::as_str).collect();
        let call = DescribeInstancesCall { instance_ids: &ids, limit: DESCRIBE_LIMIT };
        Ok(self.request(Action::DescribeInstances, &call)?.with_instances(instances.len()))
    }

    /// Whether the instance holds the run's key pair.
    fn holds(&self, instance: &Instance) -> bool {
        self.key_id.as_ref().is_some_and(|key| instance.key_ids().iter().any(|k| k == key))
    }

    /// Whether the operation's effect shows: the key there after a bind, gone after an unbind.
    fn applied(&self, instance: &Instance) -> bool {
        self.holds(instance) == (self.operation == Operation::Bind)
    }

    /// Where an instance's operation is, from its view.
    fn task_answer(&self, followed: &TaskRef<'_>, instance: Option<&Instance>) -> TaskAnswer {
        let task = followed.task;
        let Some(instance) = instance else {
            return TaskAnswer::Lost(Failure::new(FailureKind::InstanceNotFound, "the instance is no longer listed"));
        };
        let latest = instance.latest_operation_request_id.as_deref().unwrap_or("");
        if latest != task {
            if followed.before.unwrap_or("") == latest {
                // CVM shows a new operation late.
                return TaskAnswer::Running;
            }
            // Someone else's operation came after ours: only the key list tells.
            return if self.applied(instance) {
                TaskAnswer::Succeeded
            } else {
                TaskAnswer::Lost(Failure::new(
                    FailureKind::ProviderError,
                    format!("operation {latest} replaced this run's {task} before it could be read"),
                ))
            };
        }
        match instance.latest_operation_state.as_deref() {
            Some("SUCCESS") if self.applied(instance) => TaskAnswer::Succeeded,
            Some("SUCCESS") => TaskAnswer::Lost(Failure::new(
                FailureKind::ProviderError,
                format!("the operation succeeded, but the instance's key ids are {:?}", instance.key_ids()),
            )),
            Some("FAILED") => {
                let message = instance.latest_operation_error_msg.clone().filter(|m| !m.is_empty());
                TaskAnswer::Failed(Some(
                    Failure::new(
                        FailureKind::ProviderError,
                        message.unwrap_or_else(|| "the operation failed; CVM gave no reason".into()),
                    )
                    .with_code("LatestOperationState.FAILED")
                    .with_request_id(Some(task.to_string())),
                ))
            }
            _ => TaskAnswer::Running,
        }
    }

    /// Instances of a `DescribeInstances` answer, or why there are none.
    fn instances(response: &HttpResponse) -> Result<Vec<Instance>, Failure> {
        read::<InstancesAnswer>(response, Action::DescribeInstances).map(|(answer, _)| answer.instance_set)
    }

    fn readiness(&self, instance: &Instance) -> Readiness {
        let state = instance.instance_state.as_deref().unwrap_or("UNKNOWN");
        if instance.os_name.as_deref().is_some_and(|os| os.to_ascii_lowercase().contains("windows")) {
            return Readiness::windows();
        }
        if instance.latest_operation_state.as_deref() == Some("OPERATING") {
            let what = instance.latest_operation.as_deref().unwrap_or("another operation");
            return Readiness::changing(format!("{what} is still running on the instance"), STATE_CHANGE_WAIT);
        }
        match state {
            "STOPPED" if instance.stop_charging_mode.as_deref() == Some("STOP_CHARGING") => Readiness::refused(
                "the instance is stopped without charging (StopChargingMode=STOP_CHARGING); start it, or stop it with charging kept",
            ),
            "STOPPED" => Readiness::Ready,
            "RUNNING" if self.force_stop => Readiness::Ready,
            "RUNNING" => Readiness::refused(
                "the instance is RUNNING and CVM must stop it for the change: stop it first, or consent to a forced stop and restart (--force-stop)",
            ),
            "PENDING" | "STARTING" | "STOPPING" | "REBOOTING" => {
                Readiness::changing(format!("the instance is {state}"), STATE_CHANGE_WAIT)
            }
            other => Readiness::refused(format!("the instance is {other}")),
        }
    }
}

#[async_trait]
impl Provider for TencentRun<'_> {
    fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    fn keypair_read(&self, name: &str) -> Result<OutgoingRequest, Failure> {
        let filters = vec![Filter { name: "key-name", values: vec![name] }];
        self.request(
            Action::DescribeKeyPairs,
            &DescribeKeyPairsCall { key_ids: &[], filters, limit: Some(DESCRIBE_LIMIT) },
        )
    }

    fn keypair_found(&self, response: &HttpResponse, name: &str) -> Result<Option<StoredKeypair>, Failure> {
        let (answer, _) = read::<KeyPairsAnswer>(response, Action::DescribeKeyPairs)?;
        // The name filter may match loosely: the name must be exact.
        Ok(answer
            .key_pair_set
            .into_iter()
            .find(|k| k.key_name == name)
            .map(|k| StoredKeypair::new(Some(k.key_id), k.public_key, None)))
    }

    fn keypair_import(&self, name: &str, key: &PublicKey) -> Result<OutgoingRequest, Failure> {
        let line = key.openssh();
        self.request(
            Action::ImportKeyPair,
            &wire::ImportKeyPairCall { key_name: name, project_id: 0, public_key: &line },
        )
    }

    fn keypair_imported(&self, response: &HttpResponse, _name: &str) -> Result<StoredKeypair, Failure> {
        // CVM's errors (a duplicate name or key, a malformed key) are settled by the read that follows.
        let (answer, _) = read::<wire::ImportKeyPairAnswer>(response, Action::ImportKeyPair)?;
        Ok(StoredKeypair::new(Some(answer.key_id), None, None))
    }

    /// Finds the key id once (`DescribeKeyPairs`): by id it must exist, by
    /// name exactly one key pair must carry it. The run goes on with it.
    async fn prepare<'s>(&'s self, net: &dyn Net) -> Result<Option<Box<dyn Provider + 's>>, Failure> {
        let wanted = [self.keypair.as_str()];
        let by_id = matches!(self.keypair, KeyPairRef::Id(_));
        let call = if by_id {
            DescribeKeyPairsCall { key_ids: &wanted, filters: Vec::new(), limit: None }
        } else {
            DescribeKeyPairsCall {
                key_ids: &[],
                filters: vec![Filter { name: "key-name", values: wanted.to_vec() }],
                limit: Some(DESCRIBE_LIMIT),
            }
        };
        let request = self.request(Action::DescribeKeyPairs, &call)?;
        let response = net.send(request).await.map_err(|f| {
            let message = format!("DescribeKeyPairs failed: {}", f.message);
            f.with_message(message)
        })?;
        let (answer, request_id) = read::<KeyPairsAnswer>(&response, Action::DescribeKeyPairs)?;
        // The name filter may match loosely: the name must be exact.
        let found: Vec<_> = answer
            .key_pair_set
            .iter()
            .filter(|k| if by_id { k.key_id == wanted[0] } else { k.key_name == wanted[0] })
            .collect();
        match found.as_slice() {
            [key] => Ok(Some(Box::new(TencentRun { key_id: Some(key.key_id.clone()), ..self.clone() }))),
            [] => Err(Failure::new(
                FailureKind::KeyPairNotFound,
                format!("no key pair {} in {}", self.keypair.as_str(), self.inner.region),
            )
            .with_request_id(request_id)),
            _ => Err(Failure::new(
                FailureKind::InvalidRequest,
                format!("several key pairs are named {}: pass its id (--keypair-id)", self.keypair.as_str()),
            )),
        }
    }

    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        CvmSigner.sign(request, credential.access_key()?, now);
        Ok(())
    }

    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem> {
        let error = wire::head(&response.body)?.error?;
        let (failure, class, _) = failure_of(&error, None);
        if class != Class::Credentials {
            return None;
        }
        // A bad or expired STS token: one fresh credential and one more try, when the source can give one.
        Some(if error.code == "AuthFailure.TokenFailure" {
            CredentialProblem::Expired(failure)
        } else {
            CredentialProblem::Refused(failure)
        })
    }

    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure> {
        let ids: Vec<&str> = call.instances.iter().map(InstanceId::as_str).collect();
        let key = [self.key_id()?];
        let body = KeyPairsCall { instance_ids: &ids, key_ids: &key, force_stop: self.force_stop.then_some(true) };
        Ok(self.request(self.action, &body)?.with_instances(call.instances.len()))
    }

    fn classify(&self, call: &Call<'_>, response: &HttpResponse) -> CallAnswer {
        // A status other than 200 is not CVM's answer: the call may have started.
        let maybe = |message: &str| {
            CallAnswer::All(Answer::Ambiguous(
                Failure::new(FailureKind::ProviderError, message).with_status(response.status).retryable(true),
            ))
        };
        if !response.is_success() {
            return maybe("the call was not answered by CVM; its operation may have started");
        }
        let Some(answer) = wire::head(&response.body) else {
            return maybe("unreadable answer; the call's operation may have started");
        };
        let Some(error) = answer.error else {
            return match answer.request_id.filter(|r| !r.is_empty()) {
                Some(request_id) => CallAnswer::All(Answer::Task(request_id)),
                None => maybe("the answer carried no request id to follow; the operation may have started"),
            };
        };
        let (failure, class, scope) = failure_of(&error, answer.request_id);
        let whole = |failure: Failure| match class {
            Class::Retry if scope == Scope::Instances => Answer::CheckState(failure),
            Class::Retry => Answer::Retry(failure),
            Class::Fail | Class::Credentials => Answer::Failed(failure),
            // Ambiguous, or a class this reading does not know: it may have started.
            _ => Answer::Ambiguous(failure),
        };
        if scope == Scope::Request || call.instances.len() == 1 {
            return CallAnswer::All(whole(failure));
        }
        // All-or-nothing: nothing started. Settle the instances the message
        // names, and send the rest again without them.
        let ids: Vec<&str> = call.instances.iter().map(InstanceId::as_str).collect();
        let named = named_instances(&error.message, &ids);
        if named.is_empty() {
            return CallAnswer::All(match class {
                // Which one is busy shows in a state query.
                Class::Retry => Answer::CheckState(failure),
                _ => Answer::Split(failure),
            });
        }
        let innocent = failure.clone().with_message(format!(
            "not started: the call was refused for {} ({}); sent again without it",
            named.join(", "),
            error.code
        ));
        let answers = call
            .instances
            .iter()
            .map(|id| {
                // One at fault that only has to wait (busy, changing state) is checked and sent again.
                let answer = if named.contains(&id.as_str()) {
                    whole(failure.clone())
                } else {
                    Answer::Resend(innocent.clone())
                };
                (id.clone(), answer)
            })
            .collect();
        CallAnswer::Instances(answers)
    }

    fn tasks(&self) -> Option<&dyn TaskQueries> {
        Some(self)
    }

    fn states(&self) -> Option<&dyn StateQueries> {
        Some(self)
    }
}

impl TaskQueries for TencentRun<'_> {
    fn query(&self, task: &TaskRef<'_>) -> Result<OutgoingRequest, Failure> {
        self.describe(std::slice::from_ref(task.instance))
    }

    fn read(&self, task: &TaskRef<'_>, response: &HttpResponse) -> TaskAnswer {
        match Self::instances(response) {
            Ok(instances) => self.task_answer(task, instances.first()),
            Err(f) => TaskAnswer::Transient(f),
        }
    }

    fn max_per_query(&self) -> usize {
        MAX_IDS_PER_CALL
    }

    fn query_many(&self, tasks: &[TaskRef<'_>]) -> Result<OutgoingRequest, Failure> {
        let ids: Vec<InstanceId> = tasks.iter().map(|t| t.instance.clone()).collect();
        self.describe(&ids)
    }

    fn read_many(&self, tasks: &[TaskRef<'_>], response: &HttpResponse) -> Vec<TaskAnswer> {
        match Self::instances(response) {
            Ok(instances) => {
                let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.instance_id.as_str(), i)).collect();
                tasks.iter().map(|t| self.task_answer(t, by_id.get(t.instance.as_str()).copied())).collect()
            }
            Err(f) => tasks.iter().map(|_| TaskAnswer::Transient(f.clone())).collect(),
        }
    }
}

impl StateQueries for TencentRun<'_> {
    fn max_per_query(&self) -> usize {
        MAX_IDS_PER_CALL
    }

    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        self.describe(instances)
    }

    fn read(&self, queried: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure> {
        let instances = Self::instances(response)?;
        Ok(instances
            .into_iter()
            .enumerate()
            .filter_map(|(at, i)| {
                let id = shared_id(queried, &i.instance_id, at)?;
                let (name, key) = if self.holds(&i) {
                    let name = matches!(self.keypair, KeyPairRef::Name(_)).then(|| self.keypair.as_str().to_string());
                    (name, self.key_id.clone())
                } else {
                    (None, i.key_ids().first().cloned())
                };
                let status = i.instance_state.clone().unwrap_or_default();
                Some(
                    InstanceView::new(id, status, self.readiness(&i))
                        .with_keypair(name, key)
                        .with_latest_operation(i.latest_operation_request_id.clone()),
                )
            })
            .collect())
    }
}

/// The calls a bind would make, without a binder or any network: one
/// `AssociateInstancesKeyPairs` per 100 instances (after one
/// `DescribeKeyPairs` and the `DescribeInstances` pre-checks).
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    REFUSALS.check_bind(PROVIDER, request)?;
    Ok(Plan::of_bind(PROVIDER, request, MAX_IDS_PER_CALL, Action::AssociateInstancesKeyPairs.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binder() -> TencentBinder {
        TencentBinder::builder()
            .credentials("AKIDtest", "secret")
            .region("ap-guangzhou")
            .endpoint("http://127.0.0.1:9")
            .build()
            .unwrap()
    }

    fn run<'a>(binder: &'a TencentBinder, keypair: &'a KeyPairRef) -> TencentRun<'a> {
        TencentRun {
            inner: &binder.inner,
            action: Action::AssociateInstancesKeyPairs,
            operation: Operation::Bind,
            keypair,
            force_stop: false,
            key_id: Some("skey-aaaaaaaa".into()),
        }
    }

    fn ids(list: &[&str]) -> Vec<InstanceId> {
        list.iter().map(|id| InstanceId::new(*id).unwrap()).collect()
    }

    fn error(code: &str, message: &str) -> HttpResponse {
        let body = serde_json::json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "r-1"}});
        HttpResponse::new(200, body.to_string())
    }

    fn answers(answer: CallAnswer) -> Vec<(String, Answer)> {
        match answer {
            CallAnswer::Instances(list) => list.into_iter().map(|(id, a)| (id.as_str().to_string(), a)).collect(),
            CallAnswer::All(a) => vec![("*".into(), a)],
            other => panic!("an answer this test does not know: {other:?}"),
        }
    }

    #[test]
    fn all_or_nothing_refusals_settle_the_named_and_resend_the_rest() {
        let (binder, kp) = (binder(), KeyPairRef::name("kp").unwrap());
        let run = run(&binder, &kp);
        let instances = ids(&["ins-aaaaaaa1", "ins-aaaaaaa2", "ins-aaaaaaa3"]);
        let call = Call::new(&instances, None, 1, 3);
        let windows = error("UnsupportedOperation.InstanceOsWindows", "The instance `ins-aaaaaaa2` is Windows.");
        let got = answers(run.classify(&call, &windows));
        assert!(matches!(&got[0].1, Answer::Resend(_)), "{got:?}");
        assert!(matches!(&got[1].1, Answer::Failed(f) if f.kind == FailureKind::UnsupportedImage && !f.retryable));
        assert!(matches!(&got[2].1, Answer::Resend(_)));

        // Busy: the one named is checked and sent again, not failed.
        let busy = error("OperationDenied.InstanceOperationInProgress", "ins-aaaaaaa3 has an operation running");
        let got = answers(run.classify(&call, &busy));
        assert!(matches!(&got[2].1, Answer::CheckState(_)), "{got:?}");
        assert!(matches!(&got[0].1, Answer::Resend(_)));

        // Nobody named: halve the call.
        let unnamed = error("InvalidInstance.NotSupported", "An instance does not support this.");
        assert!(matches!(run.classify(&call, &unnamed), CallAnswer::All(Answer::Split(_))));
        // Alone, the refusal is its own.
        let one = ids(&["ins-aaaaaaa1"]);
        assert!(matches!(run.classify(&Call::new(&one, None, 1, 3), &unnamed), CallAnswer::All(Answer::Failed(_))));
        // A key-level refusal fails the whole call.
        let key = error("InvalidKeyPairId.NotFound", "skey-aaaaaaaa does not exist; ins-aaaaaaa1");
        assert!(matches!(run.classify(&call, &key), CallAnswer::All(Answer::Failed(_))));
    }

    #[test]
    fn accepted_calls_are_followed_and_unclear_ones_are_ambiguous() {
        let (binder, kp) = (binder(), KeyPairRef::name("kp").unwrap());
        let run = run(&binder, &kp);
        let instances = ids(&["ins-aaaaaaa1", "ins-aaaaaaa2"]);
        let call = Call::new(&instances, None, 1, 3);
        let ok = HttpResponse::new(200, r#"{"Response": {"RequestId": "6ef60bec-0242"}}"#);
        assert_eq!(run.classify(&call, &ok), CallAnswer::All(Answer::Task("6ef60bec-0242".into())));
        for response in [
            error("InternalError", "internal error"),
            HttpResponse::new(502, "<html>bad gateway</html>"),
            HttpResponse::new(200, "{\"Respo"),
            HttpResponse::new(200, r#"{"Response": {}}"#),
        ] {
            assert!(matches!(run.classify(&call, &response), CallAnswer::All(Answer::Ambiguous(_))));
        }
        let throttled = error("RequestLimitExceeded", "slow down");
        assert!(
            matches!(run.classify(&call, &throttled), CallAnswer::All(Answer::Retry(f)) if f.kind == FailureKind::Throttled)
        );
        let refused = error("AuthFailure.SignatureFailure", "bad signature");
        assert!(matches!(run.credential_problem(&refused), Some(CredentialProblem::Refused(_))));
        let expired = error("AuthFailure.TokenFailure", "the token has expired");
        assert!(matches!(run.credential_problem(&expired), Some(CredentialProblem::Expired(_))));
        assert!(run.credential_problem(&throttled).is_none());
    }

    fn instance(latest: &str, state: &str, keys: &[&str]) -> Instance {
        Instance {
            instance_id: "ins-aaaaaaa1".into(),
            instance_state: Some("STOPPED".into()),
            latest_operation_request_id: Some(latest.into()),
            latest_operation_state: Some(state.into()),
            latest_operation_error_msg: Some("cloud-init did not answer".into()),
            login_settings: Some(wire::LoginSettings { key_ids: Some(keys.iter().map(|k| k.to_string()).collect()) }),
            ..Instance::default()
        }
    }

    #[test]
    fn an_operation_ends_by_its_request_id_and_the_key_list() {
        let (binder, kp) = (binder(), KeyPairRef::name("kp").unwrap());
        let run = run(&binder, &kp);
        let id = InstanceId::new("ins-aaaaaaa1").unwrap();
        let ours = TaskRef::new("r-ours", &id);
        let answer = |i: &Instance| run.task_answer(&ours, Some(i));
        assert_eq!(answer(&instance("r-ours", "OPERATING", &[])), TaskAnswer::Running);
        assert_eq!(answer(&instance("r-ours", "SUCCESS", &["skey-aaaaaaaa"])), TaskAnswer::Succeeded);
        assert!(matches!(answer(&instance("r-ours", "SUCCESS", &["skey-other"])), TaskAnswer::Lost(_)));
        let TaskAnswer::Failed(Some(f)) = answer(&instance("r-ours", "FAILED", &[])) else { panic!() };
        assert_eq!(f.message, "cloud-init did not answer");
        // Still the operation read before sending: ours has not shown yet.
        let late = ours.with_before(Some("r-before"));
        assert_eq!(run.task_answer(&late, Some(&instance("r-before", "SUCCESS", &[]))), TaskAnswer::Running);
        // Someone else's came after ours: the key list decides.
        assert_eq!(answer(&instance("r-later", "SUCCESS", &["skey-aaaaaaaa"])), TaskAnswer::Succeeded);
        assert!(matches!(answer(&instance("r-later", "SUCCESS", &[])), TaskAnswer::Lost(_)));
        assert!(matches!(run.task_answer(&ours, None), TaskAnswer::Lost(_)));
    }

    #[test]
    fn running_instances_are_refused_without_consent() {
        let (binder, kp) = (binder(), KeyPairRef::name("kp").unwrap());
        let mut run = run(&binder, &kp);
        let running = Instance { instance_state: Some("RUNNING".into()), ..Instance::default() };
        assert!(matches!(run.readiness(&running), Readiness::Refuse(f) if f.message.contains("--force-stop")));
        run.force_stop = true;
        assert_eq!(run.readiness(&running), Readiness::Ready);
        let no_charge = Instance {
            instance_state: Some("STOPPED".into()),
            stop_charging_mode: Some("STOP_CHARGING".into()),
            ..Instance::default()
        };
        assert!(matches!(run.readiness(&no_charge), Readiness::Refuse(_)));
        let windows = Instance { os_name: Some("Windows Server 2022".into()), ..no_charge.clone() };
        assert!(matches!(run.readiness(&windows), Readiness::Refuse(f) if f.kind == FailureKind::UnsupportedImage));
        let busy = Instance { latest_operation_state: Some("OPERATING".into()), ..running };
        assert!(matches!(run.readiness(&busy), Readiness::Wait(_)));
    }
}
