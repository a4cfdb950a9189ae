//! Everything `status` looks at, gathered once: the generator's decision for this machine, the
//! mount table, the device, the daemon's settings, the SSD's space and layout, and whether the
//! boot default is on the lower store. No judgement here.
use super::{
    CacheStatus, DaemonStatus, DeviceStatus, InstallStatus, InternalStatus, MountStatus, Seen, Source, StoreStatus,
};
use crate::generator::plan::{self, Plan, Role};
use crate::generator::sources::{self, Root};
use crate::nix;
use crate::ops::boot_default::{self, Fallback, Verdict};
use crate::overlay;
use crate::paths::{
    self, BOOT_PROFILE, BUILD_DIR_MODE, DEFAULT_PROFILE, ENV_FILE, GENERATED_SERVICE, GENERATOR_DIRS, GENERATOR_NAME,
    LOWER_GC_WANTED, LOWER_STORE, OVERLAY_DIRS, PIN_ROOTS, STORE,
};
use crate::reserve::{self, Space};
use crate::sys::mount::{self, MountInfo, top_of};
use crate::sys::{CmdError, cmd, users};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

/// What `status` found.
#[derive(Debug, Clone)]
pub struct Facts {
    pub enabled: bool,
    /// What the report shows.
    pub seen: Seen,
    /// The generator's plan for this machine (None: it would write nothing).
    pub plan: Option<Plan>,
    /// Owners and modes on the mounted SSD that differ from what `nix-ssd setup` makes.
    pub drift: Vec<String>,
    /// The overlay subvolume's room and space reserve, when it is mounted in overlay mode.
    pub ssd_space: Option<SsdSpace>,
    pub boot_default: BootDefault,
    /// The same for the default profile (Nix itself where it is installed there).
    pub default_profile: BootDefault,
    /// Why the enrolment list cannot be read or trusted, if it cannot.
    pub enrolment_error: Option<String>,
    /// Why `activate` refused the SSD this boot (its enrolment token did not match, …), if it did.
    pub refusal: Option<String>,
    /// The boot menu's default was moved away from a system that would not boot without the SSD.
    pub boot_fallback: Option<Fallback>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsdSpace {
    pub space: Space,
    pub reserve_present: bool,
    pub reserve_path: String,
}

/// Is the boot default's closure on the lower store (checked while the overlay is up)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootDefault {
    /// The overlay is not up (everything is on the lower store) or there is no boot default.
    NotChecked,
    OnLower,
    Missing {
        target: String,
        missing: usize,
    },
    Unknown {
        target: String,
        why: String,
    },
}

impl Facts {
    /// Is the plan's primary subvolume (overlay or build) mounted?
    pub fn primary_mounted(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| self.is_mounted(&p.primary().target))
    }

    pub fn is_mounted(&self, target: &str) -> bool {
        self.seen.mounts.iter().any(|m| m.target == target && m.mounted)
    }
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Overlay => "overlay",
        Role::Build => "build",
        Role::Cache => "cache",
    }
}

/// Looks at this machine.
pub fn probe() -> Facts {
    let outcome = plan::plan(&sources::gather(&Root("/".into())));
    let c = &outcome.config;
    let all = mount::mounts();
    let plan = outcome.result.as_ref().ok().cloned();
    let mounts = plan.as_ref().map(|p| mount_status(p, &all)).unwrap_or_default();
    let mut f = Facts {
        enabled: c.enabled,
        seen: Seen {
            mode: if !c.enabled { "off".to_string() } else { c.mode.to_string() },
            decided_by: c.mode_origin.to_string(),
            summary: outcome.summary(),
            config_warnings: outcome.warnings.clone(),
            install: install_status(),
            // the plan's node: of several devices with the label, the one meant, by its UUID
            device: device_status(&c.device, plan.as_ref().map(|p| p.what.clone())),
            mounts,
            store: store_status(&all),
            daemon: daemon_status(),
            caches: c.cache_users.iter().map(|u| cache_status(u, &all)).collect(),
            internal: internal_status(),
        },
        drift: Vec::new(),
        ssd_space: None,
        boot_default: on_lower(BOOT_PROFILE),
        default_profile: on_lower(DEFAULT_PROFILE),
        enrolment_error: None,
        refusal: fs::read_to_string(paths::refusal(Path::new(ENV_FILE))).ok().map(|t| t.trim().to_string()),
        boot_fallback: boot_fallback(),
        plan,
    };
    match crate::enrol::enrolled() {
        Ok(e) => f.seen.device.enrolled = f.seen.device.uuid.as_ref().map(|u| e.contains(&u.to_ascii_lowercase())),
        Err(e) => f.enrolment_error = Some(e.to_string()),
    }
    if let Some(p) = &f.plan {
        f.drift = layout_drift(p, &f);
        f.ssd_space = ssd_space(p, &f);
    }
    f
}

/// Nix and the generator, where this machine has them.
fn install_status() -> InstallStatus {
    let daemon = nix::tool("nix-daemon");
    InstallStatus {
        nix_daemon: daemon.is_absolute().then(|| daemon.display().to_string()),
        generator: GENERATOR_DIRS
            .iter()
            .map(|d| Path::new(d).join(GENERATOR_NAME))
            .find(|p| p.exists())
            .map(|p| p.display().to_string()),
        generated: Path::new(GENERATED_SERVICE).exists(),
    }
}

fn mount_status(p: &Plan, all: &[MountInfo]) -> Vec<MountStatus> {
    p.mounts
        .iter()
        .map(|m| {
            let t = top_of(all, &m.target);
            MountStatus {
                role: role_name(m.role),
                subvolume: m.subvolume.clone(),
                target: m.target.clone(),
                mounted: t.is_some(),
                options: t.map(|t| format!("{},{}", t.options, t.super_options)),
            }
        })
        .collect()
}

fn device_status(spec: &crate::generator::config::DeviceSpec, node: Option<String>) -> DeviceStatus {
    let node = node.unwrap_or_else(|| plan::device_node(spec));
    let present = Path::new(&node).exists();
    let [fs_type, label, uuid] = if present { blkid(&node) } else { [None, None, None] };
    DeviceStatus { spec: spec.to_string(), node, present, fs_type, label, uuid, enrolled: None }
}

/// TYPE, LABEL and UUID of the device.
fn blkid(node: &str) -> [Option<String>; 3] {
    let Ok(out) = cmd::probe(Command::new("blkid").args(["-c", "/dev/null", "-o", "export", node])) else {
        return [None, None, None];
    };
    let (devs, _) = crate::generator::blkid::parse_export(&out);
    let d = devs.first();
    ["TYPE", "LABEL", "UUID"].map(|t| d.and_then(|d| d.tag(t)).map(String::from))
}

fn store_status(all: &[MountInfo]) -> StoreStatus {
    let s = top_of(all, STORE);
    StoreStatus {
        fstype: s.map(|m| m.fstype.clone()),
        overlay: s.is_some_and(overlay::ours),
        lowerdir: s.and_then(|m| m.super_option("lowerdir")).map(String::from),
        upperdir: s.and_then(|m| m.super_option("upperdir")).map(String::from),
        workdir: s.and_then(|m| m.super_option("workdir")).map(String::from),
    }
}

fn daemon_status() -> DaemonStatus {
    let pid = nix::daemon_pid();
    let (nix_config, source) = match pid {
        Some(p) => {
            (fs::read(format!("/proc/{p}/environ")).ok().and_then(|e| nix::environ_nix_config(&e)), Source::Process)
        }
        None => (fs::read_to_string(ENV_FILE).ok().and_then(|t| nix::env_file_nix_config(&t)), Source::EnvFile),
    };
    let get = |k| nix_config.as_deref().and_then(|c| nix::setting(c, k));
    DaemonStatus { running: pid.is_some(), pid, store: get("store"), build_dir: get("build-dir"), source }
}

fn cache_status(user: &str, all: &[MountInfo]) -> CacheStatus {
    let target = users::lookup(user).map(|u| format!("{}/.cache/nix", u.home.display()));
    let mounted = target.as_deref().is_some_and(|t| top_of(all, t).is_some());
    CacheStatus { user: user.to_string(), target, mounted }
}

/// Free space and the space reserve on the overlay subvolume (overlay mode, mounted).
fn ssd_space(p: &Plan, f: &Facts) -> Option<SsdSpace> {
    let o = p.mount(Role::Overlay).filter(|m| f.is_mounted(&m.target))?;
    let dir = Path::new(&o.target);
    let space = reserve::space(dir).ok()?;
    Some(SsdSpace {
        space,
        reserve_present: reserve::present(dir).is_some(),
        reserve_path: reserve::path(dir).display().to_string(),
    })
}

/// Owners and modes on the mounted SSD that differ from what `nix-ssd setup` makes and Nix
/// needs: overlay upper/work/state root-only writable, the build dir not world-writable (Nix
/// 2.30 refuses it), each cache dir owned by its user.
fn layout_drift(p: &Plan, f: &Facts) -> Vec<String> {
    let mounted = |role: Role| p.mount(role).filter(|m| f.is_mounted(&m.target));
    let mut want: Vec<(String, u32, u32)> = Vec::new(); // path, owner uid, mode
    if let Some(o) = mounted(Role::Overlay) {
        for (d, mode) in OVERLAY_DIRS {
            want.push((format!("{}/{d}", o.target), 0, mode));
        }
    }
    if let Some(b) = mounted(Role::Build) {
        want.push((b.target.clone(), 0, BUILD_DIR_MODE));
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
            let Some(uid) = users::lookup(u).map(|u| u.uid) else { continue };
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

/// The internal store's room and what nix-ssd keeps, stages and would collect there.
fn internal_status() -> InternalStatus {
    let at = if overlay::stacked().is_some() { LOWER_STORE } else { STORE };
    let space = reserve::space(Path::new(at)).unwrap_or_default();
    let pending = crate::ops::install_bootloader::pending();
    InternalStatus {
        total: space.total,
        available: space.avail,
        pinned: nix::roots(Path::new(PIN_ROOTS))
            .into_iter()
            .map(|p| p.trim_start_matches("/nix/store/").to_string())
            .collect(),
        staged: crate::pins::staged().len(),
        collectable: fs::read_to_string(LOWER_GC_WANTED)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        pending_since: pending.as_ref().map(|p| p.at),
        pending_install: pending.map(|p| p.system),
    }
}

/// The fallback note, unless the menu was rewritten since (then it is stale).
fn boot_fallback() -> Option<Fallback> {
    let f = boot_default::probe();
    if boot_default::judge(&f) == Verdict::Forget { None } else { f.fallback }
}

/// While the overlay is up: is every path of the profile's closure in the lower store (or
/// staged for it)?
fn on_lower(profile: &str) -> BootDefault {
    if overlay::stacked().is_none() {
        return BootDefault::NotChecked;
    }
    let Ok(target) = nix::store_path(profile) else { return BootDefault::NotChecked };
    let query = overlay::trusted_command("nix-store").and_then(|mut c| {
        cmd::output(c.args(["--query", "--requisites", &target]).env("NIX_REMOTE", "daemon").env_remove("NIX_CONFIG"))
    });
    let out = match query {
        Ok(o) => o,
        Err(CmdError::Failed { stderr, .. }) => return BootDefault::Unknown { target, why: stderr },
        Err(CmdError::Spawn { .. }) => return BootDefault::NotChecked,
    };
    // A path `nix-ssd pin` staged counts: the next boot moves it in before anything else
    // (the NixOS initrd, nix-ssd-pins.service), with or without the SSD.
    let staged = crate::pins::staged();
    let missing = out
        .lines()
        .map(|p| p.trim_start_matches("/nix/store/"))
        .filter(|n| !Path::new(LOWER_STORE).join(n).exists() && !staged.contains(*n))
        .count();
    if missing > 0 { BootDefault::Missing { target, missing } } else { BootDefault::OnLower }
}
