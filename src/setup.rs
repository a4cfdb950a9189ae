//! `nix-ssd setup DEVICE`: make a device ready for the generator — btrfs with the label, the
//! subvolumes, and inside the overlay subvolume the plain directories overlayfs and Nix need,
//! with owners and modes current Nix accepts. `--adopt` converts the seed's layout
//! (@upper/@work/@build/@cache) keeping every file in @upper. Every step is printed first;
//! `--dry-run` prints and stops.
use crate::activate::{self, mounts};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Layout {
    pub label: String,
    pub overlay: String,
    pub build: String,
    pub cache: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{0} already holds a {1} file system; pass --force to overwrite it (everything on it is lost), or --adopt to convert a seed-layout btrfs"
    )]
    HasFilesystem(String, String),
    #[error("{0} is mounted at {1}; unmount it first")]
    Mounted(String, String),
    #[error("{0} is not a block device or image file")]
    NotADevice(String),
    #[error("--adopt needs a btrfs device, {0} holds {1}")]
    AdoptNotBtrfs(String, String),
    #[error("`{cmd}` failed: {why}")]
    Command { cmd: String, why: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
    let what = what.into();
    move |source| SetupError::Io { what, source }
}

/// One step, printed before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Mkfs { device: String, label: String, force: bool },
    MountTop { device: String },
    Subvolume(String),
    RenameSubvolume { from: String, to: String },
    MoveInto { subvolume: String, dir: String },
    DeleteSubvolume(String),
    Dir { path: String, mode: u32 },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Mkfs { device, label, force } => {
                write!(f, "mkfs.btrfs{} -L {label} {device}", if *force { " -f" } else { "" })
            }
            Step::MountTop { device } => write!(f, "mount -o subvolid=5 {device} <private temporary mount>"),
            Step::Subvolume(s) => write!(f, "btrfs subvolume create {s}"),
            Step::RenameSubvolume { from, to } => write!(f, "mv {from} {to}   (renaming a subvolume moves no data)"),
            Step::MoveInto { subvolume, dir } => {
                write!(f, "move every entry of {subvolume} into {subvolume}/{dir}   (renames inside one subvolume)")
            }
            Step::DeleteSubvolume(s) => {
                write!(f, "btrfs subvolume delete {s}   (the old overlay workdir: overlayfs scratch only)")
            }
            Step::Dir { path, mode } => write!(f, "mkdir -m {mode:o} {path}   (owner root)"),
        }
    }
}

/// The file system on a device, as `blkid -p` sees it (None: nothing recognised).
pub fn probe_fs_type(device: &str) -> Result<Option<String>, SetupError> {
    let out = Command::new("blkid").args(["-p", "-o", "export", device]).output().map_err(io("run blkid"))?;
    // blkid exits 2 when it finds nothing
    let (devs, _) = crate::generator::blkid::parse_export(&String::from_utf8_lossy(&out.stdout));
    Ok(devs.first().and_then(|d| d.tag("TYPE")).map(String::from))
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
        steps.push(Step::MoveInto { subvolume: l.overlay.clone(), dir: "upper".into() });
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
    // upper: the store's upper layer (root-owned, like /nix/store's parent); work: overlayfs
    // scratch, root only; state: the local-overlay store's db, gcroots (root only writes it).
    for (p, mode) in [("upper", 0o755), ("work", 0o700), ("state", 0o755)] {
        steps.push(Step::Dir { path: format!("{}/{p}", l.overlay), mode });
    }
    // Nix 2.30 refuses a world-writable build dir; the daemon makes per-build dirs inside.
    steps.push(Step::Dir { path: l.build.clone(), mode: 0o755 });
    steps.push(Step::Dir { path: l.cache.clone(), mode: 0o755 });
    Ok(steps)
}

fn run(cmd: &mut Command) -> Result<(), SetupError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(io(format!("run {shown}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SetupError::Command { cmd: shown, why: String::from_utf8_lossy(&out.stderr).trim().to_string() })
    }
}

/// Checks the device, then runs (or, with `dry_run`, only prints) every step on stderr.
pub fn setup(device: &str, layout: &Layout, force: bool, adopt: bool, dry_run: bool) -> Result<(), SetupError> {
    let meta = fs::metadata(device).map_err(io(device.to_string()))?;
    if !(std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) || meta.is_file()) {
        return Err(SetupError::NotADevice(device.into()));
    }
    let canon = fs::canonicalize(device).unwrap_or_else(|_| PathBuf::from(device));
    if let Some(m) = mounts().into_iter().find(|m| Path::new(&m.source) == canon || m.source == device) {
        return Err(SetupError::Mounted(device.into(), m.target));
    }
    let fs_type = probe_fs_type(device)?;
    match (&fs_type, adopt) {
        (Some(t), true) if t != "btrfs" => return Err(SetupError::AdoptNotBtrfs(device.into(), t.clone())),
        (None, true) => return Err(SetupError::AdoptNotBtrfs(device.into(), "no file system".into())),
        (Some(t), false) if !force => return Err(SetupError::HasFilesystem(device.into(), t.clone())),
        _ => {}
    }
    // In a private mount namespace: the temporary top-level mount is never seen by anyone
    // else and vanishes with this process even if it is killed.
    if !dry_run {
        // SAFETY: plain syscalls; this process is single-threaded here.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(io("unshare(CLONE_NEWNS)")(std::io::Error::last_os_error()));
        }
        activate::mount_raw(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)
            .map_err(io("make / private"))?;
    }
    let top = PathBuf::from(format!("/run/nix-ssd-setup.{}", std::process::id()));
    let mut existing = Vec::new();
    if adopt && !dry_run {
        mount_top(device, &top)?;
        existing = list_subvolumes(&top)?;
    }
    let steps = plan(device, layout, force, adopt, &existing)?;
    for step in &steps {
        eprintln!("nix-ssd setup: {step}");
        if dry_run {
            continue;
        }
        match step {
            Step::Mkfs { device, label, force } => {
                let mut c = Command::new("mkfs.btrfs");
                c.args(["-q", "-L", label]);
                if *force {
                    c.arg("-f");
                }
                run(c.arg(device))?
            }
            Step::MountTop { device } => {
                if !activate::is_mountpoint(&top) {
                    mount_top(device, &top)?
                }
            }
            Step::Subvolume(s) => run(Command::new("btrfs").args(["-q", "subvolume", "create"]).arg(top.join(s)))?,
            Step::RenameSubvolume { from, to } => {
                fs::rename(top.join(from), top.join(to)).map_err(io(format!("rename {from} to {to}")))?
            }
            Step::MoveInto { subvolume, dir } => move_into(&top.join(subvolume), dir)?,
            Step::DeleteSubvolume(s) => {
                run(Command::new("btrfs").args(["-q", "subvolume", "delete"]).arg(top.join(s)))?
            }
            Step::Dir { path, mode } => {
                let p = top.join(path);
                if !p.is_dir() {
                    fs::DirBuilder::new().mode(*mode).create(&p).map_err(io(format!("mkdir {path}")))?;
                }
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io(format!("chmod {path}")))?;
                std::os::unix::fs::chown(&p, Some(0), Some(0)).map_err(io(format!("chown {path}")))?;
            }
        }
    }
    if !dry_run {
        let _ = activate::umount_raw(&top);
        let _ = fs::remove_dir(&top);
        eprintln!("nix-ssd setup: {device} is ready (label {})", layout.label);
    }
    Ok(())
}

fn mount_top(device: &str, top: &Path) -> Result<(), SetupError> {
    fs::DirBuilder::new().mode(0o700).recursive(true).create(top).map_err(io(format!("mkdir {}", top.display())))?;
    run(Command::new("mount").args(["-t", "btrfs", "-o", "subvolid=5", device]).arg(top))
}

fn list_subvolumes(top: &Path) -> Result<Vec<String>, SetupError> {
    let out = Command::new("btrfs")
        .args(["subvolume", "list", "-o"])
        .arg(top)
        .output()
        .map_err(io("btrfs subvolume list"))?;
    // lines: "ID 256 gen 7 top level 5 path @upper"
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(" path ").map(|(_, p)| p.trim().to_string()))
        .collect())
}

/// Moves every entry of `sub` except `dir` itself into `sub/dir` (created here).
fn move_into(sub: &Path, dir: &str) -> Result<(), SetupError> {
    let target = sub.join(dir);
    let tmp = sub.join(format!(".nix-ssd-adopt-{dir}"));
    fs::DirBuilder::new().mode(0o755).create(&tmp).map_err(io(format!("mkdir {}", tmp.display())))?;
    for e in fs::read_dir(sub).map_err(io(format!("read {}", sub.display())))?.flatten() {
        if e.path() == tmp {
            continue;
        }
        fs::rename(e.path(), tmp.join(e.file_name())).map_err(io(format!("move {}", e.path().display())))?;
    }
    fs::rename(&tmp, &target).map_err(io(format!("rename to {}", target.display())))
}
