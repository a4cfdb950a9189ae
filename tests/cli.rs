//! The `nix-ssd` command line as a user meets it: bad input of every kind (exit status and first
//! line of each), a closed or full standard output, and the shell completions, which are
//! generated from clap's definition (`src/bin/nix-ssd/cli.rs`, included here) and installed
//! from packaging/completions/ (`UPDATE_COMPLETIONS=1 cargo test --test cli` rewrites them).
use clap::CommandFactory;
use clap_complete::Shell;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../src/bin/nix-ssd/cli.rs"]
#[allow(dead_code)]
mod cli;

const BIN: &str = env!("CARGO_BIN_EXE_nix-ssd");

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

// ------------------------------------------------------------------ completions

const COMPLETIONS: [(Shell, &str); 3] =
    [(Shell::Bash, "nix-ssd.bash"), (Shell::Zsh, "_nix-ssd"), (Shell::Fish, "nix-ssd.fish")];

/// The command line a user is offered: without the hidden (internal) subcommands, which
/// clap_complete would offer otherwise.
fn offered() -> clap::Command {
    let full = cli::Cli::command();
    let mut c = clap::Command::new("nix-ssd").version(env!("CARGO_PKG_VERSION"));
    if let Some(a) = full.get_about() {
        c = c.about(a.clone());
    }
    c.subcommand_required(true).subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

fn completion(shell: Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut offered(), "nix-ssd", &mut buf);
    String::from_utf8(buf).unwrap()
}

#[test]
fn completions_are_generated_from_the_cli() {
    let dir = top().join("packaging/completions");
    let update = std::env::var_os("UPDATE_COMPLETIONS").is_some();
    for (shell, file) in COMPLETIONS {
        let want = completion(shell);
        if update {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(file), &want).unwrap();
            continue;
        }
        let have = fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            have == want,
            "packaging/completions/{file} is not what clap_complete makes of src/bin/nix-ssd/cli.rs: \
             run UPDATE_COMPLETIONS=1 cargo test --test cli and review the diff"
        );
        // what a user is offered: every visible subcommand, no internal one
        for sub in cli::Cli::command().get_subcommands() {
            let n = sub.get_name();
            let offered = match shell {
                Shell::Bash => want
                    .lines()
                    .find(|l| l.trim_start().starts_with("opts=\"-h -V"))
                    .is_some_and(|l| l.trim().trim_end_matches('"').split(' ').any(|w| w == n)),
                Shell::Zsh => want.contains(&format!("'{n}:")),
                _ => want.contains(&format!("-a \"{n}\"")),
            };
            assert_eq!(offered, !sub.is_hide_set(), "{file}: {n} offered: {offered}");
        }
    }
}

// ------------------------------------------------------------------ bad input

/// Who runs a row.
#[derive(Clone, Copy, PartialEq, Debug)]
enum As {
    Root,
    /// nobody (uid 65534), through setpriv when the test runs as root.
    User,
}

struct Row {
    args: Vec<OsString>,
    who: As,
    exit: i32,
    /// The start of the first line of standard error.
    first: String,
    /// More text standard error must (true) or must not (false) hold.
    also: Vec<(bool, String)>,
    /// PATH directories put first (stand-ins for blkid, mount).
    path: Option<PathBuf>,
}

fn row(who: As, args: &[&str], exit: i32, first: &str) -> Row {
    Row {
        args: args.iter().map(OsString::from).collect(),
        who,
        exit,
        first: first.into(),
        also: Vec::new(),
        path: None,
    }
}

/// Scratch files the rows use: an image with an MBR, an empty image, a plain directory.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let mut mbr = vec![0u8; 1 << 20];
        // one partition entry (type 0x83, from sector 2048) and the boot signature
        mbr[446 + 4] = 0x83;
        mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        mbr[446 + 12..446 + 16].copy_from_slice(&1000u32.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        fs::write(dir.path().join("mbr.img"), mbr).unwrap();
        fs::write(dir.path().join("empty.img"), vec![0u8; 1 << 20]).unwrap();
        fs::write(dir.path().join("file"), "x").unwrap();
        // stand-ins: blkid that sees a btrfs, mount that fails
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let script = |name: &str, body: &str| {
            let p = bin.join(name);
            fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::os::unix::fs::PermissionsExt::set_mode(&mut fs::metadata(&p).unwrap().permissions(), 0o755);
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        };
        script("blkid", "printf 'DEVNAME=%s\\nTYPE=btrfs\\nUUID=0a3c5e1f-8d2b-4f6e-9c7a-1b2d3e4f5a6b\\n' \"$4\"");
        script("mount", "echo 'mount: wrong fs type, bad option, bad superblock' >&2; exit 32");
        Scratch { dir }
    }
    fn p(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn rows(s: &Scratch) -> Vec<Row> {
    let (mbr, empty) = (s.p("mbr.img"), s.p("empty.img"));
    let lvm = ["lvm-plan", "--vg", "vg", "--pv", "/dev/x", "--meta-size", "8M", "--nix-size", "1G", "--cache-size"];
    let mut v = vec![
        row(
            As::User,
            &["preview", "--root", "/nonexistent"],
            1,
            "nix-ssd preview: --root /nonexistent: not a directory",
        ),
        row(As::User, &["preview", "--root", &s.p("file")], 1, "nix-ssd preview: --root "),
        row(As::User, &[&lvm[..], &["1.5X"]].concat(), 2, "error: invalid value '1.5X' for '--cache-size <SIZE>'"),
        // 1.5G is taken: what stops it here is the root check, after parsing
        row(As::User, &[&lvm[..], &["1.5G"]].concat(), 1, "nix-ssd lvm-plan: must be run as root"),
        row(
            As::User,
            &["setup", "--dry-run", &mbr],
            1,
            "nix-ssd setup: must be run as root (e.g. `sudo nix-ssd setup …`)",
        ),
        row(As::Root, &["setup", "--dry-run", &mbr], 1, &format!("nix-ssd setup: {mbr} holds a partition table (dos)")),
        row(As::Root, &["setup", &mbr], 1, &format!("nix-ssd setup: {mbr} holds a partition table (dos)")),
        row(
            As::Root,
            &["setup", "--dry-run", "/dev/nonexistent-nix-ssd"],
            1,
            "nix-ssd setup: /dev/nonexistent-nix-ssd: no such device or file",
        ),
        row(As::Root, &["setup", "--dry-run", &empty], 0, &format!("nix-ssd setup: mkfs.btrfs -L NIX_SSD {empty}")),
        row(
            As::Root,
            &["setup", "--dry-run", "--label", "OTHER", &empty],
            1,
            "nix-ssd setup: the configuration names the SSD LABEL=NIX_SSD, which a file system labelled \"OTHER\" would never match",
        ),
        row(
            As::Root,
            &["enroll", "/dev/nonexistent-nix-ssd"],
            1,
            "nix-ssd enroll: /dev/nonexistent-nix-ssd: no such device or file",
        ),
        row(As::Root, &["enroll", &empty], 1, &format!("nix-ssd enroll: {empty} holds no file system, not btrfs")),
    ];
    v[5].also.push((true, "--force".into()));
    v[6].also.push((true, "--force".into()));
    for (sub, args) in [
        ("enroll", &["/dev/x"][..]),
        ("pin", &["/nix/store/x"]),
        ("prune-pins", &[]),
        ("sync-roots", &[]),
        ("reclaim", &[]),
        ("apply-pins", &[]),
        ("at-shutdown", &[]),
        ("activate", &["--mode", "overlay", "--env-file", "/run/x.env"]),
    ] {
        let first = format!("nix-ssd {sub}: must be run as root");
        v.push(row(As::User, &[&[sub], args].concat(), 1, &first));
    }
    let mut r = row(As::User, &["stat"], 2, "error: unrecognized subcommand 'stat'");
    r.also = vec![(true, "'status'".into()), (false, "at-shutdown".into())];
    v.push(r);
    let mut r = row(As::User, &["preview", "--cmdline"], 2, "error: invalid value ");
    r.args.push(OsString::from_vec(b"quiet \xff".to_vec()));
    r.also.push((true, "not UTF-8: byte 6 is 0xff".into()));
    v.push(r);
    // a mount that fails leaves no directory behind in /run
    let mut r = row(As::Root, &["enroll", &empty], 1, "nix-ssd enroll: `mount -t btrfs");
    r.path = Some(s.dir.path().join("bin"));
    r.also.push((true, "bad superblock".into()));
    v.push(r);
    v
}

fn setup_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir("/run")
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains("nix-ssd-setup.")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn check(r: &Row) -> Result<(), String> {
    let mut c = if r.who == As::User && is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    c.args(&r.args).env("SYSTEMD_PROC_CMDLINE", "").stdin(Stdio::null());
    if let Some(p) = &r.path {
        c.env("PATH", format!("{}:{}", p.display(), std::env::var("PATH").unwrap_or_default()));
    }
    let before = setup_dirs();
    let o = c.output().map_err(|e| format!("cannot run: {e}"))?;
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.lines().next().unwrap_or("");
    let mut why = Vec::new();
    if o.status.code() != Some(r.exit) {
        why.push(format!("exit {:?}, expected {}", o.status.code(), r.exit));
    }
    if !first.starts_with(&r.first) {
        why.push(format!("first line {first:?}, expected it to start with {:?}", r.first));
    }
    for (want, s) in &r.also {
        if err.contains(s.as_str()) != *want {
            why.push(format!("stderr {} {s:?}", if *want { "lacks" } else { "holds" }));
        }
    }
    if err.contains("panicked") {
        why.push("panicked".into());
    }
    if setup_dirs() != before {
        why.push(format!("left behind in /run: {:?}", setup_dirs()));
    }
    if why.is_empty() { Ok(()) } else { Err(format!("{}\n    stderr: {}", why.join("; "), err.trim_end())) }
}

#[test]
fn bad_input_gets_a_plain_answer() {
    let s = Scratch::new();
    let rows = rows(&s);
    let (mut failures, mut skipped) = (Vec::new(), 0);
    for r in &rows {
        if r.who == As::Root && !is_root() {
            skipped += 1;
            continue;
        }
        if let Err(e) = check(r) {
            let args: Vec<_> = r.args.iter().map(|a| a.to_string_lossy()).collect();
            failures.push(format!("nix-ssd {}: {e}", args.join(" ")));
        }
    }
    println!("bad input: {} rows, {skipped} skipped (need root)", rows.len());
    assert!(rows.len() >= 23, "the table shrank to {} rows", rows.len());
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

// ------------------------------------------------------------------ closed and full output

/// The exit status `nix-ssd ARGS` gives with its output read whole.
fn code_when_read(args: &[&str]) -> i32 {
    Command::new(BIN).args(args).stderr(Stdio::null()).output().unwrap().status.code().unwrap()
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_documented_status() {
    for args in [&["preview"][..], &["status"], &["status", "--json"], &["--help"]] {
        let want = code_when_read(args);
        for round in 0..20 {
            let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            let out = child.stdout.take().unwrap();
            if round % 2 == 1 {
                // `| head -1`: one line read, then the reader goes
                let mut l = String::new();
                BufReader::new(out).read_line(&mut l).unwrap();
            } else {
                drop(out); // `| true`
            }
            let o = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(want), "nix-ssd {args:?} | … (round {round}): {err}");
            assert!(err.is_empty() || args[0] == "status", "nix-ssd {args:?} | … said: {err}");
            assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        }
    }
}

#[test]
fn a_full_output_is_said_not_panicked() {
    for (args, want) in [(&["preview"][..], 1), (&["status"], code_when_read(&["status"]))] {
        let full = fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = Command::new(BIN).args(args).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(want), "{args:?} >/dev/full: {err}");
        assert!(err.contains("cannot write to standard output: No space left on device"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
