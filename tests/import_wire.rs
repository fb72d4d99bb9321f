//! The key-pair read and import each binder sends are the official SDKs'
//! (captured in `fixtures/import-wire.json`): the same method, path, query
//! parameters, JSON body and action headers, sent over real HTTP to a
//! loopback recorder that answers as each cloud does for a missing key pair
//! and then for a successful import.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{KeypairBinder, PublicKey, RunOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the recorder received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A server answering each request with the next of `answers` (status, body).
async fn recorder(answers: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head_end, length) = loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    break (Some(end + 4), length);
                }
            };
            let Some(start) = head_end else { continue };
            while buf.len() < start + length {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..start - 4]).to_string();
            let mut lines = head.lines();
            let mut first = lines.next().unwrap_or("").split(' ');
            let (method, target) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let body = String::from_utf8_lossy(&buf[start..(start + length).min(buf.len())]).to_string();
            log.lock().unwrap().push(Received { method, target, headers, body });
            let (status, body) = answers.next().unwrap_or((500, "{}".into()));
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, seen)
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/import-wire.json")).unwrap()
}

/// The query of a request target, decoded, sorted.
fn query_of(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    pairs.sort();
    pairs
}

fn captured_query(capture: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = capture["query"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect();
    pairs.sort();
    pairs
}

fn header<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn captured_header<'a>(capture: &'a Value, name: &str) -> Option<&'a str> {
    capture["headers"].as_array()?.iter().find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))?[1]
        .as_str()
}

/// What the recorder saw against the SDK's capture: method, path, query,
/// body (as JSON) and the action headers; `ignore` names query parameters
/// whose value is the caller's (an idempotency token).
fn assert_same(label: &str, received: &Received, capture: &Value, ignore: &[&str]) {
    assert_eq!(received.method, capture["method"].as_str().unwrap(), "{label}: method");
    let path = received.target.split('?').next().unwrap();
    assert_eq!(path, capture["path"].as_str().unwrap(), "{label}: path");
    let strip = |pairs: Vec<(String, String)>| -> Vec<(String, String)> {
        pairs.into_iter().map(|(k, v)| if ignore.contains(&k.as_str()) { (k, String::new()) } else { (k, v) }).collect()
    };
    assert_eq!(strip(query_of(&received.target)), strip(captured_query(capture)), "{label}: query");
    let body = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    assert_eq!(body(&received.body), body(capture["body"].as_str().unwrap()), "{label}: body");
    for name in ["x-acs-action", "x-acs-version", "x-tc-action", "x-tc-version", "x-project-id"] {
        assert_eq!(header(received, name), captured_header(capture, name), "{label}: {name}");
    }
}

async fn ensure(binder: &dyn KeypairBinder) {
    let key = PublicKey::parse(fixture()["public_key"].as_str().unwrap()).unwrap();
    let mut options = RunOptions::default();
    options.deadline = Some(Duration::from_secs(10));
    let ensured = binder.ensure_keypair("ops_2026", &key, &options).await.unwrap();
    assert!(ensured.imported);
}

#[tokio::test]
async fn every_cloud_reads_and_imports_as_its_official_sdk() {
    let f = fixture();
    let public_key = f["public_key"].as_str().unwrap();

    let (url, seen) = recorder(vec![
        (404, r#"{"error_code": "KPS.6004", "error_msg": "No Keypair find"}"#.into()),
        (200, format!(r#"{{"keypair": {{"name": "ops_2026", "public_key": "{public_key}", "fingerprint": "x"}}}}"#)),
    ])
    .await;
    let huawei = HuaweiBinder::builder()
        .endpoint(&url)
        .region("cn-north-4")
        .project_id("0123456789abcdef0123456789abcdef")
        .credentials("HPUAEXAMPLEAK0000001", "ExampleSecretKey0000000000000000000000001")
        .build()
        .unwrap();
    ensure(&huawei).await;
    let got = seen.lock().unwrap().clone();
    assert_same("huawei read", &got[0], &f["huawei_read"], &[]);
    assert_same("huawei import", &got[1], &f["huawei_import"], &[]);

    let (url, seen) = recorder(vec![
        (200, r#"{"RequestId": "r", "TotalCount": 0, "KeyPairs": {"KeyPair": []}}"#.into()),
        (200, r#"{"RequestId": "r", "KeyPairName": "ops_2026", "KeyPairFingerPrint": "x"}"#.into()),
    ])
    .await;
    let alibaba = AlibabaBinder::builder()
        .endpoint(&url)
        .region("cn-hangzhou")
        .credentials("LTAI5tExampleAccessKey01", "ExampleAlibabaSecret000000000001")
        .build()
        .unwrap();
    ensure(&alibaba).await;
    let got = seen.lock().unwrap().clone();
    assert_same("alibaba read", &got[0], &f["alibaba_read"], &[]);
    assert_same("alibaba import", &got[1], &f["alibaba_import"], &[]);

    let (url, seen) = recorder(vec![
        (200, r#"{"Response": {"TotalCount": 0, "KeyPairSet": [], "RequestId": "r"}}"#.into()),
        (200, r#"{"Response": {"KeyId": "skey-abcdefgh", "RequestId": "r"}}"#.into()),
    ])
    .await;
    let tencent = TencentBinder::builder()
        .endpoint(&url)
        .region("ap-guangzhou")
        .credentials("AKIDExampleSecretId000000000000000001", "ExampleTencentSecretKey000000001")
        .build()
        .unwrap();
    ensure(&tencent).await;
    let got = seen.lock().unwrap().clone();
    assert_same("tencent read", &got[0], &f["tencent_read"], &[]);
    assert_same("tencent import", &got[1], &f["tencent_import"], &[]);

    let meta = r#""ResponseMetadata": {"RequestId": "r", "Action": "A", "Version": "2020-04-01", "Service": "ecs", "Region": "cn-beijing"}"#;
    let (url, seen) = recorder(vec![
        (200, format!(r#"{{{meta}, "Result": {{"KeyPairs": []}}}}"#)),
        (
            200,
            format!(r#"{{{meta}, "Result": {{"KeyPairId": "kp-x", "KeyPairName": "ops_2026", "FingerPrint": "x"}}}}"#),
        ),
    ])
    .await;
    let volcengine = VolcengineBinder::builder()
        .endpoint(&url)
        .region("cn-beijing")
        .credentials("AKLTexampleaccesskey000001", "ZXhhbXBsZS1zZWNyZXQta2V5LTAwMDAwMQ==")
        .build()
        .unwrap();
    ensure(&volcengine).await;
    let got = seen.lock().unwrap().clone();
    assert_same("volcengine read", &got[0], &f["volcengine_read"], &[]);
    assert_same("volcengine import", &got[1], &f["volcengine_import"], &["ClientToken"]);
    let token = query_of(&got[1].target).into_iter().find(|(k, _)| k == "ClientToken").unwrap().1;
    assert!(token.is_ascii() && !token.is_empty() && token.len() <= 64, "{token}");
}
