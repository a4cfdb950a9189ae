//! `nix-ssd apply-pins`: at boot, before the overlay is stacked and before nix-daemon starts
//! (the generated nix-ssd-pins.service, which runs with or without the SSD), moves the paths
//! `nix-ssd pin` staged into /nix/store and registers them in the lower database; then puts
//! back a boot menu default that `at-shutdown` moved away from a system that boots now. The lower
//! store is then nobody's lower layer and nobody holds its database: the one time it may change.
//! Each step can be repeated after a power loss: a rename is atomic, a path already in the
//! store is kept, registration is idempotent, and the manifest goes last.
use super::pin::PinError;
use crate::nix;
use crate::overlay;
use crate::paths::{APPLY_VIEW, MOVED_IN, NIX_DIR, PIN_MANIFEST, PIN_STAGING, STATE_DIR_MODE, STORE};
use crate::pins;
use crate::sys::fs::write_atomic_mode;
use crate::sys::mount::{self, in_private_namespace};
use crate::sys::{Context, IoError, cmd};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Applies staged pins; returns what it did.
pub fn apply_pins() -> Result<Vec<String>, PinError> {
    if fs::symlink_metadata(PIN_STAGING).is_err() {
        return Ok(vec!["nothing staged".into()]);
    }
    if overlay::stacked().is_some() || nix::daemon_pid().is_some() {
        return Ok(vec![format!(
            "not applying the pins staged in {PIN_STAGING}: the overlay or nix-daemon is up (they are applied at boot, before both)"
        )]);
    }
    let Some(names) = pins::manifest()? else {
        // A pin that stopped before its manifest: nothing of it was promised; start afresh.
        fs::remove_dir_all(PIN_STAGING).ctx(format!("remove {PIN_STAGING}"))?;
        return Ok(vec![format!("removed {PIN_STAGING}: a pin that did not finish (no manifest)")]);
    };
    let mut lines = Vec::new();
    let names: Vec<String> = names.into_iter().collect();
    let m = in_private_namespace(|| move_into_store(&names))?;
    lines.push(format!("moved {} staged path(s) into {STORE} ({} were there already)", m.moved, m.there));
    if !m.absent.is_empty() {
        lines.push(format!(
            "not registering {} staged path(s) whose files are neither staged nor in {STORE}: {}",
            m.absent.len(),
            m.absent.iter().take(10).cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    let present: Vec<&String> = names.iter().filter(|n| !m.absent.contains(n)).collect();
    // What the staging store knows of them (its database; the files have moved).
    let mut reg = String::new();
    for batch in present.chunks(nix::ARG_BATCH) {
        let mut dump = nix::command("nix-store");
        dump.args(["--store", &pins::store_url(), "--dump-db"])
            .args(batch.iter().map(|n| format!("{STORE}/{n}")))
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_CONFIG");
        reg += &cmd::output(&mut dump)?;
    }
    if !reg.is_empty() {
        let mut load = nix::command("nix-store");
        load.arg("--load-db").env_remove("NIX_REMOTE").env_remove("NIX_CONFIG");
        cmd::output_with_input(&mut load, reg.as_bytes())?;
        lines.push(format!("registered {} path(s) in the internal store's database", present.len()));
    }
    // Their copies in the SSD's upper layer are now duplicates: the next activation deletes them.
    let mut copies = pins::parse(&fs::read_to_string(MOVED_IN).unwrap_or_default());
    copies.extend(present.iter().map(|n| n.to_string()));
    let list: String = copies.iter().map(|n| format!("{n}\n")).collect();
    write_atomic_mode(Path::new(MOVED_IN), &list, 0o600, STATE_DIR_MODE)?;
    fs::remove_file(PIN_MANIFEST).ctx(format!("remove {PIN_MANIFEST}"))?;
    fs::remove_dir_all(PIN_STAGING).ctx(format!("remove {PIN_STAGING}"))?;
    // A boot default the menu was moved away from at shutdown may boot now.
    lines.extend(super::boot_default::at_boot());
    Ok(lines)
}

/// What [`move_into_store`] found.
struct Moved {
    moved: usize,
    there: usize,
    /// Named in the manifest, in neither place.
    absent: Vec<String>,
}

/// In a private mount namespace: a writable view of the file system holding /nix (the store
/// may be a read-only bind of itself, as on NixOS), then one rename per staged path. Refuses
/// when /nix/store is a file system of its own (a rename cannot move a path onto it).
fn move_into_store(names: &[String]) -> Result<Moved, PinError> {
    let view = Path::new(APPLY_VIEW);
    fs::DirBuilder::new().mode(0o700).recursive(true).create(view).ctx(format!("mkdir {APPLY_VIEW}"))?;
    mount::bind(Path::new(NIX_DIR), view).ctx(format!("bind {NIX_DIR} on {APPLY_VIEW}"))?;
    let r = (|| {
        mount::remount_bind(view, 0).ctx(format!("make {APPLY_VIEW} writable"))?;
        let store = view.join("store");
        let id = |p: &Path| fs::metadata(p).map(|m| (m.dev(), m.ino())).ctx(format!("stat {}", p.display()));
        if id(&store)? != id(Path::new(STORE))? {
            return Err(IoError::new(
                format!("move the staged pins into {STORE}"),
                std::io::Error::other(format!("{STORE} is a file system of its own, not a directory of {NIX_DIR}'s")),
            ));
        }
        let staged_store = pins::staged_store_under(view);
        let mut m = Moved { moved: 0, there: 0, absent: Vec::new() };
        for n in names {
            let (src, dst): (PathBuf, PathBuf) = (staged_store.join(n), store.join(n));
            if fs::symlink_metadata(&dst).is_ok() {
                m.there += 1;
            } else if fs::symlink_metadata(&src).is_err() {
                m.absent.push(n.clone());
            } else {
                fs::rename(&src, &dst).ctx(format!("rename {} to {}", src.display(), dst.display()))?;
                m.moved += 1;
            }
        }
        crate::sys::fs::syncfs(&store);
        Ok(m)
    })();
    let _ = mount::umount(view);
    r.map_err(PinError::from)
}
