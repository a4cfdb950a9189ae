//! `nix-ssd install-bootloader --loader CMD SYSTEM`: the NixOS module's boot-loader hook. A new
//! boot default must boot without the SSD before the menu names it, but copying its closure
//! into the internal store takes as long as the substitution that brought it — so the switch
//! does not wait for it (the model: ostree's staged deployments, finalized at shutdown):
//!
//! - SYSTEM boots without the SSD already (in the internal store, or staged for a stage 1 that
//!   moves it in), or the overlay is not up: the loader's installer runs now, as before.
//! - Else a record of the request is kept ([`PENDING_INSTALL`], synced), and a background job
//!   (a transient `nix-ssd-install-bootloader.service`, idle I/O, nice 19) pins SYSTEM, then
//!   runs the loader's installer, then prune-pins; the command returns at once. Until the job
//!   has finished, the menu keeps naming the previous default, which boots without the SSD.
//! - At shutdown (`at-shutdown`, after that job was stopped) whatever it did not finish is
//!   finished in the foreground ([`finish`]): pin, menu, prune — resumable, a pin that was cut
//!   short copies only what it lacks. Power lost first: the menu still names the previous
//!   default; the record stays and the next clean shutdown with the SSD finishes it.
use super::boot_default;
use super::pin::{self, PinError};
use crate::nix;
use crate::overlay;
use crate::paths::{
    CLI, INSTALL_JOB, INSTALL_LOCK, INSTALL_RECORD_LOCK as RECORD_LOCK, PENDING_INSTALL, STATE_DIR_MODE,
};
use crate::sys::{CmdError, Context, IoError, cmd, fs::write_atomic_mode};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What the switch asked for and the background job has not finished yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The system to make the boot default (a store path).
    pub system: String,
    /// The boot loader's installer, a shell command line; SYSTEM and `args` are appended.
    pub loader: String,
    pub args: Vec<String>,
    /// The switch's NIXOS_* variables (NIXOS_INSTALL_BOOTLOADER=1 for `--install-bootloader`),
    /// which the loader's installer reads and a background job would not have.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Seconds since the epoch when the switch asked (a newer request replaces an older one).
    pub at: u64,
}

/// The record, if one is kept.
pub fn pending() -> Option<Pending> {
    serde_json::from_str(&fs::read_to_string(PENDING_INSTALL).ok()?).ok()
}

/// The hook: the loader's installer now, or a background job that runs it once SYSTEM boots
/// without the SSD.
pub fn install_bootloader(loader: &str, system: &str, args: &[String]) -> Result<Vec<String>, InstallError> {
    let store_path = nix::store_path(system).map_err(PinError::from)?;
    let name = store_path.trim_start_matches("/nix/store/").to_string();
    if overlay::stacked().is_none() || boot_default::system(&name).boots() {
        let mut lines = pin::pin(std::slice::from_ref(&store_path))?;
        lines.extend(run_loader(loader, &store_path, args, &[])?);
        lines.extend(prune());
        return Ok(lines);
    }
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let env = std::env::vars().filter(|(k, _)| k.starts_with("NIXOS_")).collect();
    let p = Pending { system: store_path.clone(), loader: loader.into(), args: args.to_vec(), env, at };
    {
        let _record = lock(RECORD_LOCK)?;
        write_pending(&p)?;
    }
    let mut job = Command::new("systemd-run");
    job.args([
        &format!("--unit={INSTALL_JOB}"),
        "--description=nix-ssd: copy the new boot default into the internal store, then write the boot menu",
        "--no-block",
        "--collect",
        "--property=After=nix-ssd.service nix-daemon.service",
        "--property=IOSchedulingClass=idle",
        "--property=Nice=19",
        CLI,
        "install-bootloader",
        "--finish",
    ]);
    match cmd::output(&mut job) {
        Ok(_) => Ok(vec![format!(
            "{store_path} is copied into the internal store in the background ({INSTALL_JOB}.service, idle I/O); \
             the boot menu names it once that is done and keeps the current default until then; \
             a shutdown finishes it first (`nix-ssd status` shows it)"
        )]),
        // A job of that name still runs (an earlier switch): it takes the new record next.
        Err(CmdError::Failed { stderr, .. }) if stderr.contains("already") => {
            Ok(vec![format!("{store_path}: queued behind the copy already running ({INSTALL_JOB}.service)")])
        }
        // No systemd to run it (a chroot, nixos-install): do it now.
        Err(_) => finish(),
    }
}

/// Runs what the record asks, until no record is left (a switch may add a newer one meanwhile);
/// one at a time. Used by the background job and by `at-shutdown`.
pub fn finish() -> Result<Vec<String>, InstallError> {
    let _job = lock(INSTALL_LOCK)?;
    let mut lines = Vec::new();
    while let Some(p) = pending() {
        if fs::symlink_metadata(&p.system).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            // collected since (a newer generation's switch and a GC): nothing left to install
            fs::remove_file(PENDING_INSTALL).ctx(format!("remove {PENDING_INSTALL}"))?;
            lines.push(format!("{} is gone: dropped its pending boot loader install", p.system));
            continue;
        }
        lines.extend(pin::pin(std::slice::from_ref(&p.system))?);
        lines.extend(run_loader(&p.loader, &p.system, &p.args, &p.env)?);
        lines.extend(prune());
        let _record = lock(RECORD_LOCK)?;
        if pending().as_ref() == Some(&p) {
            fs::remove_file(PENDING_INSTALL).ctx(format!("remove {PENDING_INSTALL}"))?;
        }
    }
    Ok(lines)
}

/// Held until the returned file is dropped: [`INSTALL_LOCK`] (one installer at a time) or
/// [`RECORD_LOCK`] (the record replaced or removed, never both at once).
fn lock(path: &str) -> Result<fs::File, IoError> {
    let dir = Path::new(path).parent().unwrap_or(Path::new("/run"));
    fs::create_dir_all(dir).ctx(format!("mkdir {}", dir.display()))?;
    let f = fs::File::create(path).ctx(format!("open {path}"))?;
    f.lock().ctx(format!("lock {path}"))?;
    Ok(f)
}

fn write_pending(p: &Pending) -> Result<(), IoError> {
    let json = serde_json::to_string_pretty(p)
        .map_err(|e| IoError::new("encode the install record", std::io::Error::other(e)))?;
    write_atomic_mode(Path::new(PENDING_INSTALL), &json, 0o600, STATE_DIR_MODE)
}

/// The loader's installer (a command line, as NixOS's `system.build.installBootLoader`) with
/// SYSTEM and `args` appended, and the switch's `env` (this process's own when run at once).
fn run_loader(
    loader: &str,
    system: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<Vec<String>, InstallError> {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", &format!("{loader} \"$@\""), "nix-ssd-install-bootloader", system]).args(args);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd::output(&mut c)?;
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    lines.push(format!("the boot loader's installer ran for {system}"));
    Ok(lines)
}

/// prune-pins after the menu changed; a failure does not fail the install (the old pins stay).
fn prune() -> Vec<String> {
    pin::prune().unwrap_or_else(|e| vec![format!("nix-ssd prune-pins failed; the old pins stay: {e}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_the_switch_s_request() {
        let p = Pending {
            system: "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-x".into(),
            loader: "/nix/store/x-extlinux-conf-builder.sh -g 20 -t 5 -c".into(),
            args: vec![],
            env: vec![("NIXOS_INSTALL_BOOTLOADER".into(), "1".into())],
            at: 1_796_613_385,
        };
        let back: Pending = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let older: Pending =
            serde_json::from_str(r#"{"system":"/nix/store/a","loader":"l","args":[],"at":1}"#).unwrap();
        assert!(older.env.is_empty(), "a record without env is read");
    }

    #[test]
    fn the_loader_gets_the_system_its_arguments_and_the_switch_s_variables() {
        let env = [("NIXOS_INSTALL_BOOTLOADER".to_string(), "1".to_string())];
        let out = run_loader("printf '%s|' $NIXOS_INSTALL_BOOTLOADER", "/nix/store/s", &["--x".into()], &env).unwrap();
        assert_eq!(out[0], "1|/nix/store/s|--x|");
    }
}
