//! `nix-ssd at-shutdown` (nix-ssd.service's `ExecStop=`, after nix-daemon stopped, while the
//! overlay is still up): finishes a boot loader install a switch left to a background job,
//! makes sure the next boot's default boots without the SSD (it pins it,
//! or moves the menu's default to the newest entry that boots: [`boot_default`]), drops the
//! pins of systems nothing names any more, roots in the lower store what the SSD layer needs,
//! then syncs the SSD and closes the session (so the next activation need not verify what this
//! one registered). A step that fails does not stop the next ones.
use super::boot_default;
use super::install_bootloader;
use super::pin;
use super::sync_roots;
use crate::nix;
use crate::overlay;
use crate::session;

#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct AtShutdownError(pub Vec<String>);

pub fn at_shutdown() -> Result<Vec<String>, AtShutdownError> {
    // What a switch left to a background job that did not finish (it was stopped before
    // this ran): the new default copied in, then the boot menu written.
    let (mut lines, mut failed) = match install_bootloader::finish() {
        Ok(l) => (l, false),
        Err(e) => (vec![format!("finishing the boot loader install failed (the menu keeps its default): {e}")], true),
    };
    // The boot default: the next boot needs it, with or without the SSD.
    lines.extend(boot_default::at_shutdown());
    // Pins before sync-roots: sync-roots then roots only what the pins that remain need.
    match pin::prune() {
        Ok(l) => lines.extend(l),
        Err(e) => {
            failed = true;
            lines.push(format!("prune-pins failed: {e}"));
        }
    }
    match sync_roots::sync_roots() {
        Ok(l) => lines.push(l),
        Err(e) => {
            failed = true;
            lines.push(format!("sync-roots failed: {e}"));
        }
    }
    match (overlay::stacked(), nix::daemon_pid()) {
        (Some(s), None) => {
            if let Some(dir) = s.overlay_dir() {
                match session::close(dir) {
                    Ok(()) => lines.push(
                        "synced the SSD and closed the session: the next activation need not verify this one".into(),
                    ),
                    Err(e) => {
                        failed = true;
                        lines.push(format!("closing the session failed: {e}"));
                    }
                }
            }
        }
        (Some(_), Some(pid)) => lines.push(format!(
            "nix-daemon still runs (pid {pid}): the session stays open, the next activation verifies what it registered"
        )),
        (None, _) => {}
    }
    if failed { Err(AtShutdownError(lines)) } else { Ok(lines) }
}
