//! Hostile inputs, table-driven: the real generator binary runs on each row in a temporary
//! root. Every row must give exit 0, a log line naming the input, an output directory that is
//! either complete or empty (never partial), and no injected unit line: every line of every
//! file is checked by fuzz/check.rs (the same checker the pipeline fuzz target uses).
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[path = "../fuzz/check.rs"]
mod check;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Out {
    Complete,
    Empty,
}

/// A file in the row's root: contents, a directory, or a symlink.
enum Node {
    File(&'static str, Vec<u8>),
    Dir(&'static str),
    Link(&'static str, &'static str),
}

struct Row {
    name: &'static str,
    /// SYSTEMD_PROC_CMDLINE; `None`: the generator reads /proc/cmdline, hidden by an empty tmpfs.
    cmdline: Option<String>,
    files: Vec<Node>,
    /// A drop-in whose file name is arbitrary bytes (a newline, …): (name, text).
    odd_dropin: Option<(Vec<u8>, &'static str)>,
    out: Out,
    /// What the log must say (each substring somewhere in stderr).
    log: Vec<String>,
    /// What no output file may contain.
    absent: Vec<&'static str>,
}

fn row(name: &'static str, cmdline: &str, out: Out, log: &[&str]) -> Row {
    Row {
        name,
        cmdline: Some(cmdline.to_string()),
        files: Vec::new(),
        odd_dropin: None,
        out,
        log: log.iter().map(|s| s.to_string()).collect(),
        absent: Vec::new(),
    }
}

const CONF: &str = "etc/systemd/nix-ssd-generator.conf";

fn conf(text: &[u8]) -> Vec<Node> {
    vec![Node::File(CONF, text.to_vec())]
}

fn rows() -> Vec<Row> {
    let long = "x".repeat(300);
    let spaces = " ".repeat(250);
    let long_mp = format!("/{}", "a".repeat(300));
    let mut v = vec![
        // Labels.
        row("label with spaces", "nix-ssd.device=\"LABEL=my ssd\"", Out::Complete, &["LABEL=my ssd"]),
        row("label with %", "nix-ssd.device=LABEL=100%", Out::Complete, &["LABEL=100%"]),
        row("label with % specifier", "nix-ssd.device=LABEL=%n%i", Out::Complete, &["LABEL=%n%i"]),
        row("label with backslash", r"nix-ssd.device=LABEL=a\b\x20", Out::Complete, &[r"LABEL=a\\b\\x20"]),
        row(
            "label with newline",
            "nix-ssd.device=\"LABEL=a\nExecStart=/bin/sh\"",
            Out::Complete,
            &[r"LABEL=a\nExecStart=/bin/sh"],
        ),
        row("label unicode", "nix-ssd.device=\"LABEL=Über ✓\"", Out::Complete, &["LABEL=Über ✓"]),
        row("label ..", "nix-ssd.device=LABEL=..", Out::Complete, &["nix-ssd.device=\"LABEL=..\"", "`.` and `..`"]),
        row(
            "label over 255 bytes",
            &format!("nix-ssd.device=LABEL={long}"),
            Out::Complete,
            &["nix-ssd.device=", "longer than 255 bytes"],
        ),
        row(
            "label whose unit name is too long",
            &format!("nix-ssd.device=\"LABEL={spaces}\""),
            Out::Empty,
            &["longer than 255 characters; writing no units"],
        ),
        row("label with tab and DEL", "nix-ssd.device=\"LABEL=a\tb\x7f\"", Out::Complete, &[r"LABEL=a\tb\u{7f}"]),
        // Device paths.
        row(
            "device path with ..",
            "nix-ssd.device=/dev/../etc/passwd",
            Out::Complete,
            &["nix-ssd.device=\"/dev/../etc/passwd\""],
        ),
        row("device path outside /dev", "nix-ssd.device=/etc/passwd", Out::Complete, &["below /dev"]),
        row(
            "device path trailing space",
            "nix-ssd.device=\"/dev/sda1 \"",
            Out::Complete,
            &["nix-ssd.device=\"/dev/sda1 \"", "whitespace"],
        ),
        row(
            "device path trailing backslash",
            r"nix-ssd.device=/dev/sdb1\",
            Out::Complete,
            &[r#"nix-ssd.device="/dev/sdb1\\""#, "backslash"],
        ),
        row(
            "device path with \\x20 escape",
            r"nix-ssd.device=/dev/disk/by-label/my\x20ssd",
            Out::Complete,
            &[r"on /dev/disk/by-label/my\\x20ssd"],
        ),
        row("device empty", "nix-ssd.device=", Out::Complete, &["nix-ssd.device=\"\""]),
        // Mount points.
        row(
            "mount point with space",
            "nix-ssd.mount-point=\"/mnt/my ssd\"",
            Out::Complete,
            &["nix-ssd.mount-point=\"/mnt/my ssd\""],
        ),
        row(
            "mount point with %",
            "nix-ssd.mount-point=/mnt/100%",
            Out::Complete,
            &["/mnt/100%", "must not contain '%'"],
        ),
        row("mount point with &", "nix-ssd.mount-point=/mnt/a&b", Out::Complete, &["/mnt/a&b", "the Nix store URL"]),
        row("mount point with ?", "nix-ssd.mount-point=/mnt/a?b", Out::Complete, &["must not contain '?'"]),
        row("mount point with #", "nix-ssd.mount-point=/mnt/a#b", Out::Complete, &["must not contain '#'"]),
        row("mount point with =", "nix-ssd.mount-point=/mnt/a=b", Out::Complete, &["must not contain '='"]),
        row(
            "mount point with backslash",
            r"nix-ssd.mount-point=/mnt/a\x2db",
            Out::Complete,
            &[r#"nix-ssd.mount-point="/mnt/a\\x2db""#],
        ),
        row(
            "mount point with newline",
            "nix-ssd.mount-point=\"/mnt/a\n[Service]\"",
            Out::Complete,
            &[r#"nix-ssd.mount-point="/mnt/a\n[Service]""#, "control character"],
        ),
        row(
            "mount point with ..",
            "nix-ssd.mount-point=/mnt/../etc",
            Out::Complete,
            &["nix-ssd.mount-point=\"/mnt/../etc\""],
        ),
        row("mount point under /nix", "nix-ssd.mount-point=/nix/store", Out::Complete, &["below /nix"]),
        row("mount point relative", "nix-ssd.mount-point=mnt", Out::Complete, &["not an absolute path"]),
        row("mount point unicode", "nix-ssd.mount-point=/mnt/ssd-ü", Out::Complete, &["at /mnt/ssd-ü"]),
        row(
            "mount point very long",
            &format!("nix-ssd.mount-point={long_mp}"),
            Out::Empty,
            &["longer than 255 characters; writing no units"],
        ),
        // Other values.
        row(
            "subvolume with comma",
            "nix-ssd.overlay-subvolume=@a,ro",
            Out::Complete,
            &["nix-ssd.overlay-subvolume=\"@a,ro\""],
        ),
        row("subvolume ..", "nix-ssd.build-subvolume=..", Out::Complete, &["nix-ssd.build-subvolume=\"..\""]),
        row(
            "cache user with injected line",
            "nix-ssd.cache-users=\"alice\nExecStartPre=/bin/sh\"",
            Out::Complete,
            &["nix-ssd.cache-users=", "is not a valid user name"],
        ),
        row(
            "device timeout overflow",
            "nix-ssd.device-timeout=99999999999999999999s",
            Out::Complete,
            &["nix-ssd.device-timeout=\"99999999999999999999s\""],
        ),
        row("unknown key", "nix-ssd.evil=1", Out::Complete, &["unknown setting \"nix-ssd.evil\""]),
        row(
            "multi-byte char at the key prefix boundary",
            "nix-ssdü=1 nix-ssd\u{10348}.mode=build",
            Out::Complete,
            &["overlay mode (from the built-in default)"],
        ),
        // Duplicated and contradictory keys.
        row(
            "duplicated key, last wins",
            "nix-ssd.mode=build nix-ssd.mode=overlay",
            Out::Complete,
            &["overlay mode (from the kernel command line)"],
        ),
        row(
            "contradictory switch, last wins",
            "nix-ssd=1 nix-ssd=build nix-ssd=0",
            Out::Empty,
            &["disabled by the kernel command line"],
        ),
    ];
    let mut r = row(
        "duplicated keys in the config file",
        "",
        Out::Complete,
        &["build mode (from /etc/systemd/nix-ssd-generator.conf)"],
    );
    r.files = conf(b"[nix-ssd]\nmode = overlay\nmode = build\n[nix-ssd]\ndevice = LABEL=A\ndevice = LABEL=B\n");
    r.log.push("LABEL=B".into());
    v.push(r);
    let mut r = row(
        "config off, command line build",
        "nix-ssd=build",
        Out::Complete,
        &["build mode (from the kernel command line)"],
    );
    r.files = conf(b"[nix-ssd]\nmode = off\n");
    v.push(r);
    let mut r = row(
        "config file with NUL bytes",
        "",
        Out::Complete,
        &["/etc/systemd/nix-ssd-generator.conf", r#"mode="bu\0ild""#],
    );
    r.files = conf(b"[nix-ssd]\nmode = bu\0ild\n\0\0\0\ndevice = LABEL=a\0b\n");
    r.log.push(r"LABEL=a\0b".into());
    v.push(r);
    let mut r = row(
        "config file with invalid UTF-8",
        "",
        Out::Complete,
        &["/etc/systemd/nix-ssd-generator.conf:2: ignoring line"],
    );
    r.files = conf(b"[nix-ssd]\n\xff\xfe = \xc0\n");
    v.push(r);
    let mut r = row("config section injection", "", Out::Complete, &["ignoring section [Service]"]);
    r.files = conf(b"[nix-ssd]\n[Service]\nExecStartPre=/bin/sh\n[nix-ssd]\ndevice = LABEL=ok\n");
    r.absent.push("ExecStartPre");
    v.push(r);
    let mut r = row(
        "unreadable config (a directory)",
        "",
        Out::Complete,
        &["cannot read /etc/systemd/nix-ssd-generator.conf:", "its settings are ignored"],
    );
    r.files = vec![Node::Dir(CONF)];
    v.push(r);
    let mut r = row(
        "unreadable drop-in (dangling symlink)",
        "",
        Out::Complete,
        &["cannot read /etc/systemd/nix-ssd-generator.conf.d/50-gone.conf:"],
    );
    r.files = vec![Node::Link("etc/systemd/nix-ssd-generator.conf.d/50-gone.conf", "/nonexistent/nix-ssd.conf")];
    v.push(r);
    let mut r = row(
        "drop-in name with newline",
        "",
        Out::Complete,
        &[
            r#"ignoring config file "/etc/systemd/nix-ssd-generator.conf.d/x\nWants=evil.service\n.conf""#,
            "control character",
        ],
    );
    r.odd_dropin = Some((b"x\nWants=evil.service\n.conf".to_vec(), "[nix-ssd]\nmode = build\n"));
    r.absent.push("evil.service");
    v.push(r);
    let mut r = row(
        "blkid: label matches an ext4 device",
        "nix-ssd.device=\"LABEL=my ssd\"",
        Out::Empty,
        &["LABEL=my ssd holds a file system of type ext4, not btrfs; writing no units"],
    );
    r.files = vec![Node::File("blkid.export", b"DEVNAME=/dev/sdb1\nLABEL=my\\ ssd\nTYPE=ext4\n".to_vec())];
    v.push(r);
    let mut r = row("udev database with garbage", "", Out::Complete, &["/run/udev/data/b8:17: line 2: cannot read"]);
    r.files = vec![Node::File(
        "run/udev/data/b8:17",
        b"N:sdb1\n\0garbage\nE:ID_FS_LABEL=NIX_SSD\nE:ID_FS_TYPE=btrfs\n".to_vec(),
    )];
    r.log.push("known as btrfs".into());
    v.push(r);
    let mut r = row(
        "/proc/cmdline missing",
        "",
        Out::Complete,
        &["cannot read the kernel command line (/proc/cmdline:", "using the config files only"],
    );
    r.cmdline = None;
    r.files = conf(b"[nix-ssd]\nmode = build\n");
    r.log.push("build mode (from /etc/systemd/nix-ssd-generator.conf)".into());
    v.push(r);
    v
}

/// The output tree as (relative path, Some(text) | None for a symlink). Fails on anything that
/// is neither a UTF-8 file, a directory, nor our one symlink.
fn read_tree(dir: &Path) -> Result<Vec<(String, Option<String>)>, String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Option<String>)>) -> Result<(), String> {
        for e in fs::read_dir(dir).map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            let p = e.path();
            let rel = p.strip_prefix(base).map_err(|e| e.to_string())?.to_string_lossy().into_owned();
            let ft = e.file_type().map_err(|e| e.to_string())?;
            if ft.is_symlink() {
                let t = fs::read_link(&p).map_err(|e| e.to_string())?;
                if t != Path::new("../nix-ssd.service") {
                    return Err(format!("{rel}: symlink to {t:?}"));
                }
                out.push((rel, None));
            } else if ft.is_dir() {
                walk(base, &p, out)?;
                if fs::read_dir(&p).map_err(|e| e.to_string())?.next().is_none() {
                    return Err(format!("{rel}: empty directory left behind"));
                }
            } else {
                let b = fs::read(&p).map_err(|e| e.to_string())?;
                out.push((rel.clone(), Some(String::from_utf8(b).map_err(|_| format!("{rel}: not UTF-8"))?)));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

fn make_root(root: &Path, r: &Row) {
    for n in &r.files {
        let p = match n {
            Node::File(rel, _) | Node::Dir(rel) | Node::Link(rel, _) => root.join(rel),
        };
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        match n {
            Node::File(_, b) => fs::write(&p, b).unwrap(),
            Node::Dir(_) => fs::create_dir(&p).unwrap(),
            Node::Link(_, t) => symlink(t, &p).unwrap(),
        }
    }
    if let Some((name, text)) = &r.odd_dropin {
        let d = root.join("etc/systemd/nix-ssd-generator.conf.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name)), text).unwrap();
    }
}

struct Ran {
    exit: Option<i32>,
    log: String,
    tree: Result<Vec<(String, Option<String>)>, String>,
    other_dirs_empty: bool,
}

fn run(root: &Path, cmdline: Option<&str>) -> Result<Ran, String> {
    let out = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = ["normal", "early", "late"].iter().map(|d| out.path().join(d)).collect();
    for d in &dirs {
        fs::create_dir(d).unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_nix-ssd-generator");
    let mut cmd = match cmdline {
        Some(_) => Command::new(bin),
        None => {
            // Hide /proc/cmdline: an empty tmpfs over /proc in a private mount namespace.
            let mut c = Command::new("unshare");
            c.args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs none /proc && exec \"$0\" \"$@\"",
            ]);
            c.arg(bin);
            c
        }
    };
    cmd.args(&dirs).env_clear().env("SYSTEMD_LOG_TARGET", "console").env("NIX_SSD_GENERATOR_ROOT", root);
    if let Some(c) = cmdline {
        cmd.env("SYSTEMD_PROC_CMDLINE", c);
    }
    if root.join("blkid.export").exists() {
        cmd.env("NIX_SSD_BLKID_EXPORT", root.join("blkid.export"));
    }
    let o = cmd.output().map_err(|e| format!("cannot run: {e}"))?;
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    if cmdline.is_none() && log.contains("unshare:") {
        return Err(format!("cannot hide /proc/cmdline here (needs root): {log}"));
    }
    let other_dirs_empty = dirs[1..].iter().all(|d| fs::read_dir(d).map(|mut r| r.next().is_none()).unwrap_or(false));
    Ok(Ran { exit: o.status.code(), log, tree: read_tree(&dirs[0]), other_dirs_empty })
}

fn check_row(r: &Row) -> Result<(), String> {
    let root = tempfile::tempdir().unwrap();
    make_root(root.path(), r);
    let ran = run(root.path(), r.cmdline.as_deref())?;
    let mut why = Vec::new();
    if ran.exit != Some(0) {
        why.push(format!("exit {:?}", ran.exit));
    }
    if ran.log.trim().is_empty() {
        why.push("no log line".into());
    }
    // One record per line: a value must never start a log line of its own.
    for l in ran.log.lines() {
        if !l.starts_with("nix-ssd-generator: ") {
            why.push(format!("forged or foreign log line {l:?}"));
        }
    }
    for s in &r.log {
        if !ran.log.contains(s.as_str()) {
            why.push(format!("log does not say {s:?}"));
        }
    }
    if !ran.other_dirs_empty {
        why.push("wrote into EARLY or LATE".into());
    }
    match &ran.tree {
        Err(e) => why.push(e.clone()),
        Ok(t) => {
            match (r.out, t.is_empty()) {
                (Out::Empty, false) => why.push(format!("expected no output, got {} files", t.len())),
                (Out::Complete, true) => why.push("expected the complete set of files, got none".into()),
                _ => {}
            }
            if let Err(e) = check::check_tree(t) {
                why.push(e);
            }
            for a in &r.absent {
                if t.iter().any(|(_, c)| c.as_deref().is_some_and(|c| c.contains(a))) {
                    why.push(format!("output contains {a:?}"));
                }
            }
        }
    }
    if why.is_empty() { Ok(()) } else { Err(format!("{}\n    log: {}", why.join("; "), ran.log.trim_end())) }
}

#[test]
fn hostile_inputs() {
    let rows = rows();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for r in &rows {
        match check_row(r) {
            Ok(()) => {}
            Err(e) if e.starts_with("cannot hide /proc/cmdline") && !is_root() => {
                skipped.push(format!("{}: {e}", r.name))
            }
            Err(e) => failures.push(format!("{}: {e}", r.name)),
        }
    }
    println!(
        "hostile inputs: {} rows, {} passed, {} skipped",
        rows.len(),
        rows.len() - failures.len() - skipped.len(),
        skipped.len()
    );
    for s in &skipped {
        println!("  skipped {s}");
    }
    assert!(rows.len() >= 40, "the table shrank to {} rows", rows.len());
    assert!(
        failures.is_empty(),
        "{} of {} hostile inputs failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Found by the pipeline fuzz target (fixed in plan::decide): a device
/// unit name of 254 or 255 bytes passed plan's `len() > UNIT_NAME_MAX` check, but the drop-in
/// directory `<unit>.d` was then longer than NAME_MAX: the writer failed, the generator exited
/// 1. Fixed in plan::decide (the `.d` counts). Found by fuzz/fuzz_targets/pipeline.rs.
#[test]
fn device_dropin_dir_over_name_max() {
    // dev-disk-by\x2dlabel- (21) + 226 + .device (7) = 254 bytes; the directory is 256.
    let r = row(
        "device drop-in dir over NAME_MAX",
        &format!("nix-ssd.device=LABEL={}", "x".repeat(226)),
        Out::Empty,
        &["writing no units"],
    );
    if let Err(e) = check_row(&r) {
        panic!("{}: {e}", r.name);
    }
}

/// A FIFO where a config file is expected blocked the generator forever in `fs::read`
/// (systemd then kills it after its generator timeout, delaying boot). Fixed in sources.rs:
/// opened with O_NONBLOCK, non-regular files refused.
#[test]
fn config_fifo_does_not_block() {
    let root = tempfile::tempdir().unwrap();
    let p = root.path().join(CONF);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let st = Command::new("mkfifo").arg(&p).status().unwrap();
    assert!(st.success());
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nix-ssd-generator"))
        .arg(out.path())
        .env_clear()
        .env("SYSTEMD_LOG_TARGET", "console")
        .env("SYSTEMD_PROC_CMDLINE", "")
        .env("NIX_SSD_GENERATOR_ROOT", root.path())
        .spawn()
        .unwrap();
    for _ in 0..50 {
        if let Some(st) = child.try_wait().unwrap() {
            assert_eq!(st.code(), Some(0));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the generator still blocks on a FIFO config file after 5 s");
}
