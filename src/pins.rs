//! Pins staged for the lower store (see [`PIN_STAGING`]): which paths are staged, where their
//! files are, the staging store's URL. `nix-ssd pin` stages, `nix-ssd apply-pins` moves and
//! registers at boot, `nix-ssd status` counts a staged boot default as pinned.
use crate::nix;
use crate::paths::{PIN_MANIFEST, PIN_STAGING, PIN_STAGING_ROOT, STATE_DIR_MODE, STORE};
use crate::sys::{IoError, fs::write_atomic_mode};
use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

/// The staging store as Nix names it: its paths are `/nix/store/<name>` to Nix, their files
/// under the root.
pub fn store_url() -> String {
    format!("local?root={PIN_STAGING_ROOT}")
}

/// Where the staged copy of `name` is.
pub fn staged_copy(name: &str) -> PathBuf {
    PathBuf::from(format!("{PIN_STAGING_ROOT}{STORE}/{name}"))
}

/// The staged path names (the manifest: complete and on disk). None when nothing is staged or
/// a pin was interrupted before it finished (a staging tree without a manifest).
pub fn manifest() -> Result<Option<BTreeSet<String>>, IoError> {
    match fs::read_to_string(PIN_MANIFEST) {
        Ok(t) => Ok(Some(parse(&t))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::new(format!("read {PIN_MANIFEST}"), e)),
    }
}

/// The names of a manifest: one store path name a line; anything else (a `/`, `..`) is
/// skipped.
pub fn parse(text: &str) -> BTreeSet<String> {
    text.lines().map(str::trim).filter(|n| nix::is_store_name(n)).map(String::from).collect()
}

/// Staged names, empty when none (or unreadable): for reports.
pub fn staged() -> BTreeSet<String> {
    manifest().ok().flatten().unwrap_or_default()
}

/// Replaces the manifest (synced, renamed into place; root-only).
pub fn write_manifest(names: &BTreeSet<String>) -> Result<(), IoError> {
    let body: String = names.iter().map(|n| format!("{n}\n")).collect();
    write_atomic_mode(std::path::Path::new(PIN_MANIFEST), &body, 0o600, STATE_DIR_MODE)?;
    crate::sys::fs::syncfs(std::path::Path::new(PIN_STAGING));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_takes_only_store_names() {
        let n =
            parse("abcdefghijklmnopqrstuvwxyz012345-hello\n\n../../etc\nx/y\n  abcdefghijklmnopqrstuvwxyz012345-b  \n");
        assert_eq!(
            n.into_iter().collect::<Vec<_>>(),
            ["abcdefghijklmnopqrstuvwxyz012345-b", "abcdefghijklmnopqrstuvwxyz012345-hello"]
        );
    }

    #[test]
    fn staged_copy_is_inside_the_staging_root() {
        assert_eq!(staged_copy("x-y"), PathBuf::from("/nix/.nix-ssd-pins/root/nix/store/x-y"));
        assert_eq!(store_url(), "local?root=/nix/.nix-ssd-pins/root");
    }
}
