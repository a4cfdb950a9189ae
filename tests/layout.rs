//! The architecture as a test (ARCHITECTURE.md describes it): dependencies between the crate's
//! modules only point down, there is no circle between modules, libc and `unsafe` appear only
//! in src/sys/ (and the generator's `#[unsafe(no_mangle)]` C entry point), and no function is
//! longer than [`MAX_FN_LINES`].
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may use only modules of a lower layer (and its own
/// submodules). `bin` is the top.
const LAYERS: &[&[&str]] = &[
    &["sys", "paths"],
    &["generator"],
    &["nix", "reserve", "enrol", "session"],
    &["overlay", "pins", "menus"],
    &["ops"],
];
const MAX_FN_LINES: usize = 80;

fn rank(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("module {top} is in no layer of tests/layout.rs"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file below src/ ("ops::status::judge", "generator", "lib").
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // a `//` inside a string literal (URLs) keeps the line
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths (two levels: "ops::status", "sys::mount", "nix") a file's code refers to.
fn references(module: &[String], code: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let words: Vec<&str> = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).collect();
    for w in words {
        let path: Vec<&str> = w.split("::").filter(|s| !s.is_empty()).collect();
        let resolved: Vec<String> = match path.first() {
            Some(&"crate") | Some(&"nix_ssd_generator") => path[1..].iter().map(|s| s.to_string()).collect(),
            Some(&"super") => {
                let mut base = module.to_vec();
                let mut rest = &path[..];
                while rest.first() == Some(&"super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().map(|s| s.to_string()));
                base
            }
            _ => continue,
        };
        if !resolved.is_empty() {
            out.insert(resolved.into_iter().take(2).collect());
        }
    }
    out
}

struct Crate {
    files: Vec<(PathBuf, Vec<String>, String)>,
}

fn load() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    paths.sort();
    let files = paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_path_buf();
            let text = fs::read_to_string(&p).unwrap();
            (rel.clone(), module_of(&rel), text)
        })
        .collect();
    Crate { files }
}

#[test]
fn dependencies_point_down() {
    let c = load();
    let mut bad = Vec::new();
    for (rel, module, text) in &c.files {
        let top = module[0].as_str();
        if top == "bin" || top == "lib" {
            continue;
        }
        for r in references(module, &code(text)) {
            let to = r[0].as_str();
            if to != top && rank(to) >= rank(top) {
                bad.push(format!("{} ({top}, layer {}) uses {to} (layer {})", rel.display(), rank(top), rank(to)));
            }
        }
    }
    assert!(bad.is_empty(), "dependencies that do not point down:\n{}", bad.join("\n"));
}

#[test]
fn no_circle_between_modules() {
    let c = load();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (_, module, text) in &c.files {
        if module[0] == "bin" || module[0] == "lib" {
            continue;
        }
        let from: Vec<String> = module.iter().take(2).cloned().collect();
        for r in references(module, &code(text)) {
            // a submodule refers to its parent's items as `super::X`: not a dependency edge
            if r != from && !(from.len() == 2 && r.len() == 1 && r[0] == from[0]) {
                graph.entry(from.clone()).or_default().insert(r);
            }
        }
    }
    // depth-first search for a back edge
    fn visit(
        n: &Vec<String>,
        g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<String>,
    ) -> Option<String> {
        match state.get(n) {
            Some(1) => return Some(format!("{} -> {}", stack.join(" -> "), n.join("::"))),
            Some(2) => return None,
            _ => {}
        }
        state.insert(n.clone(), 1);
        stack.push(n.join("::"));
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(circle) = visit(n, &graph, &mut state, &mut Vec::new()) {
            panic!("a circle between modules: {circle}");
        }
    }
    // the test sees the edges it should: ops::pin uses ops::sync_roots and overlay
    let pin = &graph[&vec!["ops".to_string(), "pin".to_string()]];
    assert!(
        pin.contains(&vec!["ops".to_string(), "sync_roots".to_string()]) && pin.contains(&vec!["overlay".to_string()])
    );
}

#[test]
fn libc_and_unsafe_only_in_sys() {
    let c = load();
    let bad: Vec<String> = c
        .files
        .iter()
        .filter(|(_, m, _)| m[0] != "sys")
        .filter(|(_, _, t)| {
            // the exceptions: the generator's C entry point and the lint that forbids the rest
            let code =
                code(t).replace("#[unsafe(no_mangle)]\nextern \"C\" fn main(", "").replace("#![deny(unsafe_code)]", "");
            code.contains("libc::") || code.contains("unsafe")
        })
        .map(|(p, _, _)| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "libc or unsafe outside src/sys: {bad:?}");
}

/// Functions with their line counts: from the `fn` line to the closing brace at its indentation.
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let sig = ["fn ", "pub fn ", "pub(crate) fn ", "const fn ", "pub const fn "].iter().find(|p| t.starts_with(*p));
        let Some(sig) = sig else { continue };
        if t.ends_with(';') {
            continue;
        }
        let indent = &l[..l.len() - t.len()];
        let name: String = t[sig.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|x| *x == close) {
            out.push((name, end + 1));
        }
    }
    out
}

#[test]
fn no_long_functions() {
    let c = load();
    let mut long = Vec::new();
    for (rel, _, text) in &c.files {
        for (name, n) in functions(text) {
            if n > MAX_FN_LINES {
                long.push(format!("{}: fn {name} has {n} lines", rel.display()));
            }
        }
    }
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", long.join("\n"));
    // the measure itself: a 3-line function is 3 lines
    assert_eq!(functions("fn a() {\n    b();\n}\n"), vec![("a".to_string(), 3)]);
}

/// ARCHITECTURE.md and README's Layout section name every module of the tree, and every
/// `src/…` path ARCHITECTURE.md names exists.
#[test]
fn docs_match_the_tree() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let arch = fs::read_to_string(top.join("ARCHITECTURE.md")).unwrap();
    let readme = fs::read_to_string(top.join("README.md")).unwrap();
    let layout = &readme[readme.find("## Layout").expect("README has a Layout section")..];
    let c = load();
    let mut missing = Vec::new();
    for (rel, module, _) in &c.files {
        let shown = format!("src/{}", rel.display());
        // a module file is named by its path; a directory module (and what is in it, below the
        // second level: ops/status/judge.rs) by its directory
        let named: &[String] = if module.len() > 2 { &module[..2] } else { module };
        let name = named.last().map(String::as_str).unwrap_or("");
        let dir = format!("src/{}/", named.join("/"));
        if !(arch.contains(&shown) || arch.contains(&dir) || rel.ends_with("lib.rs") || rel.ends_with("tests.rs")) {
            missing.push(format!("ARCHITECTURE.md does not name {shown}"));
        }
        let in_layout =
            [format!("`{name}`"), format!("`{name}/`"), format!("src/{name}")].iter().any(|n| layout.contains(n));
        let exempt = matches!(name, "lib" | "tests" | "nix-ssd" | "nix-ssd-generator" | "");
        if !in_layout && !exempt {
            missing.push(format!("README's Layout does not name {name} ({shown})"));
        }
    }
    for w in arch.split('`').filter(|w| w.starts_with("src/")) {
        let p = w.split_whitespace().next().unwrap();
        if !top.join(p).exists() {
            missing.push(format!("ARCHITECTURE.md names {p}, which does not exist"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
