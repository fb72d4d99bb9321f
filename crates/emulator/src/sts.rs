//! Alibaba Cloud STS (2015-04-01) on the emulator's port: `AssumeRole`,
//! whose RPC signature is checked with the provider crate's signer against
//! the caller's keys (permanent, STS or issued), and `AssumeRoleWithOIDC`,
//! which takes the current web identity token only. Both hand out keys
//! that live `credential_ttl`.

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use keypair_binder_alibaba::signer::{AccessKey, sign_rpc};
use keypair_binder_core::Secret;
use serde_json::json;

use crate::Shared;
use crate::inventory::Cloud;
use crate::metadata::{Issued, issue_key, issued};
use crate::server::{Answer, Incoming};

/// The role the emulated STS hands out.
pub const ALIBABA_ROLE_ARN: &str = "acs:ram::1000000000000001:role/kpbind-emulator-role";
/// The OIDC provider whose tokens it takes.
pub const ALIBABA_OIDC_PROVIDER_ARN: &str = "acs:ram::1000000000000001:oidc-provider/kpbind-emulator";

/// A new web identity token (shaped like a JWT, signed by nobody).
pub(crate) fn new_oidc_token() -> String {
    format!("eyJhbGciOiJub25lIn0.{}.emulator", uuid::Uuid::new_v4().simple())
}

/// The STS call `incoming` is, if it is one.
pub(crate) fn route(incoming: &Incoming) -> Option<(Cloud, &'static str)> {
    if incoming.method != Method::GET || incoming.path != "/" || incoming.param("Version") != Some("2015-04-01") {
        return None;
    }
    match incoming.param("Action")? {
        "AssumeRole" => Some((Cloud::Alibaba, "sts:AssumeRole")),
        "AssumeRoleWithOIDC" => Some((Cloud::Alibaba, "sts:AssumeRoleWithOIDC")),
        _ => None,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    let body = json!({"RequestId": uuid::Uuid::new_v4().to_string(), "HostId": "sts.aliyuncs.com", "Code": code, "Message": message});
    Answer::new((status, axum::Json(body)).into_response(), 0)
}

/// Answers one STS call.
pub(crate) fn handle(shared: &Shared, incoming: &Incoming, action: &str) -> Answer {
    if incoming.param("RoleArn") != Some(ALIBABA_ROLE_ARN) {
        return error(StatusCode::NOT_FOUND, "EntityNotExist.Role", "The role does not exist.");
    }
    if action == "sts:AssumeRole" {
        if let Err(refused) = check_signature(shared, incoming) {
            return refused;
        }
    } else {
        if incoming.param("OIDCProviderArn") != Some(ALIBABA_OIDC_PROVIDER_ARN) {
            return error(StatusCode::NOT_FOUND, "EntityNotExist.OIDCProvider", "The OIDC provider does not exist.");
        }
        let current = shared.world().oidc_token.clone();
        if incoming.param("OIDCToken") != Some(current.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDC token is invalid.",
            );
        }
        if incoming.param("Signature").is_some() || incoming.param("AccessKeyId").is_some() {
            return error(StatusCode::BAD_REQUEST, "InvalidParameter", "AssumeRoleWithOIDC is not signed.");
        }
    }
    let (access_key, key, expires) = issue_key(shared, Cloud::Alibaba);
    let body = json!({
        "RequestId": uuid::Uuid::new_v4().to_string(),
        "AssumedRoleUser": {"Arn": ALIBABA_ROLE_ARN, "AssumedRoleId": "300000000000000001:session"},
        "Credentials": {
            "AccessKeyId": access_key, "AccessKeySecret": key.secret, "SecurityToken": key.token,
            "Expiration": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
    });
    Answer::new(axum::Json(body).into_response(), 0)
}

/// The caller's keys sign `AssumeRole` (RPC style, HMAC-SHA1): recomputed here.
fn check_signature(shared: &Shared, incoming: &Incoming) -> Result<(), Answer> {
    let creds = &shared.credentials.alibaba;
    let access_key = incoming.param("AccessKeyId").unwrap_or("");
    let (secret, token) = if access_key == creds.ak {
        (creds.sk.clone(), None)
    } else if access_key == creds.sts_ak {
        (creds.sts_sk.clone(), Some(creds.security_token.clone()))
    } else {
        match issued(shared, Cloud::Alibaba, access_key) {
            Issued::Valid { secret, token } => (secret, Some(token)),
            Issued::Expired => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSecurityToken.Expired",
                    "Specified SecurityToken is expired.",
                ));
            }
            Issued::Unknown => {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "InvalidAccessKeyId.NotFound",
                    "Specified access key is not found.",
                ));
            }
        }
    };
    if incoming.param("SecurityToken") != token.as_deref() {
        return Err(error(StatusCode::BAD_REQUEST, "InvalidSecurityToken.Malformed", "The security token is invalid."));
    }
    let added = ["Signature", "SignatureMethod", "SignatureVersion", "AccessKeyId", "SecurityToken"];
    let unsigned: Vec<(String, String)> =
        incoming.query.iter().filter(|(k, _)| !added.contains(&k.as_str())).cloned().collect();
    let key = AccessKey {
        access_key: access_key.to_string(),
        secret_key: Secret::new(secret),
        token: token.map(Secret::new),
    };
    if incoming.param("Signature") != Some(sign_rpc("GET", &unsigned, &key).signature.as_str()) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    Ok(())
}
