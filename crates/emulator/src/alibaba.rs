//! The emulated Alibaba Cloud ECS: ACS3-signed `AttachKeyPair`,
//! `DetachKeyPair` and `DescribeInstances` (API 2014-05-26), with the
//! per-instance `Results` of the real API.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, Utc};
use keypair_binder_alibaba::request::AcsSigner;
use keypair_binder_alibaba::signer::{API_VERSION, AccessKey, canonical_query};
use keypair_binder_alibaba::wire::MAX_INSTANCES_PER_CALL;
use keypair_binder_core::Secret;
use serde_json::{Value, json};

use crate::Shared;
use crate::inventory::{Cloud, Os, VmState};
use crate::metadata::{Issued, issued};
use crate::server::{Answer, Incoming};
use crate::state::DEFAULT_ACCOUNT;

/// The action of an ACS3 call (`x-acs-action`), if this is one.
pub(crate) fn action(req: &Incoming) -> Option<String> {
    req.header("x-acs-action").map(str::to_string)
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// An error answer in ECS's shape.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"RequestId": request_id(), "HostId": "ecs.aliyuncs.com", "Code": code, "Message": message})),
    )
        .into_response()
}

/// Checks the signature; the account the key belongs to.
fn authenticate(shared: &Shared, req: &Incoming) -> Result<String, Response> {
    let creds = &shared.credentials.alibaba;
    let Some(authorization) = req.header("authorization") else {
        return Err(error(StatusCode::BAD_REQUEST, "IncompleteSignature", "The request signature is missing."));
    };
    let Some(access_key) = authorization.split("Credential=").nth(1).and_then(|r| r.split(',').next()) else {
        return Err(error(StatusCode::BAD_REQUEST, "IncompleteSignature", "The Authorization header is malformed."));
    };
    let temporary = |sk: &str, token: &str| {
        if req.header("x-acs-security-token") != Some(token) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidSecurityToken.Malformed",
                "The security token is invalid.",
            ));
        }
        Ok((sk.to_string(), Some(token.to_string())))
    };
    let mut account = DEFAULT_ACCOUNT.to_string();
    let (sk, token) = if let Some((name, sk)) = shared.credentials.account_of(Cloud::Alibaba, access_key) {
        account = name.to_string();
        (sk.to_string(), None)
    } else if access_key == creds.sts_ak {
        temporary(&creds.sts_sk, &creds.security_token)?
    } else {
        match issued(shared, Cloud::Alibaba, access_key) {
            Issued::Valid { secret, token } => temporary(&secret, &token)?,
            Issued::Expired => {
                let message = "Specified SecurityToken is expired.";
                return Err(error(StatusCode::BAD_REQUEST, "InvalidSecurityToken.Expired", message));
            }
            Issued::Unknown => {
                let message = "Specified access key is not found.";
                return Err(error(StatusCode::NOT_FOUND, "InvalidAccessKeyId.NotFound", message));
            }
        }
    };
    let Some(at) = req
        .header("x-acs-date")
        .and_then(|d| NaiveDateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%SZ").ok())
        .map(|t| t.and_utc())
    else {
        return Err(error(StatusCode::BAD_REQUEST, "InvalidTimeStamp.Format", "x-acs-date is malformed."));
    };
    if (Utc::now() - at).abs().to_std().unwrap_or_default() > shared.timing.max_skew {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidTimeStamp.Expired",
            "x-acs-date is too far from the server's clock.",
        ));
    }
    let key = AccessKey {
        access_key: access_key.to_string(),
        secret_key: Secret::new(sk.as_str()),
        token: token.map(Secret::new),
    };
    if !req.signed_by(&AcsSigner, &key, &canonical_query(&req.query), at) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    let nonce = req.header("x-acs-signature-nonce").unwrap_or("").to_string();
    if nonce.is_empty() || !shared.world().ali_nonces.insert(nonce) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    Ok(account)
}

pub(crate) fn handle(shared: &Shared, req: &Incoming, action: &str) -> Answer {
    if req.header("x-acs-version") != Some(API_VERSION) {
        return Answer::new(
            error(StatusCode::BAD_REQUEST, "InvalidVersion", "Specified parameter Version is not valid."),
            0,
        );
    }
    let account = match authenticate(shared, req) {
        Ok(account) => account,
        Err(response) => return Answer::new(response, 0),
    };
    let region = req.param("RegionId").unwrap_or("");
    if !shared.credentials.serves(Cloud::Alibaba, &account, region) {
        return Answer::new(
            error(StatusCode::NOT_FOUND, "InvalidRegionId.NotFound", "The specified RegionId does not exist."),
            0,
        );
    }
    match action {
        "ImportKeyPair" => return Answer::new(import_keypair(shared, req, (&account, region)), 0),
        "DescribeKeyPairs" => return Answer::new(describe_keypairs(shared, req, (&account, region)), 0),
        _ => {}
    }
    let Some(ids) = req.param("InstanceIds").and_then(|v| serde_json::from_str::<Vec<String>>(v).ok()) else {
        return Answer::new(
            error(
                StatusCode::BAD_REQUEST,
                "InvalidInstanceIds.ValueNotSupported",
                "The specified parameter InstanceIds is not valid.",
            ),
            0,
        );
    };
    let now = Instant::now();
    match action {
        "AttachKeyPair" | "DetachKeyPair" => keypair_call(shared, req, (&account, region), action, &ids, now),
        "DescribeInstances" => Answer::new(describe(shared, (&account, region), &ids, now), 0),
        _ => Answer::new(error(StatusCode::NOT_FOUND, "InvalidAction.NotFound", "Specified api is not found."), 0),
    }
}

fn keypair_call(
    shared: &Shared,
    req: &Incoming,
    (account, region): (&str, &str),
    action: &str,
    ids: &[String],
    now: Instant,
) -> Answer {
    if ids.is_empty() || ids.len() > MAX_INSTANCES_PER_CALL {
        return Answer::new(
            error(
                StatusCode::FORBIDDEN,
                "InstanceKeyPairLimitExceeded",
                "The specified instances are beyond the permitted range.",
            ),
            0,
        );
    }
    let keypair = req.param("KeyPairName").unwrap_or("").to_string();
    let mut guard = shared.world();
    let world = guard.place(account, region);
    if !world.ali_keypairs.contains(&keypair) {
        return Answer::new(
            error(
                StatusCode::BAD_REQUEST,
                "InvalidKeyPairName.NotFound",
                "The specified KeyPairName does not exist in our records.",
            ),
            0,
        );
    }
    let fail = |id: &str, code: &str, message: &str| json!({"InstanceId": id, "Success": false, "Code": code, "Message": message});
    let mut results = Vec::with_capacity(ids.len());
    let mut failed = 0;
    for id in ids {
        let key = (Cloud::Alibaba, id.clone());
        let state = world.vms.get_mut(&key).map(|vm| (vm.os, vm.state_at(now)));
        let result = match state {
            None => fail(id, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist."),
            Some((Os::Windows, _)) => fail(
                id,
                "DependencyViolation.WindowsInstance",
                "The instance creating is windows, cannot use ssh key pair to login",
            ),
            Some((_, VmState::Transitioning | VmState::Error)) => fail(
                id,
                "IncorrectInstanceStatus",
                "The current status of the resource does not support this operation.",
            ),
            Some(_) => {
                if let Some(vm) = world.vms.get_mut(&key) {
                    vm.keypair = (action == "AttachKeyPair").then(|| keypair.clone());
                }
                world.applied(Cloud::Alibaba, id);
                json!({"InstanceId": id, "Success": true, "Code": "200", "Message": "successful"})
            }
        };
        if result["Success"] == false {
            failed += 1;
        }
        results.push(result);
    }
    let body = json!({"RequestId": request_id(), "KeyPairName": keypair, "TotalCount": ids.len(), "FailCount": failed,
        "Results": {"Result": results}});
    Answer::new((StatusCode::OK, axum::Json(body)).into_response(), ids.len())
}

fn describe(shared: &Shared, (account, region): (&str, &str), ids: &[String], now: Instant) -> Response {
    let mut guard = shared.world();
    let world = guard.place(account, region);
    let instances: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let vm = world.vms.get_mut(&(Cloud::Alibaba, id.clone()))?;
            let status = match vm.state_at(now) {
                VmState::Running => "Running",
                VmState::Stopped => "Stopped",
                VmState::Transitioning => "Starting",
                VmState::Error => "Error",
            };
            Some(json!({"InstanceId": id, "Status": status,
                "OSType": if vm.os == Os::Windows { "windows" } else { "linux" },
                "KeyPairName": vm.keypair.clone().unwrap_or_default()}))
        })
        .collect();
    let body = json!({"RequestId": request_id(), "TotalCount": instances.len(), "PageNumber": 1, "PageSize": 100,
        "Instances": {"Instance": instances}});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `ImportKeyPair`, with the documented codes for a duplicate name and a malformed key.
fn import_keypair(shared: &Shared, req: &Incoming, (account, region): (&str, &str)) -> Response {
    let (Some(name), Some(public_key)) = (req.param("KeyPairName"), req.param("PublicKeyBody")) else {
        return error(StatusCode::BAD_REQUEST, "MissingParameter", "KeyPairName and PublicKeyBody are required.");
    };
    let starts_well = name.chars().next().is_some_and(|c| c.is_alphabetic());
    let valid = (2..=128).contains(&name.chars().count())
        && starts_well
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'));
    if !valid {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidKeyPairName.Malformed",
            "The specified KeyPairName is malformed.",
        );
    }
    let mut guard = shared.world();
    let world = guard.place(account, region);
    if world.ali_keypairs.contains(name) {
        return error(StatusCode::BAD_REQUEST, "KeyPair.AlreadyExist", "The key pair already exist.");
    }
    if keypair_binder_core::PublicKey::parse(public_key).is_err() {
        return error(StatusCode::BAD_REQUEST, "InvalidPublicKeyBody.Malformed", "The public key is not supported.");
    }
    world.ali_keypairs.insert(name.to_string());
    world.public_keys.insert((Cloud::Alibaba, name.to_string()), public_key.to_string());
    let body = json!({"RequestId": request_id(), "KeyPairName": name,
        "KeyPairFingerPrint": crate::state::md5_fingerprint(public_key)});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `DescribeKeyPairs` by exact name (no wildcards here), the public key with `IncludePublicKey=true`.
fn describe_keypairs(shared: &Shared, req: &Incoming, (account, region): (&str, &str)) -> Response {
    let name = req.param("KeyPairName");
    let include = req.param("IncludePublicKey").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut guard = shared.world();
    let world = guard.place(account, region);
    let pairs: Vec<Value> = world
        .ali_keypairs
        .iter()
        .filter(|n| name.is_none_or(|wanted| wanted == n.as_str()))
        .map(|n| {
            let key = world.public_keys.get(&(Cloud::Alibaba, n.clone())).cloned().unwrap_or_default();
            let mut pair = json!({"KeyPairName": n, "KeyPairFingerPrint": crate::state::md5_fingerprint(&key),
                "CreationTime": "2026-01-01T00:00Z"});
            if include {
                pair["PublicKey"] = json!(key);
            }
            pair
        })
        .collect();
    let body = json!({"RequestId": request_id(), "TotalCount": pairs.len(), "PageNumber": 1, "PageSize": 10,
        "KeyPairs": {"KeyPair": pairs}});
    (StatusCode::OK, axum::Json(body)).into_response()
}
