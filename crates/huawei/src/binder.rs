//! [`HuaweiBinder`]: KPS associate/batch-associate/disassociate as pure
//! parts for the shared engine, which polls each task to its end and keeps
//! at most 10 VMs in key-pair operations at once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::header::{HeaderName, HeaderValue};
use keypair_binder_core::http::{HttpClient, HttpResponse};
use keypair_binder_core::kit::{
    Answer, Call, CallAnswer, CallKind, CloudBinder, Credential, CredentialProblem, Engine, InstanceView, Net,
    OutgoingRequest, Profile, Provider, Readiness, Reconciler, Refusals, RunOf, STATE_CHANGE_WAIT, StateQueries,
    StoredKeypair, TaskAnswer, TaskQueries, TaskRef, shared_id,
};
use keypair_binder_core::request::RequestCommon;
use keypair_binder_core::{
    BindRequest, Capabilities, Error, Failure, FailureKind, InstanceId, KeyPairRef, Plan, PostCondition, PublicKey,
    RetryPolicy, Secret, UnbindRequest, VmCredential,
};
use url::Url;

use crate::auth;
use crate::config::{HuaweiBuilder, PROVIDER, Polling};
use crate::errors::{failure_of, parse_error, snippet, vm_failure};
use crate::request::KpsRequest;
use crate::signer;
use crate::wire::{
    AssociateBody, Auth, AuthType, BatchAssociateBody, BatchResponse, DisassociateBody, FailedTasks, MAX_BATCH,
    MAX_IN_OPERATION, Phase, RunningTasks, Server, ServerDetailResponse, TaskResponse, TaskStatus,
};

/// The CIDR the KPS agent connects from; the VM's security group must allow SSH from it.
pub const AGENT_SOURCE_CIDR: &str = "100.125.0.0/16";
/// Wait suggested by Huawei after `APIGW.0308` when no `Retry-After` is given.
const THROTTLE_WAIT: Duration = Duration::from_secs(2);
/// First wait before a retry (the SDK retries nothing by default).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Rows per page of the task lists.
const PAGE: u32 = 1000;

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
    ecs_endpoint: Url,
    iam_endpoint: Option<Url>,
    region: Option<String>,
    /// Configured, or looked up by each run before its first call.
    project: Option<String>,
    auth_mode: &'static str,
    engine: Engine,
    user_agent: String,
    concurrency: Option<usize>,
    retry: RetryPolicy,
    polling: Polling,
}

impl fmt::Debug for HuaweiBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiBinder")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("auth", &self.inner.auth_mode)
            .field("credentials", &self.inner.engine.credential_source())
            .field("polling", &self.inner.polling)
            .finish_non_exhaustive()
    }
}

impl HuaweiBuilder {
    /// Checks the settings and builds the binder; nothing is sent.
    pub fn build(self) -> Result<HuaweiBinder, Error> {
        let resolved = self.resolve()?;
        let http = HttpClient::for_provider(
            PROVIDER,
            &self.client,
            &[Some(&resolved.endpoint), Some(&resolved.ecs_endpoint), resolved.iam_endpoint.as_ref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        )?;
        let user_agent = http.options().user_agent.clone();
        let auth_mode = match (&resolved.auth, &self.oidc) {
            (Some(auth), _) => auth.mode(),
            (None, Some(_)) => "OIDC agency",
            (None, None) if self.federation.is_some() => "federation",
            (None, None) if self.pod.is_some() => "pod identity",
            (None, None) => "ECS agency",
        };
        let credentials = auth::credentials(auth::Chain {
            auth: resolved.auth,
            oidc: self.oidc.as_ref(),
            federation: self.federation.as_ref(),
            pod: self.pod.as_ref(),
            settings: &self.client,
            iam: resolved.iam_endpoint.clone(),
            region: resolved.region.clone(),
            project: resolved.project_id.clone(),
        })?;
        let inner = Inner {
            endpoint: resolved.endpoint,
            ecs_endpoint: resolved.ecs_endpoint,
            iam_endpoint: resolved.iam_endpoint,
            region: resolved.region,
            project: resolved.project_id,
            auth_mode,
            engine: Engine::new(Arc::new(http), credentials)
                .with_window(MAX_IN_OPERATION)
                .with_rate_limit(self.client.rate_limit),
            user_agent,
            concurrency: self.client.concurrency,
            retry: self.client.retry_or(RetryPolicy::cloud(FIRST_BACKOFF)),
            polling: self.polling,
        };
        Ok(HuaweiBinder { inner: Arc::new(inner) })
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
    Unbind { keypair: Option<String>, server: ServerTemplate },
}

impl Mode {
    fn cap(&self) -> usize {
        match self {
            Self::Batch { .. } => MAX_BATCH,
            _ => 1,
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Self::Batch { .. } => "POST /v3/{project_id}/keypairs/batch-associate",
            Self::Single { .. } => "POST /v3/{project_id}/keypairs/associate",
            Self::Unbind { .. } => "POST /v3/{project_id}/keypairs/disassociate",
        }
    }
}

/// What every VM of a run is sent with: the credential (owned once per
/// run, borrowed by each call's body), the password setting and the port.
#[derive(Clone)]
struct ServerTemplate {
    credential: Option<(AuthType, Secret)>,
    disable_password: Option<bool>,
    port: Option<u16>,
}

impl ServerTemplate {
    fn for_vm<'a>(&'a self, id: &'a InstanceId) -> Server<'a> {
        Server {
            id: id.as_str(),
            auth: self.credential.as_ref().map(|(kind, key)| Auth { kind: *kind, key }),
            disable_password: self.disable_password,
            port: self.port,
        }
    }

    fn without_auth<'a>(&'a self, id: &'a InstanceId) -> Server<'a> {
        Server { auth: None, ..self.for_vm(id) }
    }
}

fn credential_of(credential: Option<&VmCredential>) -> Option<(AuthType, Secret)> {
    match credential? {
        VmCredential::Password(s) => Some((AuthType::Password, s.clone())),
        VmCredential::PrivateKey(s) => Some((AuthType::Keypair, s.clone())),
        // A kind KPS does not take: sent without one, a running VM is refused unsent.
        _ => None,
    }
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

    fn bind_mode(request: &BindRequest) -> Mode {
        let common = request.common();
        let server = ServerTemplate {
            credential: credential_of(common.credential.as_ref()),
            disable_password: request.disable_password(),
            port: common.ssh_port,
        };
        let keypair = request.keypair().as_str().to_string();
        match common.credential {
            Some(VmCredential::Password(_)) => Mode::Batch { keypair, server },
            _ => Mode::Single { keypair, server },
        }
    }

    fn post_conditions(disable_password: Option<bool>) -> Vec<PostCondition> {
        let mut conditions = vec![PostCondition::SecurityGroupMustAllowSsh { source_cidr: AGENT_SOURCE_CIDR.into() }];
        if disable_password == Some(true) {
            conditions.push(PostCondition::PasswordLoginDisabled);
        }
        conditions
    }

    fn run<'a>(&'a self, mode: Mode, common: &RequestCommon) -> HuaweiRun<'a> {
        let inner = &*self.inner;
        let default_concurrency = if matches!(mode, Mode::Batch { .. }) { 3 } else { MAX_IN_OPERATION };
        // The ECS read before each VM's first send (skipped with `force`) decides what it is sent:
        // KPS refuses a batch for a VM with a key pair, a replace without the current private key,
        // and any call for a VM neither running nor stopped.
        let profile = Profile::new(PROVIDER, mode.cap())
            .converge(true)
            .precheck_states(!common.options.force)
            .concurrency(inner.concurrency.unwrap_or(default_concurrency))
            .retry(inner.retry.clone())
            .polling(inner.polling);
        HuaweiRun { inner, mode, profile, project: inner.project.clone() }
    }
}

/// What KPS does not take.
const REFUSALS: Refusals = Refusals::NONE
    .client_token("KPS calls take no idempotency token")
    .force_stop("KPS never stops instances to bind")
    .keypair_id("KPS names key pairs; pass the key pair name");

impl CloudBinder for HuaweiBinder {
    type Run<'a> = HuaweiRun<'a>;
    const PROVIDER: &'static str = PROVIDER;
    const REFUSALS: Refusals = REFUSALS;

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn cloud_capabilities(&self) -> Capabilities {
        Capabilities::new(PROVIDER, MAX_BATCH).async_tasks(true).post_conditions(Self::post_conditions(None))
    }

    fn bind_run<'a>(&'a self, request: &'a BindRequest) -> Result<RunOf<HuaweiRun<'a>>, Error> {
        let run = self.run(Self::bind_mode(request), request.common());
        Ok(RunOf::new(run, Self::post_conditions(request.disable_password())))
    }

    fn unbind_run<'a>(
        &'a self,
        request: &'a UnbindRequest,
        keypair: Option<&'a KeyPairRef>,
    ) -> Result<RunOf<HuaweiRun<'a>>, Error> {
        let common = request.common();
        let server = ServerTemplate {
            credential: credential_of(common.credential.as_ref()),
            disable_password: None,
            port: common.ssh_port,
        };
        let keypair = keypair.map(|k| k.as_str().to_string());
        Ok(RunOf::new(self.run(Mode::Unbind { keypair, server }, common), Vec::new()))
    }

    fn bind_plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        plan(request)
    }

    fn import_run<'a>(&'a self, keypair: &'a KeyPairRef) -> Option<HuaweiRun<'a>> {
        // Only the import parts, the signer and the project are used: no VM is sent anything.
        let server = ServerTemplate { credential: None, disable_password: None, port: None };
        let mode = Mode::Single { keypair: keypair.as_str().to_string(), server };
        let inner = &*self.inner;
        let profile = Profile::new(PROVIDER, 1).retry(inner.retry.clone());
        Some(HuaweiRun { inner, mode, profile, project: inner.project.clone() })
    }
}

/// The calls a bind would make, without a binder or any network: batches of
/// 10 with a root password, else one associate per VM.
pub fn plan(request: &BindRequest) -> Result<Plan, Error> {
    REFUSALS.check_bind(PROVIDER, request)?;
    let mode = HuaweiBinder::bind_mode(request);
    Ok(Plan::of_bind(PROVIDER, request, mode.cap(), mode.action()))
}

/// The call of a stopped VM: its key pair reset, one VM a call, without a credential.
const RESET: CallKind = CallKind("reset");

/// One run's pure parts.
#[derive(Clone)]
pub struct HuaweiRun<'a> {
    inner: &'a Inner,
    mode: Mode,
    profile: Profile,
    /// The project calls name: configured, or found by `prepare`.
    project: Option<String>,
}

const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

impl HuaweiRun<'_> {
    fn project(&self) -> Result<&str, Failure> {
        self.project.as_deref().ok_or_else(|| Failure::new(FailureKind::InvalidRequest, "project id not resolved"))
    }

    fn outgoing(&self, call: KpsRequest) -> Result<OutgoingRequest, Failure> {
        call.outgoing(&self.inner.endpoint, &self.inner.user_agent)
    }

    fn kps_call(&self, project: &str, call: &Call<'_>) -> KpsRequest {
        let vms = call.instances;
        if let Some(id) = vms.first().filter(|_| call.kind == RESET) {
            // A stopped VM is reset: KPS refuses a credential for it.
            return match &self.mode {
                Mode::Batch { keypair, server } | Mode::Single { keypair, server } => KpsRequest::associate(
                    project,
                    &AssociateBody { keypair_name: keypair, server: server.without_auth(id) },
                ),
                Mode::Unbind { server, .. } => {
                    KpsRequest::disassociate(project, &DisassociateBody { server: server.without_auth(id) })
                }
            };
        }
        match &self.mode {
            Mode::Batch { keypair, server } => KpsRequest::batch_associate(
                project,
                &BatchAssociateBody {
                    batch_keypairs: vms
                        .iter()
                        .map(|id| AssociateBody { keypair_name: keypair, server: server.for_vm(id) })
                        .collect(),
                },
            ),
            Mode::Single { keypair, server } => {
                let id = &vms[0];
                KpsRequest::associate(project, &AssociateBody { keypair_name: keypair, server: server.for_vm(id) })
            }
            Mode::Unbind { server, .. } => {
                KpsRequest::disassociate(project, &DisassociateBody { server: server.for_vm(&vms[0]) })
            }
        }
    }

    /// What a running VM's key pair allows this run to send: a batch binds
    /// only VMs without a key pair (with the root password); replacing a key
    /// pair needs the current private key; a running VM needs a credential.
    fn running_readiness(&self, key_name: Option<&str>) -> Readiness {
        let refuse = |message: String| Readiness::Refuse(Failure::new(FailureKind::InvalidRequest, message));
        let credential = match &self.mode {
            Mode::Batch { server, .. } | Mode::Single { server, .. } => {
                server.credential.as_ref().map(|(kind, _)| *kind)
            }
            Mode::Unbind { .. } => return Readiness::Ready,
        };
        match (credential, key_name) {
            (Some(AuthType::Password), None) | (Some(AuthType::Keypair), Some(_)) => Readiness::Ready,
            (Some(AuthType::Password), Some(held)) => refuse(format!(
                "not sent: the VM is running with key pair {held}; replacing a key pair needs its current private \
                 key (kpbind --current-private-key), not the root password"
            )),
            (Some(AuthType::Keypair), None) => refuse(
                "not sent: the VM is running without a key pair; binding one needs its root password \
                 (kpbind --current-password-env), not a private key"
                    .to_string(),
            ),
            (None, _) => refuse(
                "not sent: the VM is running; binding needs its root password or current private key, or stop it \
                 to have its key pair reset"
                    .to_string(),
            ),
        }
    }

    /// Whether a running task is this run's: same key pair, same kind of operation.
    fn is_ours(&self, keypair: Option<&str>, operate_type: Option<&str>) -> bool {
        let op = operate_type.and_then(|t| t.split_once('_')).map(|(_, op)| op.to_ascii_uppercase());
        match &self.mode {
            Mode::Batch { keypair: ours, .. } | Mode::Single { keypair: ours, .. } => {
                keypair == Some(ours.as_str()) && op.as_deref().is_some_and(|op| op != "UNBIND")
            }
            Mode::Unbind { keypair: ours, .. } => {
                op.as_deref() == Some("UNBIND") && ours.as_deref().is_none_or(|k| keypair == Some(k))
            }
        }
    }
}

/// The per-VM items of a submission answer.
fn submission_items(
    mode: &Mode,
    vms: &[InstanceId],
    response: &HttpResponse,
) -> Result<Vec<TaskResponse>, serde_json::Error> {
    match mode {
        Mode::Batch { .. } => serde_json::from_slice::<BatchResponse>(&response.body).map(|b| b.tasks),
        _ => serde_json::from_slice::<TaskResponse>(&response.body).map(|mut t| {
            if let Some(id) = vms.first() {
                t.server_id.get_or_insert_with(|| id.as_str().to_string());
            }
            vec![t]
        }),
    }
}

#[async_trait]
impl Provider for HuaweiRun<'_> {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Looks the project id up when none was configured; the run goes on with it.
    async fn prepare<'s>(&'s self, net: &dyn Net) -> Result<Option<Box<dyn Provider + 's>>, Failure> {
        if self.project.is_some() {
            return Ok(None);
        }
        let project = auth::lookup_project(net, self.inner.iam_endpoint.as_ref(), self.inner.region.as_deref()).await?;
        Ok(Some(Box::new(HuaweiRun { project: Some(project), ..self.clone() })))
    }

    /// Key pairs live in a project: the same lookup as a run's.
    async fn prepare_import<'s>(&'s self, net: &dyn Net) -> Result<Option<Box<dyn Provider + 's>>, Failure> {
        self.prepare(net).await
    }

    fn keypair_read(&self, name: &str) -> Result<OutgoingRequest, Failure> {
        self.outgoing(KpsRequest::keypair(self.project()?, name))
    }

    fn keypair_found(&self, response: &HttpResponse, _name: &str) -> Result<Option<StoredKeypair>, Failure> {
        if !response.is_success() {
            let (failure, _) = failure_of(response);
            // Not found: a 404, or KPS's own codes for a missing key pair.
            let missing = response.status == 404 || matches!(failure.code.as_deref(), Some("KPS.4016" | "KPS.6004"));
            return if missing { Ok(None) } else { Err(failure) };
        }
        let answer: crate::wire::KeypairAnswer = serde_json::from_slice(&response.body)
            .map_err(|_| Failure::new(FailureKind::ProviderError, "unreadable key pair answer").retryable(true))?;
        let k = answer.keypair;
        Ok(Some(StoredKeypair::new(None, k.public_key, k.fingerprint)))
    }

    fn keypair_import(&self, name: &str, key: &PublicKey) -> Result<OutgoingRequest, Failure> {
        self.outgoing(KpsRequest::import_keypair(self.project()?, name, &key.openssh())?)
    }

    fn keypair_imported(&self, response: &HttpResponse, _name: &str) -> Result<StoredKeypair, Failure> {
        if !response.is_success() {
            // KPS names neither a duplicate nor a malformed key: the read that follows settles it.
            return Err(failure_of(response).0);
        }
        let answer: crate::wire::KeypairAnswer = serde_json::from_slice(&response.body)
            .map_err(|_| Failure::new(FailureKind::ProviderError, "unreadable import answer"))?;
        Ok(StoredKeypair::new(None, answer.keypair.public_key, answer.keypair.fingerprint))
    }

    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        match credential {
            Credential::AccessKey(key) => signer::sign_outgoing(request, key, self.project.as_deref(), now),
            Credential::Token(token) => {
                let mut value = HeaderValue::from_str(token.expose())
                    .map_err(|_| Failure::new(FailureKind::Auth, "the IAM token is not valid in an HTTP header"))?;
                value.set_sensitive(true);
                request.headers.insert(X_AUTH_TOKEN, value);
            }
            _ => return Err(Failure::new(FailureKind::Auth, "KPS takes AK/SK or an IAM token")),
        }
        Ok(())
    }

    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem> {
        if response.is_success() {
            return None;
        }
        let (failure, advice) = failure_of(response);
        match advice.kind {
            // APIGW.0301 for an expired token or temporary AK: one fresh credential and one more
            // try when its source can give one; refused otherwise (repeated signature failures
            // lock an AK/SK).
            FailureKind::Auth if response.status == 401 => Some(CredentialProblem::Expired(failure)),
            FailureKind::Auth | FailureKind::Permission => Some(CredentialProblem::Refused(failure)),
            _ => None,
        }
    }

    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure> {
        let project = self.project()?;
        self.outgoing(self.kps_call(project, call))
    }

    fn classify(&self, call: &Call<'_>, response: &HttpResponse) -> CallAnswer {
        if !response.is_success() {
            let (failure, advice) = failure_of(response);
            // A gateway 502/504 may come after KPS started the tasks.
            return CallAnswer::All(if matches!(response.status, 502 | 504) || advice.maybe_applied {
                Answer::Ambiguous(failure)
            } else if advice.retryable {
                let wait = failure.retry_after.or((advice.kind == FailureKind::Throttled).then_some(THROTTLE_WAIT));
                Answer::Retry(failure.with_retry_after(wait))
            } else {
                Answer::Failed(failure)
            });
        }
        let request_id = response.header("x-request-id").map(str::to_string);
        let Ok(items) = submission_items(&self.mode, call.instances, response) else {
            let failure =
                Failure::new(FailureKind::ProviderError, format!("unreadable answer: {}", snippet(&response.body)))
                    .with_status(response.status)
                    .with_request_id(request_id);
            return CallAnswer::All(Answer::Ambiguous(failure));
        };
        let answers = items
            .into_iter()
            .filter_map(|t| {
                let id = InstanceId::new(t.server_id.clone()?).ok()?;
                let task_id = t.task_id.clone().filter(|id| !id.is_empty());
                let answer = if let Some(task_id) = task_id.filter(|_| t.delivered()) {
                    Answer::Task(task_id)
                } else if t.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("SUCCESS")) {
                    // Delivered, but the task cannot be followed: its running tasks and key pair settle it.
                    Answer::Ambiguous(
                        Failure::new(
                            FailureKind::ProviderError,
                            "the task was delivered (SUCCESS) but the answer carried no task id",
                        )
                        .with_status(response.status)
                        .with_request_id(request_id.clone()),
                    )
                } else {
                    Answer::Failed(
                        vm_failure(t.error_code.as_deref(), t.error_msg.as_deref())
                            .with_status(response.status)
                            .with_request_id(request_id.clone()),
                    )
                };
                Some((id, answer))
            })
            .collect();
        CallAnswer::Instances(answers)
    }

    fn kind_cap(&self, kind: CallKind) -> usize {
        if kind == RESET { 1 } else { usize::MAX }
    }

    fn tasks(&self) -> Option<&dyn TaskQueries> {
        Some(self)
    }

    fn reconciler(&self) -> Option<&dyn Reconciler> {
        Some(self)
    }

    fn states(&self) -> Option<&dyn StateQueries> {
        Some(self)
    }
}

impl StateQueries for HuaweiRun<'_> {
    fn max_per_query(&self) -> usize {
        1
    }

    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        let id = instances.first().ok_or_else(|| Failure::new(FailureKind::InvalidRequest, "no instance"))?;
        KpsRequest::server(self.project()?, id.as_str()).outgoing(&self.inner.ecs_endpoint, &self.inner.user_agent)
    }

    fn read(&self, instances: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure> {
        if response.status == 404 {
            // Gone: the view carries ECS's own answer (code, status, request id) as the refusal.
            let (Some(id), error) = (instances.first(), parse_error(response)) else { return Ok(Vec::new()) };
            let message = error.message.unwrap_or_else(|| format!("server {id} does not exist"));
            let failure = Failure::new(FailureKind::InstanceNotFound, message)
                .with_code_opt(error.code)
                .with_status(response.status)
                .with_request_id(error.request_id);
            return Ok(vec![InstanceView::new(id.clone(), "NOT_FOUND".to_string(), Readiness::Refuse(failure))]);
        }
        if !response.is_success() {
            let (failure, advice) = failure_of(response);
            return Err(failure.retryable(advice.retryable));
        }
        let detail: ServerDetailResponse = serde_json::from_slice(&response.body).map_err(|_| {
            Failure::new(FailureKind::ProviderError, format!("unreadable server: {}", snippet(&response.body)))
        })?;
        let Some(server) = detail.server else { return Ok(Vec::new()) };
        let id = shared_id(instances, &server.id, 0)
            .ok_or_else(|| Failure::new(FailureKind::ProviderError, "server without a valid id"))?;
        let status = server.status.to_ascii_uppercase();
        let readiness = match status.as_str() {
            "SHUTOFF" => Readiness::Ready,
            "ACTIVE" => self.running_readiness(server.key_name.as_deref()),
            // Transitional (REBOOT, BUILD, …) or stuck (ERROR, …): KPS refuses both; read until it is
            // running or stopped, within the run's bound.
            s => Readiness::changing(format!("server is {s}"), STATE_CHANGE_WAIT),
        };
        // A stopped VM is reset, alone and without a credential: the engine sends it so.
        let kind = if status == "SHUTOFF" { RESET } else { CallKind::SAME };
        Ok(vec![InstanceView::new(id, status, readiness).with_keypair(server.key_name, None).with_call_kind(kind)])
    }
}

impl TaskQueries for HuaweiRun<'_> {
    fn query(&self, task: &TaskRef<'_>) -> Result<OutgoingRequest, Failure> {
        self.outgoing(KpsRequest::task(self.project()?, task.task))
    }

    fn read(&self, task: &TaskRef<'_>, response: &HttpResponse) -> TaskAnswer {
        let task = task.task;
        if !response.is_success() {
            let (failure, advice) = failure_of(response);
            if advice.retryable || response.status >= 500 {
                let wait = failure.retry_after.unwrap_or(THROTTLE_WAIT);
                return TaskAnswer::Transient(failure.with_retry_after(Some(wait)));
            }
            // The task was submitted; we just cannot see it.
            return TaskAnswer::Lost(failure);
        }
        let Ok(status) = serde_json::from_slice::<TaskStatus>(&response.body) else {
            let message = format!("unreadable task status: {}", snippet(&response.body));
            return TaskAnswer::Transient(Failure::new(FailureKind::ProviderError, message));
        };
        match status.phase() {
            Phase::Success => TaskAnswer::Succeeded,
            Phase::Failed => TaskAnswer::Failed(None),
            Phase::Pending => {
                if !status.task_status.is_empty() && !status.task_status.contains('_') {
                    tracing::debug!(task, status = %status.task_status, "unrecognised task status; still polling");
                }
                TaskAnswer::Running
            }
        }
    }

    fn failure_query(&self, page: u32) -> Option<OutgoingRequest> {
        let project = self.project().ok()?;
        self.outgoing(KpsRequest::failed_tasks(project, PAGE, page * PAGE)).ok()
    }

    fn read_failures(&self, tasks: &[&str], response: &HttpResponse) -> (Vec<(String, Failure)>, bool) {
        let Some(list) =
            response.is_success().then(|| serde_json::from_slice::<FailedTasks>(&response.body).ok()).flatten()
        else {
            return (Vec::new(), false);
        };
        let request_id = response.header("x-request-id").map(str::to_string);
        let found = list
            .tasks
            .iter()
            .filter_map(|task| {
                let id = task.task_id.as_deref().filter(|id| tasks.contains(id))?;
                let failure = vm_failure(task.task_error_code.as_deref(), task.task_error_msg.as_deref())
                    .with_request_id(request_id.clone());
                Some((id.to_string(), failure))
            })
            .collect();
        (found, list.tasks.len() >= PAGE as usize)
    }
}

impl Reconciler for HuaweiRun<'_> {
    fn query(&self, page: u32) -> Result<OutgoingRequest, Failure> {
        self.outgoing(KpsRequest::running_tasks(self.project()?, PAGE, page * PAGE))
    }

    fn read(
        &self,
        instances: &[InstanceId],
        response: &HttpResponse,
    ) -> Result<(Vec<(InstanceId, Answer)>, bool), Failure> {
        if !response.is_success() {
            let (failure, advice) = failure_of(response);
            return Err(failure.retryable(advice.retryable || response.status >= 500));
        }
        let list: RunningTasks = serde_json::from_slice(&response.body).map_err(|_| {
            Failure::new(FailureKind::ProviderError, format!("unreadable running tasks: {}", snippet(&response.body)))
                .retryable(true)
        })?;
        let found = list
            .tasks
            .iter()
            .filter(|t| self.is_ours(t.keypair_name.as_deref(), t.operate_type.as_deref()))
            .filter_map(|t| {
                let id = instances.iter().find(|i| t.server_id.as_deref() == Some(i.as_str()))?;
                Some((id.clone(), Answer::Task(t.task_id.clone()?)))
            })
            .collect();
        Ok((found, list.tasks.len() >= PAGE as usize))
    }
}
