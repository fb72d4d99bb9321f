//! Full runs on every provider, in every auth mode, with logging at trace
//! level: no secret key, token, password or private key appears in a log
//! line, nor in the `Debug` or `Display` of binders, requests, reports or errors.
//! Its own test binary, so its tracing subscriber sees every callsite.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, KeypairBinder, UnbindRequest, VmCredential};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator, private_key_for};
use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn secrets(emu: &Emulator) -> Vec<String> {
    let (h, v) = (&emu.credentials().huawei, &emu.credentials().volcengine);
    vec![
        h.sk.clone(),
        h.temp_sk.clone(),
        h.security_token.clone(),
        h.token.clone(),
        h.password.clone(),
        h.vm_password.clone(),
        "emulator-key-of".into(),
        v.sk.clone(),
        v.sts_sk.clone(),
        v.session_token.clone(),
        emu.credentials().alibaba.sk.clone(),
        emu.credentials().alibaba.sts_sk.clone(),
        emu.credentials().alibaba.security_token.clone(),
        emu.credentials().tencent.secret_key.clone(),
        emu.credentials().tencent.sts_secret_key.clone(),
        emu.credentials().tencent.token.clone(),
    ]
    .into_iter()
    .chain(emu.issued_secrets())
    .collect()
}

#[tokio::test]
async fn no_secret_in_logs_debug_or_display() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emu = emulator().instances(12).start().await.unwrap();
    let (h, v) = (emu.credentials().huawei.clone(), emu.credentials().volcengine.clone());
    let hw_ids = emu.inventory().ids(Cloud::Huawei);
    let vc_ids = emu.inventory().ids(Cloud::Volcengine);
    let mut texts: Vec<String> = Vec::new();

    let huawei_binders = [
        huawei(&emu).build().unwrap(),
        huawei(&emu).temporary_access_key(&h.temp_ak, &h.temp_sk, &h.security_token).build().unwrap(),
        huawei(&emu).token(&h.token).build().unwrap(),
        HuaweiBinder::builder()
            .endpoint(emu.base_url().as_str())
            .iam_endpoint(emu.base_url().as_str())
            .region(&h.region)
            .password(&h.user, &h.password, &h.domain)
            .polling(fast_polling())
            .build()
            .unwrap(),
    ];
    for (n, binder) in huawei_binders.iter().enumerate() {
        let ids = &hw_ids[n * 3..n * 3 + 3];
        let bind = bind_request(Cloud::Huawei, &emu, ids);
        texts.push(format!("{bind:?}"));
        let report = binder.bind(bind).await.unwrap();
        texts.push(format!("{report:?}"));
        let unbind = UnbindRequest::builder()
            .instances(ids.iter().cloned())
            .credential(VmCredential::private_key(private_key_for(DEFAULT_KEYPAIR)))
            .build()
            .unwrap();
        texts.push(format!("{unbind:?}"));
        texts.push(format!("{:?}", binder.unbind(unbind).await.unwrap()));
        texts.push(format!("{binder:?}"));
    }
    let wrong = huawei(&emu).credentials(&h.ak, "wrong-huawei-secret").build().unwrap();
    let err = wrong.bind(bind_request(Cloud::Huawei, &emu, &hw_ids[..1])).await.unwrap_err();
    texts.extend([format!("{err:?}"), format!("{err}")]);

    let volcengine_binders = [
        volcengine(&emu).build().unwrap(),
        VolcengineBinder::builder()
            .endpoint(emu.base_url().as_str())
            .credentials(&v.sts_ak, &v.sts_sk)
            .session_token(&v.session_token)
            .region(&v.region)
            .build()
            .unwrap(),
    ];
    for (n, binder) in volcengine_binders.iter().enumerate() {
        let ids = &vc_ids[n * 6..n * 6 + 6];
        let report = binder.bind(bind_request(Cloud::Volcengine, &emu, ids)).await.unwrap();
        assert!(report.all_bound());
        texts.push(format!("{report:?}"));
        texts.push(format!("{binder:?}"));
    }
    let wrong = volcengine(&emu).credentials(&v.ak, "wrong-volc-secret").build().unwrap();
    let request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instance(&vc_ids[0]).build().unwrap();
    let err = wrong.bind(request).await.unwrap_err();
    texts.extend([format!("{err:?}"), format!("{err}")]);

    let a = emu.credentials().alibaba.clone();
    let ali_ids = emu.inventory().ids(Cloud::Alibaba);
    let alibaba_binders = [
        alibaba(&emu).build().unwrap(),
        AlibabaBinder::builder()
            .endpoint(emu.base_url().as_str())
            .credentials(&a.sts_ak, &a.sts_sk)
            .security_token(&a.security_token)
            .region(&a.region)
            .build()
            .unwrap(),
    ];
    for (n, binder) in alibaba_binders.iter().enumerate() {
        let ids = &ali_ids[n * 6..n * 6 + 6];
        let report = binder.bind(bind_request(Cloud::Alibaba, &emu, ids)).await.unwrap();
        assert!(report.all_bound(), "{report:?}");
        texts.push(format!("{report:?}"));
        texts.push(format!("{binder:?}"));
    }
    let wrong = alibaba(&emu).credentials(&a.ak, "wrong-ali-secret").build().unwrap();
    let request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instance(&ali_ids[0]).build().unwrap();
    let err = wrong.bind(request).await.unwrap_err();
    texts.extend([format!("{err:?}"), format!("{err}")]);

    let t = emu.credentials().tencent.clone();
    let tc_ids = emu.inventory().ids(Cloud::Tencent);
    let tencent_binders = [
        tencent(&emu).build().unwrap(),
        tencent(&emu).credentials(&t.sts_secret_id, &t.sts_secret_key).token(&t.token).build().unwrap(),
    ];
    for (n, binder) in tencent_binders.iter().enumerate() {
        let ids = &tc_ids[n * 6..n * 6 + 6];
        let report = binder.bind(bind_request(Cloud::Tencent, &emu, ids)).await.unwrap();
        assert!(report.all_bound(), "{report:?}");
        texts.push(format!("{report:?}"));
        texts.push(format!("{binder:?}"));
    }
    let wrong = tencent(&emu).credentials(&t.secret_id, "wrong-tc-secret").build().unwrap();
    let request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instance(&tc_ids[0]).build().unwrap();
    let err = wrong.bind(request).await.unwrap_err();
    texts.extend([format!("{err:?}"), format!("{err}")]);

    // The VM's role on every cloud: temporary keys and tokens from the metadata services.
    let metadata = emu.base_url().to_string();
    let role_binders: [(Cloud, Box<dyn KeypairBinder>); 4] = [
        (
            Cloud::Huawei,
            Box::new(
                HuaweiBinder::builder()
                    .endpoint(emu.base_url().as_str())
                    .region(&h.region)
                    .project_id(&h.project_id)
                    .metadata_endpoint(&metadata)
                    .polling(fast_polling())
                    .build()
                    .unwrap(),
            ),
        ),
        (
            Cloud::Volcengine,
            Box::new(
                VolcengineBinder::builder()
                    .endpoint(emu.base_url().as_str())
                    .region(&v.region)
                    .metadata_endpoint(&metadata)
                    .build()
                    .unwrap(),
            ),
        ),
        (
            Cloud::Alibaba,
            Box::new(
                AlibabaBinder::builder()
                    .endpoint(emu.base_url().as_str())
                    .region(&a.region)
                    .metadata_endpoint(&metadata)
                    .build()
                    .unwrap(),
            ),
        ),
        (
            Cloud::Tencent,
            Box::new(
                keypair_binder::tencent::TencentBinder::builder()
                    .endpoint(emu.base_url().as_str())
                    .region(&t.region)
                    .metadata_endpoint(&metadata)
                    .build()
                    .unwrap(),
            ),
        ),
    ];
    // Kubernetes service accounts: the web identity token is a secret too.
    let token_file = emu.oidc_token_file().to_str().unwrap().to_string();
    let oidc = AlibabaBinder::builder()
        .endpoint(emu.base_url().as_str())
        .region(&a.region)
        .sts_endpoint(emu.base_url().as_str())
        .oidc_role(&a.role_arn, &a.oidc_provider_arn, &token_file)
        .build()
        .unwrap();
    let report = oidc.bind(bind_request(Cloud::Alibaba, &emu, &ali_ids[..2])).await.unwrap();
    texts.push(format!("{report:?}"));
    texts.push(format!("{oidc:?}"));
    for (cloud, binder) in &role_binders {
        let ids = &emu.inventory().ids(*cloud)[hw_ids.len() - 3..];
        let report = binder.bind(bind_request(*cloud, &emu, ids)).await.unwrap();
        texts.push(format!("{report:?}"));
        texts.push(format!("{binder:?}"));
    }
    assert!(!emu.issued_secrets().is_empty(), "keys were issued and are checked below");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("api_call") && logs.contains("BatchAssociateKeypair") && logs.contains("AttachKeyPair"));
    assert!(logs.contains("AssociateInstancesKeyPairs"), "Tencent calls are traced too");
    texts.push(logs);
    for text in &texts {
        for secret in secrets(&emu).iter().chain(
            ["wrong-huawei-secret", "wrong-volc-secret", "wrong-ali-secret", "wrong-tc-secret"]
                .map(String::from)
                .iter(),
        ) {
            assert!(!text.contains(secret.as_str()), "secret {secret:?} leaked in: {text}");
        }
    }
}

/// Signatures and what they cover show no token, signing key, password or
/// canonical request in their `Debug`: an STS token is signed as a header
/// (or, for Alibaba's RPC signature, a parameter), and a Huawei body holds
/// the VM's password.
#[test]
fn no_secret_in_the_debug_of_signatures() {
    use keypair_binder_core::signing::{AccessKey, SignableRequest};
    let token = "STS-TOKEN-SHOULD-NOT-LEAK";
    let password = "VM-PASSWORD-SHOULD-NOT-LEAK";
    let key = AccessKey {
        access_key: "AK".into(),
        secret_key: keypair_binder::Secret::new("SECRET-KEY-SHOULD-NOT-LEAK"),
        token: Some(keypair_binder::Secret::new(token)),
    };
    let time = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let body = format!("{{\"server\":{{\"auth\":{{\"key\":\"{password}\"}}}}}}");
    let signable = SignableRequest {
        method: "POST",
        host: "example.com",
        path: "/v3/p/keypairs/associate",
        query: &[],
        headers: &headers,
        body: body.as_bytes(),
    };
    let mut texts = vec![format!("{signable:?}")];
    texts.push(format!("{:?}", keypair_binder::huawei::signer::sign(&signable, &key, Some("p"), time)));
    texts.push(format!("{:?}", keypair_binder::volcengine::signer::sign(&signable, &key, "cn-beijing", time)));
    let acs3 = keypair_binder::alibaba::signer::Acs3Request {
        method: "POST",
        path: "/",
        query: &[],
        headers: &headers,
        body: body.as_bytes(),
    };
    texts.push(format!("{:?}", keypair_binder::alibaba::signer::sign_acs3(&acs3, &key)));
    let query = vec![("Action".to_string(), "AttachKeyPair".to_string())];
    texts.push(format!("{:?}", keypair_binder::alibaba::signer::sign_rpc("GET", &query, &key)));
    let tc3 = keypair_binder::tencent::signer::Tc3Request {
        method: "POST",
        host: "cvm.tencentcloudapi.com",
        query: "",
        content_type: "application/json",
        payload: body.as_bytes(),
        unsigned_payload: false,
        timestamp: 1_790_000_000,
    };
    let tc3 = keypair_binder::tencent::signer::sign_tc3(&tc3, &key);
    texts.push(format!("{tc3:?}"));
    for text in &texts {
        for secret in [token, password, "SECRET-KEY-SHOULD-NOT-LEAK", tc3.signing_key_hex.as_str()] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
    // The signatures did cover the token: it is redacted, not missing.
    assert!(texts[1].contains("X-Security-Token"), "{}", texts[1]);
}
