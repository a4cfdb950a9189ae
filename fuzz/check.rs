// Invariants every generator output must satisfy, shared by the fuzz targets
// (fuzz/fuzz_targets/pipeline.rs) and the hostile-input table (tests/hostile.rs):
// `#[path = "../fuzz/check.rs"] mod check;`.
//
// A rendered tree is either empty or the complete set of files for its mode, and every line of
// every unit file is empty, a comment, a `[Section]` we write, or a key we write, in that
// section, exactly once. Values are checked for what systemd would misread: control
// characters, NUL, a trailing backslash (line continuation), leading/trailing whitespace
// (systemd strips it, so the value would not round-trip), a lone `%` (specifier expansion).
#![allow(dead_code)]

/// The keys each kind of file may hold, by section.
fn allowed(path: &str) -> Option<&'static [(&'static str, &'static [&'static str])]> {
    const MOUNT: &[(&str, &[&str])] = &[
        ("Unit", &["Description", "Documentation", "SourcePath", "ConditionPathExists"]),
        ("Mount", &["What", "Where", "Type", "Options"]),
    ];
    const TIMEOUT: &[(&str, &[&str])] = &[("Unit", &["JobRunningTimeoutSec"])];
    const SERVICE: &[(&str, &[&str])] = &[
        ("Unit", &["Description", "Documentation", "SourcePath", "Wants", "After", "ConditionPathIsMountPoint"]),
        ("Service", &["Type", "RemainAfterExit", "ExecStart", "ExecStop", "TimeoutStopSec"]),
    ];
    const DAEMON: &[(&str, &[&str])] = &[
        ("Unit", &["Wants", "After", "DefaultDependencies", "Requires", "Conflicts", "Before"]),
        ("Service", &["EnvironmentFile"]),
    ];
    const SOCKET: &[(&str, &[&str])] = &[("Unit", &["Wants"])];
    const PINS: &[(&str, &[&str])] = &[
        (
            "Unit",
            &[
                "Description",
                "Documentation",
                "SourcePath",
                "DefaultDependencies",
                "RequiresMountsFor",
                "After",
                "Before",
                "Conflicts",
                "ConditionPathExists",
            ],
        ),
        ("Service", &["Type", "ExecStart"]),
    ];
    const CLIENT: &[(&str, &[&str])] = &[("Unit", &["After"]), ("Service", &["EnvironmentFile"])];
    Some(match path {
        p if p.ends_with(".mount") && !p.contains('/') => MOUNT,
        p if p.ends_with(".device.d/50-device-timeout.conf") => TIMEOUT,
        "nix-ssd.service" => SERVICE,
        "nix-ssd-pins.service" => PINS,
        "nix-daemon.service.d/50-nix-ssd.conf" => DAEMON,
        "nix-daemon.socket.d/50-nix-ssd.conf" => SOCKET,
        "nix-gc.service.d/50-nix-ssd.conf" | "nix-optimise.service.d/50-nix-ssd.conf" => CLIENT,
        _ => return None,
    })
}

/// Keys that every file of the kind must hold.
fn required(path: &str) -> &'static [&'static str] {
    match path {
        p if p.ends_with(".mount") => &["What", "Where", "Type", "Options", "ConditionPathExists"],
        p if p.ends_with("50-device-timeout.conf") => &["JobRunningTimeoutSec"],
        "nix-ssd.service" => &["ExecStart", "ConditionPathIsMountPoint", "Wants", "After", "Type"],
        "nix-ssd-pins.service" => &["ExecStart", "Before", "DefaultDependencies", "ConditionPathExists"],
        "nix-daemon.service.d/50-nix-ssd.conf" => &["Wants", "After", "EnvironmentFile", "DefaultDependencies"],
        "nix-daemon.socket.d/50-nix-ssd.conf" => &["Wants"],
        _ => &["After", "EnvironmentFile"],
    }
}

const SYSTEMD_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// systemd's `unit_name_is_valid()` length limit and `%`-specifier rule: every `%` doubled.
fn check_value(path: &str, key: &str, v: &str) -> Result<(), String> {
    let err = |why: &str| Err(format!("{path}: {key}={v:?}: {why}"));
    if v.is_empty() {
        return err("empty value");
    }
    // systemd's WHITESPACE is " \t\n\r" (src/basic/string-util.h) and strstrip() of a
    // value removes only those; other Unicode spaces (U+00A0, a label may hold one) are kept.
    if v.trim_matches(SYSTEMD_WHITESPACE) != v {
        return err("leading or trailing whitespace (systemd strips it: the value would not round-trip)");
    }
    if v.ends_with('\\') {
        return err("trailing backslash (a line continuation)");
    }
    if v.replace("%%", "").contains('%') {
        return err("a lone % (a specifier systemd would expand)");
    }
    if matches!(key, "What" | "Where" | "ConditionPathExists" | "ConditionPathIsMountPoint" | "EnvironmentFile") {
        let p = v.trim_start_matches('-');
        if !p.starts_with('/') {
            return err("not an absolute path");
        }
        if p.split('/').skip(1).any(|c| c.is_empty() || c == "." || c == "..") {
            return err("not a normalised path");
        }
    }
    if matches!(key, "Wants" | "After" | "Requires" | "Conflicts" | "Before") {
        for u in v.split(' ') {
            if u.is_empty() || u.len() > 255 || u.starts_with('.') {
                return err("not a list of valid unit names");
            }
        }
    }
    Ok(())
}

/// Checks one file's text. Returns its `key -> value` pairs by section on success.
pub fn check_unit_text(path: &str, text: &str) -> Result<Vec<(String, String, String)>, String> {
    let Some(allow) = allowed(path) else { return Err(format!("unexpected output file {path:?}")) };
    if text.contains('\0') {
        return Err(format!("{path}: holds a NUL"));
    }
    // ASCII controls only: a label's valid multi-byte UTF-8 (C1 controls included) stays as
    // it is in udev's /dev/disk/by-label names, so What= must keep it to match the link.
    if let Some(c) = text.chars().find(|c| c.is_ascii_control() && *c != '\n') {
        return Err(format!("{path}: holds control character {c:?}"));
    }
    if !text.ends_with('\n') {
        return Err(format!("{path}: no final newline"));
    }
    let mut section: Option<&str> = None;
    let mut seen: Vec<(String, String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{path}:{}", n + 1);
        if line.is_empty() || line.starts_with('#') {
            if line.ends_with('\\') {
                return Err(format!("{at}: comment ends with a backslash"));
            }
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if !allow.iter().any(|(name, _)| *name == s) {
                return Err(format!("{at}: injected section [{s}]"));
            }
            if seen.iter().any(|(sec, _, _)| sec == s) {
                return Err(format!("{at}: section [{s}] repeated"));
            }
            section = Some(s);
            continue;
        }
        let Some(sec) = section else { return Err(format!("{at}: line before any section: {line:?}")) };
        let Some((k, v)) = line.split_once('=') else { return Err(format!("{at}: not a key=value line: {line:?}")) };
        let keys = allow.iter().find(|(name, _)| *name == sec).map(|(_, k)| *k).unwrap_or(&[]);
        if !keys.contains(&k) {
            return Err(format!("{at}: injected or unknown key {k:?} in [{sec}]: {line:?}"));
        }
        if seen.iter().any(|(s, key, _)| s == sec && key == k) {
            return Err(format!("{at}: key {k} repeated in [{sec}]"));
        }
        check_value(path, k, v)?;
        seen.push((sec.to_string(), k.to_string(), v.to_string()));
    }
    for r in required(path) {
        if !seen.iter().any(|(_, k, _)| k == r) {
            return Err(format!("{path}: missing {r}="));
        }
    }
    if path.ends_with(".mount") {
        let get = |k: &str| seen.iter().find(|(_, key, _)| key == k).map(|(_, _, v)| v.clone()).unwrap_or_default();
        if get("What") != get("ConditionPathExists") {
            return Err(format!("{path}: ConditionPathExists= is not What="));
        }
        if get("Type") != "btrfs" {
            return Err(format!("{path}: Type= is not btrfs"));
        }
        if !get("Options").ends_with(",noatime,nosuid,nodev,nofail") || !get("Options").starts_with("subvol=") {
            return Err(format!("{path}: Options= is not subvol=…,noatime,nosuid,nodev,nofail"));
        }
    }
    Ok(seen)
}

/// A whole output tree: `(relative path, Some(text) for a file / None for the wants symlink)`.
/// Either empty, or exactly: 2 or 3 mount units (build mode: 1 or 2), the device timeout
/// drop-in, nix-ssd.service, nix-ssd-pins.service, the daemon service and socket drop-ins, and
/// in overlay mode the nix-gc/nix-optimise drop-ins.
pub fn check_tree(files: &[(String, Option<String>)]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    names.sort();
    let mounts: Vec<&str> = names.iter().copied().filter(|p| p.ends_with(".mount")).collect();
    let overlay = names.contains(&"nix-gc.service.d/50-nix-ssd.conf");
    let mut expect: Vec<&str> = vec![
        "nix-daemon.service.d/50-nix-ssd.conf",
        "nix-daemon.socket.d/50-nix-ssd.conf",
        "nix-ssd-pins.service",
        "nix-ssd.service",
    ];
    if overlay {
        expect.extend(["nix-gc.service.d/50-nix-ssd.conf", "nix-optimise.service.d/50-nix-ssd.conf"]);
    }
    let timeouts: Vec<&str> =
        names.iter().copied().filter(|p| p.ends_with(".device.d/50-device-timeout.conf")).collect();
    if timeouts.len() != 1 {
        return Err(format!("incomplete or extra output: {} device timeout drop-ins in {names:?}", timeouts.len()));
    }
    let (lo, hi) = if overlay { (2, 3) } else { (1, 2) };
    if mounts.len() < lo || mounts.len() > hi {
        return Err(format!("incomplete output: {} mount units in {names:?}", mounts.len()));
    }
    for e in &expect {
        if !names.contains(e) {
            return Err(format!("incomplete output: {e} missing from {names:?}"));
        }
    }
    if names.len() != expect.len() + mounts.len() + 1 {
        return Err(format!("unexpected extra files in {names:?}"));
    }
    for (p, content) in files {
        for comp in p.split('/') {
            if comp.len() > 255 {
                return Err(format!("{p}: a name longer than 255 bytes"));
            }
        }
        let unit = p.split('/').next().unwrap_or("").trim_end_matches(".d");
        if unit.len() > 255 {
            return Err(format!("{p}: unit name longer than 255 bytes"));
        }
        match content {
            // none: a multi-user.target.wants/ link would make the boot wait for the SSD
            None => return Err(format!("{p}: unexpected symlink")),
            Some(t) => {
                let kv = check_unit_text(p, t)?;
                if p.ends_with(".mount") {
                    let w = kv.iter().find(|(_, k, _)| k == "Where").map(|(_, _, v)| v.replace("%%", "%"));
                    if w.is_none() {
                        return Err(format!("{p}: no Where="));
                    }
                }
            }
        }
    }
    // nix-ssd.service must want and order after exactly the mount units written and the pins
    // service (which moves staged pins in before the overlay is stacked).
    let svc = files.iter().find(|(p, _)| p == "nix-ssd.service").and_then(|(_, t)| t.clone()).unwrap_or_default();
    let wants = svc.lines().find_map(|l| l.strip_prefix("Wants=")).unwrap_or("");
    let mut w: Vec<&str> = wants.split(' ').collect();
    w.sort();
    let mut m = mounts.clone();
    m.push("nix-ssd-pins.service");
    m.sort();
    if w != m {
        return Err(format!(
            "nix-ssd.service Wants={wants} but the mount units are {mounts:?} (and nix-ssd-pins.service)"
        ));
    }
    Ok(())
}
