//! The overlay on /nix/store: whether one is ours, the `local-overlay://` store URL that names
//! it to Nix, and where it is mounted, guarded and remounted. "Ours" means an overlayfs whose
//! lower layer is the private read-only bind [`LOWER_STORE`] that [`stack`] makes (a root file
//! system that is itself an overlay, as in containers, is not).
use crate::generator::escape::url_encode;
use crate::paths::{LOWER_DB_DIR, LOWER_STATE, LOWER_STORE, REMOUNT_HOOK_NAME, STATE, STORE, UPPER, WORK};
use crate::sys::mount::{self, MS_PRIVATE, MS_RDONLY, MS_REMOUNT, MountInfo};
use crate::sys::{Context, IoError};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

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
}

/// Checks the overlay layout: upper/, work/ and state/ are real directories on the very mount
/// of `dir` (overlayfs needs upper and work on one file system; a btrfs subvolume inside
/// would give EXDEV on every copy-up).
pub fn check_layout(dir: &Path) -> Result<(), OverlayError> {
    let top = fs::symlink_metadata(dir).ctx(format!("stat {}", dir.display()))?;
    for sub in [UPPER, WORK, STATE] {
        let p = dir.join(sub);
        let why = match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() && m.dev() == top.dev() => continue,
            Ok(m) if m.is_dir() => {
                "it is a separate subvolume or mount; it must be a plain directory in the same subvolume"
            }
            Ok(_) => "it is not a directory",
            Err(_) => "it is missing; create it with `nix-ssd setup`",
        };
        return Err(OverlayError::Layout(p.display().to_string(), why));
    }
    Ok(())
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
    let opts = format!("lowerdir={LOWER_STORE},upperdir={},workdir={}", upper.display(), work.display());
    if let Err(e) = mount::mount(Some(Path::new("overlay")), store, Some("overlay"), 0, Some(&opts)) {
        if fresh_lower {
            let _ = mount::umount(lower);
        }
        return Err(IoError::new(format!("mount -t overlay -o {opts} overlay {STORE} failed"), e));
    }
    Ok(opts)
}

/// While the overlay is up the lower database must not be written through the merged view: a
/// root process that opens the local store directly (say `nix-collect-garbage` without
/// NIX_REMOTE=daemon) would register SSD files in it or delete SSD paths. A read-only bind of
/// the database directory makes such a process fail instead; the daemon opens the lower store
/// read-only anyway, and `nix-ssd pin` writes through its own private mount namespace.
pub fn guard_lower_db() -> Result<(), IoError> {
    let db = Path::new(LOWER_DB_DIR);
    mount::bind(db, db).and_then(|()| mount::remount_bind(db, MS_RDONLY)).ctx(format!("make {LOWER_DB_DIR} read-only"))
}

/// Lifts [`guard_lower_db`] (in a private mount namespace: `pin`).
pub fn unguard_lower_db() {
    let db = Path::new(LOWER_DB_DIR);
    while mount::top_mount(db).is_some_and(|m| m.has_option("ro")) {
        if mount::umount(db).is_err() {
            break;
        }
    }
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
        .ctx(format!("remount {}", store.display()))
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
