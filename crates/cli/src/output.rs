//! What `kpbind` prints on standard output: the JSON document of the
//! contract, or a summary and a table for people.

use std::collections::BTreeMap;

use keypair_binder::{BindReport, Error, InstanceOutcome, Plan};
use std::io::Write;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::json;

use crate::args::Output;

/// The report as the documented JSON document, serialized straight from the
/// report (no second copy of the fleet).
struct Document<'a>(&'a BindReport);

struct Summary<'a>(&'a BindReport);

struct Instances<'a>(&'a BindReport);

struct Entry<'a>(&'a keypair_binder::InstanceId, &'a InstanceOutcome);

struct ErrorDoc<'a>(&'a keypair_binder::Failure);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("provider", r.provider)?;
        map.serialize_entry("operation", &r.operation)?;
        map.serialize_entry("keypair", &r.keypair.as_ref().map(|k| k.as_str()))?;
        map.serialize_entry("summary", &Summary(r))?;
        map.serialize_entry("instances", &Instances(r))?;
        let conditions: Vec<String> = r.post_conditions.iter().map(|p| p.to_string()).collect();
        map.serialize_entry("post_conditions", &conditions)?;
        if let Some(source) = r.credential_source {
            map.serialize_entry("credential_source", source)?;
        }
        map.end()
    }
}

impl Serialize for Summary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let (succeeded, failed, unknown) = r.counts();
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("requested", &r.stats.requested)?;
        map.serialize_entry("distinct", &r.outcomes.len())?;
        map.serialize_entry("succeeded", &succeeded)?;
        map.serialize_entry("unchanged", &r.unchanged())?;
        map.serialize_entry("failed", &failed)?;
        map.serialize_entry("unknown", &unknown)?;
        map.serialize_entry("api_calls", &r.stats.api_calls)?;
        map.serialize_entry("retries", &r.stats.retries)?;
        map.serialize_entry("elapsed_ms", &(r.stats.elapsed.as_millis() as u64))?;
        map.end()
    }
}

impl Serialize for Instances<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.outcomes.iter().map(|(id, outcome)| Entry(id, outcome)))
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (id, outcome) = (self.0, self.1);
        let status = outcome.status();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", id.as_str())?;
        map.serialize_entry("status", status)?;
        if outcome.is_bound() {
            map.serialize_entry("changed", &outcome.changed())?;
        }
        if let Some(f) = outcome.failure() {
            map.serialize_entry("error", &ErrorDoc(f))?;
        }
        map.end()
    }
}

impl Serialize for ErrorDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry("kind", &f.kind)?;
        map.serialize_entry("code", &f.code)?;
        map.serialize_entry("message", &f.message)?;
        map.serialize_entry("retryable", &f.retryable)?;
        map.serialize_entry("http_status", &f.http_status)?;
        map.serialize_entry("request_id", &f.request_id)?;
        map.end()
    }
}

/// Writes the JSON document to standard output, buffered, as it serializes.
fn write_json(report: &BindReport) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let written = serde_json::to_writer(&mut out, &Document(report)).and_then(|()| {
        out.write_all(b"\n").map_err(serde_json::Error::io)?;
        out.flush().map_err(serde_json::Error::io)
    });
    if let Err(e) = written {
        eprintln!("kpbind: cannot write the report: {e}");
    }
}

pub fn print_report(report: &BindReport, format: Output) {
    if format == Output::Json {
        write_json(report);
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
    // What to remember follows a change: a run that changed nothing has nothing to add.
    let changed = succeeded - report.unchanged();
    if !report.post_conditions.is_empty() && (changed > 0 || unknown > 0) {
        println!("\nRemember:");
        for condition in &report.post_conditions {
            println!("  - {condition}");
        }
    }
}

pub fn print_plan(plan: &Plan, format: Output, verbose: bool) {
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
    if verbose {
        for (n, call) in plan.calls.iter().enumerate() {
            let ids: Vec<&str> = call.instances.iter().map(|i| i.as_str()).collect();
            println!("  {:>4}. {} ({}): {}", n + 1, call.action, ids.len(), ids.join(" "));
        }
        return;
    }
    // Runs of calls alike in action and size, one line each: a plan of
    // thousands of ids reads in a few lines (`--verbose` lists the ids).
    let mut first = 0;
    while first < plan.calls.len() {
        let (action, size) = (&plan.calls[first].action, plan.calls[first].instances.len());
        let mut last = first;
        while last + 1 < plan.calls.len()
            && plan.calls[last + 1].action == *action
            && plan.calls[last + 1].instances.len() == size
        {
            last += 1;
        }
        let calls =
            if first == last { format!("call {}", first + 1) } else { format!("calls {}-{}", first + 1, last + 1) };
        let each = if first == last { "" } else { " each" };
        println!("  {calls}: {action}, {size} instances{each}");
        first = last + 1;
    }
}

/// A request-level error as one JSON document, for scripts.
pub fn print_error(error: &Error, provider: &str) {
    println!("{}", json!({"provider": provider, "error": {"message": error.to_string()}}));
}
