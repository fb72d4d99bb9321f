//! Signing one request and reading one answer, per provider.
//!
//! Run: `cargo bench --bench signing`

use std::hint::black_box;

use chrono_free::now;
use criterion::{Criterion, criterion_group, criterion_main};
use keypair_binder::InstanceId;
use keypair_binder::KeyPairRef;
use keypair_binder::Secret;
use keypair_binder::huawei::errors::failure_of;
use keypair_binder::huawei::request::KpsRequest;
use keypair_binder::huawei::signer::{AkSk, KpsSigner};
use keypair_binder::huawei::wire::BatchResponse;
use keypair_binder::volcengine::errors::read_result;
use keypair_binder::volcengine::request::{EcsSigner, Invocation, prepare, unsigned_params};
use keypair_binder::volcengine::signer::Credentials;
use keypair_binder::volcengine::wire::{self, Action, OperationResult};
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::Signer;

mod fixtures;

mod chrono_free {
    /// A fixed signing time: the signers never read the clock.
    pub fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid timestamp")
    }
}

fn huawei(c: &mut Criterion) {
    let credentials = AkSk { access_key: "HPUAEXAMPLEAK0000001".into(), secret_key: Secret::new("SK"), token: None };
    let batch = fixtures::huawei_batch_of_10();
    // What the binder does for each call: the body from the run's ids and
    // password, the request with its URL and headers, and the kit's signer over it.
    let endpoint = url::Url::parse("https://kps.cn-north-4.myhuaweicloud.com/").unwrap();
    let signer = KpsSigner { project: Some("0123456789abcdef0123456789abcdef".into()) };
    let project = "0123456789abcdef0123456789abcdef";
    c.bench_function("huawei: build and sign batch-associate of 10", |b| {
        b.iter(|| {
            let body = black_box(&batch).body();
            let mut request =
                KpsRequest::batch_associate(project, &body).outgoing(&endpoint, "keypair-binder/bench").unwrap();
            signer.sign(&mut request, &credentials, now());
            black_box(request)
        })
    });
    c.bench_function("huawei: request of 10, unsigned (part)", |b| {
        b.iter(|| {
            let body = black_box(&batch).body();
            black_box(KpsRequest::batch_associate(project, &body).outgoing(&endpoint, "keypair-binder/bench").unwrap())
        })
    });
    let unsigned =
        KpsRequest::batch_associate(project, &batch.body()).outgoing(&endpoint, "keypair-binder/bench").unwrap();
    c.bench_function("huawei: sign request of 10 (part)", |b| {
        b.iter(|| {
            let mut request = unsigned.clone();
            signer.sign(&mut request, &credentials, now());
            black_box(request)
        })
    });
    // This machine's hash speed: the body's SHA-256 is a floor of the signature.
    let body_bytes = unsigned.body.clone();
    c.bench_function(&format!("reference: SHA-256 of the batch body ({} bytes)", body_bytes.len()), |b| {
        b.iter(|| black_box(keypair_binder_core::signing::sha256_hex(black_box(&body_bytes))))
    });
    let answer = serde_json::json!({"tasks": (0..10).map(|i| serde_json::json!({
        "task_id": format!("5213a50d-089e-4231-b5f1-5e6eb4cb8e{i:02}"), "server_id": format!("srv-{i}"), "status": "SUCCESS"}))
        .collect::<Vec<_>>()})
    .to_string();
    c.bench_function("huawei: read batch-associate answer of 10", |b| {
        b.iter(|| black_box(serde_json::from_str::<BatchResponse>(black_box(&answer)).unwrap().tasks.len()))
    });
    let error = HttpResponse::new(429, &br#"{"error_code":"APIGW.0308","error_msg":"throttled","request_id":"r"}"#[..]);
    c.bench_function("huawei: read an error answer", |b| b.iter(|| black_box(failure_of(black_box(&error)))));
}

fn volcengine(c: &mut Criterion) {
    let credentials = Credentials { access_key: "AKLTexample".into(), secret_key: Secret::new("SK"), token: None };
    let ids: Vec<InstanceId> =
        (0..100).map(|i| InstanceId::new(format!("i-3tiegs1y963vj0ab{i:04}")).unwrap()).collect();
    let keypair = KeyPairRef::name("kp-prod").unwrap();
    let endpoint = url::Url::parse("https://open.volcengineapi.com/").unwrap();
    // What the binder does for each call: the canonical query in one pass,
    // the request, and its signature.
    let signer = EcsSigner { region: "cn-beijing".into() };
    c.bench_function("volcengine: build and sign AttachKeyPair of 100", |b| {
        b.iter(|| {
            let token = "token-0001";
            let params = wire::keypair_call_params(Action::AttachKeyPair, black_box(&ids), &keypair, Some(token));
            let invocation = Invocation { id: token, attempt: 1, max_attempts: 7 };
            let mut request = unsigned_params(&endpoint, &params, Some(invocation), "AttachKeyPair").unwrap();
            signer.sign(&mut request, &credentials, now());
            black_box(request)
        })
    });
    c.bench_function("volcengine: canonical query of 100 (part)", |b| {
        b.iter(|| black_box(wire::keypair_call_canonical(Action::AttachKeyPair, black_box(&ids), &keypair, Some("t"))))
    });
    let query = wire::keypair_call_canonical(Action::AttachKeyPair, &ids, &keypair, Some("t"));
    let params = wire::keypair_call_params(Action::AttachKeyPair, &ids, &keypair, Some("t"));
    c.bench_function("volcengine: unsigned request of 100 (part)", |b| {
        b.iter(|| black_box(unsigned_params(&endpoint, black_box(&params), None, "AttachKeyPair").unwrap()))
    });
    // What the binder no longer does: the `url` crate checking every byte
    // of a query handed over as text.
    c.bench_function("reference: url set_query of 100, the query as text", |b| {
        b.iter(|| {
            let mut url = endpoint.clone();
            url.set_query(Some(black_box(&query)));
            black_box(url)
        })
    });
    // The signature hashes the canonical request, the whole query inside.
    let canonical_request = format!("GET\n/\n{query}\ncontent-type:text/plain\nhost:open.volcengineapi.com\n");
    c.bench_function(
        &format!("reference: SHA-256 of {} bytes, about the canonical request", canonical_request.len() + 300),
        |b| {
            let data = vec![b'a'; canonical_request.len() + 300];
            b.iter(|| black_box(keypair_binder_core::signing::sha256_hex(black_box(&data))))
        },
    );
    c.bench_function("volcengine: sign request of 100 (part)", |b| {
        let request = unsigned_params(&endpoint, &params, None, "AttachKeyPair").unwrap();
        b.iter(|| {
            let mut r = request.clone();
            signer.sign(&mut r, &credentials, now());
            black_box(r)
        })
    });
    // The transport hands reqwest a `url::Url`: the signed URI is parsed once
    // more per call on its way out (what the URL costs on top of signing).
    let signed = {
        let mut r = unsigned_params(&endpoint, &params, None, "AttachKeyPair").unwrap();
        signer.sign(&mut r, &credentials, now());
        r.uri
    };
    c.bench_function(
        &format!("volcengine: the transport's URL of the signed call ({} bytes)", signed.to_string().len()),
        |b| b.iter(|| black_box(url::Url::parse(&black_box(&signed).to_string()).unwrap())),
    );
    c.bench_function("volcengine: prepare AttachKeyPair of 100 from parameter pairs", |b| {
        b.iter(|| {
            let query = wire::keypair_call(Action::AttachKeyPair, black_box(&ids), &keypair, Some("token-0001"));
            black_box(prepare(&endpoint, "cn-beijing", &credentials, &query, None, now()).unwrap().uri)
        })
    });
    let details: Vec<_> = ids.iter().map(|id| serde_json::json!({"InstanceId": id, "Error": null})).collect();
    let body = serde_json::json!({"ResponseMetadata": {"RequestId": "r"}, "Result": {"OperationDetails": details}})
        .to_string();
    let response = HttpResponse::new(200, body);
    c.bench_function("volcengine: read AttachKeyPair answer of 100", |b| {
        b.iter(|| black_box(read_result::<OperationResult>(black_box(&response)).unwrap().0.details.len()))
    });
}

/// Alibaba and Tencent: what each binder does per call, build and sign.
fn alibaba_and_tencent(c: &mut Criterion) {
    use keypair_binder::alibaba::request::{AcsSigner, unsigned as acs_unsigned};
    use keypair_binder::alibaba::wire::{self as ali, Action as AliAction};
    use keypair_binder::tencent::request::{CvmSigner, unsigned as cvm_unsigned};
    use keypair_binder::tencent::wire::{Action as CvmAction, KeyPairsCall};

    let key = fixtures::access_key;
    let ali_ids: Vec<InstanceId> = (0..50).map(|i| InstanceId::new(format!("i-bp1example{i:08}")).unwrap()).collect();
    let endpoint = url::Url::parse("https://ecs-cn-hangzhou.aliyuncs.com/").unwrap();
    let (signer, ali_key) = (AcsSigner, key("LTAI5texample"));
    c.bench_function("alibaba: build and sign AttachKeyPair of 50", |b| {
        b.iter(|| {
            let query = ali::keypair_call(black_box(&ali_ids), "kp-prod", "cn-hangzhou");
            let mut request = acs_unsigned(&endpoint, AliAction::AttachKeyPair, &query).unwrap();
            signer.sign(&mut request, &ali_key, now());
            black_box(request)
        })
    });

    let cvm_ids: Vec<String> = (0..100).map(|i| format!("ins-ex{i:06}")).collect();
    let endpoint = url::Url::parse("https://cvm.ap-guangzhou.tencentcloudapi.com/").unwrap();
    let (signer, cvm_key) = (CvmSigner, key("AKIDexample"));
    c.bench_function("tencent: build and sign AssociateInstancesKeyPairs of 100", |b| {
        b.iter(|| {
            let ids: Vec<&str> = black_box(&cvm_ids).iter().map(String::as_str).collect();
            let call = KeyPairsCall { instance_ids: &ids, key_ids: &["skey-example1"], force_stop: None };
            let body = serde_json::to_vec(&call).unwrap();
            let mut request =
                cvm_unsigned(&endpoint, CvmAction::AssociateInstancesKeyPairs, "ap-guangzhou", body).unwrap();
            signer.sign(&mut request, &cvm_key, now());
            black_box(request)
        })
    });
}

criterion_group!(benches, huawei, volcengine, alibaba_and_tencent);
criterion_main!(benches);
