//! The SSD's space reserve.
//!
//! Nix cannot open its SQLite database on a full btrfs (measured with Nix 2.26.3: "executing
//! SQLite statement 'pragma synchronous = normal': disk I/O error"), and the local-overlay store
//! keeps that database on the SSD. One failed build whose partial output fills the SSD (Nix
//! leaves it in the store until the next garbage collection) therefore makes every Nix call
//! fail, the collection that would free the space included. Nix's own `gc-reserved-space` file
//! does not help here: each store open re-creates it before opening the database, taking back
//! whatever was freed.
//!
//! So a preallocated file `reserve` beside the overlay's upper/, work/ and state/ holds space
//! back. It is released when the SSD is full — at boot by `nix-ssd activate` (before
//! nix-daemon starts), at run time by `nix-ssd reclaim` — and made again once there is room.
use crate::paths::RESERVE;
pub use crate::sys::fs::{Space, space};
use crate::sys::fs::{create_new_nofollow, fallocate, syncfs};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;
/// Below this much free space the SSD counts as full: Nix re-creates its 8 MiB
/// `gc-reserved-space` file on every store open and SQLite needs room for its WAL.
pub const FULL_BELOW: u64 = 32 * MIB;

/// Reserve size for a file system of `total` bytes: 1 %, at least 64 MiB, at most 1 GiB.
pub fn size_for(total: u64) -> u64 {
    (total / 100).clamp(64 * MIB, 1024 * MIB)
}

/// Commits the file system holding `p`: btrfs shows freed space in statvfs only after its
/// transaction commits.
pub fn settle(p: &Path) {
    syncfs(p)
}

pub fn path(overlay_dir: &Path) -> PathBuf {
    overlay_dir.join(RESERVE)
}

/// Size of the reserve if it is there (a regular file; a symlink or anything else is not ours).
pub fn present(overlay_dir: &Path) -> Option<u64> {
    fs::symlink_metadata(path(overlay_dir)).ok().filter(|m| m.file_type().is_file()).map(|m| m.len())
}

/// What [`maintain`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The reserve is there and the SSD has room.
    Kept { size: u64, avail: u64 },
    /// There was no reserve and room for one: made it.
    Made { size: u64, avail: u64 },
    /// The SSD was full: released the reserve so that Nix can open its database.
    Released { size: u64, avail_before: u64, avail: u64 },
    /// The SSD is full and there is no reserve to release.
    FullNoReserve { avail: u64 },
    /// No reserve, and too little room to make one without filling the SSD.
    NoRoom { size: u64, avail: u64 },
}

pub fn mib(b: u64) -> u64 {
    b / MIB
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Outcome::Kept { size, avail } => {
                write!(f, "space reserve: {} MiB held, {} MiB free", mib(size), mib(avail))
            }
            Outcome::Made { size, avail } => {
                write!(f, "space reserve: made {} MiB, {} MiB free", mib(size), mib(avail))
            }
            Outcome::Released { size, avail_before, avail } => write!(
                f,
                "the SSD is full ({} MiB free): released the {} MiB space reserve so that Nix can open its database \
                 ({} MiB free now); free space with `nix-ssd reclaim` (a failed build's output stays in the store until \
                 the next garbage collection)",
                mib(avail_before),
                mib(size),
                mib(avail)
            ),
            Outcome::FullNoReserve { avail } => write!(
                f,
                "the SSD is full ({} MiB free) and holds no space reserve: Nix may fail to open its database; \
                 delete files you made on the SSD, then run `nix-ssd reclaim`",
                mib(avail)
            ),
            Outcome::NoRoom { size, avail } => write!(
                f,
                "space reserve: none ({} MiB free, {} MiB wanted); it is made once there is room",
                mib(avail),
                mib(size)
            ),
        }
    }
}

/// Makes the reserve file: created exclusively (never through a symlink), root only,
/// preallocated (`fallocate`, so btrfs counts it as used). Removed again if that fails.
pub fn make(overlay_dir: &Path, size: u64) -> io::Result<()> {
    let p = path(overlay_dir);
    let f = create_new_nofollow(&p, 0o600)?;
    if let Err(e) = fallocate(&f, size) {
        drop(f);
        let _ = fs::remove_file(&p);
        return Err(e);
    }
    f.sync_all()
}

/// Releases the reserve; returns its size, or None if there was none.
pub fn release(overlay_dir: &Path) -> io::Result<Option<u64>> {
    let Some(size) = present(overlay_dir) else { return Ok(None) };
    fs::remove_file(path(overlay_dir))?;
    Ok(Some(size))
}

/// What to do, decided from the free space and whether a reserve is there (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    Release,
    Make(u64),
    FullNoReserve,
    NoRoom(u64),
}

pub fn decide(sp: Space, reserve: Option<u64>) -> Action {
    let size = size_for(sp.total);
    match reserve {
        Some(_) if sp.avail < FULL_BELOW => Action::Release,
        Some(_) => Action::Keep,
        None if sp.avail < FULL_BELOW => Action::FullNoReserve,
        // room for the reserve and as much again free afterwards
        None if sp.avail >= 2 * size + FULL_BELOW => Action::Make(size),
        None => Action::NoRoom(size),
    }
}

/// Releases the reserve when the SSD is full; makes it when it is missing and there is room.
pub fn maintain(overlay_dir: &Path) -> io::Result<Outcome> {
    let sp = space(overlay_dir)?;
    let have = present(overlay_dir);
    Ok(match decide(sp, have) {
        Action::Keep => Outcome::Kept { size: have.unwrap_or(0), avail: sp.avail },
        Action::Release => {
            let size = release(overlay_dir)?.unwrap_or(0);
            settle(overlay_dir);
            let after = space(overlay_dir).map(|s| s.avail).unwrap_or(sp.avail);
            Outcome::Released { size, avail_before: sp.avail, avail: after }
        }
        Action::FullNoReserve => Outcome::FullNoReserve { avail: sp.avail },
        Action::Make(size) => {
            make(overlay_dir, size)?;
            settle(overlay_dir);
            let after = space(overlay_dir).map(|s| s.avail).unwrap_or(sp.avail);
            Outcome::Made { size, avail: after }
        }
        Action::NoRoom(size) => Outcome::NoRoom { size, avail: sp.avail },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    const G: u64 = 1 << 30;

    #[test]
    fn size_is_one_percent_within_bounds() {
        assert_eq!(size_for(320 * MIB), 64 * MIB);
        assert_eq!(size_for(20 * G), 20 * G / 100);
        assert_eq!(size_for(1000 * G), G);
    }

    #[test]
    fn decisions() {
        let t = 1000 * G;
        assert_eq!(decide(Space { total: t, avail: 0 }, Some(G)), Action::Release);
        assert_eq!(decide(Space { total: t, avail: FULL_BELOW - 1 }, Some(G)), Action::Release);
        assert_eq!(decide(Space { total: t, avail: FULL_BELOW }, Some(G)), Action::Keep);
        assert_eq!(decide(Space { total: t, avail: 0 }, None), Action::FullNoReserve);
        assert_eq!(decide(Space { total: t, avail: 2 * G + FULL_BELOW }, None), Action::Make(G));
        assert_eq!(decide(Space { total: t, avail: 2 * G + FULL_BELOW - 1 }, None), Action::NoRoom(G));
    }

    #[test]
    fn make_release_maintain_on_a_real_dir() {
        let d = std::env::temp_dir().join(format!("nix-ssd-reserve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        make(&d, MIB).unwrap();
        assert_eq!(present(&d), Some(MIB));
        // exclusive: never over an existing file
        assert!(make(&d, MIB).is_err());
        assert_eq!(release(&d).unwrap(), Some(MIB));
        assert_eq!(present(&d), None);
        assert_eq!(release(&d).unwrap(), None);
        // a symlink named like the reserve is not ours: not followed, not counted
        std::os::unix::fs::symlink("/etc/passwd", path(&d)).unwrap();
        assert_eq!(present(&d), None);
        assert!(make(&d, MIB).is_err());
        assert!(fs::symlink_metadata("/etc/passwd").is_ok());
        fs::remove_dir_all(&d).unwrap();
    }
}
