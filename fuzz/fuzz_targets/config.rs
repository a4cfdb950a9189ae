//! A config file's text through `Config::apply_file` (twice: a drop-in over the main file).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nix_ssd_generator::generator::config::Config;

#[path = "../config_invariants.rs"]
mod config_invariants;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut c = Config::default();
    let errors = c.apply_file("/etc/systemd/nix-ssd-generator.conf", &text);
    for e in &errors {
        let s = e.to_string();
        assert!(s.starts_with("/etc/systemd/nix-ssd-generator.conf"), "error does not name its input: {s}");
    }
    config_invariants::check(&c);
    let _ = c.apply_file("/etc/systemd/nix-ssd-generator.conf.d/x.conf", &text);
    config_invariants::check(&c);
});
