//! The whole client path of one call: build, sign, send to a loopback server
//! that answers at once, read the answer, settle 100 outcomes. Tracks the
//! per-call CPU of the engine and the provider, not just the signature.
//!
//! Run: `cargo bench --bench client_path`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, KeypairBinder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that answers every request with the same `OperationDetails` at once.
async fn instant_server(body: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // GETs carry no body: each request ends with a blank line.
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn client_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let ids: Vec<String> = (0..100).map(|i| format!("i-3tiegs1y963vj0ab{i:04}")).collect();
    let details: Vec<_> = ids.iter().map(|id| serde_json::json!({"InstanceId": id, "Error": null})).collect();
    let body = serde_json::json!({"ResponseMetadata": {"RequestId": "r"}, "Result": {"OperationDetails": details}});
    let endpoint = runtime.block_on(instant_server(body.to_string()));
    let binder = VolcengineBinder::builder()
        .endpoint(&endpoint)
        .region("cn-beijing")
        .credentials("AKLTexample", "SK")
        .build()
        .unwrap();
    c.bench_function("volcengine: one AttachKeyPair of 100, whole client path", |b| {
        b.iter(|| {
            // `force`: the call alone, without the converging read before it.
            let request = BindRequest::builder()
                .keypair_name("kp-prod")
                .instances(ids.iter().cloned())
                .force(true)
                .build()
                .unwrap();
            let report = runtime.block_on(binder.bind(request)).unwrap();
            black_box(report.counts())
        })
    });

    // The HTTP client's own share of a call: one GET to the same server and
    // its answer read, no signing, no engine; with a short URL and with the
    // 4 KB query of 100 ids.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let query: String = ids.iter().enumerate().map(|(i, id)| format!("&InstanceIds.{}={id}", i + 1)).collect();
    let urls = [
        ("short URL", format!("{endpoint}/?Action=AttachKeyPair")),
        ("4 KB query", format!("{endpoint}/?Action=AttachKeyPair{query}&KeyPairName=kp-prod&Version=2020-04-01")),
    ];
    for (name, url) in urls {
        c.bench_function(&format!("reference: one reqwest GET to the same server, {name}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = client.get(&url).send().await.unwrap();
                    black_box(response.bytes().await.unwrap().len())
                })
            })
        });
    }
}

criterion_group!(benches, client_path);
criterion_main!(benches);
