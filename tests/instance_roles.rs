//! Credentials of the VM's role, from each cloud's metadata service served
//! by the emulator at its real paths: no keys on disk, temporary keys that
//! expire and are fetched again ahead of time, an expired-key answer cured
//! by one fresh fetch, and an unreachable service reported before any
//! cloud call.

mod support;

use std::sync::Arc;
use std::time::Duration;

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{Error, KeypairBinder, RateLimit};
use keypair_binder_emulator::{Cloud, Emulator};
use support::*;

/// A binder of `cloud` with no keys: the role of the VM, from the emulator's metadata service.
fn role_binder(cloud: Cloud, emu: &Emulator, metadata: &str) -> Arc<dyn KeypairBinder> {
    let url = emu.base_url();
    let endpoint = url.as_str();
    let c = emu.credentials();
    match cloud {
        Cloud::Huawei => Arc::new(
            HuaweiBinder::builder()
                .endpoint(endpoint)
                .region(&c.huawei.region)
                .project_id(&c.huawei.project_id)
                .metadata_endpoint(metadata)
                .retry_policy(fast_retry())
                .polling(fast_polling())
                .build()
                .unwrap(),
        ),
        Cloud::Volcengine => Arc::new(
            VolcengineBinder::builder()
                .endpoint(endpoint)
                .region(&c.volcengine.region)
                .metadata_endpoint(metadata)
                .retry_policy(fast_retry())
                .build()
                .unwrap(),
        ),
        Cloud::Alibaba => Arc::new(
            AlibabaBinder::builder()
                .endpoint(endpoint)
                .region(&c.alibaba.region)
                .metadata_endpoint(metadata)
                .retry_policy(fast_retry())
                .build()
                .unwrap(),
        ),
        Cloud::Tencent => Arc::new(
            TencentBinder::builder()
                .endpoint(endpoint)
                .region(&c.tencent.region)
                .metadata_endpoint(metadata)
                .retry_policy(fast_retry())
                .settle_grace(Duration::from_millis(300))
                .build()
                .unwrap(),
        ),
    }
}

const CLOUDS: [(Cloud, &str, bool); 4] = [
    (Cloud::Huawei, "ecs_agency", true),
    (Cloud::Volcengine, "ecs_role", true),
    (Cloud::Alibaba, "ecs_ram_role", true),
    (Cloud::Tencent, "cvm_role", false),
];

/// Compute calls the cloud refused for an expired key, and all calls of
/// `DescribeKeyPairs` (Tencent answers errors with 200; its refused call
/// would be a run's first, that one, sent again).
fn expired_answers(emu: &Emulator, cloud: Cloud) -> (usize, usize) {
    let log = emu.request_log();
    let refused = log
        .iter()
        .filter(|e| e.cloud == cloud && !e.action.starts_with("metadata:") && matches!(e.status, 400 | 401))
        .count();
    let setups = log.iter().filter(|e| e.cloud == cloud && e.action == "DescribeKeyPairs").count();
    (refused, setups)
}

#[tokio::test]
async fn every_cloud_binds_with_the_role_of_the_vm() {
    let emu = emulator().instances(6).start().await.unwrap();
    for (cloud, source, token_flow) in CLOUDS {
        let ids = emu.inventory().ids(cloud);
        let binder = role_binder(cloud, &emu, emu.base_url().as_str());
        let report = binder.bind(bind_request(cloud, &emu, &ids)).await.unwrap();
        assert!(report.all_bound(), "{cloud:?}: {report:?}");
        assert_eq!(report.credential_source, Some(source), "{cloud:?}");
        assert_consistent(&emu, cloud, &report, Some(keypair_binder_emulator::DEFAULT_KEYPAIR));
        let calls = |action: &str| emu.request_log().iter().filter(|e| e.cloud == cloud && e.action == action).count();
        // One fetch of the keys for the whole run, with the session token where the cloud has one.
        assert_eq!(calls("metadata:credentials"), 1, "{cloud:?}");
        assert_eq!(calls("metadata:token"), usize::from(token_flow), "{cloud:?}");
        assert_eq!(expired_answers(&emu, cloud), (0, usize::from(cloud == Cloud::Tencent)), "{cloud:?}");
    }
}

#[tokio::test]
async fn short_lived_keys_are_fetched_again_before_they_expire() {
    // Keys that live 1 s during runs stretched to about 3 s by a client-side rate limit.
    let emu = emulator().instances(24).credential_ttl(Duration::from_secs(1)).start().await.unwrap();
    let ids = emu.inventory().ids(Cloud::Volcengine);
    let binder = VolcengineBinder::builder()
        .endpoint(emu.base_url().as_str())
        .region(&emu.credentials().volcengine.region)
        .metadata_endpoint(emu.base_url().as_str())
        .retry_policy(fast_retry())
        .rate_limit(RateLimit::per_second(std::num::NonZeroU32::new(8).unwrap()))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for pair in ids.chunks(2) {
        let report = binder.bind(bind_request(Cloud::Volcengine, &emu, pair)).await.unwrap();
        assert!(report.all_bound(), "{report:?}");
    }
    let lasted = started.elapsed();
    assert!(lasted > Duration::from_secs(2), "the runs must outlive the keys: {lasted:?}");
    assert_eq!(expired_answers(&emu, Cloud::Volcengine).0, 0, "no call went out with an expired key");
    // A fetch about every 0.8 s (a fifth of the life before expiry): a handful, never one per call.
    let fetched = emu.calls("metadata:credentials");
    let calls = emu.request_log().iter().filter(|e| e.cloud == Cloud::Volcengine).count();
    let most = lasted.as_secs_f64() / 0.8 + 2.0;
    assert!(fetched >= 3 && (fetched as f64) <= most, "{fetched} fetches in {lasted:?} for {calls} calls");
}

#[tokio::test]
async fn a_key_the_cloud_calls_expired_is_fetched_once_more_and_the_call_sent_again() {
    let emu = emulator().instances(8).start().await.unwrap();
    for (cloud, _, _) in CLOUDS {
        let ids = emu.inventory().ids(cloud);
        let binder = role_binder(cloud, &emu, emu.base_url().as_str());
        assert!(binder.bind(bind_request(cloud, &emu, &ids[..4])).await.unwrap().all_bound());
        let fetched =
            emu.request_log().iter().filter(|e| e.cloud == cloud && e.action == "metadata:credentials").count();
        let (_, setups) = expired_answers(&emu, cloud);
        emu.expire_issued_keys();
        let report = binder.bind(bind_request(cloud, &emu, &ids[4..])).await.unwrap();
        assert!(report.all_bound(), "{cloud:?}: {report:?}");
        assert_consistent(&emu, cloud, &report, Some(keypair_binder_emulator::DEFAULT_KEYPAIR));
        let now = emu.request_log().iter().filter(|e| e.cloud == cloud && e.action == "metadata:credentials").count();
        assert_eq!(now, fetched + 1, "{cloud:?}: one fresh fetch");
        // One call answered expired, then sent again (Tencent: the run's DescribeKeyPairs, twice).
        let expected = if cloud == Cloud::Tencent { (0, setups + 2) } else { (1, setups) };
        assert_eq!(expired_answers(&emu, cloud), expected, "{cloud:?}");
    }
}

#[tokio::test]
async fn an_unreachable_metadata_service_fails_fast_before_any_cloud_call() {
    let emu = emulator().instances(2).start().await.unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for (cloud, source, _) in CLOUDS {
        let ids = emu.inventory().ids(cloud);
        let binder = role_binder(cloud, &emu, &format!("http://{closed}"));
        let started = std::time::Instant::now();
        let err = binder.bind(bind_request(cloud, &emu, &ids)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{cloud:?}: {:?}", started.elapsed());
        let Error::NoCredentials { failure, .. } = &err else { panic!("{cloud:?}: {err}") };
        assert!(failure.message.contains(source) && failure.message.contains("unreachable"), "{err}");
    }
    assert_eq!(emu.total_calls(), 0, "no cloud call at all");
}

/// An Alibaba binder that gets its keys from the emulator's STS.
fn alibaba_with_sts(emu: &Emulator) -> keypair_binder::alibaba::AlibabaBuilder {
    AlibabaBinder::builder()
        .endpoint(emu.base_url().as_str())
        .region(&emu.credentials().alibaba.region)
        .sts_endpoint(emu.base_url().as_str())
        .retry_policy(fast_retry())
}

#[tokio::test]
async fn an_oidc_token_is_exchanged_for_the_role_and_read_again_after_rotation() {
    let emu = emulator().instances(8).start().await.unwrap();
    let c = emu.credentials().alibaba.clone();
    let ids = emu.inventory().ids(Cloud::Alibaba);
    let token_file = emu.oidc_token_file().to_str().unwrap().to_string();
    let binder = alibaba_with_sts(&emu).oidc_role(&c.role_arn, &c.oidc_provider_arn, &token_file).build().unwrap();
    let report = binder.bind(bind_request(Cloud::Alibaba, &emu, &ids[..4])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("oidc_role_arn"));
    assert_eq!(emu.calls("sts:AssumeRoleWithOIDC"), 1);
    // Kubernetes rotates the token; the keys run out: the new token is read from the file.
    emu.rotate_oidc_token().unwrap();
    emu.expire_issued_keys();
    let report = binder.bind(bind_request(Cloud::Alibaba, &emu, &ids[4..])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(emu.calls("sts:AssumeRoleWithOIDC"), 2);
    assert!(emu.request_log().iter().filter(|e| e.action.starts_with("sts:")).all(|e| e.status == 200));
    // A token the STS does not take: no credentials, nothing sent to ECS.
    let before = emu.calls("AttachKeyPair");
    std::fs::write(emu.oidc_token_file(), "eyJ.not-the-token").unwrap();
    let fresh = alibaba_with_sts(&emu).oidc_role(&c.role_arn, &c.oidc_provider_arn, &token_file).build().unwrap();
    let err = fresh.bind(bind_request(Cloud::Alibaba, &emu, &ids[..1])).await.unwrap_err();
    assert!(matches!(&err, Error::NoCredentials { failure, .. } if failure.message.contains("OIDCToken")), "{err}");
    assert_eq!(emu.calls("AttachKeyPair"), before);
}

#[tokio::test]
async fn a_role_is_assumed_with_the_callers_keys_signed_as_the_sdk_signs() {
    let emu = emulator().instances(4).start().await.unwrap();
    let c = emu.credentials().alibaba.clone();
    let ids = emu.inventory().ids(Cloud::Alibaba);
    // The caller: permanent keys; the emulator checks AssumeRole's signature with the provider's signer.
    let binder = alibaba_with_sts(&emu).credentials(&c.ak, &c.sk).assume_role(&c.role_arn).build().unwrap();
    let report = binder.bind(bind_request(Cloud::Alibaba, &emu, &ids[..2])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("assume_role"));
    assert_eq!(emu.calls("sts:AssumeRole"), 1);
    // Role chaining: the caller is itself the VM's role (temporary keys and their token).
    let chained = alibaba_with_sts(&emu)
        .metadata_endpoint(emu.base_url().as_str())
        .assume_role(&c.role_arn)
        .role_session_name("rotation-2026")
        .build()
        .unwrap();
    assert!(chained.bind(bind_request(Cloud::Alibaba, &emu, &ids[2..])).await.unwrap().all_bound());
    assert_eq!(emu.calls("sts:AssumeRole"), 2);
    // A caller whose signature does not verify: refused by STS, nothing sent to ECS.
    let before = emu.calls("AttachKeyPair");
    let wrong = alibaba_with_sts(&emu).credentials(&c.ak, "not-the-secret").assume_role(&c.role_arn).build().unwrap();
    let err = wrong.bind(bind_request(Cloud::Alibaba, &emu, &ids[..1])).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoCredentials { failure, .. } if failure.message.contains("SignatureDoesNotMatch")),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-secret"));
    assert_eq!(emu.calls("AttachKeyPair"), before);
}

#[tokio::test]
async fn volcengine_takes_an_oidc_role_and_assumes_roles_too() {
    let emu = emulator().instances(6).start().await.unwrap();
    let c = emu.credentials().volcengine.clone();
    let ids = emu.inventory().ids(Cloud::Volcengine);
    let sts = || {
        VolcengineBinder::builder()
            .endpoint(emu.base_url().as_str())
            .region(&c.region)
            .sts_endpoint(emu.base_url().as_str())
            .retry_policy(fast_retry())
    };
    let token_file = emu.oidc_token_file().to_str().unwrap().to_string();
    let oidc = sts().oidc_role(&c.role_trn, &token_file).build().unwrap();
    let report = oidc.bind(bind_request(Cloud::Volcengine, &emu, &ids[..2])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("oidc_role_trn"));
    emu.rotate_oidc_token().unwrap();
    emu.expire_issued_keys();
    assert!(oidc.bind(bind_request(Cloud::Volcengine, &emu, &ids[2..4])).await.unwrap().all_bound());
    assert_eq!(emu.calls("sts:AssumeRoleWithOIDC"), 2, "the rotated token was read from the file");

    let assumed = sts().credentials(&c.ak, &c.sk).assume_role(&c.role_trn).build().unwrap();
    let report = assumed.bind(bind_request(Cloud::Volcengine, &emu, &ids[4..])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("assume_role"));
    assert_eq!(emu.calls("sts:AssumeRole"), 1);
    assert!(emu.request_log().iter().filter(|e| e.action.starts_with("sts:")).all(|e| e.status == 200));
    let wrong = sts().credentials(&c.ak, "not-the-secret").assume_role(&c.role_trn).build().unwrap();
    let err = wrong.bind(bind_request(Cloud::Volcengine, &emu, &ids[..1])).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoCredentials { failure, .. } if failure.message.contains("SignatureDoesNotMatch")),
        "{err}"
    );
}

#[tokio::test]
async fn tencent_takes_a_tke_web_identity_and_assumes_roles_too() {
    let emu = emulator().instances(6).start().await.unwrap();
    let c = emu.credentials().tencent.clone();
    let ids = emu.inventory().ids(Cloud::Tencent);
    let sts = || {
        TencentBinder::builder()
            .endpoint(emu.base_url().as_str())
            .region(&c.region)
            .sts_endpoint(emu.base_url().as_str())
            .retry_policy(fast_retry())
            .settle_grace(Duration::from_millis(300))
    };
    let token_file = emu.oidc_token_file().to_str().unwrap().to_string();
    let tke = sts().oidc_role(&c.role_arn, &c.oidc_provider_id, &token_file).build().unwrap();
    let report = tke.bind(bind_request(Cloud::Tencent, &emu, &ids[..2])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("tke_oidc"));
    emu.rotate_oidc_token().unwrap();
    emu.expire_issued_keys();
    assert!(tke.bind(bind_request(Cloud::Tencent, &emu, &ids[2..4])).await.unwrap().all_bound());
    assert_eq!(emu.calls("sts:AssumeRoleWithWebIdentity"), 2, "the rotated token was read from the file");

    let assumed = sts().credentials(&c.secret_id, &c.secret_key).assume_role(&c.role_arn).build().unwrap();
    let report = assumed.bind(bind_request(Cloud::Tencent, &emu, &ids[4..])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("assume_role"));
    assert_eq!(emu.calls("sts:AssumeRole"), 1);
    let wrong = sts().credentials(&c.secret_id, "not-the-secret").assume_role(&c.role_arn).build().unwrap();
    let err = wrong.bind(bind_request(Cloud::Tencent, &emu, &ids[..1])).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoCredentials { failure, .. } if failure.message.contains("SignatureFailure")),
        "{err}"
    );
}

#[tokio::test]
async fn huawei_takes_an_oidc_agency_and_assumes_agencies_too() {
    let emu = emulator().instances(6).start().await.unwrap();
    let c = emu.credentials().huawei.clone();
    let ids = emu.inventory().ids(Cloud::Huawei);
    let sts = || {
        HuaweiBinder::builder()
            .endpoint(emu.base_url().as_str())
            .region(&c.region)
            .project_id(&c.project_id)
            .sts_endpoint(emu.base_url().as_str())
            .retry_policy(fast_retry())
            .polling(fast_polling())
    };
    let token_file = emu.oidc_token_file().to_str().unwrap().to_string();
    let oidc = sts().oidc_agency(&c.oidc_provider_urn, &c.agency_urn, &token_file).build().unwrap();
    let report = oidc.bind(bind_request(Cloud::Huawei, &emu, &ids[..2])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("oidc_agency"));
    emu.rotate_oidc_token().unwrap();
    emu.expire_issued_keys();
    assert!(oidc.bind(bind_request(Cloud::Huawei, &emu, &ids[2..4])).await.unwrap().all_bound());
    assert_eq!(emu.calls("sts:AssumeAgencyWithOidc"), 2, "the rotated token was read from the file");

    let assumed = sts().credentials(&c.ak, &c.sk).assume_role(&c.agency_urn).build().unwrap();
    let report = assumed.bind(bind_request(Cloud::Huawei, &emu, &ids[4..])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("assume_role"));
    assert_eq!(emu.calls("sts:AssumeAgency"), 1);
    // A caller whose signature does not verify: at most one refused call, nothing sent to KPS.
    let before = emu.total_calls();
    let wrong = sts().credentials(&c.ak, "not-the-secret").assume_role(&c.agency_urn).build().unwrap();
    let err = wrong.bind(bind_request(Cloud::Huawei, &emu, &ids[..1])).await.unwrap_err();
    assert!(matches!(&err, Error::NoCredentials { .. }), "{err}");
    assert_eq!(emu.total_calls(), before + 1, "one refused STS call, nothing else");
}

#[tokio::test]
async fn alibaba_takes_keys_from_a_credentials_uri() {
    let emu = emulator().instances(2).start().await.unwrap();
    let ids = emu.inventory().ids(Cloud::Alibaba);
    let uri =
        format!("{}{}", emu.base_url().as_str().trim_end_matches('/'), keypair_binder_emulator::CREDENTIALS_URI_PATH);
    let binder = AlibabaBinder::builder()
        .endpoint(emu.base_url().as_str())
        .region(&emu.credentials().alibaba.region)
        .with_config(keypair_binder::alibaba::AlibabaConfigKey::CredentialsUri, uri)
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    let report = binder.bind(bind_request(Cloud::Alibaba, &emu, &ids)).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("credentials_uri"));
    assert_eq!(emu.calls("credentials:uri"), 1);
}

#[tokio::test]
async fn calls_in_flight_when_the_key_expires_share_one_fresh_fetch() {
    // Thirty VMs, ten calls at a time, tasks that take a while: the keys are
    // withdrawn while calls and task polls are in flight.
    let emu = Emulator::builder()
        .instances(30)
        .task_duration(Duration::from_millis(400))
        .latency(Duration::from_millis(60))
        .seed(5)
        .start()
        .await
        .unwrap();
    let ids = emu.inventory().ids(Cloud::Huawei);
    let c = emu.credentials().huawei.clone();
    let binder = HuaweiBinder::builder()
        .endpoint(emu.base_url().as_str())
        .region(&c.region)
        .project_id(&c.project_id)
        .metadata_endpoint(emu.base_url().as_str())
        .retry_policy(fast_retry())
        .polling(fast_polling())
        .concurrency(10)
        .build()
        .unwrap();
    let run = binder.bind(bind_request(Cloud::Huawei, &emu, &ids));
    let expire = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        emu.expire_issued_keys();
    };
    let (report, ()) = tokio::join!(run, expire);
    let report = report.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_consistent(&emu, Cloud::Huawei, &report, Some(keypair_binder_emulator::DEFAULT_KEYPAIR));
    let log = emu.request_log();
    let expired = log.iter().filter(|e| !e.action.starts_with("metadata:") && e.status == 401).count();
    assert!(expired >= 1, "some calls were answered expired");
    assert_eq!(emu.calls("metadata:credentials"), 2, "{expired} expired answers, one fresh fetch");
}

#[tokio::test]
async fn huawei_takes_a_federated_id_token_and_a_pod_identity_from_the_environment() {
    use keypair_binder::huawei::HuaweiBuilder;
    use keypair_binder_core::env::StaticEnv;

    let emu = emulator().instances(4).start().await.unwrap();
    let c = emu.credentials().huawei.clone();
    let ids = emu.inventory().ids(Cloud::Huawei);
    let url = emu.base_url().to_string();
    let token_file = emu.oidc_token_file().to_str().unwrap().to_string();
    let base = StaticEnv::new()
        .with_var("HW_REGION_NAME", &c.region)
        .with_var("HUAWEICLOUD_SDK_PROJECT_ID", &c.project_id)
        .with_var("HUAWEICLOUD_SDK_IAM_ENDPOINT", &url);
    // A federated ID token comes before the AK/SK in the environment.
    let federated = base
        .clone()
        .with_var("HUAWEICLOUD_SDK_AK", &c.ak)
        .with_var("HUAWEICLOUD_SDK_SK", "not-used")
        .with_var("HUAWEICLOUD_SDK_IDP_ID", keypair_binder_emulator::HUAWEI_IDP_ID)
        .with_var("HUAWEICLOUD_SDK_ID_TOKEN_FILE", &token_file);
    let binder = HuaweiBuilder::from_env_with(&federated)
        .endpoint(&url)
        .retry_policy(fast_retry())
        .polling(fast_polling())
        .build()
        .unwrap();
    let report = binder.bind(bind_request(Cloud::Huawei, &emu, &ids[..2])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("federation"));
    assert_eq!(emu.calls("iam:CreateTokenWithIdToken"), 1);
    assert_eq!(emu.calls("iam:CreateTemporaryAccessKeyByToken"), 1);

    let pod = base
        .with_var(
            "HC_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}{}", url.trim_end_matches('/'), keypair_binder_emulator::POD_CREDENTIALS_PATH),
        )
        .with_var("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file);
    let binder = HuaweiBuilder::from_env_with(&pod)
        .endpoint(&url)
        .retry_policy(fast_retry())
        .polling(fast_polling())
        .build()
        .unwrap();
    let report = binder.bind(bind_request(Cloud::Huawei, &emu, &ids[2..])).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.credential_source, Some("pod_identity"));
    assert_eq!(emu.calls("pod:credentials"), 1);
}
