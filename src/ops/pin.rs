//! `nix-ssd pin PATH…`: makes closures valid and present without the SSD and roots them in
//! the lower store — a new boot default must be pinned before it becomes the default.
//!
//! While the overlay is up the lower store is its lower layer, which must not change while
//! mounted (overlayfs leaves that undefined, and the daemon holds the lower database open as
//! immutable). So pin changes neither: it copies the closure's paths that the lower store
//! lacks into the staging store ([`PIN_STAGING`], on the same file system, outside the layer),
//! syncs them and then names them in the manifest. At the next boot, before anything stacks
//! the overlay, they are renamed into /nix/store and registered ([`super::apply_pins`]); on
//! NixOS the initrd does the rename, so a boot default staged this way boots without the SSD.
use crate::nix::{self, StorePathError};
use crate::overlay;
use crate::paths::STATE_DIR_MODE;
use crate::paths::{
    BOOT_MENUS, ENV_FILE, LIVE_SYSTEMS, LOWER_GC_WANTED, LOWER_PROFILES, LOWER_STORE, PIN_ROOTS, PIN_STAGING,
    PIN_STAGING_ROOT, SIGNING_PUB,
};
use crate::pins;
use crate::sys::fs::write_atomic_mode;
use crate::sys::{CmdError, Context, IoError, cmd};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Stages the closures of `paths` for the lower store (while the overlay is up) and roots them.
pub fn pin(paths: &[String]) -> Result<Vec<String>, PinError> {
    let paths: Vec<String> = paths.iter().map(|p| nix::store_path(p)).collect::<Result<_, _>>()?;
    let mut lines = Vec::new();
    let up = overlay::stacked().is_some();
    if up {
        let n = stage(&paths)?;
        lines.push(if n == 0 {
            format!("the closure of {} path(s) is already in the internal store (or staged)", paths.len())
        } else {
            format!(
                "staged {n} path(s) of the closure in {PIN_STAGING} (synced): the next boot moves them into the \
                 internal store before the overlay is stacked, with or without the SSD"
            )
        });
    } else {
        lines.push("the overlay is not up: the paths are already in the internal store".into());
    }
    let mut all = nix::roots(Path::new(PIN_ROOTS));
    all.extend(paths.iter().cloned());
    nix::set_roots(Path::new(PIN_ROOTS), &all)?;
    lines.push(format!("rooted in {PIN_ROOTS}: {}", paths.join(" ")));
    if up {
        // The staged closure is complete and on disk whatever this says: a failure here is
        // reported, and the shutdown's sync-roots tries again.
        lines.push(
            super::sync_roots::sync_roots().unwrap_or_else(|e| format!("sync-roots failed (the pin holds): {e}")),
        );
    }
    Ok(lines)
}

/// A Nix tool run as root against the overlay store, from the lower layer: through the daemon,
/// or at shutdown directly ([`overlay::store_client`]); and the store's name for `--from`.
fn overlay_client(tool: &str) -> Result<(Command, String), PinError> {
    overlay::store_client(tool)?.ok_or_else(|| {
        PinError::Io(IoError::new(
            "find the overlay store",
            std::io::Error::other(format!("nix-daemon is not running and {ENV_FILE} names no overlay store")),
        ))
    })
}

/// Copies the closure's paths that neither the lower store nor the staging store has into the
/// staging store; returns how many were added to the manifest.
fn stage(paths: &[String]) -> Result<usize, PinError> {
    let closure = cmd::output(overlay_client("nix-store")?.0.args(["--query", "--requisites"]).args(paths))?;
    let staged = pins::manifest()?.unwrap_or_default();
    let (mut present, mut missing) = (Vec::new(), Vec::new());
    for p in closure.lines().filter(|p| p.strip_prefix("/nix/store/").is_some_and(nix::is_store_name)) {
        let name = &p["/nix/store/".len()..];
        if Path::new(LOWER_STORE).join(name).exists() {
            present.push(p.to_string());
        } else if !staged.contains(name) {
            missing.push(p.to_string());
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(PIN_STAGING_ROOT)
        .ctx(format!("mkdir {PIN_STAGING_ROOT}"))?;
    let to = pins::store_url();
    // The paths the lower store has are registered in the staging store without their files,
    // so that `nix copy` takes them as there and copies only what the lower store lacks.
    let mut reg = String::new();
    for batch in present.chunks(nix::ARG_BATCH) {
        reg += &cmd::output(overlay_client("nix-store")?.0.arg("--dump-db").args(batch))?;
    }
    if !reg.is_empty() {
        let mut load = overlay::trusted_command("nix-store")?;
        load.args(["--store", &to, "--load-db"]).env_remove("NIX_REMOTE").env_remove("NIX_CONFIG");
        cmd::output_with_input(&mut load, reg.as_bytes())?;
    }
    for batch in missing.chunks(nix::ARG_BATCH) {
        let (mut copy, from) = overlay_client("nix")?;
        // Signatures checked: a path the SSD's database lists but this machine did not build
        // (its key) nor substitute (the configured keys), and that is not content-addressed, is
        // refused, so a tampered SSD cannot make the lower store hold it.
        copy.args(["--extra-experimental-features", "nix-command"]);
        if let Ok(pk) = fs::read_to_string(SIGNING_PUB) {
            copy.args(["--extra-trusted-public-keys", pk.trim()]);
        }
        copy.args(["copy", "--from", &from, "--to", &to]).args(batch);
        cmd::output(&mut copy)?;
    }
    // On disk before the manifest names them (write_manifest syncs again after the rename).
    crate::sys::fs::syncfs(Path::new(PIN_STAGING));
    let mut names = staged;
    names.extend(missing.iter().map(|p| p.trim_start_matches("/nix/store/").to_string()));
    pins::write_manifest(&names)?;
    Ok(missing.len())
}

/// `nix-ssd prune-pins`: drops the pins of NixOS systems that no profile generation, no boot
/// menu entry and neither the running nor the booted system names any more (after
/// `nix-collect-garbage -d`, the next menu rewrite or boot): the lower store's GC may then free
/// them. Pins made by hand (not a NixOS system) are kept. Runs after each boot loader install
/// (NixOS module) and at shutdown (nix-ssd.service's `ExecStop=nix-ssd at-shutdown`).
pub fn prune() -> Result<Vec<String>, PinError> {
    let mut keep = BTreeSet::new();
    collect_profile_targets(Path::new(LOWER_PROFILES), 0, &mut keep);
    for live in LIVE_SYSTEMS {
        keep.extend(nix::link_target_name(Path::new(live)));
    }
    for menu in BOOT_MENUS {
        let p = Path::new(menu);
        let files: Vec<std::path::PathBuf> = if p.is_dir() {
            fs::read_dir(p).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
        } else {
            vec![p.to_path_buf()]
        };
        for f in files {
            if let Ok(t) = fs::read_to_string(&f) {
                keep.extend(pins::systems_in(&t));
            }
        }
    }
    let pinned = nix::roots(Path::new(PIN_ROOTS));
    let mut dropped = Vec::new();
    for p in &pinned {
        let name = p.trim_start_matches("/nix/store/");
        if pins::is_generation(name) && !keep.contains(name) {
            let link = Path::new(PIN_ROOTS).join(name);
            fs::remove_file(&link).ctx(format!("remove {}", link.display()))?;
            dropped.push(name.to_string());
        }
    }
    if !dropped.is_empty() {
        // Their closures may now be collected from the internal store: the next activation with
        // the SSD does it, before stacking.
        let mut wanted = fs::read_to_string(LOWER_GC_WANTED).unwrap_or_default();
        wanted.extend(dropped.iter().map(|n| format!("{n}\n")));
        write_atomic_mode(Path::new(LOWER_GC_WANTED), &wanted, 0o600, STATE_DIR_MODE)?;
    }
    Ok(vec![if dropped.is_empty() {
        format!("{} pin(s), none of a system that nothing names any more", pinned.len())
    } else {
        format!(
            "dropped {} of {} pin(s), systems no profile generation, boot menu entry or live system names: {}",
            dropped.len(),
            pinned.len(),
            dropped.join(" ")
        )
    }])
}

/// Every store path a link under the profiles directory leads to (per-user directories too).
fn collect_profile_targets(dir: &Path, depth: usize, out: &mut BTreeSet<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_symlink() => out.extend(nix::link_target_name(&p)),
            Ok(t) if t.is_dir() && depth < 4 => collect_profile_targets(&p, depth + 1, out),
            _ => {}
        }
    }
}
