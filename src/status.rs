//! `nix-ssd status`: the seed's verification steps, automated. What was decided and why, what
//! is really mounted, and what the running nix-daemon really uses. Exit 0 healthy, 1 degraded
//! (working without the SSD), 2 broken or unknown.
use crate::activate::{MountInfo, daemon_pid, mounts};
use crate::generator::config::Mode;
use crate::generator::plan::{self, Role};
use crate::paths::{BOOT_PROFILE, ENV_FILE, LOWER_STORE};
use crate::generator::sources::{self, Root};
use serde::Serialize;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Version of the JSON document; bumped on any incompatible change (documented in nix-ssd(8)).
pub const SCHEMA: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: u32,
    /// "healthy", "degraded" or "broken".
    pub health: &'static str,
    /// "overlay", "build" or "off".
    pub mode: String,
    /// The input that decided the mode.
    pub decided_by: String,
    pub summary: String,
    pub config_warnings: Vec<String>,
    pub device: DeviceStatus,
    pub mounts: Vec<MountStatus>,
    pub store: StoreStatus,
    pub daemon: DaemonStatus,
    pub caches: Vec<CacheStatus>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DeviceStatus {
    pub spec: String,
    pub node: String,
    pub present: bool,
    pub fs_type: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MountStatus {
    pub role: &'static str,
    pub subvolume: String,
    pub target: String,
    pub mounted: bool,
    pub options: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StoreStatus {
    /// The file system on /nix/store as processes see it ("overlay", "ext4", …).
    pub fstype: Option<String>,
    pub overlay: bool,
    pub lowerdir: Option<String>,
    pub upperdir: Option<String>,
    pub workdir: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DaemonStatus {
    pub running: bool,
    pub pid: Option<u32>,
    /// From the daemon's NIX_CONFIG (or the env file if it has not started): the store URL,
    /// or null for Nix's default (the eMMC store).
    pub store: Option<String>,
    pub build_dir: Option<String>,
    /// Where `store`/`build_dir` were read: "process" or "env-file".
    pub source: &'static str,
}

#[derive(Debug, Serialize)]
pub struct CacheStatus {
    pub user: String,
    pub target: Option<String>,
    pub mounted: bool,
}

fn top<'a>(all: &'a [MountInfo], path: &str) -> Option<&'a MountInfo> {
    all.iter().rev().find(|m| m.target == path)
}

/// NIX_CONFIG's `store =` and `build-dir =` lines.
fn nix_config_settings(nix_config: &str) -> (Option<String>, Option<String>) {
    let get = |key: &str| {
        nix_config.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    (get("store"), get("build-dir"))
}

fn env_nix_config(environ: &[u8]) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"NIX_CONFIG="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Reads NIX_CONFIG out of the env file written by `nix-ssd activate` (a quoted value).
pub fn env_file_nix_config(text: &str) -> Option<String> {
    let start = text.find("NIX_CONFIG=\"")? + "NIX_CONFIG=\"".len();
    let mut out = String::new();
    let mut chars = text[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

fn blkid(node: &str) -> (Option<String>, Option<String>) {
    let Ok(out) = Command::new("blkid").args(["-o", "export", node]).output() else { return (None, None) };
    let (devs, _) = crate::generator::blkid::parse_export(&String::from_utf8_lossy(&out.stdout));
    let d = devs.first();
    (d.and_then(|d| d.tag("TYPE")).map(String::from), d.and_then(|d| d.tag("LABEL")).map(String::from))
}

fn home_of(user: &str) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 5).then(|| f[5].to_string())
    })
}

/// Gathers the status of this machine.
pub fn status() -> Status {
    let inputs = sources::gather(&Root("/".into()));
    let outcome = plan::plan(&inputs);
    let c = &outcome.config;
    let all = mounts();
    let mut warnings = Vec::new();
    let node = plan::device_node(&c.device);
    let present = Path::new(&node).exists();
    let (fs_type, label) = if present { blkid(&node) } else { (None, None) };
    let device = DeviceStatus { spec: c.device.to_string(), node, present, fs_type, label };

    let plan = outcome.result.as_ref().ok();
    let mount_status: Vec<MountStatus> = plan
        .map(|p| {
            p.mounts
                .iter()
                .map(|m| {
                    let t = top(&all, &m.target);
                    MountStatus {
                        role: match m.role {
                            Role::Overlay => "overlay",
                            Role::Build => "build",
                            Role::Cache => "cache",
                        },
                        subvolume: m.subvolume.clone(),
                        target: m.target.clone(),
                        mounted: t.is_some(),
                        options: t.map(|t| format!("{},{}", t.options, t.super_options)),
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    let s = top(&all, "/nix/store");
    let store = StoreStatus {
        fstype: s.map(|m| m.fstype.clone()),
        // Ours: an overlay over the lower-store bind (a root file system that is itself an
        // overlay, as in containers, shows up as "overlay" too).
        overlay: s.is_some_and(|m| m.fstype == "overlay" && m.super_option("lowerdir") == Some(LOWER_STORE)),
        lowerdir: s.and_then(|m| m.super_option("lowerdir")).map(String::from),
        upperdir: s.and_then(|m| m.super_option("upperdir")).map(String::from),
        workdir: s.and_then(|m| m.super_option("workdir")).map(String::from),
    };

    let pid = daemon_pid();
    let (nix_config, source) = match pid {
        Some(p) => (fs::read(format!("/proc/{p}/environ")).ok().and_then(|e| env_nix_config(&e)), "process"),
        None => (fs::read_to_string(ENV_FILE).ok().and_then(|t| env_file_nix_config(&t)), "env-file"),
    };
    let (daemon_store, build_dir) = nix_config.as_deref().map(nix_config_settings).unwrap_or((None, None));
    let daemon = DaemonStatus { running: pid.is_some(), pid, store: daemon_store, build_dir, source };

    let caches = c
        .cache_users
        .iter()
        .map(|u| {
            let target = home_of(u).map(|h| format!("{h}/.cache/nix"));
            let mounted = target.as_deref().is_some_and(|t| top(&all, t).is_some());
            CacheStatus { user: u.clone(), target, mounted }
        })
        .collect();

    // Health.
    let mode = if !c.enabled { "off".to_string() } else { c.mode.to_string() };
    let primary_mounted =
        plan.is_some_and(|p| mount_status.iter().any(|m| m.target == p.primary().target && m.mounted));
    let uses_overlay = daemon.store.as_deref().is_some_and(|s| s.starts_with("local-overlay://"));
    let health = match (c.enabled, plan) {
        (false, _) => "healthy",
        (true, None) => {
            warnings.push(format!("the generator wrote nothing: {}", outcome.summary()));
            "broken"
        }
        (true, Some(p)) => {
            if !device.present && (store.overlay || uses_overlay) {
                // systemd stops the SSD's mounts when its device goes; the overlay stays
                warnings.push(format!(
                    "{} is gone while the overlay store on /nix/store still uses it: the SSD was removed while \
                     running; Nix calls on the SSD fail with I/O errors until a reboot (which uses the eMMC store \
                     until the SSD is back)",
                    p.device
                ));
                "broken"
            } else if !device.present && !primary_mounted {
                warnings.push(format!("{} is absent: Nix works on the eMMC store (degraded)", p.device));
                "degraded"
            } else if !device.present {
                warnings.push(format!(
                    "{} is gone but {} is still mounted: the SSD was removed while running; Nix calls on the SSD \
                     fail with I/O errors until a reboot (which uses the eMMC store until the SSD is back)",
                    p.device,
                    p.primary().target
                ));
                "broken"
            } else if !primary_mounted {
                warnings.push(format!(
                    "{} is present but {} is not mounted (see `journalctl -u {}`)",
                    p.device,
                    p.primary().target,
                    p.primary().unit
                ));
                "broken"
            } else if p.mode == Mode::Overlay
                && !(store.overlay && store.upperdir.as_deref().is_some_and(|u| u.starts_with(&p.primary().target)))
            {
                warnings.push(
                    "the SSD is mounted but the overlay is not on /nix/store: it appeared after nix-daemon started, or \
                     stacking was refused (see `journalctl -u nix-ssd.service`); it is used from the next boot"
                        .into(),
                );
                "broken"
            } else if p.mode == Mode::Overlay && daemon.running && !uses_overlay {
                warnings.push("the overlay is mounted but nix-daemon does not use the local-overlay store (restart nix-daemon after nix-ssd.service)".into());
                "broken"
            } else {
                "healthy"
            }
        }
    };
    let mut health = health;
    if let Some(p) = plan {
        warnings.extend(layout_drift(p, &mount_status));
        let (w, full) = space_warnings(p, &mount_status);
        warnings.extend(w);
        if full {
            health = "broken"; // Nix cannot open its database on a full SSD
        }
    }
    if let Some(w) = boot_default_warning() {
        warnings.push(w);
        // Working now, but the next boot without the SSD would not be.
        if health == "healthy" {
            health = "degraded";
        }
    }
    Status {
        schema: SCHEMA,
        health,
        mode,
        decided_by: c.mode_origin.to_string(),
        summary: outcome.summary(),
        config_warnings: outcome.warnings.clone(),
        device,
        mounts: mount_status,
        store,
        daemon,
        caches,
        warnings,
    }
}

/// Free space and the space reserve on the overlay subvolume (overlay mode, mounted): a full
/// SSD stops Nix (its database is there); `nix-ssd reclaim` frees space. Returns the warnings
/// and whether the SSD is full.
fn space_warnings(p: &plan::Plan, mounts: &[MountStatus]) -> (Vec<String>, bool) {
    use crate::reserve;
    let Some(o) = p.mount(Role::Overlay).filter(|m| mounts.iter().any(|s| s.target == m.target && s.mounted)) else {
        return (Vec::new(), false);
    };
    let dir = Path::new(&o.target);
    let Ok(sp) = reserve::space(dir) else { return (Vec::new(), false) };
    let mib = reserve::mib;
    let mut w = Vec::new();
    let full = sp.avail < reserve::FULL_BELOW;
    if full {
        w.push(format!(
            "the SSD is full ({} MiB free): Nix cannot open its database there; run `nix-ssd reclaim`",
            mib(sp.avail)
        ));
    }
    if reserve::present(dir).is_none() {
        w.push(format!(
            "{} is missing (it holds {} MiB back for a full SSD); `nix-ssd reclaim` or the next boot makes it when there is room",
            reserve::path(dir).display(),
            mib(reserve::size_for(sp.total))
        ));
    }
    (w, full)
}

/// Owners and modes on the mounted SSD that differ from what `nix-ssd setup` makes and Nix
/// needs: overlay upper/work/state root-only writable, the build dir not world-writable (Nix
/// 2.30 refuses it), each cache dir owned by its user.
fn layout_drift(p: &plan::Plan, mounts: &[MountStatus]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mounted = |role: Role| p.mount(role).filter(|m| mounts.iter().any(|s| s.target == m.target && s.mounted));
    let mut want: Vec<(String, u32, u32)> = Vec::new(); // path, owner uid, mode
    if let Some(o) = mounted(Role::Overlay) {
        for (d, mode) in [("upper", 0o755), ("work", 0o700), ("state", 0o755)] {
            want.push((format!("{}/{d}", o.target), 0, mode));
        }
    }
    if let Some(b) = mounted(Role::Build) {
        want.push((b.target.clone(), 0, 0o755));
    }
    let mut out = Vec::new();
    for (path, uid, mode) in want {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == uid && m.mode() & 0o7777 == mode => {}
            Ok(m) => out.push(format!(
                "{path} is owned by uid {} with mode {:o}, expected uid {uid} mode {mode:o} (`nix-ssd setup` makes it so)",
                m.uid(),
                m.mode() & 0o7777
            )),
            Err(e) => out.push(format!("{path}: {e}")),
        }
    }
    if let Some(c) = mounted(Role::Cache) {
        for u in &p.cache_users {
            let Some(uid) = uid_of(u) else { continue };
            let path = format!("{}/{u}", c.target);
            if let Ok(m) = fs::symlink_metadata(&path)
                && (m.uid() != uid || !m.is_dir())
            {
                out.push(format!("{path} should be a directory owned by {u} (uid {uid}), is uid {}", m.uid()));
            }
        }
    }
    out
}

fn uid_of(user: &str) -> Option<u32> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 2).then(|| f[2].parse().ok()).flatten()
    })
}


/// While the overlay is up: is every path of the boot default's closure in the eMMC store?
fn boot_default_warning() -> Option<String> {
    if !crate::pin::overlay_up() {
        return None;
    }
    let target = crate::pin::store_path(BOOT_PROFILE).ok()?;
    let out = Command::new(crate::pin::nix_tool("nix-store"))
        .args(["--query", "--requisites", &target])
        .env("NIX_REMOTE", "daemon")
        .env_remove("NIX_CONFIG")
        .output()
        .ok()?;
    if !out.status.success() {
        return Some(format!(
            "cannot list the closure of the boot default {target}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let missing = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|p| !Path::new(LOWER_STORE).join(p.trim_start_matches("/nix/store/")).exists())
        .count();
    (missing > 0).then(|| {
        format!(
            "the boot default {BOOT_PROFILE} -> {target} has {missing} path(s) only on the SSD: it would not boot without it; run `nix-ssd pin {BOOT_PROFILE}`"
        )
    })
}

impl Status {
    pub fn exit_code(&self) -> u8 {
        match self.health {
            "healthy" => 0,
            "degraded" => 1,
            _ => 2,
        }
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let mut o = format!(
            "health:   {}\nmode:     {} (decided by {})\ndecision: {}\n",
            self.health, self.mode, self.decided_by, self.summary
        );
        let d = &self.device;
        o += &format!(
            "device:   {} -> {}: {}\n",
            d.spec,
            d.node,
            if d.present {
                format!(
                    "present, {} labelled {}",
                    d.fs_type.as_deref().unwrap_or("unknown fs"),
                    d.label.as_deref().unwrap_or("-")
                )
            } else {
                "absent".into()
            }
        );
        for m in &self.mounts {
            o += &format!(
                "mount:    {} ({}) at {}: {}\n",
                m.subvolume,
                m.role,
                m.target,
                m.options.as_deref().map_or("not mounted".into(), |x| format!("mounted {x}"))
            );
        }
        let s = &self.store;
        o += &format!(
            "store:    /nix/store is {}{}\n",
            s.fstype.as_deref().unwrap_or("not a mount point"),
            if s.overlay {
                format!(
                    " (lower {}, upper {}, work {})",
                    s.lowerdir.as_deref().unwrap_or("?"),
                    s.upperdir.as_deref().unwrap_or("?"),
                    s.workdir.as_deref().unwrap_or("?")
                )
            } else if s.fstype.as_deref() == Some("overlay") {
                " (not the SSD overlay: the file system under it)".to_string()
            } else {
                String::new()
            }
        );
        let dm = &self.daemon;
        o += &format!(
            "daemon:   running {}{}; store {}; build-dir {} (from the {})\n",
            yn(dm.running),
            dm.pid.map_or(String::new(), |p| format!(" (pid {p})")),
            dm.store.as_deref().unwrap_or("default (eMMC)"),
            dm.build_dir.as_deref().unwrap_or("default"),
            if dm.source == "process" { "daemon's environment" } else { "env file; the daemon has not started" }
        );
        for c in &self.caches {
            o += &format!(
                "cache:    {} at {}: mounted {}\n",
                c.user,
                c.target.as_deref().unwrap_or("(no such user)"),
                yn(c.mounted)
            );
        }
        for w in self.config_warnings.iter().chain(&self.warnings) {
            o += &format!("warning:  {w}\n");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_roundtrip() {
        let t = "# x\nNIX_CONFIG=\"extra-experimental-features = a b\nstore = local-overlay://?x=1&y=\\\"q\\\"\nbuild-dir = /mnt/b\"\n";
        let c = env_file_nix_config(t).unwrap();
        assert_eq!(nix_config_settings(&c), (Some("local-overlay://?x=1&y=\"q\"".into()), Some("/mnt/b".into())));
    }
}
