//! The emulated Tencent Cloud CVM: TC3-signed `AssociateInstancesKeyPairs`,
//! `DisassociateInstancesKeyPairs`, `DescribeInstances` and
//! `DescribeKeyPairs` (API 2017-03-12). Calls validate all-or-nothing and
//! start an operation per instance that is `OPERATING` for the task
//! duration, then `SUCCESS` or `FAILED`, as `DescribeInstances` shows it.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use keypair_binder_core::Secret;
use keypair_binder_tencent::request::CvmSigner;
use keypair_binder_tencent::signer::Credentials;
use keypair_binder_tencent::wire::{MAX_IDS_PER_CALL, VERSION};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::inventory::{Cloud, Os, VmState};
use crate::metadata::{Issued, issued};
use crate::server::{Answer, Incoming};
use crate::state::{DEFAULT_ACCOUNT, Place, TencentOp};
use crate::{Shared, Timing};

/// `DescribeInstances` answers 20 instances unless told otherwise.
const DEFAULT_LIMIT: usize = 20;
/// A request signed further than this from the server's clock is refused.
const MAX_SKEW_SECS: i64 = 300;

/// The action of a CVM call (`X-TC-Action`), if this is one.
pub(crate) fn action(req: &Incoming) -> Option<String> {
    req.header("x-tc-action").map(str::to_string)
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn answer(body: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({ "Response": body }))).into_response()
}

/// An error answer: HTTP 200 with `Response.Error`, as CVM sends them.
pub(crate) fn error(code: &str, message: &str) -> Response {
    answer(json!({"Error": {"Code": code, "Message": message}, "RequestId": request_id()}))
}

/// A non-200 answer, as a gateway in front of CVM might give.
pub(crate) fn gateway(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"Response": {"Error": {"Code": "InternalError", "Message": message},
        "RequestId": request_id()}})),
    )
        .into_response()
}

fn authenticate(shared: &Shared, req: &Incoming) -> Result<String, Response> {
    authenticate_with(shared, req, &CvmSigner)
}

/// Verifies a TC3 signature made by `signer` (CVM's scope, or STS's for
/// `AssumeRole`); the account the key belongs to.
pub(crate) fn authenticate_with(
    shared: &Shared,
    req: &Incoming,
    signer: &dyn keypair_binder_core::kit::Signer,
) -> Result<String, Response> {
    let creds = &shared.credentials.tencent;
    let Some(authorization) = req.header("authorization") else {
        return Err(error("AuthFailure.InvalidAuthorization", "The Authorization header is missing."));
    };
    let Some(secret_id) = authorization.split("Credential=").nth(1).and_then(|r| r.split('/').next()) else {
        return Err(error("AuthFailure.InvalidAuthorization", "The Authorization header is malformed."));
    };
    let temporary = |secret: &str, token: &str| {
        if req.header("x-tc-token") != Some(token) {
            return Err(error("AuthFailure.TokenFailure", "The token is invalid or expired."));
        }
        Ok((secret.to_string(), Some(token.to_string())))
    };
    let mut account = DEFAULT_ACCOUNT.to_string();
    let (secret_key, token) = if let Some((name, key)) = shared.credentials.account_of(Cloud::Tencent, secret_id) {
        account = name.to_string();
        (key.to_string(), None)
    } else if secret_id == creds.sts_secret_id {
        temporary(&creds.sts_secret_key, &creds.token)?
    } else {
        match issued(shared, Cloud::Tencent, secret_id) {
            Issued::Valid { secret, token } => temporary(&secret, &token)?,
            Issued::Expired => return Err(error("AuthFailure.TokenFailure", "The token has expired.")),
            Issued::Unknown => return Err(error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")),
        }
    };
    let Some(timestamp) = req.header("x-tc-timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return Err(error("MissingParameter", "The request is missing X-TC-Timestamp."));
    };
    if (Utc::now().timestamp() - timestamp).abs() > MAX_SKEW_SECS {
        return Err(error("AuthFailure.SignatureExpire", "The signature expired: the timestamp is too far off."));
    }
    let key = Credentials {
        access_key: secret_id.to_string(),
        secret_key: Secret::new(secret_key.as_str()),
        token: token.map(Secret::new),
    };
    let at = DateTime::<Utc>::from_timestamp(timestamp, 0).unwrap_or_default();
    if !req.signed_by(signer, &key, "", at) {
        return Err(error("AuthFailure.SignatureFailure", "The provided credentials could not be validated."));
    }
    Ok(account)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct KeyPairsBody {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    key_ids: Vec<String>,
    #[serde(default)]
    force_stop: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DescribeInstancesBody {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DescribeKeyPairsBody {
    #[serde(default)]
    key_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<FilterBody>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ImportKeyPairBody {
    #[serde(default)]
    key_name: String,
    #[serde(default)]
    project_id: Option<i64>,
    #[serde(default)]
    public_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterBody {
    name: String,
    values: Vec<String>,
}

fn body<T: serde::de::DeserializeOwned>(req: &Incoming) -> Result<T, Response> {
    serde_json::from_slice(&req.body)
        .map_err(|e| error("UnknownParameter", &format!("The request body is invalid: {e}")))
}

pub(crate) fn handle(shared: &Shared, req: &Incoming, action: &str, now: Instant) -> Answer {
    if req.header("x-tc-version") != Some(VERSION) {
        return Answer::new(error("NoSuchVersion", "The API version does not exist."), 0);
    }
    let account = match authenticate(shared, req) {
        Ok(account) => account,
        Err(response) => return Answer::new(response, 0),
    };
    let region = req.header("x-tc-region").unwrap_or("");
    if !shared.credentials.serves(Cloud::Tencent, &account, region) {
        return Answer::new(error("UnsupportedRegion", "The region is not supported."), 0);
    }
    let mut guard = shared.world();
    let world = guard.place(&account, region);
    advance(world, &shared.timing, now);
    let result = match action {
        "AssociateInstancesKeyPairs" | "DisassociateInstancesKeyPairs" => {
            body(req).map(|b| keypair_call(world, &shared.timing, action, b, now))
        }
        "DescribeInstances" => body(req).map(|b| Answer::new(describe_instances(world, b), 0)),
        "DescribeKeyPairs" => body(req).map(|b| Answer::new(describe_keypairs(world, b), 0)),
        "ImportKeyPair" => body(req).map(|b| Answer::new(import_keypair(world, region, b), 0)),
        _ => Ok(Answer::new(error("InvalidAction", "The action does not exist."), 0)),
    };
    result.unwrap_or_else(|response| Answer::new(response, 0))
}

/// Ends the operations whose time is up.
pub(crate) fn advance(world: &mut Place, timing: &Timing, now: Instant) {
    let mut ended = Vec::new();
    for (id, op) in &mut world.tc_ops {
        if op.state == "OPERATING" && now >= op.started + timing.task_duration {
            op.state = if op.error.is_some() { "FAILED" } else { "SUCCESS" };
            ended.push((id.clone(), op.error.is_none(), op.keypair.clone(), op.restart));
        }
    }
    for (id, ok, keypair, restart) in ended {
        if let Some(vm) = world.vms.get_mut(&(Cloud::Tencent, id)) {
            if ok {
                vm.keypair = keypair;
            }
            if restart {
                vm.state = VmState::Running;
            }
        }
    }
}

/// All-or-nothing validation, then one operation per instance.
fn keypair_call(world: &mut Place, timing: &Timing, action: &str, body: KeyPairsBody, now: Instant) -> Answer {
    let ids = body.instance_ids;
    if ids.is_empty() || body.key_ids.is_empty() {
        return Answer::new(error("MissingParameter", "InstanceIds and KeyIds are required."), 0);
    }
    if ids.len() > MAX_IDS_PER_CALL || body.key_ids.len() > MAX_IDS_PER_CALL {
        return Answer::new(error("InvalidParameterValue.LimitExceeded", "Too many ids in one request."), 0);
    }
    let mut names = Vec::new();
    for key in &body.key_ids {
        match world.tc_keypairs.iter().find(|(_, id)| id == key) {
            Some((name, _)) => names.push(name.clone()),
            None => {
                return Answer::new(
                    error("InvalidKeyPairId.NotFound", &format!("The key pair `{key}` does not exist.")),
                    0,
                );
            }
        }
    }
    let force = body.force_stop == Some(true);
    let refuse = |code: &str, what: &str, bad: &[&String]| {
        let list = bad.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ");
        Answer::new(error(code, &format!("The instance(s) {list} {what}.")), 0)
    };
    let missing: Vec<&String> =
        ids.iter().filter(|id| !world.vms.contains_key(&(Cloud::Tencent, (*id).clone()))).collect();
    if !missing.is_empty() {
        return refuse("InvalidInstanceId.NotFound", "do not exist", &missing);
    }
    let busy: Vec<&String> =
        ids.iter().filter(|id| world.tc_ops.get(*id).is_some_and(|op| op.state == "OPERATING")).collect();
    if !busy.is_empty() {
        return refuse("OperationDenied.InstanceOperationInProgress", "have an operation in progress", &busy);
    }
    let vm = |world: &mut Place, id: &String| {
        world.vms.get_mut(&(Cloud::Tencent, id.clone())).map(|vm| (vm.os, vm.image_supported, vm.state_at(now)))
    };
    let mut windows = Vec::new();
    let mut unsupported = false;
    let mut starting = Vec::new();
    let mut running = Vec::new();
    for id in &ids {
        match vm(world, id) {
            Some((Os::Windows, _, _)) => windows.push(id),
            Some((Os::Linux, false, _)) => unsupported = true,
            Some((_, _, VmState::Transitioning | VmState::Error)) => starting.push(id),
            Some((_, _, VmState::Running)) if !force => running.push(id),
            _ => {}
        }
    }
    if !windows.is_empty() {
        return refuse(
            "UnsupportedOperation.InstanceOsWindows",
            "run Windows, which key pairs do not support",
            &windows,
        );
    }
    if unsupported {
        // The real API does not always say which instance it means.
        return Answer::new(
            error(
                "InvalidInstance.NotSupported",
                "The request contains an instance that does not support this operation.",
            ),
            0,
        );
    }
    if !starting.is_empty() {
        return refuse("UnsupportedOperation.InstanceStateStarting", "are starting", &starting);
    }
    if !running.is_empty() {
        return refuse(
            "UnsupportedOperation.InstanceStateRunning",
            "are running; stop them or set ForceStop",
            &running,
        );
    }
    let request_id = request_id();
    let bind = action == "AssociateInstancesKeyPairs";
    for id in &ids {
        let Some(vm) = world.vms.get_mut(&(Cloud::Tencent, id.clone())) else { continue };
        let restart = vm.state == VmState::Running;
        if restart {
            vm.state = VmState::Stopped;
        }
        let keypair = if bind { names.first().cloned() } else { vm.keypair.clone().filter(|k| !names.contains(k)) };
        // An instance without a working agent image takes the call but its operation fails.
        let error = (!vm.agent).then(|| "cloud-init did not respond: the key could not be written".to_string());
        let op = TencentOp {
            action: action.to_string(),
            request_id: request_id.clone(),
            state: "OPERATING",
            started: now,
            error,
            keypair,
            restart,
        };
        world.tc_ops.insert(id.clone(), op);
        world.applied(Cloud::Tencent, id);
    }
    // A zero task duration ends the operations at once.
    advance(world, timing, now);
    Answer::new(answer(json!({"RequestId": request_id})), ids.len())
}

fn key_id_of(world: &Place, name: &str) -> Option<String> {
    world.tc_keypairs.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone())
}

fn describe_instances(world: &Place, body: DescribeInstancesBody) -> Response {
    let limit = body.limit.unwrap_or(DEFAULT_LIMIT).min(100);
    let known: Vec<&String> =
        body.instance_ids.iter().filter(|id| world.vms.contains_key(&(Cloud::Tencent, (*id).clone()))).collect();
    let set: Vec<Value> = known
        .iter()
        .take(limit)
        .filter_map(|id| {
            let vm = world.vms.get(&(Cloud::Tencent, (*id).clone()))?;
            let op = world.tc_ops.get(*id);
            let state = match vm.state {
                VmState::Running => "RUNNING",
                VmState::Stopped => "STOPPED",
                VmState::Transitioning if vm.became_running_at.is_some_and(|at| Instant::now() >= at) => "RUNNING",
                VmState::Transitioning => "STARTING",
                VmState::Error => "LAUNCH_FAILED",
            };
            let os_name = match (vm.os, vm.image_supported) {
                (Os::Windows, true) => "Windows Server 2019 DataCenter 64bit",
                // A custom image whose name does not tell.
                (Os::Windows, false) => "Custom image",
                (Os::Linux, _) => "TencentOS Server 3.1 (TK4)",
            };
            let key_ids: Option<Vec<String>> = vm.keypair.as_deref().and_then(|k| key_id_of(world, k)).map(|k| vec![k]);
            Some(json!({
                "InstanceId": id,
                "InstanceState": state,
                "OsName": os_name,
                "LoginSettings": {"KeyIds": key_ids},
                "LatestOperation": op.map(|o| o.action.clone()),
                "LatestOperationState": op.map(|o| o.state),
                "LatestOperationRequestId": op.map(|o| o.request_id.clone()),
                "LatestOperationErrorMsg": op.and_then(|o| o.error.clone()),
                "StopChargingMode": if state == "STOPPED" { "KEEP_CHARGING" } else { "NOT_APPLICABLE" },
            }))
        })
        .collect();
    answer(json!({"TotalCount": known.len(), "InstanceSet": set, "RequestId": request_id()}))
}

fn describe_keypairs(world: &Place, body: DescribeKeyPairsBody) -> Response {
    if !body.key_ids.is_empty() && !body.filters.is_empty() {
        return error("InvalidParameter", "KeyIds and Filters cannot be used together.");
    }
    let names: Vec<&String> = body.filters.iter().filter(|f| f.name == "key-name").flat_map(|f| &f.values).collect();
    let set: Vec<Value> = world
        .tc_keypairs
        .iter()
        .filter(|(name, id)| {
            (body.key_ids.is_empty() || body.key_ids.contains(id)) && (names.is_empty() || names.contains(&name))
        })
        .take(body.limit.unwrap_or(DEFAULT_LIMIT).min(100))
        .map(|(name, id)| {
            let bound: Vec<&String> = world
                .vms
                .iter()
                .filter(|((cloud, _), vm)| *cloud == Cloud::Tencent && vm.keypair.as_ref() == Some(name))
                .map(|((_, vm_id), _)| vm_id)
                .collect();
            let public_key = world.public_keys.get(&(Cloud::Tencent, name.clone()));
            json!({"KeyId": id, "KeyName": name, "AssociatedInstanceIds": bound, "PublicKey": public_key})
        })
        .collect();
    answer(json!({"TotalCount": set.len(), "KeyPairSet": set, "RequestId": request_id()}))
}

/// `ImportKeyPair`: checked in the oracle's order (parameters, name,
/// project, key format, duplicate name, duplicate key), all in the region.
fn import_keypair(world: &mut Place, region: &str, body: ImportKeyPairBody) -> Response {
    let name = body.key_name.as_str();
    if name.is_empty() || body.public_key.is_empty() || body.project_id.is_none() {
        return error("MissingParameter", "KeyName, ProjectId and PublicKey are required.");
    }
    if name.chars().count() > 25 {
        return error("InvalidKeyPairNameTooLong", "The key pair name is longer than 25 characters.");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return error("InvalidKeyPairNameIncludeIllegalChar", "The key pair name has an illegal character.");
    }
    if body.project_id != Some(0) {
        return error("InvalidProjectId.NotFound", "The project does not exist.");
    }
    let Ok(key) = keypair_binder_core::PublicKey::parse(&body.public_key) else {
        return error("InvalidPublicKey.Malformed", "The public key is malformed.");
    };
    if world.tc_keypairs.iter().any(|(n, _)| n == name) {
        return error("InvalidKeyPairName.Duplicate", "A key pair with this name exists.");
    }
    let same_key = world.public_keys.iter().any(|((c, _), k)| *c == Cloud::Tencent && key.same_as(k));
    if same_key {
        return error("InvalidPublicKey.Duplicate", "This public key is already registered.");
    }
    let id = format!("skey-{}", &keypair_binder_core::sha256_hex(format!("{region}/{name}").as_bytes())[..8]);
    world.tc_keypairs.push((name.to_string(), id.clone()));
    world.public_keys.insert((Cloud::Tencent, name.to_string()), body.public_key);
    answer(json!({"KeyId": id, "RequestId": request_id()}))
}
