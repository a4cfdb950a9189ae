//! `nix-ssd status`: what was decided and why, what is really mounted, and what the running
//! nix-daemon really uses. Probe ([`probe::probe`]: mounts, device, daemon, SSD space, boot
//! default) → [`Facts`] → a pure judgement ([`judge::judge`]: health and warnings) → the
//! report. Exit 0 healthy, 1 degraded (working without the SSD), 2 broken or unknown.
pub mod judge;
pub mod probe;

use serde::Serialize;

pub use judge::judge;
pub use probe::{Facts, probe};

/// Version of the JSON document; bumped on any incompatible change (documented in nix-ssd(8)).
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    /// Working, but without the SSD (or the next boot without it would not be).
    Degraded,
    Broken,
}

impl Health {
    pub fn exit_code(self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Degraded => 1,
            Health::Broken => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Broken => "broken",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: u32,
    pub health: Health,
    /// What was found, as the report shows it.
    #[serde(flatten)]
    pub seen: Seen,
    pub warnings: Vec<String>,
}

/// What `status` found that the report shows (the probe's facts without the working state).
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    /// "overlay", "build" or "off".
    pub mode: String,
    /// The input that decided the mode.
    pub decided_by: String,
    pub summary: String,
    pub config_warnings: Vec<String>,
    /// What must be installed for anything to happen.
    pub install: InstallStatus,
    pub device: DeviceStatus,
    pub mounts: Vec<MountStatus>,
    pub store: StoreStatus,
    pub daemon: DaemonStatus,
    pub caches: Vec<CacheStatus>,
    pub internal: InternalStatus,
}

/// The internal store (the lower store while the overlay is up): its room, and what nix-ssd
/// keeps there or will put there or take out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InternalStatus {
    /// The file system holding it, bytes.
    pub total: u64,
    pub available: u64,
    /// Pinned closures (the roots in /nix/var/nix/gcroots/nix-ssd-pins), store path names.
    pub pinned: Vec<String>,
    /// Paths staged for it (moved in at the next boot).
    pub staged: usize,
    /// Dropped pins whose closures the next activation with the SSD collects.
    pub collectable: Vec<String>,
    /// A new boot default a switch left to the background copy (then the boot loader), if any.
    pub pending_install: Option<String>,
    /// When that switch asked (seconds since the epoch).
    pub pending_since: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InstallStatus {
    /// nix-daemon as found (PATH, /run/current-system/sw/bin, the default profile, /usr/bin);
    /// null: Nix is not installed.
    pub nix_daemon: Option<String>,
    /// nix-ssd-generator in one of systemd's generator directories; null: not installed.
    pub generator: Option<String>,
    /// Did the generator write its units this boot (/run/systemd/generator/nix-ssd.service)?
    pub generated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceStatus {
    pub spec: String,
    pub node: String,
    pub present: bool,
    pub fs_type: Option<String>,
    pub label: Option<String>,
    /// The file system UUID (blkid).
    pub uuid: Option<String>,
    /// Is that UUID enrolled as this machine's SSD (null: not known)?
    pub enrolled: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MountStatus {
    /// "overlay", "build" or "cache".
    pub role: &'static str,
    pub subvolume: String,
    pub target: String,
    pub mounted: bool,
    pub options: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStatus {
    /// The file system on /nix/store as processes see it ("overlay", "ext4", …).
    pub fstype: Option<String>,
    /// Our overlay (see [`crate::overlay::ours`]).
    pub overlay: bool,
    pub lowerdir: Option<String>,
    pub upperdir: Option<String>,
    pub workdir: Option<String>,
}

/// Where the daemon's settings were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    #[serde(rename = "process")]
    Process,
    #[serde(rename = "env-file")]
    EnvFile,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub running: bool,
    pub pid: Option<u32>,
    /// From the daemon's NIX_CONFIG (or the env file if it has not started): the store URL,
    /// or null for Nix's default (the lower store).
    pub store: Option<String>,
    pub build_dir: Option<String>,
    pub source: Source,
}

impl DaemonStatus {
    pub fn uses_overlay(&self) -> bool {
        self.store.as_deref().is_some_and(|s| s.starts_with("local-overlay://"))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CacheStatus {
    pub user: String,
    pub target: Option<String>,
    pub mounted: bool,
}

/// Gathers the status of this machine.
pub fn status() -> Status {
    let f = probe();
    let (health, warnings) = judge(&f);
    Status { schema: SCHEMA, health, seen: f.seen, warnings }
}

impl Status {
    pub fn exit_code(&self) -> u8 {
        self.health.exit_code()
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let mut o = format!(
            "health:   {}\nmode:     {} (decided by {})\ndecision: {}\n",
            self.health.name(),
            self.seen.mode,
            self.seen.decided_by,
            self.seen.summary
        );
        let i = &self.seen.install;
        o += &format!(
            "install:  nix-daemon {}; generator {}{}\n",
            i.nix_daemon.as_deref().unwrap_or("not found"),
            i.generator.as_deref().unwrap_or("not installed"),
            if i.generator.is_some() {
                format!(", wrote its units this boot: {}", yn(i.generated))
            } else {
                String::new()
            }
        );
        let d = &self.seen.device;
        let what = if d.present {
            format!(
                "present, {} labelled {}{}",
                d.fs_type.as_deref().unwrap_or("unknown fs"),
                d.label.as_deref().unwrap_or("-"),
                match (&d.uuid, d.enrolled) {
                    (Some(u), Some(true)) => format!(", UUID {u} (enrolled)"),
                    (Some(u), Some(false)) => format!(", UUID {u} (NOT enrolled)"),
                    (Some(u), None) => format!(", UUID {u}"),
                    (None, _) => String::new(),
                }
            )
        } else {
            "absent".into()
        };
        o += &format!("device:   {} -> {}: {what}\n", d.spec, d.node);
        for m in &self.seen.mounts {
            o += &format!(
                "mount:    {} ({}) at {}: {}\n",
                m.subvolume,
                m.role,
                m.target,
                m.options.as_deref().map_or("not mounted".into(), |x| format!("mounted {x}"))
            );
        }
        o += &self.store_line();
        let dm = &self.seen.daemon;
        o += &format!(
            "daemon:   running {}{}; store {}; build-dir {} (from the {})\n",
            yn(dm.running),
            dm.pid.map_or(String::new(), |p| format!(" (pid {p})")),
            dm.store.as_deref().unwrap_or("default (internal)"),
            dm.build_dir.as_deref().unwrap_or("default"),
            if dm.source == Source::Process { "daemon's environment" } else { "env file; the daemon has not started" }
        );
        o += &self.internal_lines();
        for c in &self.seen.caches {
            o += &format!(
                "cache:    {} at {}: mounted {}\n",
                c.user,
                c.target.as_deref().unwrap_or("(no such user)"),
                yn(c.mounted)
            );
        }
        for w in self.seen.config_warnings.iter().chain(&self.warnings) {
            o += &format!("warning:  {w}\n");
        }
        o
    }

    fn internal_lines(&self) -> String {
        let i = &self.seen.internal;
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let mut o = format!(
            "internal: {:.1} GiB free of {:.1} GiB; {} pin(s), {} path(s) staged, {} dropped pin(s) to collect\n",
            gib(i.available),
            gib(i.total),
            i.pinned.len(),
            i.staged,
            i.collectable.len()
        );
        if let Some(p) = &i.pending_install {
            o += &if self.seen.store.overlay {
                format!(
                    "pending:  {p}, made the boot default by a switch, is being copied into the internal store; the boot \
                     menu names it once that is done (until then the previous default; a shutdown finishes it first)\n"
                )
            } else {
                format!(
                    "pending:  {p}, made the boot default by a switch while its closure was on the SSD, waits for the SSD: \
                     the next clean shutdown with it copies it in and writes the boot menu, which keeps the previous default \
                     until then\n"
                )
            };
        }
        o
    }

    fn store_line(&self) -> String {
        let s = &self.seen.store;
        let detail = if s.overlay {
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
        };
        format!("store:    /nix/store is {}{detail}\n", s.fstype.as_deref().unwrap_or("not a mount point"))
    }
}
