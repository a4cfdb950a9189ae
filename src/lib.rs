//! nix-ssd-generator: put Nix's writable store layer, builds and fetcher caches on a btrfs SSD,
//! and keep the machine booting and Nix working without it.
//!
//! Layers, each using only those below it (ARCHITECTURE.md has the map; `tests/layout.rs`
//! checks the order):
//! - [`ops`]: the `nix-ssd` subcommands (clap lives in `src/bin/nix-ssd/cli.rs`);
//! - [`overlay`] (our overlay on /nix/store), [`reserve`] (the SSD's space reserve), [`nix`]
//!   (Nix's tools, daemon, env file);
//! - [`generator`]: the early-boot side — inputs → pure plan → unit text → one writer;
//! - [`paths`] (the on-disk contract) and [`sys`] (libc, `unsafe`, the command runner, the
//!   I/O error type).
pub mod enrol;
pub mod generator;
pub mod menus;
pub mod nix;
pub mod ops;
pub mod overlay;
pub mod paths;
pub mod pins;
pub mod reserve;
pub mod session;
pub mod sys;
