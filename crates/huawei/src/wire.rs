//! Huawei Cloud KPS wire types: request bodies and paths built, responses read.
//! Unknown fields are ignored; any 2xx is success.

use keypair_binder_core::Secret;
use serde::{Deserialize, Serialize, Serializer};

use crate::signer::encode;

/// Most VMs one batch-associate call takes.
pub const MAX_BATCH: usize = 10;
/// Most VMs in key-pair operations at once, per account.
pub const MAX_IN_OPERATION: usize = 10;
/// `Content-Type` of POST bodies, as the SDK sends it.
pub const CONTENT_TYPE_JSON_UTF8: &str = "application/json;charset=utf-8";
/// `Content-Type` of GET/DELETE calls, as the SDK sends it.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// How the agent logs in to change the key: the root password or the current key.
#[derive(Clone, Serialize)]
pub struct Auth {
    /// `password` or `keypair`.
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// The password or private key.
    #[serde(serialize_with = "expose")]
    pub key: Secret,
}

fn expose<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// `server.auth.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// The VM's root password.
    Password,
    /// The private key currently on the VM.
    Keypair,
}

/// `EcsServerInfo`: one VM of an associate or disassociate call.
#[derive(Clone, Serialize)]
pub struct Server {
    /// ECS server id.
    pub id: String,
    /// Credential for a running VM; absent for a stopped one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Disable SSH password login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_password: Option<bool>,
    /// SSH port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// `AssociateKeypairRequestBody`.
#[derive(Clone, Serialize)]
pub struct AssociateBody {
    /// Key pair name.
    pub keypair_name: String,
    /// The VM.
    pub server: Server,
}

/// `BatchAssociateKeypairRequestBody`.
#[derive(Clone, Serialize)]
pub struct BatchAssociateBody {
    /// At most 10 entries, one key pair.
    pub batch_keypairs: Vec<AssociateBody>,
}

/// `DisassociateKeypairRequestBody`.
#[derive(Clone, Serialize)]
pub struct DisassociateBody {
    /// The VM.
    pub server: Server,
}

/// Serializes a body to the bytes sent and signed.
pub fn to_body<T: Serialize>(body: &T) -> Vec<u8> {
    sized_body(body, 256)
}

/// [`to_body`] into a buffer of about the body's size, grown at most once.
pub(crate) fn sized_body<T: Serialize>(body: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, body).expect("request bodies always serialize");
    out
}

/// About the JSON size of one `batch_keypairs` entry with a password.
pub(crate) const ENTRY_BYTES: usize = 192;

/// `/v3/{project}/keypairs/associate`.
pub fn associate_path(project: &str) -> String {
    format!("/v3/{}/keypairs/associate", encode(project))
}

/// `/v3/{project}/keypairs/batch-associate`.
pub fn batch_associate_path(project: &str) -> String {
    format!("/v3/{}/keypairs/batch-associate", encode(project))
}

/// `/v3/{project}/keypairs/disassociate`.
pub fn disassociate_path(project: &str) -> String {
    format!("/v3/{}/keypairs/disassociate", encode(project))
}

/// `/v3/{project}/tasks/{task_id}`.
pub fn task_path(project: &str, task_id: &str) -> String {
    format!("/v3/{}/tasks/{}", encode(project), encode(task_id))
}

/// `/v3/{project}/failed-tasks` (query `limit`, `offset`).
pub fn failed_tasks_path(project: &str) -> String {
    format!("/v3/{}/failed-tasks", encode(project))
}

/// `/v3/{project}/running-tasks` (query `limit`, `offset`).
pub fn running_tasks_path(project: &str) -> String {
    format!("/v3/{}/running-tasks", encode(project))
}

/// Answer of associate and disassociate (and one item of a batch answer).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TaskResponse {
    /// The task started, if one was.
    pub task_id: Option<String>,
    /// The VM.
    pub server_id: Option<String>,
    /// `SUCCESS` or `FAILED` (any case): whether the task was submitted.
    pub status: Option<String>,
    /// Why submission failed.
    pub error_code: Option<String>,
    /// Why submission failed.
    pub error_msg: Option<String>,
}

impl TaskResponse {
    /// Whether the VM's task was submitted.
    pub fn delivered(&self) -> bool {
        self.task_id.is_some() && !self.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("FAILED"))
    }
}

/// Answer of batch-associate.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BatchResponse {
    /// One entry per VM.
    #[serde(default)]
    pub tasks: Vec<TaskResponse>,
}

/// Answer of the task status query.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TaskStatus {
    /// The VM.
    pub server_id: Option<String>,
    /// The task.
    pub task_id: Option<String>,
    /// `<PHASE>_<OP>`, e.g. `RUNNING_BIND`.
    #[serde(default)]
    pub task_status: String,
}

/// Where a task stands, from the part of its status before the first `_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `READY` or `RUNNING`, or anything unrecognised: keep polling.
    Pending,
    /// `SUCCESS`.
    Success,
    /// `FAILED`: final; the reason is in the failed-task list.
    Failed,
}

impl TaskStatus {
    /// The phase, case-insensitive.
    pub fn phase(&self) -> Phase {
        phase_of(&self.task_status)
    }
}

/// The phase of a `task_status` value.
pub fn phase_of(status: &str) -> Phase {
    let prefix = status.split('_').next().unwrap_or("");
    if prefix.eq_ignore_ascii_case("SUCCESS") {
        Phase::Success
    } else if prefix.eq_ignore_ascii_case("FAILED") {
        Phase::Failed
    } else {
        Phase::Pending
    }
}

/// Answer of the failed-task list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FailedTasks {
    /// Total failed tasks.
    #[serde(default)]
    pub total: Option<u64>,
    /// A page of them.
    #[serde(default)]
    pub tasks: Vec<FailedTask>,
}

/// One failed task.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FailedTask {
    /// The task.
    pub task_id: Option<String>,
    /// `FAILED_BIND`…
    pub operate_type: Option<String>,
    /// Epoch milliseconds, as a string.
    pub task_time: Option<String>,
    /// Why it failed (may be null).
    pub task_error_code: Option<String>,
    /// Why it failed.
    pub task_error_msg: Option<String>,
    /// The VM.
    pub server_id: Option<String>,
    /// The key pair.
    pub keypair_name: Option<String>,
}

/// Answer of the running-task list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunningTasks {
    /// Total running tasks.
    #[serde(default)]
    pub total: Option<u64>,
    /// A page of them.
    #[serde(default)]
    pub tasks: Vec<RunningTask>,
}

/// One running task.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunningTask {
    /// The task.
    pub task_id: Option<String>,
    /// `RUNNING_BIND`…
    pub operate_type: Option<String>,
    /// The VM.
    pub server_id: Option<String>,
    /// The key pair.
    pub keypair_name: Option<String>,
}

/// An IAM token request (`POST /v3/auth/tokens`), password method, project scope.
pub fn token_request_body(user: &str, password: &Secret, domain: &str, project: ProjectScope<'_>) -> Vec<u8> {
    let scope = match project {
        ProjectScope::Id(id) => serde_json::json!({"project": {"id": id}}),
        ProjectScope::Name(name) => serde_json::json!({"project": {"name": name}}),
    };
    to_body(&serde_json::json!({
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password.expose(), "domain": {"name": domain}}}},
            "scope": scope,
        }
    }))
}

/// Which project a token is scoped to.
#[derive(Clone, Copy, Debug)]
pub enum ProjectScope<'a> {
    /// By project id.
    Id(&'a str),
    /// By project (region) name.
    Name(&'a str),
}

/// The body of an IAM token answer (the token itself is in `X-Subject-Token`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenResponse {
    /// The token's details.
    pub token: Option<TokenBody>,
}

/// `token` of an IAM token answer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenBody {
    /// ISO-8601 UTC expiry.
    pub expires_at: Option<String>,
    /// The project it is scoped to.
    pub project: Option<IdName>,
}

/// `{"id": …, "name": …}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IdName {
    /// Id.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// Answer of `GET /v3/projects?name=…`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Projects {
    /// Matching projects.
    #[serde(default)]
    pub projects: Vec<IdName>,
}

/// `/v1/{project}/cloudservers/{server_id}`: one ECS server (ShowServer).
pub fn server_path(project: &str, server_id: &str) -> String {
    format!("/v1/{}/cloudservers/{}", encode(project), encode(server_id))
}

/// Answer of ECS ShowServer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerDetailResponse {
    /// The server.
    pub server: Option<ServerDetail>,
}

/// The fields of an ECS server a bind needs.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerDetail {
    /// Server id.
    #[serde(default)]
    pub id: String,
    /// `ACTIVE`, `SHUTOFF`, `REBOOT`…
    #[serde(default)]
    pub status: String,
    /// The key pair it holds, if any.
    pub key_name: Option<String>,
}

/// Whether an ECS status is a transition that ends by itself.
pub fn is_transitional(status: &str) -> bool {
    matches!(
        status.to_ascii_uppercase().as_str(),
        "BUILD" | "REBOOT" | "HARD_REBOOT" | "REBUILD" | "MIGRATING" | "RESIZE" | "REVERT_RESIZE" | "VERIFY_RESIZE"
    )
}
