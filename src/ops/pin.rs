//! `nix-ssd pin PATH…`: copies closures into the lower store (through a private writable view
//! of it while the overlay is up) and roots them there, so they are valid and present without
//! the SSD — a new boot default must be pinned before it becomes the default.
use crate::nix::{self, StorePathError};
use crate::overlay;
use crate::paths::{LOWER_STATE, LOWER_STORE, PIN_ROOTS, PIN_VIEW, SIGNING_PUB, STORE};
use crate::sys::mount::{self, in_private_namespace};
use crate::sys::{CmdError, Context, IoError, cmd};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    SyncRoots(#[from] super::sync_roots::SyncRootsError),
}

/// Copies the closures of `paths` into the lower store and roots them there.
pub fn pin(paths: &[String]) -> Result<Vec<String>, PinError> {
    let paths: Vec<String> = paths.iter().map(|p| nix::store_path(p)).collect::<Result<_, _>>()?;
    let mut lines = Vec::new();
    let up = overlay::stacked().is_some();
    if up {
        copy_into_lower(&paths)?;
        overlay::remount(Path::new(STORE))?;
        lines.push(format!(
            "copied the closure of {} path(s) into the eMMC store and refreshed the overlay",
            paths.len()
        ));
    } else {
        lines.push("the overlay is not up: the paths are already in the eMMC store".into());
    }
    let mut all = nix::roots(Path::new(PIN_ROOTS));
    all.extend(paths.iter().cloned());
    nix::set_roots(Path::new(PIN_ROOTS), &all)?;
    lines.push(format!("rooted in {PIN_ROOTS}: {}", paths.join(" ")));
    if up {
        lines.push(super::sync_roots::sync_roots()?);
    }
    Ok(lines)
}

/// In a private mount namespace: a writable view of the lower store directory, then
/// `nix copy --from daemon` into the lower store through it; back to our namespace after.
fn copy_into_lower(paths: &[String]) -> Result<(), PinError> {
    in_private_namespace(|| {
        // Lift the read-only guard on the lower database, in this namespace only.
        overlay::unguard_lower_db();
        let view = Path::new(PIN_VIEW);
        fs::DirBuilder::new().mode(0o700).recursive(true).create(view).ctx(format!("mkdir {PIN_VIEW}"))?;
        mount::bind(Path::new(LOWER_STORE), view).ctx("bind the lower store")?;
        mount::remount_bind(view, 0).ctx("make the lower view writable")?;
        let to = format!("local?real={PIN_VIEW}&state={LOWER_STATE}");
        let mut copy = overlay::trusted_command("nix")?;
        // Signatures checked: a path the SSD's database lists but this machine did not build
        // (its key) nor substitute (the configured keys), and that is not content-addressed, is
        // refused, so a tampered SSD cannot make the lower store hold it.
        copy.args(["--extra-experimental-features", "nix-command"]);
        if let Ok(pk) = fs::read_to_string(SIGNING_PUB) {
            copy.args(["--extra-trusted-public-keys", pk.trim()]);
        }
        copy.args(["copy", "--from", "daemon", "--to", &to])
            .args(paths)
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_CONFIG");
        let r = cmd::output(&mut copy);
        let _ = mount::umount(view);
        r.map(|_| ()).map_err(PinError::from)
    })
}
