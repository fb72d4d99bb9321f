//! Huawei Cloud KPS wire types: request bodies and paths built, responses read.
//! Unknown fields are ignored; any 2xx is success.

use keypair_binder_core::Secret;
use serde::Deserialize;

use keypair_binder_core::signing::percent_encode_into;

/// Most VMs one batch-associate call takes.
pub const MAX_BATCH: usize = 10;
/// Most VMs in key-pair operations at once, per account.
pub const MAX_IN_OPERATION: usize = 10;
/// `Content-Type` of POST bodies, as the SDK sends it.
pub const CONTENT_TYPE_JSON_UTF8: &str = "application/json;charset=utf-8";
/// `Content-Type` of GET/DELETE calls, as the SDK sends it.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// How the agent logs in to change the key: the root password or the current key.
#[derive(Clone, Copy)]
pub struct Auth<'a> {
    /// `password` or `keypair` (JSON `type`).
    pub kind: AuthType,
    /// The password or private key, borrowed: a body holds no copy of it
    /// until its JSON is written.
    pub key: &'a Secret,
}

/// `server.auth.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// The VM's root password.
    Password,
    /// The private key currently on the VM.
    Keypair,
}

impl AuthType {
    /// The value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Keypair => "keypair",
        }
    }
}

/// `EcsServerInfo`: one VM of an associate or disassociate call. Fields
/// that are `None` are left out of the JSON.
#[derive(Clone, Copy)]
pub struct Server<'a> {
    /// ECS server id.
    pub id: &'a str,
    /// Credential for a running VM; absent for a stopped one.
    pub auth: Option<Auth<'a>>,
    /// Disable SSH password login.
    pub disable_password: Option<bool>,
    /// SSH port.
    pub port: Option<u16>,
}

/// `AssociateKeypairRequestBody`.
#[derive(Clone, Copy)]
pub struct AssociateBody<'a> {
    /// Key pair name.
    pub keypair_name: &'a str,
    /// The VM.
    pub server: Server<'a>,
}

/// `BatchAssociateKeypairRequestBody`.
#[derive(Clone)]
pub struct BatchAssociateBody<'a> {
    /// At most 10 entries, one key pair.
    pub batch_keypairs: Vec<AssociateBody<'a>>,
}

/// `DisassociateKeypairRequestBody`.
#[derive(Clone, Copy)]
pub struct DisassociateBody<'a> {
    /// The VM.
    pub server: Server<'a>,
}

/// A request body as the JSON sent and signed.
///
/// Written by hand, field by field in the SDK's order, because serde's
/// derive was the largest cost of a batch call outside SHA-256 (it escapes
/// every key byte by byte): a call's body is now one pass over its strings.
pub trait JsonBody {
    /// Appends the JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// The JSON of `body` (each body reserves about its size first).
pub fn to_body(body: &impl JsonBody) -> Vec<u8> {
    let mut out = Vec::new();
    body.write_json(&mut out);
    out
}

/// A JSON string. The ids, names and keys sent are plain text, copied as
/// they are; anything serde_json would escape goes through serde_json.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // No early exit: an OR over every byte is vectorised, and these strings are short.
    let escapes = s.bytes().fold(0u8, |any, b| any | u8::from(b < 0x20 || b == b'"' || b == b'\\'));
    if escapes != 0 {
        // A `str` always serializes, and writing to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

impl JsonBody for Server<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        json_str(out, self.id);
        if let Some(auth) = &self.auth {
            out.extend_from_slice(match auth.kind {
                AuthType::Password => b",\"auth\":{\"type\":\"password\",\"key\":",
                AuthType::Keypair => b",\"auth\":{\"type\":\"keypair\",\"key\":",
            });
            json_str(out, auth.key.expose());
            out.push(b'}');
        }
        if let Some(disable) = self.disable_password {
            out.extend_from_slice(if disable { b",\"disable_password\":true" } else { b",\"disable_password\":false" });
        }
        if let Some(port) = self.port {
            out.extend_from_slice(b",\"port\":");
            out.extend_from_slice(port.to_string().as_bytes());
        }
        out.push(b'}');
    }
}

impl JsonBody for AssociateBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(ENTRY_BYTES);
        out.extend_from_slice(b"{\"keypair_name\":");
        json_str(out, self.keypair_name);
        out.extend_from_slice(b",\"server\":");
        self.server.write_json(out);
        out.push(b'}');
    }
}

impl JsonBody for BatchAssociateBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(32 + self.batch_keypairs.len() * ENTRY_BYTES);
        out.extend_from_slice(b"{\"batch_keypairs\":[");
        for (i, entry) in self.batch_keypairs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            entry.write_json(out);
        }
        out.extend_from_slice(b"]}");
    }
}

impl JsonBody for DisassociateBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(ENTRY_BYTES);
        out.extend_from_slice(b"{\"server\":");
        self.server.write_json(out);
        out.push(b'}');
    }
}

/// About the JSON size of one `batch_keypairs` entry with a password.
const ENTRY_BYTES: usize = 192;

/// `{version}{project}{tail}`, the project id percent-encoded, in one
/// allocation with room for an id after it.
fn project_path_in(version: &str, project: &str, tail: &str) -> String {
    let mut path = String::with_capacity(version.len() + project.len() + tail.len() + 40);
    path.push_str(version);
    percent_encode_into(&mut path, project);
    path.push_str(tail);
    path
}

/// `/v3/{project}{tail}`: KPS.
fn project_path(project: &str, tail: &str) -> String {
    project_path_in("/v3/", project, tail)
}

/// `/v3/{project}/keypairs`: list, and create or import (POST).
pub fn keypairs_path(project: &str) -> String {
    project_path(project, "/keypairs")
}

/// `/v3/{project}/keypairs/{name}`: one key pair (show).
pub fn keypair_path(project: &str, name: &str) -> String {
    let mut path = project_path(project, "/keypairs/");
    percent_encode_into(&mut path, name);
    path
}

/// The body of an import (CreateKeypair with a public key): `{"keypair": {name, public_key}}`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportKeypairBody<'a> {
    /// The key pair.
    pub keypair: ImportKeypair<'a>,
}

/// The key pair an import makes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportKeypair<'a> {
    /// Letters, digits, `_` and `-`, at most 64.
    pub name: &'a str,
    /// The OpenSSH public key line.
    pub public_key: &'a str,
}

/// The answer of show and of an import: `{"keypair": {...}}`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct KeypairAnswer {
    /// The key pair.
    #[serde(default)]
    pub keypair: KeypairDetail,
}

/// What identifies a key pair's key.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct KeypairDetail {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// The OpenSSH public key.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Its fingerprint (the algorithm is not documented; the key is compared instead).
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// `/v3/{project}/keypairs/associate`.
pub fn associate_path(project: &str) -> String {
    project_path(project, "/keypairs/associate")
}

/// `/v3/{project}/keypairs/batch-associate`.
pub fn batch_associate_path(project: &str) -> String {
    project_path(project, "/keypairs/batch-associate")
}

/// `/v3/{project}/keypairs/disassociate`.
pub fn disassociate_path(project: &str) -> String {
    project_path(project, "/keypairs/disassociate")
}

/// `/v3/{project}/tasks/{task_id}`.
pub fn task_path(project: &str, task_id: &str) -> String {
    let mut path = project_path(project, "/tasks/");
    percent_encode_into(&mut path, task_id);
    path
}

/// `/v3/{project}/failed-tasks` (query `limit`, `offset`).
pub fn failed_tasks_path(project: &str) -> String {
    project_path(project, "/failed-tasks")
}

/// `/v3/{project}/running-tasks` (query `limit`, `offset`).
pub fn running_tasks_path(project: &str) -> String {
    project_path(project, "/running-tasks")
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
    serde_json::json!({
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password.expose(), "domain": {"name": domain}}}},
            "scope": scope,
        }
    })
    .to_string()
    .into_bytes()
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
    let mut path = project_path_in("/v1/", project, "/cloudservers/");
    percent_encode_into(&mut path, server_id);
    path
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_a_path_stay_one_segment() {
        assert_eq!(batch_associate_path("0123abcd"), "/v3/0123abcd/keypairs/batch-associate");
        assert_eq!(task_path("p/1", "t 2?x"), "/v3/p%2F1/tasks/t%202%3Fx");
        assert_eq!(server_path("p", "../srv"), "/v1/p/cloudservers/..%2Fsrv");
        assert_eq!(running_tasks_path("é"), "/v3/%C3%A9/running-tasks");
    }
}
