//! `kpbind emulator`: serve the four emulated clouds until interrupted. The first
//! line on standard output is one JSON object with what a client needs.

use std::io::Write;
use std::process::ExitCode;

use keypair_binder_emulator::{Cloud, DEFAULT_ACCOUNT, Emulator, FaultRates, Inventory};
use serde_json::json;

use crate::args::EmulatorArgs;

pub async fn serve(args: EmulatorArgs) -> ExitCode {
    let mut builder = Emulator::builder().listen(args.listen).instances(args.instances).seed(args.seed);
    if let Some(path) = &args.inventory {
        let inventory = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Inventory::from_json(&t).map_err(|e| e.to_string()))
        {
            Ok(i) => i,
            Err(e) => {
                eprintln!("kpbind: cannot load inventory {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        builder = builder.inventory(inventory);
    }
    if let Some(latency) = args.latency {
        builder = builder.latency(latency);
    }
    if let Some(duration) = args.task_duration {
        builder = builder.task_duration(duration);
    }
    if let Some(ttl) = args.credential_ttl {
        builder = builder.credential_ttl(ttl);
    }
    let mut regions = Vec::new();
    for entry in &args.regions {
        match entry.split_once(':') {
            None => regions.push((None, entry.clone())),
            Some((cloud, region)) => match Cloud::parse(cloud) {
                Some(cloud) => regions.push((Some(cloud), region.to_string())),
                None => {
                    eprintln!("kpbind: --regions: unknown cloud {cloud:?} (huawei, volcengine, alibaba or tencent)");
                    return ExitCode::from(2);
                }
            },
        }
    }
    if regions
        .iter()
        .any(|(_, r)| r.is_empty() || !r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        eprintln!("kpbind: --regions: a region id is lower-case letters, digits and dashes");
        return ExitCode::from(2);
    }
    builder = builder.regions(regions).accounts(args.accounts.clone());
    if let Some(spec) = &args.faults {
        match spec.parse::<FaultRates>() {
            Ok(rates) => builder = builder.faults(rates),
            Err(e) => {
                eprintln!("kpbind: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let emulator = match builder.start().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kpbind: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &args.write_inventory {
        let text = serde_json::to_string_pretty(emulator.inventory()).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("kpbind: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let credentials = emulator.credentials();
    let base_url = format!("http://{}", emulator.addr());
    if let Some(path) = &args.write_fleet {
        let mut csv = String::from("provider,region,instance,profile,endpoint\n");
        for i in &emulator.inventory().instances {
            let region = i.region.clone().unwrap_or_else(|| credentials.region_of(i.provider).to_string());
            let profile = i.account.as_deref().filter(|a| *a != DEFAULT_ACCOUNT).unwrap_or("");
            csv.push_str(&format!("{},{region},{},{profile},{base_url}\n", i.provider.as_str(), i.id));
        }
        if let Err(e) = std::fs::write(path, csv) {
            eprintln!("kpbind: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let first_line = json!({
        "base_url": base_url,
        "huawei": credentials.huawei,
        "volcengine": credentials.volcengine,
        "alibaba": credentials.alibaba,
        "tencent": credentials.tencent,
        "oidc_token_file": emulator.oidc_token_file(),
        "accounts": credentials.accounts,
    });
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{first_line}").and_then(|_| stdout.flush()).is_err() {
        return ExitCode::from(1);
    }
    drop(stdout);
    eprintln!(
        "kpbind emulator: serving Huawei KPS, Volcengine ECS, Alibaba Cloud ECS and Tencent Cloud CVM on {base_url}; Ctrl-C stops it"
    );
    interrupted().await;
    emulator.shutdown().await;
    ExitCode::from(0)
}

/// Ctrl-C, or SIGTERM where there is one.
async fn interrupted() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
