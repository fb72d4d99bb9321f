//! [`AlibabaBinder`]: ECS `AttachKeyPair`/`DetachKeyPair` as pure parts for
//! the shared engine. No idempotency token exists: a call that may have been
//! applied is settled by reading the instances' key pair
//! (`DescribeInstances`) before anything is sent again.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keypair_binder_core::http::{HttpClient, HttpResponse};
use keypair_binder_core::kit::{
    Answer, Call, CallAnswer, Credential, CredentialProblem, Credentials, Engine, InstanceView, OutgoingRequest,
    Profile, Provider, Readiness, RunSpec, Signer, StateQueries, shared_id,
};
use keypair_binder_core::request::RequestCommon;
use keypair_binder_core::{
    BindReport, BindRequest, Capabilities, Error, Failure, FailureKind, InstanceId, KeyPairRef, KeypairBinder,
    Operation, Plan, PostCondition, RetryPolicy, UnbindRequest,
};
use url::Url;

use crate::config::{AlibabaBuilder, PROVIDER};
use crate::errors::{Class, failure_of, instance_failure};
use crate::request::{AcsSigner, unsigned};
use crate::wire::{self, Action, DescribeInstancesResult, KeyPairCallResult, MAX_DESCRIBE, MAX_INSTANCES_PER_CALL};

/// What a bind leaves behind: `AttachKeyPair` replaces a bound key pair.
const BIND_POST_CONDITIONS: [PostCondition; 3] =
    [PostCondition::RebootRequired, PostCondition::PasswordLoginDisabled, PostCondition::ExistingKeyPairReplaced];

/// Least wait before checking an instance that is changing state again.
const STATE_CHANGE_WAIT: Duration = Duration::from_secs(5);

/// Binds key pairs to Alibaba Cloud ECS instances, 50 a call.
#[derive(Clone)]
pub struct AlibabaBinder {
    inner: Arc<Inner>,
}

struct Inner {
    region: String,
    endpoint: Url,
    engine: Engine,
    profile: Profile,
}

impl fmt::Debug for AlibabaBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlibabaBinder")
            .field("region", &self.inner.region)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("credentials", &self.inner.engine.credential_source())
            .finish_non_exhaustive()
    }
}

impl AlibabaBuilder {
    /// Checks the settings and builds the binder; nothing is sent.
    pub fn build(self) -> Result<AlibabaBinder, Error> {
        let (key, region, endpoint) = self.resolve()?;
        let http = HttpClient::for_provider(PROVIDER, &self.client, &[&endpoint])?;
        let profile = Profile::new(PROVIDER, MAX_INSTANCES_PER_CALL)
            .concurrency(self.client.concurrency.unwrap_or(4))
            .retry(self.client.retry.clone().unwrap_or_else(default_retry_policy))
            .converge(true);
        let inner = Inner {
            region,
            endpoint,
            engine: Engine::new(Arc::new(http), Credentials::fixed(Credential::AccessKey(key)))
                .with_rate_limit(self.client.rate_limit),
            profile,
        };
        Ok(AlibabaBinder { inner: Arc::new(inner) })
    }
}

/// Default retry policy for Alibaba Cloud (the SDK retries nothing by default).
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(20),
        ..RetryPolicy::default()
    }
}

impl AlibabaBinder {
    /// A builder with nothing set.
    pub fn builder() -> AlibabaBuilder {
        AlibabaBuilder::new()
    }

    /// A binder configured from the environment and the profile files.
    pub fn from_env() -> Result<Self, Error> {
        AlibabaBuilder::from_env().build()
    }

    /// The region calls name.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    fn keypair_name(keypair: &KeyPairRef) -> Result<&str, Error> {
        match keypair {
            KeyPairRef::Name(name) => Ok(name),
            KeyPairRef::Id(_) => Err(Error::unsupported(PROVIDER, "keypair_id", "ECS names key pairs; pass the name")),
        }
    }

    fn check_common(common: &RequestCommon) -> Result<(), Error> {
        if common.credential.is_some() {
            return Err(Error::unsupported(PROVIDER, "credential", "ECS binds without the VM's credential"));
        }
        if common.ssh_port.is_some() {
            return Err(Error::unsupported(PROVIDER, "ssh_port", "ECS does not take an SSH port"));
        }
        if common.client_token.is_some() {
            return Err(Error::unsupported(PROVIDER, "client_token", "AttachKeyPair takes no idempotency token"));
        }
        if common.force_stop {
            return Err(Error::unsupported(PROVIDER, "force_stop", "ECS binds without stopping instances"));
        }
        Ok(())
    }

    async fn run(
        &self,
        operation: Operation,
        keypair: &KeyPairRef,
        common: &RequestCommon,
    ) -> Result<BindReport, Error> {
        let name = Self::keypair_name(keypair)?;
        let action = if operation == Operation::Bind { Action::AttachKeyPair } else { Action::DetachKeyPair };
        let provider = AlibabaRun { inner: &self.inner, action, keypair: name };
        let post = match operation {
            Operation::Bind => BIND_POST_CONDITIONS.to_vec(),
            Operation::Unbind => vec![PostCondition::RebootRequired],
        };
        self.inner.engine.run(&provider, RunSpec::new(operation, Some(keypair), common).post_conditions(post)).await
    }
}

/// One run's pure parts.
struct AlibabaRun<'a> {
    inner: &'a Inner,
    action: Action,
    keypair: &'a str,
}

#[async_trait]
impl Provider for AlibabaRun<'_> {
    fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        AcsSigner.sign(request, credential.access_key()?, now);
        Ok(())
    }

    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem> {
        if response.is_success() {
            return None;
        }
        let (failure, class) = failure_of(response);
        if class != Class::Credentials {
            return None;
        }
        // An expired STS token: one fresh credential and one more try, when the source can give one.
        Some(if failure.code.as_deref() == Some("InvalidSecurityToken.Expired") {
            CredentialProblem::Expired(failure)
        } else {
            CredentialProblem::Refused(failure)
        })
    }

    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure> {
        let query = wire::keypair_call(call.instances, self.keypair, &self.inner.region);
        Ok(unsigned(&self.inner.endpoint, self.action, &query)?.with_instances(call.instances.len()))
    }

    fn classify(&self, call: &Call<'_>, response: &HttpResponse) -> CallAnswer {
        if !response.is_success() {
            let (failure, class) = failure_of(response);
            return CallAnswer::All(match class {
                Class::Retry => Answer::Retry(failure),
                Class::Ambiguous => Answer::Ambiguous(failure),
                Class::Fail | Class::Credentials => Answer::Failed(failure),
            });
        }
        let Ok(result) = serde_json::from_slice::<KeyPairCallResult>(&response.body) else {
            let failure = Failure::new(FailureKind::ProviderError, "unreadable answer; the call may have been applied")
                .with_status(response.status);
            return CallAnswer::All(Answer::Ambiguous(failure));
        };
        let answers = result
            .results
            .result
            .into_iter()
            .enumerate()
            .filter_map(|(at, r)| {
                let id = call.answered_id(&r.instance_id, at)?;
                if r.success {
                    return Some((id, Answer::Bound));
                }
                let (failure, class) = instance_failure(&r.code, &r.message);
                let failure = failure.with_status(response.status).with_request_id(result.request_id.clone());
                Some((id, if class == Class::Retry { Answer::Retry(failure) } else { Answer::Failed(failure) }))
            })
            .collect();
        CallAnswer::Instances(answers)
    }

    fn states(&self) -> Option<&dyn StateQueries> {
        Some(self)
    }
}

impl StateQueries for AlibabaRun<'_> {
    fn max_per_query(&self) -> usize {
        MAX_DESCRIBE
    }

    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        let query = wire::describe_instances(instances, &self.inner.region);
        Ok(unsigned(&self.inner.endpoint, Action::DescribeInstances, &query)?.with_instances(instances.len()))
    }

    fn read(&self, instances: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure> {
        if !response.is_success() {
            return Err(failure_of(response).0);
        }
        let result: DescribeInstancesResult = serde_json::from_slice(&response.body)
            .map_err(|_| Failure::new(FailureKind::ProviderError, "unreadable DescribeInstances answer"))?;
        Ok(result
            .instances
            .instance
            .into_iter()
            .enumerate()
            .filter_map(|(at, i)| {
                let id = shared_id(instances, &i.instance_id, at)?;
                let readiness = if i.os_type.eq_ignore_ascii_case("windows") {
                    Readiness::Refuse(Failure::new(
                        FailureKind::UnsupportedImage,
                        "key pairs cannot be used with Windows",
                    ))
                } else {
                    match i.status.as_str() {
                        "Running" | "Stopped" => Readiness::Ready,
                        "Starting" | "Stopping" | "Pending" => Readiness::Wait(
                            Failure::new(FailureKind::InvalidState, format!("instance is {}", i.status))
                                .retryable(true)
                                .with_retry_after(Some(STATE_CHANGE_WAIT)),
                        ),
                        other => {
                            Readiness::Refuse(Failure::new(FailureKind::InvalidState, format!("instance is {other}")))
                        }
                    }
                };
                Some(InstanceView::new(id, i.status, readiness).with_keypair(Some(i.key_pair_name), None))
            })
            .collect())
    }
}

#[async_trait]
impl KeypairBinder for AlibabaBinder {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(PROVIDER, MAX_INSTANCES_PER_CALL).post_conditions(BIND_POST_CONDITIONS.to_vec())
    }

    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error> {
        check_bind(&request)?;
        self.run(Operation::Bind, request.keypair(), request.common()).await
    }

    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error> {
        Self::check_common(request.common())?;
        self.run(Operation::Unbind, request.required_keypair()?, request.common()).await
    }

    fn plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }
}

/// The calls a bind would make, without a binder or any network: one
/// `AttachKeyPair` per 50 instances.
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    check_bind(request)?;
    Ok(Plan::of_bind(PROVIDER, request, MAX_INSTANCES_PER_CALL, Action::AttachKeyPair.as_str()))
}

fn check_bind(request: &BindRequest) -> Result<(), Error> {
    AlibabaBinder::check_common(request.common())?;
    AlibabaBinder::keypair_name(request.keypair())?;
    if request.disable_password().is_some() {
        return Err(Error::unsupported(PROVIDER, "disable_password", "AttachKeyPair always disables password login"));
    }
    Ok(())
}
