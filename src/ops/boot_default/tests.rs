//! The judgement: which entry boots next, and whether it must change.
use super::*;

const G1: &str = "0123456789abcdfghijklmnpqrsvwxyz-nixos-system-b-1";
const G2: &str = "1123456789abcdfghijklmnpqrsvwxyz-nixos-system-b-2";
const G3: &str = "2123456789abcdfghijklmnpqrsvwxyz-nixos-system-b-3";

/// An extlinux menu as NixOS writes it: the default entry (G3), then generations 3, 2, 1.
fn menu(default: &str) -> Menu {
    let entry =
        |label: &str, s: &str| format!("LABEL {label}\n  LINUX ../nixos/k\n  APPEND init=/nix/store/{s}/init\n");
    let text = format!(
        "DEFAULT {default}\nTIMEOUT 50\n{}{}{}{}",
        entry("nixos-default", G3),
        entry("nixos-3", G3),
        entry("nixos-2", G2),
        entry("nixos-1", G1)
    );
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("boot/extlinux")).unwrap();
    fs::write(d.path().join("boot/extlinux/extlinux.conf"), text).unwrap();
    menus::read(d.path()).unwrap()
}

fn sys(whole: bool, staged: bool, moves_pins: bool) -> System {
    System { whole, staged, moves_pins }
}

fn facts(m: Menu, g3: System, g2: System) -> Facts {
    let systems = [(G3, g3), (G2, g2), (G1, sys(true, false, true))].iter().map(|(n, s)| (n.to_string(), *s)).collect();
    Facts { menu: Some(m), profile: Some(G3.into()), systems, fallback: None }
}

#[test]
fn bootable_means_whole_or_staged_for_a_stage_1_that_moves_it() {
    assert!(sys(true, false, false).boots());
    assert!(sys(false, true, true).boots());
    assert!(!sys(false, true, false).boots(), "staged for a system built without the module");
    assert!(!sys(false, false, true).boots());
}

#[test]
fn a_default_that_boots_is_kept() {
    assert_eq!(judge(&facts(menu("nixos-default"), sys(false, true, true), sys(true, false, true))), Verdict::Keep);
    let f = Facts { menu: None, profile: Some(G3.into()), systems: BTreeMap::new(), fallback: None };
    assert_eq!(judge(&f), Verdict::Keep, "no menu: nothing to change");
    assert_eq!(f.not_bootable(), [G3], "but the profile is reported");
}

#[test]
fn a_default_that_does_not_boot_falls_back_to_the_newest_that_does() {
    let f = facts(menu("nixos-default"), sys(false, false, true), sys(true, false, true));
    assert_eq!(f.not_bootable(), [G3]);
    assert_eq!(judge(&f), Verdict::FallBack { entry: "nixos-2".into(), system: G2.into() });
    // generation 2 only staged, for a stage 1 that moves it: it boots, and is newer than 1
    let f = facts(menu("nixos-default"), sys(false, true, false), sys(false, true, true));
    assert_eq!(judge(&f), Verdict::FallBack { entry: "nixos-2".into(), system: G2.into() });
    // nothing boots
    let mut f = facts(menu("nixos-3"), sys(false, false, false), sys(false, false, false));
    f.systems.insert(G1.into(), sys(false, false, false));
    assert_eq!(judge(&f), Verdict::NoneBoots);
}

#[test]
fn a_noted_fallback_is_put_back_when_its_system_boots_and_forgotten_when_the_menu_changed() {
    let note = Fallback {
        loader: "extlinux".into(),
        menu: "/boot/extlinux/extlinux.conf".into(),
        from_entry: "nixos-default".into(),
        from_system: G3.into(),
        to_entry: "nixos-2".into(),
        to_system: G2.into(),
        why: "x".into(),
        at: 0,
    };
    let mut f = facts(menu("nixos-2"), sys(false, false, false), sys(true, false, true));
    f.fallback = Some(note.clone());
    assert_eq!(judge(&f), Verdict::Keep, "G3 still does not boot: the fallback stays");
    f.systems.insert(G3.into(), sys(true, false, false));
    assert_eq!(judge(&f), Verdict::Restore { entry: "nixos-default".into() });
    let mut f = facts(menu("nixos-default"), sys(false, false, false), sys(true, false, true));
    f.fallback = Some(note);
    assert_eq!(judge(&f), Verdict::Forget, "a new install rewrote the menu: the note is stale");
}

#[test]
fn moves_pins_reads_the_bootspec_extension() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().to_path_buf();
    assert!(!moves_pins(&d), "no boot.json");
    fs::write(
        d.join("boot.json"),
        r#"{"org.nixos.bootspec.v1":{"init":"/x/init"},"org.nix-ssd-generator.v1":{"stage1MovesPins":true}}"#,
    )
    .unwrap();
    assert!(moves_pins(&d));
    fs::write(d.join("boot.json"), r#"{"org.nixos.bootspec.v1":{"init":"/x/init"}}"#).unwrap();
    assert!(!moves_pins(&d), "a system built without the module");
    fs::write(d.join("boot.json"), "not json").unwrap();
    assert!(!moves_pins(&d));
}
