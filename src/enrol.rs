//! Enrolment: which file systems are this machine's SSD. `nix-ssd setup` and `nix-ssd enroll`
//! record the btrfs UUID on the internal disk ([`ENROLLED`]); the NixOS module may state it
//! ([`ENROLLED_ETC`]). `activate` stacks, and binds, nothing from a file system whose UUID is
//! not listed: whoever can attach a disk labelled NIX_SSD must not get to change /nix/store.
use crate::paths::{ENROLLED, ENROLLED_ETC, ENROLLED_MODE, STATE_DIR_MODE};
use crate::sys::fs::{btrfs_fsid, write_atomic_mode};
use crate::sys::{Context, IoError};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0} is not root-owned or is writable by others (uid {1}, mode {2:o}): its UUIDs are not trusted")]
    Untrusted(String, u32, u32),
    #[error("{0} is not a btrfs file system")]
    NotBtrfs(String),
}

/// A btrfs UUID as blkid prints it (lowercase, 8-4-4-4-12).
pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The UUID of the btrfs holding `dir` (a mounted subvolume).
pub fn uuid_of(dir: &Path) -> Result<String, EnrolError> {
    match btrfs_fsid(dir).ctx(format!("read the btrfs UUID of {}", dir.display()))? {
        Some(f) => Ok(format_uuid(&f)),
        None => Err(EnrolError::NotBtrfs(dir.display().to_string())),
    }
}

/// The UUIDs in an enrolment file's text (the generator reads it too).
pub fn parse(text: &str) -> BTreeSet<String> {
    crate::generator::sources::parse_enrolled(text).into_iter().collect()
}

/// Every enrolled UUID. A file that is missing adds nothing; one that is not root-owned or is
/// group- or world-writable is refused (an attacker's list must not count).
pub fn enrolled() -> Result<BTreeSet<String>, EnrolError> {
    let mut all = BTreeSet::new();
    for f in [ENROLLED, ENROLLED_ETC] {
        let Ok(m) = fs::symlink_metadata(f) else { continue };
        if m.uid() != 0 || m.mode() & 0o022 != 0 || !m.is_file() {
            return Err(EnrolError::Untrusted(f.into(), m.uid(), m.mode() & 0o7777));
        }
        all.extend(parse(&fs::read_to_string(f).ctx(format!("read {f}"))?));
    }
    Ok(all)
}

/// Adds `uuid` to [`ENROLLED`] (atomically, root only). Returns false if it was there.
pub fn record(uuid: &str) -> Result<bool, EnrolError> {
    let text = fs::read_to_string(ENROLLED).unwrap_or_default();
    if parse(&text).contains(&uuid.to_ascii_lowercase()) {
        return Ok(false);
    }
    let mut body = if text.is_empty() {
        "# btrfs UUIDs of this machine's Nix SSDs (nix-ssd setup / nix-ssd enroll); only these are stacked\n"
            .to_string()
    } else {
        text
    };
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body += &format!("{}\n", uuid.to_ascii_lowercase());
    write_atomic_mode(Path::new(ENROLLED), &body, ENROLLED_MODE, STATE_DIR_MODE)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let b = [0x4f, 0x1c, 0, 0x21, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xaa, 0xbb, 0xcc, 0xdd];
        assert_eq!(format_uuid(&b), "4f1c0021-abcd-ef01-2345-6789aabbccdd");
        let t = "# comment\n4F1C0021-ABCD-EF01-2345-6789AABBCCDD  # the SSD\nnot-a-uuid\n\n";
        assert_eq!(parse(t).into_iter().collect::<Vec<_>>(), vec!["4f1c0021-abcd-ef01-2345-6789aabbccdd"]);
    }

    #[test]
    fn not_btrfs_is_said() {
        // /proc is never btrfs
        assert!(matches!(uuid_of(Path::new("/proc")), Err(EnrolError::NotBtrfs(_))));
    }
}
