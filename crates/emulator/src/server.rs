//! The HTTP server: one loopback port for every cloud, able to drop a
//! connection without answering (to emulate a connection lost mid-call).

use chrono::{DateTime, Utc};
use keypair_binder_core::kit::{Signer, signed_by};
use keypair_binder_core::signing::AccessKey;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::faults::Fault;
use crate::inventory::Cloud;
use crate::state::LogEntry;
use crate::{Shared, alibaba, huawei, tencent, volcengine};

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// Marks a response whose connection is to be dropped instead of answered.
#[derive(Clone, Copy, Debug)]
struct DropConnection;

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the emulator")]
struct Dropped;

/// A request as the handlers see it.
pub(crate) struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the request carries the signature `signer` makes at `time`,
    /// checked through the kit's signer interface, with the query in the
    /// cloud's canonical form (as the cloud recomputes it).
    pub fn signed_by(&self, signer: &dyn Signer, key: &AccessKey, canonical_query: &str, time: DateTime<Utc>) -> bool {
        let host = self.header("host").unwrap_or("localhost");
        let mut text = format!("http://{host}{}", self.path);
        if !canonical_query.is_empty() {
            text.push('?');
            text.push_str(canonical_query);
        }
        let Ok(uri) = text.parse::<axum::http::Uri>() else { return false };
        signed_by(signer, key, self.method.clone(), uri, &self.headers, self.body.clone(), time)
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What a handler answered, with the number of instances it concerned.
pub(crate) struct Answer {
    pub response: Response,
    pub instances: usize,
}

impl Answer {
    pub fn new(response: Response, instances: usize) -> Self {
        Self { response, instances }
    }
}

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let app = axum::Router::new().fallback(handle).with_state(shared);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    let response = app.oneshot(request.map(Body::new)).await.unwrap_or_else(|e: Infallible| match e {});
                    if response.extensions().get::<DropConnection>().is_some() { Err(Dropped) } else { Ok(response) }
                }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn drop_connection() -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(DropConnection);
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let received = shared.world().started.elapsed();
    let latency = shared.timing.latency + shared.faults.jitter();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let raw_query = parts.uri.query().unwrap_or("");
    let incoming = Incoming {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect(),
        headers: parts.headers,
        body,
    };
    // Metadata and STS calls by their paths and actions; the clouds by their signing headers.
    if let Some((cloud, action)) = crate::metadata::route(&incoming).or_else(|| crate::sts::route(&incoming)) {
        let answer = if action.starts_with("sts:") {
            crate::sts::handle(&shared, &incoming, cloud, action)
        } else {
            crate::metadata::handle(&shared, &incoming, cloud, action)
        };
        let entry = LogEntry {
            cloud,
            action: action.to_string(),
            status: answer.response.status().as_u16(),
            fault: None,
            instances: 0,
            signed_at: None,
            instance_ids: Vec::new(),
            received,
        };
        shared.world().record(entry);
        return answer.response;
    }
    let (cloud, action) = if let Some(action) = tencent::action(&incoming) {
        (Cloud::Tencent, action)
    } else if let Some(action) = alibaba::action(&incoming) {
        (Cloud::Alibaba, action)
    } else if let Some(action) = volcengine::action(&incoming) {
        (Cloud::Volcengine, action)
    } else {
        (Cloud::Huawei, huawei::action(&incoming))
    };
    // IAM token requests are not faulted: tests of auth script their own failures.
    let fault = if action.starts_with("iam:") { None } else { shared.faults.decide(cloud, &action) };
    let signed_at = incoming
        .header("x-sdk-date")
        .or_else(|| incoming.header("x-date"))
        .or_else(|| incoming.header("x-acs-date"))
        .or_else(|| incoming.header("x-tc-timestamp"))
        .map(str::to_string);
    let instance_ids = named_instances(cloud, &incoming);
    let log = |status: u16, instances: usize| LogEntry {
        cloud,
        action: action.clone(),
        status,
        fault: fault.as_ref().map(|f| format!("{f:?}")),
        instances,
        signed_at: signed_at.clone(),
        instance_ids: instance_ids.clone(),
        received,
    };
    match &fault {
        Some(Fault::Slow(by)) => tokio::time::sleep(*by).await,
        Some(Fault::DropBeforeApply) => {
            shared.world().record(log(0, 0));
            return drop_connection();
        }
        Some(Fault::Throttle) => {
            let response = throttled(cloud, shared.faults.rates().retry_after);
            shared.world().record(log(response.status().as_u16(), 0));
            return response;
        }
        Some(Fault::ServerError) => {
            let response = server_error(cloud);
            shared.world().record(log(response.status().as_u16(), 0));
            return response;
        }
        _ => {}
    }
    let now = Instant::now();
    let answer = match cloud {
        Cloud::Huawei => huawei::handle(&shared, &incoming, &action, fault.as_ref(), now),
        Cloud::Volcengine => volcengine::handle(&shared, &incoming, &action, fault.as_ref(), now),
        Cloud::Alibaba => alibaba::handle(&shared, &incoming, &action),
        Cloud::Tencent => tencent::handle(&shared, &incoming, &action, now),
    };
    match fault {
        Some(Fault::DropAfterApply) => {
            shared.world().record(log(0, answer.instances));
            return drop_connection();
        }
        Some(Fault::BadGatewayAfterApply) => {
            shared.world().record(log(502, answer.instances));
            return gateway_error(cloud, StatusCode::BAD_GATEWAY, "backend unavailable");
        }
        Some(Fault::GatewayTimeoutAfterApply) => {
            shared.world().record(log(504, answer.instances));
            return gateway_error(cloud, StatusCode::GATEWAY_TIMEOUT, "backend timeout");
        }
        _ => {}
    }
    shared.world().record(log(answer.response.status().as_u16(), answer.instances));
    answer.response
}

fn retry_after_value(wait: Duration) -> String {
    if wait.subsec_nanos() == 0 { wait.as_secs().to_string() } else { format!("{:.3}", wait.as_secs_f64()) }
}

fn throttled(cloud: Cloud, wait: Duration) -> Response {
    let mut response = match cloud {
        Cloud::Huawei => huawei::error(
            StatusCode::TOO_MANY_REQUESTS,
            "APIGW.0308",
            "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second",
        ),
        Cloud::Volcengine => {
            volcengine::error(StatusCode::TOO_MANY_REQUESTS, "FlowLimitExceeded", "flow limit exceeded", "", None)
        }
        Cloud::Alibaba => {
            alibaba::error(StatusCode::BAD_REQUEST, "Throttling.User", "Request was denied due to user flow control.")
        }
        // CVM throttles with HTTP 200 and no Retry-After.
        Cloud::Tencent => return tencent::error("RequestLimitExceeded", "The request rate exceeds the limit."),
    };
    if let Ok(value) = retry_after_value(wait).parse() {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// What the cloud's API gateway answers when its backend failed or timed out.
fn gateway_error(cloud: Cloud, status: StatusCode, message: &str) -> Response {
    match cloud {
        Cloud::Huawei => huawei::error(status, "APIGW.0201", message),
        Cloud::Volcengine => volcengine::error(status, "InternalServiceTimeout", message, "", None),
        Cloud::Alibaba => alibaba::error(status, "InternalError", message),
        Cloud::Tencent => tencent::gateway(status, message),
    }
}

fn server_error(cloud: Cloud) -> Response {
    match cloud {
        Cloud::Huawei => huawei::error(StatusCode::INTERNAL_SERVER_ERROR, "KPS.0003", "Dependency service unavailable"),
        Cloud::Volcengine => {
            volcengine::error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "internal error", "", None)
        }
        Cloud::Alibaba => alibaba::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ),
        Cloud::Tencent => tencent::error("InternalError", "An internal error occurred."),
    }
}

/// The instances a key-pair call names, for the request log.
fn named_instances(cloud: Cloud, req: &Incoming) -> Vec<String> {
    match cloud {
        Cloud::Alibaba => req.param("InstanceIds").and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default(),
        Cloud::Tencent => {
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else { return Vec::new() };
            let ids = body["InstanceIds"].as_array().into_iter().flatten();
            ids.take(100).filter_map(|v| v.as_str().map(str::to_string)).collect()
        }
        Cloud::Volcengine => {
            (1..=100).map_while(|n| req.param(&format!("InstanceIds.{n}")).map(str::to_string)).collect()
        }
        Cloud::Huawei => {
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else { return Vec::new() };
            let server_id = |v: &serde_json::Value| v["server"]["id"].as_str().map(str::to_string);
            match body["batch_keypairs"].as_array() {
                Some(entries) => entries.iter().take(100).filter_map(server_id).collect(),
                None => server_id(&body).into_iter().collect(),
            }
        }
    }
}
