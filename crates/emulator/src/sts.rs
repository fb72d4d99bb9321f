//! The clouds' STS on the emulator's port: Alibaba (2015-04-01) and
//! Volcengine (2018-01-01) `AssumeRole`, whose signature is checked with the
//! provider crate's signer against the caller's keys (permanent, STS or
//! issued), and `AssumeRoleWithOIDC`, which takes the current web identity
//! token only. Both hand out keys that live `credential_ttl`.

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

/// The role the emulated Volcengine STS hands out.
pub const VOLCENGINE_ROLE_TRN: &str = "trn:iam::2100000001:role/kpbind-emulator-role";

/// The role the emulated Tencent STS hands out.
pub const TENCENT_ROLE_ARN: &str = "qcs::cam::uin/100000000001:roleName/kpbind-emulator-role";
/// The TKE cluster's OIDC provider id.
pub const TENCENT_PROVIDER_ID: &str = "kpbind-emulator-cluster";

/// The agency the emulated Huawei STS hands out.
pub const HUAWEI_AGENCY_URN: &str = "iam::0e0e0e0e0e0e0e0e:agency:kpbind-emulator-agency";
/// The identity provider whose ID tokens it takes.
pub const HUAWEI_PROVIDER_URN: &str = "iam::0e0e0e0e0e0e0e0e:identityprovider:kpbind-emulator";

/// A new web identity token (shaped like a JWT, signed by nobody).
pub(crate) fn new_oidc_token() -> String {
    format!("eyJhbGciOiJub25lIn0.{}.emulator", uuid::Uuid::new_v4().simple())
}

/// The STS call `incoming` is, if it is one.
pub(crate) fn route(incoming: &Incoming) -> Option<(Cloud, &'static str)> {
    if incoming.method == Method::POST {
        match incoming.path.as_str() {
            "/v5/agencies/assume" => return Some((Cloud::Huawei, "sts:AssumeAgency")),
            "/v5/agencies/assume-with-oidc" => return Some((Cloud::Huawei, "sts:AssumeAgencyWithOidc")),
            _ => {}
        }
    }
    if incoming.path != "/" {
        return None;
    }
    if incoming.header("x-tc-version") == Some("2018-08-13") {
        return match incoming.header("x-tc-action")? {
            "AssumeRole" => Some((Cloud::Tencent, "sts:AssumeRole")),
            "AssumeRoleWithWebIdentity" => Some((Cloud::Tencent, "sts:AssumeRoleWithWebIdentity")),
            _ => None,
        };
    }
    let cloud = match incoming.param("Version")? {
        "2015-04-01" if incoming.method == Method::GET => Cloud::Alibaba,
        "2018-01-01" => Cloud::Volcengine,
        _ => return None,
    };
    match incoming.param("Action")? {
        "AssumeRole" => Some((cloud, "sts:AssumeRole")),
        "AssumeRoleWithOIDC" => Some((cloud, "sts:AssumeRoleWithOIDC")),
        _ => None,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    let body = json!({"RequestId": uuid::Uuid::new_v4().to_string(), "HostId": "sts.aliyuncs.com", "Code": code, "Message": message});
    Answer::new((status, axum::Json(body)).into_response(), 0)
}

/// Answers one STS call.
pub(crate) fn handle(shared: &Shared, incoming: &Incoming, cloud: Cloud, action: &str) -> Answer {
    match cloud {
        Cloud::Volcengine => return volcengine(shared, incoming, action),
        Cloud::Tencent => return tencent(shared, incoming, action),
        Cloud::Huawei => return huawei(shared, incoming, action),
        Cloud::Alibaba => {}
    }
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

/// A Volcengine STS error in its envelope.
fn volc_error(status: StatusCode, code: &str, message: &str, action: &str) -> Answer {
    let body = json!({"ResponseMetadata": {
        "RequestId": uuid::Uuid::new_v4().to_string(), "Action": action, "Version": "2018-01-01",
        "Service": "sts", "Region": "cn-beijing", "Error": {"Code": code, "Message": message},
    }});
    Answer::new((status, axum::Json(body)).into_response(), 0)
}

/// Volcengine `AssumeRole` (signed in the `sts` scope, `GET`) and
/// `AssumeRoleWithOIDC` (unsigned, `POST` with a form body).
fn volcengine(shared: &Shared, incoming: &Incoming, action: &str) -> Answer {
    let name = action.trim_start_matches("sts:");
    let params: Vec<(String, String)> = if incoming.method == Method::POST {
        url::form_urlencoded::parse(&incoming.body).into_owned().collect()
    } else {
        incoming.query.clone()
    };
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if param("RoleTrn") != Some(VOLCENGINE_ROLE_TRN) {
        return volc_error(StatusCode::NOT_FOUND, "RoleNotExist", "the role does not exist", name);
    }
    if name == "AssumeRole" {
        if let Err(refused) = crate::volcengine::authenticate_as(shared, incoming, name, "sts") {
            return Answer::new(refused, 0);
        }
    } else {
        if incoming.header("authorization").is_some() {
            return volc_error(StatusCode::BAD_REQUEST, "InvalidParameter", "AssumeRoleWithOIDC is not signed", name);
        }
        let current = shared.world().oidc_token.clone();
        if param("OIDCToken") != Some(current.as_str()) {
            return volc_error(StatusCode::BAD_REQUEST, "InvalidIdentityToken", "the OIDC token is invalid", name);
        }
    }
    let (access_key, key, expires) = issue_key(shared, Cloud::Volcengine);
    let expiry = expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body = json!({
        "ResponseMetadata": {"RequestId": uuid::Uuid::new_v4().to_string(), "Action": name, "Version": "2018-01-01", "Service": "sts", "Region": "cn-beijing"},
        "Result": {
            "Credentials": {
                "AccessKeyId": access_key, "SecretAccessKey": key.secret, "SessionToken": key.token,
                "ExpiredTime": expiry, "Expiration": expiry,
                "CurrentTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            "AssumedRoleUser": {"Trn": VOLCENGINE_ROLE_TRN, "AssumedRoleId": "2100000001:session"},
        },
    });
    Answer::new(axum::Json(body).into_response(), 0)
}

/// Tencent `AssumeRole` (TC3 in the `sts` scope) and
/// `AssumeRoleWithWebIdentity` (`Authorization: SKIP`); errors with status 200.
fn tencent(shared: &Shared, incoming: &Incoming, action: &str) -> Answer {
    let refused = |code: &str, message: &str| Answer::new(crate::tencent::error(code, message), 0);
    let body: serde_json::Value = serde_json::from_slice(&incoming.body).unwrap_or_default();
    if body["RoleArn"].as_str() != Some(TENCENT_ROLE_ARN) {
        return refused("ResourceNotFound.RoleNotFound", "The role does not exist.");
    }
    if action == "sts:AssumeRole" {
        if let Err(response) =
            crate::tencent::authenticate_with(shared, incoming, &keypair_binder_tencent::request::StsSigner)
        {
            return Answer::new(response, 0);
        }
    } else {
        if incoming.header("authorization") != Some("SKIP") {
            return refused(
                "AuthFailure.InvalidAuthorization",
                "AssumeRoleWithWebIdentity is sent with Authorization: SKIP.",
            );
        }
        let current = shared.world().oidc_token.clone();
        if body["ProviderId"].as_str() != Some(TENCENT_PROVIDER_ID)
            || body["WebIdentityToken"].as_str() != Some(current.as_str())
        {
            return refused("InvalidParameter.WebIdentityTokenError", "The web identity token is invalid.");
        }
    }
    let (access_key, key, expires) = issue_key(shared, Cloud::Tencent);
    let body = json!({"Response": {
        "Credentials": {"Token": key.token, "TmpSecretId": access_key, "TmpSecretKey": key.secret},
        "ExpiredTime": expires.timestamp(),
        "Expiration": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "RequestId": uuid::Uuid::new_v4().to_string(),
    }});
    Answer::new(axum::Json(body).into_response(), 0)
}

/// Huawei STS v5 `assume` (AK/SK signed) and `assume-with-oidc` (unsigned).
fn huawei(shared: &Shared, incoming: &Incoming, action: &str) -> Answer {
    let refused = |status: StatusCode, code: &str, message: &str| {
        let body = json!({"error_code": code, "error_msg": message, "request_id": uuid::Uuid::new_v4().to_string()});
        Answer::new((status, axum::Json(body)).into_response(), 0)
    };
    let body: serde_json::Value = serde_json::from_slice(&incoming.body).unwrap_or_default();
    if body["agency_urn"].as_str() != Some(HUAWEI_AGENCY_URN) {
        return refused(StatusCode::NOT_FOUND, "STS.0404", "The agency does not exist.");
    }
    if action == "sts:AssumeAgency" {
        if let Err(response) = crate::huawei::verify_aksk(shared, incoming) {
            return Answer::new(response, 0);
        }
    } else {
        if incoming.header("authorization").is_some() {
            return refused(StatusCode::BAD_REQUEST, "STS.0001", "assume-with-oidc is not signed.");
        }
        let current = shared.world().oidc_token.clone();
        if body["provider_urn"].as_str() != Some(HUAWEI_PROVIDER_URN)
            || body["id_token"].as_str() != Some(current.as_str())
        {
            return refused(StatusCode::BAD_REQUEST, "STS.0101", "The ID token is invalid.");
        }
    }
    let (access_key, key, expires) = issue_key(shared, Cloud::Huawei);
    let body = json!({
        "credentials": {
            "access_key_id": access_key, "secret_access_key": key.secret, "security_token": key.token,
            "expiration": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        },
        "assumed_agency": {"agency_urn": HUAWEI_AGENCY_URN, "agency_session_id": "session"},
    });
    Answer::new((StatusCode::CREATED, axum::Json(body)).into_response(), 0)
}
