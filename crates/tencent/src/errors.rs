//! CVM error codes mapped to failure kinds, what to do next, and whether
//! the code is about some instances (the call is all-or-nothing: one bad
//! instance fails the whole call, and its message names it) or the request.

use keypair_binder_core::{Failure, FailureKind};

use crate::wire::ApiError;

pub use keypair_binder_core::kit::ErrorClass as Class;

/// Whom an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Some instances of the call (the message usually names them); the
    /// others were not touched and can be sent again without them.
    Instances,
    /// The request as a whole (key, parameters, account).
    Request,
}

/// The failure, class and scope of a `Response.Error`.
pub fn failure_of(error: &ApiError, request_id: Option<String>) -> (Failure, Class, Scope) {
    let (kind, class, scope) = classify(&error.code);
    let failure = Failure::new(kind, error.message.clone())
        .with_code(error.code.clone())
        .with_request_id(request_id)
        .retryable(matches!(class, Class::Retry | Class::Ambiguous));
    (failure, class, scope)
}

fn classify(code: &str) -> (FailureKind, Class, Scope) {
    use Class::*;
    use FailureKind as K;
    use Scope::*;
    match code {
        c if c.starts_with("RequestLimitExceeded") => (K::Throttled, Retry, Request),
        "AuthFailure.TokenFailure" | "AuthFailure.SignatureExpire" => (K::Auth, Credentials, Request),
        c if c.starts_with("AuthFailure.UnauthorizedOperation") || c.starts_with("AuthFailure.MFA") => {
            (K::Permission, Credentials, Request)
        }
        c if c.starts_with("UnauthorizedOperation") => (K::Permission, Credentials, Request),
        c if c.starts_with("AuthFailure") => (K::Auth, Credentials, Request),
        "InternalError" | "InternalServerError" => (K::ProviderError, Ambiguous, Request),
        "ServiceUnavailable" | "ResourceUnavailable" | "ResourceInUse" => (K::ProviderError, Retry, Request),
        "InvalidKeyPairId.NotFound" | "InvalidKeyPairId.Malformed" | "InvalidParameterValue.KeyPairNotSupported" => {
            (K::KeyPairNotFound, Fail, Request)
        }
        "InvalidInstanceId.NotFound" => (K::InstanceNotFound, Fail, Instances),
        "InvalidInstanceId.Malformed" | "InvalidParameterValue.InstanceIdMalformed" => {
            (K::InstanceNotFound, Fail, Instances)
        }
        "UnsupportedOperation.InstanceOsWindows" | "InvalidInstance.NotSupported" => {
            (K::UnsupportedImage, Fail, Instances)
        }
        "OperationDenied.InstanceOperationInProgress" | "MutexOperation.TaskRunning" => {
            (K::InvalidState, Retry, Instances)
        }
        "UnsupportedOperation.InstanceStateStarting"
        | "UnsupportedOperation.InstanceStateStopping"
        | "UnsupportedOperation.InstanceStateRebooting"
        | "UnsupportedOperation.InstanceStatePending" => (K::InvalidState, Retry, Instances),
        c if c.starts_with("UnsupportedOperation.InstanceState")
            || c == "UnsupportedOperation.StoppedModeStopCharging" =>
        {
            (K::InvalidState, Fail, Instances)
        }
        _ => (K::InvalidRequest, Fail, Request),
    }
}

/// Which of a call's instance ids an error message names (as whole words),
/// in the call's order: the instances an all-or-nothing refusal was about.
pub fn named_instances<'a>(message: &str, ids: &[&'a str]) -> Vec<&'a str> {
    let part_of_id = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    ids.iter()
        .copied()
        .filter(|id| {
            !id.is_empty()
                && message.match_indices(id).any(|(at, _)| {
                    let before = message[..at].chars().next_back();
                    let after = message[at + id.len()..].chars().next();
                    !before.is_some_and(part_of_id) && !after.is_some_and(part_of_id)
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_instances_a_message_is_about() {
        let ids = ["ins-1e4r6y8i", "ins-zzzzzzzz", "ins-zzzzzzzz0", "i-abc"];
        assert_eq!(named_instances("The instance id(s) `ins-zzzzzzzz` do not exist.", &ids), ["ins-zzzzzzzz"]);
        assert_eq!(named_instances("Malformed instance id `i-abc`.", &ids), ["i-abc"]);
        assert_eq!(named_instances("ins-zzzzzzzz0, ins-1e4r6y8i", &ids), ["ins-1e4r6y8i", "ins-zzzzzzzz0"]);
        assert!(named_instances("Internal error.", &ids).is_empty());
    }

    #[test]
    fn codes_are_classified_by_what_to_do_next() {
        let cases = [
            ("RequestLimitExceeded.UinLimitExceeded", Class::Retry, Scope::Request),
            ("AuthFailure.SignatureFailure", Class::Credentials, Scope::Request),
            ("UnauthorizedOperation.MFAExpired", Class::Credentials, Scope::Request),
            ("InternalError", Class::Ambiguous, Scope::Request),
            ("InvalidKeyPairId.NotFound", Class::Fail, Scope::Request),
            ("InvalidInstanceId.NotFound", Class::Fail, Scope::Instances),
            ("UnsupportedOperation.InstanceStateRunning", Class::Fail, Scope::Instances),
            ("UnsupportedOperation.InstanceStateStopping", Class::Retry, Scope::Instances),
            ("OperationDenied.InstanceOperationInProgress", Class::Retry, Scope::Instances),
            ("UnknownParameter", Class::Fail, Scope::Request),
        ];
        for (code, class, scope) in cases {
            let (_, c, s) = classify(code);
            assert_eq!((c, s), (class, scope), "{code}");
        }
    }
}
