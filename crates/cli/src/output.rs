//! What `kpbind` prints on standard output: the JSON document of the
//! contract, or a summary and a table for people.

use std::collections::BTreeMap;

use keypair_binder::{BindReport, Error, InstanceOutcome, Plan};
use serde_json::{Value, json};

use crate::args::Output;

/// The report as the documented JSON document.
pub fn report_json(report: &BindReport) -> Value {
    let (succeeded, failed, unknown) = report.counts();
    let instances: Vec<Value> = report
        .outcomes
        .iter()
        .map(|(id, outcome)| {
            let status = match outcome {
                InstanceOutcome::Bound | InstanceOutcome::Unchanged => "succeeded",
                InstanceOutcome::Failed(_) => "failed",
                InstanceOutcome::Unknown(_) => "unknown",
            };
            let mut entry = json!({"id": id, "status": status});
            if outcome.is_bound() {
                entry["changed"] = json!(outcome.changed());
            }
            if let Some(f) = outcome.failure() {
                entry["error"] = json!({"kind": f.kind, "code": f.code, "message": f.message, "retryable": f.retryable,
                    "http_status": f.http_status, "request_id": f.request_id});
            }
            entry
        })
        .collect();
    json!({
        "provider": report.provider,
        "operation": report.operation,
        "keypair": report.keypair.as_ref().map(|k| k.as_str()),
        "summary": {
            "requested": report.stats.requested,
            "distinct": report.outcomes.len(),
            "succeeded": succeeded,
            "unchanged": report.unchanged(),
            "failed": failed,
            "unknown": unknown,
            "api_calls": report.stats.api_calls,
            "retries": report.stats.retries,
            "elapsed_ms": report.stats.elapsed.as_millis() as u64,
        },
        "instances": instances,
        "post_conditions": report.post_conditions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    })
}

pub fn print_report(report: &BindReport, format: Output) {
    if format == Output::Json {
        println!("{}", report_json(report));
        return;
    }
    let (succeeded, failed, unknown) = report.counts();
    let keypair = report.keypair.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
    let unchanged = match report.unchanged() {
        0 => String::new(),
        n => format!(" ({n} already were)"),
    };
    println!(
        "{} {}{keypair}: {succeeded} of {} succeeded{unchanged}, {failed} failed, {unknown} unknown ({} API calls, {} retries, {:.1?})",
        report.provider,
        report.operation,
        report.outcomes.len(),
        report.stats.api_calls,
        report.stats.retries,
        report.stats.elapsed,
    );
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, outcome) in &report.outcomes {
        let Some(f) = outcome.failure() else { continue };
        let state = if matches!(outcome, InstanceOutcome::Unknown(_)) { "unknown" } else { "failed" };
        let code = f.code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
        let retry = if f.retryable { ", retryable" } else { "" };
        groups.entry(format!("{state}: {}{code}{retry}", f.kind)).or_default().push(format!("{id}  {}", f.message));
    }
    if !groups.is_empty() {
        println!("\nNot succeeded:");
        for (reason, lines) in groups {
            println!("  {reason} ({})", lines.len());
            for line in lines {
                println!("    {line}");
            }
        }
    }
    if !report.post_conditions.is_empty() && succeeded > 0 {
        println!("\nRemember:");
        for condition in &report.post_conditions {
            println!("  - {condition}");
        }
    }
}

pub fn print_plan(plan: &Plan, format: Output) {
    if format == Output::Json {
        println!("{}", serde_json::to_string(plan).unwrap_or_else(|_| "{}".into()));
        return;
    }
    println!(
        "{} {} {}: {} instances ({} duplicates removed) in {} calls",
        plan.provider,
        plan.operation,
        plan.keypair.as_ref().map(|k| k.as_str()).unwrap_or(""),
        plan.distinct(),
        plan.duplicates,
        plan.calls.len()
    );
    for (n, call) in plan.calls.iter().enumerate() {
        let ids: Vec<&str> = call.instances.iter().map(|i| i.as_str()).collect();
        println!("  {:>4}. {} ({}): {}", n + 1, call.action, ids.len(), ids.join(" "));
    }
}

/// A request-level error as one JSON document, for scripts.
pub fn print_error(error: &Error, provider: &str) {
    println!("{}", json!({"provider": provider, "error": {"message": error.to_string()}}));
}
