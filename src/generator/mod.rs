//! The generator side: what runs at early boot as `nix-ssd-generator NORMAL [EARLY LATE]`.
//! Inputs ([`sources`]: kernel command line, config files, device data already known) → a
//! pure decision ([`plan::plan`]) → unit text from `unit-templates/` ([`render::render`]) →
//! one exclusive writer ([`write::write_all`]). It never blocks, waits or runs a program, and
//! holds no `unsafe` code. `nix-ssd` reuses the config and the plan.
#![deny(unsafe_code)]
pub mod blkid;
pub mod cmdline;
pub mod config;
pub mod escape;
pub mod log;
pub mod plan;
pub mod render;
pub mod sources;
pub mod timespan;
pub mod write;

use log::Logger;
use plan::Outcome;
use render::OutFile;
use sources::Root;
use std::path::PathBuf;

pub const USAGE: &str = "usage: nix-ssd-generator NORMAL-DIR [EARLY-DIR LATE-DIR]\n\
    A systemd generator (see systemd.generator(7)); preview its output with `nix-ssd preview`.";

/// Reads inputs and decides; pure apart from reading.
pub fn decide(root: &Root) -> (Outcome, Vec<OutFile>) {
    let inputs = sources::gather(root);
    let outcome = plan::plan(&inputs);
    let files = outcome.result.as_ref().map(render::render).unwrap_or_default();
    (outcome, files)
}

/// Runs the generator; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let dirs: Vec<&String> = args.iter().skip(1).collect();
    if !(dirs.len() == 1 || dirs.len() == 3) || dirs.iter().any(|d| d.starts_with('-') || d.is_empty()) {
        eprintln!("{USAGE}");
        return 2;
    }
    let normal = PathBuf::from(dirs[0]);
    let cmdline = sources::cmdline().ok();
    let mut log = Logger::new("nix-ssd-generator", cmdline.as_deref());
    if std::env::var("SYSTEMD_IN_INITRD").is_ok_and(|v| v == "1") {
        log.log(log::DEBUG, "running in the initrd; nothing to do there");
        return 0;
    }
    let root = Root::from_env();
    // The decision is pure and total; catching a panic anyway means a bug costs this boot the
    // SSD, never the boot itself, and says so.
    let decided = std::panic::catch_unwind(|| decide(&root));
    let (outcome, files) = match decided {
        Ok(v) => v,
        Err(_) => {
            log.log(log::ERR, "internal error while deciding; writing no units (please report this)");
            return 1;
        }
    };
    for w in &outcome.warnings {
        log.log(log::WARNING, w);
    }
    if files.is_empty() {
        let prio = if matches!(outcome.result, Err(plan::Skip::Disabled(_))) { log::NOTICE } else { log::WARNING };
        log.log(prio, &outcome.summary());
        return 0;
    }
    match write::write_all(&normal, &files) {
        Ok(()) => {
            log.log(log::INFO, &format!("{}; wrote {} files", outcome.summary(), files.len()));
            0
        }
        Err(e) => {
            log.log(log::ERR, &e.to_string());
            1
        }
    }
}
