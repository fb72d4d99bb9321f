//! ECS error codes mapped to failure kinds and what to do next.

use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::{Failure, FailureKind};
use std::time::Duration;

use crate::wire::ApiError;

pub use keypair_binder_core::kit::ErrorClass as Class;

/// The failure and class of a non-2xx answer, whatever its body.
pub fn failure_of(response: &HttpResponse) -> (Failure, Class) {
    let error: ApiError = serde_json::from_slice(&response.body).unwrap_or_default();
    let code = error.code.clone().unwrap_or_else(|| format!("HTTP{}", response.status));
    let message = error.message.clone().unwrap_or_else(|| format!("HTTP {} with no error details", response.status));
    let (kind, class) = classify(response.status, &code);
    let retry_after = response
        .header("x-acs-retry-after")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .or_else(|| response.retry_after());
    let failure = Failure::new(kind, message)
        .with_code(code)
        .with_status(response.status)
        .with_request_id(error.request_id)
        .retryable(matches!(class, Class::Retry | Class::Ambiguous))
        .with_retry_after(retry_after);
    (failure, class)
}

fn classify(status: u16, code: &str) -> (FailureKind, Class) {
    match code {
        c if c.starts_with("Throttling") || c == "Rejected.Throttling" => (FailureKind::Throttled, Class::Retry),
        "ServiceUnavailable" => (FailureKind::ProviderError, Class::Retry),
        "SignatureDoesNotMatch" | "IncompleteSignature" | "MissingSecurityToken" | "Forbidden.AccessKeyDisabled" => {
            (FailureKind::Auth, Class::Credentials)
        }
        c if c.starts_with("InvalidAccessKeyId") || c.starts_with("InvalidSecurityToken") => {
            (FailureKind::Auth, Class::Credentials)
        }
        "Forbidden.RAM" | "Forbidden" | "NoPermission" => (FailureKind::Permission, Class::Credentials),
        "InvalidKeyPairName.NotFound" => (FailureKind::KeyPairNotFound, Class::Fail),
        "DependencyViolation.WindowsInstance" => (FailureKind::UnsupportedImage, Class::Fail),
        "InvalidInstanceId.NotFound" => (FailureKind::InstanceNotFound, Class::Fail),
        _ if status == 429 => (FailureKind::Throttled, Class::Retry),
        _ if status == 503 => (FailureKind::ProviderError, Class::Retry),
        _ if status >= 500 => (FailureKind::ProviderError, Class::Ambiguous),
        _ => (FailureKind::InvalidRequest, Class::Fail),
    }
}

/// The failure of one instance from its `Results` entry.
pub fn instance_failure(code: &str, message: &str) -> (Failure, Class) {
    let (kind, class) = match code {
        c if c.starts_with("Throttling") => (FailureKind::Throttled, Class::Retry),
        "DependencyViolation.WindowsInstance" => (FailureKind::UnsupportedImage, Class::Fail),
        "IncorrectInstanceStatus" | "InstanceLockedForSecurity" | "InstanceExpiredOrInArrears" => {
            (FailureKind::InvalidState, Class::Fail)
        }
        "InvalidInstanceId.NotFound" => (FailureKind::InstanceNotFound, Class::Fail),
        c if c.starts_with("InternalError") || c == "ServiceUnavailable" => (FailureKind::ProviderError, Class::Retry),
        _ => (FailureKind::ProviderError, Class::Fail),
    };
    let failure = Failure::new(kind, message).with_code(code).retryable(class == Class::Retry);
    (failure, class)
}
