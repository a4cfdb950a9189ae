//! The three device-data parsers; the first byte picks one. They are total: never panic, and
//! every line they cannot read is reported with its number.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nix_ssd_generator::generator::blkid;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let lines = text.lines().count();
    let errors = match sel % 3 {
        0 => blkid::parse_export(&text).1,
        1 => blkid::parse_cache(&text).1,
        _ => blkid::parse_udev_db(&text).1,
    };
    for e in &errors {
        assert!(e.line >= 1 && e.line <= lines, "error line {} of {lines}", e.line);
        assert!(e.text.chars().count() <= 80);
    }
});
