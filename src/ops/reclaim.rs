//! `nix-ssd reclaim [-- GC-ARGS…]`: frees a full SSD. Releases the space reserve (so that Nix
//! can open its database on a full SSD), collects garbage through nix-daemon (`nix-store --gc`
//! plus the arguments), then makes the reserve again if there is room. What it freed is measured
//! on the SSD (free space before and after the collection): Nix's own count of freed bytes is
//! not to be trusted on a local-overlay store, nor is `--max-freed`, which compares it
//! (NixOS/nix#16269: `LocalOverlayStore::deleteStorePath` leaves the count unwritten for a path
//! outside the upper layer, and the caller never initialises it).
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
    /// `--max-freed` stops Nix's collection on a byte count that the local-overlay store leaves
    /// uninitialised: refused before anything is done.
    #[error(
        "--max-freed is not passed on: on Nix's local-overlay store it compares an uninitialised byte count \
         (NixOS/nix#16269) and stops the collection at an arbitrary point; run `nix-ssd reclaim` without it \
         (it reports the space the collection freed)"
    )]
    MaxFreed,
}

/// Is `--max-freed` among the collection's arguments?
fn asks_max_freed(gc_args: &[String]) -> bool {
    gc_args.iter().take_while(|a| *a != "--").any(|a| a == "--max-freed" || a.starts_with("--max-freed="))
}

/// Returns the lines to print.
pub fn reclaim(gc_args: &[String]) -> Result<Vec<String>, ReclaimError> {
    if asks_max_freed(gc_args) {
        return Err(ReclaimError::MaxFreed);
    }
    let Some(dir) = overlay::stacked().and_then(|s| s.overlay_dir().map(|d| d.to_path_buf())) else {
        return Ok(vec!["the SSD overlay is not up on /nix/store: nothing on the SSD to reclaim".into()]);
    };
    let before = reserve::space(&dir).ctx(format!("statvfs {}", dir.display()))?;
    let mut lines = Vec::new();
    if let Some(size) = reserve::release(&dir).ctx(format!("remove {}", reserve::path(&dir).display()))? {
        lines.push(format!("released the {} MiB space reserve", mib(size)));
        settle(&dir);
    }
    let gc_before = reserve::space(&dir).map(|s| s.avail).unwrap_or(0);
    // Through the daemon: it has the overlay store; root's default store would be the lower one.
    let gc = overlay::trusted_command("nix-store")
        .and_then(|mut c| cmd::status(c.arg("--gc").args(gc_args).env("NIX_REMOTE", "daemon")));
    settle(&dir);
    if let Ok(s) = reserve::space(&dir) {
        lines.push(format!(
            "the collection freed {} MiB on the SSD (its free space before and after; Nix's own count is not \
             reliable on the overlay store)",
            mib(s.avail.saturating_sub(gc_before))
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_freed_is_recognised() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(asks_max_freed(&a(&["--max-freed", "10G"])));
        assert!(asks_max_freed(&a(&["-v", "--max-freed=1"])));
        assert!(!asks_max_freed(&a(&["--print-dead"])));
        assert!(!asks_max_freed(&a(&["--", "--max-freed"])));
        assert!(matches!(reclaim(&a(&["--max-freed", "1"])), Err(ReclaimError::MaxFreed)));
    }
}
