//! Bad input, a table: every case gives a clear typed error or failure, none
//! panics, and the emulator's call counter shows nothing was sent where
//! validation should have stopped it. Hostile servers answer the rest.

mod support;

use std::sync::Arc;
use std::time::Duration;

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, Error, KeypairBinder, UnbindRequest, ValidationError, VmCredential};
use keypair_binder_emulator::{Cloud, Emulator};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn req() -> keypair_binder::BindRequestBuilder {
    BindRequest::builder().keypair_name("kp-emulator")
}

/// Requests the builder refuses: nothing can be sent.
fn refused_requests() -> Vec<(&'static str, Result<BindRequest, Error>)> {
    vec![
        ("empty instance list", req().build()),
        ("empty instance id", req().instance("").build()),
        ("instance id with a space", req().instance("i-1 2").build()),
        ("instance id with NUL", req().instance("i-\0").build()),
        ("instance id with a newline", req().instance("i-1\ni-2").build()),
        ("instance id with a tab", req().instance("\ti-1").build()),
        ("overlong instance id", req().instance("i".repeat(129)).build()),
        (
            "more instances than the ceiling",
            req().instances((0..11).map(|i| format!("i-{i}"))).max_instances(10).build(),
        ),
        ("empty key pair name", BindRequest::builder().keypair_name("").instance("i-1").build()),
        ("overlong key pair name", BindRequest::builder().keypair_name("k".repeat(256)).instance("i-1").build()),
        ("key pair name with an escape", BindRequest::builder().keypair_name("kp\u{1b}[2J").instance("i-1").build()),
        ("key pair name with a leading space", BindRequest::builder().keypair_name(" kp").instance("i-1").build()),
        ("no key pair", BindRequest::builder().instance("i-1").build()),
        ("empty key pair id", BindRequest::builder().keypair_id("").instance("i-1").build()),
        ("oversized ClientToken", req().instance("i-1").client_token("t".repeat(65)).build()),
        ("non-ASCII ClientToken", req().instance("i-1").client_token("tøken").build()),
        ("ClientToken with a newline", req().instance("i-1").client_token("a\nb").build()),
        ("SSH port 0", req().instance("i-1").ssh_port(0).build()),
        ("concurrency 0", req().instance("i-1").concurrency(0).build()),
        ("empty VM password", req().instance("i-1").credential(VmCredential::password("")).build()),
    ]
}

#[tokio::test]
async fn invalid_requests_are_refused_with_clear_messages() {
    let cases = refused_requests();
    assert!(cases.len() >= 20);
    for (name, result) in cases {
        match result {
            Err(Error::Validation(e)) => {
                let text = e.to_string();
                assert!(!text.is_empty() && text.len() < 200, "{name}: {text}");
            }
            other => panic!("{name}: expected a validation error, got {other:?}"),
        }
    }
}

fn ids(emu: &Emulator, cloud: Cloud) -> Vec<String> {
    emu.inventory().ids(cloud)
}

#[tokio::test]
async fn options_a_provider_cannot_honour_send_nothing() {
    let emu = emulator().instances(2).start().await.unwrap();
    let (hw, vc, ali) =
        (huawei(&emu).build().unwrap(), volcengine(&emu).build().unwrap(), alibaba(&emu).build().unwrap());
    let tc = tencent(&emu).build().unwrap();
    let tid = ids(&emu, Cloud::Tencent)[0].clone();
    let hid = ids(&emu, Cloud::Huawei)[0].clone();
    let vid = ids(&emu, Cloud::Volcengine)[0].clone();
    let aid = ids(&emu, Cloud::Alibaba)[0].clone();
    let cases: Vec<(&str, Arc<dyn KeypairBinder>, BindRequest, &str)> = vec![
        (
            "huawei: key pair by id",
            Arc::new(hw.clone()),
            BindRequest::builder().keypair_id("kp-1").instance(&hid).build().unwrap(),
            "keypair_id",
        ),
        (
            "huawei: ClientToken",
            Arc::new(hw.clone()),
            req().instance(&hid).client_token("t").build().unwrap(),
            "client_token",
        ),
        (
            "volcengine: VM credential",
            Arc::new(vc.clone()),
            req().instance(&vid).credential(VmCredential::password("p")).build().unwrap(),
            "credential",
        ),
        (
            "volcengine: SSH port",
            Arc::new(vc.clone()),
            req().instance(&vid).ssh_port(2222).build().unwrap(),
            "ssh_port",
        ),
        (
            "volcengine: disable password",
            Arc::new(vc.clone()),
            req().instance(&vid).disable_password(true).build().unwrap(),
            "disable_password",
        ),
        (
            "alibaba: key pair by id",
            Arc::new(ali.clone()),
            BindRequest::builder().keypair_id("kp-1").instance(&aid).build().unwrap(),
            "keypair_id",
        ),
        (
            "alibaba: ClientToken",
            Arc::new(ali.clone()),
            req().instance(&aid).client_token("t").build().unwrap(),
            "client_token",
        ),
        (
            "alibaba: VM credential",
            Arc::new(ali.clone()),
            req().instance(&aid).credential(VmCredential::password("p")).build().unwrap(),
            "credential",
        ),
        ("alibaba: SSH port", Arc::new(ali.clone()), req().instance(&aid).ssh_port(2222).build().unwrap(), "ssh_port"),
        (
            "alibaba: disable password",
            Arc::new(ali.clone()),
            req().instance(&aid).disable_password(true).build().unwrap(),
            "disable_password",
        ),
        (
            "alibaba: force stop",
            Arc::new(ali.clone()),
            req().instance(&aid).force_stop(true).build().unwrap(),
            "force_stop",
        ),
        (
            "huawei: force stop",
            Arc::new(hw.clone()),
            req().instance(&hid).force_stop(true).build().unwrap(),
            "force_stop",
        ),
        (
            "volcengine: force stop",
            Arc::new(vc.clone()),
            req().instance(&vid).force_stop(true).build().unwrap(),
            "force_stop",
        ),
        (
            "tencent: ClientToken",
            Arc::new(tc.clone()),
            req().instance(&tid).client_token("t").build().unwrap(),
            "client_token",
        ),
        (
            "tencent: VM credential",
            Arc::new(tc.clone()),
            req().instance(&tid).credential(VmCredential::password("p")).build().unwrap(),
            "credential",
        ),
        ("tencent: SSH port", Arc::new(tc.clone()), req().instance(&tid).ssh_port(2222).build().unwrap(), "ssh_port"),
        (
            "tencent: disable password",
            Arc::new(tc.clone()),
            req().instance(&tid).disable_password(true).build().unwrap(),
            "disable_password",
        ),
    ];
    for (name, binder, request, option) in cases {
        match binder.bind(request).await {
            Err(Error::Unsupported { option: o, .. }) => assert_eq!(o, option, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let no_key = UnbindRequest::builder().instance(&vid).build().unwrap();
    assert!(matches!(vc.unbind(no_key).await, Err(Error::Validation(ValidationError::NoKeyPair))));
    let no_key = UnbindRequest::builder().instance(&aid).build().unwrap();
    assert!(matches!(ali.unbind(no_key).await, Err(Error::Validation(ValidationError::NoKeyPair))));
    assert_eq!(emu.total_calls(), 0, "validation stopped every case before the network");
}

#[tokio::test]
async fn misconfiguration_is_a_typed_error_before_any_call() {
    let emu = emulator().instances(1).start().await.unwrap();

    let cases: Vec<(&str, Result<(), Error>)> = vec![
        (
            "huawei: unknown region",
            HuaweiBinder::builder().credentials("a", "s").region("mars-1").project_id("p").build().map(drop),
        ),
        (
            "huawei: no region, no endpoint",
            HuaweiBinder::builder().credentials("a", "s").project_id("p").build().map(drop),
        ),
        ("huawei: no credentials", HuaweiBinder::builder().region("cn-north-4").project_id("p").build().map(drop)),
        (
            "huawei: plain http to a remote host",
            HuaweiBinder::builder()
                .credentials("a", "s")
                .endpoint("http://kms.example.com")
                .project_id("p")
                .build()
                .map(drop),
        ),
        (
            "huawei: not a URL",
            HuaweiBinder::builder().credentials("a", "s").endpoint("kms example").project_id("p").build().map(drop),
        ),
        (
            "huawei: credentials in the URL",
            HuaweiBinder::builder()
                .credentials("a", "s")
                .endpoint("https://u:p@kms.example.com")
                .project_id("p")
                .build()
                .map(drop),
        ),
        ("huawei: token without project", HuaweiBinder::builder().token("t").region("cn-north-4").build().map(drop)),
        ("volcengine: no region", VolcengineBinder::builder().credentials("a", "s").build().map(drop)),
        (
            "volcengine: malformed region",
            VolcengineBinder::builder().credentials("a", "s").region("cn beijing").build().map(drop),
        ),
        ("volcengine: no credentials", VolcengineBinder::builder().region("cn-beijing").build().map(drop)),
        (
            "volcengine: plain http to a remote host",
            VolcengineBinder::builder()
                .credentials("a", "s")
                .region("cn-beijing")
                .endpoint("http://10.0.0.1")
                .build()
                .map(drop),
        ),
        (
            "volcengine: ftp endpoint",
            VolcengineBinder::builder()
                .credentials("a", "s")
                .region("cn-beijing")
                .endpoint("ftp://x")
                .build()
                .map(drop),
        ),
        ("alibaba: no region", AlibabaBinder::builder().credentials("a", "s").build().map(drop)),
        (
            "alibaba: malformed region",
            AlibabaBinder::builder().credentials("a", "s").region("cn hangzhou/../x").build().map(drop),
        ),
        ("tencent: no region", TencentBinder::builder().credentials("AKIDa", "s").build().map(drop)),
        (
            "tencent: malformed region",
            TencentBinder::builder().credentials("AKIDa", "s").region("ap guangzhou").build().map(drop),
        ),
        ("tencent: no credentials", TencentBinder::builder().region("ap-guangzhou").build().map(drop)),
        (
            "tencent: SecretKey with a trailing space",
            TencentBinder::builder().credentials("AKIDa", "s ").region("ap-guangzhou").build().map(drop),
        ),
        (
            "tencent: plain http to a remote host",
            TencentBinder::builder()
                .credentials("AKIDa", "s")
                .region("ap-guangzhou")
                .endpoint("http://cvm.example.com")
                .build()
                .map(drop),
        ),
        ("alibaba: no credentials", AlibabaBinder::builder().region("cn-hangzhou").build().map(drop)),
        (
            "alibaba: plain http to a remote host",
            AlibabaBinder::builder()
                .credentials("a", "s")
                .region("cn-hangzhou")
                .endpoint("http://ecs.example.com")
                .build()
                .map(drop),
        ),
    ];
    for (name, result) in cases {
        match result {
            Err(Error::Config { provider, message }) => assert!(!message.is_empty() && !provider.is_empty(), "{name}"),
            other => panic!("{name}: expected a configuration error, got {other:?}"),
        }
    }
    // Loopback plain http is fine when given explicitly, as for the emulator.
    assert!(huawei(&emu).build().is_ok());
    assert_eq!(emu.total_calls(), 0);
}

#[tokio::test]
async fn unicode_and_duplicates_reach_the_cloud_and_fail_or_fold_cleanly() {
    let emu = emulator().instances(2).start().await.unwrap();
    let vid = ids(&emu, Cloud::Volcengine)[0].clone();
    let vc = volcengine(&emu).build().unwrap();
    let request = req().instances([vid.clone(), "i-ünïcødé-火山".into(), vid.clone()]).build().unwrap();
    let report = vc.bind(request).await.unwrap();
    assert_eq!((report.stats.requested, report.outcomes.len()), (3, 2));
    assert!(report.outcomes[0].1.is_bound());
    assert!(report.outcomes[1].1.failure().is_some_and(|f| f.code.as_deref() == Some("InvalidInstance.NotFound")));
    let request = BindRequest::builder().keypair_name("密钥 prod/ü+&=*~%").instance(&vid).build().unwrap();
    let report = vc.bind(request).await.unwrap();
    assert!(report.outcomes[0].1.failure().is_some_and(|f| f.code.as_deref() == Some("InvalidKeyPair.NotFound")));
}

/// A server that answers every connection with the same bytes, then closes.
async fn hostile(answer: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buf)).await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn http(status: &str, content_type: &str, body: &[u8], declared: Option<usize>) -> Vec<u8> {
    let length = declared.unwrap_or(body.len());
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn hostile_and_truncated_answers_never_bind_nor_panic() {
    let answers: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", http("200 OK", "application/json", b"{\"Result\": {\"Operat", Some(400))),
        ("HTML error page", http("502 Bad Gateway", "text/html", b"<html><body><h1>502</h1></body></html>", None)),
        ("not UTF-8", http("200 OK", "application/json", &[0xff, 0xfe, 0x00, 0x9f, 0x92, 0x96], None)),
        (
            "wrong JSON types",
            http(
                "200 OK",
                "application/json",
                br#"{"Result": {"OperationDetails": 5}, "tasks": "x", "task_id": 7}"#,
                None,
            ),
        ),
        ("deeply nested JSON", http("200 OK", "application/json", "[".repeat(10_000).as_bytes(), None)),
        ("declared 50 MB body", http("200 OK", "application/json", b"{}", Some(50 * 1024 * 1024))),
        ("not HTTP at all", b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
        ("empty 200", http("200 OK", "application/json", b"", None)),
        ("error shape without codes", http("400 Bad Request", "application/json", br#"{"weird": true}"#, None)),
    ];
    for (name, answer) in answers {
        let endpoint = hostile(answer).await;
        let binders: Vec<Arc<dyn KeypairBinder>> = vec![
            Arc::new(
                HuaweiBinder::builder()
                    .credentials("ak", "sk")
                    .endpoint(&endpoint)
                    .project_id("p")
                    .retry_policy(fast_retry().with_max_retries(1))
                    .polling(fast_polling())
                    .build()
                    .unwrap(),
            ),
            Arc::new(
                VolcengineBinder::builder()
                    .credentials("ak", "sk")
                    .region("cn-beijing")
                    .endpoint(&endpoint)
                    .retry_policy(fast_retry().with_max_retries(1))
                    .build()
                    .unwrap(),
            ),
            Arc::new(
                AlibabaBinder::builder()
                    .credentials("ak", "sk")
                    .region("cn-hangzhou")
                    .endpoint(&endpoint)
                    .retry_policy(fast_retry().with_max_retries(1))
                    .build()
                    .unwrap(),
            ),
            Arc::new(
                TencentBinder::builder()
                    .credentials("AKIDak", "sk")
                    .region("ap-guangzhou")
                    .endpoint(&endpoint)
                    .retry_policy(fast_retry().with_max_retries(1))
                    .settle_grace(Duration::from_millis(100))
                    .build()
                    .unwrap(),
            ),
        ];
        for binder in binders {
            let provider = binder.capabilities().provider;
            let mut request = req().instances(["vm-1", "vm-2"]).deadline(Duration::from_secs(10));
            if provider == "huawei" {
                request = request.credential(VmCredential::password("pw"));
            }
            match binder.bind(request.build().unwrap()).await {
                Ok(report) => {
                    assert_eq!(report.outcomes.len(), 2, "{provider} {name}");
                    for (id, outcome) in &report.outcomes {
                        let failure =
                            outcome.failure().unwrap_or_else(|| panic!("{provider} {name}: {id} reported bound"));
                        assert!(!failure.message.is_empty(), "{provider} {name}");
                    }
                }
                Err(Error::Unreachable { failure, .. }) => assert!(!failure.message.is_empty(), "{provider} {name}"),
                Err(e) => panic!("{provider} {name}: unexpected {e}"),
            }
        }
    }
}
