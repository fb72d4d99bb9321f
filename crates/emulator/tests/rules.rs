//! The emulator's own rules, through raw signed HTTP requests: caps,
//! idempotency, task states, the 10-in-operation limit, authentication.

use std::time::Duration;

use chrono::Utc;
use keypair_binder_core::Secret;
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator, InstanceSpec, Inventory, KeypairSpec, Os, VmState};
use keypair_binder_huawei::request::KpsRequest;
use keypair_binder_huawei::signer::{self as hw_signer, AkSk};
use keypair_binder_huawei::wire::{AssociateBody, Auth, AuthType, BatchAssociateBody, Server};
use keypair_binder_volcengine::request::prepare;
use keypair_binder_volcengine::signer::Credentials;
use serde_json::Value;

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn kps(emu: &Emulator, call: &KpsRequest, sk: &str, date_offset: chrono::Duration) -> (u16, Value) {
    let c = &emu.credentials().huawei;
    let endpoint = emu.base_url();
    let host = KpsRequest::host(&endpoint);
    let headers = call.headers("rules-test");
    let aksk = AkSk { access_key: c.ak.clone(), secret_key: Secret::new(sk), token: None };
    let sig = hw_signer::sign(&call.signable(&host, &headers), &aksk, Some(&c.project_id), Utc::now() + date_offset);
    let mut request = reqwest::Client::new().request(call.method.clone(), call.uri(&endpoint).unwrap().to_string());
    for (k, v) in headers.iter().chain(sig.headers.iter()).filter(|(k, _)| k != "Host") {
        request = request.header(k, v);
    }
    if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    send(request).await
}

async fn kps_ok(emu: &Emulator, call: &KpsRequest) -> (u16, Value) {
    kps(emu, call, &emu.credentials().huawei.sk.clone(), chrono::Duration::zero()).await
}

fn server<'a>(id: &'a str, password: &'a Secret) -> Server<'a> {
    let auth = Some(Auth { kind: AuthType::Password, key: password });
    Server { id, auth, disable_password: None, port: None }
}

fn batch<'a>(ids: &'a [String], keypair: &'a str, password: &'a Secret) -> BatchAssociateBody<'a> {
    let entry = |id: &'a String| AssociateBody { keypair_name: keypair, server: server(id, password) };
    BatchAssociateBody { batch_keypairs: ids.iter().map(entry).collect() }
}

#[tokio::test]
async fn huawei_batch_rules_and_task_states() {
    let emu = Emulator::builder().instances(12).task_duration(Duration::from_millis(900)).start().await.unwrap();
    let c = emu.credentials().huawei.clone();
    let ids = emu.inventory().ids(Cloud::Huawei);
    let project = c.project_id.as_str();
    let password = Secret::new(&c.vm_password);
    let other = Secret::new("x");

    let (status, body) =
        kps_ok(&emu, &KpsRequest::batch_associate(project, &batch(&ids[..11], DEFAULT_KEYPAIR, &password))).await;
    assert_eq!((status, body["error_code"].as_str()), (400, Some("KPS.0002")));
    let mut mixed = batch(&ids[..2], DEFAULT_KEYPAIR, &password);
    mixed.batch_keypairs[1].keypair_name = "other";
    assert_eq!(kps_ok(&emu, &KpsRequest::batch_associate(project, &mixed)).await.0, 400);
    let (status, body) = kps_ok(&emu, &KpsRequest::batch_associate(project, &batch(&ids[..1], "nope", &other))).await;
    assert_eq!((status, body["error_code"].as_str()), (400, Some("KPS.4016")));

    let (status, body) =
        kps_ok(&emu, &KpsRequest::batch_associate(project, &batch(&ids[..10], DEFAULT_KEYPAIR, &password))).await;
    assert_eq!(status, 202);
    let tasks = body["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|t| t["status"] == "SUCCESS"));
    let task_id = tasks[0]["task_id"].as_str().unwrap().to_string();

    // The window of 10 is full: an 11th VM is refused.
    let one = AssociateBody { keypair_name: DEFAULT_KEYPAIR, server: server(&ids[10], &password) };
    let (status, body) = kps_ok(&emu, &KpsRequest::associate(project, &one)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_msg"].as_str().unwrap().contains("at most 10"));
    let (_, running) = kps_ok(&emu, &KpsRequest::running_tasks(project, 100, 0)).await;
    assert_eq!(running["total"], 10);

    let phase = |v: Value| v["task_status"].as_str().unwrap().to_string();
    assert_eq!(phase(kps_ok(&emu, &KpsRequest::task(project, &task_id)).await.1), "READY_BIND");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(phase(kps_ok(&emu, &KpsRequest::task(project, &task_id)).await.1), "RUNNING_BIND");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(phase(kps_ok(&emu, &KpsRequest::task(project, &task_id)).await.1), "SUCCESS_BIND");
    assert_eq!(emu.binding(Cloud::Huawei, &ids[0]).as_deref(), Some(DEFAULT_KEYPAIR));
    assert_eq!(emu.applications(Cloud::Huawei, &ids[0]), 1);

    // A bound VM is refused by batch binding, item by item.
    let (status, body) =
        kps_ok(&emu, &KpsRequest::batch_associate(project, &batch(&ids[..1], DEFAULT_KEYPAIR, &password))).await;
    assert_eq!(status, 202);
    assert_eq!(body["tasks"][0]["status"], "FAILED");
    let (status, body) = kps_ok(&emu, &KpsRequest::task(project, "00000000-0000-0000-0000-000000000000")).await;
    assert_eq!((status, body["error_code"].as_str()), (400, Some("KPS.0001")));
}

fn hw_vm(id: &str, state: VmState, password: Option<&str>) -> InstanceSpec {
    InstanceSpec { state, password: password.map(str::to_string), ..InstanceSpec::new(Cloud::Huawei, id) }
}

#[tokio::test]
async fn huawei_failed_tasks_and_auth() {
    let inventory = Inventory {
        instances: vec![hw_vm("vm-1", VmState::Running, Some("right")), hw_vm("vm-2", VmState::Stopped, None)],
        keypairs: vec![KeypairSpec {
            provider: Cloud::Huawei,
            name: "kp".into(),
            id: None,
            private_key: None,
            public_key: None,
            region: None,
            account: None,
        }],
    };
    let emu = Emulator::builder().inventory(inventory).task_duration(Duration::from_millis(20)).start().await.unwrap();
    let c = emu.credentials().huawei.clone();
    let project = c.project_id.as_str();
    let wrong_password = Secret::new("wrong");
    let wrong = AssociateBody { keypair_name: "kp", server: server("vm-1", &wrong_password) };
    let (status, body) = kps_ok(&emu, &KpsRequest::associate(project, &wrong)).await;
    assert_eq!(status, 202);
    let task_id = body["task_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let (_, task) = kps_ok(&emu, &KpsRequest::task(project, &task_id)).await;
    assert_eq!(task["task_status"], "FAILED_BIND");
    let (_, failed) = kps_ok(&emu, &KpsRequest::failed_tasks(project, 10, 0)).await;
    assert_eq!(failed["tasks"][0]["task_id"], task_id.as_str());
    assert!(failed["tasks"][0]["task_error_msg"].as_str().unwrap().contains("log in"));
    assert_eq!(emu.binding(Cloud::Huawei, "vm-1"), None);

    // A stopped VM takes no auth.
    let with_auth = AssociateBody { keypair_name: "kp", server: server("vm-2", &wrong_password) };
    assert_eq!(kps_ok(&emu, &KpsRequest::associate(project, &with_auth)).await.0, 400);

    let call = KpsRequest::running_tasks(project, 10, 0);
    let (status, body) = kps(&emu, &call, "bad-secret", chrono::Duration::zero()).await;
    assert_eq!((status, body["error_code"].as_str()), (401, Some("APIGW.0301")));
    assert!(body["error_msg"].as_str().unwrap().contains("verify aksk signature fail"));
    let (status, body) = kps(&emu, &call, &c.sk, chrono::Duration::minutes(-20)).await;
    assert_eq!(status, 401);
    assert!(body["error_msg"].as_str().unwrap().contains("expired"));
    let client = reqwest::Client::new();
    let (status, _) =
        send(client.get(call.uri(&emu.base_url()).unwrap().to_string()).header("X-Auth-Token", "forged")).await;
    assert_eq!(status, 401);
    let (status, _) =
        send(client.get(call.uri(&emu.base_url()).unwrap().to_string()).header("X-Auth-Token", &c.token)).await;
    assert_eq!(status, 200);
    let slash = call.uri(&emu.base_url()).unwrap().to_string().replacen(&call.path, &format!("{}/", call.path), 1);
    let (status, body) = send(client.get(slash).header("X-Auth-Token", &c.token)).await;
    assert_eq!((status, body["error_code"].as_str()), (404, Some("APIGW.0101")));
}

async fn volc(emu: &Emulator, query: &[(String, String)], sk: Option<&str>) -> (u16, Value) {
    let c = &emu.credentials().volcengine;
    let credentials =
        Credentials { access_key: c.ak.clone(), secret_key: Secret::new(sk.unwrap_or(&c.sk)), token: None };
    volc_as(emu, query, &credentials, chrono::Duration::zero()).await
}

/// A signed ECS call with these credentials, its clock off by `skew`.
async fn volc_as(
    emu: &Emulator,
    query: &[(String, String)],
    credentials: &Credentials,
    skew: chrono::Duration,
) -> (u16, Value) {
    let mut query = query.to_vec();
    query.push(("Version".into(), "2020-04-01".into()));
    let region = &emu.credentials().volcengine.region;
    let prepared = prepare(&emu.base_url(), region, credentials, &query, None, Utc::now() + skew).unwrap();
    let mut request = reqwest::Client::new().get(prepared.uri.to_string());
    for (k, v) in prepared.headers.iter().filter(|(k, _)| k != "Host") {
        request = request.header(k, v);
    }
    send(request).await
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn attach(ids: &[String], token: Option<&str>) -> Vec<(String, String)> {
    let mut query = q(&[("Action", "AttachKeyPair"), ("KeyPairName", DEFAULT_KEYPAIR)]);
    query.extend(ids.iter().enumerate().map(|(n, id)| (format!("InstanceIds.{}", n + 1), id.clone())));
    if let Some(t) = token {
        query.push(("ClientToken".into(), t.into()));
    }
    query
}

fn code(v: &Value) -> String {
    v["ResponseMetadata"]["Error"]["Code"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn volcengine_caps_idempotency_paging_and_auth() {
    let emu = Emulator::builder().instances(101).processing_time(Duration::from_secs(1)).start().await.unwrap();
    let ids = emu.inventory().ids(Cloud::Volcengine);

    let (status, body) = volc(&emu, &attach(&ids, None), None).await;
    assert_eq!((status, code(&body).as_str()), (400, "LimitExceeded.MaximumInstanceIds"));
    let (status, body) = volc(&emu, &attach(&ids[..1], Some(&"t".repeat(65))), None).await;
    assert_eq!((status, code(&body).as_str()), (400, "InvalidClientToken.Malformed"));

    let first = volc(&emu, &attach(&ids[..2], Some("tok-1")), None).await;
    assert_eq!(first.0, 200);
    let (status, body) = volc(&emu, &attach(&ids[..2], Some("tok-1")), None).await;
    assert_eq!((status, code(&body).as_str()), (412, "IdempotentProcessing"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = volc(&emu, &attach(&ids[..2], Some("tok-1")), None).await;
    assert_eq!(replay, first, "the same answer, replayed");
    assert_eq!(emu.applications(Cloud::Volcengine, &ids[0]), 1, "not applied again");
    let (status, body) = volc(&emu, &attach(&ids[..3], Some("tok-1")), None).await;
    assert_eq!((status, code(&body).as_str()), (400, "IdempotentParameterMismatch"));

    let (status, body) = volc(&emu, &q(&[("Action", "DescribeInstances"), ("MaxResults", "40")]), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["Result"]["Instances"].as_array().unwrap().len(), 40);
    assert_eq!(body["Result"]["NextToken"], "40");
    assert_eq!(body["Result"]["Instances"][0]["KeyPairName"], DEFAULT_KEYPAIR);
    let query = q(&[("Action", "DescribeInstances"), ("MaxResults", "100"), ("NextToken", "40")]);
    let (_, last) = volc(&emu, &query, None).await;
    assert_eq!(last["Result"]["Instances"].as_array().unwrap().len(), 61);
    assert_eq!(last["Result"]["NextToken"], "");
    let (_, pairs) = volc(&emu, &q(&[("Action", "DescribeKeyPairs"), ("KeyPairNames.1", DEFAULT_KEYPAIR)]), None).await;
    assert_eq!(pairs["Result"]["KeyPairs"][0]["KeyPairName"], DEFAULT_KEYPAIR);

    let (status, body) = volc(&emu, &attach(&ids[..1], None), Some("wrong")).await;
    assert_eq!((status, code(&body).as_str()), (401, "SignatureDoesNotMatch"));
    assert_eq!(body["ResponseMetadata"]["Error"]["CodeN"], 100010);
}

#[tokio::test]
async fn volcengine_per_instance_errors() {
    let spec = |id: &str, os: Os, agent: bool, state: VmState| InstanceSpec {
        state,
        os,
        agent,
        ..InstanceSpec::new(Cloud::Volcengine, id)
    };
    let inventory = Inventory {
        instances: vec![
            spec("i-win", Os::Windows, true, VmState::Running),
            spec("i-noagent", Os::Linux, false, VmState::Running),
            spec("i-starting", Os::Linux, true, VmState::Transitioning),
            spec("i-stopped", Os::Linux, true, VmState::Stopped),
        ],
        keypairs: vec![KeypairSpec {
            provider: Cloud::Volcengine,
            name: DEFAULT_KEYPAIR.into(),
            id: None,
            private_key: None,
            public_key: None,
            region: None,
            account: None,
        }],
    };
    let emu = Emulator::builder().inventory(inventory).start().await.unwrap();
    let ids: Vec<String> =
        ["i-win", "i-noagent", "i-starting", "i-stopped", "i-missing"].iter().map(|s| s.to_string()).collect();
    let (status, body) = volc(&emu, &attach(&ids, None), None).await;
    assert_eq!(status, 200);
    let codes: Vec<Value> =
        body["Result"]["OperationDetails"].as_array().unwrap().iter().map(|d| d["Error"]["Code"].clone()).collect();
    let expected = [
        Value::from("InvalidKeyPairForWindows.Unsupported"),
        Value::from("InvalidResetAuthenticationAgent.NotFound"),
        Value::from("InvalidInstanceStatus"),
        Value::Null,
        Value::from("InvalidInstance.NotFound"),
    ];
    assert_eq!(codes, expected);
    assert_eq!(emu.binding(Cloud::Volcengine, "i-stopped").as_deref(), Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn volcengine_clock_skew_and_sts_tokens() {
    let emu = Emulator::builder().instances(1).start().await.unwrap();
    let c = emu.credentials().volcengine.clone();
    let query = q(&[("Action", "DescribeKeyPairs")]);
    let permanent = Credentials { access_key: c.ak.clone(), secret_key: Secret::new(&c.sk), token: None };
    let (status, body) = volc_as(&emu, &query, &permanent, chrono::Duration::minutes(20)).await;
    assert_eq!((status, code(&body).as_str()), (403, "InvalidTimestamp"));
    let (status, _) = volc_as(&emu, &query, &permanent, chrono::Duration::minutes(10)).await;
    assert_eq!(status, 200, "within 15 minutes");

    let mut sts = Credentials { access_key: c.sts_ak.clone(), secret_key: Secret::new(&c.sts_sk), token: None };
    let (status, body) = volc_as(&emu, &query, &sts, chrono::Duration::zero()).await;
    assert_eq!((status, code(&body).as_str()), (401, "InvalidSecretToken"));
    sts.token = Some(Secret::new(&c.session_token));
    assert_eq!(volc_as(&emu, &query, &sts, chrono::Duration::zero()).await.0, 200);
    let unknown = Credentials { access_key: "AKLTnobody".into(), secret_key: Secret::new("x"), token: None };
    let (status, body) = volc_as(&emu, &query, &unknown, chrono::Duration::zero()).await;
    assert_eq!((status, code(&body).as_str()), (401, "InvalidAccessKey"));
}
