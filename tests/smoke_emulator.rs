use std::time::Duration;

use keypair_binder::huawei::{HuaweiBinder, Polling};
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, KeypairBinder, VmCredential};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator};

#[tokio::test]
async fn smoke() {
    let emu = Emulator::builder().instances(25).task_duration(Duration::from_millis(50)).start().await.unwrap();
    let c = emu.credentials().clone();
    let hw = HuaweiBinder::builder()
        .endpoint(emu.base_url().as_str())
        .iam_endpoint(emu.base_url().as_str())
        .access_key(&c.huawei.ak, &c.huawei.sk)
        .project_id(&c.huawei.project_id)
        .polling(Polling {
            first_delay: Duration::from_millis(20),
            interval: Duration::from_millis(20),
            task_timeout: Duration::from_secs(10),
        })
        .build()
        .unwrap();
    let ids = emu.inventory().ids(Cloud::Huawei);
    let req = BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instances(ids.clone())
        .credential(VmCredential::password(&c.huawei.vm_password))
        .build()
        .unwrap();
    let report = hw.bind(req).await.unwrap();
    println!("{:?}", report.counts());
    for (id, o) in &report.outcomes {
        if !o.is_bound() {
            println!("{id}: {o:?}");
        }
    }
    assert!(report.all_bound());
    assert_eq!(emu.calls("BatchAssociateKeypair"), 3);
    assert!(emu.max_in_operation() <= 10);

    let vc = VolcengineBinder::builder()
        .endpoint(emu.base_url().as_str())
        .credentials(&c.volcengine.ak, &c.volcengine.sk)
        .region(&c.volcengine.region)
        .build()
        .unwrap();
    let ids = emu.inventory().ids(Cloud::Volcengine);
    let report =
        vc.bind(BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids).build().unwrap()).await.unwrap();
    for (id, o) in &report.outcomes {
        if !o.is_bound() {
            println!("{id}: {o:?}");
        }
    }
    assert!(report.all_bound());
}
