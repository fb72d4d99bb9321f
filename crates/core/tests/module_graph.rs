//! The core's module graph, read from its sources: the model's modules form
//! a DAG and never depend on the provider kit, and the kit's modules form a
//! DAG too. A new `use crate::…` that closes a cycle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name of a source file: `binder`, `kit::chunk`, `kit` for `kit/mod.rs`.
fn module_of(path: &Path, src: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.len() > 1 && parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::a` or `crate::a::b` a file names, resolved to a known module
/// (a macro's `$crate::` paths are its callers', not the file's).
fn edges(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        // `$crate::…` in a macro body names a path for the macro's callers.
        if text[..at].ends_with('$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let Some(first) = segments.first() else { continue };
        let nested = segments.get(1).map(|second| format!("{first}::{second}"));
        match nested {
            Some(n) if modules.contains(&n) => found.insert(n),
            _ if modules.contains(*first) => found.insert(first.to_string()),
            _ => false,
        };
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f, &src)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(file, &src);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let mut deps = edges(&text, &modules);
        // A directory module depends on the submodules it declares and re-exports.
        for line in text.lines().map(str::trim) {
            let declared = line.strip_prefix("mod ").or_else(|| line.strip_prefix("pub mod "));
            if let Some(name) = declared.map(|d| d.trim_end_matches(';')) {
                deps.insert(format!("{module}::{name}"));
            }
        }
        deps.remove(&module);
        graph.insert(module, deps);
    }
    graph
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_form_a_dag() {
    let graph = graph();
    assert!(graph.len() > 20, "the sources were read: {graph:?}");
    if let Some(found) = cycle(&graph) {
        panic!("a cycle among core's modules: {}", found.join(" -> "));
    }
}

#[test]
fn the_model_never_depends_on_the_kit() {
    // The in-memory cloud is a provider on the kit, not part of the model.
    for (module, deps) in graph().iter().filter(|(m, _)| !m.starts_with("kit") && *m != "testing") {
        let on_kit: Vec<&String> = deps.iter().filter(|d| d.starts_with("kit")).collect();
        assert!(on_kit.is_empty(), "model module `{module}` depends on {on_kit:?}");
    }
}

#[test]
fn the_checker_finds_a_cycle() {
    let mut graph = graph();
    graph.get_mut("report").unwrap().insert("binder".into());
    assert!(cycle(&graph).is_some(), "binder -> report -> binder is a cycle");
}
