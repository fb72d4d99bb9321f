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
    Answer, Call, CallAnswer, CloudBinder, Credential, CredentialProblem, Engine, InstanceView, OutgoingRequest,
    Profile, Provider, Readiness, Refusals, RunOf, STATE_CHANGE_WAIT, Signer, StateQueries, StoredKeypair, shared_id,
};
use keypair_binder_core::{
    BindRequest, Capabilities, Error, Failure, FailureKind, InstanceId, KeyPairRef, Plan, PostCondition, PublicKey,
    RetryPolicy, UnbindRequest,
};
use url::Url;

use crate::config::{AlibabaBuilder, PROVIDER};
use crate::errors::{Class, failure_of, instance_failure};
use crate::request::{AcsSigner, unsigned};
use crate::wire::{self, Action, DescribeInstancesResult, KeyPairCallResult, MAX_DESCRIBE, MAX_INSTANCES_PER_CALL};

/// What a bind leaves behind: `AttachKeyPair` replaces a bound key pair.
const BIND_POST_CONDITIONS: [PostCondition; 3] =
    [PostCondition::RebootRequired, PostCondition::PasswordLoginDisabled, PostCondition::ExistingKeyPairReplaced];

/// First wait before a retry (the SDK retries nothing by default).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

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
        let (credentials, region, endpoint) = self.resolve()?;
        let http = HttpClient::for_provider(PROVIDER, &self.client, &[&endpoint])?;
        let profile = Profile::new(PROVIDER, MAX_INSTANCES_PER_CALL)
            .concurrency(self.client.concurrency.unwrap_or(4))
            .retry(self.client.retry_or(RetryPolicy::cloud(FIRST_BACKOFF)))
            .converge(true);
        let inner = Inner {
            region,
            endpoint,
            engine: Engine::new(Arc::new(http), credentials).with_rate_limit(self.client.rate_limit),
            profile,
        };
        Ok(AlibabaBinder { inner: Arc::new(inner) })
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
}

/// What ECS does not take.
const REFUSALS: Refusals = Refusals::NONE
    .credential("ECS binds without the VM's credential")
    .ssh_port("ECS does not take an SSH port")
    .client_token("AttachKeyPair takes no idempotency token")
    .force_stop("ECS binds without stopping instances")
    .disable_password("AttachKeyPair always disables password login")
    .keypair_id("ECS names key pairs; pass the name")
    .unbind_needs_keypair();

impl CloudBinder for AlibabaBinder {
    type Run<'a> = AlibabaRun<'a>;
    const PROVIDER: &'static str = PROVIDER;
    const REFUSALS: Refusals = REFUSALS;

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn cloud_capabilities(&self) -> Capabilities {
        Capabilities::new(PROVIDER, MAX_INSTANCES_PER_CALL).post_conditions(BIND_POST_CONDITIONS.to_vec())
    }

    fn bind_run<'a>(&'a self, request: &'a BindRequest) -> Result<RunOf<AlibabaRun<'a>>, Error> {
        let run = AlibabaRun { inner: &self.inner, action: Action::AttachKeyPair, keypair: request.keypair().as_str() };
        Ok(RunOf::new(run, BIND_POST_CONDITIONS.to_vec()))
    }

    fn unbind_run<'a>(
        &'a self,
        _request: &'a UnbindRequest,
        keypair: Option<&'a KeyPairRef>,
    ) -> Result<RunOf<AlibabaRun<'a>>, Error> {
        let keypair = keypair.map(KeyPairRef::as_str).unwrap_or_default();
        let run = AlibabaRun { inner: &self.inner, action: Action::DetachKeyPair, keypair };
        Ok(RunOf::new(run, vec![PostCondition::RebootRequired]))
    }

    fn bind_plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }

    fn import_run<'a>(&'a self, keypair: &'a KeyPairRef) -> Option<AlibabaRun<'a>> {
        Some(AlibabaRun { inner: &self.inner, action: Action::ImportKeyPair, keypair: keypair.as_str() })
    }
}

/// One run's pure parts.
pub struct AlibabaRun<'a> {
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
                Class::Fail | Class::Credentials => Answer::Failed(failure),
                // Ambiguous, or a class this reading does not know: it may have been applied.
                _ => Answer::Ambiguous(failure),
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

    fn keypair_read(&self, name: &str) -> Result<OutgoingRequest, Failure> {
        unsigned(&self.inner.endpoint, Action::DescribeKeyPairs, &wire::describe_keypair(name, &self.inner.region))
    }

    fn keypair_found(&self, response: &HttpResponse, name: &str) -> Result<Option<StoredKeypair>, Failure> {
        if !response.is_success() {
            return Err(failure_of(response).0);
        }
        let result: wire::DescribeKeyPairsResult = serde_json::from_slice(&response.body)
            .map_err(|_| Failure::new(FailureKind::ProviderError, "unreadable DescribeKeyPairs answer"))?;
        // The name filter takes `*` wildcards: only the exact name counts.
        Ok(result
            .key_pairs
            .key_pair
            .into_iter()
            .find(|k| k.key_pair_name == name)
            .map(|k| StoredKeypair::new(None, k.public_key, k.key_pair_finger_print)))
    }

    fn keypair_import(&self, name: &str, key: &PublicKey) -> Result<OutgoingRequest, Failure> {
        let query = wire::import_keypair(name, &key.openssh(), &self.inner.region);
        unsigned(&self.inner.endpoint, Action::ImportKeyPair, &query)
    }

    fn keypair_imported(&self, response: &HttpResponse, _name: &str) -> Result<StoredKeypair, Failure> {
        if !response.is_success() {
            return Err(failure_of(response).0);
        }
        let result: wire::ImportKeyPairResult = serde_json::from_slice(&response.body)
            .map_err(|_| Failure::new(FailureKind::ProviderError, "unreadable ImportKeyPair answer"))?;
        Ok(StoredKeypair::new(None, None, result.key_pair_finger_print))
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
                    Readiness::windows()
                } else {
                    match i.status.as_str() {
                        "Running" | "Stopped" => Readiness::Ready,
                        "Starting" | "Stopping" | "Pending" => {
                            Readiness::changing(format!("instance is {}", i.status), STATE_CHANGE_WAIT)
                        }
                        other => Readiness::refused(format!("instance is {other}")),
                    }
                };
                Some(InstanceView::new(id, i.status, readiness).with_keypair(Some(i.key_pair_name), None))
            })
            .collect())
    }
}

/// The calls a bind would make, without a binder or any network: one
/// `AttachKeyPair` per 50 instances.
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    REFUSALS.check_bind(PROVIDER, request)?;
    Ok(Plan::of_bind(PROVIDER, request, MAX_INSTANCES_PER_CALL, Action::AttachKeyPair.as_str()))
}
