//! The emulated Volcengine ECS: `AttachKeyPair`, `DetachKeyPair`,
//! `DescribeInstances` and `DescribeKeyPairs` (2020-04-01), with `ClientToken`
//! idempotency and per-instance `OperationDetails`.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use keypair_binder_core::Secret;
use keypair_binder_core::sha256_hex;
use keypair_binder_core::signing::parse_compact_utc;
use keypair_binder_volcengine::request::{EcsSigner, StsSigner};
use keypair_binder_volcengine::signer::{Credentials, parse_authorization};
use keypair_binder_volcengine::wire::{API_VERSION, MAX_INSTANCES_PER_CALL};
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::Fault;
use crate::inventory::{Cloud, Os, VmState};
use crate::metadata::{Issued, issued};
use crate::server::{Answer, Incoming};
use crate::state::{DEFAULT_ACCOUNT, Place, TokenRecord};

/// The action of an ECS call, if this is one (`GET /?Action=…`).
pub(crate) fn action(req: &Incoming) -> Option<String> {
    (req.path == "/").then(|| req.param("Action").map(str::to_string)).flatten()
}

fn request_id() -> String {
    format!("{}{}", Utc::now().format("%Y%m%d%H%M%S"), uuid::Uuid::new_v4().simple().to_string()[..20].to_uppercase())
}

/// An error answer in the gateway's envelope.
pub(crate) fn error(status: StatusCode, code: &str, message: &str, action: &str, code_n: Option<u32>) -> Response {
    let mut err = json!({"Code": code, "Message": message});
    if let Some(n) = code_n {
        err["CodeN"] = json!(n);
    }
    let body = json!({"ResponseMetadata": {"RequestId": request_id(), "Action": action, "Version": API_VERSION,
        "Service": "ecs", "Error": err}});
    (status, axum::Json(body)).into_response()
}

fn success(action: &str, region: &str, result: Value) -> (u16, String) {
    let body = json!({"ResponseMetadata": {"RequestId": request_id(), "Action": action, "Version": API_VERSION,
        "Service": "ecs", "Region": region}, "Result": result});
    (200, body.to_string())
}

fn raw(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [("content-type", "application/json")], body).into_response()
}

pub(crate) fn handle(shared: &Shared, req: &Incoming, action: &str, fault: Option<&Fault>, now: Instant) -> Answer {
    if req.param("Version") != Some(API_VERSION) {
        let message = "the action or version does not exist";
        return Answer::new(error(StatusCode::NOT_FOUND, "InvalidActionOrVersion", message, action, None), 0);
    }
    let (account, region) = match authenticate(shared, req, action) {
        Ok(place) => place,
        Err(response) => return Answer::new(response, 0),
    };
    let in_region = shared.credentials.serves(Cloud::Volcengine, &account, &region);
    let ids: Vec<String> = (1..).map_while(|n| req.param(&format!("InstanceIds.{n}")).map(str::to_string)).collect();
    let count = ids.len();
    let response = match action {
        "AttachKeyPair" | "DetachKeyPair" => {
            let throttle_all = matches!(fault, Some(Fault::InstanceThrottle));
            let omit_first = matches!(fault, Some(Fault::OmitFirstInstance));
            keypair_call(shared, req, action, (&account, &region), in_region, ids, throttle_all, omit_first, now)
        }
        "DescribeInstances" => {
            describe_instances(shared.world().place(&account, &region), req, &region, in_region, ids, now)
        }
        "DescribeKeyPairs" => describe_keypairs(shared.world().place(&account, &region), req, &region, in_region),
        "ImportKeyPair" => import_keypair(shared.world().place(&account, &region), req, &region, in_region),
        _ => {
            error(StatusCode::NOT_FOUND, "InvalidActionOrVersion", "the action or version does not exist", action, None)
        }
    };
    Answer::new(response, count)
}

/// Verifies the signature in the `ecs` scope; returns the region of its credential scope.
fn authenticate(shared: &Shared, req: &Incoming, action: &str) -> Result<(String, String), Response> {
    authenticate_as(shared, req, action, "ecs")
}

/// Verifies the signature in `service`'s scope (`ecs`, or `sts` for
/// `AssumeRole`); the account the key belongs to and the region signed for.
pub(crate) fn authenticate_as(
    shared: &Shared,
    req: &Incoming,
    action: &str,
    service: &str,
) -> Result<(String, String), Response> {
    let creds = &shared.credentials.volcengine;
    let fail = |status, code: &str, message: &str, n| Err(error(status, code, message, action, Some(n)));
    let Some(authorization) = req.header("authorization") else {
        return fail(StatusCode::UNAUTHORIZED, "MissingAuthenticationToken", "no Authorization header", 100_004);
    };
    let Some(auth) = parse_authorization(authorization) else {
        return fail(StatusCode::BAD_REQUEST, "InvalidAuthorization", "the Authorization header is malformed", 100_024);
    };
    let mut account = DEFAULT_ACCOUNT.to_string();
    let (sk, token) = if let Some((name, sk)) = shared.credentials.account_of(Cloud::Volcengine, &auth.access_key) {
        account = name.to_string();
        (sk.to_string(), None)
    } else if auth.access_key == creds.sts_ak {
        (creds.sts_sk.clone(), Some(creds.session_token.clone()))
    } else {
        match issued(shared, Cloud::Volcengine, &auth.access_key) {
            Issued::Valid { secret, token } => (secret, Some(token)),
            Issued::Expired => {
                return fail(StatusCode::UNAUTHORIZED, "InvalidSecretToken", "the session token has expired", 100_026);
            }
            Issued::Unknown => {
                let message = format!("access key {} is not known to this server", auth.access_key);
                return fail(StatusCode::UNAUTHORIZED, "InvalidAccessKey", &message, 100_009);
            }
        }
    };
    if !auth.signed_headers.iter().any(|h| h == "host") || !auth.signed_headers.iter().any(|h| h == "x-date") {
        return fail(StatusCode::BAD_REQUEST, "InvalidAuthorization", "host and x-date must be signed", 100_024);
    }
    let x_date = req.header("x-date").unwrap_or("");
    let Some(at) = parse_compact_utc(x_date) else {
        return fail(StatusCode::BAD_REQUEST, "InvalidAuthorization", "X-Date is malformed", 100_024);
    };
    if (Utc::now() - at).abs().to_std().unwrap_or_default() > shared.timing.max_skew
        || !auth.date.starts_with(&x_date[..8])
    {
        return fail(StatusCode::FORBIDDEN, "InvalidTimestamp", "X-Date is too far from the server's clock", 100_011);
    }
    if token.as_deref().is_some_and(|t| req.header("x-security-token") != Some(t)) {
        return fail(StatusCode::UNAUTHORIZED, "InvalidSecretToken", "session token missing or invalid", 100_026);
    }
    let body_hash = sha256_hex(&req.body);
    if req.header("x-content-sha256").is_some_and(|h| h != body_hash) {
        return fail(
            StatusCode::UNAUTHORIZED,
            "SignatureDoesNotMatch",
            "X-Content-Sha256 does not match the body",
            100_010,
        );
    }
    let credentials = Credentials {
        access_key: auth.access_key.clone(),
        secret_key: Secret::new(sk.as_str()),
        token: token.map(Secret::new),
    };
    let query = keypair_binder_volcengine::signer::canonical_query(&req.query);
    let signed = match (auth.service.as_str(), service) {
        ("ecs", "ecs") => req.signed_by(&EcsSigner { region: auth.region.clone() }, &credentials, &query, at),
        ("sts", "sts") => req.signed_by(&StsSigner { region: auth.region.clone() }, &credentials, &query, at),
        _ => false,
    };
    if !signed {
        return fail(
            StatusCode::UNAUTHORIZED,
            "SignatureDoesNotMatch",
            "the request signature does not match",
            100_010,
        );
    }
    Ok((account, auth.region))
}

#[allow(clippy::too_many_arguments)]
fn keypair_call(
    shared: &Shared,
    req: &Incoming,
    action: &str,
    (account, region): (&str, &str),
    in_region: bool,
    ids: Vec<String>,
    throttle_all: bool,
    omit_first: bool,
    now: Instant,
) -> Response {
    let bad = |code: &str, message: &str| error(StatusCode::BAD_REQUEST, code, message, action, None);
    if ids.is_empty() {
        return bad("MissingParameter.InstanceIds", "InstanceIds.N is required");
    }
    if ids.len() > MAX_INSTANCES_PER_CALL || req.param("InstanceIds.101").is_some() {
        return bad("LimitExceeded.MaximumInstanceIds", "no more than 100 InstanceIds may be given");
    }
    let (name, id) = (req.param("KeyPairName"), req.param("KeyPairId"));
    if name.is_none() && id.is_none() {
        return bad("MissingParameter.KeyPairNameAndKeyPairId", "either KeyPairName or KeyPairId is required");
    }
    let token = req.param("ClientToken");
    if token.is_some_and(|t| !t.is_ascii() || t.len() > 64 || t.is_empty()) {
        return bad("InvalidClientToken.Malformed", "ClientToken must be ASCII and at most 64 characters");
    }
    let mut params: Vec<&(String, String)> = req.query.iter().filter(|(k, _)| k != "ClientToken").collect();
    params.sort();
    let joined: String = params.iter().map(|(k, v)| format!("{k}\u{0}{v}\u{0}")).collect();
    let fingerprint = sha256_hex(joined.as_bytes());

    // Decide and apply under the lock; build the answer outside it.
    let problems = {
        let mut guard = shared.world();
        let world = guard.place(account, region);
        let keypair = world
            .volc_keypairs
            .iter()
            .find(|(n, i)| in_region && if let Some(id) = id { i == id } else { Some(n.as_str()) == name })
            .cloned();
        let Some((kp_name, _)) = keypair else {
            return error(
                StatusCode::NOT_FOUND,
                "InvalidKeyPair.NotFound",
                "the key pair does not exist",
                action,
                None,
            );
        };
        if let Some(token) = token {
            match world.tokens.get(token) {
                Some(TokenRecord::Done { fingerprint: f, status, body, ready_at }) if *f == fingerprint => {
                    if now < *ready_at {
                        let msg = "a request with this ClientToken is still being processed";
                        return error(StatusCode::PRECONDITION_FAILED, "IdempotentProcessing", msg, action, None);
                    }
                    return raw(*status, body.clone());
                }
                Some(TokenRecord::InProgress { fingerprint: f }) if *f == fingerprint => {
                    let msg = "a request with this ClientToken is still being processed";
                    return error(StatusCode::PRECONDITION_FAILED, "IdempotentProcessing", msg, action, None);
                }
                Some(_) => {
                    return bad(
                        "IdempotentParameterMismatch",
                        "ClientToken was already used with different parameters",
                    );
                }
                None => {
                    world
                        .tokens
                        .insert(token.to_string(), TokenRecord::InProgress { fingerprint: fingerprint.clone() });
                }
            }
        }
        let attach = action == "AttachKeyPair";
        ids.iter()
            .map(|instance| apply_one(shared, world, instance, &kp_name, attach, in_region, throttle_all, now))
            .collect::<Vec<_>>()
    };
    let details: Vec<Detail<'_>> = ids
        .iter()
        .zip(problems)
        .skip(usize::from(omit_first))
        .map(|(instance, problem)| Detail {
            instance_id: instance,
            error: problem.map(|(code, message)| DetailError { code, message }),
        })
        .collect();
    let (status, body) = success(action, region, json!({"OperationDetails": details}));
    if let Some(token) = token {
        let ready_at = now + shared.timing.processing;
        let record = TokenRecord::Done { fingerprint, status, body: body.clone(), ready_at };
        shared.world().place(account, region).tokens.insert(token.to_string(), record);
    }
    raw(status, body)
}

/// One entry of `OperationDetails`.
#[derive(serde::Serialize)]
struct Detail<'a> {
    #[serde(rename = "InstanceId")]
    instance_id: &'a str,
    #[serde(rename = "Error")]
    error: Option<DetailError>,
}

#[derive(serde::Serialize)]
struct DetailError {
    #[serde(rename = "Code")]
    code: &'static str,
    #[serde(rename = "Message")]
    message: String,
}

/// Applies the call to one instance, or says why it cannot.
#[allow(clippy::too_many_arguments)]
fn apply_one(
    shared: &Shared,
    world: &mut Place,
    instance: &str,
    keypair: &str,
    attach: bool,
    in_region: bool,
    throttle_all: bool,
    now: Instant,
) -> Option<(&'static str, String)> {
    let key = (Cloud::Volcengine, instance.to_string());
    let Some(vm) = world.vms.get_mut(&key).filter(|_| in_region) else {
        return Some(("InvalidInstance.NotFound", format!("instance {instance} does not exist")));
    };
    if vm.os == Os::Windows {
        return Some((
            "InvalidKeyPairForWindows.Unsupported",
            "key pairs cannot be used with Windows instances".into(),
        ));
    }
    if !vm.agent {
        return Some((
            "InvalidResetAuthenticationAgent.NotFound",
            "the instance has no password reset agent installed".into(),
        ));
    }
    if matches!(vm.state_at(now), VmState::Transitioning | VmState::Error) {
        return Some(("InvalidInstanceStatus", format!("instance {instance} is STARTING")));
    }
    if throttle_all || shared.faults.instance_throttled() {
        return Some(("FlowLimitExceeded", "flow limit exceeded for this instance".into()));
    }
    let changed = if attach {
        vm.keypair = Some(keypair.to_string());
        true
    } else if vm.keypair.as_deref() == Some(keypair) {
        vm.keypair = None;
        true
    } else {
        false
    };
    if changed {
        world.applied(Cloud::Volcengine, instance);
    }
    None
}

fn paging(req: &Incoming) -> (usize, usize) {
    let max = req.param("MaxResults").and_then(|m| m.parse().ok()).unwrap_or(10usize).clamp(1, 100);
    let start = req.param("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0usize);
    (max, start)
}

fn next_token(start: usize, shown: usize, total: usize) -> String {
    if start + shown < total { (start + shown).to_string() } else { String::new() }
}

fn describe_instances(
    world: &mut Place,
    req: &Incoming,
    region: &str,
    in_region: bool,
    ids: Vec<String>,
    now: Instant,
) -> Response {
    let (max, start) = paging(req);
    let all: Vec<String> = if !in_region {
        Vec::new()
    } else if ids.is_empty() {
        world.order.get(&Cloud::Volcengine).cloned().unwrap_or_default()
    } else {
        ids.into_iter().filter(|i| world.vms.contains_key(&(Cloud::Volcengine, i.clone()))).collect()
    };
    let keypair_ids = world.volc_keypairs.clone();
    let mut instances = Vec::new();
    for id in all.iter().skip(start).take(max) {
        let Some(vm) = world.vms.get_mut(&(Cloud::Volcengine, id.clone())) else { continue };
        let status = match vm.state_at(now) {
            VmState::Running => "RUNNING",
            VmState::Stopped => "STOPPED",
            VmState::Transitioning => "STARTING",
            VmState::Error => "ERROR",
        };
        let name = vm.keypair.clone().unwrap_or_default();
        let kp_id = keypair_ids.iter().find(|(n, _)| *n == name).map(|(_, i)| i.clone()).unwrap_or_default();
        instances.push(json!({"InstanceId": id, "InstanceName": id, "Status": status,
            "OsType": if vm.os == Os::Windows { "Windows" } else { "Linux" }, "ZoneId": format!("{region}-a"),
            "KeyPairName": name, "KeyPairId": kp_id}));
    }
    let shown = instances.len();
    let (_, body) = success(
        "DescribeInstances",
        region,
        json!({"Instances": instances, "TotalCount": all.len(), "NextToken": next_token(start, shown, all.len())}),
    );
    raw(200, body)
}

/// MD5 of a key pair's key, bare lower-case hex (the oracle's reading of the docs' example).
fn fingerprint(world: &Place, name: &str) -> String {
    let key = world.public_keys.get(&(Cloud::Volcengine, name.to_string())).map(String::as_str).unwrap_or("");
    crate::state::md5_fingerprint(key).replace(':', "")
}

/// `ImportKeyPair`: a `ClientToken` seen before with the same parameters
/// is answered with the first result; a duplicate name is
/// `InvalidKeyPair.Duplicate`, a bad key `InvalidPublicKey.Malformed` (the
/// oracle's codes; the docs name neither).
fn import_keypair(world: &mut Place, req: &Incoming, region: &str, in_region: bool) -> Response {
    let action = "ImportKeyPair";
    let bad = |code: &str, message: &str| error(StatusCode::BAD_REQUEST, code, message, action, None);
    let (Some(name), Some(public_key)) = (req.param("KeyPairName"), req.param("PublicKey")) else {
        return bad("MissingParameter", "KeyPairName and PublicKey are required");
    };
    let fingerprint_of_call = sha256_hex(format!("{name}\u{0}{public_key}").as_bytes());
    let token = req.param("ClientToken").map(str::to_string);
    if let Some(TokenRecord::Done { fingerprint, status, body, .. }) = token.as_ref().and_then(|t| world.tokens.get(t))
    {
        if *fingerprint != fingerprint_of_call {
            return bad("IdempotentParameterMismatch", "ClientToken was already used with different parameters");
        }
        return raw(*status, body.clone());
    }
    let valid = name.len() >= 2
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !in_region {
        return bad("InvalidRegion", "the region is not served");
    }
    if !valid {
        return bad("InvalidKeyPairName.Malformed", "the key pair name is malformed");
    }
    if world.volc_keypairs.iter().any(|(n, _)| n == name) {
        return bad("InvalidKeyPair.Duplicate", "a key pair with this name already exists");
    }
    if keypair_binder_core::PublicKey::parse(public_key).is_err() {
        return bad("InvalidPublicKey.Malformed", "the public key is malformed");
    }
    let id = format!("kp-imp{}", &sha256_hex(format!("{region}/{name}").as_bytes())[..17]);
    world.volc_keypairs.push((name.to_string(), id.clone()));
    world.public_keys.insert((Cloud::Volcengine, name.to_string()), public_key.to_string());
    let result = json!({"KeyPairId": id, "KeyPairName": name, "FingerPrint": fingerprint(world, name)});
    let (status, body) = success(action, region, result);
    if let Some(token) = token {
        let ready_at = std::time::Instant::now();
        world.tokens.insert(
            token,
            TokenRecord::Done { fingerprint: fingerprint_of_call, status, body: body.clone(), ready_at },
        );
    }
    raw(status, body)
}

fn describe_keypairs(world: &Place, req: &Incoming, region: &str, in_region: bool) -> Response {
    let (max, start) = paging(req);
    let names: Vec<&str> = (1..).map_while(|n| req.param(&format!("KeyPairNames.{n}"))).collect();
    let ids: Vec<&str> = (1..).map_while(|n| req.param(&format!("KeyPairIds.{n}"))).collect();
    let all: Vec<&(String, String)> = world
        .volc_keypairs
        .iter()
        .filter(|(n, i)| {
            in_region
                && (names.is_empty() || names.contains(&n.as_str()))
                && (ids.is_empty() || ids.contains(&i.as_str()))
        })
        .collect();
    let shown: Vec<Value> = all
        .iter()
        .skip(start)
        .take(max)
        .map(|(n, i)| {
            json!({"KeyPairId": i, "KeyPairName": n, "FingerPrint": fingerprint(world, n),
            "Description": "", "ProjectName": "default", "CreatedAt": "2026-01-01T00:00:00+08:00"})
        })
        .collect();
    let next = next_token(start, shown.len(), all.len());
    let (_, body) =
        success("DescribeKeyPairs", region, json!({"KeyPairs": shown, "TotalCount": all.len(), "NextToken": next}));
    raw(200, body)
}
