//! The four clouds' instance metadata services, at their real paths on the
//! emulator's one port: session tokens where the cloud has them (required,
//! as IMDSv2 is), the attached role's name, and temporary keys that live
//! `credential_ttl`. The compute APIs accept those keys until they expire,
//! then answer with each cloud's expired-token error.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use serde_json::json;
use tokio::time::Instant;

use crate::Shared;
use crate::inventory::Cloud;
use crate::server::{Answer, Incoming};

/// The path of the Alibaba credentials URI the emulator serves.
pub const CREDENTIALS_URI_PATH: &str = "/alibaba/credentials-uri";

/// The path of the Huawei pod identity endpoint the emulator serves.
pub const POD_CREDENTIALS_PATH: &str = "/huawei/pod-credentials";

fn is_post(incoming: &Incoming) -> bool {
    incoming.method == Method::POST
}

/// The role attached to every emulated VM.
pub const INSTANCE_ROLE: &str = "kpbind-emulator-role";

/// Temporary keys the metadata services handed out.
#[derive(Clone, Debug)]
pub(crate) struct IssuedKey {
    pub cloud: Cloud,
    pub secret: String,
    pub token: String,
    pub expires: Instant,
}

/// What the compute APIs know of an access key the metadata service issued.
pub(crate) enum Issued {
    /// Not one of them.
    Unknown,
    /// Good, with its secret and token.
    Valid { secret: String, token: String },
    /// Past its expiry.
    Expired,
}

/// Looks an access key up among the issued ones of `cloud`.
pub(crate) fn issued(shared: &Shared, cloud: Cloud, access_key: &str) -> Issued {
    match shared.world().issued_keys.get(access_key) {
        Some(key) if key.cloud != cloud => Issued::Unknown,
        Some(key) if key.expires <= Instant::now() => Issued::Expired,
        Some(key) => Issued::Valid { secret: key.secret.clone(), token: key.token.clone() },
        None => Issued::Unknown,
    }
}

/// The metadata call `incoming` is, if it is one: its cloud and action.
pub(crate) fn route(incoming: &Incoming) -> Option<(Cloud, &'static str)> {
    let path = incoming.path.as_str();
    let put = incoming.method == Method::PUT;
    match path {
        "/latest/api/token" if put && incoming.header("x-aliyun-ecs-metadata-token-ttl-seconds").is_some() => {
            Some((Cloud::Alibaba, "metadata:token"))
        }
        "/latest/api/token" if put && incoming.header("x-volc-ecs-metadata-token-ttl-seconds").is_some() => {
            Some((Cloud::Volcengine, "metadata:token"))
        }
        "/meta-data/latest/api/token" if put => Some((Cloud::Huawei, "metadata:token")),
        "/latest/meta-data/ram/security-credentials/" => Some((Cloud::Alibaba, "metadata:role")),
        "/latest/meta-data/cam/security-credentials/" => Some((Cloud::Tencent, "metadata:role")),
        "/volcstack/latest/iam/security_credentials" => Some((Cloud::Volcengine, "metadata:role")),
        "/openstack/latest/securitykey" => Some((Cloud::Huawei, "metadata:credentials")),
        // What `ALIBABA_CLOUD_CREDENTIALS_URI` would point at: the same answer, no session token.
        CREDENTIALS_URI_PATH => Some((Cloud::Alibaba, "credentials:uri")),
        // A CCE pod identity endpoint (`HC_CONTAINER_CREDENTIALS_FULL_URI`).
        POD_CREDENTIALS_PATH if is_post(incoming) => Some((Cloud::Huawei, "pod:credentials")),
        _ if path.starts_with("/latest/meta-data/ram/security-credentials/") => {
            Some((Cloud::Alibaba, "metadata:credentials"))
        }
        _ if path.starts_with("/latest/meta-data/cam/security-credentials/") => {
            Some((Cloud::Tencent, "metadata:credentials"))
        }
        _ if path.starts_with("/volcstack/latest/iam/security_credentials/") => {
            Some((Cloud::Volcengine, "metadata:credentials"))
        }
        _ => None,
    }
}

/// The header a cloud's metadata calls carry their session token in.
fn token_header(cloud: Cloud) -> Option<&'static str> {
    match cloud {
        Cloud::Alibaba => Some("x-aliyun-ecs-metadata-token"),
        Cloud::Volcengine => Some("x-volc-ecs-metadata-token"),
        Cloud::Huawei => Some("x-metadata-token"),
        Cloud::Tencent => None,
    }
}

/// Answers one metadata call.
pub(crate) fn handle(shared: &Shared, incoming: &Incoming, cloud: Cloud, action: &str) -> Answer {
    let text = |status: StatusCode, body: String| Answer::new((status, body).into_response(), 0);
    if action == "metadata:token" {
        let token = uuid::Uuid::new_v4().simple().to_string();
        shared.world().metadata_tokens.insert(token.clone());
        return text(StatusCode::OK, token);
    }
    if action == "credentials:uri" {
        return Answer::new(issue(shared, cloud), 0);
    }
    if action == "pod:credentials" {
        // The pod's token, as `Authorization`.
        let current = shared.world().oidc_token.clone();
        if incoming.header("authorization") != Some(current.as_str()) {
            return text(StatusCode::UNAUTHORIZED, "the pod token is invalid".into());
        }
        return Answer::new(issue(shared, cloud), 0);
    }
    if let Some(header) = token_header(cloud) {
        let known = incoming.header(header).is_some_and(|t| shared.world().metadata_tokens.contains(t));
        if !known {
            return text(StatusCode::UNAUTHORIZED, "a session token is required".into());
        }
    }
    let role = incoming.path.rsplit('/').next().unwrap_or("");
    match action {
        "metadata:role" if cloud == Cloud::Volcengine => {
            Answer::new(axum::Json(json!([INSTANCE_ROLE])).into_response(), 0)
        }
        "metadata:role" => text(StatusCode::OK, INSTANCE_ROLE.into()),
        _ if cloud != Cloud::Huawei && role != INSTANCE_ROLE => {
            text(StatusCode::NOT_FOUND, format!("no role {role} is attached to this instance"))
        }
        _ => Answer::new(issue(shared, cloud), 0),
    }
}

/// New temporary keys of `cloud`, recorded so the compute APIs take them
/// until they expire: the access key, the key, and its expiry as wall time.
pub(crate) fn issue_key(shared: &Shared, cloud: Cloud) -> (String, IssuedKey, chrono::DateTime<Utc>) {
    let ttl = shared.timing.credential_ttl;
    let n = uuid::Uuid::new_v4().simple().to_string();
    let access_key = match cloud {
        Cloud::Alibaba => format!("STS.emu{}", &n[..16]),
        Cloud::Tencent => format!("AKIDemu{}", &n[..16]),
        Cloud::Huawei => format!("HSTEMU{}", n[..14].to_ascii_uppercase()),
        Cloud::Volcengine => format!("AKTPemu{}", &n[..16]),
    };
    let key = IssuedKey {
        cloud,
        secret: format!("emu-secret-{}", &n[16..]),
        token: format!("emu-token-{n}"),
        expires: Instant::now() + ttl,
    };
    let expires = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    shared.world().issued_keys.insert(access_key.clone(), key.clone());
    (access_key, key, expires)
}

/// Issues temporary keys for `cloud`, answered in its metadata service's format.
fn issue(shared: &Shared, cloud: Cloud) -> Response {
    let (access_key, key, expires) = issue_key(shared, cloud);
    let body = match cloud {
        Cloud::Alibaba => json!({
            "Code": "Success", "AccessKeyId": access_key, "AccessKeySecret": key.secret,
            "SecurityToken": key.token, "Expiration": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "LastUpdated": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }),
        Cloud::Tencent => json!({
            "Code": "Success", "TmpSecretId": access_key, "TmpSecretKey": key.secret, "Token": key.token,
            "ExpiredTime": expires.timestamp(), "Expiration": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        }),
        Cloud::Huawei => json!({"credential": {
            "access": access_key, "secret": key.secret, "securitytoken": key.token,
            "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        }}),
        Cloud::Volcengine => json!({
            "AccessKeyId": access_key, "SecretAccessKey": key.secret, "SessionToken": key.token,
            "ExpiredTime": expires.to_rfc3339_opts(SecondsFormat::Millis, true),
        }),
    };
    axum::Json(body).into_response()
}
