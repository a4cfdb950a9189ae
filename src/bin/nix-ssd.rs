//! `nix-ssd`: the operator command. The command line only: each subcommand is a module of
//! `nix_ssd_generator::ops`, which returns what to print.
use clap::{Parser, Subcommand};
use nix_ssd_generator::generator::config::{Config, DeviceSpec, Mode, Tag};
use nix_ssd_generator::generator::sources::{self, Root};
use nix_ssd_generator::ops::activate::{self, Request};
use nix_ssd_generator::ops::reclaim::ReclaimError;
use nix_ssd_generator::ops::{apply_pins, at_shutdown, enroll, lvm, pin, preview, reclaim, setup, status, sync_roots};
use nix_ssd_generator::overlay;
use nix_ssd_generator::paths::REMOUNT_HOOK_NAME;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nix-ssd",
    version,
    about = "Put Nix's writable store layer, builds and caches on a btrfs SSD — and keep working without it"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the units nix-ssd-generator would write for this machine, with their file names
    Preview {
        /// Use this kernel command line instead of /proc/cmdline
        #[arg(long)]
        cmdline: Option<String>,
        /// Read config files and device data below this directory instead of /
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Also read device data from this saved `blkid -o export` output
        #[arg(long)]
        blkid_export: Option<PathBuf>,
    },
    /// Show what was decided, what is mounted and what nix-daemon uses (exit 0 healthy, 1 degraded: working without the SSD, 2 broken)
    Status {
        /// Print the report as JSON (schema documented in nix-ssd(8); field "schema" is its version)
        #[arg(long)]
        json: bool,
    },
    /// Prepare a device as the Nix SSD: btrfs, label, subvolumes and directories (destroys its contents)
    Setup {
        /// The block device (or image file)
        device: String,
        /// Overwrite an existing file system
        #[arg(long, conflicts_with = "adopt")]
        force: bool,
        /// Convert a btrfs with separate @upper/@work subvolumes (@upper/@work/@build/@cache), keeping @upper's files
        #[arg(long)]
        adopt: bool,
        /// Print every step, change nothing
        #[arg(long)]
        dry_run: bool,
        /// File system label (default: the configured LABEL=, else NIX_SSD)
        #[arg(long)]
        label: Option<String>,
    },
    /// Record a btrfs prepared elsewhere (or adopted) as this machine's SSD: only enrolled SSDs are stacked (`setup` enrols what it makes)
    Enroll {
        /// The block device (or image file)
        device: String,
    },
    /// Make closures work without the SSD: root them in the internal (eMMC) store and, while the overlay is up, stage what it lacks, which the next boot moves in before stacking (run for every new boot default)
    Pin {
        /// Store paths, or links to them (e.g. /nix/var/nix/profiles/system)
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Drop the pins of NixOS systems that no profile generation, boot menu entry, running or booted system names any more (pins made by hand stay)
    PrunePins,
    /// At shutdown, after nix-daemon stopped (nix-ssd.service's ExecStop=): prune-pins, sync-roots, then sync the SSD and close the session
    #[command(hide = true)]
    AtShutdown,
    /// Move the paths `pin` staged into the internal (eMMC) store and register them (run at boot by nix-ssd-pins.service, before the overlay and nix-daemon)
    #[command(hide = true)]
    ApplyPins,
    /// Root in the internal (eMMC) store every path of it the SSD layer depends on (run when nix-ssd.service stops)
    SyncRoots,
    /// Free space on a full SSD: release the space reserve, `nix-store --gc` through nix-daemon, make the reserve again
    Reclaim {
        /// More arguments for `nix-store --gc`, e.g. `-- --print-dead` (not `--max-freed`: Nix's local-overlay store miscounts what it freed, NixOS/nix#16269; refused)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        gc_args: Vec<String>,
    },
    /// Move an LVM cache to writeback and make room for Nix on its SSD (uncache, new writeback cache pool on the SSD PV, re-attach, new LV for Nix, nix-ssd setup), checked against the live pvs/lvs; prints the commands, runs them only with --execute
    LvmPlan(LvmArgs),
    /// Stack the overlay / wire the build dir (run by nix-ssd.service before nix-daemon)
    #[command(hide = true)]
    Activate {
        #[arg(long, value_parser = parse_mode)]
        mode: Mode,
        #[arg(long)]
        overlay_dir: Option<PathBuf>,
        #[arg(long)]
        build_dir: Option<PathBuf>,
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        #[arg(long = "cache-user")]
        cache_users: Vec<String>,
        #[arg(long)]
        env_file: PathBuf,
    },
}

/// The `nix-ssd lvm-plan` command line.
#[derive(Debug, Clone, clap::Args)]
struct LvmArgs {
    /// Volume group holding the cached LV, its HDD PV and the SSD PV
    #[arg(long, value_name = "NAME")]
    vg: String,
    /// The SSD physical volume: the new cache pool and the Nix LV are allocated on it only
    #[arg(long, value_name = "DEVICE")]
    pv: String,
    /// Data size of the new cache pool (binary units: 512M, 200G, 1T; plain number = bytes)
    #[arg(long, value_name = "SIZE", value_parser = lvm::parse_size)]
    cache_size: u64,
    /// Metadata size of the new cache pool (lvmcache(7): about 1/1000 of the cache size, at least 8M)
    #[arg(long, value_name = "SIZE", value_parser = lvm::parse_size)]
    meta_size: u64,
    /// Size of the new LV that gets the Nix btrfs (`nix-ssd setup`)
    #[arg(long, value_name = "SIZE", value_parser = lvm::parse_size)]
    nix_size: u64,
    /// The LV to keep cached [default: the only cached LV of the VG; needed when it is no longer cached]
    #[arg(long, value_name = "NAME")]
    lv: Option<String>,
    /// Name of the new cache pool [default: the current pool's name, else "cpool"]
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
    /// Name of the new LV for Nix
    #[arg(long, value_name = "NAME", default_value = "nix")]
    nix_name: String,
    /// Run the steps (without it the plan is only printed); stops at the first failure and says what to do next
    #[arg(long)]
    execute: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "overlay" => Ok(Mode::Overlay),
        "build" => Ok(Mode::Build),
        _ => Err("expected overlay or build".into()),
    }
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
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nix-ssd {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A progress sink that prints each step on stderr, prefixed with the subcommand.
fn progress(what: &'static str) -> impl FnMut(&str) {
    move |l: &str| eprintln!("nix-ssd {what}: {l}")
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
    match Cli::parse().cmd {
        Cmd::Pin { paths } => report("pin", pin::pin(&paths)),
        Cmd::ApplyPins => report("apply-pins", apply_pins::apply_pins()),
        Cmd::PrunePins => report("prune-pins", pin::prune()),
        Cmd::AtShutdown => report("at-shutdown", at_shutdown::at_shutdown()),
        Cmd::Enroll { device } => report("enroll", enroll::enroll(&device, &setup_layout(None))),
        Cmd::SyncRoots => report("sync-roots", sync_roots::sync_roots().map(|l| vec![l])),
        Cmd::Reclaim { gc_args } => {
            let r = reclaim::reclaim(&gc_args);
            if let Err(ReclaimError::Gc { lines, .. }) = &r {
                lines.iter().for_each(|l| eprintln!("nix-ssd reclaim: {l}"));
            }
            report("reclaim", r)
        }
        Cmd::LvmPlan(a) => {
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
            let r = lvm::lvm_plan(&req, a.execute, &mut |l: &str| println!("{l}"), &mut progress("lvm-plan"));
            report("lvm-plan", r.map(|()| Vec::new()))
        }
        Cmd::Status { json } => {
            let s = status::status();
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", s.text());
            }
            ExitCode::from(s.exit_code())
        }
        Cmd::Setup { device, force, adopt, dry_run, label } => {
            let r = setup::setup(&device, &setup_layout(label), force, adopt, dry_run, &mut progress("setup"));
            report("setup", r.map(|()| Vec::new()))
        }
        Cmd::Preview { cmdline, root, blkid_export } => {
            report::<std::convert::Infallible>("preview", Ok(preview::preview(cmdline, &root, blkid_export.as_deref())))
        }
        Cmd::Activate { mode, overlay_dir, build_dir, cache_dir, cache_users, env_file } => {
            let req = Request { mode, overlay_dir, build_dir, cache_dir, cache_users, env_file };
            report("activate", activate::activate(&req).map(|r| r.lines))
        }
    }
}
