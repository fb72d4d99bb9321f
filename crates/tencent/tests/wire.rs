//! The official SDK's CVM exchanges (captured in `fixtures/tencent-wire.json`
//! against a fake that checks every signature with the SDK's own signer):
//! our key-pair bodies equal the SDK's, every answer reads, every error code
//! seen is classified as the spec says, a refusal names its instances, and
//! every accepted request is rebuilt with the very same signature.

use keypair_binder_tencent::errors::{Class, Scope, failure_of, named_instances};
use keypair_binder_tencent::wire::{self, Action, DescribeInstancesCall, Empty, InstancesAnswer, KeyPairsCall};
use serde_json::Value;

struct Exchange {
    scenario: String,
    action: String,
    body: Value,
    answer: Option<Vec<u8>>,
}

fn exchanges() -> Vec<Exchange> {
    let doc: Value = serde_json::from_str(include_str!("fixtures/tencent-wire.json")).unwrap();
    let mut out = Vec::new();
    for scenario in doc["scenarios"].as_array().unwrap() {
        for exchange in scenario["exchanges"].as_array().unwrap() {
            let request = &exchange["request"];
            let header = |name: &str| {
                request["headers"].as_array().unwrap().iter().find(|h| h[0] == name).map(|h| h[1].as_str().unwrap())
            };
            let (Some(action), Some("application/json")) = (header("X-TC-Action"), header("Content-Type")) else {
                continue;
            };
            let answer = match &exchange["response_body"] {
                Value::String(text) => Some(text.clone().into_bytes()),
                Value::Null => None,
                other => Some(other.to_string().into_bytes()),
            };
            out.push(Exchange {
                scenario: scenario["name"].as_str().unwrap().to_string(),
                action: action.to_string(),
                body: serde_json::from_str(request["body"].as_str().unwrap()).unwrap(),
                answer,
            });
        }
    }
    out
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap()).collect()).unwrap_or_default()
}

#[test]
fn key_pair_bodies_equal_the_sdks() {
    let mut checked = 0;
    for ex in exchanges() {
        let action = match ex.action.as_str() {
            "AssociateInstancesKeyPairs" => Action::AssociateInstancesKeyPairs,
            "DisassociateInstancesKeyPairs" => Action::DisassociateInstancesKeyPairs,
            _ => continue,
        };
        if ex.body.get("ClientToken").is_some() {
            continue; // the scenario that shows the parameter does not exist
        }
        let (instances, keys) = (strings(&ex.body["InstanceIds"]), strings(&ex.body["KeyIds"]));
        let call = KeyPairsCall {
            instance_ids: &instances,
            key_ids: &keys,
            force_stop: ex.body.get("ForceStop").and_then(Value::as_bool),
        };
        assert_eq!(serde_json::to_value(&call).unwrap(), ex.body, "{}: {}", ex.scenario, action.as_str());
        checked += 1;
    }
    assert!(checked >= 15, "{checked} bodies checked");
}

#[test]
fn describe_instances_asks_for_a_full_page_of_the_same_ids() {
    let ex = exchanges().into_iter().find(|e| e.scenario == "describe_instances_by_ids").unwrap();
    let ids = strings(&ex.body["InstanceIds"]);
    let ours = serde_json::to_value(DescribeInstancesCall { instance_ids: &ids, limit: wire::DESCRIBE_LIMIT }).unwrap();
    assert_eq!(ours["InstanceIds"], ex.body["InstanceIds"]);
    assert_eq!(ours["Limit"], 100, "the default page is 20");
}

#[test]
fn every_answer_reads_and_errors_are_classified() {
    let expected = |code: &str| match code {
        "RequestLimitExceeded" => (Class::Retry, Scope::Request),
        "InternalError" => (Class::Ambiguous, Scope::Request),
        c if c.starts_with("AuthFailure") => (Class::Credentials, Scope::Request),
        "InvalidInstanceId.NotFound"
        | "InvalidInstanceId.Malformed"
        | "UnsupportedOperation.InstanceOsWindows"
        | "UnsupportedOperation.InstanceStateRunning"
        | "UnsupportedOperation.StoppedModeStopCharging" => (Class::Fail, Scope::Instances),
        "UnsupportedOperation.InstanceStateStopping" | "OperationDenied.InstanceOperationInProgress" => {
            (Class::Retry, Scope::Instances)
        }
        "InvalidKeyPairId.NotFound"
        | "InvalidParameterValue.LimitExceeded"
        | "MissingParameter"
        | "UnknownParameter"
        | "InvalidParameter" => (Class::Fail, Scope::Request),
        other => panic!("no expectation for {other}"),
    };
    let (mut errors, mut instances_read, mut operations) = (0, 0, 0);
    for ex in exchanges() {
        let Some(body) = ex.answer.as_deref() else { continue };
        let Some(answer) = wire::parse::<InstancesAnswer>(body) else {
            assert!(ex.scenario == "gateway_502_non_json", "{}: unreadable answer", ex.scenario);
            continue;
        };
        assert!(answer.request_id.is_some(), "{}: every answer has a RequestId", ex.scenario);
        if let Some(error) = &answer.error {
            let (failure, class, scope) = failure_of(error, answer.request_id.clone());
            assert_eq!((class, scope), expected(&error.code), "{}: {}", ex.scenario, error.code);
            assert_eq!(failure.code.as_deref(), Some(error.code.as_str()));
            assert_eq!(failure.request_id, answer.request_id);
            if scope == Scope::Instances {
                let ids = strings(&ex.body["InstanceIds"]);
                let named = named_instances(&error.message, &ids);
                assert!(!named.is_empty(), "{}: {} names none of {ids:?}", ex.scenario, error.message);
            }
            errors += 1;
            continue;
        }
        match ex.action.as_str() {
            "DescribeInstances" => {
                for instance in &answer.body.instance_set {
                    assert!(instance.instance_id.starts_with("ins-"));
                    assert!(instance.instance_state.is_some(), "{}", ex.scenario);
                    if instance.latest_operation_state.is_some() {
                        operations += 1;
                    }
                }
                instances_read += answer.body.instance_set.len();
            }
            "AssociateInstancesKeyPairs" | "DisassociateInstancesKeyPairs" => {
                assert!(wire::parse::<Empty>(body).is_some_and(|a| a.error.is_none()));
            }
            _ => {}
        }
    }
    assert!(errors >= 18 && instances_read > 20 && operations > 10, "{errors} {instances_read} {operations}");
}

#[test]
fn a_started_operation_is_found_by_its_request_id() {
    let all = exchanges();
    let scenario: Vec<&Exchange> = all.iter().filter(|e| e.scenario == "associate_operation_fails_async").collect();
    let started = wire::parse::<Empty>(scenario[0].answer.as_deref().unwrap()).unwrap().request_id.unwrap();
    let last = scenario.iter().rev().find(|e| e.action == "DescribeInstances").unwrap();
    let answer = wire::parse::<InstancesAnswer>(last.answer.as_deref().unwrap()).unwrap();
    let instance = &answer.body.instance_set[0];
    assert_eq!(instance.latest_operation_request_id.as_deref(), Some(started.as_str()));
    assert_eq!(instance.latest_operation_state.as_deref(), Some("FAILED"));
    assert!(instance.latest_operation_error_msg.as_deref().is_some_and(|m| !m.is_empty()));
}

/// The secret of the SecretIds the captures use (all fake).
fn secret_for(secret_id: &str) -> Option<&'static str> {
    match secret_id {
        "AKIDkpbTestVectorsFakeSecretId000001" => Some("kpbTestVectorsFakeSecretKey00001"),
        "AKIDkpbTempStsFakeSecretIdForTests0002" => Some("kpbTempStsFakeSecretKey000000002"),
        _ => None,
    }
}

#[test]
fn every_accepted_tc3_post_is_rebuilt_with_the_sdks_signature() {
    use keypair_binder_core::Secret;
    use keypair_binder_core::kit::Signer;
    use keypair_binder_tencent::request::{CvmSigner, unsigned};
    use keypair_binder_tencent::signer::Credentials;

    let doc: Value = serde_json::from_str(include_str!("fixtures/tencent-wire.json")).unwrap();
    let mut rebuilt = 0;
    for scenario in doc["scenarios"].as_array().unwrap() {
        for exchange in scenario["exchanges"].as_array().unwrap() {
            let request = &exchange["request"];
            let headers: Vec<(&str, &str)> = request["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap(), h[1].as_str().unwrap()))
                .collect();
            let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
            let (Some(authorization), Some(action)) = (header("Authorization"), header("X-TC-Action")) else {
                continue;
            };
            let accepted = exchange["signature_check"]["ok"] == true;
            let secret_id = authorization.split("Credential=").nth(1).and_then(|c| c.split('/').next()).unwrap_or("");
            let (Some(secret), true, Some("POST"), Some(region), Some(timestamp)) = (
                secret_for(secret_id),
                accepted,
                request["method"].as_str(),
                header("X-TC-Region"),
                header("X-TC-Timestamp"),
            ) else {
                continue;
            };
            let action = match action {
                "AssociateInstancesKeyPairs" => Action::AssociateInstancesKeyPairs,
                "DisassociateInstancesKeyPairs" => Action::DisassociateInstancesKeyPairs,
                "DescribeInstances" => Action::DescribeInstances,
                "DescribeKeyPairs" => Action::DescribeKeyPairs,
                _ => continue,
            };
            let endpoint = url::Url::parse(&format!("http://{}/", header("Host").unwrap())).unwrap();
            let body = request["body"].as_str().unwrap().as_bytes().to_vec();
            let mut call = unsigned(&endpoint, action, region, body).unwrap();
            let key = Credentials {
                access_key: secret_id.to_string(),
                secret_key: Secret::new(secret),
                token: header("X-TC-Token").map(Secret::new),
            };
            let time = chrono::DateTime::from_timestamp(timestamp.parse().unwrap(), 0).unwrap();
            CvmSigner.sign(&mut call, &key, time);
            let name = scenario["name"].as_str().unwrap();
            assert_eq!(call.headers["authorization"], authorization, "{name}: {}", action.as_str());
            assert_eq!(call.headers["x-tc-timestamp"], timestamp, "{name}");
            assert_eq!(call.headers["x-tc-region"], region, "{name}");
            assert_eq!(call.headers["x-tc-version"], header("X-TC-Version").unwrap(), "{name}");
            assert_eq!(call.headers.get("x-tc-token").map(|v| v.to_str().unwrap()), header("X-TC-Token"), "{name}");
            rebuilt += 1;
        }
    }
    assert!(rebuilt >= 90, "{rebuilt} requests rebuilt");
}
