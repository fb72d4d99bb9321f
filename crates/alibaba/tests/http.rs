//! The Alibaba binder against a real HTTP server on 127.0.0.1 that checks
//! every ACS3 signature through the kit's signer interface and keeps the
//! instances' key pairs: chunking at 50, per-instance results, an
//! apply-then-drop settled by reading the key pair, converging re-runs,
//! refused credentials.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use keypair_binder_alibaba::AlibabaBinder;
use keypair_binder_alibaba::request::AcsSigner;
use keypair_binder_alibaba::signer::{AccessKey, canonical_query};
use keypair_binder_core::kit::signed_by;
use keypair_binder_core::{BindRequest, Error, FailureKind, InstanceOutcome, KeypairBinder, Secret};
use serde_json::{Value, json};

const AK: &str = "LTAI5tLoopbackFakeAK01";
const SK: &str = "LoopbackFakeSecret0001";

#[derive(Clone, Debug, PartialEq)]
enum Fault {
    DropAfterApply,
    Throttle,
}

#[derive(Default)]
struct Cloud {
    keypair_of: HashMap<String, String>,
    windows: HashSet<String>,
    applications: HashMap<String, u32>,
    faults: VecDeque<Fault>,
    calls: Vec<(String, usize)>,
}

type Shared = Arc<Mutex<Cloud>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"RequestId": "R-1", "Code": code, "Message": message}))).into_response()
}

async fn handle(State(cloud): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query: Vec<(String, String)> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let time = headers
        .get("x-acs-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%SZ").ok())
        .map(|t| t.and_utc());
    let key = AccessKey { access_key: AK.into(), secret_key: Secret::new(SK), token: None };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let rebuilt: Uri = format!("http://{host}/?{}", canonical_query(&query)).parse().unwrap();
    let signed = time.is_some_and(|t| signed_by(&AcsSigner, &key, method, rebuilt, &headers, body, t));
    if !signed {
        return error(
            StatusCode::BAD_REQUEST,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        );
    }
    let action = headers.get("x-acs-action").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let ids: Vec<String> = serde_json::from_str(&param("InstanceIds")).unwrap_or_default();
    let mut cloud = cloud.lock().unwrap();
    cloud.calls.push((action.clone(), ids.len()));
    match action.as_str() {
        "AttachKeyPair" | "DetachKeyPair" => {
            if ids.len() > 50 {
                return error(StatusCode::FORBIDDEN, "InstanceKeyPairLimitExceeded", "too many instances");
            }
            let fault = cloud.faults.pop_front();
            if fault == Some(Fault::Throttle) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Throttling.User",
                    "Request was denied due to user flow control.",
                );
            }
            let keypair = param("KeyPairName");
            let mut results = Vec::new();
            for id in &ids {
                let result = if !cloud.keypair_of.contains_key(id) && !cloud.windows.contains(id) {
                    json!({"InstanceId": id, "Success": false, "Code": "InvalidInstanceId.NotFound", "Message": "The specified InstanceId does not exist."})
                } else if cloud.windows.contains(id) {
                    json!({"InstanceId": id, "Success": false, "Code": "DependencyViolation.WindowsInstance", "Message": "windows"})
                } else {
                    let value = if action == "AttachKeyPair" { keypair.clone() } else { String::new() };
                    cloud.keypair_of.insert(id.clone(), value);
                    *cloud.applications.entry(id.clone()).or_default() += 1;
                    json!({"InstanceId": id, "Success": true, "Code": "200", "Message": "successful"})
                };
                results.push(result);
            }
            if fault == Some(Fault::DropAfterApply) {
                return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
            }
            axum::Json(json!({"RequestId": "R-2", "KeyPairName": keypair, "Results": {"Result": results}}))
                .into_response()
        }
        "DescribeInstances" => {
            let instances: Vec<Value> = ids
                .iter()
                .filter_map(|id| {
                    let windows = cloud.windows.contains(id);
                    let keypair = cloud.keypair_of.get(id)?;
                    Some(json!({"InstanceId": id, "Status": "Running", "OSType": if windows { "windows" } else { "linux" }, "KeyPairName": keypair}))
                })
                .collect();
            axum::Json(json!({"RequestId": "R-3", "TotalCount": instances.len(), "Instances": {"Instance": instances}}))
                .into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "InvalidAction.NotFound", "no such action"),
    }
}

async fn start(instances: usize, windows: &[&str], faults: Vec<Fault>) -> (String, Shared, Vec<String>) {
    let ids: Vec<String> = (0..instances).map(|i| format!("i-bp1loopback{i:05}")).collect();
    let mut cloud = Cloud { faults: faults.into(), ..Cloud::default() };
    for id in &ids {
        cloud.keypair_of.insert(id.clone(), String::new());
    }
    for w in windows {
        cloud.windows.insert(w.to_string());
        cloud.keypair_of.insert(w.to_string(), String::new());
    }
    let shared = Arc::new(Mutex::new(cloud));
    let app = axum::Router::new().fallback(handle).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), shared, ids)
}

fn binder(endpoint: &str, secret: &str) -> AlibabaBinder {
    let fast = keypair_binder_core::RetryPolicy::cloud(std::time::Duration::from_millis(5))
        .with_backoff(std::time::Duration::from_millis(5), std::time::Duration::from_millis(50));
    AlibabaBinder::builder()
        .credentials(AK, secret)
        .region("cn-hangzhou")
        .endpoint(endpoint)
        .retry_policy(fast)
        .build()
        .unwrap()
}

fn bind(ids: &[String]) -> BindRequest {
    BindRequest::builder().keypair_name("kp-prod").instances(ids.iter().cloned()).build().unwrap()
}

#[tokio::test]
async fn binds_in_calls_of_50_and_reports_each_instance() {
    let (endpoint, cloud, mut ids) = start(120, &["i-bp1windows00001"], vec![]).await;
    ids.push("i-bp1windows00001".into());
    ids.push("i-bp1missing00001".into());
    let report = binder(&endpoint, SK).bind(bind(&ids)).await.unwrap();
    let (bound, failed, unknown) = report.counts();
    assert_eq!((bound, failed, unknown), (120, 2, 0), "{:?}", report.failed().collect::<Vec<_>>());
    let kinds: Vec<FailureKind> = report.failed().map(|(_, f)| f.kind).collect();
    assert!(kinds.contains(&FailureKind::UnsupportedImage) && kinds.contains(&FailureKind::InstanceNotFound));
    let cloud = cloud.lock().unwrap();
    let attaches: Vec<usize> = cloud.calls.iter().filter(|(a, _)| a == "AttachKeyPair").map(|(_, n)| *n).collect();
    assert!(attaches.iter().all(|n| *n <= 50) && attaches.len() >= 3, "{attaches:?}");
    assert!(cloud.applications.values().all(|n| *n == 1));
}

#[tokio::test]
async fn an_applied_call_that_dropped_is_settled_by_reading_the_key_pair() {
    let (endpoint, cloud, ids) = start(10, &[], vec![Fault::DropAfterApply, Fault::Throttle]).await;
    let report = binder(&endpoint, SK).bind(bind(&ids)).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    let cloud = cloud.lock().unwrap();
    assert!(cloud.applications.values().all(|n| *n == 1), "nothing applied twice");
    assert_eq!(cloud.calls.iter().filter(|(a, _)| a == "AttachKeyPair").count(), 1, "never re-sent");
}

#[tokio::test]
async fn re_runs_converge_and_refused_credentials_stop_at_once() {
    let (endpoint, cloud, ids) = start(30, &[], vec![]).await;
    assert!(binder(&endpoint, SK).bind(bind(&ids)).await.unwrap().all_bound());
    let before = cloud.lock().unwrap().calls.len();
    let report = binder(&endpoint, SK).bind(bind(&ids)).await.unwrap();
    assert_eq!(report.unchanged(), 30);
    let calls: Vec<String> = cloud.lock().unwrap().calls[before..].iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(calls, ["DescribeInstances"], "one read, no attach");
    assert!(report.outcomes.iter().all(|(_, o)| *o == InstanceOutcome::Unchanged));

    let before = cloud.lock().unwrap().calls.len();
    let err = binder(&endpoint, "wrong-secret").bind(bind(&ids)).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
    assert_eq!(cloud.lock().unwrap().calls.len() - before, 0, "the refused call never reached the action");
}
