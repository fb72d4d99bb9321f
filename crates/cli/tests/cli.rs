//! `kpbind` as a user runs it: the built binary against the emulator.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.stdout))
    }
}

/// The binary with a clean environment: only what the test gives it.
fn kpbind(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpbind"));
    cmd.env_clear().env("HOME", "/nonexistent-home-for-tests");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn run(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn env_for(emu: &Emulator) -> Vec<(&'static str, String)> {
    let (h, v) = (&emu.credentials().huawei, &emu.credentials().volcengine);
    vec![
        ("HUAWEICLOUD_SDK_AK", h.ak.clone()),
        ("HUAWEICLOUD_SDK_SK", h.sk.clone()),
        ("HUAWEICLOUD_SDK_PROJECT_ID", h.project_id.clone()),
        ("HW_REGION_NAME", h.region.clone()),
        ("VM_ROOT_PASSWORD", h.vm_password.clone()),
        ("VOLCENGINE_ACCESS_KEY", v.ak.clone()),
        ("VOLCENGINE_SECRET_KEY", v.sk.clone()),
        ("VOLCENGINE_REGION", v.region.clone()),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.credentials().alibaba.ak.clone()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.credentials().alibaba.sk.clone()),
        ("ALIBABA_CLOUD_REGION_ID", emu.credentials().alibaba.region.clone()),
        ("TENCENTCLOUD_SECRET_ID", emu.credentials().tencent.secret_id.clone()),
        ("TENCENTCLOUD_SECRET_KEY", emu.credentials().tencent.secret_key.clone()),
        ("TENCENTCLOUD_REGION", emu.credentials().tencent.region.clone()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn emulator(instances: usize) -> Emulator {
    Emulator::builder().instances(instances).task_duration(Duration::from_millis(20)).start().await.unwrap()
}

fn provider_args(cloud: Cloud, endpoint: &str) -> Vec<String> {
    let mut args = vec!["--provider".to_string(), cloud.as_str().to_string(), "--endpoint".into(), endpoint.into()];
    if cloud == Cloud::Huawei {
        args.extend([
            "--current-password-env".into(),
            "VM_ROOT_PASSWORD".into(),
            "--poll-interval".into(),
            "20ms".into(),
        ]);
    }
    args
}

/// A bind of every id on standard input, one call at a time, recorded in `journal`, in JSON.
fn journaled_bind(cloud: Cloud, endpoint: &str, journal: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> =
        ["bind", "--keypair", DEFAULT_KEYPAIR, "--output", "json", "--concurrency", "1"].map(String::from).to_vec();
    args.extend(["--journal".into(), journal.display().to_string(), "--instances-file".into(), "-".into()]);
    args.extend(provider_args(cloud, endpoint));
    args
}

#[tokio::test]
async fn bind_then_unbind_on_every_cloud_in_json() {
    let emu = emulator(12).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    for cloud in [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent] {
        let ids = emu.inventory().ids(cloud);
        let mut args: Vec<String> =
            vec!["bind".into(), "--keypair".into(), DEFAULT_KEYPAIR.into(), "--output".into(), "json".into()];
        args.extend(provider_args(cloud, &endpoint));
        for id in &ids {
            args.extend(["--instance".into(), id.clone()]);
        }
        args.extend(["--instance".into(), ids[0].clone()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(kpbind(&as_refs(&env)), &argv, None).await;
        assert_eq!(out.code, 0, "{cloud:?}: {}", out.stderr);
        let doc = out.json();
        assert_eq!(doc["provider"], cloud.as_str());
        assert_eq!(doc["operation"], "bind");
        assert_eq!(doc["keypair"], DEFAULT_KEYPAIR);
        let summary = &doc["summary"];
        assert_eq!((summary["requested"].as_u64(), summary["distinct"].as_u64()), (Some(13), Some(12)));
        assert_eq!(summary["succeeded"], 12);
        assert_eq!((summary["failed"].as_u64(), summary["unknown"].as_u64()), (Some(0), Some(0)));
        assert!(
            summary["api_calls"].as_u64().unwrap() >= 1
                && summary["retries"].is_u64()
                && summary["elapsed_ms"].is_u64()
        );
        let listed: Vec<&str> =
            doc["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>(), "input order");
        assert!(
            doc["instances"].as_array().unwrap().iter().all(|i| i["status"] == "succeeded" && i.get("error").is_none())
        );
        assert!(ids.iter().all(|id| emu.binding(cloud, id).as_deref() == Some(DEFAULT_KEYPAIR)));

        let mut key_file = None;
        let mut args: Vec<String> = vec!["unbind".into(), "--keypair".into(), DEFAULT_KEYPAIR.into(), "--quiet".into()];
        args.extend(provider_args(cloud, &endpoint));
        if cloud == Cloud::Huawei {
            // Deleted when the test ends, pass or fail.
            let key = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(key.path(), keypair_binder_emulator::private_key_for(DEFAULT_KEYPAIR)).unwrap();
            let pos = args.iter().position(|a| a == "--current-password-env").unwrap();
            args.splice(pos..pos + 2, ["--current-private-key".to_string(), key.path().display().to_string()]);
            key_file = Some(key);
        }
        args.extend(["--instances-file".into(), "-".into()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdin = format!("# unbind all\n\n{}\n", ids.join("\n"));
        let out = run(kpbind(&as_refs(&env)), &argv, Some(&stdin)).await;
        assert_eq!(out.code, 0, "{cloud:?}: {} {}", out.stdout, out.stderr);
        assert!(out.stdout.contains("12 of 12 succeeded"), "{}", out.stdout);
        assert!(ids.iter().all(|id| emu.binding(cloud, id).is_none()));
        drop(key_file);
    }
}

#[tokio::test]
async fn partial_failure_exits_3_with_each_reason() {
    let emu = emulator(2).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    for cloud in [Cloud::Huawei, Cloud::Volcengine] {
        let good = &emu.inventory().ids(cloud)[0];
        let mut args: Vec<String> =
            vec!["bind".into(), "--keypair".into(), DEFAULT_KEYPAIR.into(), "--output".into(), "json".into()];
        args.extend(provider_args(cloud, &endpoint));
        args.extend(["--instance".into(), good.clone(), "--instance".into(), "no-such-vm".into()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(kpbind(&as_refs(&env)), &argv, None).await;
        assert_eq!(out.code, 3, "{cloud:?}: {}", out.stderr);
        let doc = out.json();
        assert_eq!(doc["summary"]["failed"], 1);
        let failed = &doc["instances"][1];
        assert_eq!(failed["status"], "failed");
        let error = &failed["error"];
        assert!(error["kind"].is_string() && error["code"].is_string() && error["message"].is_string(), "{error}");
        assert_eq!(error["retryable"], false);
        assert!(error["http_status"].is_u64() && error["request_id"].is_string(), "{error}");
    }
}

#[tokio::test]
async fn bad_credentials_exit_1_and_missing_ones_name_the_variables() {
    let emu = emulator(2).await;
    let mut env = env_for(&emu);
    env.retain(|(k, _)| *k != "VOLCENGINE_SECRET_KEY");
    env.push(("VOLCENGINE_SECRET_KEY", "wrong-secret-key-7f3a".into()));
    let endpoint = emu.base_url().to_string();
    let id = emu.inventory().ids(Cloud::Volcengine)[0].clone();
    let args = [
        "bind",
        "--provider",
        "volcengine",
        "--keypair",
        DEFAULT_KEYPAIR,
        "--instance",
        &id,
        "--endpoint",
        &endpoint,
        "--output",
        "json",
    ];
    let out = run(kpbind(&as_refs(&env)), &args, None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.json()["error"]["message"].as_str().unwrap().contains("SignatureDoesNotMatch"));
    assert!(!out.stdout.contains("wrong-secret-key-7f3a") && !out.stderr.contains("wrong-secret-key-7f3a"));

    // No keys anywhere, and no metadata service where it is said to be: exit 1
    // at once, naming what was looked for, before any cloud call.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let metadata = format!("http://{closed}");
    let calls = emu.total_calls();
    for (provider, region, variable, source) in [
        ("huawei", "cn-north-4", "HUAWEICLOUD_SDK_AK", "ecs_agency"),
        ("volcengine", "cn-beijing", "VOLCENGINE_ACCESS_KEY", "ecs_role"),
        ("alibaba", "cn-hangzhou", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ecs_ram_role"),
        ("tencent", "ap-guangzhou", "TENCENTCLOUD_SECRET_ID", "cvm_role"),
    ] {
        let args = [
            "bind",
            "--provider",
            provider,
            "--keypair",
            "kp",
            "--instance",
            "i-1",
            "--region",
            region,
            "--endpoint",
            &endpoint,
            "--metadata-endpoint",
            &metadata,
            "--project-id",
            "p",
        ];
        let args: Vec<&str> =
            args.into_iter().take(if provider == "huawei" { args.len() } else { args.len() - 2 }).collect();
        let out = run(kpbind(&[]), &args, None).await;
        assert_eq!(out.code, 1, "{provider}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        for named in [variable, source, "metadata service", "unreachable"] {
            assert!(out.stderr.contains(named), "{provider}: {named}: {}", out.stderr);
        }
    }
    assert_eq!(emu.total_calls(), calls, "no cloud call");
}

#[tokio::test]
async fn usage_errors_exit_2_and_name_the_provider() {
    let cases: &[(&[&str], &str)] = &[
        (&["bind", "--provider", "huawei", "--keypair-id", "kp-1", "--instance", "a"], "huawei"),
        (&["bind", "--provider", "huawei", "--keypair", "kp", "--instance", "a", "--client-token", "t"], "huawei"),
        (
            &["bind", "--provider", "huawei", "--keypair", "kp", "--instance", "a", "--verify-bindings"],
            "volcengine option",
        ),
        (
            &["bind", "--provider", "volcengine", "--keypair", "kp", "--instance", "a", "--project-id", "p"],
            "volcengine",
        ),
        (
            &["bind", "--provider", "volcengine", "--keypair", "kp", "--instance", "a", "--disable-password"],
            "volcengine",
        ),
        (&["unbind", "--provider", "volcengine", "--instance", "a"], "volcengine"),
        (&["bind", "--provider", "tencent", "--instance", "a"], "--keypair or --keypair-id"),
        (&["bind", "--provider", "volcengine", "--keypair", "kp", "--instance", "a", "--force-stop"], "tencent option"),
        (&["bind", "--provider", "huawei", "--instance", "a"], "--keypair"),
        (&["bind", "--provider", "volcengine", "--keypair", "kp"], "required"),
        (&["bind", "--provider", "aws", "--keypair", "kp", "--instance", "a"], "aws"),
        (&["bind", "--provider", "volcengine", "--keypair", "kp", "--instance", "bad id"], "instance #0"),
        (&["bind", "--provider", "volcengine", "--keypair", "kp", "--instance", "a", "--timeout", "soon"], "500ms"),
    ];
    for (args, expected) in cases {
        let out = run(kpbind(&[]), args, None).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
}

#[tokio::test]
async fn plan_needs_no_network_nor_credentials() {
    let ids: Vec<String> = (0..25).map(|i| format!("vm-{i}")).collect();
    let mut args = vec![
        "plan",
        "--provider",
        "huawei",
        "--keypair",
        "kp",
        "--endpoint",
        "http://127.0.0.1:9",
        "--output",
        "json",
        "--current-password-env",
        "PW",
    ];
    for id in &ids {
        args.extend(["--instance", id.as_str()]);
    }
    let out = run(kpbind(&[("PW", "x")]), &args, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let calls: Vec<usize> =
        out.json()["calls"].as_array().unwrap().iter().map(|c| c["instances"].as_array().unwrap().len()).collect();
    assert_eq!(calls, [10, 10, 5]);
    let out = run(
        kpbind(&[]),
        &[
            "plan",
            "--provider",
            "volcengine",
            "--keypair",
            "kp",
            "--instance",
            "i-1",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("AttachKeyPair"));
}

#[tokio::test]
async fn secrets_are_never_printed_even_at_trace_level() {
    let emu = emulator(3).await;
    let mut env = env_for(&emu);
    env.push(("RUST_LOG", "trace".into()));
    let endpoint = emu.base_url().to_string();
    let mut outputs = String::new();
    for cloud in [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent] {
        let mut args: Vec<String> = vec!["bind".into(), "--keypair".into(), DEFAULT_KEYPAIR.into()];
        args.extend(provider_args(cloud, &endpoint));
        for id in emu.inventory().ids(cloud) {
            args.extend(["--instance".into(), id]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(kpbind(&as_refs(&env)), &argv, None).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("api_call"), "trace logs reach stderr");
        assert!(!out.stderr.contains('\x1b'), "no colour codes when stderr is not a terminal");
        outputs.push_str(&out.stdout);
        outputs.push_str(&out.stderr);
    }
    let (h, v) = (&emu.credentials().huawei, &emu.credentials().volcengine);
    let (a, t) = (&emu.credentials().alibaba, &emu.credentials().tencent);
    for secret in [&h.sk, &h.vm_password, &v.sk, &a.sk, &t.secret_key] {
        assert!(!outputs.contains(secret.as_str()), "{secret} leaked");
    }
}

#[tokio::test]
async fn emulator_prints_what_a_client_needs_on_its_first_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpbind"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--instances", "5", "--seed", "3", "--faults", "throttle=0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let doc: Value = serde_json::from_str(&first).unwrap();
    let base = doc["base_url"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with('/'), "{base}");
    for key in ["ak", "sk", "project_id", "token", "region"] {
        assert!(doc["huawei"][key].is_string(), "huawei.{key}");
    }
    for key in ["ak", "sk", "region"] {
        assert!(doc["volcengine"][key].is_string(), "volcengine.{key}");
        assert!(doc["alibaba"][key].is_string(), "alibaba.{key}");
    }
    for key in ["secret_id", "secret_key", "region"] {
        assert!(doc["tencent"][key].is_string(), "tencent.{key}");
    }
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(), "it serves");
    child.kill().await.unwrap();

    let out = run(kpbind(&[]), &["emulator", "--faults", "throttle=7"], None).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// Ctrl-C mid-run (a real SIGINT to the process): one JSON document, exit
/// 130, one outcome per instance, never-sent instances failed as cancelled,
/// nothing the cloud applied reported failed.
#[tokio::test]
async fn sigint_mid_run_prints_the_partial_report_and_exits_130() {
    for cloud in [Cloud::Huawei, Cloud::Volcengine] {
        let (latency, instances) = if cloud == Cloud::Huawei { (40, 60) } else { (200, 600) };
        let emu = Emulator::builder()
            .instances(instances)
            .latency(Duration::from_millis(latency))
            .task_duration(Duration::from_millis(500))
            .start()
            .await
            .unwrap();
        let env = env_for(&emu);
        let endpoint = emu.base_url().to_string();
        let ids = emu.inventory().ids(cloud);
        let mut args: Vec<String> = vec![
            "bind".into(),
            "--keypair".into(),
            DEFAULT_KEYPAIR.into(),
            "--output".into(),
            "json".into(),
            "--concurrency".into(),
            "1".into(),
            "--instances-file".into(),
            "-".into(),
        ];
        args.extend(provider_args(cloud, &endpoint));
        let mut cmd = kpbind(&as_refs(&env));
        cmd.args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(ids.join("\n").as_bytes()).await.unwrap();
        drop(input);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let pid = child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().await.unwrap();
        let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
        assert_eq!(out.status.code(), Some(130), "{cloud:?}: {stderr}");
        let doc: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
        let listed = doc["instances"].as_array().unwrap();
        assert_eq!(listed.len(), ids.len(), "{cloud:?}: one outcome per instance");
        let (mut succeeded, mut cancelled) = (0, 0);
        for entry in listed {
            let id = entry["id"].as_str().unwrap();
            match entry["status"].as_str().unwrap() {
                "succeeded" => {
                    succeeded += 1;
                    assert_eq!(emu.binding(cloud, id).as_deref(), Some(DEFAULT_KEYPAIR));
                }
                "failed" => {
                    assert_eq!(emu.applications(cloud, id), 0, "{cloud:?} {id}: applied but reported failed");
                    if entry["error"]["kind"] == "cancelled" {
                        cancelled += 1;
                        assert_eq!(entry["error"]["retryable"], true);
                    }
                }
                other => assert_eq!(other, "unknown"),
            }
        }
        assert!(succeeded > 0 && cancelled > 0, "{cloud:?}: {succeeded} succeeded, {cancelled} cancelled");
        assert!(stderr.contains("interrupted"), "{stderr}");
    }
}

/// `--rate 5/s`: after the initial burst, the emulator never sees more than 5 calls in a second.
#[tokio::test]
async fn rate_limit_holds_calls_to_the_rate() {
    let emu = emulator(1_200).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    let ids = emu.inventory().ids(Cloud::Volcengine);
    let mut args: Vec<String> = vec![
        "bind".into(),
        "--keypair".into(),
        DEFAULT_KEYPAIR.into(),
        "--quiet".into(),
        "--rate".into(),
        "5/s".into(),
        "--verify-bindings".into(),
        "--instances-file".into(),
        "-".into(),
    ];
    args.extend(provider_args(Cloud::Volcengine, &endpoint));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(kpbind(&as_refs(&env)), &argv, Some(&ids.join("\n"))).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let times: Vec<Duration> = emu.request_log().iter().map(|e| e.received).collect();
    assert_eq!(times.len(), 36, "12 converging reads, 12 attaches and 12 verifications");
    // Calls 200 ms apart put 5 in any 900 ms; arrival times carry scheduling
    // noise (the emulator shares this test's busy process), which the 100 ms
    // margin absorbs, while 6 a second (167 ms apart) would still put 6 in it.
    let window = Duration::from_millis(900);
    for (i, start) in times.iter().enumerate().skip(5) {
        let in_window = times[i..].iter().take_while(|t| **t < *start + window).count();
        assert!(in_window <= 5, "{in_window} calls within a second from {start:?}: {times:?}");
    }
    let bad = run(
        kpbind(&as_refs(&env)),
        &["plan", "--provider", "volcengine", "--keypair", "k", "--instance", "i", "--rate", "0/s"],
        None,
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

/// Re-running a completed bind converges: exit 0, every instance succeeded
/// with `changed: false`, no bind call sent; a mixed fleet sends only the rest.
#[tokio::test]
async fn re_runs_converge_on_both_clouds() {
    let emu = emulator(30).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    for cloud in [Cloud::Huawei, Cloud::Volcengine] {
        let ids = emu.inventory().ids(cloud);
        let bind_call = if cloud == Cloud::Huawei { "BatchAssociateKeypair" } else { "AttachKeyPair" };
        let run_bind = |ids: Vec<String>, extra: &'static [&'static str]| {
            let mut args: Vec<String> = vec![
                "bind".into(),
                "--keypair".into(),
                DEFAULT_KEYPAIR.into(),
                "--output".into(),
                "json".into(),
                "--instances-file".into(),
                "-".into(),
            ];
            args.extend(provider_args(cloud, &endpoint));
            args.extend(extra.iter().map(|a| a.to_string()));
            let env = as_refs(&env).into_iter().map(|(k, v)| (k, v.to_string())).collect::<Vec<_>>();
            async move {
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                run(kpbind(&env), &argv, Some(&ids.join("\n"))).await
            }
        };
        // A first run binds two thirds of the fleet.
        let out = run_bind(ids[..20].to_vec(), &[]).await;
        assert_eq!(out.code, 0, "{cloud:?}: {}", out.stderr);
        assert!(out.json()["instances"].as_array().unwrap().iter().all(|i| i["changed"] == true));
        let sent_before = emu.calls(bind_call);

        // The whole fleet: only the last third is sent.
        let out = run_bind(ids.clone(), &[]).await;
        assert_eq!(out.code, 0, "{cloud:?}: {}", out.stderr);
        let doc = out.json();
        assert_eq!(doc["summary"]["unchanged"], 20, "{cloud:?}");
        assert_eq!(doc["summary"]["succeeded"], 30);
        let sent: Vec<String> = emu
            .request_log()
            .iter()
            .filter(|e| e.action == bind_call)
            .skip(sent_before as usize)
            .flat_map(|e| e.instance_ids.clone())
            .collect();
        assert_eq!(sent.len(), 10, "{cloud:?}: only the instances left were sent");
        assert!(sent.iter().all(|id| ids[20..].contains(id)));

        // Again: nothing to do, nothing sent.
        let before = emu.calls(bind_call);
        let out = run_bind(ids.clone(), &[]).await;
        assert_eq!(out.code, 0, "{cloud:?}: {}", out.stderr);
        let doc = out.json();
        assert!(
            doc["instances"].as_array().unwrap().iter().all(|i| i["status"] == "succeeded" && i["changed"] == false)
        );
        assert_eq!(doc["summary"]["unchanged"], 30);
        assert_eq!(emu.calls(bind_call), before, "{cloud:?}: no bind call");
        for id in &ids {
            assert_eq!(emu.applications(cloud, id), 1, "{cloud:?} {id}");
        }
        // In text, a run that changed nothing has no post-conditions to remember; one that changed something has.
        let mut args: Vec<String> = vec!["bind".into(), "--keypair".into(), DEFAULT_KEYPAIR.into()];
        args.extend(provider_args(cloud, &endpoint));
        for id in &ids {
            args.extend(["--instance".into(), id.clone()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(kpbind(&as_refs(&env)), &argv, None).await;
        assert_eq!(out.code, 0, "{cloud:?}: {}", out.stderr);
        assert!(out.stdout.contains("30 of 30 succeeded (30 already were)"), "{cloud:?}: {}", out.stdout);
        assert!(!out.stdout.contains("Remember:"), "{cloud:?}: {}", out.stdout);
    }
    let fresh = emulator(2).await;
    let env = env_for(&fresh);
    let mut args: Vec<String> = vec!["bind".into(), "--keypair".into(), DEFAULT_KEYPAIR.into()];
    args.extend(provider_args(Cloud::Volcengine, fresh.base_url().as_str()));
    for id in fresh.inventory().ids(Cloud::Volcengine) {
        args.extend(["--instance".into(), id]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(kpbind(&as_refs(&env)), &argv, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Remember:"), "{}", out.stdout);
}

/// Kill -9 mid-run with a journal, just after a call was applied and its
/// connection dropped; the same command again binds every instance exactly
/// once and exits 0.
#[tokio::test]
async fn a_killed_run_resumes_from_its_journal() {
    use keypair_binder_emulator::{Fault, FaultRates, ScriptedFault};
    for cloud in [Cloud::Volcengine, Cloud::Huawei, Cloud::Tencent] {
        let fault =
            |action: &str, fault: Fault| ScriptedFault { cloud: Some(cloud), action: Some(action.into()), fault };
        let (bind_call, hangs) = match cloud {
            // The resend after the drop is throttled for a long time: the kill lands while it waits.
            Cloud::Volcengine => ("AttachKeyPair", vec![fault("AttachKeyPair", Fault::Throttle)]),
            // Reconciling the drop hangs: the kill lands while it waits.
            Cloud::Huawei => {
                ("BatchAssociateKeypair", vec![fault("ListRunningTask", Fault::Slow(Duration::from_secs(30)))])
            }
            // The pre-check goes through; reading where the dropped call's operations are hangs.
            Cloud::Tencent => (
                "AssociateInstancesKeyPairs",
                vec![
                    fault("DescribeInstances", Fault::Slow(Duration::from_millis(1))),
                    fault("DescribeInstances", Fault::Slow(Duration::from_secs(30))),
                ],
            ),
            other => unreachable!("{other:?} is not in this test's list"),
        };
        let mut builder = Emulator::builder()
            .instances(150)
            .task_duration(Duration::from_millis(200))
            .faults(FaultRates { retry_after: Duration::from_secs(30), ..FaultRates::default() })
            .script(fault(bind_call, Fault::DropAfterApply));
        for hang in hangs {
            builder = builder.script(hang);
        }
        let emu = builder.start().await.unwrap();
        let env = env_for(&emu);
        let endpoint = emu.base_url().to_string();
        let ids = emu.inventory().ids(cloud);
        let journal =
            std::env::temp_dir().join(format!("kpbind-journal-{}-{}.jsonl", cloud.as_str(), std::process::id()));
        let _ = std::fs::remove_file(&journal);
        let args = journaled_bind(cloud, &endpoint, &journal);

        let mut cmd = kpbind(&as_refs(&env));
        cmd.args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(ids.join("\n").as_bytes()).await.unwrap();
        drop(input);
        // Wait for the dropped call, then a moment more, then kill without warning.
        for _ in 0..100 {
            if emu.request_log().iter().any(|e| e.fault.as_deref() == Some("DropAfterApply")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-9", &pid]).status().unwrap().success());
        let killed = child.wait_with_output().await.unwrap();
        assert_eq!(killed.status.code(), None, "{cloud:?}: killed by a signal");
        assert!(emu.request_log().iter().any(|e| e.fault.as_deref() == Some("DropAfterApply")));

        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(kpbind(&as_refs(&env)), &argv, Some(&ids.join("\n"))).await;
        assert_eq!(out.code, 0, "{cloud:?}: {}\n{}", out.stderr, out.stdout);
        let doc = out.json();
        assert_eq!(doc["summary"]["succeeded"], 150, "{cloud:?}");
        for id in &ids {
            assert_eq!(emu.applications(cloud, id), 1, "{cloud:?} {id}: bound exactly once");
        }
        // The journal belongs to this run: another key pair is a usage error naming the difference.
        let other: Vec<String> =
            args.iter().map(|a| if a == DEFAULT_KEYPAIR { "kp-other".to_string() } else { a.clone() }).collect();
        let argv: Vec<&str> = other.iter().map(String::as_str).collect();
        let out = run(kpbind(&as_refs(&env)), &argv, Some(&ids.join("\n"))).await;
        assert_eq!(out.code, 2, "{cloud:?}: {}", out.stderr);
        assert!(out.stderr.contains("key pair") && out.stderr.contains("kp-other"), "{}", out.stderr);
        let _ = std::fs::remove_file(&journal);
    }
}

/// `HTTPS_PROXY` is honoured (a local CONNECT proxy sees the HTTPS call and
/// refuses it, so nothing leaves the machine); a loopback endpoint bypasses it.
#[tokio::test]
async fn proxies_are_honoured_and_loopback_bypasses_them() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
                log.lock().unwrap().push(head);
                let _ = socket.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
            });
        }
    });

    let emu = emulator(3).await;
    let mut env = env_for(&emu);
    env.push(("HTTPS_PROXY", proxy.clone()));
    env.push(("HTTP_PROXY", proxy.clone()));
    let id = emu.inventory().ids(Cloud::Volcengine)[0].clone();
    let base =
        ["bind", "--provider", "volcengine", "--keypair", DEFAULT_KEYPAIR, "--instance", &id, "--max-retries", "0"];

    // The region's HTTPS endpoint: through the proxy, which refuses.
    let out = run(kpbind(&as_refs(&env)), &base, None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let heads = seen.lock().unwrap().clone();
    assert!(heads.iter().any(|h| h.starts_with("CONNECT ") && h.contains("volcengineapi.com:443")), "{heads:?}");

    // The emulator on loopback: straight there, the proxy sees nothing more.
    let endpoint = emu.base_url().to_string();
    let mut args = base.to_vec();
    args.extend(["--endpoint", &endpoint]);
    let out = run(kpbind(&as_refs(&env)), &args, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(seen.lock().unwrap().len(), heads.len(), "loopback was not proxied");
}

/// An instances file past the 100,000-instance ceiling is a usage error
/// (exit 2) with a clear message, and no call is sent.
#[tokio::test]
async fn an_instances_file_past_the_ceiling_is_refused_before_any_call() {
    let emu = emulator(1).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    let path = tempfile::NamedTempFile::new().unwrap();
    let ids: String = (0..100_001).map(|i| format!("i-{i:08}\n")).collect();
    std::fs::write(path.path(), ids).unwrap();
    let file = path.path().display().to_string();
    let args = [
        "bind",
        "--provider",
        "volcengine",
        "--keypair",
        DEFAULT_KEYPAIR,
        "--endpoint",
        &endpoint,
        "--instances-file",
        &file,
    ];
    let out = run(kpbind(&as_refs(&env)), &args, None).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("more than 100000 instances"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(emu.total_calls(), 0, "nothing was sent");
}

/// Alibaba Cloud is a provider of the contract: plans of 50 a call, and the
/// other clouds' options are usage errors naming their owner.
#[tokio::test]
async fn alibaba_plans_in_calls_of_50_and_refuses_other_clouds_options() {
    let ids: String = (0..120).map(|i| format!("i-bp1plan{i:05}\n")).collect();
    let args = ["plan", "--provider", "alibaba", "--keypair", "kp-prod", "--instances-file", "-", "--output", "json"];
    let out = run(kpbind(&[]), &args, Some(&ids)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sizes: Vec<usize> =
        out.json()["calls"].as_array().unwrap().iter().map(|c| c["instances"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [50, 50, 20]);
    let out =
        run(kpbind(&[]), &["plan", "--provider", "alibaba", "--keypair-id", "kp-1", "--instance", "i-1"], None).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--keypair-id") && out.stderr.contains("volcengine"), "{}", out.stderr);
}

/// Tencent Cloud: key pairs by id, and a running instance power-cycled only
/// with `--force-stop`.
#[tokio::test]
async fn tencent_binds_by_key_id_and_power_cycles_only_with_consent() {
    use keypair_binder_emulator::{InstanceSpec, Inventory, KeypairSpec, VmState};
    let inventory = Inventory {
        instances: vec![
            InstanceSpec { state: VmState::Stopped, ..InstanceSpec::new(Cloud::Tencent, "ins-stopped1") },
            InstanceSpec::new(Cloud::Tencent, "ins-running1"),
        ],
        keypairs: vec![KeypairSpec {
            provider: Cloud::Tencent,
            name: "kp-prod".into(),
            id: Some("skey-prod0001".into()),
            private_key: None,
            public_key: None,
            region: None,
            account: None,
        }],
    };
    let emu = Emulator::builder().inventory(inventory).task_duration(Duration::from_millis(20)).start().await.unwrap();
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    let base = ["bind", "--provider", "tencent", "--keypair-id", "skey-prod0001", "--endpoint", endpoint.as_str()];
    let targets = ["--instance", "ins-stopped1", "--instance", "ins-running1", "--output", "json"];
    let argv: Vec<&str> = base.iter().chain(&targets).copied().collect();
    let out = run(kpbind(&as_refs(&env)), &argv, None).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["instances"][0]["status"], "succeeded");
    let refused = &doc["instances"][1];
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["error"]["kind"], "invalid_state");
    assert!(refused["error"]["message"].as_str().unwrap().contains("--force-stop"), "{refused}");
    assert_eq!(emu.applications(Cloud::Tencent, "ins-running1"), 0, "never sent");

    let argv: Vec<&str> = base.iter().chain(&targets).chain(&["--force-stop"]).copied().collect();
    let out = run(kpbind(&as_refs(&env)), &argv, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!((&doc["instances"][0]["status"], &doc["instances"][0]["changed"]), (&"succeeded".into(), &false.into()));
    assert_eq!((&doc["instances"][1]["status"], &doc["instances"][1]["changed"]), (&"succeeded".into(), &true.into()));
    assert_eq!(emu.binding(Cloud::Tencent, "ins-running1").as_deref(), Some("kp-prod"));
    let post = doc["post_conditions"].to_string();
    assert!(post.contains("forcibly stopped and started again"), "{post}");

    // Plans need no credentials: 100 instances a call.
    let ids: String = (0..250).map(|i| format!("ins-p{i:07}\n")).collect();
    let args = ["plan", "--provider", "tencent", "--keypair-id", "skey-x", "--instances-file", "-", "--output", "json"];
    let out = run(kpbind(&[]), &args, Some(&ids)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sizes: Vec<usize> =
        out.json()["calls"].as_array().unwrap().iter().map(|c| c["instances"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert!(out.stdout.contains("AssociateInstancesKeyPairs"));
}

/// Spawns `kpbind` with `args`, the ids on standard input; the child and its pid.
async fn spawn_with_ids(
    env: &[(&'static str, String)],
    args: &[String],
    ids: &[String],
) -> (tokio::process::Child, String) {
    let mut cmd = kpbind(&as_refs(env));
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(ids.join("\n").as_bytes()).await.unwrap();
    drop(input);
    let pid = child.id().unwrap().to_string();
    (child, pid)
}

fn signal(name: &str, pid: &str) {
    assert!(std::process::Command::new("kill").args([name, pid]).status().unwrap().success());
}

/// Two interrupts in quick succession (SIGINT twice, or SIGINT then SIGTERM)
/// end the run at once, however they fall: exit 130 and one report, every time.
#[tokio::test]
async fn a_second_interrupt_never_hangs() {
    let dir = tempfile::tempdir().unwrap();
    for attempt in 0..8u64 {
        let emu = Emulator::builder()
            .instances(60)
            .latency(Duration::from_millis(30))
            .task_duration(Duration::from_millis(400))
            .start()
            .await
            .unwrap();
        let env = env_for(&emu);
        let endpoint = emu.base_url().to_string();
        let ids = emu.inventory().ids(Cloud::Huawei);
        let journal = dir.path().join(format!("hw-{attempt}.jsonl"));
        let mut args: Vec<String> = vec![
            "bind".into(),
            "--keypair".into(),
            DEFAULT_KEYPAIR.into(),
            "--output".into(),
            "json".into(),
            "--journal".into(),
            journal.display().to_string(),
            "--instances-file".into(),
            "-".into(),
        ];
        args.extend(provider_args(Cloud::Huawei, &endpoint));
        let (child, pid) = spawn_with_ids(&env, &args, &ids).await;
        tokio::time::sleep(Duration::from_millis(150 + 70 * attempt)).await;
        signal("-INT", &pid);
        tokio::time::sleep(Duration::from_millis(10 * (attempt % 4))).await;
        signal(if attempt % 2 == 0 { "-INT" } else { "-TERM" }, &pid);
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("attempt {attempt}: still running 10 s after the second interrupt"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "attempt {attempt}: {stderr}");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(doc["instances"].as_array().unwrap().len(), ids.len(), "attempt {attempt}");
    }
}

/// `--journal` on a file that is not a journal: a usage error, and the file is left byte for byte.
#[tokio::test]
async fn a_foreign_file_is_never_written_as_a_journal() {
    let emu = emulator(3).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let content = b"{\"provider\":\"volcengine\",\"summary\":{}}\n";
    std::fs::write(&report, content).unwrap();
    let mut args: Vec<String> = vec![
        "bind".into(),
        "--keypair".into(),
        DEFAULT_KEYPAIR.into(),
        "--journal".into(),
        report.display().to_string(),
    ];
    args.extend(provider_args(Cloud::Volcengine, &endpoint));
    for id in emu.inventory().ids(Cloud::Volcengine) {
        args.extend(["--instance".into(), id]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(kpbind(&as_refs(&env)), &argv, None).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not a kpbind journal"), "{}", out.stderr);
    assert_eq!(std::fs::read(&report).unwrap(), content, "the file was changed");
    assert!(emu.request_log().is_empty(), "nothing was sent");
}

/// Kill -9 at different points of a journaled run, a torn last line after
/// each crash, then resumes: every run exits 0 or 3 (never 2: the journal
/// stays readable), and in the end every instance is bound exactly once.
#[tokio::test]
async fn a_torn_journal_resumes_any_number_of_times() {
    for cloud in [Cloud::Volcengine, Cloud::Huawei] {
        let emu = Emulator::builder()
            .instances(120)
            .latency(Duration::from_millis(40))
            .task_duration(Duration::from_millis(300))
            .start()
            .await
            .unwrap();
        let env = env_for(&emu);
        let endpoint = emu.base_url().to_string();
        let ids = emu.inventory().ids(cloud);
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("run.jsonl");
        let args = journaled_bind(cloud, &endpoint, &journal);
        for (round, delay) in [250u64, 600, 120].into_iter().enumerate() {
            let (mut child, pid) = spawn_with_ids(&env, &args, &ids).await;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            signal("-9", &pid);
            let status = child.wait().await.unwrap();
            if let Some(code) = status.code() {
                // It finished before the kill: a whole run, not a usage error.
                assert!(code == 0 || code == 3, "{cloud:?} round {round}: exit {code}");
            }
            // The crash tore the record being written.
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&journal).unwrap();
            std::io::Write::write_all(&mut file, b"{\"record\":\"outcome\",\"instance\":\"i-to").unwrap();
        }
        for round in 0..2 {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(kpbind(&as_refs(&env)), &argv, Some(&ids.join("\n"))).await;
            assert_eq!(out.code, 0, "{cloud:?} resume {round}: {}", out.stderr);
            assert_eq!(out.json()["summary"]["succeeded"], ids.len(), "{cloud:?}");
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&journal).unwrap();
            std::io::Write::write_all(&mut file, b"{\"record\":\"call\",\"insta").unwrap();
        }
        for id in &ids {
            assert_eq!(emu.applications(cloud, id), 1, "{cloud:?} {id}: bound exactly once");
        }
    }
}

/// Small usage rules: a zero timeout, malformed ids named by their line, and a plan summarised.
#[tokio::test]
async fn usage_details_a_newcomer_meets() {
    let out = run(
        kpbind(&[]),
        &["bind", "--provider", "volcengine", "--keypair", "k", "--instance", "i-1", "--timeout", "0s"],
        None,
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("more than zero"), "{}", out.stderr);

    let file = "i-ok-1\n# a comment\n\ni-ok-2\nbad id\ni-ok-3\nx\u{7}y\n";
    let out =
        run(kpbind(&[]), &["plan", "--provider", "volcengine", "--keypair", "k", "--instances-file", "-"], Some(file))
            .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("standard input line 5") && out.stderr.contains("\"bad id\""), "{}", out.stderr);
    assert!(out.stderr.contains("standard input line 7") && out.stderr.contains("\"x\\u{7}y\""), "{}", out.stderr);
    assert!(!out.stderr.contains("line 4"), "{}", out.stderr);

    let ids: String = (0..3000).map(|i| format!("i-plan{i:05}\n")).collect();
    let args = ["plan", "--provider", "volcengine", "--keypair", "k", "--instances-file", "-"];
    let out = run(kpbind(&[]), &args, Some(&ids)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.len() < 500, "a summary, not every id: {} bytes", out.stdout.len());
    assert!(out.stdout.contains("calls 1-30: AttachKeyPair, 100 instances each"), "{}", out.stdout);
    assert!(!out.stdout.contains("i-plan00000"), "{}", out.stdout);
    let verbose = [&args[..], &["--verbose"]].concat();
    let out = run(kpbind(&[]), &verbose, Some(&ids)).await;
    assert!(out.stdout.contains("i-plan00000") && out.stdout.contains("i-plan02999"), "--verbose lists the ids");
}

#[tokio::test]
async fn with_no_keys_the_role_of_the_vm_binds_and_the_report_names_its_source() {
    let emu = emulator(2).await;
    let endpoint = emu.base_url().to_string();
    let c = emu.credentials();
    for (cloud, provider, region, source) in [
        (Cloud::Alibaba, "alibaba", c.alibaba.region.as_str(), "ecs_ram_role"),
        (Cloud::Tencent, "tencent", c.tencent.region.as_str(), "cvm_role"),
        (Cloud::Volcengine, "volcengine", c.volcengine.region.as_str(), "ecs_role"),
    ] {
        let id = emu.inventory().ids(cloud)[0].clone();
        let args = [
            "bind",
            "--provider",
            provider,
            "--keypair",
            DEFAULT_KEYPAIR,
            "--instance",
            &id,
            "--region",
            region,
            "--endpoint",
            &endpoint,
            "--metadata-endpoint",
            &endpoint,
            "--output",
            "json",
        ];
        let out = run(kpbind(&[]), &args, None).await;
        assert_eq!(out.code, 0, "{provider}: {}", out.stderr);
        let doc = out.json();
        assert_eq!(doc["credential_source"], source, "{provider}: {doc}");
        assert_eq!(doc["instances"][0]["status"], "succeeded", "{provider}: {doc}");
        for secret in emu.issued_secrets() {
            assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret), "{provider}: a secret leaked");
        }
    }
}

#[tokio::test]
async fn a_role_is_assumed_on_alibaba_and_an_agency_on_huawei() {
    let emu = emulator(2).await;
    let env = env_for(&emu);
    let endpoint = emu.base_url().to_string();
    let role = emu.credentials().alibaba.role_arn.clone();
    let id = emu.inventory().ids(Cloud::Alibaba)[0].clone();
    let args = [
        "bind",
        "--provider",
        "alibaba",
        "--keypair",
        DEFAULT_KEYPAIR,
        "--instance",
        &id,
        "--endpoint",
        &endpoint,
        "--sts-endpoint",
        &endpoint,
        "--role-arn",
        &role,
        "--role-session-name",
        "ci-rotation",
        "--output",
        "json",
    ];
    let out = run(kpbind(&as_refs(&env)), &args, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["credential_source"], "assume_role");
    assert_eq!(emu.calls("sts:AssumeRole"), 1);

    let hw = emu.inventory().ids(Cloud::Huawei)[0].clone();
    let agency = emu.credentials().huawei.agency_urn.clone();
    let args = [
        "bind",
        "--provider",
        "huawei",
        "--keypair",
        DEFAULT_KEYPAIR,
        "--instance",
        &hw,
        "--endpoint",
        &endpoint,
        "--sts-endpoint",
        &endpoint,
        "--role-arn",
        &agency,
        "--current-password-env",
        "VM_ROOT_PASSWORD",
        "--output",
        "json",
    ];
    let out = run(kpbind(&as_refs(&env)), &args, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["credential_source"], "assume_role");
    assert_eq!(emu.calls("sts:AssumeAgency"), 1);
}
