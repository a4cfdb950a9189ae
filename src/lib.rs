//! nix-ssd-generator: put Nix's writable store layer, builds and fetcher caches on a btrfs SSD,
//! and keep the machine booting and Nix working without it.
//!
//! Flow: [`generator::sources`] reads inputs → [`generator::plan::plan`] decides (pure) →
//! [`generator::render::render`] makes unit text from `unit-templates/` →
//! [`generator::write::write_all`] creates the files.
pub mod activate;
pub mod generator;
pub mod lvm;
pub mod nix;
pub mod overlay;
pub mod paths;
pub mod pin;
pub mod reserve;
pub mod setup;
pub mod status;
pub mod sys;
