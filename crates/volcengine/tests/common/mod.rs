//! A fake Volcengine ECS endpoint on 127.0.0.1 that checks every signature
//! and answers from a script.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use keypair_binder_core::{BindRequest, RetryPolicy};
use keypair_binder_volcengine::signer::{CanonicalRequest, parse_authorization};
use keypair_binder_volcengine::{VolcengineBinder, VolcengineBuilder};
use serde_json::{Value, json};

pub const AK: &str = "AKLTtestaccesskey";
pub const SK: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[derive(Clone, Debug)]
pub struct Call {
    pub params: Vec<(String, String)>,
    pub headers: HashMap<String, String>,
    pub signature_ok: bool,
}

impl Call {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn action(&self) -> &str {
        self.get("Action").unwrap_or("")
    }
    pub fn ids(&self) -> Vec<String> {
        (1..).map_while(|n| self.get(&format!("InstanceIds.{n}")).map(str::to_string)).collect()
    }
}

pub enum Reply {
    Json(u16, Value),
    Throttle(Value),
    Raw(u16, &'static str, Vec<u8>),
}

pub type Script = dyn Fn(usize, &Call) -> Reply + Send + Sync;

#[derive(Clone)]
pub struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Script>,
}

impl Fake {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    pub fn of(&self, action: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.action() == action).collect()
    }
}

async fn handle(State(fake): State<Fake>, request: Request) -> Response {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let headers: HashMap<String, String> =
        request.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let signature_ok = headers.get("authorization").and_then(|a| parse_authorization(a)).is_some_and(|auth| {
        let signed =
            auth.signed_headers.iter().map(|h| (h.clone(), headers.get(h).cloned().unwrap_or_default())).collect();
        let canonical =
            CanonicalRequest { method: "GET", path: "/", query: &params, headers: signed, payload_hash: EMPTY_SHA256 };
        let x_date = headers.get("x-date").cloned().unwrap_or_default();
        auth.access_key == AK && canonical.sign(AK, SK, &auth.region, &x_date).signature == auth.signature
    });
    let call = Call { params, headers, signature_ok };
    let n = {
        let mut calls = fake.calls.lock().unwrap();
        calls.push(call.clone());
        calls.len() - 1
    };
    let reply = if signature_ok {
        (fake.script)(n, &call)
    } else {
        Reply::Json(401, error_body("SignatureDoesNotMatch", "signature mismatch"))
    };
    let (status, ctype, body, retry_after) = match reply {
        Reply::Json(s, v) => (s, "application/json", v.to_string().into_bytes(), None),
        Reply::Throttle(v) => (429, "application/json", v.to_string().into_bytes(), Some("0.05")),
        Reply::Raw(s, t, b) => (s, t, b, None),
    };
    let mut response = Response::builder().status(status).header("content-type", ctype);
    if let Some(r) = retry_after {
        response = response.header("retry-after", r);
    }
    response.body(Body::from(body)).unwrap()
}

pub async fn start(script: impl Fn(usize, &Call) -> Reply + Send + Sync + 'static) -> (String, Fake) {
    let fake = Fake { calls: Arc::default(), script: Arc::new(script) };
    let app = axum::Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), fake)
}

pub fn error_body(code: &str, message: &str) -> Value {
    json!({"ResponseMetadata": {"RequestId": "req-err", "Action": "AttachKeyPair", "Version": "2020-04-01",
        "Error": {"Code": code, "Message": message}}})
}

/// Success for every id except those with an error code in `errors`.
pub fn details(call: &Call, errors: &[(&str, &str)]) -> Reply {
    let details: Vec<Value> = call
        .ids()
        .iter()
        .map(|id| match errors.iter().find(|(e, _)| e == id) {
            Some((_, code)) => {
                json!({"InstanceId": id, "Error": {"Code": code, "Message": format!("{code} for {id}")}})
            }
            None => json!({"InstanceId": id, "Error": null}),
        })
        .collect();
    Reply::Json(
        200,
        json!({"ResponseMetadata": {"RequestId": format!("req-{}", call.ids().len())}, "Result": {"OperationDetails": details}}),
    )
}

pub fn builder(endpoint: &str) -> VolcengineBuilder {
    VolcengineBinder::builder()
        .credentials(AK, SK)
        .region("cn-beijing")
        .endpoint(endpoint)
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(3)
                .with_max_throttled_retries(3)
                .with_backoff(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .throttle_wait(Duration::from_millis(10))
        .state_change_wait(Duration::from_millis(10))
}

pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("i-{i:04}")).collect()
}

/// A bind that goes straight to the calls these tests script (`force`: no
/// converging read first; converging is tested on the emulator).
pub fn bind(ids: Vec<String>) -> BindRequest {
    BindRequest::builder().keypair_name("kp-prod").instances(ids).force(true).build().unwrap()
}
