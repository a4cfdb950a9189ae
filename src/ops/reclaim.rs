//! `nix-ssd reclaim [-- GC-ARGS…]`: frees a full SSD. Releases the space reserve (so that Nix
//! can open its database on a full SSD), collects garbage through nix-daemon (`nix-store --gc`
//! plus the arguments), then makes the reserve again if there is room.
use crate::overlay;
use crate::reserve::{self, mib, settle};
use crate::sys::{CmdError, Context, IoError, cmd};

#[derive(Debug, thiserror::Error)]
pub enum ReclaimError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// The collection failed; `lines` says what was done before and after it.
    #[error("{source}; its messages are above. The space reserve stays released until there is room again")]
    Gc { source: CmdError, lines: Vec<String> },
}

/// Returns the lines to print.
pub fn reclaim(gc_args: &[String]) -> Result<Vec<String>, ReclaimError> {
    let Some(dir) = overlay::stacked().and_then(|s| s.overlay_dir().map(|d| d.to_path_buf())) else {
        return Ok(vec!["the SSD overlay is not up on /nix/store: nothing on the SSD to reclaim".into()]);
    };
    let before = reserve::space(&dir).ctx(format!("statvfs {}", dir.display()))?;
    let mut lines = Vec::new();
    if let Some(size) = reserve::release(&dir).ctx(format!("remove {}", reserve::path(&dir).display()))? {
        lines.push(format!("released the {} MiB space reserve", mib(size)));
        settle(&dir);
    }
    // Through the daemon: it has the overlay store; root's default store would be the lower one.
    let gc = overlay::trusted_command("nix-store")
        .and_then(|mut c| cmd::status(c.arg("--gc").args(gc_args).env("NIX_REMOTE", "daemon")));
    settle(&dir);
    match reserve::maintain(&dir) {
        Ok(o) => lines.push(o.to_string()),
        Err(e) => lines.push(format!("space reserve: {e}")),
    }
    let after = reserve::space(&dir).map(|s| s.avail).unwrap_or(0);
    lines.push(format!("free on the SSD: {} MiB before, {} MiB after", mib(before.avail), mib(after)));
    match gc {
        Ok(()) => Ok(lines),
        Err(source) => Err(ReclaimError::Gc { source, lines }),
    }
}
