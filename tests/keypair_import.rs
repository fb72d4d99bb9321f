//! Key pairs ensured in a region before binding, on every cloud, against the
//! emulator over real HTTP: one read when the key pair is there; one read
//! and one import when it is missing; a name holding another key is refused;
//! an import whose answer was lost is settled by reading, never sent twice.

mod support;

use keypair_binder::{BindRequest, Error, Fleet, FleetTarget, PublicKey, RunOptions};
use keypair_binder_emulator::{Cloud, DEFAULT_ACCOUNT, Fault, ScriptedFault};
use support::*;

const CLOUDS: [Cloud; 4] = [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent];
/// Made by `ssh-keygen -t ed25519` and `-t ecdsa` for these tests.
const ED25519: &str = include_str!("fixtures/ed25519.pub");
const ECDSA: &str = include_str!("fixtures/ecdsa.pub");
/// Tencent takes letters, digits and `_` only.
const NAME: &str = "ops_2026";

fn read_action(cloud: Cloud) -> &'static str {
    if cloud == Cloud::Huawei { "ListKeypairDetail" } else { "DescribeKeyPairs" }
}

fn import_action(cloud: Cloud) -> &'static str {
    if cloud == Cloud::Huawei { "CreateKeypair" } else { "ImportKeyPair" }
}

#[tokio::test]
async fn imported_where_missing_reused_where_present_refused_where_another_key_is() {
    let key = PublicKey::parse(ED25519).unwrap();
    let other = PublicKey::parse(ECDSA).unwrap();
    for cloud in CLOUDS {
        let emu = emulator().instances(2).start().await.unwrap();
        let binder = binder(cloud, &emu);
        let region = emu.credentials().region_of(cloud).to_string();
        let first = binder.ensure_keypair(NAME, &key, &RunOptions::default()).await.unwrap();
        assert!(first.imported, "{cloud:?}");
        assert_eq!(first.id.is_some(), matches!(cloud, Cloud::Volcengine | Cloud::Tencent), "{cloud:?}");
        let held = emu.keypairs_in(cloud, DEFAULT_ACCOUNT, &region);
        assert!(held.iter().any(|(n, k)| n == NAME && key.same_as(k)), "{cloud:?}: {held:?}");
        assert_eq!((emu.calls(read_action(cloud)), emu.calls(import_action(cloud))), (1, 1), "{cloud:?}");

        let again = binder.ensure_keypair(NAME, &key, &RunOptions::default()).await.unwrap();
        assert!(!again.imported && again.id == first.id, "{cloud:?}: present, the same key pair");
        assert_eq!((emu.calls(read_action(cloud)), emu.calls(import_action(cloud))), (2, 1), "{cloud:?}: one read");

        let refused = binder.ensure_keypair(NAME, &other, &RunOptions::default()).await.unwrap_err();
        let Error::KeyPair { message, .. } = &refused else { panic!("{cloud:?}: {refused}") };
        assert!(message.contains(&other.md5_fingerprint()), "{cloud:?}: {message}");
        assert_eq!(emu.calls(import_action(cloud)), 1, "{cloud:?}: nothing imported over it");
    }
}

#[tokio::test]
async fn an_import_whose_answer_was_lost_is_settled_by_reading() {
    let key = PublicKey::parse(ED25519).unwrap();
    for cloud in CLOUDS {
        let lost = ScriptedFault {
            cloud: Some(cloud),
            action: Some(import_action(cloud).into()),
            fault: Fault::DropAfterApply,
        };
        let emu = emulator().instances(2).script(lost).start().await.unwrap();
        let ensured = binder(cloud, &emu).ensure_keypair(NAME, &key, &RunOptions::default()).await.unwrap();
        assert!(ensured.imported, "{cloud:?}: absent before, there after the lost answer");
        assert_eq!(emu.calls(import_action(cloud)), 1, "{cloud:?}: the import was not sent again");
        assert_eq!(emu.calls(read_action(cloud)), 2, "{cloud:?}: read before, read to settle");
    }
}

#[tokio::test]
async fn a_fleet_target_imports_then_binds_and_a_conflict_binds_nothing() {
    let key = PublicKey::parse(ED25519).unwrap();
    let emu = emulator().instances(3).start().await.unwrap();
    let targets = CLOUDS
        .iter()
        .map(|&cloud| {
            let ids = emu.inventory().ids(cloud);
            let request = bind_request_named(cloud, &emu, &ids, NAME);
            FleetTarget::bind(format!("{cloud:?}"), binder(cloud, &emu), request).with_public_key(key.clone())
        })
        .collect();
    let report = Fleet::new(targets).run().await;
    assert!(report.all_bound(), "{report:?}");
    for (target, cloud) in report.targets.iter().zip(CLOUDS) {
        assert!(target.keypair.as_ref().is_some_and(|k| k.imported && k.name == NAME), "{cloud:?}");
        for id in emu.inventory().ids(cloud) {
            assert_eq!(emu.binding(cloud, &id).as_deref(), Some(NAME), "{cloud:?} {id}");
        }
    }
    // The same name with another key: the target fails as a whole, no VM is sent anything.
    let other = PublicKey::parse(ECDSA).unwrap();
    let ids = emu.inventory().ids(Cloud::Alibaba);
    let before = emu.calls(bind_action(Cloud::Alibaba));
    let target = FleetTarget::bind(
        "conflict",
        binder(Cloud::Alibaba, &emu),
        bind_request_named(Cloud::Alibaba, &emu, &ids, NAME),
    )
    .with_public_key(other);
    let report = Fleet::new(vec![target]).run().await;
    assert!(matches!(report.targets[0].result, Err(Error::KeyPair { .. })), "{report:?}");
    assert_eq!(emu.calls(bind_action(Cloud::Alibaba)), before);
}

#[test]
fn a_malformed_key_is_a_typed_error_naming_why() {
    let private =
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n";
    let err = PublicKey::parse(private).unwrap_err();
    assert!(err.to_string().contains("one line"), "{err}");
    assert!(matches!(Error::from(err), Error::Validation(_)));
}

/// A bind of `name` on `cloud` (Huawei with the VMs' root password).
fn bind_request_named(
    cloud: Cloud,
    emu: &keypair_binder_emulator::Emulator,
    ids: &[String],
    name: &str,
) -> BindRequest {
    let mut request = BindRequest::builder().keypair_name(name).instances(ids.to_vec());
    if cloud == Cloud::Huawei {
        request = request.credential(keypair_binder::VmCredential::password(&emu.credentials().huawei.vm_password));
    }
    request.build().unwrap()
}
