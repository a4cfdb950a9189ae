//! `nix-ssd`: the operator command. Shares the generator's config and plan code.
use clap::{Parser, Subcommand};
use nix_ssd_generator::activate::{self, Request};
use nix_ssd_generator::generator::config::{Config, DeviceSpec, Mode, Tag};
use nix_ssd_generator::generator::plan::{self, Inputs};
use nix_ssd_generator::generator::render::{self, Content};
use nix_ssd_generator::generator::sources::{self, Root};
use nix_ssd_generator::{pin, reserve, setup, status};
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
        /// Convert a btrfs laid out by the seed's plan (@upper/@work/@build/@cache), keeping @upper's files
        #[arg(long)]
        adopt: bool,
        /// Print every step, change nothing
        #[arg(long)]
        dry_run: bool,
        /// File system label (default: the configured LABEL=, else NIX_SSD)
        #[arg(long)]
        label: Option<String>,
    },
    /// Copy closures into the eMMC store and root them there, so they work without the SSD (run for every new boot default)
    Pin {
        /// Store paths, or links to them (e.g. /nix/var/nix/profiles/system)
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Root in the eMMC store every eMMC path the SSD layer depends on (run when nix-ssd.service stops)
    SyncRoots,
    /// Free space on a full SSD: release the space reserve, `nix-store --gc` through nix-daemon, make the reserve again
    Reclaim {
        /// More arguments for `nix-store --gc`, e.g. `-- --max-freed 10G`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        gc_args: Vec<String>,
    },
    /// Plan the seed's Stage 2 on LVM (uncache, new writeback cache pool on the SSD PV, re-attach, new LV for Nix, nix-ssd setup), checked against the live pvs/lvs; prints it, runs it only with --execute
    LvmPlan(nix_ssd_generator::lvm::Args),
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

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "overlay" => Ok(Mode::Overlay),
        "build" => Ok(Mode::Build),
        _ => Err("expected overlay or build".into()),
    }
}

fn preview(cmdline: Option<String>, root: PathBuf, blkid_export: Option<PathBuf>) -> ExitCode {
    let root = Root(root);
    let mut notes = Vec::new();
    let mut devices = sources::devices(&root, &mut notes);
    if let Some(f) = blkid_export {
        match std::fs::read_to_string(&f) {
            Ok(t) => {
                let (d, errs) = nix_ssd_generator::generator::blkid::parse_export(&t);
                devices.extend(d);
                notes.extend(errs.into_iter().map(|e| format!("{}: {e}; skipped", f.display())));
            }
            Err(e) => notes.push(format!("cannot read {}: {e}", f.display())),
        }
    }
    let inputs = Inputs {
        cmdline: cmdline.map(Ok).unwrap_or_else(sources::cmdline),
        config_files: sources::config_files(&root),
        devices,
        device_notes: notes,
    };
    let outcome = plan::plan(&inputs);
    for w in &outcome.warnings {
        println!("# warning: {w}");
    }
    println!("# {}", outcome.summary());
    let Ok(p) = &outcome.result else { return ExitCode::SUCCESS };
    for f in render::render(p) {
        match f.content {
            Content::Text(t) => println!("\n==> {} <==\n{t}", f.path),
            Content::Symlink(t) => println!("\n==> {} -> {t}", f.path),
        }
    }
    ExitCode::SUCCESS
}

fn setup(device: String, force: bool, adopt: bool, dry_run: bool, label: Option<String>) -> ExitCode {
    let root = Root("/".into());
    let mut config = Config::default();
    for f in sources::config_files(&root) {
        if let Ok(t) = &f.text {
            config.apply_file(&f.path, t);
        }
    }
    let label = label.unwrap_or_else(|| match &config.device {
        DeviceSpec::Tag(Tag::Label, l) => l.clone(),
        _ => "NIX_SSD".into(),
    });
    let layout = setup::Layout {
        label,
        overlay: config.overlay_subvolume,
        build: config.build_subvolume,
        cache: config.cache_subvolume,
    };
    match setup::setup(&device, &layout, force, adopt, dry_run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nix-ssd setup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(what: &str, r: Result<Vec<String>, impl std::fmt::Display>) -> ExitCode {
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

fn main() -> ExitCode {
    // Nix calls the remount hook as a plain executable with the store directory: a link named
    // nix-ssd-remount-hook to this program.
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name().is_some_and(|n| n == "nix-ssd-remount-hook") {
        let store = args.next().map(PathBuf::from).unwrap_or_else(|| "/nix/store".into());
        return report("remount-hook", activate::remount(&store).map(|()| Vec::new()));
    }
    match Cli::parse().cmd {
        Cmd::Pin { paths } => report("pin", pin::pin(&paths)),
        Cmd::SyncRoots => report("sync-roots", pin::sync_roots().map(|l| vec![l])),
        Cmd::Reclaim { gc_args } => report("reclaim", reserve::reclaim(&gc_args)),
        Cmd::LvmPlan(args) => nix_ssd_generator::lvm::cli(&args),
        Cmd::Status { json } => {
            let s = status::status();
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", s.text());
            }
            ExitCode::from(s.exit_code())
        }
        Cmd::Setup { device, force, adopt, dry_run, label } => setup(device, force, adopt, dry_run, label),
        Cmd::Preview { cmdline, root, blkid_export } => preview(cmdline, root, blkid_export),
        Cmd::Activate { mode, overlay_dir, build_dir, cache_dir, cache_users, env_file } => {
            let req = Request { mode, overlay_dir, build_dir, cache_dir, cache_users, env_file };
            match activate::activate(&req) {
                Ok(r) => {
                    for l in &r.lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("nix-ssd activate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
