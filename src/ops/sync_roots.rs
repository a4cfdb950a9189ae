//! `nix-ssd sync-roots`: roots, in the lower store, every lower path that upper-layer paths
//! reference or that a root of the overlay store names, so a GC of the lower store (while the
//! SSD is absent, or at activation) cannot break the SSD layer.
//! It runs when nix-ssd.service stops (shutdown) and after each pin.
use crate::nix;
use crate::overlay;
use crate::paths::{ENV_FILE, LOWER_ROOTS, LOWER_STORE, SHARED_ROOTS, STORE};
use crate::sys::{CmdError, Context, IoError, cmd};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SyncRootsError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Roots in the lower store every lower path referenced by an SSD path. Returns a summary.
pub fn sync_roots() -> Result<String, SyncRootsError> {
    let Some(stacked) = overlay::stacked() else {
        return Ok("the overlay is not up: left the internal store's roots as they are".into());
    };
    let upper = stacked.upper;
    let upper_paths: Vec<String> = fs::read_dir(&upper)
        .ctx(format!("read {}", upper.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| nix::is_store_name(n))
        .map(|n| format!("{STORE}/{n}"))
        .collect();
    let mut lower_refs = BTreeSet::new();
    if !upper_paths.is_empty() {
        // The overlay store (root's default store would open the lower database), through the
        // daemon or, at shutdown after it stopped, directly with its settings.
        // In batches: one argument list of every upper path fails past ~26 000 of them
        // (E2BIG, measured with 40 000).
        // Only valid ones: the upper layer also holds what is no store path (a build's `.lock`
        // beside its output, a failed build's leftovers), and one of them fails the query.
        let mut out = String::new();
        for batch in upper_paths.chunks(nix::ARG_BATCH) {
            let Some((mut c, _)) = overlay::store_client("nix-store")? else {
                return Ok(format!("{ENV_FILE} names no overlay store: left the internal store's roots as they are"));
            };
            let invalid = cmd::output(c.args(["--check-validity", "--print-invalid"]).args(batch))?;
            let invalid: BTreeSet<&str> = invalid.lines().collect();
            let valid: Vec<&String> = batch.iter().filter(|p| !invalid.contains(p.as_str())).collect();
            if valid.is_empty() {
                continue;
            }
            let Some((mut c, _)) = overlay::store_client("nix-store")? else { continue };
            out += &cmd::output(c.args(["--query", "--requisites"]).args(valid))?;
        }
        for p in out.lines() {
            let name = p.trim_start_matches("/nix/store/");
            if nix::is_store_name(name) && !upper.join(name).exists() && Path::new(LOWER_STORE).join(name).exists() {
                lower_refs.insert(p.to_string());
            }
        }
    }
    // The overlay store's own roots that name a lower path directly (`nix-build -o` of a path
    // the lower store had, made while the overlay was up: the root lives on the SSD, where the
    // lower store's collection does not look).
    if let Some((mut c, _)) = overlay::store_client("nix-store")? {
        let roots = cmd::output(c.args(["--gc", "--print-roots"]))?;
        // not the lower store's own roots (bound into the overlay store's state) nor a running
        // process's (/proc): the lower store's collection sees those itself
        let own = |link: &str| {
            !link.starts_with("/proc/") && !SHARED_ROOTS.iter().any(|(n, _)| link.contains(&format!("/gcroots/{n}/")))
        };
        for target in
            roots.lines().filter_map(|l| l.rsplit_once(" -> ").filter(|(link, _)| own(link)).map(|(_, t)| t.trim()))
        {
            let name = target.trim_start_matches("/nix/store/").split('/').next().unwrap_or("");
            if nix::is_store_name(name) && !upper.join(name).exists() && Path::new(LOWER_STORE).join(name).exists() {
                lower_refs.insert(format!("{STORE}/{name}"));
            }
        }
    }
    let n = nix::set_roots(Path::new(LOWER_ROOTS), &lower_refs)?;
    Ok(format!("{n} internal-store path(s) that SSD paths depend on are rooted in {LOWER_ROOTS}"))
}
