//! What `kpbind` prints on standard output: the JSON document of the
//! contract, or a summary and a table for people.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use keypair_binder::{BindReport, Error, InstanceOutcome, KeypairEnsured, Plan};
use std::io::Write;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::json;

use crate::args::Output;
use crate::fleet::{self, Row};
use crate::run::{Mode, TargetSpec};

/// The report as the documented JSON document, serialized straight from the
/// report (no second copy of the fleet).
struct Document<'a>(&'a BindReport, Option<&'a KeypairEnsured>);

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
        if let Some(ensured) = self.1 {
            map.serialize_entry("keypair_import", &keypair_doc(ensured))?;
        }
        map.end()
    }
}

/// `{"name", "id"?, "imported"}`: what ensuring the key pair did.
fn keypair_doc(ensured: &KeypairEnsured) -> serde_json::Value {
    let mut doc = json!({"name": ensured.name, "imported": ensured.imported});
    if let Some(id) = &ensured.id {
        doc["id"] = json!(id);
    }
    doc
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
fn write_json(report: &BindReport, keypair: Option<&KeypairEnsured>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let written = serde_json::to_writer(&mut out, &Document(report, keypair)).and_then(|()| {
        out.write_all(b"\n").map_err(serde_json::Error::io)?;
        out.flush().map_err(serde_json::Error::io)
    });
    if let Err(e) = written {
        eprintln!("kpbind: cannot write the report: {e}");
    }
}

pub fn print_report(report: &BindReport, keypair: Option<&KeypairEnsured>, format: Output) {
    if format == Output::Json {
        write_json(report, keypair);
        return;
    }
    if let Some(ensured) = keypair {
        let done = if ensured.imported { "imported" } else { "already present with this key" };
        println!("key pair {}: {done}", ensured.name);
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

/// How one fleet target ended: its report, or why it ended as a whole.
pub struct TargetEnd {
    pub spec: TargetSpec,
    /// The key pair ensured before binding (with `--public-key`).
    pub keypair: Option<KeypairEnsured>,
    pub result: Result<BindReport, Error>,
}

/// A fleet's report: the single-target document's shape, each instance with
/// its provider and region (and profile), plus one entry per target.
pub struct FleetDoc<'a> {
    operation: &'static str,
    keypair: Option<String>,
    rows: &'a [Row],
    ends: &'a [TargetEnd],
    /// The outcome of each target's instances, by id.
    outcomes: Vec<HashMap<&'a str, InstanceOutcome>>,
    /// Which target each row belongs to.
    row_targets: Vec<usize>,
    elapsed: Duration,
}

impl<'a> FleetDoc<'a> {
    pub fn new(mode: Mode, keypair: Option<String>, rows: &'a [Row], ends: &'a [TargetEnd], elapsed: Duration) -> Self {
        let index: HashMap<&TargetSpec, usize> = ends.iter().enumerate().map(|(n, e)| (&e.spec, n)).collect();
        let row_targets: Vec<usize> = rows.iter().map(|r| index.get(&r.target).copied().unwrap_or(0)).collect();
        let outcomes = ends
            .iter()
            .enumerate()
            .map(|(n, end)| match &end.result {
                Ok(report) => report.outcomes.iter().map(|(id, o)| (id.as_str(), o.clone())).collect(),
                Err(error) => {
                    // Nothing was applied there: each of its instances failed, with the target's reason.
                    let failure = fleet::target_failure(error);
                    rows.iter()
                        .zip(&row_targets)
                        .filter(|(_, t)| **t == n)
                        .map(|(r, _)| (r.instance.as_str(), InstanceOutcome::failed(failure.clone())))
                        .collect()
                }
            })
            .collect();
        let operation = if mode == Mode::Unbind { "unbind" } else { "bind" };
        Self { operation, keypair, rows, ends, outcomes, row_targets, elapsed }
    }

    /// (succeeded, unchanged, failed, unknown) over every target's instances.
    fn counts(&self) -> (usize, usize, usize, usize) {
        self.outcomes.iter().flat_map(HashMap::values).fold((0, 0, 0, 0), |(s, c, f, u), o| match o {
            InstanceOutcome::Unchanged => (s + 1, c + 1, f, u),
            InstanceOutcome::Failed(_) => (s, c, f + 1, u),
            InstanceOutcome::Unknown(_) => (s, c, f, u + 1),
            _ => (s + 1, c, f, u),
        })
    }

    /// Whether every target ran and every instance succeeded.
    pub fn all_succeeded(&self) -> bool {
        let (_, _, failed, unknown) = self.counts();
        failed == 0 && unknown == 0 && self.ends.iter().all(|e| e.result.is_ok())
    }

    fn stats(&self) -> (usize, u64, u64) {
        self.ends.iter().filter_map(fleet::ran).fold((0, 0, 0), |(r, c, t), report| {
            (r + report.stats.requested, c + report.stats.api_calls, t + report.stats.retries)
        })
    }
}

struct FleetSummary<'a>(&'a FleetDoc<'a>);
struct FleetInstances<'a>(&'a FleetDoc<'a>);
struct FleetTargets<'a>(&'a FleetDoc<'a>);
struct TargetDoc<'a>(&'a TargetEnd, &'a HashMap<&'a str, InstanceOutcome>, usize);

impl Serialize for FleetDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut providers: Vec<&str> = self.ends.iter().map(|e| e.spec.provider.name()).collect();
        providers.sort_unstable();
        providers.dedup();
        let mut conditions: Vec<String> = self
            .ends
            .iter()
            .filter_map(fleet::ran)
            .flat_map(|r| r.post_conditions.iter().map(|p| p.to_string()))
            .collect();
        conditions.dedup();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("provider", &providers.join(","))?;
        map.serialize_entry("operation", self.operation)?;
        map.serialize_entry("keypair", &self.keypair)?;
        map.serialize_entry("summary", &FleetSummary(self))?;
        map.serialize_entry("instances", &FleetInstances(self))?;
        map.serialize_entry("post_conditions", &conditions)?;
        map.serialize_entry("targets", &FleetTargets(self))?;
        map.end()
    }
}

impl Serialize for FleetSummary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let (succeeded, unchanged, failed, unknown) = doc.counts();
        let (requested, api_calls, retries) = doc.stats();
        let not_run: usize =
            doc.ends.iter().zip(&doc.outcomes).filter(|(e, _)| e.result.is_err()).map(|(_, o)| o.len()).sum();
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("requested", &(requested + not_run))?;
        map.serialize_entry("distinct", &doc.outcomes.iter().map(HashMap::len).sum::<usize>())?;
        map.serialize_entry("succeeded", &succeeded)?;
        map.serialize_entry("unchanged", &unchanged)?;
        map.serialize_entry("failed", &failed)?;
        map.serialize_entry("unknown", &unknown)?;
        map.serialize_entry("api_calls", &api_calls)?;
        map.serialize_entry("retries", &retries)?;
        map.serialize_entry("elapsed_ms", &(doc.elapsed.as_millis() as u64))?;
        map.end()
    }
}

impl Serialize for FleetInstances<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let mut seen: Vec<std::collections::HashSet<&str>> = doc.ends.iter().map(|_| Default::default()).collect();
        let mut seq = s.serialize_seq(None)?;
        for (row, &target) in doc.rows.iter().zip(&doc.row_targets) {
            // An id repeated within a target is one instance, shown at its first row.
            if !seen[target].insert(row.instance.as_str()) {
                continue;
            }
            let Some(outcome) = doc.outcomes[target].get(row.instance.as_str()) else { continue };
            seq.serialize_element(&FleetEntry(row, outcome))?;
        }
        seq.end()
    }
}

struct FleetEntry<'a>(&'a Row, &'a InstanceOutcome);

impl Serialize for FleetEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (row, outcome) = (self.0, self.1);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &row.instance)?;
        map.serialize_entry("status", outcome.status())?;
        if outcome.is_bound() {
            map.serialize_entry("changed", &outcome.changed())?;
        }
        if let Some(f) = outcome.failure() {
            map.serialize_entry("error", &ErrorDoc(f))?;
        }
        map.serialize_entry("provider", row.target.provider.name())?;
        map.serialize_entry("region", &row.target.region)?;
        if let Some(profile) = &row.target.profile {
            map.serialize_entry("profile", profile)?;
        }
        map.end()
    }
}

impl Serialize for FleetTargets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let requested = |n: usize| doc.row_targets.iter().filter(|t| **t == n).count();
        s.collect_seq(doc.ends.iter().zip(&doc.outcomes).enumerate().map(|(n, (e, o))| TargetDoc(e, o, requested(n))))
    }
}

impl Serialize for TargetDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (end, outcomes, rows) = (self.0, self.1, self.2);
        let count = |f: fn(&InstanceOutcome) -> bool| outcomes.values().filter(|o| f(o)).count();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("provider", end.spec.provider.name())?;
        map.serialize_entry("region", &end.spec.region)?;
        if let Some(profile) = &end.spec.profile {
            map.serialize_entry("profile", profile)?;
        }
        if let Some(endpoint) = &end.spec.endpoint {
            map.serialize_entry("endpoint", endpoint)?;
        }
        let (api_calls, retries, elapsed) = match &end.result {
            Ok(r) => (r.stats.api_calls, r.stats.retries, r.stats.elapsed.as_millis() as u64),
            Err(_) => (0, 0, 0),
        };
        let summary = json!({
            "requested": end.result.as_ref().map_or(rows, |r| r.stats.requested),
            "distinct": outcomes.len(),
            "succeeded": count(InstanceOutcome::is_bound),
            "unchanged": count(|o| matches!(o, InstanceOutcome::Unchanged)),
            "failed": count(|o| matches!(o, InstanceOutcome::Failed(_))),
            "unknown": count(|o| matches!(o, InstanceOutcome::Unknown(_))),
            "api_calls": api_calls,
            "retries": retries,
            "elapsed_ms": elapsed,
        });
        if let Some(ensured) = &end.keypair {
            map.serialize_entry("keypair", &keypair_doc(ensured))?;
        }
        map.serialize_entry("summary", &summary)?;
        if let Some(source) = end.result.as_ref().ok().and_then(|r| r.credential_source) {
            map.serialize_entry("credential_source", source)?;
        }
        if let Err(error) = &end.result {
            map.serialize_entry("error", &json!({"message": error.to_string()}))?;
        }
        map.end()
    }
}

/// A fleet's report: the JSON document, or one line per target and then the failures.
pub fn print_fleet_report(doc: &FleetDoc<'_>, format: Output) {
    if format == Output::Json {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        let written = serde_json::to_writer(&mut out, doc).and_then(|()| {
            out.write_all(b"\n").map_err(serde_json::Error::io)?;
            out.flush().map_err(serde_json::Error::io)
        });
        if let Err(e) = written {
            eprintln!("kpbind: cannot write the report: {e}");
        }
        return;
    }
    let keypair = doc.keypair.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
    for (end, outcomes) in doc.ends.iter().zip(&doc.outcomes) {
        let label = fleet::label(&end.spec);
        let keypair = match &end.keypair {
            Some(k) if k.imported => format!(" {} (imported)", k.name),
            _ => keypair.clone(),
        };
        match &end.result {
            Ok(r) => {
                let (succeeded, failed, unknown) = r.counts();
                println!(
                    "{label}: {}{keypair}: {succeeded} of {} succeeded, {failed} failed, {unknown} unknown ({} API calls, {:.1?})",
                    doc.operation,
                    outcomes.len(),
                    r.stats.api_calls,
                    r.stats.elapsed
                );
            }
            Err(e) => println!("{label}: {}{keypair}: not run: {e}", doc.operation),
        }
    }
    let (succeeded, _, failed, unknown) = doc.counts();
    println!(
        "fleet: {} targets, {succeeded} succeeded, {failed} failed, {unknown} unknown ({:.1?})",
        doc.ends.len(),
        doc.elapsed
    );
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (end, outcomes) in doc.ends.iter().zip(&doc.outcomes) {
        let label = fleet::label(&end.spec);
        for (id, outcome) in outcomes {
            let Some(f) = outcome.failure() else { continue };
            let state = if matches!(outcome, InstanceOutcome::Unknown(_)) { "unknown" } else { "failed" };
            let code = f.code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
            groups
                .entry(format!("{label}: {state}: {}{code}", f.kind))
                .or_default()
                .push(format!("{id}  {}", f.message));
        }
    }
    if !groups.is_empty() {
        println!("\nNot succeeded:");
        for (reason, mut lines) in groups {
            lines.sort();
            println!("  {reason} ({})", lines.len());
            for line in lines {
                println!("    {line}");
            }
        }
    }
}

/// A fleet's plan: each target's calls.
pub fn print_fleet_plan(plans: &[(TargetSpec, Plan)], format: Output, verbose: bool) {
    if format == Output::Json {
        let targets: Vec<serde_json::Value> = plans
            .iter()
            .map(|(spec, plan)| {
                json!({"provider": spec.provider.name(), "region": spec.region, "profile": spec.profile,
                    "endpoint": spec.endpoint, "plan": plan})
            })
            .collect();
        println!("{}", json!({ "targets": targets }));
        return;
    }
    for (spec, plan) in plans {
        print!("{}: ", fleet::label(spec));
        print_plan(plan, format, verbose);
    }
}
