//! The decision: inputs (command line, config files, device data) → a [`Plan`] or the reason
//! there is none. Pure: no I/O here, so the generator, `nix-ssd preview` and the tests share it.
use super::blkid::Device;
use super::config::{Config, ConfigError, DeviceSpec, Mode, Origin};
use super::escape::{UNIT_NAME_MAX, encode_devnode_name, unit_name_from_path};
use super::timespan::TimeSpan;
use crate::paths::{CLI, ENV_FILE};

/// The service that stacks the overlay / wires the build dir; nix-daemon is ordered after it.
pub const SERVICE: &str = "nix-ssd.service";
/// Moves staged pins into the lower store at boot (`nix-ssd apply-pins`), with or without the SSD.
pub const PINS_SERVICE: &str = "nix-ssd-pins.service";
/// NixOS's Nix maintenance jobs; while the overlay is up they must go through the daemon.
pub const NIX_CLIENT_SERVICES: [&str; 2] = ["nix-gc.service", "nix-optimise.service"];

/// Everything the generator reads, already read.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The kernel command line, or why it could not be read.
    pub cmdline: Result<String, String>,
    /// Config files in the order they apply (main file, then drop-ins by name); masked ones
    /// are already left out.
    pub config_files: Vec<ConfigSource>,
    /// Known block devices, most trusted source first (udev database, blkid cache, export).
    pub devices: Vec<Device>,
    /// Problems met while reading device data (named source, what was skipped).
    pub device_notes: Vec<String>,
    /// The btrfs UUIDs enrolled as this machine's SSD, as far as they can be read this early
    /// (they only settle which of several devices matching the device spec is meant).
    pub enrolled: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: String,
    pub text: Result<String, String>,
}

/// What a subvolume is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Overlay,
    Build,
    Cache,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubvolMount {
    pub role: Role,
    pub subvolume: String,
    pub target: String,
    pub unit: String,
}

impl SubvolMount {
    pub fn options(&self) -> String {
        // nosuid,nodev: nothing on the SSD elevates (a setuid file, a device node)
        format!("subvol={},noatime,nosuid,nodev,nofail", self.subvolume)
    }
}

/// What the generator will write, as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub device: DeviceSpec,
    /// The device node the mounts use (`/dev/disk/by-label/NIX_SSD`).
    pub what: String,
    pub device_unit: String,
    pub device_timeout: TimeSpan,
    /// The file system type if something already knows the device.
    pub fs_type: Option<String>,
    pub mount_point: String,
    pub mounts: Vec<SubvolMount>,
    pub cache_users: Vec<String>,
    /// `SourcePath=`: the input that decided the mode, if not the built-in default.
    pub source_path: Option<String>,
}

impl Plan {
    pub fn mount(&self, role: Role) -> Option<&SubvolMount> {
        self.mounts.iter().find(|m| m.role == role)
    }

    /// The mount that must be in place for the service to do anything.
    pub fn primary(&self) -> &SubvolMount {
        let role = if self.mode == Mode::Overlay { Role::Overlay } else { Role::Build };
        // plan() always creates the primary mount for the mode
        self.mount(role).unwrap_or(&self.mounts[0])
    }

    /// The `nix-ssd activate` command line, one word per element.
    pub fn activate_argv(&self) -> Vec<String> {
        let mut v: Vec<String> = vec![CLI.into(), "activate".into(), "--mode".into(), self.mode.to_string()];
        for m in &self.mounts {
            let flag = match m.role {
                Role::Overlay => "--overlay-dir",
                Role::Build => "--build-dir",
                Role::Cache => "--cache-dir",
            };
            v.push(flag.into());
            v.push(m.target.clone());
        }
        for u in &self.cache_users {
            v.push("--cache-user".into());
            v.push(u.clone());
        }
        v.push("--env-file".into());
        v.push(ENV_FILE.into());
        v
    }

    /// `JobRunningTimeoutSec=` for the device: 0 means "do not wait", which systemd spells as
    /// the shortest time span (systemd's own 0 would mean "wait forever").
    pub fn job_timeout(&self) -> String {
        match self.device_timeout {
            TimeSpan::Usec(0) => "1us".into(),
            t => t.to_string(),
        }
    }
}

/// Why nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Disabled(Origin),
    NotBtrfs { device: String, fs_type: String },
    UnitNameTooLong(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Disabled(o) => write!(f, "disabled by {o}; writing no units"),
            Skip::NotBtrfs { device, fs_type } => write!(
                f,
                "{device} holds a file system of type {fs_type}, not btrfs; writing no units so nothing mounts it \
                 (prepare it with `nix-ssd setup`, or name the SSD with nix-ssd.device=)"
            ),
            Skip::UnitNameTooLong(p) => {
                write!(f, "{p} makes a unit name longer than {UNIT_NAME_MAX} characters; writing no units")
            }
        }
    }
}

/// The plan plus everything worth logging about how it was reached.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: Result<Plan, Skip>,
    pub config: Config,
    /// Warnings: ignored settings and unreadable inputs, each naming its input.
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The one-line summary of what was decided and why.
    pub fn summary(&self) -> String {
        match &self.result {
            Err(s) => s.to_string(),
            Ok(p) => {
                let fs = match &p.fs_type {
                    Some(t) => format!("known as {t}"),
                    None => "not known yet".into(),
                };
                format!(
                    "{} mode (from {}) on {} ({}, {fs}) at {}, device wait {}",
                    p.mode,
                    self.config.mode_origin,
                    p.device.to_string().escape_debug(),
                    p.what,
                    p.mount_point,
                    match p.device_timeout {
                        TimeSpan::Usec(0) => "none".into(),
                        TimeSpan::Infinity => "unbounded".into(),
                        t => format!("at most {t}"),
                    }
                )
            }
        }
    }
}

/// The device node udev links for a spec (systemd's `fstab_node_to_udev_node()`).
pub fn device_node(spec: &DeviceSpec) -> String {
    match spec {
        DeviceSpec::Path(p) => p.clone(),
        DeviceSpec::Tag(t, v) => format!("/dev/disk/{}/{}", t.by_dir(), encode_devnode_name(v)),
    }
}

/// Every known device that matches the spec, most trusted source first, each once (the same
/// device seen by several sources is the one with the same UUID or node).
pub fn matching_devices<'a>(devices: &'a [Device], spec: &DeviceSpec) -> Vec<&'a Device> {
    let node = device_node(spec);
    let link = node.strip_prefix("/dev/").unwrap_or(&node).to_string();
    let mut out: Vec<&Device> = Vec::new();
    for d in devices {
        let by_tag = match spec {
            DeviceSpec::Tag(t, v) => d.tag(t.name()) == Some(v.as_str()),
            DeviceSpec::Path(p) => d.devname.as_deref() == Some(p.as_str()),
        };
        let same = |o: &&Device| {
            (o.tag("UUID").is_some() && o.tag("UUID") == d.tag("UUID"))
                || (o.devname.is_some() && o.devname == d.devname)
        };
        if (by_tag || d.links.contains(&link)) && !out.iter().any(same) {
            out.push(d);
        }
    }
    out
}

/// The device meant by the spec: of several that match (two disks with one label), the
/// enrolled btrfs, else the only btrfs; else the first that matches.
pub fn find_device<'a>(devices: &'a [Device], spec: &DeviceSpec, enrolled: &[String]) -> Option<&'a Device> {
    let all = matching_devices(devices, spec);
    let btrfs: Vec<&Device> = all.iter().copied().filter(|d| d.tag("TYPE") == Some("btrfs")).collect();
    let is_enrolled = |d: &&Device| d.tag("UUID").is_some_and(|u| enrolled.iter().any(|e| e.eq_ignore_ascii_case(u)));
    btrfs
        .iter()
        .copied()
        .find(is_enrolled)
        .or(if btrfs.len() == 1 { Some(btrfs[0]) } else { None })
        .or(all.first().copied())
}

/// A device as the log names it: `/dev/sdb1 (vfat, UUID …)`.
fn shown(d: &Device) -> String {
    format!(
        "{} ({}{})",
        d.devname.as_deref().unwrap_or("?"),
        d.tag("TYPE").unwrap_or("no file system"),
        d.tag("UUID").map(|u| format!(", UUID {u}")).unwrap_or_default()
    )
}

/// When several known devices match the spec, the one meant is named by its UUID (udev's
/// `by-label` link points at whichever it saw last). Returns the node and a note.
fn disambiguate(c: &Config, devices: &[Device], enrolled: &[String]) -> (String, Option<String>) {
    let all = matching_devices(devices, &c.device);
    let chosen = find_device(devices, &c.device, enrolled);
    // decisive only if it is enrolled or the only btrfs: between foreign ones udev's link decides
    let btrfs = all.iter().filter(|d| d.tag("TYPE") == Some("btrfs")).count();
    let decisive = chosen
        .and_then(|d| d.tag("UUID"))
        .is_some_and(|u| btrfs == 1 || enrolled.iter().any(|e| e.eq_ignore_ascii_case(u)));
    let uuid = chosen.filter(|d| decisive && d.tag("TYPE") == Some("btrfs")).and_then(|d| d.tag("UUID"));
    match (all.len(), chosen, uuid) {
        (2.., Some(d), Some(u)) => (
            format!("/dev/disk/by-uuid/{}", encode_devnode_name(u)),
            Some(format!(
                "{} matches {} devices ({}): using {} by its UUID",
                c.device,
                all.len(),
                all.iter().map(|d| shown(d)).collect::<Vec<_>>().join(", "),
                shown(d)
            )),
        ),
        (2.., _, _) => (
            device_node(&c.device),
            Some(format!(
                "{} matches {} devices ({}) and none is an enrolled btrfs; `nix-ssd activate` uses only an enrolled one",
                c.device,
                all.len(),
                all.iter().map(|d| shown(d)).collect::<Vec<_>>().join(", ")
            )),
        ),
        _ => (device_node(&c.device), None),
    }
}

/// Decides what to generate.
pub fn plan(inputs: &Inputs) -> Outcome {
    let mut config = Config::default();
    let mut warnings: Vec<String> = Vec::new();
    let mut push = |errs: Vec<ConfigError>| warnings.extend(errs.iter().map(ToString::to_string));
    for f in &inputs.config_files {
        match &f.text {
            Ok(t) => push(config.apply_file(&f.path, t)),
            Err(why) => push(vec![ConfigError::Unreadable { path: f.path.clone(), why: why.clone() }]),
        }
    }
    match &inputs.cmdline {
        Ok(line) => push(config.apply_cmdline(line)),
        Err(why) => warnings.push(format!("cannot read the kernel command line ({why}); using the config files only")),
    }
    warnings.extend(inputs.device_notes.iter().cloned());
    let result = decide(&config, &inputs.devices, &inputs.enrolled, &mut warnings);
    Outcome { result, config, warnings }
}

fn decide(c: &Config, devices: &[Device], enrolled: &[String], warnings: &mut Vec<String>) -> Result<Plan, Skip> {
    if !c.enabled {
        return Err(Skip::Disabled(c.mode_origin.clone()));
    }
    let (what, note) = disambiguate(c, devices, enrolled);
    warnings.extend(note);
    let fs_type = find_device(devices, &c.device, enrolled).and_then(|d| d.tag("TYPE")).map(String::from);
    if let Some(t) = &fs_type
        && t != "btrfs"
    {
        return Err(Skip::NotBtrfs { device: c.device.to_string(), fs_type: t.clone() });
    }
    let device_unit = unit_name_from_path(&what, "device");
    // The drop-in directory `<unit>.d` must fit a file name too.
    if device_unit.len() + ".d".len() > UNIT_NAME_MAX {
        return Err(Skip::UnitNameTooLong(what));
    }
    let mut roles = vec![(Role::Overlay, &c.overlay_subvolume, "overlay"), (Role::Build, &c.build_subvolume, "build")];
    if c.mode == Mode::Build {
        roles.remove(0);
    }
    if !c.cache_users.is_empty() {
        roles.push((Role::Cache, &c.cache_subvolume, "cache"));
    }
    let mut mounts = Vec::new();
    for (role, subvolume, dir) in roles {
        let target = format!("{}/{dir}", c.mount_point);
        let unit = unit_name_from_path(&target, "mount");
        if unit.len() > UNIT_NAME_MAX {
            return Err(Skip::UnitNameTooLong(target));
        }
        mounts.push(SubvolMount { role, subvolume: subvolume.clone(), target, unit });
    }
    let source_path = if c.origins.contains(&Origin::Cmdline) {
        Some("/proc/cmdline".to_string())
    } else {
        c.origins.iter().rev().find_map(|o| match o {
            Origin::File(p) => Some(p.clone()),
            _ => None,
        })
    };
    Ok(Plan {
        mode: c.mode,
        device: c.device.clone(),
        what,
        device_unit,
        device_timeout: c.device_timeout,
        fs_type,
        mount_point: c.mount_point.clone(),
        mounts,
        cache_users: c.cache_users.clone(),
        source_path,
    })
}
