//! Builds and signs one provider's call N times, as each binder does per
//! call: a fixed loop for counting instructions with callgrind, where
//! criterion's timing loop would be noise. Prints the wall time per call.
//!
//! ```sh
//! cargo bench --bench sign_loop                      # every provider, 20,000 calls each
//! B=$(ls target/release/deps/sign_loop-* | grep -v '\.d$')
//! valgrind --tool=callgrind $B huawei 3000           # minus the same at 1000, over 2000
//! ```

use std::hint::black_box;
use std::time::Instant;

use keypair_binder::huawei::request::KpsRequest;
use keypair_binder::huawei::signer::{AkSk, KpsSigner};
use keypair_binder::{InstanceId, KeyPairRef, Secret};
use keypair_binder_core::kit::Signer;

mod fixtures;

type Now = chrono::DateTime<chrono::Utc>;
/// One provider's loop: calls to build and sign, and the signing time.
type Run = fn(usize, Now);

fn huawei(n: usize, now: Now) {
    let batch = fixtures::huawei_batch_of_10();
    let endpoint = url::Url::parse("https://kps.cn-north-4.myhuaweicloud.com/").expect("valid URL");
    let project = "0123456789abcdef0123456789abcdef";
    let key = AkSk { access_key: "HPUAEXAMPLEAK0000001".into(), secret_key: Secret::new("SK"), token: None };
    let signer = KpsSigner { project: Some(project.into()) };
    for _ in 0..n {
        let body = black_box(&batch).body();
        let mut request =
            KpsRequest::batch_associate(project, &body).outgoing(&endpoint, "keypair-binder/bench").unwrap();
        signer.sign(&mut request, &key, now);
        black_box(request);
    }
}

fn volcengine(n: usize, now: Now) {
    use keypair_binder::volcengine::request::{EcsSigner, Invocation, unsigned_params};
    use keypair_binder::volcengine::signer::Credentials;
    use keypair_binder::volcengine::wire::{self, Action};

    let credentials = Credentials { access_key: "AKLTexample".into(), secret_key: Secret::new("SK"), token: None };
    let ids: Vec<InstanceId> =
        (0..100).map(|i| InstanceId::new(format!("i-3tiegs1y963vj0ab{i:04}")).expect("valid id")).collect();
    let keypair = KeyPairRef::name("kp-prod").expect("valid name");
    let endpoint = url::Url::parse("https://open.volcengineapi.com/").expect("valid URL");
    let signer = EcsSigner { region: "cn-beijing".into() };
    for _ in 0..n {
        let params = wire::keypair_call_params(Action::AttachKeyPair, black_box(&ids), &keypair, Some("token-0001"));
        let invocation = Invocation { id: "token-0001", attempt: 1, max_attempts: 7 };
        let mut request = unsigned_params(&endpoint, &params, Some(invocation), "AttachKeyPair").unwrap();
        signer.sign(&mut request, &credentials, now);
        black_box(request);
    }
}

fn alibaba(n: usize, now: Now) {
    use keypair_binder::alibaba::request::{AcsSigner, unsigned};
    use keypair_binder::alibaba::wire::{self, Action};

    let ids: Vec<InstanceId> =
        (0..50).map(|i| InstanceId::new(format!("i-bp1example{i:08}")).expect("valid id")).collect();
    let endpoint = url::Url::parse("https://ecs-cn-hangzhou.aliyuncs.com/").expect("valid URL");
    let key = fixtures::access_key("LTAI5texample");
    for _ in 0..n {
        let query = wire::keypair_call(black_box(&ids), "kp-prod", "cn-hangzhou");
        let mut request = unsigned(&endpoint, Action::AttachKeyPair, &query).unwrap();
        AcsSigner.sign(&mut request, &key, now);
        black_box(request);
    }
}

fn tencent(n: usize, now: Now) {
    use keypair_binder::tencent::request::{CvmSigner, unsigned};
    use keypair_binder::tencent::wire::{Action, KeyPairsCall};

    let ids: Vec<String> = (0..100).map(|i| format!("ins-ex{i:06}")).collect();
    let endpoint = url::Url::parse("https://cvm.ap-guangzhou.tencentcloudapi.com/").expect("valid URL");
    let key = fixtures::access_key("AKIDexample");
    for _ in 0..n {
        let instance_ids: Vec<&str> = black_box(&ids).iter().map(String::as_str).collect();
        let call = KeyPairsCall { instance_ids: &instance_ids, key_ids: &["skey-example1"], force_stop: None };
        let body = serde_json::to_vec(&call).expect("serialisable");
        let mut request = unsigned(&endpoint, Action::AssociateInstancesKeyPairs, "ap-guangzhou", body).unwrap();
        CvmSigner.sign(&mut request, &key, now);
        black_box(request);
    }
}

fn main() {
    // `cargo bench` passes `--bench`: flags are not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid timestamp");
    let all: [(&str, Run); 4] =
        [("huawei", huawei), ("volcengine", volcengine), ("alibaba", alibaba), ("tencent", tencent)];
    for (name, run) in all {
        if args.first().is_some_and(|only| only != name) {
            continue;
        }
        let start = Instant::now();
        run(n, now);
        println!("{name}: build and sign, {n} calls, {:?} a call (wall)", start.elapsed() / n as u32);
    }
}
