//! Every ACS3 AttachKeyPair/DetachKeyPair/DescribeInstances request the
//! official SDK sent (captured in `fixtures/alibaba-wire.json`, checked there
//! by the SDK's own verifier) is rebuilt from its inputs with the same
//! parameters and the very same signature; every answer reads cleanly.

use keypair_binder_alibaba::request::{AcsSigner, unsigned};
use keypair_binder_alibaba::signer::{AccessKey, Acs3Request, sign_acs3};
use keypair_binder_alibaba::wire::{self, DescribeInstancesResult, KeyPairCallResult};
use keypair_binder_core::kit::Signer;
use keypair_binder_core::{InstanceId, Secret};
use serde_json::Value;

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The secret of the access keys the captures use.
fn secret_for(access_key: &str) -> &'static str {
    match access_key {
        "STS.NUvectorsFakeTempAccessKey01" => "FakeStsSecretForAlibabaVect0001",
        _ => "FakeSecretForAlibabaVectors001",
    }
}

#[test]
fn acs3_keypair_and_describe_requests_match_the_official_sdk() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/alibaba-wire.json")).unwrap();
    let mut rebuilt = 0;
    for scenario in doc["scenarios"].as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        for exchange in scenario["exchanges"].as_array().unwrap() {
            let request = &exchange["request"];
            let headers = pairs(&request["headers"]);
            let Some(action) = header(&headers, "x-acs-action") else { continue };
            if exchange["signature_check"]["ok"] != true || name.starts_with("raw_") || name.starts_with("attach_") {
                continue; // tampered, replayed or deliberately malformed requests
            }
            let sent = pairs(&request["query"]);
            if sent.iter().any(|(k, _)| k == "Signature") {
                continue; // the legacy RPC scheme: covered by the signing vectors
            }
            let region = sent.iter().find(|(k, _)| k == "RegionId").map(|(_, v)| v.clone()).unwrap_or_default();
            let ids: Vec<InstanceId> = sent
                .iter()
                .find(|(k, _)| k == "InstanceIds")
                .and_then(|(_, v)| serde_json::from_str::<Vec<String>>(v).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|id| InstanceId::new(id).unwrap())
                .collect();
            let ours = match action {
                "AttachKeyPair" | "DetachKeyPair" => {
                    let keypair = sent.iter().find(|(k, _)| k == "KeyPairName").map(|(_, v)| v.clone()).unwrap();
                    wire::keypair_call(&ids, &keypair, &region)
                }
                // The by-ids read this provider makes (not the SDK's key-pair filter with paging).
                "DescribeInstances"
                    if sent.iter().map(|(k, _)| k.as_str()).eq(["InstanceIds", "PageSize", "RegionId"]) =>
                {
                    wire::describe_instances(&ids, &region)
                }
                _ => continue,
            };
            assert_eq!(ours, sent, "{name}: parameters");

            // Sign as the SDK did: its headers (date, nonce, user agent, credentials provider), our signer.
            let authorization = header(&headers, "authorization").unwrap();
            let access_key = authorization.split("Credential=").nth(1).unwrap().split(',').next().unwrap();
            let key = AccessKey {
                access_key: access_key.to_string(),
                secret_key: Secret::new(secret_for(access_key)),
                token: header(&headers, "x-acs-security-token").map(Secret::new),
            };
            let signed_names: Vec<&str> =
                authorization.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap().split(';').collect();
            let to_sign: Vec<(String, String)> = headers
                .iter()
                .filter(|(n, _)| {
                    let n = n.to_ascii_lowercase();
                    signed_names.contains(&n.as_str()) && n != "x-acs-accesskey-id" && n != "x-acs-security-token"
                })
                .cloned()
                .collect();
            let signature =
                sign_acs3(&Acs3Request { method: "POST", path: "/", query: &ours, headers: &to_sign, body: b"" }, &key);
            assert_eq!(signature.authorization, authorization, "{name}: signature");

            // The binder's path: the outgoing request carries the very query
            // the SDK sent (byte for byte), and the kit's
            // signer, hashing as it writes, signs it as the SDK did.
            let action = match action {
                "AttachKeyPair" => wire::Action::AttachKeyPair,
                "DetachKeyPair" => wire::Action::DetachKeyPair,
                _ => wire::Action::DescribeInstances,
            };
            let endpoint = url::Url::parse(&format!("http://{}", header(&headers, "host").unwrap())).unwrap();
            let mut outgoing = unsigned(&endpoint, action, &ours).unwrap();
            assert_eq!(outgoing.uri.query(), request["raw_query"].as_str(), "{name}: the query as sent");
            for (n, v) in &to_sign {
                let n = n.to_ascii_lowercase();
                if !["host", "accept", "x-acs-action", "x-acs-version", "x-acs-content-sha256"].contains(&n.as_str()) {
                    outgoing.headers.insert(
                        http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        http::header::HeaderValue::from_str(v).unwrap(),
                    );
                }
            }
            AcsSigner.sign(&mut outgoing, &key, chrono::Utc::now());
            assert_eq!(outgoing.headers["authorization"], authorization, "{name}: the kit signer");
            rebuilt += 1;
        }
    }
    assert!(rebuilt >= 6, "only {rebuilt} requests rebuilt");
}

#[test]
fn every_captured_answer_reads_cleanly() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/alibaba-wire.json")).unwrap();
    let (mut calls, mut describes) = (0, 0);
    for scenario in doc["scenarios"].as_array().unwrap() {
        for exchange in scenario["exchanges"].as_array().unwrap() {
            let body = &exchange["response_body"];
            if exchange["response_status"] != 200 || !body.is_object() {
                continue;
            }
            let text = body.to_string();
            if body.get("Results").is_some() {
                let result: KeyPairCallResult = serde_json::from_str(&text).unwrap();
                for r in &result.results.result {
                    assert!(!r.instance_id.is_empty());
                    assert!(r.success || !r.code.is_empty(), "a failure names its code");
                }
                calls += 1;
            } else if body.get("Instances").is_some() {
                let result: DescribeInstancesResult = serde_json::from_str(&text).unwrap();
                assert!(result.instances.instance.iter().all(|i| !i.status.is_empty()));
                describes += 1;
            }
        }
    }
    assert!(calls >= 5 && describes >= 3, "{calls} call answers, {describes} describe answers");
}
