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
        // every warning names the file and the line, and never echoes a long input whole
        let at = s.strip_prefix("/etc/systemd/nix-ssd-generator.conf:").unwrap_or_else(|| panic!("no file: {s}"));
        assert!(at.starts_with(|c: char| c.is_ascii_digit()), "error does not name its line: {s}");
        // an input is cut to 80 characters, each at most 10 when escaped (\u{10ffff}); a
        // message holds at most two (a value and the part of it that is wrong) and fixed text
        assert!(s.chars().count() < 2 * 80 * 10 + 400, "an input echoed whole: {s}");
    }
    config_invariants::check(&c);
    let _ = c.apply_file("/etc/systemd/nix-ssd-generator.conf.d/x.conf", &text);
    config_invariants::check(&c);
});
