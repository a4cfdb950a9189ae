//! Fixture trees: `tests/cases/NAME/` holds the inputs (`cmdline`, `etc/…`, `run/…`,
//! `blkid.export`, `env`) and the expected results (`expected/`, `expected.log`,
//! `expected.exit`). The real generator binary runs on each and the output tree is compared
//! exactly: names, file types, symlink targets, bytes. `UPDATE_FIXTURES=1` rewrites the
//! expectations (review the diff before committing).
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixtures spell the operator command as the default build does. A build with
/// `NIX_SSD_CLI` set (the Nix package: `$out/bin/nix-ssd`) writes its own path instead: the
/// output is compared in the fixtures' spelling, after checking that the build's path is there.
const FIXTURE_CLI: &str = "/usr/bin/nix-ssd";
/// The path compiled into the binaries: the library reads the same variable in the same cargo
/// run (read here, not from the library, so the test does not depend on where the constant lives).
const CLI: &str = match option_env!("NIX_SSD_CLI") {
    Some(p) => p,
    None => FIXTURE_CLI,
};

fn in_fixture_spelling(s: &str) -> String {
    if CLI == FIXTURE_CLI { s.to_string() } else { s.replace(CLI, FIXTURE_CLI) }
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    File(String),
    Link(String),
}

fn tree(dir: &Path) -> BTreeMap<String, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(rel, Node::Link(fs::read_link(&p).unwrap().to_string_lossy().into_owned()));
            } else if ft.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, Node::File(fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn write_tree(dir: &Path, t: &BTreeMap<String, Node>) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    for (rel, node) in t {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        match node {
            Node::File(s) => fs::write(&p, s).unwrap(),
            Node::Link(l) => std::os::unix::fs::symlink(l, &p).unwrap(),
        }
    }
}

struct Run {
    tree: BTreeMap<String, Node>,
    /// The generator's files name this build's CLI (before the respelling).
    names_cli: bool,
    log: String,
    exit: i32,
}

/// Runs the generator on a case directory, as systemd would (NORMAL EARLY LATE).
fn run_case(case: &Path) -> Run {
    let out = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["normal", "early", "late"].iter().map(|d| out.path().join(d)).collect();
    for d in &dirs {
        fs::create_dir(d).unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nix-ssd-generator"));
    cmd.args(&dirs).env_clear().env("SYSTEMD_LOG_TARGET", "console").env("NIX_SSD_GENERATOR_ROOT", case).env(
        "SYSTEMD_PROC_CMDLINE",
        fs::read_to_string(case.join("cmdline")).unwrap_or_default().trim_end_matches('\n'),
    );
    if case.join("blkid.export").exists() {
        cmd.env("NIX_SSD_BLKID_EXPORT", case.join("blkid.export"));
    }
    for line in fs::read_to_string(case.join("env")).unwrap_or_default().lines() {
        if let Some((k, v)) = line.split_once('=') {
            cmd.env(k, v);
        }
    }
    let o = cmd.output().unwrap();
    for d in &dirs[1..] {
        assert_eq!(fs::read_dir(d).unwrap().count(), 0, "{}: wrote into {}", case.display(), d.display());
    }
    let raw = tree(&dirs[0]);
    let names_cli = raw.values().any(|n| matches!(n, Node::File(t) if t.contains(CLI)));
    let tree = raw
        .into_iter()
        .map(|(k, n)| match n {
            Node::File(t) => (k, Node::File(in_fixture_spelling(&t))),
            Node::Link(l) => (k, Node::Link(in_fixture_spelling(&l))),
        })
        .collect();
    Run {
        tree,
        names_cli,
        log: in_fixture_spelling(&String::from_utf8_lossy(&o.stderr)),
        exit: o.status.code().unwrap_or(-1),
    }
}

#[test]
fn fixture_cases() {
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut cases: Vec<PathBuf> =
        fs::read_dir(&cases_dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 20, "expected the fixture set, found {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let run = run_case(case);
        let exp_exit: i32 =
            fs::read_to_string(case.join("expected.exit")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        if update {
            write_tree(&case.join("expected"), &run.tree);
            fs::write(case.join("expected.log"), &run.log).unwrap();
            continue;
        }
        let exp_tree = tree(&case.join("expected"));
        let exp_names_cli = exp_tree.values().any(|n| matches!(n, Node::File(t) if t.contains(FIXTURE_CLI)));
        if run.names_cli != exp_names_cli {
            failures.push(format!("{name}: the generator's files do not name this build's CLI {CLI}"));
        }
        let exp_log = fs::read_to_string(case.join("expected.log")).unwrap_or_default();
        if run.tree != exp_tree {
            let mut diff = String::new();
            for k in exp_tree.keys().chain(run.tree.keys()) {
                if exp_tree.get(k) != run.tree.get(k) {
                    diff +=
                        &format!("  {k}:\n    expected {:?}\n    got      {:?}\n", exp_tree.get(k), run.tree.get(k));
                }
            }
            failures.push(format!("{name}: output tree differs\n{diff}"));
        }
        if run.log != exp_log {
            failures.push(format!("{name}: log differs\n--- expected\n{exp_log}--- got\n{}", run.log));
        }
        if run.exit != exp_exit {
            failures.push(format!("{name}: exit {} (expected {exp_exit})", run.exit));
        }
    }
    println!("fixtures: {} cases compared (CLI {CLI})", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} fixture cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `nix-ssd preview` shows, for the same inputs, exactly the files the generator writes.
#[test]
fn preview_matches_generator() {
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut compared = 0;
    for case in fs::read_dir(&cases_dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        if case.join("env").exists() {
            continue; // environment-only cases (initrd, log level) concern the generator's run
        }
        let cmdline = fs::read_to_string(case.join("cmdline")).unwrap_or_default().trim_end_matches('\n').to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nix-ssd"));
        cmd.arg("preview").arg("--root").arg(&case).arg("--cmdline").arg(&cmdline).env_clear();
        if case.join("blkid.export").exists() {
            cmd.arg("--blkid-export").arg(case.join("blkid.export"));
        }
        let out = in_fixture_spelling(&String::from_utf8(cmd.output().unwrap().stdout).unwrap());
        let mut shown = String::new();
        for (rel, node) in tree(&case.join("expected")) {
            match node {
                Node::File(t) => shown += &format!("\n==> {rel} <==\n{t}\n"),
                Node::Link(l) => shown += &format!("\n==> {rel} -> {l}\n"),
            }
        }
        // preview prints the files in plan order; compare as sets of file blocks
        let blocks = |s: &str| -> std::collections::BTreeSet<String> {
            s.split("\n==> ").skip(1).map(|b| b.trim_end().to_string()).collect()
        };
        assert_eq!(blocks(&out), blocks(&shown), "{}: preview differs from the generator's files", case.display());
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} cases compared");
}

#[test]
fn usage_errors_exit_2() {
    for args in [vec![], vec!["a", "b"], vec!["a", "b", "c", "d"], vec!["--help"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_nix-ssd-generator")).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("usage:"));
    }
}
