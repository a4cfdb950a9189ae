//! The on-disk contract: every fixed path and mode the generator and `nix-ssd` agree on, in one
//! place. "Lower store" is the machine's own store on its internal disk (the eMMC on the Rock
//! 5C); the SSD's overlay subvolume holds the "upper layer" stacked on it. Paths that the
//! configuration chooses (the SSD mount point, subvolume names) live in
//! [`crate::generator::config`].

/// The Nix store as every process sees it.
pub const STORE: &str = "/nix/store";
/// Nix's state directory of the lower store (database, GC roots, profiles).
pub const LOWER_STATE: &str = "/nix/var/nix";
/// The lower store's database directory; read-only while the overlay is up.
pub const LOWER_DB_DIR: &str = "/nix/var/nix/db";
/// The lower store's database.
pub const LOWER_DB: &str = "/nix/var/nix/db/db.sqlite";
/// The lower store seen read-only and private underneath the overlay.
pub const LOWER_STORE: &str = "/nix/.lower-store";

/// The operator command; the generated service runs its `activate` subcommand.
pub const CLI: &str = match option_env!("NIX_SSD_CLI") {
    Some(p) => p,
    None => "/usr/bin/nix-ssd",
};
/// The name under which Nix calls the remount hook: a link to `nix-ssd` beside it.
pub const REMOUNT_HOOK_NAME: &str = "nix-ssd-remount-hook";

/// Written by `nix-ssd activate`, read by nix-daemon.service (`EnvironmentFile=-`).
pub const ENV_FILE: &str = "/run/nix-ssd/nix-daemon.env";
/// Written by `nix-ssd activate` only while the overlay is up: NIX_REMOTE=daemon for clients
/// (root shells, nix-gc, nix-optimise). Always beside [`ENV_FILE`]: see [`client_env`].
pub const CLIENT_ENV: &str = "/run/nix-ssd/client.env";
/// The nix.conf fragment (`store = daemon`) written beside [`ENV_FILE`] while the overlay is
/// up; the NixOS module `!include`s it.
pub const CLIENT_CONF_NAME: &str = "nix-client.conf";

/// `client.env` beside the daemon's env file (`activate --env-file` may move both).
pub fn client_env(env_file: &std::path::Path) -> std::path::PathBuf {
    env_file.with_file_name("client.env")
}

/// Why `activate` refused the SSD this boot, beside the daemon's env file, for `nix-ssd
/// status` (the refused file system's mounts are gone by then). Absent when it was not.
pub fn refusal(env_file: &std::path::Path) -> std::path::PathBuf {
    env_file.with_file_name("refused")
}

/// The nix.conf fragment beside the daemon's env file.
pub fn client_conf(env_file: &std::path::Path) -> std::path::PathBuf {
    env_file.with_file_name(CLIENT_CONF_NAME)
}

/// The btrfs UUIDs of this machine's SSDs (one a line), written by `nix-ssd setup` and
/// `nix-ssd enroll`; only a file system listed here or in [`ENROLLED_ETC`] is ever stacked.
/// On the internal disk, root only (/var/lib is writable on NixOS too).
pub const ENROLLED: &str = "/var/lib/nix-ssd/enrolled";
/// The same, as the configuration states it (the NixOS module's `enrolledUuids`); read only.
pub const ENROLLED_ETC: &str = "/etc/nix-ssd/enrolled";
/// The enrolment tokens: one line `UUID TOKEN` for each enrolled SSD bound to this machine.
/// The same token is in [`TOKEN_NAME`] at the root of each of that SSD's subvolumes, readable by
/// root only, so a stick that copies the UUID (every user can read it in /dev/disk/by-uuid) is
/// still not this machine's SSD. Root only, like [`ENROLLED`].
pub const TOKENS: &str = "/var/lib/nix-ssd/enrolment-tokens";
/// The token's file at the root of each subvolume of an enrolled SSD (mode [`ENROLLED_MODE`]).
pub const TOKEN_NAME: &str = ".nix-ssd-enrolment";
/// This machine's key for signing what its nix-daemon builds while the overlay is up (the
/// daemon's `secret-key-files`), and its public half, which `nix-ssd pin` trusts: a path in
/// the SSD's database that was never built here carries no such signature and is not pinned.
pub const SIGNING_KEY: &str = "/var/lib/nix-ssd/signing-key.sec";
pub const SIGNING_PUB: &str = "/var/lib/nix-ssd/signing-key.pub";
/// Modes of [`ENROLLED`], [`TOKENS`] and the token files, and of their directory.
pub const ENROLLED_MODE: u32 = 0o600;
pub const STATE_DIR_MODE: u32 = 0o700;

/// The lower store's GC roots and profiles (NixOS's current-system, booted-system, the system
/// generations, `nix build` result links registered while the SSD was absent).
pub const LOWER_GCROOTS: &str = "/nix/var/nix/gcroots";
pub const LOWER_PROFILES: &str = "/nix/var/nix/profiles";
/// Where the overlay store sees them: read-only binds inside its `state/gcroots`, which Nix
/// searches recursively (`LocalStore::findRoots`; a symlink to a directory is not followed).
pub const SHARED_ROOTS: [(&str, &str); 2] =
    [("nix-ssd-lower-gcroots", LOWER_GCROOTS), ("nix-ssd-lower-profiles", LOWER_PROFILES)];

/// GC roots in the lower store for closures `nix-ssd pin` copied there.
pub const PIN_ROOTS: &str = "/nix/var/nix/gcroots/nix-ssd-pins";
/// GC roots in the lower store for lower paths that upper-layer paths reference (`sync-roots`).
pub const LOWER_ROOTS: &str = "/nix/var/nix/gcroots/nix-ssd-lower";
/// Where `nix-ssd pin` puts, while the overlay is up, the paths of a closure that the lower
/// store lacks: a Nix store of its own (`<root>/nix/store/<name>` and its database under
/// `<root>/nix/var/nix`), on the lower store's file system but outside the lower layer, which
/// must not change while an overlay is mounted on it (overlayfs leaves that undefined; Nix's
/// local-overlay store requires the lower store not to change). [`PIN_MANIFEST`] names the
/// staged paths once they are complete and on disk; at boot, before the overlay is stacked,
/// they are renamed into /nix/store (the NixOS module's initrd step, else `nix-ssd
/// apply-pins`) and registered in the lower database (`nix-ssd apply-pins`, before nix-daemon).
pub const PIN_STAGING: &str = "/nix/.nix-ssd-pins";
pub const PIN_STAGING_ROOT: &str = "/nix/.nix-ssd-pins/root";
pub const PIN_MANIFEST: &str = "/nix/.nix-ssd-pins/manifest";
/// The directory holding /nix/store and [`PIN_STAGING`] (one file system: a rename moves a path).
pub const NIX_DIR: &str = "/nix";
/// `nix-ssd apply-pins`' writable view of [`NIX_DIR`], in its private mount namespace only.
pub const APPLY_VIEW: &str = "/run/nix-ssd/apply-view";
/// Boot menus whose entries name NixOS systems (`init=/nix/store/…-nixos-system-…/init`):
/// extlinux (the Rock 5C's loader), GRUB, systemd-boot's entry directory. A pinned system a
/// menu still lists is never pruned.
pub const BOOT_MENUS: [&str; 3] = ["/boot/extlinux/extlinux.conf", "/boot/grub/grub.cfg", "/boot/loader/entries"];
/// The running and the booted system (NixOS): never pruned either.
pub const LIVE_SYSTEMS: [&str; 2] = ["/run/current-system", "/run/booted-system"];
/// The boot default (NixOS's system profile).
pub const BOOT_PROFILE: &str = "/nix/var/nix/profiles/system";
/// The note `nix-ssd at-shutdown` keeps when it moved the boot menu's default away from a
/// system that would not boot without the SSD (JSON; `nix-ssd status` reports it).
pub const BOOT_FALLBACK: &str = "/var/lib/nix-ssd/boot-fallback";
/// The bootspec (`boot.json`) extension the NixOS module writes into a system whose stage 1
/// moves staged pins into the store: `{ "stage1MovesPins": true }`.
pub const BOOTSPEC_EXTENSION: &str = "org.nix-ssd-generator.v1";
/// The NixOS module's boot-loader hook's request that a background job has not finished
/// (`nix-ssd install-bootloader`; JSON: the system, the loader's installer, when).
pub const PENDING_INSTALL: &str = "/var/lib/nix-ssd/pending-install";
/// That background job: a transient service of this name.
pub const INSTALL_JOB: &str = "nix-ssd-install-bootloader";
/// One installer at a time: the job, at-shutdown, a switch that finds nothing to wait for.
pub const INSTALL_LOCK: &str = "/run/nix-ssd/install-bootloader.lock";
/// Guards the record against a switch replacing it while a finished job removes it.
pub const INSTALL_RECORD_LOCK: &str = "/run/nix-ssd/install-record.lock";
/// Names of staged paths `apply-pins` moved into the internal store: their upper-layer copies
/// (the pin copied them from there) are deleted at the next activation instead of being
/// quarantined as shadowing entries.
pub const MOVED_IN: &str = "/var/lib/nix-ssd/pins-moved-in";
/// Written by `prune-pins` when it dropped pins (the systems, one a line): their closures are
/// collectable in the internal store, and the next activation with the SSD collects it.
pub const LOWER_GC_WANTED: &str = "/var/lib/nix-ssd/internal-gc-wanted";
/// How long that collection may hold up the boot (nix-daemon waits for it); cut short, it goes
/// on at the next activation.
pub const LOWER_GC_LIMIT_SECS: u64 = 60;
/// The default profile: Nix itself on an install that is not NixOS.
pub const DEFAULT_PROFILE: &str = "/nix/var/nix/profiles/default";
/// Where `nix-ssd setup` mounts the top of the btrfs (private namespace; `.<pid>` appended).
pub const SETUP_TOP: &str = "/run/nix-ssd-setup";

/// Where systemd looks for system generators (systemd.generator(7)), highest priority first;
/// NixOS links its `systemd.generators` into /etc/systemd/system-generators.
pub const GENERATOR_DIRS: [&str; 5] = [
    "/run/systemd/system-generators",
    "/etc/systemd/system-generators",
    "/usr/local/lib/systemd/system-generators",
    "/usr/lib/systemd/system-generators",
    "/lib/systemd/system-generators",
];
/// The generator's file name in those directories.
pub const GENERATOR_NAME: &str = "nix-ssd-generator";
/// A unit the generator writes whenever it writes any, in systemd's output directory for
/// generators (normal-dir): present iff it ran and planned units this boot.
pub const GENERATED_SERVICE: &str = "/run/systemd/generator/nix-ssd.service";

/// Inside the overlay subvolume: the upper layer, overlayfs's workdir, the overlay store's
/// state (database, GC roots), and the space reserve file ([`crate::reserve`]).
pub const UPPER: &str = "upper";
pub const WORK: &str = "work";
pub const STATE: &str = "state";
pub const RESERVE: &str = "reserve";
/// In the overlay store's state: how the lower database looked when activate last checked the
/// SSD's database against the store (size and mtime of `db.sqlite` and its WAL); the check is
/// skipped while they are unchanged (the lower store cannot have lost a path).
pub const LOWER_DB_STAMP: &str = "nix-ssd-lower-db.stamp";
/// In the overlay store's state: the session marker (`open <time>` from activation until a
/// clean stop writes `closed <time>`), see [`crate::session`].
pub const SESSION: &str = "nix-ssd-session";
/// Where activation moves upper-layer entries that would shadow the lower store.
pub const QUARANTINE: &str = "quarantine";

/// Owner root, and these modes, as `nix-ssd setup` makes them and `status` checks them:
/// upper like /nix/store's parent, work overlayfs scratch (root only), state only root
/// writes.
pub const OVERLAY_DIRS: [(&str, u32); 3] = [(UPPER, 0o755), (WORK, 0o700), (STATE, 0o755)];
/// The build dir: never world-writable (Nix 2.30 refuses that; the daemon makes per-build dirs
/// inside).
pub const BUILD_DIR_MODE: u32 = 0o755;
/// The cache subvolume's top; each user's directory in it is theirs, mode [`CACHE_USER_MODE`].
pub const CACHE_DIR_MODE: u32 = 0o755;
pub const CACHE_USER_MODE: u32 = 0o700;
/// The lower-store mount point [`LOWER_STORE`] and the env file's directory.
pub const DIR_MODE: u32 = 0o755;
