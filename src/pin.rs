//! Keeping the eMMC store self-sufficient:
//! - `nix-ssd pin PATH…` copies closures into the eMMC store (through a private writable view
//!   of the lower layer while the overlay is up) and roots them there, so they are valid and
//!   present without the SSD — a new boot default must be pinned before it becomes the default.
//! - `nix-ssd sync-roots` roots, in the eMMC store, every eMMC path that SSD paths reference,
//!   so a GC of the eMMC store while the SSD is absent cannot break the SSD layer. It runs when
//!   nix-ssd.service stops (shutdown) and after each pin.
use crate::activate::{self, mount_raw, top_mount, umount_raw};
use crate::paths::{ENV_FILE, LOWER_ROOTS, LOWER_STATE as EMMC_STATE, LOWER_STORE, PIN_ROOTS, PIN_VIEW, STORE};
use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;


#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{0} is not in /nix/store (give a store path or a link to one)")]
    NotStorePath(String),
    #[error("`{cmd}` failed: {why}")]
    Command { cmd: String, why: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Activate(#[from] activate::ActivateError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PinError {
    let what = what.into();
    move |source| PinError::Io { what, source }
}

/// Finds a Nix command: PATH, then where NixOS and single-user installs keep it (systemd
/// services on NixOS do not have it in PATH).
pub fn nix_tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/run/current-system/sw/bin", "/nix/var/nix/profiles/default/bin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(cmd: &mut Command) -> Result<String, PinError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(io(format!("run {shown}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(PinError::Command { cmd: shown, why: String::from_utf8_lossy(&out.stderr).trim().to_string() })
    }
}

/// `/nix/store/<hash>-<name>` for a path or a link into the store.
pub fn store_path(p: &str) -> Result<String, PinError> {
    let real = fs::canonicalize(p).map_err(io(p.to_string()))?;
    let rest = real.strip_prefix(STORE).map_err(|_| PinError::NotStorePath(p.into()))?;
    let first = rest.components().next().ok_or_else(|| PinError::NotStorePath(p.into()))?;
    Ok(format!("{STORE}/{}", first.as_os_str().to_string_lossy()))
}

/// Is the SSD overlay stacked on /nix/store right now?
pub fn overlay_up() -> bool {
    top_mount(Path::new(STORE))
        .is_some_and(|m| m.fstype == "overlay" && m.super_options.contains(&format!("lowerdir={LOWER_STORE}")))
}

fn is_store_name(n: &str) -> bool {
    n.len() > 33 && n.as_bytes()[32] == b'-' && n[..32].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Replaces the symlinks in `dir` by exactly one per store path in `paths`.
fn set_roots(dir: &Path, paths: &BTreeSet<String>) -> Result<usize, PinError> {
    fs::DirBuilder::new().mode(0o755).recursive(true).create(dir).map_err(io(format!("mkdir {}", dir.display())))?;
    let wanted: BTreeSet<&str> = paths.iter().filter_map(|p| p.strip_prefix("/nix/store/")).collect();
    for e in fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !wanted.contains(n.as_str()) {
            let _ = fs::remove_file(e.path());
        }
    }
    for n in &wanted {
        let link = dir.join(n);
        if fs::symlink_metadata(&link).is_err() {
            symlink(format!("{STORE}/{n}"), &link).map_err(io(format!("link {}", link.display())))?;
        }
    }
    Ok(wanted.len())
}

fn add_roots(dir: &Path, paths: &[String]) -> Result<(), PinError> {
    let mut all: BTreeSet<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| format!("{STORE}/{}", e.file_name().to_string_lossy())).collect())
        .unwrap_or_default();
    all.extend(paths.iter().cloned());
    set_roots(dir, &all).map(|_| ())
}

/// Copies the closures of `paths` into the eMMC store and roots them there.
pub fn pin(paths: &[String]) -> Result<Vec<String>, PinError> {
    let paths: Vec<String> = paths.iter().map(|p| store_path(p)).collect::<Result<_, _>>()?;
    let mut lines = Vec::new();
    if overlay_up() {
        copy_into_lower(&paths)?;
        activate::remount(Path::new(STORE))?;
        lines.push(format!(
            "copied the closure of {} path(s) into the eMMC store and refreshed the overlay",
            paths.len()
        ));
    } else {
        lines.push("the overlay is not up: the paths are already in the eMMC store".into());
    }
    add_roots(Path::new(PIN_ROOTS), &paths)?;
    lines.push(format!("rooted in {PIN_ROOTS}: {}", paths.join(" ")));
    if overlay_up() {
        lines.push(sync_roots()?);
    }
    Ok(lines)
}

/// In a private mount namespace: a writable view of the eMMC store directory, then
/// `nix copy --from daemon` into the eMMC store through it; back to our namespace after.
fn copy_into_lower(paths: &[String]) -> Result<(), PinError> {
    let host_ns = fs::File::open("/proc/self/ns/mnt").map_err(io("open /proc/self/ns/mnt"))?;
    // SAFETY: plain syscalls; this process is single-threaded here.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(io("unshare(CLONE_NEWNS)")(std::io::Error::last_os_error()));
    }
    let result = (|| {
        mount_raw(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(io("make / private"))?;
        // Lift the read-only guard on the eMMC database, in this namespace only.
        let db = Path::new(crate::paths::LOWER_DB).parent().unwrap_or(Path::new("/nix/var/nix/db"));
        while top_mount(db).is_some_and(|m| m.options.split(',').any(|o| o == "ro")) {
            if umount_raw(db).is_err() {
                break;
            }
        }
        let view = Path::new(PIN_VIEW);
        fs::DirBuilder::new().mode(0o700).recursive(true).create(view).map_err(io(format!("mkdir {PIN_VIEW}")))?;
        mount_raw(Some(Path::new(LOWER_STORE)), view, None, libc::MS_BIND, None).map_err(io("bind the lower store"))?;
        mount_raw(None, view, None, libc::MS_REMOUNT | libc::MS_BIND, None)
            .map_err(io("make the lower view writable"))?;
        let to = format!("local?real={PIN_VIEW}&state={EMMC_STATE}");
        let mut cmd = Command::new(nix_tool("nix"));
        cmd.args([
            "--extra-experimental-features",
            "nix-command",
            "copy",
            "--no-check-sigs",
            "--from",
            "daemon",
            "--to",
            &to,
        ])
        .args(paths)
        .env_remove("NIX_REMOTE")
        .env_remove("NIX_CONFIG");
        let r = run(&mut cmd);
        let _ = umount_raw(view);
        r
    })();
    // SAFETY: host_ns is an open namespace file descriptor.
    if unsafe { libc::setns(host_ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(io("return to the host mount namespace")(std::io::Error::last_os_error()));
    }
    result.map(|_| ())
}

/// Roots in the eMMC store every lower path referenced by an SSD path. Returns a summary.
pub fn sync_roots() -> Result<String, PinError> {
    let Some(m) = top_mount(Path::new(STORE)).filter(|m| m.fstype == "overlay") else {
        return Ok("the overlay is not up: left the eMMC roots as they are".into());
    };
    let upper = m.super_option("upperdir").map(PathBuf::from);
    let Some(upper) = upper else { return Ok("no upperdir on /nix/store: nothing to do".into()) };
    let upper_paths: Vec<String> = fs::read_dir(&upper)
        .map_err(io(format!("read {}", upper.display())))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_store_name(n))
        .map(|n| format!("{STORE}/{n}"))
        .collect();
    let mut lower_refs = BTreeSet::new();
    if !upper_paths.is_empty() {
        // With the daemon's own settings (the overlay store): root's default store would open
        // the eMMC database. Works whether or not the daemon still runs (shutdown).
        let nix_config = fs::read_to_string(ENV_FILE)
            .ok()
            .and_then(|t| crate::status::env_file_nix_config(&t))
            .filter(|c| c.contains("local-overlay://"));
        let Some(nix_config) = nix_config else {
            return Ok(format!("{ENV_FILE} names no overlay store: left the eMMC roots as they are"));
        };
        let out = run(Command::new(nix_tool("nix-store"))
            .args(["--query", "--requisites"])
            .args(&upper_paths)
            .env_remove("NIX_REMOTE")
            .env("NIX_CONFIG", nix_config))?;
        for p in out.lines() {
            let name = p.trim_start_matches("/nix/store/");
            if is_store_name(name) && !upper.join(name).exists() && Path::new(LOWER_STORE).join(name).exists() {
                lower_refs.insert(p.to_string());
            }
        }
    }
    let n = set_roots(Path::new(LOWER_ROOTS), &lower_refs)?;
    Ok(format!("{n} eMMC path(s) that SSD paths depend on are rooted in {LOWER_ROOTS}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn store_names() {
        assert!(is_store_name("0123456789abcdfghijklmnpqrsvwxyz-hello-1.0"));
        assert!(!is_store_name(".links"));
        assert!(!is_store_name("0123456789abcdfghijklmnpqrsvwxyz"));
    }
}
