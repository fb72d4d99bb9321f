//! KPS and API-gateway error codes mapped to failure kinds and retry advice.

use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::{Failure, FailureKind};
use serde_json::Value;

/// What the cloud said went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiError {
    /// `KPS.0002`, `APIGW.0308`…
    pub code: Option<String>,
    /// The message (may be Chinese).
    pub message: Option<String>,
    /// Request id, from the body or `X-Request-Id`.
    pub request_id: Option<String>,
}

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| v.get(*n).and_then(Value::as_str))
}

/// Reads an error body in any of the shapes the SDK accepts: `error_code`/`error_msg`,
/// `errorCode`/`errorMsg` or `code`/`message`, at the top level or one level down
/// (IAM's `{"error": {"message", "title"}}` included).
pub fn parse_error(response: &HttpResponse) -> ApiError {
    let header_id = response.header("x-request-id").map(str::to_string);
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return ApiError { code: None, message: Some(snippet(&response.body)), request_id: header_id };
    };
    let read = |v: &Value| {
        let code = field(v, &["error_code", "errorCode", "code"]).map(str::to_string);
        let message = field(v, &["error_msg", "errorMsg", "message", "title"]).map(str::to_string);
        (code.is_some() || message.is_some()).then_some((code, message))
    };
    let found = read(&body).or_else(|| body.as_object()?.values().find_map(read));
    let (code, message) = found.unwrap_or((None, None));
    let request_id = field(&body, &["request_id"]).map(str::to_string).or(header_id);
    ApiError { code, message, request_id }
}

/// The start of a body, printable, for messages about answers we could not read.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.trim().is_empty() { "empty body".into() } else { text.trim().to_string() }
}

/// How to treat an error answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advice {
    /// The reason class.
    pub kind: FailureKind,
    /// Whether sending again may succeed and is safe (nothing was applied).
    pub retryable: bool,
    /// Whether the request may have been applied.
    pub maybe_applied: bool,
}

fn code_suffix(code: &str) -> &str {
    // The gateway writes `APIGW.` in some places and `APIG.` in others.
    code.strip_prefix("APIGW.").or_else(|| code.strip_prefix("APIG.")).unwrap_or(code)
}

/// Advice from the HTTP status and error code.
pub fn advise(status: u16, code: Option<&str>) -> Advice {
    let code = code.unwrap_or("");
    let gateway = code.starts_with("APIG");
    let (kind, retryable, maybe_applied) = match (status, code) {
        (429, _) => (FailureKind::Throttled, true, false),
        _ if gateway && code_suffix(code) == "0308" => (FailureKind::Throttled, true, false),
        (_, "KPS.4016" | "KPS.6004") => (FailureKind::KeyPairNotFound, false, false),
        (401, _) | (_, "KPS.9001" | "KPS.9002") => (FailureKind::Auth, false, false),
        _ if gateway && code_suffix(code) == "0301" => (FailureKind::Auth, false, false),
        (403, _) | (_, "KPS.9003" | "KPS.9004" | "KPS.9005" | "KPS.9006" | "KPS.6009") => {
            (FailureKind::Permission, false, false)
        }
        (500, "KPS.0003" | "KPS.0004" | "KPS.5001" | "KPS.5002" | "KPS.5003" | "KPS.5004" | "KPS.6007") => {
            (FailureKind::ProviderError, true, false)
        }
        (502 | 503, _) => (FailureKind::ProviderError, true, false),
        (504, _) => (FailureKind::Timeout, false, true),
        (500..=599, _) => (FailureKind::ProviderError, false, true),
        (404, _) => (FailureKind::InvalidRequest, false, false),
        _ => (FailureKind::InvalidRequest, false, false),
    };
    Advice { kind, retryable, maybe_applied }
}

/// The failure and advice for an error answer.
pub fn failure_of(response: &HttpResponse) -> (Failure, Advice) {
    let error = parse_error(response);
    let advice = advise(response.status, error.code.as_deref());
    let message = error.message.clone().unwrap_or_else(|| format!("HTTP {}", response.status));
    let mut failure = Failure::new(advice.kind, message)
        .with_status(response.status)
        .with_request_id(error.request_id.clone())
        .retryable(advice.retryable)
        .with_retry_after(response.retry_after());
    failure.code = error.code;
    (failure, advice)
}

/// The failure of a VM from a KPS code (delivery failure or failed task).
pub fn vm_failure(code: Option<&str>, message: Option<&str>) -> Failure {
    let code_str = code.unwrap_or("");
    let kind = match code_str {
        "KPS.4016" | "KPS.6004" => FailureKind::KeyPairNotFound,
        "KPS.0002" => FailureKind::InvalidRequest,
        c if c.starts_with("KPS.9") => FailureKind::Permission,
        _ => FailureKind::ProviderError,
    };
    let mut failure = Failure::new(kind, message.unwrap_or("the key pair operation failed"));
    failure.code = code.map(str::to_string);
    failure
}
