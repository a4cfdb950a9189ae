// What must hold of any `Config` after any input (shared by the cmdline and config targets).
use nix_ssd_generator::generator::config::{Config, DeviceSpec};
use nix_ssd_generator::generator::escape::normalized_abs_path;

pub fn check(c: &Config) {
    assert!(normalized_abs_path(&c.mount_point).is_ok(), "mount point {:?}", c.mount_point);
    assert!(c.mount_point != "/" && !c.mount_point.starts_with("/nix/") && c.mount_point != "/nix");
    assert!(!c.mount_point.contains([',', ':', '\\', ' ', '\t', '"', '\'']), "mount point {:?}", c.mount_point);
    for s in [&c.overlay_subvolume, &c.build_subvolume, &c.cache_subvolume] {
        assert!(!s.is_empty() && s.len() <= 255 && s != "." && s != "..");
        assert!(s.chars().all(|ch| ch.is_ascii_alphanumeric() || "@._+-".contains(ch)), "subvolume {s:?}");
    }
    for u in &c.cache_users {
        assert!(!u.is_empty() && u.len() <= 32 && !u.contains(['/', '\n', ' ', '\0']), "user {u:?}");
    }
    match &c.device {
        DeviceSpec::Path(p) => {
            assert!(p.starts_with("/dev/") && normalized_abs_path(p).is_ok(), "device {p:?}");
        }
        DeviceSpec::Tag(_, v) => assert!(!v.is_empty() && v.len() <= 255 && v != "." && v != ".."),
    }
}
