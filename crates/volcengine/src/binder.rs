//! [`VolcengineBinder`]: `AttachKeyPair`/`DetachKeyPair` as pure parts for
//! the shared engine: a call, its reading, and `DescribeInstances` views.

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

use crate::config::{PROVIDER, VolcengineBuilder};
use crate::errors::{CallError, instance_failure, parse_error, read_result};
use crate::request::{EcsSigner, Invocation, unsigned_params};
use crate::wire::{self, Action, DescribeInstancesResult, Envelope, MAX_INSTANCES_PER_CALL, OperationResult};

/// First wait before a retry: the SDK's 300 ms base.
const FIRST_BACKOFF: Duration = Duration::from_millis(300);
/// Default least wait before re-issuing instances throttled one by one.
const THROTTLE_WAIT: Duration = Duration::from_millis(500);

/// Binds key pairs to Volcengine ECS instances, 100 per call, each call
/// carrying a `ClientToken` so that retries never apply anything twice.
#[derive(Clone)]
pub struct VolcengineBinder {
    inner: Arc<Inner>,
}

struct Inner {
    signer: EcsSigner,
    endpoint: Url,
    engine: Engine,
    profile: Profile,
    throttle_wait: Duration,
    state_change_wait: Duration,
}

impl fmt::Debug for VolcengineBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolcengineBinder")
            .field("region", &self.inner.signer.region)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("credentials", &self.inner.engine.credential_source())
            .finish_non_exhaustive()
    }
}

impl VolcengineBuilder {
    /// Checks the settings and builds the binder; nothing is sent.
    pub fn build(self) -> Result<VolcengineBinder, Error> {
        let (credentials, region, endpoint) = self.resolve()?;
        let http = HttpClient::for_provider(PROVIDER, &self.client, &[&endpoint])?;
        let profile = Profile::new(PROVIDER, MAX_INSTANCES_PER_CALL)
            .concurrency(self.client.concurrency.unwrap_or(8))
            .retry(self.client.retry_or(RetryPolicy::cloud(FIRST_BACKOFF)))
            .idempotency_tokens(true)
            .converge(true)
            .precheck_states(self.precheck_states)
            .verify_bindings(self.verify_bindings);
        let inner = Inner {
            signer: EcsSigner { region },
            endpoint,
            engine: Engine::new(Arc::new(http), credentials).with_rate_limit(self.client.rate_limit),
            profile,
            throttle_wait: self.throttle_wait.unwrap_or(THROTTLE_WAIT),
            state_change_wait: self.state_change_wait.unwrap_or(STATE_CHANGE_WAIT),
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
        &self.inner.signer.region
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }
}

/// What Volcengine does not take.
const REFUSALS: Refusals = Refusals::NONE
    .credential("Volcengine binds through its agent; no VM credential is used")
    .ssh_port("Volcengine does not take an SSH port")
    .force_stop("Volcengine never stops instances to bind")
    .disable_password("Volcengine always disables password login on attach")
    .unbind_needs_keypair();

impl CloudBinder for VolcengineBinder {
    type Run<'a> = VolcengineRun<'a>;
    const PROVIDER: &'static str = PROVIDER;
    const REFUSALS: Refusals = REFUSALS;

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn cloud_capabilities(&self) -> Capabilities {
        Capabilities::new(PROVIDER, MAX_INSTANCES_PER_CALL)
            .idempotency_token(true)
            .keypair_by_id(true)
            .post_conditions(vec![PostCondition::RebootRequired, PostCondition::PasswordLoginDisabled])
    }

    fn bind_run<'a>(&'a self, request: &'a BindRequest) -> Result<RunOf<VolcengineRun<'a>>, Error> {
        let run = VolcengineRun { inner: &self.inner, action: Action::AttachKeyPair, keypair: request.keypair() };
        Ok(RunOf::new(run, vec![PostCondition::RebootRequired, PostCondition::PasswordLoginDisabled]))
    }

    fn unbind_run<'a>(
        &'a self,
        request: &'a UnbindRequest,
        keypair: Option<&'a KeyPairRef>,
    ) -> Result<RunOf<VolcengineRun<'a>>, Error> {
        let keypair = keypair.map_or_else(|| request.required_keypair(), Ok)?;
        let run = VolcengineRun { inner: &self.inner, action: Action::DetachKeyPair, keypair };
        Ok(RunOf::new(run, vec![PostCondition::RebootRequired]))
    }

    fn bind_plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }

    fn import_run<'a>(&'a self, keypair: &'a KeyPairRef) -> Option<VolcengineRun<'a>> {
        Some(VolcengineRun { inner: &self.inner, action: Action::ImportKeyPair, keypair })
    }
}

/// One run's pure parts: Attach or Detach, one key pair.
pub struct VolcengineRun<'a> {
    inner: &'a Inner,
    action: Action,
    keypair: &'a KeyPairRef,
}

/// The error an answer carries, if any (non-2xx, or 2xx with `ResponseMetadata.Error`).
fn carried_error(response: &HttpResponse) -> Option<Failure> {
    if !response.is_success() {
        return Some(parse_error(response).0);
    }
    // This runs on every answer: one without an `"Error": {` object (a
    // success names only `"Error": null`, per instance) carries none and is
    // not parsed; otherwise the result is skipped, not built.
    if !has_error_object(&response.body) {
        return None;
    }
    let envelope: Envelope<serde::de::IgnoredAny> = serde_json::from_slice(&response.body).ok()?;
    let metadata = envelope.metadata?;
    let error = metadata.error.as_ref()?;
    Some(crate::errors::call_failure(response, Some(error), metadata.request_id.clone()).0)
}

/// Whether the text holds `"Error"` followed by `:` and an object.
fn has_error_object(body: &[u8]) -> bool {
    memchr::memmem::find_iter(body, b"\"Error\"").any(|at| {
        let mut rest = body[at + 7..].iter().copied().skip_while(u8::is_ascii_whitespace);
        rest.next() == Some(b':') && rest.find(|b| !b.is_ascii_whitespace()) == Some(b'{')
    })
}

#[async_trait]
impl Provider for VolcengineRun<'_> {
    fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        self.inner.signer.sign(request, credential.access_key()?, now);
        Ok(())
    }

    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem> {
        let failure = carried_error(response)?;
        if !matches!(failure.kind, FailureKind::Auth | FailureKind::Permission) {
            return None;
        }
        // A bad or expired STS token: one fresh credential and one more try, when the source can give one.
        Some(if failure.code.as_deref() == Some("InvalidSecretToken") {
            CredentialProblem::Expired(failure)
        } else {
            CredentialProblem::Refused(failure)
        })
    }

    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure> {
        let params = wire::keypair_call_params(self.action, call.instances, self.keypair, call.token);
        let invocation = call.token.map(|id| Invocation { id, attempt: call.attempt, max_attempts: call.max_attempts });
        Ok(unsigned_params(&self.inner.endpoint, &params, invocation, self.action.as_str())?
            .with_instances(call.instances.len()))
    }

    fn classify(&self, call: &Call<'_>, response: &HttpResponse) -> CallAnswer {
        let (result, request_id) = match read_result::<OperationResult>(response) {
            Ok(read) => read,
            // Every call carries a ClientToken: resending after an ambiguous
            // failure replays the stored result instead of applying twice.
            Err(CallError { failure, maybe_applied: true }) => return CallAnswer::All(Answer::Ambiguous(failure)),
            Err(CallError { failure, .. }) if failure.retryable => return CallAnswer::All(Answer::Retry(failure)),
            Err(CallError { failure, .. }) => return CallAnswer::All(Answer::Failed(failure)),
        };
        tracing::debug!(
            request_id = request_id.as_deref().unwrap_or(""),
            details = result.details.len(),
            "operation details"
        );
        let answers = result
            .details
            .into_iter()
            .enumerate()
            .filter_map(|(at, detail)| {
                let id = call.answered_id(&detail.instance_id, at)?;
                let answer = match detail.error {
                    None => Answer::Bound,
                    Some(error) => {
                        let failure = instance_failure(&error.code, &error.message)
                            .with_status(response.status)
                            .with_request_id(request_id.clone());
                        match error.code.as_str() {
                            "InvalidInstanceStatus" => Answer::CheckState(failure),
                            _ if failure.retryable => {
                                Answer::Retry(failure.with_retry_after(Some(self.inner.throttle_wait)))
                            }
                            _ => Answer::Failed(failure),
                        }
                    }
                };
                Some((id, answer))
            })
            .collect();
        CallAnswer::Instances(answers)
    }

    fn states(&self) -> Option<&dyn StateQueries> {
        Some(self)
    }

    fn keypair_read(&self, name: &str) -> Result<OutgoingRequest, Failure> {
        let action = Action::DescribeKeyPairs.as_str();
        unsigned_params(&self.inner.endpoint, &wire::describe_keypair_params(name), None, action)
    }

    fn keypair_found(&self, response: &HttpResponse, name: &str) -> Result<Option<StoredKeypair>, Failure> {
        let (result, _) = read_result::<wire::DescribeKeyPairsResult>(response).map_err(|e| e.failure)?;
        Ok(result
            .key_pairs
            .into_iter()
            .find(|k| k.key_pair_name == name)
            .map(|k| StoredKeypair::new(Some(k.key_pair_id), None, k.finger_print)))
    }

    fn keypair_import(&self, name: &str, key: &PublicKey) -> Result<OutgoingRequest, Failure> {
        let line = key.openssh();
        // The same name and key always carry the same token: a resend is answered with the first result.
        let token =
            format!("kpbind-import-{}", &keypair_binder_core::sha256_hex(format!("{name}\n{line}").as_bytes())[..40]);
        let params = wire::import_keypair_params(name, &line, &token);
        unsigned_params(&self.inner.endpoint, &params, None, Action::ImportKeyPair.as_str())
    }

    fn keypair_imported(&self, response: &HttpResponse, _name: &str) -> Result<StoredKeypair, Failure> {
        let (item, _) = read_result::<wire::KeyPairItem>(response).map_err(|e| e.failure)?;
        Ok(StoredKeypair::new(Some(item.key_pair_id), None, item.finger_print))
    }
}

impl StateQueries for VolcengineRun<'_> {
    fn max_per_query(&self) -> usize {
        MAX_INSTANCES_PER_CALL
    }

    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        let params = wire::describe_instances_params(instances, None);
        Ok(unsigned_params(&self.inner.endpoint, &params, None, Action::DescribeInstances.as_str())?
            .with_instances(instances.len()))
    }

    fn read(&self, instances: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure> {
        let (result, _) = read_result::<DescribeInstancesResult>(response).map_err(|e| e.failure)?;
        Ok(result
            .instances
            .into_iter()
            .enumerate()
            .filter_map(|(at, i)| {
                let id = shared_id(instances, &i.instance_id, at)?;
                let readiness = if i.os_type.eq_ignore_ascii_case("windows") {
                    Readiness::windows()
                } else if wire::is_transitional(&i.status) {
                    Readiness::changing(format!("instance is {}", i.status), self.inner.state_change_wait)
                } else if ["RUNNING", "STOPPED"].iter().any(|s| i.status.eq_ignore_ascii_case(s)) {
                    Readiness::Ready
                } else {
                    Readiness::refused(format!("instance is {}", i.status))
                };
                Some(
                    InstanceView::new(id, i.status, readiness)
                        .with_keypair(Some(i.key_pair_name.into_owned()), Some(i.key_pair_id.into_owned())),
                )
            })
            .collect())
    }
}

/// The calls a bind would make, without a binder or any network: one
/// `AttachKeyPair` per 100 instances.
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    REFUSALS.check_bind(PROVIDER, request)?;
    Ok(Plan::of_bind(PROVIDER, request, MAX_INSTANCES_PER_CALL, Action::AttachKeyPair.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_carried_by_a_2xx_answer_is_found_and_a_clean_answer_is_not() {
        let refused = HttpResponse::new(
            200,
            r#"{"ResponseMetadata":{"RequestId":"r1","Action":"AttachKeyPair","Error":{"Code":"InvalidAccessKey","Message":"bad key"}}}"#,
        );
        let failure = carried_error(&refused).expect("the error is carried");
        assert_eq!(failure.code.as_deref(), Some("InvalidAccessKey"));
        assert_eq!(failure.kind, FailureKind::Auth);

        let details = HttpResponse::new(
            200,
            r#"{"ResponseMetadata":{"RequestId":"r2"},"Result":{"OperationDetails":[{"InstanceId":"i-1","Error":null}]}}"#,
        );
        assert!(carried_error(&details).is_none());
        let describe = HttpResponse::new(
            200,
            r#"{"ResponseMetadata":{"RequestId":"r3"},"Result":{"Instances":[{"InstanceId":"i-1","Status":"RUNNING"}]}}"#,
        );
        assert!(carried_error(&describe).is_none());
        let spaced = HttpResponse::new(
            200,
            "{\"ResponseMetadata\": {\"RequestId\": \"r4\", \"Error\" :\n {\"Code\": \"InvalidAccessKey\"}}}",
        );
        assert_eq!(carried_error(&spaced).and_then(|f| f.code).as_deref(), Some("InvalidAccessKey"));
    }
}
