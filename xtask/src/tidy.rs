//! `tidy`: repository checks that run as tests (layering of crates, file headers).
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::project_root;

/// `cargo xtask tidy`: prints every problem and fails if there is one.
pub fn run() -> anyhow::Result<()> {
    let root = project_root();
    let mut problems = layering_violations(&root);
    problems.extend(files_without_header(&root).into_iter().map(|f| format!("{f}: first line is not a `//!` doc line")));
    for p in &problems {
        eprintln!("{p}");
    }
    anyhow::ensure!(problems.is_empty(), "{} tidy problem(s)", problems.len());
    eprintln!("tidy: ok");
    Ok(())
}

/// The allowed edges between our crates (dev-dependencies included): ops <- compose <- policy;
/// models stand alone; train sees everything; xtask sees train (and what train re-exports).
pub fn allowed_deps() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("dada-ops", vec![]),
        ("dada-compose", vec!["dada-ops"]),
        ("dada-policy", vec!["dada-ops", "dada-compose"]),
        ("dada-models", vec![]),
        ("dada-train", vec!["dada-ops", "dada-compose", "dada-policy", "dada-models"]),
    ])
}

/// Our crates a manifest depends on (any dependency table).
pub fn internal_deps(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line.contains("dependencies");
            continue;
        }
        if in_deps && line.starts_with("dada-") {
            let name: String = line.chars().take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

/// Layering violations: `(crate, dependency)` pairs not in `allowed_deps`.
pub fn layering_violations(root: &Path) -> Vec<String> {
    let allowed = allowed_deps();
    let mut bad = Vec::new();
    for (krate, ok) in &allowed {
        let path = root.join("crates").join(krate).join("Cargo.toml");
        let text = fs::read_to_string(&path).unwrap_or_default();
        for dep in internal_deps(&text) {
            if !ok.contains(&dep.as_str()) {
                bad.push(format!("{krate} depends on {dep}: not allowed by the layering (see ARCHITECTURE.md)"));
            }
        }
    }
    bad
}

/// `.rs` files under `crates/` and `xtask/` whose first line is not a `//!` doc line.
pub fn files_without_header(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "target" || n == "fixtures") {
                    continue;
                }
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&p).unwrap_or_default();
                if !text.trim_start().starts_with("//!") {
                    out.push(p.display().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in ["crates", "xtask", "benches"] {
        walk(&root.join(d), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_respect_the_layering() {
        let bad = layering_violations(&project_root());
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn layering_check_catches_an_upward_edge() {
        let manifest = "[package]\nname = \"dada-ops\"\n[dev-dependencies]\ndada-policy.workspace = true\n";
        assert_eq!(internal_deps(manifest), vec!["dada-policy"]);
        assert!(!allowed_deps()["dada-ops"].contains(&"dada-policy"));
    }

    #[test]
    fn every_rust_file_opens_with_a_doc_line() {
        let bad = files_without_header(&project_root());
        assert!(bad.is_empty(), "files without a `//!` first line: {bad:#?}");
    }
}
