//! Every associate, batch-associate, disassociate and task exchange the
//! official SDK sent (captured in `fixtures/huawei-wire.json`) is rebuilt from
//! the same inputs: same method, path, query, JSON body and signed headers, and
//! — signed at the captured time with the captured User-Agent — the very same signature.

use std::collections::BTreeSet;

use keypair_binder_core::kit::Signer;
use keypair_binder_core::{BindRequest, KeypairBinder, Secret};
use keypair_binder_huawei::HuaweiBinder;
use keypair_binder_huawei::request::KpsRequest;
use keypair_binder_huawei::signer::{self, AkSk, KpsSigner};
use keypair_binder_huawei::wire::{AssociateBody, Auth, AuthType, BatchAssociateBody, DisassociateBody, Server};
use serde_json::Value;

fn secret_for(access_key: &str) -> &'static str {
    match access_key {
        "HSTAEXAMPLETEMPAK001" => "ExampleTemporarySecretKey000000000000002",
        _ => "ExampleSecretKey0000000000000000000000001",
    }
}

fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"].as_array()?.iter().find(|h| h[0].as_str() == Some(name)).and_then(|h| h[1].as_str())
}

/// The credential of a captured `server` object, owned: bodies borrow it.
fn key_of(server: &Value) -> Option<Secret> {
    server.get("auth").map(|a| Secret::new(a["key"].as_str().unwrap()))
}

fn server<'a>(v: &'a Value, key: Option<&'a Secret>) -> Server<'a> {
    let kind = if v["auth"]["type"] == "keypair" { AuthType::Keypair } else { AuthType::Password };
    Server {
        id: v["id"].as_str().unwrap(),
        auth: key.map(|key| Auth { kind, key }),
        disable_password: v.get("disable_password").and_then(Value::as_bool),
        port: v.get("port").and_then(Value::as_u64).map(|p| p as u16),
    }
}

fn associate<'a>(v: &'a Value, key: Option<&'a Secret>) -> AssociateBody<'a> {
    AssociateBody { keypair_name: v["keypair_name"].as_str().unwrap(), server: server(&v["server"], key) }
}

/// Rebuilds a captured request; `None` for the ones this crate never sends.
fn rebuild(operation: &str, request: &Value) -> Option<KpsRequest> {
    let path = request["path"].as_str().unwrap();
    let project = path.split('/').nth(2).unwrap();
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    Some(match operation {
        "associate_keypair" => {
            let key = key_of(&body["server"]);
            KpsRequest::associate(project, &associate(&body, key.as_ref()))
        }
        "disassociate_keypair" => {
            let key = key_of(&body["server"]);
            KpsRequest::disassociate(project, &DisassociateBody { server: server(&body["server"], key.as_ref()) })
        }
        "batch_associate_keypair" => {
            let items = body["batch_keypairs"].as_array().unwrap();
            let keys: Vec<Option<Secret>> = items.iter().map(|e| key_of(&e["server"])).collect();
            let entries: Vec<AssociateBody> =
                items.iter().zip(&keys).map(|(e, key)| associate(e, key.as_ref())).collect();
            let names: BTreeSet<&str> = entries.iter().map(|e| e.keypair_name).collect();
            if entries.len() > 10 || names.len() > 1 {
                return None;
            }
            KpsRequest::batch_associate(project, &BatchAssociateBody { batch_keypairs: entries })
        }
        "list_keypair_task" => KpsRequest::task(project, path.rsplit('/').next().unwrap()),
        "list_failed_task" => KpsRequest::failed_tasks(project, 10, 0),
        _ => unreachable!(),
    })
}

#[test]
fn requests_match_the_official_sdk() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/huawei-wire.json")).unwrap();
    let mut checked = 0;
    let mut never_sent = 0;
    for exchange in doc["exchanges"].as_array().unwrap() {
        let operation = exchange["operation"].as_str().unwrap();
        let step = exchange["step"].as_u64().unwrap();
        if !matches!(
            operation,
            "associate_keypair"
                | "batch_associate_keypair"
                | "disassociate_keypair"
                | "list_keypair_task"
                | "list_failed_task"
        ) {
            continue;
        }
        for wire in exchange["wire"].as_array().unwrap() {
            let captured = &wire["request"];
            let Some(ours) = rebuild(operation, captured) else {
                never_sent += 1;
                continue;
            };
            assert_eq!(ours.method.as_str(), captured["method"].as_str().unwrap(), "step {step}: method");
            assert_eq!(ours.path, captured["path"].as_str().unwrap(), "step {step}: path");
            let uri = ours.uri(&url::Url::parse("http://127.0.0.1:40041").unwrap()).unwrap();
            assert_eq!(uri.query().unwrap_or(""), captured["query"].as_str().unwrap(), "step {step}: query");
            let captured_body: Value =
                serde_json::from_str(captured["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            let our_body: Value =
                ours.body.as_deref().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or(Value::Null);
            assert_eq!(our_body, captured_body, "step {step}: body");

            // Sign with the SDK's User-Agent and date: same headers signed, same signature.
            let authorization = header(captured, "Authorization").unwrap();
            let parsed = signer::parse_authorization(authorization).unwrap();
            let mut headers = ours.headers(header(captured, "User-Agent").unwrap());
            assert_eq!(headers[0].1, header(captured, "Content-Type").unwrap(), "step {step}: content type");
            headers.push(("X-Sdk-Date".into(), header(captured, "X-Sdk-Date").unwrap().into()));
            let credentials = AkSk {
                access_key: parsed.access_key.clone(),
                secret_key: Secret::new(secret_for(&parsed.access_key)),
                token: header(captured, "X-Security-Token").map(Secret::new),
            };
            let host = header(captured, "Host").unwrap();
            let project = header(captured, "X-Project-Id");
            // Our JSON is compact where the SDK's has spaces: same value, other
            // bytes. Sign the SDK's bytes to compare everything else.
            let mut same_bytes = ours.clone();
            same_bytes.body = captured["body"].as_str().filter(|b| !b.is_empty()).map(|b| b.as_bytes().to_vec());
            let sig = signer::sign(&same_bytes.signable(host, &headers), &credentials, project, chrono::Utc::now());
            assert_eq!(
                sig.signed_headers.split(';').collect::<Vec<_>>(),
                parsed.signed_headers,
                "step {step}: signed headers"
            );
            let server_accepted = wire["server_auth"]["ok"].as_bool().unwrap_or(false);
            if server_accepted {
                assert_eq!(sig.authorization, authorization, "step {step}: signature");
                // The binder's path: the outgoing request, signed by the kit's signer.
                let date = header(captured, "X-Sdk-Date").unwrap();
                let time = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
                let endpoint = url::Url::parse(&format!("http://{host}")).unwrap();
                let mut outgoing =
                    same_bytes.clone().outgoing(&endpoint, header(captured, "User-Agent").unwrap()).unwrap();
                let kit_signer = KpsSigner { project: project.map(str::to_string) };
                kit_signer.sign(&mut outgoing, &credentials, time);
                assert_eq!(outgoing.headers["authorization"], authorization, "step {step}: the kit signer");
                assert_eq!(outgoing.headers["x-sdk-date"], date, "step {step}: date");
            } else {
                assert_ne!(sig.authorization, authorization, "step {step}: the capture used a wrong SK");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 26, "every associate, batch, disassociate and task exchange");
    assert_eq!(never_sent, 2, "an 11-VM batch and a mixed-key-pair batch are never built by this crate");
}

#[test]
fn oversized_and_mixed_batches_are_never_planned() {
    let binder = HuaweiBinder::builder().credentials("ak", "sk").region("cn-north-4").project_id("p").build().unwrap();
    let ids: Vec<String> = (0..11).map(|i| format!("srv-{i:02}")).collect();
    let request = BindRequest::builder()
        .keypair_name("kp-demo")
        .instances(ids)
        .credential(keypair_binder_core::VmCredential::password("x"))
        .build()
        .unwrap();
    let plan = binder.plan(&request).unwrap();
    assert_eq!(plan.calls.iter().map(|c| c.instances.len()).collect::<Vec<_>>(), [10, 1]);
}
