//! `nix-ssd`: the operator command. The command line only: clap's definition is in `cli.rs`,
//! each subcommand is a module of `nix_ssd_generator::ops`, which returns what to print.
//! Output never panics: a closed standard output (`nix-ssd status | head -1`) ends it quietly
//! with the documented exit status, any other write error is said on standard error.
mod cli;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd};
use nix_ssd_generator::generator::config::{Config, DeviceSpec, Tag};
use nix_ssd_generator::generator::sources::{self, Root};
use nix_ssd_generator::ops::activate::{self, Request};
use nix_ssd_generator::ops::reclaim::ReclaimError;
use nix_ssd_generator::ops::{
    apply_pins, at_shutdown, boot_default, enroll, install_bootloader, lvm, pin, preview, reclaim, setup, status,
    sync_roots,
};
use nix_ssd_generator::overlay;
use nix_ssd_generator::paths::REMOUNT_HOOK_NAME;
use nix_ssd_generator::sys::users;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Standard output that a closed pipe cannot crash: lines are written until the first error,
/// which is kept for [`Out::finish`].
#[derive(Default)]
struct Out {
    err: Option<io::Error>,
}

impl Out {
    fn line(&mut self, l: &str) {
        self.text(&format!("{l}\n"));
    }

    fn text(&mut self, t: &str) {
        if self.err.is_none()
            && let Err(e) = io::stdout().lock().write_all(t.as_bytes())
        {
            self.err = Some(e);
        }
    }

    /// The exit status `code` the subcommand decided, after its output. A reader that went
    /// away (EPIPE: `| head`, `| true`) changes nothing; any other write error (`>/dev/full`)
    /// is said on standard error and is a failure (1), but for `status`, whose status is the
    /// machine's health.
    fn finish(mut self, what: &str, code: u8) -> ExitCode {
        if self.err.is_none()
            && let Err(e) = io::stdout().lock().flush()
        {
            self.err = Some(e);
        }
        match self.err {
            None => ExitCode::from(code),
            Some(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(code),
            Some(e) => {
                warn(&format!("nix-ssd {what}: cannot write to standard output: {e}"));
                ExitCode::from(if what == "status" || code != 0 { code } else { 1 })
            }
        }
    }
}

/// A line on standard error; a closed standard error is no reason to stop.
fn warn(l: &str) {
    let _ = writeln!(io::stderr().lock(), "{l}");
}

/// The layout `setup` makes: the label and subvolume names from the config files.
fn setup_layout(label: Option<String>) -> setup::Layout {
    let mut config = Config::default();
    for f in sources::config_files(&Root("/".into())) {
        if let Ok(t) = &f.text {
            config.apply_file(&f.path, t);
        }
    }
    let label = label.unwrap_or_else(|| match &config.device {
        DeviceSpec::Tag(Tag::Label, l) => l.clone(),
        _ => "NIX_SSD".into(),
    });
    setup::Layout {
        device: config.device,
        label,
        overlay: config.overlay_subvolume,
        build: config.build_subvolume,
        cache: config.cache_subvolume,
    }
}

/// Prints the lines on stdout, or the error (prefixed with the subcommand) on stderr.
fn report<E: std::fmt::Display>(what: &str, r: Result<Vec<String>, E>) -> ExitCode {
    match r {
        Ok(lines) => {
            let mut out = Out::default();
            lines.iter().for_each(|l| out.line(l));
            out.finish(what, 0)
        }
        Err(e) => {
            warn(&format!("nix-ssd {what}: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// A progress sink that prints each step on stderr, prefixed with the subcommand.
fn progress(what: &'static str) -> impl FnMut(&str) {
    move |l: &str| warn(&format!("nix-ssd {what}: {l}"))
}

/// The command line, or clap's error. An unknown subcommand is never answered with a hidden
/// (internal) one: `nix-ssd stat` suggests status, not at-shutdown.
fn parse() -> Cli {
    Cli::try_parse().unwrap_or_else(|e| {
        let cmd = Cli::command();
        let hidden = |n: &str| cmd.get_subcommands().any(|s| s.is_hide_set() && s.get_name() == n);
        let Some(ContextValue::Strings(tips)) = e.get(ContextKind::SuggestedSubcommand) else { e.exit() };
        let shown: Vec<String> = tips.iter().filter(|t| !hidden(t)).cloned().collect();
        let mut clean = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&cmd);
        for (k, v) in e.context().filter(|(k, _)| *k != ContextKind::SuggestedSubcommand) {
            clean.insert(k, v.clone());
        }
        if !shown.is_empty() {
            clean.insert(ContextKind::SuggestedSubcommand, ContextValue::Strings(shown));
        }
        clean.exit()
    })
}

fn main() -> ExitCode {
    // Nix calls the remount hook as a plain executable with the store directory: a link named
    // nix-ssd-remount-hook to this program.
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name().is_some_and(|n| n == REMOUNT_HOOK_NAME) {
        let store = args.next().map(PathBuf::from).unwrap_or_else(|| "/nix/store".into());
        return report("remount-hook", overlay::remount(&store).map(|()| Vec::new()));
    }
    let cmd = parse().cmd;
    if cmd.needs_root() && !users::is_root() {
        let what = cmd.name();
        warn(&format!("nix-ssd {what}: must be run as root (e.g. `sudo nix-ssd {what} …`)"));
        return ExitCode::FAILURE;
    }
    run(cmd)
}

fn run(cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::Pin { paths } => report("pin", pin::pin(&paths)),
        Cmd::ApplyPins => report("apply-pins", apply_pins::apply_pins()),
        Cmd::PrunePins => report("prune-pins", pin::prune()),
        Cmd::InstallBootloader { finish: true, .. } => report("install-bootloader", install_bootloader::finish()),
        Cmd::InstallBootloader { loader, system, args, .. } => report(
            "install-bootloader",
            install_bootloader::install_bootloader(&loader.unwrap_or_default(), &system.unwrap_or_default(), &args),
        ),
        Cmd::BootMenu { root, default } => report("boot-menu", boot_default::boot_menu(&root, default.as_deref())),
        Cmd::AtShutdown => report("at-shutdown", at_shutdown::at_shutdown()),
        Cmd::Enroll { device } => report("enroll", enroll::enroll(&device, &setup_layout(None))),
        Cmd::SyncRoots => report("sync-roots", sync_roots::sync_roots().map(|l| vec![l])),
        Cmd::Reclaim { gc_args } => {
            let r = reclaim::reclaim(&gc_args);
            if let Err(ReclaimError::Gc { lines, .. }) = &r {
                lines.iter().for_each(|l| warn(&format!("nix-ssd reclaim: {l}")));
            }
            report("reclaim", r)
        }
        Cmd::LvmPlan(a) => lvm_plan(a),
        Cmd::Status { json } => {
            let s = status::status();
            let mut out = Out::default();
            if json {
                out.line(&serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                out.text(&s.text());
            }
            out.finish("status", s.exit_code())
        }
        Cmd::Setup { device, force, adopt, dry_run, label } => {
            let r = setup::setup(&device, &setup_layout(label), force, adopt, dry_run, &mut progress("setup"));
            report("setup", r.map(|()| Vec::new()))
        }
        Cmd::Preview { cmdline, root, blkid_export } => {
            report("preview", preview::preview(cmdline, &root, blkid_export.as_deref()))
        }
        Cmd::Activate { mode, overlay_dir, build_dir, cache_dir, cache_users, env_file } => {
            let req = Request { mode, overlay_dir, build_dir, cache_dir, cache_users, env_file };
            report("activate", activate::activate(&req).map(|r| r.lines))
        }
    }
}

fn lvm_plan(a: cli::LvmArgs) -> ExitCode {
    let req = lvm::Request {
        vg: a.vg,
        pv: a.pv,
        lv: a.lv,
        pool: a.pool,
        nix_name: a.nix_name,
        cache_size: a.cache_size,
        meta_size: a.meta_size,
        nix_size: a.nix_size,
    };
    let mut out = Out::default();
    let r = lvm::lvm_plan(&req, a.execute, &mut |l: &str| out.line(l), &mut progress("lvm-plan"));
    match r {
        Ok(()) => out.finish("lvm-plan", 0),
        Err(e) => {
            warn(&format!("nix-ssd lvm-plan: {e}"));
            out.finish("lvm-plan", 1)
        }
    }
}
