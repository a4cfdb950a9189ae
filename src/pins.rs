//! Pins staged for the lower store (see [`PIN_STAGING`]): which paths are staged, where their
//! files are, the staging store's URL. `nix-ssd pin` stages, `nix-ssd apply-pins` moves and
//! registers at boot, `nix-ssd status` counts a staged boot default as pinned.
use crate::nix;
use crate::paths::{NIX_DIR, PIN_MANIFEST, PIN_STAGING, PIN_STAGING_ROOT, STATE_DIR_MODE, STORE};
use crate::sys::{IoError, fs::write_atomic_mode};
use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The staging store as Nix names it: its paths are `/nix/store/<name>` to Nix, their files
/// under the root.
pub fn store_url() -> String {
    format!("local?root={PIN_STAGING_ROOT}")
}

/// The staging store's store directory, seen from `nix_dir` (the real [`NIX_DIR`], or a view of
/// its file system such as `apply-pins`' private bind).
pub fn staged_store_under(nix_dir: &Path) -> PathBuf {
    let rel = PIN_STAGING_ROOT.strip_prefix(NIX_DIR).unwrap_or(PIN_STAGING_ROOT).trim_start_matches('/');
    nix_dir.join(rel).join(STORE.trim_start_matches('/'))
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

/// A pin `nix-ssd prune-pins` may drop when nothing names it any more: a NixOS system (what
/// the module pins for every boot generation). Other pins were asked for by hand and stay.
pub fn is_generation(name: &str) -> bool {
    nix::is_store_name(name) && name[33..].starts_with("nixos-system-")
}

/// The store path names of NixOS systems a boot menu's text names.
pub fn systems_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == '=' || c == '"' || c == '\'')
        .filter_map(|w| w.strip_prefix("/nix/store/"))
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .filter(|n| is_generation(n))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_name_their_systems() {
        let extlinux = "DEFAULT nixos-default\nLABEL nixos-default\n  MENU LABEL NixOS - Default\n  LINUX ../nixos/abc-Image\n  \
            APPEND init=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-rock5c-25.05/init loglevel=4\n";
        let grub = "linux /nix/store/1123456789abcdfghijklmnpqrsvwxyz-linux-6.6/bzImage init=/nix/store/2123456789abcdfghijklmnpqrsvwxyz-nixos-system-x-24.11/init\n";
        let sdboot = "options init=\"/nix/store/3123456789abcdfghijklmnpqrsvwxyz-nixos-system-y-25.11/init\" quiet\n";
        let all: Vec<String> = [extlinux, grub, sdboot].iter().flat_map(|t| systems_in(t)).collect();
        assert_eq!(
            all,
            [
                "0123456789abcdfghijklmnpqrsvwxyz-nixos-system-rock5c-25.05",
                "2123456789abcdfghijklmnpqrsvwxyz-nixos-system-x-24.11",
                "3123456789abcdfghijklmnpqrsvwxyz-nixos-system-y-25.11"
            ]
        );
        assert!(!is_generation("1123456789abcdfghijklmnpqrsvwxyz-linux-6.6"));
        assert!(!is_generation("nixos-system-x"));
    }

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
        assert_eq!(staged_store_under(Path::new(NIX_DIR)), PathBuf::from("/nix/.nix-ssd-pins/root/nix/store"));
        assert_eq!(staged_store_under(Path::new("/run/v")), PathBuf::from("/run/v/.nix-ssd-pins/root/nix/store"));
        assert_eq!(store_url(), "local?root=/nix/.nix-ssd-pins/root");
    }
}
