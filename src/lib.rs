//! nix-ssd-generator: put Nix's writable store layer, builds and fetcher caches on a btrfs SSD,
//! and keep the machine booting and Nix working without it.
//!
//! Flow: [`sources`] reads inputs → [`plan::plan`] decides (pure) → [`render::render`] makes
//! unit text from `unit-templates/` → [`write::write_all`] creates the files.
pub mod activate;
pub mod blkid;
pub mod cmdline;
pub mod config;
pub mod escape;
pub mod generator;
pub mod log;
pub mod lvm;
pub mod pin;
pub mod plan;
pub mod render;
pub mod reserve;
pub mod setup;
pub mod sources;
pub mod status;
pub mod timespan;
pub mod write;
