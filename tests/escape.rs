//! Unit names must be exactly what systemd computes: property-tested against the real
//! `systemd-escape --path` on normalised paths made of hostile characters.
use nix_ssd_generator::generator::escape::{encode_devnode_name, unit_name_from_path};
use proptest::prelude::*;
use std::process::Command;

fn component() -> impl Strategy<Value = String> {
    // Letters, the characters systemd treats specially, whitespace, control characters and
    // multi-byte UTF-8; never "/" (a separator) and never NUL (not representable).
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            proptest::sample::select(vec![
                '-', '.', '_', ':', '%', '\\', ' ', '\t', '\n', '"', '\'', '$', '@', '~', 'Ü', '✓', '\u{7f}', '\u{1}'
            ]),
        ],
        1..12,
    )
    .prop_map(|v| v.into_iter().collect::<String>())
    .prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn real_escape(paths: &[String]) -> Vec<String> {
    let out = Command::new("systemd-escape")
        .args(["--path", "--suffix=mount", "--"])
        .args(paths)
        .output()
        .expect("systemd-escape must be installed (systemd package)");
    assert!(out.status.success(), "systemd-escape failed: {}", String::from_utf8_lossy(&out.stderr));
    // systemd-escape separates results by spaces; escaped names never contain one.
    String::from_utf8(out.stdout).unwrap().trim_end().split(' ').map(String::from).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn unit_names_match_systemd_escape(batch in proptest::collection::vec(proptest::collection::vec(component(), 1..5), 40)) {
        let paths: Vec<String> = batch.iter().map(|c| format!("/{}", c.join("/"))).collect();
        let ours: Vec<String> = paths.iter().map(|p| unit_name_from_path(p, "mount")).collect();
        prop_assert_eq!(ours, real_escape(&paths));
    }

    #[test]
    fn device_unit_names_match_systemd_escape(labels in proptest::collection::vec(component(), 40)) {
        let paths: Vec<String> = labels.iter().map(|l| format!("/dev/disk/by-label/{}", encode_devnode_name(l))).collect();
        let ours: Vec<String> = paths.iter().map(|p| unit_name_from_path(p, "mount")).collect();
        prop_assert_eq!(ours, real_escape(&paths));
    }
}

#[test]
fn known_names() {
    assert_eq!(real_escape(&["/mnt/nix-ssd/overlay".into()]), ["mnt-nix\\x2dssd-overlay.mount"]);
    assert_eq!(unit_name_from_path("/mnt/nix-ssd/overlay", "mount"), "mnt-nix\\x2dssd-overlay.mount");
}
