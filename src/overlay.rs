//! The overlay on /nix/store: whether one is ours, the `local-overlay://` store URL that names
//! it to Nix, and where it is mounted, guarded and remounted. "Ours" means an overlayfs whose
//! lower layer is the private read-only bind [`LOWER_STORE`] that [`stack`] makes (a root file
//! system that is itself an overlay, as in containers, is not).
use crate::generator::escape::url_encode;
use crate::nix;
use crate::paths::{
    ENV_FILE, LOWER_DB_DIR, LOWER_ROOTS, LOWER_STATE, LOWER_STORE, QUARANTINE, REMOUNT_HOOK_NAME, SHARED_ROOTS, STATE,
    STORE, UPPER, WORK,
};
use crate::sys::fs::{child_dir, open_dir_at, set_xattr};
use crate::sys::mount::{self, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REMOUNT, MountInfo};
use crate::sys::{CmdError, Context, IoError};
use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Is this mount our overlay?
pub fn ours(m: &MountInfo) -> bool {
    m.fstype == "overlay" && m.super_option("lowerdir") == Some(LOWER_STORE)
}

/// Our overlay as it is stacked on /nix/store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stacked {
    pub upper: PathBuf,
    pub work: Option<PathBuf>,
}

impl Stacked {
    /// The overlay subvolume's directory (holds upper/, work/, state/, reserve).
    pub fn overlay_dir(&self) -> Option<&Path> {
        self.upper.parent()
    }
}

/// Our overlay in a mount table, if it is the top mount on /nix/store.
pub fn stacked_in(all: &[MountInfo]) -> Option<Stacked> {
    let m = mount::top_of(all, STORE).filter(|m| ours(m))?;
    Some(Stacked { upper: m.super_option("upperdir")?.into(), work: m.super_option("workdir").map(PathBuf::from) })
}

/// Our overlay on /nix/store right now, if it is up.
pub fn stacked() -> Option<Stacked> {
    stacked_in(&mount::mounts())
}

/// The `local-overlay://` store URL for an overlay at `upper` with state in `state`.
pub fn store_url(upper: &Path, state: &Path, remount_hook: Option<&Path>) -> String {
    let lower = format!("local://?real={LOWER_STORE}&state={LOWER_STATE}&read-only=true");
    let mut url = format!(
        "local-overlay://?lower-store={}&upper-layer={}&state={}",
        url_encode(&lower),
        upper.display(),
        state.display()
    );
    if let Some(h) = remount_hook {
        url += &format!("&remount-hook={}", h.display());
    }
    url
}

/// A client of the overlay store while it is up, for a Nix tool run as root from the lower
/// layer ([`trusted_command`]): through nix-daemon while it runs, else (at shutdown, after the
/// daemon stopped) opening the store directly with the daemon's own settings from its env file
/// — root's default store would open the lower database instead. The second value names that
/// store for `nix copy --from`. None when the env file names no overlay store.
pub fn store_client(tool: &str) -> Result<Option<(Command, String)>, CmdError> {
    let mut c = trusted_command(tool)?;
    if nix::daemon_pid().is_some() {
        c.env("NIX_REMOTE", "daemon").env_remove("NIX_CONFIG");
        return Ok(Some((c, "daemon".into())));
    }
    let Some(nix_config) = fs::read_to_string(ENV_FILE)
        .ok()
        .and_then(|t| nix::env_file_nix_config(&t))
        .filter(|c| c.contains("local-overlay://"))
    else {
        return Ok(None);
    };
    let Some(url) = nix::setting(&nix_config, "store") else { return Ok(None) };
    c.env_remove("NIX_REMOTE").env("NIX_CONFIG", &nix_config);
    Ok(Some((c, url)))
}

/// A command for the Nix tool `name` that is safe to run as root while our overlay may be up:
/// a tool that resolves into /nix/store runs from the lower layer, so a program only the SSD
/// brings (an upper-layer path) is never run. Without our overlay it is [`nix::command`].
pub fn trusted_command(name: &str) -> Result<Command, CmdError> {
    if stacked().is_none() {
        return Ok(nix::command(name));
    }
    let tool = nix::tool(name);
    let real = fs::canonicalize(&tool).unwrap_or_else(|_| tool.clone());
    match real.strip_prefix(STORE) {
        // outside the store (Debian's /usr/bin/nix-store, a link to the multi-call `nix`): as found
        Err(_) => Ok(Command::new(tool)),
        Ok(rel) => {
            let lower = Path::new(LOWER_STORE).join(rel);
            if lower.is_file() {
                // argv[0] keeps the tool's name: `nix` is a multi-call program
                let mut c = Command::new(&lower);
                c.arg0(name);
                Ok(c)
            } else {
                Err(CmdError::Spawn {
                    cmd: tool.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!("{} is only on the SSD (upper layer): not running it as root", real.display()),
                    ),
                })
            }
        }
    }
}

/// The remount hook Nix calls after deleting a path from the upper layer directly: a link
/// named `nix-ssd-remount-hook` next to this program (dispatched on argv[0]).
pub fn remount_hook_path() -> Option<PathBuf> {
    let p = std::env::current_exe().ok()?.with_file_name(REMOUNT_HOOK_NAME);
    p.exists().then_some(p)
}

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// The SSD is not laid out for the overlay: nothing is mounted, the store stays as it is.
    #[error("overlay mode needs {0}: {1}")]
    Layout(String, &'static str),
    /// An SSD directory someone other than root could change: nothing is mounted.
    #[error(
        "{0} is owned by uid {1} with mode {2:o}: it must be root's and writable by nobody else (`nix-ssd setup` makes it so)"
    )]
    Owner(String, u32, u32),
}

/// Checks the overlay layout before anything of it is used: the overlay directory and its
/// upper/, work/ and state/ are real directories (no symlink on the way: a descriptor walk with
/// O_NOFOLLOW), upper/work/state on the very mount of the directory (overlayfs needs upper and
/// work on one file system; a btrfs subvolume inside would give EXDEV on every copy-up), all
/// owned by root and writable by nobody else.
pub fn check_layout(dir: &Path) -> Result<(), OverlayError> {
    let top = open_dir_at(None, dir, false).ctx(format!("open {} (no symlinks)", dir.display()))?;
    let top_meta = root_only(&top, dir)?;
    for sub in [UPPER, WORK, STATE] {
        let p = dir.join(sub);
        let fd = match open_dir_at(Some(&top), Path::new(sub), false) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OverlayError::Layout(
                    p.display().to_string(),
                    "it is missing; create it with `nix-ssd setup`",
                ));
            }
            Err(_) => {
                return Err(OverlayError::Layout(p.display().to_string(), "it is not a directory (or a symlink)"));
            }
        };
        if root_only(&fd, &p)?.dev() != top_meta.dev() {
            return Err(OverlayError::Layout(
                p.display().to_string(),
                "it is a separate subvolume or mount; it must be a plain directory in the same subvolume",
            ));
        }
    }
    Ok(())
}

/// The directory open as `fd` is root's and writable by nobody else; its metadata.
pub fn root_only(fd: &OwnedFd, shown: &Path) -> Result<fs::Metadata, OverlayError> {
    let m = fs::File::from(fd.try_clone().ctx(format!("dup {}", shown.display()))?)
        .metadata()
        .ctx(format!("stat {}", shown.display()))?;
    if m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(OverlayError::Owner(shown.display().to_string(), m.uid(), m.mode() & 0o7777));
    }
    Ok(m)
}

/// What [`quarantine_shadows`] found and moved.
#[derive(Debug, Default)]
pub struct Shadows {
    /// Upper-layer entries looked at.
    pub checked: usize,
    /// Entries that had the name of a lower-store entry (or were whiteouts), moved aside.
    pub moved: Vec<String>,
    /// Upper copies of paths a pin copied into the lower store (their names given), deleted.
    pub dropped: Vec<String>,
    pub elapsed: Duration,
    /// Where they went.
    pub quarantine: PathBuf,
}

/// Moves aside, into `quarantine/<unix time>/` of the overlay directory, every entry of the
/// upper layer that would hide or change something of the lower store once stacked: an entry
/// whose name the lower store has (a file under an existing store path, a replaced path, an
/// opaque directory) and a whiteout (which deletes a lower path from view). Only the lower
/// store's copy is then seen. Nix itself makes such duplicates: `nix-ssd pin` copies upper
/// paths into the lower store, and they stay in the upper layer until `nix-store --optimise`
/// drops them. Entries of `.links` (Nix's hard-link pool) are checked one by one. Must run
/// before stacking, while `lower` is the lower store. An entry named in `copies` (paths a pin
/// copied from this upper layer into the lower store: the lower copy is the same path, and is
/// what would be seen anyway) is deleted instead of being kept.
pub fn quarantine_shadows(dir: &Path, lower: &Path, copies: &BTreeSet<String>) -> Result<Shadows, IoError> {
    let t0 = Instant::now();
    let upper = dir.join(UPPER);
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut out = Shadows { quarantine: dir.join(QUARANTINE).join(stamp.to_string()), ..Default::default() };
    let move_aside = |from: PathBuf, name: String, out: &mut Shadows| -> Result<(), IoError> {
        let bin = &out.quarantine;
        fs::DirBuilder::new().mode(0o700).recursive(true).create(bin).ctx(format!("mkdir {}", bin.display()))?;
        let to = bin.join(name.replace('/', "%"));
        fs::rename(&from, &to).ctx(format!("move {} to {}", from.display(), to.display()))?;
        out.moved.push(name);
        Ok(())
    };
    for e in fs::read_dir(&upper).ctx(format!("read {}", upper.display()))?.flatten() {
        out.checked += 1;
        let name = e.file_name().to_string_lossy().into_owned();
        let whiteout = e.file_type().is_ok_and(|t| t.is_char_device());
        let in_lower = fs::symlink_metadata(lower.join(&name)).is_ok();
        // a real directory only: read_dir would follow a symlink planted under that name (it
        // is moved aside below like any other shadowing entry)
        if name == LINKS && in_lower && e.file_type().is_ok_and(|t| t.is_dir()) {
            for l in fs::read_dir(e.path()).ctx(format!("read {}", e.path().display()))?.flatten() {
                out.checked += 1;
                let n = l.file_name().to_string_lossy().into_owned();
                if fs::symlink_metadata(lower.join(LINKS).join(&n)).is_ok() {
                    move_aside(l.path(), format!("{LINKS}/{n}"), &mut out)?;
                }
            }
        } else if in_lower && !whiteout && copies.contains(&name) {
            let p = e.path();
            let r = if e.file_type().is_ok_and(|t| t.is_dir()) { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            r.ctx(format!("delete the upper copy {}", p.display()))?;
            out.dropped.push(name);
        } else if in_lower || whiteout {
            move_aside(e.path(), name, &mut out)?;
        }
    }
    out.elapsed = t0.elapsed();
    Ok(out)
}

/// Nix's hard-link pool in the store (`nix-store --optimise`, `auto-optimise-store`).
pub const LINKS: &str = ".links";
/// The xattr that makes an upper directory hide the lower directory of its name.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Makes the upper layer's `.links` opaque, so that the overlay store sees its own hard-link
/// pool and not the lower store's (no store path is hidden: only the pool). Measured on the
/// native bench's board store (44 000 pooled files): Nix's GC lstat's every `.links` entry it
/// sees after deleting (`removeUnusedLinks`), and each lower entry is a lookup in both layers
/// through the overlay, with xattr probes on each; and optimising a new file whose content the
/// lower pool holds would hard-link the lower entry, which overlayfs copies up whole first. The
/// lower pool stays the lower store's (its own GC, while the SSD is absent). Before stacking.
pub fn hide_lower_links(dir: &Path) -> Result<(), IoError> {
    let upper = dir.join(UPPER);
    let fd = open_dir_at(None, &upper, false).ctx(format!("open {} (no symlinks)", upper.display()))?;
    let links = child_dir(&fd, LINKS, 0o755, 0, 0).ctx(format!("mkdir {}/{LINKS}", upper.display()))?;
    set_xattr(&links, OPAQUE_XATTR, b"y").ctx(format!("make {}/{LINKS} opaque", upper.display()))
}

/// Stacks the upper layer in `dir` on /nix/store: binds the lower store read-only and private
/// at [`LOWER_STORE`], then mounts the overlay. Undoes the bind if the overlay fails. Returns
/// the overlay's options.
pub fn stack(dir: &Path) -> Result<String, IoError> {
    let store = Path::new(STORE);
    let lower = Path::new(LOWER_STORE);
    fs::DirBuilder::new().mode(0o755).recursive(true).create(lower).ctx(format!("mkdir {LOWER_STORE}"))?;
    let fresh_lower = !mount::is_mountpoint(lower);
    if fresh_lower {
        mount::bind(store, lower).ctx(format!("bind {STORE} on {LOWER_STORE}"))?;
        let ro = mount::remount_bind(lower, MS_RDONLY)
            .ctx(format!("remount {LOWER_STORE} read-only"))
            // Under systemd / is shared: without this the overlay mounted on /nix/store would
            // propagate onto the lower bind too, and the "lower store" would be the merged view.
            .and_then(|()| mount::propagation(lower, MS_PRIVATE).ctx(format!("make {LOWER_STORE} private")));
        if let Err(e) = ro {
            let _ = mount::umount(lower);
            return Err(e);
        }
    }
    let (upper, work) = (dir.join(UPPER), dir.join(WORK));
    let base = format!("lowerdir={LOWER_STORE},upperdir={},workdir={}", upper.display(), work.display());
    // Nothing on the SSD may elevate (nosuid, nodev), and overlayfs must not follow redirects
    // or metacopy references that a tampered upper layer could carry (kernels without these
    // options get the base ones).
    let hardened = format!("{base},{OVERLAY_HARDENING}");
    let flags = MS_NOSUID | MS_NODEV;
    let overlay = |o: &str| mount::mount(Some(Path::new("overlay")), store, Some("overlay"), flags, Some(o));
    let opts = match overlay(&hardened) {
        Ok(()) => hardened,
        Err(_) => match overlay(&base) {
            Ok(()) => base,
            Err(e) => {
                if fresh_lower {
                    let _ = mount::umount(lower);
                }
                return Err(IoError::new(format!("mount -t overlay -o {base} overlay {STORE} failed"), e));
            }
        },
    };
    // Read-only for everyone but the daemon, as NixOS has /nix/store: Nix remounts it writable
    // in its own mount namespace (LocalStore::makeStoreWritable).
    mount::remount_bind(store, MS_RDONLY | MS_NOSUID | MS_NODEV).ctx(format!("remount {STORE} read-only"))?;
    Ok(opts)
}

/// Lets the overlay store see the lower store's GC roots. Nix's `local-overlay://` store takes
/// its roots from its own `state=` on the SSD (`gcroots/`, searched recursively, and
/// `profiles/`), so a path only the internal disk roots (NixOS's current-system after a
/// `nixos-rebuild test`, a system generation, a root made while the SSD was absent) would be
/// garbage to the daemon's GC. Binds [`crate::paths::LOWER_GCROOTS`] and
/// [`crate::paths::LOWER_PROFILES`] read-only into
/// `state/gcroots` (see [`SHARED_ROOTS`]): one set of roots, kept on the internal disk, that the
/// daemon can read but not change — all but sync-roots' [`LOWER_ROOTS`], which only the lower
/// store's GC may see. Returns the binds made (none when already there).
pub fn share_lower_roots(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    let state = dir.join(STATE);
    let fd = open_dir_at(None, &state, false).ctx(format!("open {} (no symlinks)", state.display()))?;
    let gcroots = child_dir(&fd, "gcroots", 0o755, 0, 0).ctx(format!("mkdir {}/gcroots", state.display()))?;
    let mut made = Vec::new();
    for (name, src) in SHARED_ROOTS {
        let target = state.join("gcroots").join(name);
        if mount::is_mountpoint(&target) {
            continue;
        }
        fs::DirBuilder::new().mode(0o755).recursive(true).create(src).ctx(format!("mkdir {src}"))?;
        // made now, so that it is there to hide below (sync-roots fills it later)
        fs::DirBuilder::new().mode(0o755).recursive(true).create(LOWER_ROOTS).ctx(format!("mkdir {LOWER_ROOTS}"))?;
        let at = child_dir(&gcroots, name, 0o755, 0, 0).ctx(format!("mkdir {}", target.display()))?;
        let via = PathBuf::from(format!("/proc/self/fd/{}", at.as_raw_fd()));
        mount::bind(Path::new(src), &via).ctx(format!("bind {src} on {}", target.display()))?;
        mount::remount_bind(&target, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
            .ctx(format!("remount {} read-only", target.display()))?;
        // Private: under systemd / is shared, and a bind of a shared mount joins its peer
        // group, so the tmpfs below would appear on the internal store's own gcroots too.
        mount::propagation(&target, MS_PRIVATE).ctx(format!("make {} private", target.display()))?;
        made.push(target);
    }
    // Except sync-roots' roots: they keep, for the lower store's GC, every lower path the
    // SSD's database lists; seen by the overlay store as well, they would keep those paths
    // listed there, and so rooted, for ever. An empty read-only tmpfs hides them.
    let lower_roots = Path::new(LOWER_ROOTS);
    let hidden = state.join("gcroots").join(SHARED_ROOTS[0].0).join(lower_roots.file_name().unwrap_or_default());
    if !mount::is_mountpoint(&hidden) && hidden.is_dir() {
        mount::mount(
            Some(Path::new("nix-ssd-hidden")),
            &hidden,
            Some("tmpfs"),
            MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            Some("mode=0755,size=4k"),
        )
        .ctx(format!("hide {} from the overlay store", hidden.display()))?;
    }
    Ok(made)
}

/// Overlay options that close redirect and metacopy tricks of a tampered upper layer.
pub const OVERLAY_HARDENING: &str = "redirect_dir=nofollow,metacopy=off";

/// While the overlay is up the lower database must not be written through the merged view: a
/// root process that opens the local store directly (say `nix-collect-garbage` without
/// NIX_REMOTE=daemon) would register SSD files in it or delete SSD paths. A read-only bind of
/// the database directory makes such a process fail instead; the daemon opens the lower store
/// read-only anyway, and nothing of nix-ssd writes it while the overlay is up (`pin` stages).
pub fn guard_lower_db() -> Result<(), IoError> {
    let db = Path::new(LOWER_DB_DIR);
    mount::bind(db, db).and_then(|()| mount::remount_bind(db, MS_RDONLY)).ctx(format!("make {LOWER_DB_DIR} read-only"))
}

/// `nix-ssd-remount-hook STORE`: remount the overlay so it sees the upper layer as it now is.
pub fn remount(store: &Path) -> Result<(), IoError> {
    let Some(m) = mount::top_mount(store).filter(|m| m.fstype == "overlay") else {
        return Ok(()); // nothing stacked: nothing to refresh
    };
    // Classic mount(2) remount (util-linux's new-API reconfigure is refused by overlayfs:
    // "No changes allowed in reconfigure"); first without data, then with the options as
    // they are, which overlayfs accepts as "no change".
    mount::mount(None, store, None, MS_REMOUNT, None)
        .or_else(|_| mount::mount(None, store, None, MS_REMOUNT, Some(&m.super_options)))
        .ctx(format!("remount {}", store.display()))?;
    // A remount replaces the per-mount flags: give back the ones it had (read-only, nosuid,
    // nodev outside the daemon's namespace).
    let flags = [("ro", MS_RDONLY), ("nosuid", MS_NOSUID), ("nodev", MS_NODEV)]
        .iter()
        .filter(|(o, _)| m.has_option(o))
        .fold(0, |f, (_, b)| f | b);
    if flags != 0 {
        mount::remount_bind(store, flags).ctx(format!("restore the flags of {}", store.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(target: &str, fstype: &str, sup: &str) -> MountInfo {
        MountInfo {
            target: target.into(),
            fstype: fstype.into(),
            source: "x".into(),
            options: "rw".into(),
            super_options: sup.into(),
        }
    }

    #[test]
    fn only_our_overlay_counts() {
        let ours_ = mi("/nix/store", "overlay", "rw,lowerdir=/nix/.lower-store,upperdir=/m/o/upper,workdir=/m/o/work");
        let container = mi("/nix/store", "overlay", "rw,lowerdir=/var/lib/x,upperdir=/u,workdir=/w");
        let prefix = mi("/nix/store", "overlay", "rw,lowerdir=/nix/.lower-store2,upperdir=/u");
        assert!(ours(&ours_) && !ours(&container) && !ours(&prefix));
        let s = stacked_in(&[mi("/nix/store", "ext4", ""), ours_.clone()]).unwrap();
        assert_eq!(s.upper, Path::new("/m/o/upper"));
        assert_eq!(s.overlay_dir(), Some(Path::new("/m/o")));
        // our overlay covered by something else is not what processes see
        assert_eq!(stacked_in(&[ours_, mi("/nix/store", "ext4", "")]), None);
        assert_eq!(stacked_in(&[container]), None);
    }

    #[test]
    fn store_url_shape() {
        let u = store_url(Path::new("/m/o/upper"), Path::new("/m/o/state"), None);
        assert_eq!(
            u,
            "local-overlay://?lower-store=local%3A%2F%2F%3Freal%3D%2Fnix%2F.lower-store%26state%3D%2Fnix%2Fvar%2Fnix%26read-only%3Dtrue&upper-layer=/m/o/upper&state=/m/o/state"
        );
    }
}
