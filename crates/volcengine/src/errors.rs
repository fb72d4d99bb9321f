//! Volcengine error codes mapped to failure kinds and retry advice.

use std::time::Duration;

use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::{Failure, FailureKind};

use crate::wire::{ApiError, Envelope, FallbackError};

/// A failure of a whole call: no instance got its own answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    /// What went wrong.
    pub failure: Failure,
    /// Whether the cloud may have applied the call anyway.
    pub maybe_applied: bool,
}

impl CallError {
    /// A failure after which the call may have been applied.
    pub fn maybe_applied(failure: Failure) -> Self {
        Self { failure, maybe_applied: true }
    }
}

/// How to treat a whole-call error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advice {
    /// The reason class.
    pub kind: FailureKind,
    /// Whether the same call (same `ClientToken`) may be sent again.
    pub retryable: bool,
    /// Whether the call may have been applied.
    pub maybe_applied: bool,
}

/// Advice for a top-level error from its HTTP status and code.
pub fn call_advice(status: u16, code: &str) -> Advice {
    let (kind, retryable, maybe_applied) = match (status, code) {
        (_, "FlowLimitExceeded" | "AccountFlowLimitExceeded") | (429, _) => (FailureKind::Throttled, true, false),
        (_, "IdempotentProcessing") | (412, _) => (FailureKind::ProviderError, true, true),
        (_, "IdempotentParameterMismatch") => (FailureKind::InvalidRequest, false, false),
        (_, "InvalidKeyPair.NotFound") => (FailureKind::KeyPairNotFound, false, false),
        (_, "SignatureDoesNotMatch" | "InvalidAccessKey" | "InvalidClientTokenId" | "MissingAuthenticationToken")
        | (_, "MissingSignature" | "InvalidSecretToken" | "InvalidAuthorization" | "InvalidCredential")
        | (401, _) => (FailureKind::Auth, false, false),
        (_, "AccessDenied" | "LackPolicy" | "LackProjectPolicy" | "InvalidTimestamp") | (403, _) => {
            (FailureKind::Permission, false, false)
        }
        // The cloud's own server-side codes are retryable whatever status carries them (an HTTP 200
        // with `ResponseMetadata.Error` is a documented shape); all but the unavailable ones may
        // come after the backend applied the call.
        (_, "ServiceUnavailableTemp") => (FailureKind::ProviderError, true, false),
        (_, c) if is_server_code(c) => (FailureKind::ProviderError, true, true),
        // A gateway 502/504 or a 500 may come after the backend applied the call; 503 never reached it.
        (500..=599, _) => (FailureKind::ProviderError, true, status != 503),
        _ => (FailureKind::InvalidRequest, false, false),
    };
    Advice { kind, retryable, maybe_applied }
}

/// Volcengine's server-side error codes (gateway and ECS tables), each retryable.
fn is_server_code(code: &str) -> bool {
    code.starts_with("InternalError")
        || matches!(code, "UndefinedError" | "InternalServiceError" | "FailToConnect" | "InternalServiceTimeout")
}

/// The failure of one instance from its `OperationDetails` error code.
pub fn instance_failure(code: &str, message: &str) -> Failure {
    let (kind, retryable) = match code {
        "InvalidInstance.NotFound" => (FailureKind::InstanceNotFound, false),
        "InvalidKeyPairForWindows.Unsupported" | "InvalidResetAuthenticationAgent.NotFound" => {
            (FailureKind::UnsupportedImage, false)
        }
        "InvalidInstanceStatus" => (FailureKind::InvalidState, false),
        "FlowLimitExceeded" | "AccountFlowLimitExceeded" => (FailureKind::Throttled, true),
        "InvalidKeyPair.NotFound" => (FailureKind::KeyPairNotFound, false),
        c if is_server_code(c) => (FailureKind::ProviderError, true),
        _ => (FailureKind::ProviderError, false),
    };
    Failure::new(kind, message).with_code(code).retryable(retryable)
}

/// A top-level error read from a response, with everything the cloud said.
pub fn call_failure(
    response: &HttpResponse,
    error: Option<&ApiError>,
    request_id: Option<String>,
) -> (Failure, Advice) {
    let code = error.and_then(|e| e.code.clone()).unwrap_or_else(|| format!("HTTP{}", response.status));
    let message = error
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| format!("HTTP {} with no error details", response.status));
    let advice = call_advice(response.status, &code);
    let retry_after = response.retry_after().or(match advice.kind {
        FailureKind::Throttled => Some(Duration::from_millis(500)),
        _ => None,
    });
    let failure = Failure::new(advice.kind, message)
        .with_code(code)
        .with_status(response.status)
        .with_request_id(request_id)
        .retryable(advice.retryable)
        .with_retry_after(retry_after);
    (failure, advice)
}

/// Reads the error of a non-2xx (or error-carrying) answer, whatever its shape.
pub fn parse_error(response: &HttpResponse) -> (Failure, Advice) {
    if let Ok(envelope) = serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(&response.body)
        && let Some(metadata) = envelope.metadata
    {
        return call_failure(response, metadata.error.as_ref(), metadata.request_id);
    }
    if let Ok(fallback) = serde_json::from_slice::<FallbackError>(&response.body)
        && fallback.code.is_some()
    {
        let error = ApiError { code: fallback.code, code_n: fallback.http_code, message: fallback.message };
        return call_failure(response, Some(&error), None);
    }
    let snippet = body_snippet(&response.body);
    let error = ApiError { code: None, code_n: None, message: Some(format!("unreadable error body: {snippet}")) };
    call_failure(response, Some(&error), None)
}

/// The start of a body, printable, for messages about answers we could not read.
pub fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

/// Reads an answer's `Result`, or the error it carries (non-2xx, or 2xx with
/// `ResponseMetadata.Error`), whatever the bytes.
pub fn read_result<'a, T: serde::Deserialize<'a>>(
    response: &'a HttpResponse,
) -> Result<(T, Option<String>), CallError> {
    if !response.is_success() {
        let (failure, advice) = parse_error(response);
        return Err(CallError { failure, maybe_applied: advice.maybe_applied });
    }
    // Checked as UTF-8 once, so each string in it is not checked again.
    let text = std::str::from_utf8(&response.body).map_err(|e| e.to_string());
    let envelope: Envelope<T> =
        text.and_then(|text| serde_json::from_str(text).map_err(|e| e.to_string())).map_err(|e| {
            // A 2xx we cannot read may have been applied; the same token makes a retry safe.
            let message = format!("unreadable response ({e}): {}", body_snippet(&response.body));
            CallError::maybe_applied(
                Failure::new(FailureKind::ProviderError, message).with_status(response.status).retryable(true),
            )
        })?;
    let metadata = envelope.metadata.unwrap_or_default();
    if let Some(error) = &metadata.error {
        let (failure, advice) = call_failure(response, Some(error), metadata.request_id);
        return Err(CallError { failure, maybe_applied: advice.maybe_applied });
    }
    match envelope.result {
        Some(result) => Ok((result, metadata.request_id)),
        None => Err(CallError::maybe_applied(
            Failure::new(FailureKind::ProviderError, "response has no Result")
                .with_status(response.status)
                .with_request_id(metadata.request_id)
                .retryable(true),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_body(code: &str) -> String {
        format!(
            r#"{{"ResponseMetadata":{{"RequestId":"r-1","Action":"AttachKeyPair","Error":{{"Code":"{code}","Message":"m"}}}}}}"#
        )
    }

    /// The cloud's server-side codes are retried whether they come as a 5xx
    /// or as an HTTP 200 carrying `ResponseMetadata.Error`.
    #[test]
    fn server_codes_are_retryable_in_either_shape() {
        for code in ["InternalError", "InternalError.Unknown", "UndefinedError", "InternalServiceError"] {
            for status in [200, 500] {
                let response = HttpResponse::new(status, error_body(code));
                let error = read_result::<serde::de::IgnoredAny>(&response).unwrap_err();
                assert!(error.failure.retryable, "{code} at {status}");
                assert!(error.maybe_applied, "{code} at {status}: it may come after the call applied");
                assert_eq!(error.failure.kind, FailureKind::ProviderError, "{code} at {status}");
                assert_eq!(error.failure.code.as_deref(), Some(code));
            }
        }
        let unavailable =
            read_result::<serde::de::IgnoredAny>(&HttpResponse::new(200, error_body("ServiceUnavailableTemp")))
                .unwrap_err();
        assert!(unavailable.failure.retryable && !unavailable.maybe_applied);
        // A request error in an HTTP 200 stays what it is.
        let invalid =
            read_result::<serde::de::IgnoredAny>(&HttpResponse::new(200, error_body("MissingParameter"))).unwrap_err();
        assert!(!invalid.failure.retryable);
        assert_eq!(invalid.failure.kind, FailureKind::InvalidRequest);
    }

    #[test]
    fn an_instance_internal_error_is_retryable() {
        assert!(instance_failure("InternalError", "m").retryable);
        assert!(instance_failure("InternalServiceError", "m").retryable);
        assert!(!instance_failure("InvalidInstance.NotFound", "m").retryable);
    }
}
