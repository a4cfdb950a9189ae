//! The documentation against the code it describes, so that neither drifts (tests/run.sh runs
//! this as its `docs` step too):
//! - nix-ssd(8): every subcommand in SYNOPSIS and COMMANDS and no other, each one's options;
//!   the JSON fields `status --json` prints; the nix-daemon settings `activate` writes;
//! - nix-ssd-generator(8) and README: the files the generator writes, as `nix-ssd preview` shows;
//! - nix-ssd-generator.conf(5) and README: their config examples give no warning;
//! - README: its first two commands, the quick start's order, every `nix-ssd` command in it
//!   parses, troubleshooting quotes real status messages (that it lists every NixOS option is
//!   checked where the module is evaluated: tests/packaging/nix/eval.nix).
use clap::{CommandFactory, Parser};
use nix_ssd_generator::ops::status::{
    CacheStatus, DaemonStatus, DeviceStatus, Health, InstallStatus, InternalStatus, MountStatus, SCHEMA, Seen, Source,
    Status, StoreStatus,
};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

#[path = "../src/bin/nix-ssd/cli.rs"]
#[allow(dead_code)]
mod cli;

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// roff as text: escapes resolved, font changes dropped.
fn unroff(s: &str) -> String {
    s.replace("\\-", "-")
        .replace("\\e", "\\")
        .replace("\\(em", "—")
        .replace("\\(lq", "“")
        .replace("\\(rq", "”")
        .replace("\\ ", " ")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
}

/// The text of section `name` (`.SH NAME` up to the next `.SH`).
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page.find(&format!("\n.SH {name}\n")).unwrap_or_else(|| panic!("no section {name}")) + 1;
    let end = page[start + 4..].find("\n.SH ").map_or(page.len(), |e| start + 4 + e);
    &page[start..end]
}

/// Tagged paragraphs at the outermost level of a section: (first word of the tag, the text
/// up to the next such paragraph). Paragraphs inside `.RS`/`.RE` belong to their parent.
fn entries(sec: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = sec.lines().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut depth = 0;
    for (i, l) in lines.iter().enumerate() {
        match *l {
            ".RS" => depth += 1,
            ".RE" => depth -= 1,
            _ => {}
        }
        let tagged = i > 0 && (lines[i - 1] == ".TP" || lines[i - 1] == ".TQ");
        let first = l.split_whitespace().nth(1).unwrap_or("");
        if depth == 0 && tagged && l.starts_with(".B") && !first.starts_with("\\-") {
            let word = unroff(l.split_whitespace().nth(1).unwrap_or("")).trim_matches('"').to_string();
            out.push((word, String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1 += &format!("{}\n", unroff(l));
        }
    }
    out
}

fn long_options(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(String::from)
        .collect()
}

/// SYNOPSIS of nix-ssd(8): (subcommand, its line's text), split at `.br`.
fn synopsis(page: &str) -> Vec<(String, String)> {
    let sec = section(page, "SYNOPSIS");
    sec.split("\n.br\n")
        .map(|e| {
            let t = unroff(e);
            let words: Vec<&str> = t.split_whitespace().filter(|w| !w.starts_with('.')).collect();
            let sub = words.iter().skip_while(|w| **w != "nix-ssd").nth(1).unwrap_or(&"").to_string();
            (sub, t)
        })
        .collect()
}

#[test]
fn nix_ssd_8_names_every_subcommand_and_option() {
    let page = read("packaging/man/nix-ssd.8");
    let cmd = cli::Cli::command();
    let syn = synopsis(&page);
    let commands = entries(section(&page, "COMMANDS"));
    let mut bad = Vec::new();
    let exists = |n: &str| cmd.get_subcommands().any(|s| s.get_name() == n);
    for (n, _) in syn.iter().filter(|(n, _)| !n.starts_with('-')).chain(&commands) {
        if !exists(n) {
            bad.push(format!("the page names a subcommand {n:?} that nix-ssd does not have"));
        }
    }
    for sub in cmd.get_subcommands() {
        let n = sub.get_name();
        let in_syn = syn.iter().find(|(s, _)| s == n).map(|(_, t)| t.clone());
        let in_cmds = commands.iter().find(|(s, _)| s == n).map(|(_, t)| t.clone());
        if sub.is_hide_set() && in_syn.is_none() && in_cmds.is_none() {
            continue; // internal, run by the generated units
        }
        let (Some(syn_text), Some(cmd_text)) = (&in_syn, &in_cmds) else {
            bad.push(format!("{n}: in SYNOPSIS {}, in COMMANDS {}", in_syn.is_some(), in_cmds.is_some()));
            continue;
        };
        let options: BTreeSet<String> =
            sub.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect();
        for o in options.iter().filter(|o| *o != "--help") {
            if !syn_text.contains(o.as_str()) && !cmd_text.contains(o.as_str()) {
                bad.push(format!("{n}: option {o} is not in the page"));
            }
        }
        for o in long_options(syn_text) {
            if !options.contains(&o) && o != "--help" {
                bad.push(format!("{n}: SYNOPSIS names {o}, which {n} does not take"));
            }
        }
    }
    assert!(bad.is_empty(), "nix-ssd(8) and src/bin/nix-ssd/cli.rs disagree:\n{}", bad.join("\n"));
    assert!(syn.iter().any(|(n, _)| n == "prune-pins"), "the check sees the SYNOPSIS");
}

/// The key paths of a JSON value: "device.uuid", "mounts[].role".
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}{k}");
                match v {
                    serde_json::Value::Array(a) => {
                        out.insert(format!("{p}[]"));
                        if let Some(first) = a.first().filter(|f| f.is_object()) {
                            key_paths(first, &format!("{p}[]."), out);
                        }
                    }
                    serde_json::Value::Object(_) => key_paths(v, &format!("{p}."), out),
                    _ => {
                        out.insert(p);
                    }
                }
            }
        }
        _ => panic!("not an object"),
    }
}

/// The schema as nix-ssd(8) lists it: `a, b[], c {x, y}, d[] {z}`.
fn documented_fields(page: &str) -> BTreeSet<String> {
    let status = entries(section(page, "COMMANDS")).into_iter().find(|(n, _)| n == "status").unwrap().1;
    let list = status.split(".nf\n").nth(1).and_then(|t| t.split("\n.fi").next()).expect("a .nf list of fields");
    let mut out = BTreeSet::new();
    let mut rest = list.replace('\n', " ");
    while !rest.trim().is_empty() {
        let item_end = rest.find([',', '{']).unwrap_or(rest.len());
        let name = rest[..item_end].trim().to_string();
        if rest[item_end..].starts_with('{') {
            let close = rest.find('}').expect("a closing brace");
            let base = name.trim_end_matches("[]").to_string();
            if name.ends_with("[]") {
                out.insert(name.clone());
            }
            let sep = if name.ends_with("[]") { "[]." } else { "." };
            for f in rest[item_end + 1..close].split(',') {
                out.insert(format!("{base}{sep}{}", f.trim()));
            }
            rest = rest[close + 1..].trim_start_matches([',', ' ']).to_string();
        } else {
            out.insert(name);
            rest = rest[(item_end + 1).min(rest.len())..].to_string();
        }
    }
    out
}

fn sample_status() -> Status {
    let s = || Some("x".to_string());
    Status {
        schema: SCHEMA,
        health: Health::Healthy,
        seen: Seen {
            mode: "overlay".into(),
            decided_by: "x".into(),
            summary: "x".into(),
            config_warnings: vec![],
            install: InstallStatus { nix_daemon: s(), generator: s(), generated: true },
            device: DeviceStatus {
                spec: "x".into(),
                node: "x".into(),
                present: true,
                fs_type: s(),
                label: s(),
                uuid: s(),
                enrolled: Some(true),
            },
            mounts: vec![MountStatus {
                role: "overlay",
                subvolume: "x".into(),
                target: "x".into(),
                mounted: true,
                options: s(),
            }],
            store: StoreStatus::default(),
            daemon: DaemonStatus { running: true, pid: Some(1), store: s(), build_dir: s(), source: Source::Process },
            caches: vec![CacheStatus { user: "x".into(), target: s(), mounted: true }],
            internal: InternalStatus {
                pinned: vec!["x".into()],
                collectable: vec!["x".into()],
                pending_install: s(),
                pending_since: Some(1),
                ..Default::default()
            },
        },
        warnings: vec![],
    }
}

#[test]
fn nix_ssd_8_lists_the_json_fields_status_prints() {
    let mut printed = BTreeSet::new();
    key_paths(&serde_json::to_value(sample_status()).unwrap(), "", &mut printed);
    // empty lists print no item fields: name them from the sample
    let documented = documented_fields(&read("packaging/man/nix-ssd.8"));
    let missing: Vec<_> = printed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&printed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "nix-ssd(8)'s JSON schema: not documented {missing:?}, documented but not printed {extra:?}"
    );
    assert!(printed.contains("device.enrolled") && printed.contains("mounts[].role"), "{printed:?}");
}

/// The settings `activate` puts into the daemon's NIX_CONFIG, read from its source.
fn settings_activate_writes() -> BTreeSet<String> {
    let src = read("src/ops/activate.rs");
    src.split("nix_config.push(")
        .skip(1)
        .filter_map(|rest| {
            let lit = &rest[rest.find('"')? + 1..];
            Some(lit[..lit.find(" = ")?].to_string())
        })
        .collect()
}

#[test]
fn nix_ssd_8_names_the_daemon_settings_activate_writes() {
    let written = settings_activate_writes();
    assert!(written.contains("store") && written.contains("build-dir"), "the source scan sees {written:?}");
    let page = read("packaging/man/nix-ssd.8");
    let activate = entries(section(&page, "COMMANDS")).into_iter().find(|(n, _)| n == "activate").unwrap().1;
    let from = activate.find("The nix-daemon settings it writes").expect("activate lists the daemon settings");
    let para = &activate[from..activate[from..].find("It does not set").map_or(activate.len(), |e| from + e)];
    let documented: BTreeSet<String> = para
        .lines()
        .filter_map(|l| l.strip_prefix(".BR ").or_else(|| l.strip_prefix(".B ")))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert_eq!(documented, written, "nix-ssd(8) activate: the settings it names vs src/ops/activate.rs");
    assert!(!written.contains("fsync-store-paths"));
    if read("src/ops/activate.rs").contains("TMPDIR=") {
        assert!(para.contains("TMPDIR"), "activate may write TMPDIR: the page must say so");
    }
}

/// The files `nix-ssd preview` shows for a config with cache users, in overlay mode.
fn previewed_files() -> BTreeSet<String> {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/systemd")).unwrap();
    fs::write(root.path().join("etc/systemd/nix-ssd-generator.conf"), "[nix-ssd]\ncache-users = root\n").unwrap();
    let out = preview(root.path());
    let files: BTreeSet<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("==> "))
        .map(|l| l.trim_end_matches(" <==").split(" -> ").next().unwrap().to_string())
        .collect();
    assert!(files.len() >= 9, "{out}");
    files
}

fn preview(root: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_nix-ssd"))
        .args(["preview", "--cmdline", "", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn nix_ssd_generator_8_and_readme_list_the_files_the_generator_writes() {
    let files = previewed_files();
    let page = read("packaging/man/nix-ssd-generator.8");
    let desc = section(&page, "DESCRIPTION");
    let list = &desc[desc.find("it writes:").unwrap()..desc.find("Without the SSD").unwrap()];
    let man: BTreeSet<String> = entries(list).into_iter().map(|(n, _)| n).collect();
    assert_eq!(man, files, "nix-ssd-generator(8) vs nix-ssd preview");
    let readme = read("README.md");
    let how = &readme[readme.find("\n## How it works").unwrap()..readme.find("\n## The `nix-ssd` command").unwrap()];
    for (what, text) in [("nix-ssd-generator(8)", unroff(&page)), ("README's How it works", how.to_string())] {
        // a .wants/ link is named only if the generator writes one
        for w in text.split_whitespace().filter(|w| w.contains(".wants")) {
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            assert!(files.iter().any(|f| f.contains(w)), "{what} names {w}, which the generator does not write");
        }
    }
    let table: BTreeSet<String> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| l.split('|').nth(1).unwrap_or("").split('`').skip(1).step_by(2))
        .filter(|n| n.contains(".mount") || n.contains(".service") || n.contains(".conf"))
        .map(String::from)
        .collect();
    assert_eq!(table, files, "README's table of generated files vs nix-ssd preview");
}

/// The first fenced block after `marker` in `text`, and its language.
fn fenced_after<'a>(text: &'a str, marker: &str) -> (&'a str, &'a str) {
    let from = text.find(marker).unwrap_or_else(|| panic!("no {marker:?}"));
    let open = from + text[from..].find("```").unwrap() + 3;
    let lang_end = open + text[open..].find('\n').unwrap();
    let close = lang_end + text[lang_end..].find("\n```").unwrap();
    (&text[open..lang_end], &text[lang_end + 1..close + 1])
}

/// A config text as /etc/systemd/nix-ssd-generator.conf: what preview says.
fn preview_of_config(text: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/systemd")).unwrap();
    fs::write(root.path().join("etc/systemd/nix-ssd-generator.conf"), text).unwrap();
    preview(root.path())
}

#[test]
fn config_examples_give_no_warning_and_the_intended_units() {
    let readme = read("README.md");
    let (lang, example) = fenced_after(&readme, "\n## Configuration");
    assert_eq!(lang, "ini");
    let page = read("packaging/man/nix-ssd-generator.conf.5");
    let ex = section(&page, "EXAMPLE");
    let man_example = unroff(&ex[ex.find(".nf\n").unwrap() + 4..ex.find("\n.fi").unwrap()]);
    for (what, text) in [("README", example.to_string()), ("nix-ssd-generator.conf(5)", man_example)] {
        let out = preview_of_config(&text);
        assert!(!out.contains("# warning"), "{what}'s example, copied into the config file, warns:\n{out}");
        assert!(
            out.contains("overlay mode (from /etc/systemd/nix-ssd-generator.conf) on LABEL=NIX_SSD"),
            "{what}:\n{out}"
        );
        assert!(out.contains("at /mnt/nix-ssd, device wait at most 10s"), "{what}:\n{out}");
        // cache-users is set: the cache subvolume is mounted, each user's cache bound
        assert!(out.contains("==> mnt-nix\\x2dssd-cache.mount <=="), "{what}: no cache mount\n{out}");
        assert!(out.contains("--cache-user alice --cache-user root"), "{what}: cache users\n{out}");
    }
}

/// Inline code and fenced lines of README that run nix-ssd, as a user would type them.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for l in readme.lines() {
        if l.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let mut candidates: Vec<&str> = Vec::new();
        if fenced || l.starts_with("    ") {
            candidates.push(l.trim());
        } else if !l.starts_with('|') {
            candidates.extend(l.split('`').skip(1).step_by(2));
        }
        for c in candidates {
            let c = c.split(" # ").next().unwrap().trim().trim_start_matches("sudo ");
            if c.starts_with("nix-ssd ") && !c.contains('…') && !c.contains('|') {
                out.push(c.to_string());
            }
        }
    }
    out
}

#[test]
fn readme_commands_exist() {
    let readme = read("README.md");
    let cmds = readme_commands(&readme);
    assert!(cmds.len() >= 8, "{cmds:?}");
    let mut bad = Vec::new();
    for c in &cmds {
        let words: Vec<&str> = c.split_whitespace().map(|w| w.trim_matches('\'')).collect();
        let named = words.len() == 2 && cli::Cli::command().get_subcommands().any(|s| s.get_name() == words[1]);
        if named {
            continue; // the subcommand's name, not a command line
        }
        if let Err(e) = cli::Cli::try_parse_from(&words)
            && !matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion)
        {
            bad.push(format!("{c}: {}", e.to_string().lines().next().unwrap_or("")));
        }
    }
    assert!(bad.is_empty(), "README runs nix-ssd in ways it does not take:\n{}", bad.join("\n"));
}

#[test]
fn readme_opens_with_the_two_commands_and_a_quick_start_in_order() {
    let readme = read("README.md");
    let (_, first) = fenced_after(&readme, "# nix-ssd-generator");
    let cmds: Vec<&str> = first.lines().map(|l| l.split(" # ").next().unwrap().trim()).collect();
    assert_eq!(cmds[..2], ["cargo run --release --bin nix-ssd -- preview", "sudo tests/run.sh"]);
    let qs = &readme[readme.find("\n## Quick start").expect("a Quick start")..];
    let qs = &qs[..qs[1..].find("\n## ").map_or(qs.len(), |e| e + 1)];
    let order = [
        "services.nix-ssd.enable = true;",
        "sudo nix-ssd setup --dry-run /dev/",
        "sudo nix-ssd setup /dev/",
        "reboot",
        "nix-ssd status",
        "health:   healthy",
    ];
    let mut at = 0;
    for step in order {
        let i = qs[at..].find(step).unwrap_or_else(|| panic!("the quick start lacks {step:?} after byte {at}"));
        at += i + step.len();
    }
    assert!(qs.contains("?dir=packaging/nix"), "the flake input names the flake's directory");
    assert!(qs.contains("apt install ./"), "the Debian quick start installs the .deb");
}

#[test]
fn readme_troubleshooting_quotes_real_status_messages() {
    let readme = read("README.md");
    let t = &readme[readme.find("\n## Troubleshooting").expect("a Troubleshooting section")..];
    let t = &t[..t[1..].find("\n## ").map_or(t.len(), |e| e + 1)];
    let mut src = String::new();
    for f in ["src/ops/status/judge.rs", "src/ops/status/mod.rs", "src/ops/activate.rs", "src/enrol.rs"] {
        src += &read(f).replace("\\\n", "").split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let keys: Vec<&str> = t.lines().filter_map(|l| l.strip_prefix("- `")).filter_map(|l| l.split('`').next()).collect();
    assert!(keys.len() >= 6, "{keys:?}");
    let unknown: Vec<_> = keys.iter().filter(|k| !src.contains(**k)).collect();
    assert!(unknown.is_empty(), "README's troubleshooting quotes messages status never prints: {unknown:?}");
}
