//! The kernel command line: splitting (systemd's rules) and `Config::apply_cmdline`.
//! Whatever the line, the resulting settings are all valid (the checks in `Config::set`
//! hold) and every ignored setting is reported.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nix_ssd_generator::generator::cmdline;
use nix_ssd_generator::generator::config::Config;

#[path = "../config_invariants.rs"]
mod config_invariants;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let words = cmdline::words(&line);
    if !line.contains(['"', '\'']) {
        // Without quotes, words are exactly the whitespace-separated pieces.
        let plain: Vec<&str> = line.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()).collect();
        assert_eq!(words, plain, "{line:?}");
    }
    let _ = cmdline::last_value(&line, "nix-ssd");
    let mut c = Config::default();
    let errors = c.apply_cmdline(&line);
    for e in &errors {
        assert!(!e.to_string().is_empty());
    }
    config_invariants::check(&c);
});
