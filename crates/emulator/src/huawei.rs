//! The emulated Huawei Cloud: IAM tokens and project lookup, and KPS
//! associate, batch-associate, disassociate, tasks, failed and running tasks,
//! key pair list and show.

use std::time::Instant;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use keypair_binder_core::Secret;
use keypair_binder_core::signing::parse_compact_utc;
use keypair_binder_huawei::signer::{AkSk, KpsSigner, parse_authorization};
use keypair_binder_huawei::wire::{MAX_BATCH, MAX_IN_OPERATION};
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::inventory::{Cloud, Os, VmState};
use crate::metadata::{Issued, issued};
use crate::server::{Answer, Incoming};
use crate::state::{DEFAULT_ACCOUNT, Place, Task};
use crate::{Shared, Timing};

/// The action a request names, for logs, counters and scripted faults.
pub(crate) fn action(req: &Incoming) -> String {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let post = req.method == "POST";
    let name = match segments.as_slice() {
        ["v3", "auth", "tokens"] if post => "iam:CreateToken",
        ["v3.0", "OS-AUTH", "id-token", "tokens"] if post => "iam:CreateTokenWithIdToken",
        ["v3.0", "OS-CREDENTIAL", "securitytokens"] if post => "iam:CreateTemporaryAccessKeyByToken",
        ["v3", "projects"] => "iam:KeystoneListProjects",
        ["v3", _, "keypairs", "associate"] if post => "AssociateKeypair",
        ["v3", _, "keypairs", "batch-associate"] if post => "BatchAssociateKeypair",
        ["v3", _, "keypairs", "disassociate"] if post => "DisassociateKeypair",
        ["v3", _, "tasks", _] => "ListKeypairTask",
        ["v3", _, "failed-tasks"] => "ListFailedTask",
        ["v3", _, "running-tasks"] => "ListRunningTask",
        ["v3", _, "keypairs"] if post => "CreateKeypair",
        ["v3", _, "keypairs"] => "ListKeypairs",
        ["v3", _, "keypairs", _] => "ListKeypairDetail",
        ["v1", _, "cloudservers", _] if !post => "ShowServer",
        _ => "Unknown",
    };
    name.to_string()
}

/// A KPS/API-gateway error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let mut response =
        (status, axum::Json(json!({"error_code": code, "error_msg": message, "request_id": request_id})))
            .into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

fn ok(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

fn param_error(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, "KPS.0002", &format!("parameter error: {}", message.as_ref()))
}

fn unauthorized(message: &str) -> Response {
    error(StatusCode::UNAUTHORIZED, "APIGW.0301", &format!("Incorrect IAM authentication information: {message}"))
}

pub(crate) fn handle(shared: &Shared, req: &Incoming, action: &str, fault: Option<&Fault>, now: Instant) -> Answer {
    match action {
        "iam:CreateToken" => return Answer::new(create_token(shared, req, now), 0),
        "iam:CreateTokenWithIdToken" => return Answer::new(federated_token(shared, req, now), 0),
        "iam:CreateTemporaryAccessKeyByToken" => return Answer::new(temporary_keys(shared, req, now), 0),
        "iam:KeystoneListProjects" => {
            let account = match authenticate(shared, req, now) {
                Ok(account) => account,
                Err(response) => return Answer::new(response, 0),
            };
            let projects = shared.credentials.accounts.get(&account).map(|a| &a.huawei.projects);
            let project = req.param("name").and_then(|name| Some((name, projects?.get(name)?)));
            let projects = match project {
                Some((name, id)) => json!([{"id": id, "name": name}]),
                None => json!([]),
            };
            return Answer::new(ok(StatusCode::OK, json!({"projects": projects})), 0);
        }
        _ => {}
    }
    if req.path.len() > 1 && req.path.ends_with('/') || action == "Unknown" {
        let message = "The API does not exist or has not been published in the environment.";
        return Answer::new(error(StatusCode::NOT_FOUND, "APIGW.0101", message), 0);
    }
    let account = match authenticate(shared, req, now) {
        Ok(account) => account,
        Err(response) => return Answer::new(response, 0),
    };
    let project = req.path.split('/').nth(2).unwrap_or("");
    let Some(region) = shared.credentials.huawei_project(project).filter(|(a, _)| *a == account).map(|(_, r)| r) else {
        return Answer::new(error(StatusCode::FORBIDDEN, "APIGW.0302", "project id does not match the credentials"), 0);
    };
    if req.header("x-project-id").is_some_and(|p| p != project) {
        return Answer::new(unauthorized("X-Project-Id does not match the path"), 0);
    }
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return Answer::new(param_error("the body is not JSON"), 0),
        }
    };
    let mut guard = shared.world();
    let world = guard.place(&account, region);
    advance_tasks(world, &shared.timing, now);
    let last = req.path.rsplit('/').next().unwrap_or("");
    match action {
        "AssociateKeypair" => Answer::new(associate(world, &body, now), 1),
        "BatchAssociateKeypair" => {
            let n = body["batch_keypairs"].as_array().map_or(0, Vec::len);
            let without_task_id = matches!(fault, Some(Fault::DeliveredWithoutTaskId));
            Answer::new(batch_associate(world, &body, without_task_id, now), n)
        }
        "DisassociateKeypair" => Answer::new(disassociate(world, &body, now), 1),
        "ListKeypairTask" => Answer::new(task_status(world, last, &shared.timing, now), 1),
        "ListFailedTask" => Answer::new(failed_tasks(world, req), 0),
        "ListRunningTask" => Answer::new(running_tasks(world, req), 0),
        "ListKeypairs" => Answer::new(list_keypairs(world, req), 0),
        "CreateKeypair" => Answer::new(create_keypair(world, &body), 0),
        "ShowServer" => Answer::new(show_server(world, &percent_decode(last), now), 1),
        _ => Answer::new(show_keypair(world, &percent_decode(last)), 0),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// An IAM token (`X-Auth-Token`) or an AK/SK signature; the account it is of.
fn authenticate(shared: &Shared, req: &Incoming, now: Instant) -> Result<String, Response> {
    if let Some(token) = req.header("x-auth-token") {
        if token == shared.credentials.huawei.token {
            if shared.world().revoked_static_token {
                return Err(error(StatusCode::UNAUTHORIZED, "KPS.9001", "The token of the request is expired"));
            }
            return Ok(DEFAULT_ACCOUNT.to_string());
        }
        return match shared.world().iam_tokens.get(token) {
            Some(expiry) if *expiry > now => Ok(DEFAULT_ACCOUNT.to_string()),
            Some(_) => Err(error(StatusCode::UNAUTHORIZED, "KPS.9001", "The token of the request is expired")),
            None => Err(unauthorized("decrypt token fail")),
        };
    }
    verify_aksk(shared, req)
}

/// Checks an AK/SK signature; the account the key belongs to.
pub(crate) fn verify_aksk(shared: &Shared, req: &Incoming) -> Result<String, Response> {
    let creds = &shared.credentials.huawei;
    let Some(authorization) = req.header("authorization") else {
        return Err(unauthorized("no authentication information"));
    };
    let Some(auth) = parse_authorization(authorization) else {
        return Err(unauthorized("invalid Authorization header"));
    };
    let mut account = DEFAULT_ACCOUNT.to_string();
    let (sk, token) = if let Some((name, sk)) = shared.credentials.account_of(Cloud::Huawei, &auth.access_key) {
        account = name.to_string();
        (sk.to_string(), None)
    } else if auth.access_key == creds.temp_ak {
        (creds.temp_sk.clone(), Some(creds.security_token.clone()))
    } else {
        match issued(shared, Cloud::Huawei, &auth.access_key) {
            Issued::Valid { secret, token } => (secret, Some(token)),
            Issued::Expired => return Err(unauthorized("calc ak sk signature fail:signature expired")),
            Issued::Unknown => {
                return Err(unauthorized(&format!("Get secretKey failed,ak:{},err:ak not exist", auth.access_key)));
            }
        }
    };
    if !auth.signed_headers.iter().any(|h| h == "host") || !auth.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(unauthorized("host and x-sdk-date must be signed"));
    }
    let date = req.header("x-sdk-date").unwrap_or("");
    let Some(at) = parse_compact_utc(date) else {
        return Err(unauthorized("x-sdk-date is invalid"));
    };
    let skew = (Utc::now() - at).abs().to_std().unwrap_or_default();
    if skew > shared.timing.max_skew {
        return Err(unauthorized("x-sdk-date is expired"));
    }
    if token.as_deref().is_some_and(|t| req.header("x-security-token") != Some(t)) {
        return Err(unauthorized("security token is invalid"));
    }
    let key = AkSk {
        access_key: auth.access_key.clone(),
        secret_key: Secret::new(sk.as_str()),
        token: token.map(Secret::new),
    };
    let signer = KpsSigner { project: req.header("x-project-id").map(str::to_string) };
    let query = keypair_binder_huawei::signer::canonical_query(&req.query);
    if !req.signed_by(&signer, &key, &query, at) {
        return Err(unauthorized("verify aksk signature fail"));
    }
    Ok(account)
}

/// The identity provider whose ID tokens IAM federates.
pub const HUAWEI_IDP_ID: &str = "kpbind-emulator-idp";

fn iam_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "title": status.canonical_reason()}});
    (status, axum::Json(body)).into_response()
}

/// `POST /v3.0/OS-AUTH/id-token/tokens`: the current ID token of the
/// identity provider `X-Idp-Id` names, for an unscoped token.
fn federated_token(shared: &Shared, req: &Incoming, now: Instant) -> Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let current = shared.world().oidc_token.clone();
    if req.header("x-idp-id") != Some(HUAWEI_IDP_ID) || body["auth"]["id_token"]["id"] != current.as_str() {
        return iam_error(StatusCode::UNAUTHORIZED, "The ID token or identity provider is invalid.");
    }
    let token = format!("EMU-FED-TOKEN-{}", uuid::Uuid::new_v4().simple());
    shared.world().iam_tokens.insert(token.clone(), now + shared.timing.token_lifetime);
    let mut response = ok(StatusCode::CREATED, json!({"token": {"methods": ["mapped"]}}));
    if let Ok(v) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("x-subject-token", v);
    }
    response
}

/// `POST /v3.0/OS-CREDENTIAL/securitytokens` with a token: temporary keys.
fn temporary_keys(shared: &Shared, req: &Incoming, now: Instant) -> Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let token = body["auth"]["identity"]["token"]["id"].as_str().unwrap_or("");
    if shared.world().iam_tokens.get(token).is_none_or(|expiry| *expiry <= now) {
        return iam_error(StatusCode::UNAUTHORIZED, "The token is invalid or expired.");
    }
    let (access, key, expires) = crate::metadata::issue_key(shared, Cloud::Huawei);
    ok(
        StatusCode::CREATED,
        json!({"credential": {"access": access, "secret": key.secret, "securitytoken": key.token,
            "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}}),
    )
}

fn create_token(shared: &Shared, req: &Incoming, now: Instant) -> Response {
    let creds = &shared.credentials.huawei;
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let user = &body["auth"]["identity"]["password"]["user"];
    let scope = &body["auth"]["scope"]["project"];
    if user["name"] != creds.user.as_str()
        || user["password"] != creds.password.as_str()
        || user["domain"]["name"] != creds.domain.as_str()
    {
        return iam_error(StatusCode::UNAUTHORIZED, "The username or password is wrong.");
    }
    let projects =
        shared.credentials.accounts.get(DEFAULT_ACCOUNT).map(|a| a.huawei.projects.clone()).unwrap_or_default();
    let Some((region, project_id)) =
        projects.iter().find(|(region, id)| scope["id"] == id.as_str() || scope["name"] == region.as_str())
    else {
        return iam_error(StatusCode::BAD_REQUEST, "The project in the scope does not exist.");
    };
    let token = format!("EMU-TOKEN-{}", uuid::Uuid::new_v4().simple());
    let lifetime = shared.timing.token_lifetime;
    shared.world().iam_tokens.insert(token.clone(), now + lifetime);
    let expires_at = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default();
    let mut response = ok(
        StatusCode::CREATED,
        json!({"token": {"expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "methods": ["password"], "project": {"id": project_id, "name": region}}}),
    );
    if let Ok(v) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("x-subject-token", v);
    }
    response
}

/// Ends the tasks whose time has come, applying their outcome exactly once.
pub(crate) fn advance_tasks(world: &mut Place, timing: &Timing, now: Instant) {
    let due: Vec<String> = world
        .active_tasks
        .iter()
        .filter(|id| world.tasks.get(*id).is_some_and(|t| now.duration_since(t.created) >= timing.task_duration))
        .cloned()
        .collect();
    for id in due {
        world.active_tasks.retain(|t| t != &id);
        let Some(task) = world.tasks.get_mut(&id) else { continue };
        task.done = true;
        let task = task.clone();
        let key = (Cloud::Huawei, task.server_id.clone());
        if let Some(vm) = world.vms.get_mut(&key) {
            vm.busy = false;
            if task.failure.is_none() {
                vm.keypair = if task.op == "UNBIND" { None } else { task.keypair.clone() };
            }
        }
        match task.failure {
            None => world.applied(Cloud::Huawei, &task.server_id),
            Some(_) => world.failed_tasks.push((id, task.created + timing.task_duration)),
        }
    }
}

/// Why a task on this VM will fail, decided when it is submitted.
fn task_failure(world: &Place, server_id: &str, auth: &Value, op: &str) -> Option<(String, String)> {
    let vm = &world.vms[&(Cloud::Huawei, server_id.to_string())];
    if vm.os == Os::Windows || !vm.image_supported {
        return Some(("KPS.0002".into(), "the server's image does not support key pair operations".into()));
    }
    if !vm.agent {
        return Some(("KPS.0003".into(), "the key pair agent on the server did not answer".into()));
    }
    let login_ok = match (op, auth["type"].as_str()) {
        ("RESET", _) => true,
        (_, Some("password")) => auth["key"] == vm.password.as_str(),
        (_, Some("keypair")) => {
            vm.keypair.as_ref().and_then(|k| world.hw_keypairs.get(k)).is_some_and(|key| auth["key"] == key.as_str())
        }
        _ => false,
    };
    (!login_ok).then(|| (String::new(), "failed to log in to the server with the given credential".into()))
}

pub(crate) fn start_task(
    world: &mut Place,
    server_id: &str,
    keypair: Option<&str>,
    op: &'static str,
    failure: Option<(String, String)>,
    now: Instant,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    world.tasks.insert(
        id.clone(),
        Task {
            server_id: server_id.into(),
            keypair: keypair.map(str::to_string),
            op,
            created: now,
            failure,
            done: false,
        },
    );
    world.active_tasks.push(id.clone());
    world.max_in_operation = world.max_in_operation.max(world.in_operation());
    if let Some(vm) = world.vms.get_mut(&(Cloud::Huawei, server_id.to_string())) {
        vm.busy = true;
    }
    id
}

fn window_full(world: &Place) -> bool {
    world.in_operation() >= MAX_IN_OPERATION
}

fn associate(world: &mut Place, body: &Value, now: Instant) -> Response {
    let (Some(keypair), Some(server_id)) = (body["keypair_name"].as_str(), body["server"]["id"].as_str()) else {
        return param_error("keypair_name and server.id are required");
    };
    if !world.hw_keypairs.contains_key(keypair) {
        return error(StatusCode::BAD_REQUEST, "KPS.4016", "The key pair is not exist");
    }
    let auth = &body["server"]["auth"];
    let Some(vm) = world.vms.get_mut(&(Cloud::Huawei, server_id.to_string())) else {
        return param_error(format!("server {server_id} not found"));
    };
    if vm.busy {
        return param_error(format!("server {server_id} already has a key pair task running"));
    }
    let op = match vm.state_at(now) {
        VmState::Stopped if !auth.is_null() => return param_error("auth must not be set for a stopped server"),
        VmState::Stopped => "RESET",
        VmState::Running if auth.is_null() => return param_error("auth is required for a running server"),
        VmState::Running if vm.keypair.is_some() && auth["type"] != "keypair" => {
            return param_error("replacing a key pair requires auth.type=keypair with the current private key");
        }
        VmState::Running if vm.keypair.is_some() => "REPLACE",
        VmState::Running => "BIND",
        VmState::Transitioning | VmState::Error => {
            return param_error(format!("server {server_id} is neither running nor stopped"));
        }
    };
    if window_full(world) {
        return param_error("at most 10 VMs may be in key pair operations at once");
    }
    let failure = task_failure(world, server_id, auth, op);
    let task_id = start_task(world, server_id, Some(keypair), op, failure, now);
    ok(StatusCode::ACCEPTED, json!({"task_id": task_id}))
}

fn batch_associate(world: &mut Place, body: &Value, without_task_id: bool, now: Instant) -> Response {
    let Some(entries) = body["batch_keypairs"].as_array().filter(|e| !e.is_empty()) else {
        return param_error("batch_keypairs is required");
    };
    if entries.len() > MAX_BATCH {
        return param_error("at most 10 servers per batch");
    }
    let keypair = entries[0]["keypair_name"].as_str().unwrap_or("");
    if entries.iter().any(|e| e["keypair_name"].as_str() != Some(keypair)) {
        return param_error("all batch_keypairs must use the same key pair");
    }
    if !world.hw_keypairs.contains_key(keypair) {
        return error(StatusCode::BAD_REQUEST, "KPS.4016", "The key pair is not exist");
    }
    let mut tasks = Vec::with_capacity(entries.len());
    for entry in entries {
        let server_id = entry["server"]["id"].as_str().unwrap_or("");
        let auth = &entry["server"]["auth"];
        let refused = |msg: String| json!({"server_id": server_id, "status": "FAILED", "error_code": "KPS.0002", "error_msg": format!("parameter error: {msg}")});
        let Some(vm) = world.vms.get_mut(&(Cloud::Huawei, server_id.to_string())) else {
            tasks.push(refused(format!("server {server_id} not found")));
            continue;
        };
        let state = vm.state_at(now);
        let item = if vm.busy {
            refused(format!("server {server_id} already has a key pair task running"))
        } else if state != VmState::Running {
            refused(format!(
                "server {server_id} is not running (state {})",
                match state {
                    VmState::Stopped => "SHUTOFF",
                    VmState::Error => "ERROR",
                    _ => "BUILD",
                }
            ))
        } else if let Some(bound) = &vm.keypair {
            refused(format!("server {server_id} is already bound to key pair {bound}"))
        } else if auth["type"] != "password" {
            refused("batch binding takes the root password (auth.type=password)".into())
        } else if window_full(world) {
            refused("at most 10 VMs may be in key pair operations at once".into())
        } else {
            let failure = task_failure(world, server_id, auth, "BIND");
            let task_id = start_task(world, server_id, Some(keypair), "BIND", failure, now);
            if without_task_id && tasks.is_empty() {
                json!({"server_id": server_id, "status": "SUCCESS"})
            } else {
                json!({"task_id": task_id, "server_id": server_id, "status": "SUCCESS"})
            }
        };
        tasks.push(item);
    }
    ok(StatusCode::ACCEPTED, json!({"tasks": tasks}))
}

fn disassociate(world: &mut Place, body: &Value, now: Instant) -> Response {
    let Some(server_id) = body["server"]["id"].as_str() else {
        return param_error("server.id is required");
    };
    let auth = &body["server"]["auth"];
    let Some(vm) = world.vms.get_mut(&(Cloud::Huawei, server_id.to_string())) else {
        return param_error(format!("server {server_id} not found"));
    };
    if vm.busy {
        return param_error(format!("server {server_id} already has a key pair task running"));
    }
    let Some(keypair) = vm.keypair.clone() else {
        return param_error(format!("server {server_id} has no key pair bound"));
    };
    match vm.state_at(now) {
        VmState::Stopped if !auth.is_null() => return param_error("auth must not be set for a stopped server"),
        VmState::Running if auth.is_null() => return param_error("auth is required for a running server"),
        VmState::Transitioning => return param_error(format!("server {server_id} is neither running nor stopped")),
        _ => {}
    }
    if window_full(world) {
        return param_error("at most 10 VMs may be in key pair operations at once");
    }
    let stopped = world.vms[&(Cloud::Huawei, server_id.to_string())].state == VmState::Stopped;
    let failure = if stopped { None } else { task_failure(world, server_id, auth, "UNBIND") };
    let task_id = start_task(world, server_id, Some(&keypair), "UNBIND", failure, now);
    ok(StatusCode::ACCEPTED, json!({"task_id": task_id}))
}

fn task_status(world: &Place, task_id: &str, timing: &Timing, now: Instant) -> Response {
    let Some(task) = world.tasks.get(task_id) else {
        return error(StatusCode::BAD_REQUEST, "KPS.0001", "taskId is illegal");
    };
    let elapsed = now.duration_since(task.created);
    let phase = if task.done {
        if task.failure.is_none() { "SUCCESS" } else { "FAILED" }
    } else if elapsed < timing.task_duration / 3 {
        "READY"
    } else {
        "RUNNING"
    };
    ok(
        StatusCode::OK,
        json!({"server_id": task.server_id, "task_id": task_id, "task_status": format!("{phase}_{}", task.op)}),
    )
}

fn page(req: &Incoming) -> (usize, usize) {
    let limit = req.param("limit").and_then(|l| l.parse().ok()).unwrap_or(1000usize).min(1000);
    let offset = req.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0usize);
    (limit, offset)
}

fn millis(at: Instant) -> String {
    let ago = Instant::now().saturating_duration_since(at);
    (Utc::now() - chrono::Duration::from_std(ago).unwrap_or_default()).timestamp_millis().to_string()
}

fn failed_tasks(world: &Place, req: &Incoming) -> Response {
    let (limit, offset) = page(req);
    let tasks: Vec<Value> = world
        .failed_tasks
        .iter()
        .skip(offset)
        .take(limit)
        .filter_map(|(id, at)| {
            let t = world.tasks.get(id)?;
            let (code, message) = t.failure.clone().unwrap_or_default();
            Some(json!({"task_id": id, "operate_type": format!("FAILED_{}", t.op), "task_time": millis(*at),
                "task_error_code": (!code.is_empty()).then_some(code), "task_error_msg": message,
                "server_name": server_name(&t.server_id), "server_id": t.server_id,
                "keypair_name": t.keypair}))
        })
        .collect();
    ok(StatusCode::OK, json!({"total": world.failed_tasks.len(), "tasks": tasks}))
}

fn running_tasks(world: &Place, req: &Incoming) -> Response {
    let (limit, offset) = page(req);
    let tasks: Vec<Value> = world
        .active_tasks
        .iter()
        .skip(offset)
        .take(limit)
        .filter_map(|id| {
            let t = world.tasks.get(id)?;
            Some(json!({"task_id": id, "operate_type": format!("RUNNING_{}", t.op), "task_time": millis(t.created),
                "server_name": server_name(&t.server_id), "server_id": t.server_id,
                "keypair_name": t.keypair}))
        })
        .collect();
    ok(StatusCode::OK, json!({"total": world.active_tasks.len(), "tasks": tasks}))
}

/// ECS ShowServer: the server's status and key pair.
fn show_server(world: &mut Place, server_id: &str, now: Instant) -> Response {
    let Some(vm) = world.vms.get_mut(&(Cloud::Huawei, server_id.to_string())) else {
        let message = format!("Instance[{server_id}] could not be found.");
        // The API gateway names every answer's request in `X-Request-Id`.
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        return (
            StatusCode::NOT_FOUND,
            [("x-request-id", request_id)],
            axum::Json(json!({"error": {"code": "Ecs.0114", "message": message}})),
        )
            .into_response();
    };
    let status = match vm.state_at(now) {
        VmState::Running => "ACTIVE",
        VmState::Stopped => "SHUTOFF",
        VmState::Transitioning => "REBOOT",
        VmState::Error => "ERROR",
    };
    ok(
        StatusCode::OK,
        json!({"server": {"id": server_id, "name": server_name(server_id), "status": status,
            "key_name": vm.keypair, "OS-EXT-STS:vm_state": if status == "SHUTOFF" { "stopped" } else { "active" }}}),
    )
}

fn keypair_json(world: &Place, name: &str) -> Value {
    let public_key = world.public_keys.get(&(Cloud::Huawei, name.to_string())).cloned().unwrap_or_default();
    json!({"name": name, "type": "ssh", "scope": "user",
        "fingerprint": crate::state::md5_fingerprint(&public_key),
        "public_key": public_key,
        "is_key_protection": false, "frozen_state": 0})
}

/// CreateKeypair with a public key (an import): KPS names neither a duplicate
/// nor a malformed key, so both are `KPS.0002` (the oracle's choice).
fn create_keypair(world: &mut Place, body: &Value) -> Response {
    let keypair = &body["keypair"];
    let (Some(name), Some(public_key)) = (keypair["name"].as_str(), keypair["public_key"].as_str()) else {
        return param_error("keypair.name and keypair.public_key are required (the emulator imports only)");
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
        return param_error("keypair.name is invalid");
    }
    if world.hw_keypairs.contains_key(name) {
        return param_error(format!("key pair {name} already exists"));
    }
    if keypair_binder_core::PublicKey::parse(public_key).is_err() {
        return param_error("keypair.public_key is invalid");
    }
    world.hw_keypairs.insert(name.to_string(), crate::state::private_key_for(name));
    world.public_keys.insert((Cloud::Huawei, name.to_string()), public_key.to_string());
    let fingerprint = crate::state::md5_fingerprint(public_key);
    ok(
        StatusCode::OK,
        json!({"keypair": {"name": name, "type": "ssh", "public_key": public_key,
        "fingerprint": fingerprint, "user_id": "emulator-user"}}),
    )
}

fn list_keypairs(world: &Place, req: &Incoming) -> Response {
    let limit = req.param("limit").and_then(|l| l.parse().ok()).unwrap_or(50usize).clamp(1, 1000);
    let names: Vec<&String> = world
        .hw_keypairs
        .keys()
        .filter(|n| req.param("marker").is_none_or(|m| n.as_str() > m))
        .take(limit + 1)
        .collect();
    let more = names.len() > limit;
    let shown: Vec<Value> = names.iter().take(limit).map(|n| json!({"keypair": keypair_json(world, n)})).collect();
    let mut page_info = json!({"current_count": shown.len()});
    if more && let Some(last) = names.get(limit - 1) {
        page_info["next_marker"] = json!(last);
    }
    ok(StatusCode::OK, json!({"keypairs": shown, "page_info": page_info}))
}

fn show_keypair(world: &Place, name: &str) -> Response {
    if !world.hw_keypairs.contains_key(name) {
        return error(StatusCode::NOT_FOUND, "KPS.6004", "No Keypair find");
    }
    let mut detail = keypair_json(world, name);
    detail["id"] = json!(1);
    detail["deleted"] = json!(false);
    detail["description"] = json!("");
    ok(StatusCode::OK, json!({"keypair": detail}))
}

/// The name KPS shows for a VM: `vm-` and the start of its id.
fn server_name(server_id: &str) -> String {
    format!("vm-{}", server_id.chars().take(8).collect::<String>())
}
