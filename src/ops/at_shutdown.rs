//! `nix-ssd at-shutdown` (nix-ssd.service's `ExecStop=`, after nix-daemon stopped): drops the
//! pins of systems nothing names any more, roots in the lower store what the SSD layer needs,
//! then syncs the SSD and closes the session (so the next activation need not verify what
//! this one registered).
use super::pin::{self, PinError};
use super::sync_roots::{self, SyncRootsError};
use crate::nix;
use crate::overlay;
use crate::session;

#[derive(Debug, thiserror::Error)]
pub enum AtShutdownError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    SyncRoots(#[from] SyncRootsError),
    #[error(transparent)]
    Io(#[from] crate::sys::IoError),
}

pub fn at_shutdown() -> Result<Vec<String>, AtShutdownError> {
    // Pins first: sync-roots then roots only what the pins that remain need.
    let mut lines = pin::prune()?;
    lines.push(sync_roots::sync_roots()?);
    match (overlay::stacked(), nix::daemon_pid()) {
        (Some(s), None) => {
            if let Some(dir) = s.overlay_dir() {
                session::close(dir)?;
                lines
                    .push("synced the SSD and closed the session: the next activation need not verify this one".into());
            }
        }
        (Some(_), Some(pid)) => lines.push(format!(
            "nix-daemon still runs (pid {pid}): the session stays open, the next activation verifies what it registered"
        )),
        (None, _) => {}
    }
    Ok(lines)
}
