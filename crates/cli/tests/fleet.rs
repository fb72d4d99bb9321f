//! `kpbind --fleet` as a user runs it: the built binary against one emulator
//! serving four clouds, two regions each and two accounts, with the second
//! account's keys in each cloud's own profile files under a temporary HOME.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use keypair_binder_emulator::{
    Cloud, DEFAULT_ACCOUNT, DEFAULT_KEYPAIR, Emulator, InstanceSpec, Inventory, KeypairSpec,
};
use serde_json::{Value, json};
use tokio::process::Command;

const CLOUDS: [Cloud; 4] = [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent];

/// Two regions of each cloud.
fn regions(cloud: Cloud) -> [&'static str; 2] {
    match cloud {
        Cloud::Huawei => ["cn-north-4", "cn-south-1"],
        Cloud::Volcengine => ["cn-beijing", "cn-shanghai"],
        Cloud::Alibaba => ["cn-hangzhou", "cn-shanghai"],
        Cloud::Tencent => ["ap-guangzhou", "ap-shanghai"],
    }
}

async fn fleet_emulator(per_cloud: usize, latency: Duration) -> Emulator {
    let regions = CLOUDS.iter().flat_map(|&c| regions(c).map(|r| (Some(c), r.to_string())));
    Emulator::builder()
        .instances(per_cloud)
        .regions(regions)
        .accounts([DEFAULT_ACCOUNT, "staging"])
        .latency(latency)
        .task_duration(Duration::from_millis(20))
        .start()
        .await
        .unwrap()
}

/// The default account's keys in the environment, the `staging` account's
/// in each cloud's own profile files under `home`.
fn environment(emu: &Emulator, home: &Path) -> Vec<(String, String)> {
    let c = emu.credentials();
    let write = |path: &str, text: String| {
        let path = home.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let staging = c.accounts.get("staging").unwrap_or(&c.accounts[DEFAULT_ACCOUNT]);
    write(
        ".volcengine/config.json",
        json!({"current": "", "profiles": {"staging": {"mode": "ak", "access-key": staging.volcengine.ak,
            "secret-key": staging.volcengine.sk}}})
        .to_string(),
    );
    write(
        ".aliyun/config.json",
        json!({"current": "", "profiles": [{"name": "staging", "mode": "AK",
            "access_key_id": staging.alibaba.ak, "access_key_secret": staging.alibaba.sk}]})
        .to_string(),
    );
    write(
        ".tccli/staging.credential",
        json!({"secretId": staging.tencent.secret_id, "secretKey": staging.tencent.secret_key}).to_string(),
    );
    write(".huaweicloud/credentials", format!("[staging]\nak = {}\nsk = {}\n", staging.huawei.ak, staging.huawei.sk));
    [
        ("HOME", home.display().to_string()),
        ("HUAWEICLOUD_SDK_AK", c.huawei.ak.clone()),
        ("HUAWEICLOUD_SDK_SK", c.huawei.sk.clone()),
        // Each region's project is looked up: one project id cannot serve two regions.
        ("HUAWEICLOUD_SDK_IAM_ENDPOINT", emu.base_url().to_string()),
        ("VM_ROOT_PASSWORD", c.huawei.vm_password.clone()),
        ("VOLCENGINE_ACCESS_KEY", c.volcengine.ak.clone()),
        ("VOLCENGINE_SECRET_KEY", c.volcengine.sk.clone()),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", c.alibaba.ak.clone()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", c.alibaba.sk.clone()),
        ("TENCENTCLOUD_SECRET_ID", c.tencent.secret_id.clone()),
        ("TENCENTCLOUD_SECRET_KEY", c.tencent.secret_key.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The emulator's inventory as a fleet CSV: the staging account's rows name its profile.
fn fleet_csv(emu: &Emulator) -> String {
    let mut csv = String::from("instance,provider,region,profile,endpoint\n");
    for i in &emu.inventory().instances {
        let region = i.region.clone().unwrap();
        let profile = i.account.as_deref().filter(|a| *a != DEFAULT_ACCOUNT).unwrap_or("");
        csv.push_str(&format!("{},{},{region},{profile},{}\n", i.id, i.provider.as_str(), emu.base_url()));
    }
    csv
}

fn kpbind(env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpbind"));
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

async fn run(env: &[(String, String)], args: &[&str]) -> (i32, Value, String) {
    let out = kpbind(env, args).output().await.unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    let doc = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc, stderr)
}

/// The default account's rows only (4 clouds x 2 regions), as a fleet file under `home`.
fn default_account_fleet(emu: &Emulator, home: &Path) -> std::path::PathBuf {
    let csv: String = fleet_csv(emu).lines().filter(|l| !l.contains(",staging,")).map(|l| format!("{l}\n")).collect();
    let fleet = home.join("fleet.csv");
    std::fs::write(&fleet, csv).unwrap();
    fleet
}

/// `kpbind` with `argv`, sent SIGINT after `after`: what it printed and its exit.
async fn interrupted(env: &[(String, String)], argv: &[&str], after: Duration) -> std::process::Output {
    let child = kpbind(env, argv).spawn().unwrap();
    tokio::time::sleep(after).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    child.wait_with_output().await.unwrap()
}

/// What every fleet bind here passes besides the file.
const BIND: [&str; 9] = [
    "bind",
    "--keypair",
    DEFAULT_KEYPAIR,
    "--output",
    "json",
    "--current-password-env",
    "VM_ROOT_PASSWORD",
    "--poll-interval",
    "20ms",
];

fn args<'a>(base: &[&'a str], fleet: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    base.iter().copied().chain(["--fleet", fleet]).chain(more.iter().copied()).collect()
}

#[tokio::test]
async fn four_clouds_two_regions_two_accounts_bind_every_instance_once_in_row_order() {
    let emu = fleet_emulator(8, Duration::ZERO).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let fleet = home.path().join("fleet.csv");
    std::fs::write(&fleet, fleet_csv(&emu)).unwrap();
    let (code, doc, stderr) = run(&env, &args(&BIND, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    let instances = doc["instances"].as_array().unwrap();
    let inventory = &emu.inventory().instances;
    assert_eq!(instances.len(), inventory.len());
    for (entry, spec) in instances.iter().zip(inventory) {
        assert_eq!(entry["id"], spec.id.as_str(), "row order");
        assert_eq!(entry["provider"], spec.provider.as_str());
        assert_eq!(entry["region"], spec.region.as_deref().unwrap());
        assert_eq!(entry["status"], "succeeded");
        let account = spec.account.as_deref().unwrap();
        assert_eq!(entry.get("profile").and_then(Value::as_str), (account != DEFAULT_ACCOUNT).then_some(account));
        let region = spec.region.as_deref().unwrap();
        assert_eq!(emu.applications_in(spec.provider, account, region, &spec.id), 1, "{}", spec.id);
        assert_eq!(emu.binding_in(spec.provider, account, region, &spec.id).as_deref(), Some(DEFAULT_KEYPAIR));
    }
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 16, "4 clouds x 2 regions x 2 accounts");
    assert!(targets.iter().all(|t| t["summary"]["succeeded"] == 2 && t.get("error").is_none()));
    assert_eq!(doc["summary"]["succeeded"], 32);
    assert_eq!(doc["summary"]["failed"], 0);
}

#[tokio::test]
async fn a_target_whose_keys_are_refused_fails_alone_after_at_most_two_refused_calls() {
    let emu = fleet_emulator(4, Duration::ZERO).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    // The staging account's Alibaba secret is wrong.
    let staging = &emu.credentials().accounts["staging"].alibaba;
    let profiles = json!({"current": "", "profiles": [{"name": "staging", "mode": "AK",
        "access_key_id": staging.ak, "access_key_secret": "not-the-secret"}]});
    std::fs::write(home.path().join(".aliyun/config.json"), profiles.to_string()).unwrap();
    let fleet = home.path().join("fleet.csv");
    std::fs::write(&fleet, fleet_csv(&emu)).unwrap();
    let (code, doc, stderr) = run(&env, &args(&BIND, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 3, "{stderr}");
    for (entry, spec) in doc["instances"].as_array().unwrap().iter().zip(&emu.inventory().instances) {
        let refused = spec.provider == Cloud::Alibaba && spec.account.as_deref() == Some("staging");
        if refused {
            assert_eq!(entry["status"], "failed");
            assert_eq!(entry["error"]["kind"], "auth", "{entry}");
        } else {
            assert_eq!(entry["status"], "succeeded", "{entry}");
        }
    }
    let refused_calls = emu.request_log().iter().filter(|e| e.cloud == Cloud::Alibaba && e.status >= 400).count();
    assert!((1..=2).contains(&refused_calls), "{refused_calls} refused calls");
    let errors: Vec<&Value> = doc["targets"].as_array().unwrap().iter().filter(|t| t.get("error").is_some()).collect();
    assert!(!errors.is_empty() && errors.iter().all(|t| t["provider"] == "alibaba" && t["profile"] == "staging"));
}

#[tokio::test]
async fn a_bad_row_stops_the_fleet_before_any_call_and_is_named() {
    let emu = fleet_emulator(2, Duration::ZERO).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let endpoint = emu.base_url().to_string();
    let good = fleet_csv(&emu);
    let cases = [
        // A profile that exists nowhere: configuration, exit 1.
        (format!("{good}i-x,volcengine,cn-beijing,nobody,{endpoint}\n"), 1, "nobody"),
        // A malformed region: usage, exit 2.
        (format!("{good}i-x,volcengine,CN_BEIJING,,{endpoint}\n"), 2, "CN_BEIJING"),
        (format!("{good}i-x,aws,us-east-1,,{endpoint}\n"), 2, "aws"),
    ];
    for (text, expected, named) in cases {
        let fleet = home.path().join("fleet.csv");
        std::fs::write(&fleet, &text).unwrap();
        let row = text.lines().count();
        let (code, _, stderr) = run(&env, &args(&BIND, fleet.to_str().unwrap(), &[])).await;
        assert_eq!(code, expected, "{stderr}");
        assert!(stderr.contains(named) && stderr.contains(&format!("row {row}")), "{stderr}");
        assert_eq!(emu.total_calls(), 0, "no call to any cloud");
    }
    let fleet = home.path().join("extra.csv");
    std::fs::write(&fleet, "provider,region,instance,zone\nalibaba,cn-hangzhou,i-1,a\n").unwrap();
    let (code, _, stderr) = run(&env, &args(&BIND, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown column \"zone\""), "{stderr}");
    let (code, _, stderr) = run(&env, &args(&BIND, fleet.to_str().unwrap(), &["--provider", "alibaba"])).await;
    assert_eq!(code, 2, "--fleet conflicts with --provider: {stderr}");
    assert_eq!(emu.total_calls(), 0);
}

#[tokio::test]
async fn the_same_id_in_two_regions_is_two_instances_and_json_lines_read_alike() {
    let mut instances = Vec::new();
    for region in ["cn-beijing", "cn-shanghai"] {
        let mut spec = InstanceSpec::new(Cloud::Volcengine, "i-twin");
        spec.region = Some(region.into());
        instances.push(spec);
    }
    let keypairs = ["cn-beijing", "cn-shanghai"]
        .map(|region| {
            let mut kp = KeypairSpec::new(Cloud::Volcengine, DEFAULT_KEYPAIR);
            kp.region = Some(region.into());
            kp
        })
        .to_vec();
    let emu = Emulator::builder().inventory(Inventory { instances, keypairs }).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let endpoint = emu.base_url().to_string();
    let fleet = home.path().join("fleet.jsonl");
    let rows: Vec<String> = ["cn-beijing", "cn-shanghai", "cn-beijing"]
        .iter()
        .map(|r| json!({"provider": "volcengine", "region": r, "instance": "i-twin", "endpoint": endpoint}).to_string())
        .collect();
    std::fs::write(&fleet, rows.join("\n")).unwrap();
    let argv = ["bind", "--keypair", DEFAULT_KEYPAIR, "--output", "json", "--fleet", fleet.to_str().unwrap()];
    let (code, doc, stderr) = run(&env, &argv).await;
    assert_eq!(code, 0, "{stderr}");
    let regions: Vec<&str> =
        doc["instances"].as_array().unwrap().iter().map(|e| e["region"].as_str().unwrap()).collect();
    assert_eq!(regions, ["cn-beijing", "cn-shanghai"], "de-duplicated within a target, not across");
    for region in ["cn-beijing", "cn-shanghai"] {
        assert_eq!(emu.applications_in(Cloud::Volcengine, DEFAULT_ACCOUNT, region, "i-twin"), 1);
    }
}

#[tokio::test]
async fn sigint_mid_fleet_reports_and_the_same_command_resumes_on_every_cloud() {
    let emu = fleet_emulator(400, Duration::from_millis(100)).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let fleet = default_account_fleet(&emu, home.path());
    let journal = home.path().join("fleet.journal");
    let more = ["--journal", journal.to_str().unwrap(), "--concurrency", "1"];
    let argv = args(&BIND, fleet.to_str().unwrap(), &more);
    let out = interrupted(&env, &argv, Duration::from_millis(700)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one report");
    let first = doc["instances"].as_array().unwrap();
    assert_eq!(first.len(), 800);
    assert!(first.iter().any(|e| e["status"] != "succeeded"), "interrupted before the end");

    let (code, doc, stderr) = run(&env, &argv).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    for entry in doc["instances"].as_array().unwrap() {
        let (id, region) = (entry["id"].as_str().unwrap(), entry["region"].as_str().unwrap());
        let cloud = Cloud::parse(entry["provider"].as_str().unwrap()).unwrap();
        assert_eq!(entry["status"], "succeeded");
        assert_eq!(emu.applications_in(cloud, DEFAULT_ACCOUNT, region, id), 1, "{cloud:?} {id}: applied once");
    }
    // The journal belongs to this fleet: another fleet's rows are refused.
    std::fs::write(&fleet, fleet_csv(&emu)).unwrap();
    let (code, _, stderr) = run(&env, &argv).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("fleet rows"), "{stderr}");
}

#[tokio::test]
async fn a_fleet_plan_prints_each_targets_calls_without_network() {
    let home = tempfile::tempdir().unwrap();
    let fleet = home.path().join("fleet.csv");
    let mut text = String::from("provider,region,instance\n");
    for n in 0..120 {
        text.push_str(&format!("alibaba,cn-hangzhou,i-bp1{n:08}\nvolcengine,cn-beijing,i-{n:08}\n"));
    }
    std::fs::write(&fleet, text).unwrap();
    let env = vec![("HOME".to_string(), home.path().display().to_string())];
    let argv = ["plan", "--keypair", "kp", "--output", "json", "--fleet", fleet.to_str().unwrap()];
    let (code, doc, stderr) = run(&env, &argv).await;
    assert_eq!(code, 0, "{stderr}");
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    let calls = |t: &Value| t["plan"]["calls"].as_array().unwrap().len();
    assert_eq!((calls(&targets[0]), calls(&targets[1])), (3, 2), "Alibaba 50 a call, Volcengine 100");
}

/// A fixture key file's path (made by `ssh-keygen` for these tests).
fn key_file(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Tencent takes letters, digits and `_` in key pair names.
const NEW_KEYPAIR: &str = "ops_2026";

fn import_calls(emu: &Emulator) -> u64 {
    emu.calls("CreateKeypair") + emu.calls("ImportKeyPair")
}

#[tokio::test]
async fn public_key_is_imported_where_missing_once_even_across_an_interrupted_run() {
    let emu = fleet_emulator(200, Duration::from_millis(80)).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let fleet = default_account_fleet(&emu, home.path());
    let journal = home.path().join("fleet.journal");
    let key = key_file("ed25519.pub");
    let base = [
        "bind",
        "--keypair",
        NEW_KEYPAIR,
        "--public-key",
        key.as_str(),
        "--output",
        "json",
        "--current-password-env",
        "VM_ROOT_PASSWORD",
        "--poll-interval",
        "20ms",
        "--concurrency",
        "1",
        "--journal",
        journal.to_str().unwrap(),
    ];
    let argv = args(&base, fleet.to_str().unwrap(), &[]);
    let out = interrupted(&env, &argv, Duration::from_millis(600)).await;
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, doc, stderr) = run(&env, &argv).await;
    assert_eq!(code, 0, "{stderr}");
    // Eight targets, one import each, whatever the interruption cut.
    assert_eq!(import_calls(&emu), 8);
    for target in doc["targets"].as_array().unwrap() {
        assert_eq!(target["keypair"]["name"], NEW_KEYPAIR, "{target}");
    }
    for entry in doc["instances"].as_array().unwrap() {
        let (id, region) = (entry["id"].as_str().unwrap(), entry["region"].as_str().unwrap());
        let cloud = Cloud::parse(entry["provider"].as_str().unwrap()).unwrap();
        assert_eq!(emu.binding_in(cloud, DEFAULT_ACCOUNT, region, id).as_deref(), Some(NEW_KEYPAIR));
        assert_eq!(emu.applications_in(cloud, DEFAULT_ACCOUNT, region, id), 1, "{cloud:?} {id}");
    }
    // A later run finds every key pair present: reads only, nothing imported.
    std::fs::remove_file(&journal).unwrap();
    let (code, doc, stderr) = run(&env, &argv).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(import_calls(&emu), 8);
    assert!(doc["targets"].as_array().unwrap().iter().all(|t| t["keypair"]["imported"] == false), "{doc}");
}

#[tokio::test]
async fn a_region_holding_the_name_with_another_key_binds_nothing_and_a_bad_key_file_sends_nothing() {
    let emu = fleet_emulator(4, Duration::ZERO).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let endpoint = emu.base_url().to_string();
    // A malformed key file: usage error, before any call.
    let bad = home.path().join("id.pub");
    std::fs::write(&bad, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----\n").unwrap();
    let fleet = home.path().join("fleet.csv");
    std::fs::write(&fleet, fleet_csv(&emu)).unwrap();
    let with_key = |key: &str| {
        ["bind", "--keypair", NEW_KEYPAIR, "--public-key", key, "--output", "json"]
            .into_iter()
            .chain(["--current-password-env", "VM_ROOT_PASSWORD", "--poll-interval", "20ms"])
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let bad_argv = with_key(bad.to_str().unwrap());
    let bad_refs: Vec<&str> = bad_argv.iter().map(String::as_str).collect();
    let (code, _, stderr) = run(&env, &args(&bad_refs, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("malformed public key"), "{stderr}");
    assert_eq!(emu.total_calls(), 0);

    // Another key already holds the name in one region (imported there first, without --fleet).
    let ecdsa = key_file("ecdsa.pub");
    let first = with_key(&ecdsa);
    let mut single: Vec<&str> = first.iter().map(String::as_str).collect();
    let id = emu
        .inventory()
        .instances
        .iter()
        .find(|i| {
            i.provider == Cloud::Alibaba
                && i.region.as_deref() == Some("cn-shanghai")
                && i.account.as_deref() == Some(DEFAULT_ACCOUNT)
        })
        .unwrap()
        .id
        .clone();
    single.retain(|a| !["--current-password-env", "VM_ROOT_PASSWORD", "--poll-interval", "20ms"].contains(a));
    single.extend([
        "--provider",
        "alibaba",
        "--region",
        "cn-shanghai",
        "--endpoint",
        endpoint.as_str(),
        "--instance",
        id.as_str(),
    ]);
    let (code, doc, stderr) = run(&env, &single).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["keypair_import"]["imported"], true, "{doc}");

    let ed25519 = key_file("ed25519.pub");
    let argv = with_key(&ed25519);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (code, doc, stderr) = run(&env, &args(&refs, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 3, "{stderr}");
    for target in doc["targets"].as_array().unwrap() {
        let conflicted =
            target["provider"] == "alibaba" && target["region"] == "cn-shanghai" && target.get("profile").is_none();
        if conflicted {
            let message = target["error"]["message"].as_str().unwrap();
            assert!(message.contains("another public key") && message.contains("fingerprint"), "{message}");
        } else {
            assert!(target.get("error").is_none(), "{target}");
        }
    }
    for entry in doc["instances"].as_array().unwrap() {
        let conflicted =
            entry["provider"] == "alibaba" && entry["region"] == "cn-shanghai" && entry.get("profile").is_none();
        assert_eq!(entry["status"], if conflicted { "failed" } else { "succeeded" }, "{entry}");
    }
}

#[tokio::test]
async fn unbind_takes_a_fleet_too() {
    let emu = fleet_emulator(4, Duration::ZERO).await;
    let home = tempfile::tempdir().unwrap();
    let env = environment(&emu, home.path());
    let fleet = home.path().join("fleet.csv");
    std::fs::write(&fleet, fleet_csv(&emu)).unwrap();
    let (code, _, stderr) = run(&env, &args(&BIND, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 0, "{stderr}");
    let mut unbind = BIND;
    unbind[0] = "unbind";
    let (code, doc, stderr) = run(&env, &args(&unbind, fleet.to_str().unwrap(), &[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["operation"], "unbind");
    for spec in &emu.inventory().instances {
        let (account, region) = (spec.account.as_deref().unwrap(), spec.region.as_deref().unwrap());
        assert_eq!(emu.binding_in(spec.provider, account, region, &spec.id), None, "{}", spec.id);
    }
}
