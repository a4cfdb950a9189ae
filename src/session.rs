//! The overlay store's session marker (see [`SESSION`]): whether the SSD was last stopped
//! cleanly, and since when paths may have been registered without being on disk.
//!
//! Nix does not sync a path's files before it registers the path unless told to
//! (`fsync-store-paths`, one fsync per file: 2.7× the time of an import on the modelled board).
//! Instead: a clean stop syncs the SSD and closes the session; after an unclean one (the SSD
//! pulled, power lost) activation verifies, before nix-daemon starts, every path registered
//! since the session opened and drops those whose files did not reach the disk.
use crate::paths::{SESSION, STATE};
use crate::sys::{IoError, fs::syncfs, fs::write_atomic_mode};
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far before the session's opening registrations are checked: the wall clock may be set
/// back a little (NTP) while the session runs.
pub const CLOCK_MARGIN_SECS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// No marker: a new SSD, or one from before markers.
    Unknown,
    /// Stopped cleanly (synced) at this time.
    Closed(u64),
    /// Opened at this time and never closed: stopped uncleanly.
    Open(u64),
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn parse(text: &str) -> Session {
    let mut w = text.split_whitespace();
    match (w.next(), w.next().and_then(|t| t.parse().ok())) {
        (Some("open"), Some(t)) => Session::Open(t),
        (Some("closed"), Some(t)) => Session::Closed(t),
        _ => Session::Unknown,
    }
}

/// The marker of the overlay directory `dir`.
pub fn read(dir: &Path) -> Session {
    fs::read_to_string(dir.join(STATE).join(SESSION)).map(|t| parse(&t)).unwrap_or(Session::Unknown)
}

/// Opens a session (activation, once the store is checked); on disk before it returns.
pub fn open(dir: &Path) -> Result<(), IoError> {
    write(dir, &format!("open {}\n", now()))
}

/// Closes the session (shutdown, after nix-daemon stopped): everything on the SSD is synced
/// first, then the marker says so.
pub fn close(dir: &Path) -> Result<(), IoError> {
    syncfs(dir);
    write(dir, &format!("closed {}\n", now()))
}

fn write(dir: &Path, body: &str) -> Result<(), IoError> {
    write_atomic_mode(&dir.join(STATE).join(SESSION), body, 0o600, 0o755)?;
    syncfs(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(parse("open 1764000000\n"), Session::Open(1764000000));
        assert_eq!(parse("closed 17\n"), Session::Closed(17));
        assert_eq!(parse(""), Session::Unknown);
        assert_eq!(parse("open soon"), Session::Unknown);
    }
}
