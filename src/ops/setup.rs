//! `nix-ssd setup DEVICE`: make a device ready for the generator — btrfs with the label, the
//! subvolumes, and inside the overlay subvolume the plain directories overlayfs and Nix need,
//! with owners and modes current Nix accepts. `--adopt` converts an older layout with separate
//! @upper/@work subvolumes (@upper/@work/@build/@cache, as an earlier hand-made setup had it)
//! keeping every file in @upper. Every step is reported before it runs; `--dry-run` reports and
//! stops.
use super::Progress;
use crate::generator::config::{DeviceSpec, Tag};
use crate::paths::{BUILD_DIR_MODE, CACHE_DIR_MODE, ENROLLED, OVERLAY_DIRS, SETUP_TOP, TOKEN_NAME, TOKENS, UPPER};
use crate::sys::mount::{self, enter_private_namespace, is_mountpoint, mounts};
use crate::sys::{CmdError, Context, IoError, cmd};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Layout {
    /// The configured device (`device=`): the label made must be one it matches.
    pub device: DeviceSpec,
    pub label: String,
    pub overlay: String,
    pub build: String,
    pub cache: String,
}

impl Layout {
    /// The subvolumes, each of which carries the enrolment token at its root.
    pub fn subvolumes(&self) -> [&str; 3] {
        [&self.overlay, &self.build, &self.cache]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{0} already holds a {1} file system; pass --force to overwrite it (everything on it is lost), or --adopt to convert a btrfs with @upper/@work subvolumes"
    )]
    HasFilesystem(String, String),
    #[error(
        "{0} holds a partition table ({1}): name one of its partitions (lsblk {0}), or pass --force to overwrite the whole disk (every partition on it is lost)"
    )]
    HasPartitionTable(String, String),
    #[error("{0}: no such device or file")]
    Missing(String),
    #[error(
        "the configuration names the SSD {configured}, which a file system labelled {label:?} would never match: \
         set device = LABEL={label} in nix-ssd-generator.conf (services.nix-ssd.device on NixOS) first, or leave out --label"
    )]
    LabelNeverMatched { configured: String, label: String },
    #[error("{0} is mounted at {1}; unmount it first")]
    Mounted(String, String),
    #[error("{0} is not a block device or image file")]
    NotADevice(String),
    #[error("--adopt needs a btrfs device, {0} holds {1}")]
    AdoptNotBtrfs(String, String),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Enrol(#[from] crate::enrol::EnrolError),
}

/// One step, printed before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Mkfs {
        device: String,
        label: String,
        force: bool,
    },
    MountTop {
        device: String,
    },
    Subvolume(String),
    RenameSubvolume {
        from: String,
        to: String,
    },
    MoveInto {
        subvolume: String,
        dir: String,
    },
    DeleteSubvolume(String),
    Dir {
        path: String,
        mode: u32,
    },
    /// Record the file system's UUID as this machine's SSD and bind it: a new enrolment token
    /// on the internal disk and at the root of each of these subvolumes.
    Enrol {
        subvolumes: Vec<String>,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Mkfs { device, label, force } => {
                write!(f, "mkfs.btrfs{} -L {label} {device}", if *force { " -f" } else { "" })
            }
            Step::MountTop { device } => {
                write!(f, "mount -o subvolid=5,nosuid,nodev,noexec {device} <private temporary mount>")
            }
            Step::Subvolume(s) => write!(f, "btrfs subvolume create {s}"),
            Step::RenameSubvolume { from, to } => write!(f, "mv {from} {to}   (renaming a subvolume moves no data)"),
            Step::MoveInto { subvolume, dir } => {
                write!(f, "move every entry of {subvolume} into {subvolume}/{dir}   (renames inside one subvolume)")
            }
            Step::DeleteSubvolume(s) => {
                write!(f, "btrfs subvolume delete {s}   (the old overlay workdir: overlayfs scratch only)")
            }
            Step::Dir { path, mode } => write!(f, "mkdir -m {mode:o} {path}   (owner root)"),
            Step::Enrol { subvolumes } => write!(
                f,
                "record the btrfs UUID in {ENROLLED} and a new enrolment token in {TOKENS} and in {}   \
                 (this machine stacks only the SSDs enrolled and bound so)",
                subvolumes.iter().map(|s| format!("{s}/{TOKEN_NAME}")).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// What `blkid -p` reads from the device itself (None: nothing recognised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// TYPE: a file system, RAID or LVM member, swap, …
    pub fs_type: Option<String>,
    /// UUID of that file system.
    pub uuid: Option<String>,
    /// PTTYPE: a partition table (dos, gpt, …) on a whole disk.
    pub pt_type: Option<String>,
}

/// The signatures on a device, as `blkid -p` reads them from the device itself.
pub fn probe(device: &str) -> Result<Signature, CmdError> {
    // blkid exits 2 when it finds nothing
    let out = cmd::probe(Command::new("blkid").args(["-p", "-o", "export", device]))?;
    let (devs, _) = crate::generator::blkid::parse_export(&out);
    let tag = |t: &str| devs.first().and_then(|d| d.tag(t)).map(String::from);
    Ok(Signature { fs_type: tag("TYPE"), uuid: tag("UUID"), pt_type: tag("PTTYPE") })
}

/// Refuses a label that the configured device would never match (`device = LABEL=A` and
/// `--label B`): the SSD would be made and never used.
pub fn check_label(configured: &DeviceSpec, label: &str) -> Result<(), SetupError> {
    match configured {
        DeviceSpec::Tag(Tag::Label, l) if l != label => {
            Err(SetupError::LabelNeverMatched { configured: configured.to_string(), label: label.into() })
        }
        _ => Ok(()),
    }
}

/// Is `device` there, and a block device or an image file?
pub fn check_exists(device: &str) -> Result<(), SetupError> {
    let meta = match fs::metadata(device) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SetupError::Missing(device.into())),
        m => m.ctx(device.to_string())?,
    };
    if !(std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) || meta.is_file()) {
        return Err(SetupError::NotADevice(device.into()));
    }
    Ok(())
}

/// The steps for a device, checked against what is on it now.
pub fn plan(
    device: &str,
    layout: &Layout,
    force: bool,
    adopt: bool,
    existing: &[String],
) -> Result<Vec<Step>, SetupError> {
    let mut steps = Vec::new();
    let has = |s: &str| existing.iter().any(|e| e == s);
    let l = layout;
    if !adopt {
        steps.push(Step::Mkfs { device: device.into(), label: l.label.clone(), force });
    }
    steps.push(Step::MountTop { device: device.into() });
    if adopt && has("@upper") && !has(&l.overlay) {
        steps.push(Step::RenameSubvolume { from: "@upper".into(), to: l.overlay.clone() });
        steps.push(Step::MoveInto { subvolume: l.overlay.clone(), dir: UPPER.into() });
        if has("@work") {
            steps.push(Step::DeleteSubvolume("@work".into()));
        }
    } else if !(adopt && has(&l.overlay)) {
        steps.push(Step::Subvolume(l.overlay.clone()));
    }
    for s in [&l.build, &l.cache] {
        if !(adopt && has(s)) {
            steps.push(Step::Subvolume(s.clone()));
        }
    }
    for (p, mode) in OVERLAY_DIRS {
        steps.push(Step::Dir { path: format!("{}/{p}", l.overlay), mode });
    }
    steps.push(Step::Dir { path: l.build.clone(), mode: BUILD_DIR_MODE });
    steps.push(Step::Dir { path: l.cache.clone(), mode: CACHE_DIR_MODE });
    steps.push(Step::Enrol { subvolumes: layout.subvolumes().iter().map(|s| s.to_string()).collect() });
    Ok(steps)
}

fn run(c: &mut Command) -> Result<(), SetupError> {
    cmd::output(c).map(|_| ()).map_err(SetupError::from)
}

/// Checks the device, then runs (or, with `dry_run`, only reports) every step, each reported
/// to `progress` before it runs.
pub fn setup(
    device: &str,
    layout: &Layout,
    force: bool,
    adopt: bool,
    dry_run: bool,
    progress: Progress,
) -> Result<(), SetupError> {
    check_label(&layout.device, &layout.label)?;
    check_device(device, force, adopt)?;
    if dry_run {
        for step in &plan(device, layout, force, adopt, &[])? {
            progress(&step.to_string());
        }
        return Ok(());
    }
    // In a private mount namespace: the temporary top-level mount is never seen by anyone
    // else and vanishes with this process even if it is killed.
    enter_private_namespace()?;
    let top = PathBuf::from(format!("{SETUP_TOP}.{}", std::process::id()));
    let done = run_steps(device, layout, force, adopt, &top, progress);
    // Whatever happened: nothing is left mounted or behind in /run.
    let _ = mount::umount(&top);
    let _ = fs::remove_dir(&top);
    done?;
    progress(&format!("{device} is ready (label {})", layout.label));
    Ok(())
}

fn run_steps(
    device: &str,
    layout: &Layout,
    force: bool,
    adopt: bool,
    top: &Path,
    progress: Progress,
) -> Result<(), SetupError> {
    let mut existing = Vec::new();
    if adopt {
        mount_top(device, top)?;
        existing = list_subvolumes(top)?;
    }
    for step in &plan(device, layout, force, adopt, &existing)? {
        progress(&step.to_string());
        run_step(step, top)?;
    }
    Ok(())
}

/// Refuses what is not a device or image, what is mounted, and a file system or partition
/// table that `force` or `adopt` does not allow.
fn check_device(device: &str, force: bool, adopt: bool) -> Result<(), SetupError> {
    check_exists(device)?;
    let canon = fs::canonicalize(device).unwrap_or_else(|_| PathBuf::from(device));
    if let Some(m) = mounts().into_iter().find(|m| Path::new(&m.source) == canon || m.source == device) {
        return Err(SetupError::Mounted(device.into(), m.target));
    }
    let sig = probe(device)?;
    match (sig.fs_type, sig.pt_type, adopt) {
        (Some(t), _, true) if t != "btrfs" => Err(SetupError::AdoptNotBtrfs(device.into(), t)),
        (None, _, true) => Err(SetupError::AdoptNotBtrfs(device.into(), "no file system".into())),
        (Some(t), _, false) if !force => Err(SetupError::HasFilesystem(device.into(), t)),
        (None, Some(p), false) if !force => Err(SetupError::HasPartitionTable(device.into(), p)),
        _ => Ok(()),
    }
}

/// Does one step, with the file system's top level mounted at `top`.
fn run_step(step: &Step, top: &Path) -> Result<(), SetupError> {
    match step {
        Step::Mkfs { device, label, force } => {
            let mut c = Command::new("mkfs.btrfs");
            c.args(["-q", "-L", label]);
            if *force {
                c.arg("-f");
            }
            run(c.arg(device))
        }
        Step::MountTop { device } if !is_mountpoint(top) => mount_top(device, top),
        Step::MountTop { .. } => Ok(()),
        Step::Subvolume(s) => run(Command::new("btrfs").args(["-q", "subvolume", "create"]).arg(top.join(s))),
        Step::RenameSubvolume { from, to } => {
            Ok(fs::rename(top.join(from), top.join(to)).ctx(format!("rename {from} to {to}"))?)
        }
        Step::MoveInto { subvolume, dir } => move_into(&top.join(subvolume), dir),
        Step::DeleteSubvolume(s) => run(Command::new("btrfs").args(["-q", "subvolume", "delete"]).arg(top.join(s))),
        Step::Dir { path, mode } => {
            let p = top.join(path);
            if !p.is_dir() {
                fs::DirBuilder::new().mode(*mode).create(&p).ctx(format!("mkdir {path}"))?;
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).ctx(format!("chmod {path}"))?;
            std::os::unix::fs::chown(&p, Some(0), Some(0)).ctx(format!("chown {path}"))?;
            Ok(())
        }
        Step::Enrol { subvolumes } => {
            // a file system made (or adopted) now gets a new token, whatever it carried
            for s in subvolumes {
                let _ = fs::remove_file(top.join(s).join(TOKEN_NAME));
            }
            crate::enrol::enrol_at(top, &subvolumes.iter().map(String::as_str).collect::<Vec<_>>())?;
            Ok(())
        }
    }
}

/// Mounts the file system's top level (subvolid=5) at `top`, made root-only if missing; a
/// failed mount leaves no directory behind.
pub fn mount_top(device: &str, top: &Path) -> Result<(), SetupError> {
    fs::DirBuilder::new().mode(0o700).recursive(true).create(top).ctx(format!("mkdir {}", top.display()))?;
    let mounted =
        run(Command::new("mount").args(["-t", "btrfs", "-o", "subvolid=5,nosuid,nodev,noexec", device]).arg(top));
    if mounted.is_err() {
        let _ = fs::remove_dir(top);
    }
    mounted
}

fn list_subvolumes(top: &Path) -> Result<Vec<String>, SetupError> {
    let out = cmd::probe(Command::new("btrfs").args(["subvolume", "list", "-o"]).arg(top))?;
    // lines: "ID 256 gen 7 top level 5 path @upper"
    Ok(out.lines().filter_map(|l| l.split_once(" path ").map(|(_, p)| p.trim().to_string())).collect())
}

/// Moves every entry of `sub` except `dir` itself into `sub/dir` (created here).
fn move_into(sub: &Path, dir: &str) -> Result<(), SetupError> {
    let target = sub.join(dir);
    let tmp = sub.join(format!(".nix-ssd-adopt-{dir}"));
    fs::DirBuilder::new().mode(0o755).create(&tmp).ctx(format!("mkdir {}", tmp.display()))?;
    for e in fs::read_dir(sub).ctx(format!("read {}", sub.display()))?.flatten() {
        if e.path() == tmp {
            continue;
        }
        fs::rename(e.path(), tmp.join(e.file_name())).ctx(format!("move {}", e.path().display()))?;
    }
    Ok(fs::rename(&tmp, &target).ctx(format!("rename to {}", target.display()))?)
}
