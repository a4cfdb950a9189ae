//! The `nix-ssd` subcommands, one module each. Each takes its inputs as values and returns
//! what it has to say (lines, a report, an error that says what to do); none prints. Steps that
//! must be seen as they happen (`setup`, `lvm-plan --execute`) go to a [`Progress`] sink.
//! The command line lives in `src/bin/nix-ssd/` (clap in `cli.rs`).
pub mod activate;
pub mod apply_pins;
pub mod at_shutdown;
pub mod boot_default;
pub mod enroll;
pub mod install_bootloader;
pub mod lvm;
pub mod pin;
pub mod preview;
pub mod reclaim;
pub mod setup;
pub mod status;
pub mod sync_roots;

/// Where a long-running subcommand reports each step before it runs it.
pub type Progress<'a> = &'a mut dyn FnMut(&str);
