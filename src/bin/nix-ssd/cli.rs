//! The `nix-ssd` command line: clap's definition only. Also read by the tests (tests/cli.rs
//! includes this file), which generate the shell completions from it and check the man pages
//! against it.
use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Parser, Subcommand};
use nix_ssd_generator::generator::config::Mode;
use nix_ssd_generator::ops::lvm;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "nix-ssd",
    version,
    about = "Put Nix's writable store layer, builds and caches on a btrfs SSD — and keep working without it",
    after_help = "Manual: nix-ssd(8), nix-ssd-generator(8), nix-ssd-generator.conf(5)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Print the units nix-ssd-generator would write for this machine, with their file names
    Preview {
        /// Use this kernel command line instead of /proc/cmdline
        #[arg(long, value_name = "LINE", value_parser = OsStringValueParser::new().try_map(utf8_cmdline))]
        cmdline: Option<String>,
        /// Read config files and device data below this directory instead of /
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Also read device data from this saved `blkid -o export` output
        #[arg(long, value_name = "FILE")]
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
        /// Overwrite an existing file system or partition table
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
    /// Make closures work without the SSD: root them in the internal store and, while the overlay is up, stage what it lacks, which the next boot moves in before stacking (run for every new boot default)
    Pin {
        /// Store paths, or links to them (e.g. /nix/var/nix/profiles/system)
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Drop the pins of NixOS systems that no profile generation, boot menu entry, running or booted system names any more (pins made by hand stay)
    PrunePins,
    /// The NixOS module's boot loader hook: run the loader's installer for SYSTEM once it boots without the SSD — now if it does, else after copying it into the internal store in the background (a shutdown finishes it first)
    InstallBootloader {
        /// The boot loader's installer (a shell command line; SYSTEM and ARGS are appended)
        #[arg(long, required_unless_present = "finish")]
        loader: Option<String>,
        /// Finish what a switch left to the background job (the job itself, and at-shutdown)
        #[arg(long, conflicts_with_all = ["loader", "system"])]
        finish: bool,
        /// The new boot default (a store path or a link to one)
        #[arg(required_unless_present = "finish")]
        system: Option<String>,
        /// More arguments for the installer
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Show the boot menu (extlinux, GRUB or systemd-boot), its default (*) and which entries boot without the SSD; --default makes an entry the default
    BootMenu {
        /// Read (and edit) the menu below this directory instead of /
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Make this entry the default (an extlinux label, a GRUB title path, a systemd-boot entry file)
        #[arg(long)]
        default: Option<String>,
    },
    /// At shutdown, after nix-daemon stopped (nix-ssd.service's ExecStop=): a boot loader install a switch left to the background finished, the boot default made bootable without the SSD (pinned, or the menu's default moved to the newest entry that boots), prune-pins, sync-roots, then sync the SSD and close the session
    #[command(hide = true)]
    AtShutdown,
    /// Move the paths `pin` staged into the internal store and register them (run at boot by nix-ssd-pins.service, before the overlay and nix-daemon)
    #[command(hide = true)]
    ApplyPins,
    /// Root in the internal store every path of it the SSD layer depends on (run when nix-ssd.service stops)
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

impl Cmd {
    /// The subcommand's name, as the user types it (messages are prefixed with it).
    pub fn name(&self) -> &'static str {
        match self {
            Cmd::Preview { .. } => "preview",
            Cmd::Status { .. } => "status",
            Cmd::Setup { .. } => "setup",
            Cmd::Enroll { .. } => "enroll",
            Cmd::Pin { .. } => "pin",
            Cmd::PrunePins => "prune-pins",
            Cmd::InstallBootloader { .. } => "install-bootloader",
            Cmd::BootMenu { .. } => "boot-menu",
            Cmd::AtShutdown => "at-shutdown",
            Cmd::ApplyPins => "apply-pins",
            Cmd::SyncRoots => "sync-roots",
            Cmd::Reclaim { .. } => "reclaim",
            Cmd::LvmPlan(_) => "lvm-plan",
            Cmd::Activate { .. } => "activate",
        }
    }

    /// Does it need root? Everything but looking (preview, status, boot-menu) mounts, writes the internal
    /// store or its GC roots, or reads devices (setup --dry-run too: it probes the device).
    pub fn needs_root(&self) -> bool {
        !matches!(self, Cmd::Preview { .. } | Cmd::Status { .. } | Cmd::BootMenu { default: None, .. })
    }
}

/// The `nix-ssd lvm-plan` command line.
#[derive(Debug, Clone, clap::Args)]
pub struct LvmArgs {
    /// Volume group holding the cached LV, its HDD PV and the SSD PV
    #[arg(long, value_name = "NAME")]
    pub vg: String,
    /// The SSD physical volume: the new cache pool and the Nix LV are allocated on it only
    #[arg(long, value_name = "DEVICE")]
    pub pv: String,
    /// Data size of the new cache pool (binary units: 512M, 1.5G, 200G, 1T; plain number = bytes)
    #[arg(long, value_name = "SIZE", value_parser = lvm::parse_size)]
    pub cache_size: u64,
    /// Metadata size of the new cache pool (lvmcache(7): about 1/1000 of the cache size, at least 8M)
    #[arg(long, value_name = "SIZE", value_parser = lvm::parse_size)]
    pub meta_size: u64,
    /// Size of the new LV that gets the Nix btrfs (`nix-ssd setup`)
    #[arg(long, value_name = "SIZE", value_parser = lvm::parse_size)]
    pub nix_size: u64,
    /// The LV to keep cached [default: the only cached LV of the VG; needed when it is no longer cached]
    #[arg(long, value_name = "NAME")]
    pub lv: Option<String>,
    /// Name of the new cache pool [default: the current pool's name, else "cpool"]
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
    /// Name of the new LV for Nix
    #[arg(long, value_name = "NAME", default_value = "nix")]
    pub nix_name: String,
    /// Run the steps (without it the plan is only printed); stops at the first failure and says what to do next
    #[arg(long)]
    pub execute: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "overlay" => Ok(Mode::Overlay),
        "build" => Ok(Mode::Build),
        _ => Err("expected overlay or build".into()),
    }
}

/// A kernel command line is text: a `--cmdline` that is not UTF-8 is refused saying where.
fn utf8_cmdline(s: OsString) -> Result<String, String> {
    let bytes = s.as_encoded_bytes();
    std::str::from_utf8(bytes).map(String::from).map_err(|e| {
        let at = e.valid_up_to();
        format!("not UTF-8: byte {at} is 0x{:02x}; pass the command line as UTF-8 text", bytes[at])
    })
}
