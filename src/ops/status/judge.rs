//! The health ladder: [`Facts`] → health and warnings, pure (one test per branch below).
use super::Health;
use super::probe::{BootDefault, Facts};
use crate::generator::config::Mode;
use crate::paths::{BOOT_PROFILE, DEFAULT_PROFILE, GENERATOR_DIRS};
use crate::reserve::{self, mib};

/// Health and warnings for what was found. What is not installed comes first (each with the
/// next step); then the first matching rung of the ladder; a full SSD makes it broken, an
/// unpinned boot default degraded.
pub fn judge(f: &Facts) -> (Health, Vec<String>) {
    let (mut health, mut warnings) = installation(f);
    let (h, w) = ladder(f);
    health = health.max(h);
    warnings.extend(w);
    warnings.extend(f.drift.iter().cloned());
    if let Some(s) = &f.ssd_space {
        if s.space.avail < reserve::FULL_BELOW {
            // Nix cannot open its database on a full SSD
            health = Health::Broken;
            warnings.push(format!(
                "the SSD is full ({} MiB free): Nix cannot open its database there; run `nix-ssd reclaim`",
                mib(s.space.avail)
            ));
        }
        if !s.reserve_present {
            warnings.push(format!(
                "{} is missing (it holds {} MiB back for a full SSD); `nix-ssd reclaim` or the next boot makes it when there is room",
                s.reserve_path,
                mib(reserve::size_for(s.space.total))
            ));
        }
    }
    let profiles = [
        (&f.boot_default, "the boot default", BOOT_PROFILE, "it would not boot without it"),
        (&f.default_profile, "the default profile", DEFAULT_PROFILE, "Nix itself may be missing without it"),
    ];
    for (state, what, profile, then) in profiles {
        let w = match state {
            BootDefault::NotChecked | BootDefault::OnLower => continue,
            // a switch's background copy is on it: the menu keeps a default that boots meanwhile
            BootDefault::Missing { target, .. } if f.seen.internal.pending_install.as_ref() == Some(target) => continue,
            BootDefault::Unknown { target, why } => format!("cannot list the closure of {what} {target}: {why}"),
            BootDefault::Missing { target, missing } => format!(
                "{what} {profile} -> {target} has {missing} path(s) only on the SSD: {then}; run `nix-ssd pin {profile}`"
            ),
        };
        warnings.push(w);
        // Working now, but the next boot without the SSD would not be.
        if health == Health::Healthy {
            health = Health::Degraded;
        }
    }
    if let Some(fb) = &f.boot_fallback {
        warnings.push(format!(
            "the boot menu's default is {} (/nix/store/{}), not {} (/nix/store/{}): at shutdown that one would not \
             have booted without the SSD: {}; {} is made the default again once it boots without the SSD",
            fb.to_entry, fb.to_system, fb.from_entry, fb.from_system, fb.why, fb.from_entry
        ));
        if health == Health::Healthy {
            health = Health::Degraded;
        }
    }
    (health, warnings)
}

/// What must be there before anything happens: Nix, and the generator having run this boot.
fn installation(f: &Facts) -> (Health, Vec<String>) {
    let i = &f.seen.install;
    let (mut health, mut w) = (Health::Healthy, Vec::new());
    if !f.enabled {
        return (health, w);
    }
    if i.nix_daemon.is_none() {
        health = Health::Broken;
        w.push(
            "Nix is not installed (no nix-daemon on PATH, in /run/current-system/sw/bin, the default profile or \
             /usr/bin): install Nix with its daemon first; nix-ssd moves its store layer and builds to the SSD"
                .to_string(),
        );
    }
    match &i.generator {
        None => {
            health = Health::Broken;
            w.push(format!(
                "nix-ssd-generator is not installed in a systemd generator directory ({}), so nothing is set up at \
                 boot: on NixOS import the module and set `services.nix-ssd.enable = true;`, then \
                 `nixos-rebuild switch`; elsewhere `sudo make install` or the .deb; then reboot",
                GENERATOR_DIRS.join(", ")
            ));
        }
        Some(g) if !i.generated && f.plan.is_some() => {
            health = health.max(Health::Degraded);
            w.push(format!(
                "{g} wrote no units this boot (installed or enabled since): reboot to use the SSD \
                 (`nix-ssd preview` shows what it will write)"
            ));
        }
        Some(_) => {}
    }
    (health, w)
}

/// The rungs, in order: what the SSD, its mounts, the overlay and the daemon say together.
fn ladder(f: &Facts) -> (Health, Vec<String>) {
    let broken = |w: String| (Health::Broken, vec![w]);
    if !f.enabled {
        return (Health::Healthy, vec![]);
    }
    let Some(p) = &f.plan else {
        return broken(format!(
            "the generator writes nothing: {}; fix the configuration (`nix-ssd preview` shows the decision), \
             or prepare the device with `sudo nix-ssd setup DEVICE`",
            f.seen.summary
        ));
    };
    let (present, primary) = (f.seen.device.present, f.primary_mounted());
    let removed = "the SSD was removed while running; Nix calls on the SSD fail with I/O errors until a reboot \
                   (which uses the internal store until the SSD is back)";
    if !present && (f.seen.store.overlay || f.seen.daemon.uses_overlay()) {
        // systemd stops the SSD's mounts when its device goes; the overlay stays
        return broken(format!("{} is gone while the overlay store on /nix/store still uses it: {removed}", p.device));
    }
    if !present && !primary {
        let works = if f.seen.install.nix_daemon.is_some() { ": Nix works on the internal store" } else { "" };
        return (
            Health::Degraded,
            vec![format!(
                "{} is absent{works}. Next: to prepare an SSD, attach it and run `sudo nix-ssd setup /dev/DEVICE` \
                 (it erases DEVICE), then reboot; if one is attached, `lsblk -f` shows whether it is {}",
                p.device, p.device
            )],
        );
    }
    if !present {
        return broken(format!("{} is gone but {} is still mounted: {removed}", p.device, p.primary().target));
    }
    if let Some(e) = &f.enrolment_error {
        return broken(format!("nothing of the SSD is used: {e}"));
    }
    if f.seen.device.enrolled == Some(false) {
        let d = &f.seen.device;
        return broken(format!(
            "{} ({}, UUID {}) is not enrolled on this machine: nothing of it is stacked, bound or built on; \
             if it is this machine's SSD, run `nix-ssd enroll {}` and reboot",
            d.node,
            d.fs_type.as_deref().unwrap_or("unknown fs"),
            d.uuid.as_deref().unwrap_or("?"),
            d.node
        ));
    }
    if let Some(why) = &f.refusal {
        return broken(format!("{why} (activate refused it this boot)"));
    }
    if !primary {
        return broken(format!(
            "{} is present but {} is not mounted (see `journalctl -u {}`)",
            p.device,
            p.primary().target,
            p.primary().unit
        ));
    }
    let overlay_from_primary =
        f.seen.store.overlay && f.seen.store.upperdir.as_deref().is_some_and(|u| u.starts_with(&p.primary().target));
    if p.mode == Mode::Overlay && !overlay_from_primary {
        return broken(
            "the SSD is mounted but the overlay is not on /nix/store: it appeared after nix-daemon started, or \
             stacking was refused (see `journalctl -u nix-ssd.service`); it is used from the next boot"
                .into(),
        );
    }
    if p.mode == Mode::Overlay && f.seen.daemon.running && !f.seen.daemon.uses_overlay() {
        return broken(
            "the overlay is mounted but nix-daemon does not use the local-overlay store (restart nix-daemon after nix-ssd.service)"
                .into(),
        );
    }
    (Health::Healthy, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::plan::{Inputs, plan};
    use crate::ops::status::probe::SsdSpace;
    use crate::ops::status::{DaemonStatus, DeviceStatus, InstallStatus, MountStatus, Seen, Source, StoreStatus};
    use crate::reserve::Space;

    const G: u64 = 1 << 30;

    /// A machine in overlay mode with everything as it should be: the SSD present, both
    /// subvolumes mounted, our overlay on /nix/store, the daemon on the overlay store.
    fn healthy() -> Facts {
        let outcome = plan(&Inputs {
            cmdline: Ok(String::new()),
            config_files: vec![],
            devices: vec![],
            device_notes: vec![],
            enrolled: vec![],
        });
        let p = outcome.result.clone().expect("the default plans overlay mode");
        let mounts = p
            .mounts
            .iter()
            .map(|m| MountStatus {
                role: "x",
                subvolume: m.subvolume.clone(),
                target: m.target.clone(),
                mounted: true,
                options: None,
            })
            .collect();
        let upper = format!("{}/upper", p.primary().target);
        Facts {
            enabled: true,
            seen: Seen {
                mode: "overlay".into(),
                decided_by: "default".into(),
                summary: outcome.summary(),
                config_warnings: vec![],
                install: InstallStatus {
                    nix_daemon: Some("/usr/bin/nix-daemon".into()),
                    generator: Some("/usr/lib/systemd/system-generators/nix-ssd-generator".into()),
                    generated: true,
                },
                device: DeviceStatus {
                    spec: "LABEL=NIX_SSD".into(),
                    node: "/dev/disk/by-label/NIX_SSD".into(),
                    present: true,
                    fs_type: Some("btrfs".into()),
                    label: Some("NIX_SSD".into()),
                    uuid: Some("4f1c0021-abcd-ef01-2345-6789aabbccdd".into()),
                    enrolled: Some(true),
                },
                mounts,
                store: StoreStatus {
                    fstype: Some("overlay".into()),
                    overlay: true,
                    lowerdir: Some("/nix/.lower-store".into()),
                    upperdir: Some(upper),
                    workdir: None,
                },
                daemon: DaemonStatus {
                    running: true,
                    pid: Some(42),
                    store: Some("local-overlay://?x".into()),
                    build_dir: None,
                    source: Source::Process,
                },
                caches: vec![],
                internal: Default::default(),
            },
            drift: vec![],
            ssd_space: Some(SsdSpace {
                space: Space { total: 100 * G, avail: 50 * G },
                reserve_present: true,
                reserve_path: "/mnt/nix-ssd/overlay/reserve".into(),
            }),
            boot_default: BootDefault::OnLower,
            boot_fallback: None,
            default_profile: BootDefault::NotChecked,
            enrolment_error: None,
            refusal: None,
            plan: Some(p),
        }
    }

    fn unmounted(mut f: Facts) -> Facts {
        f.seen.mounts.iter_mut().for_each(|m| m.mounted = false);
        f
    }

    fn check(f: &Facts, want: Health, says: &str) {
        let (h, w) = judge(f);
        assert_eq!(h, want, "{w:?}");
        assert!(says.is_empty() && w.is_empty() || w.iter().any(|w| w.contains(says)), "no {says:?} in {w:?}");
    }

    #[test]
    fn all_well_is_healthy() {
        check(&healthy(), Health::Healthy, "");
    }

    #[test]
    fn off_is_healthy() {
        check(&Facts { enabled: false, plan: None, ..healthy() }, Health::Healthy, "");
    }

    #[test]
    fn no_plan_is_broken() {
        check(&Facts { plan: None, ..healthy() }, Health::Broken, "the generator writes nothing");
    }

    #[test]
    fn removed_under_the_overlay_is_broken() {
        let mut f = healthy();
        f.seen.device.present = false;
        check(&f, Health::Broken, "still uses it: the SSD was removed while running");
    }

    #[test]
    fn absent_is_degraded() {
        let mut f = unmounted(healthy());
        f.seen.device.present = false;
        f.seen.store = StoreStatus { fstype: Some("ext4".into()), ..Default::default() };
        f.seen.daemon.store = None;
        check(&f, Health::Degraded, "is absent: Nix works on the internal store");
    }

    #[test]
    fn absent_gives_the_next_step() {
        let mut f = unmounted(healthy());
        f.seen.device.present = false;
        f.seen.store = StoreStatus::default();
        f.seen.daemon.store = None;
        check(&f, Health::Degraded, "Next: to prepare an SSD, attach it and run `sudo nix-ssd setup /dev/DEVICE`");
        // without Nix it does not claim that Nix works
        f.seen.install.nix_daemon = None;
        let (h, w) = judge(&f);
        assert_eq!(h, Health::Broken, "{w:?}");
        assert!(w[0].starts_with("Nix is not installed"), "{w:?}");
        assert!(w.iter().all(|w| !w.contains("Nix works")), "{w:?}");
        assert!(w.iter().any(|w| w.starts_with("LABEL=NIX_SSD is absent. Next:")), "{w:?}");
    }

    #[test]
    fn no_generator_is_broken_and_says_how_to_install() {
        let mut f = unmounted(healthy());
        f.seen.device.present = false;
        f.seen.store = StoreStatus::default();
        f.seen.daemon.store = None;
        f.seen.install.generator = None;
        f.seen.install.generated = false;
        check(&f, Health::Broken, "nix-ssd-generator is not installed in a systemd generator directory");
        check(&f, Health::Broken, "`services.nix-ssd.enable = true;`");
        // and the SSD's own state is still told
        check(&f, Health::Broken, "LABEL=NIX_SSD is absent");
    }

    #[test]
    fn generator_that_has_not_run_degrades() {
        let mut f = unmounted(healthy());
        f.seen.install.generated = false;
        f.seen.device.present = false;
        f.seen.store = StoreStatus::default();
        f.seen.daemon.store = None;
        check(&f, Health::Degraded, "wrote no units this boot (installed or enabled since): reboot");
        // off: nothing to install, nothing to say
        check(&Facts { enabled: false, plan: None, ..f }, Health::Healthy, "");
    }

    #[test]
    fn gone_but_mounted_is_broken() {
        let mut f = healthy();
        f.seen.device.present = false;
        f.seen.store = StoreStatus::default();
        f.seen.daemon.store = None;
        check(&f, Health::Broken, "is still mounted: the SSD was removed while running");
    }

    #[test]
    fn foreign_device_is_broken() {
        // activate unmounts what it refuses: the device is there, nothing mounted, no overlay
        let mut f = unmounted(healthy());
        f.seen.device.enrolled = Some(false);
        f.seen.store = StoreStatus::default();
        check(&f, Health::Broken, "UUID 4f1c0021-abcd-ef01-2345-6789aabbccdd) is not enrolled on this machine");
        check(&f, Health::Broken, "run `nix-ssd enroll /dev/disk/by-label/NIX_SSD`");
    }

    #[test]
    fn refused_binding_is_broken() {
        // an enrolled UUID on a stick whose enrolment token differs: activate refused and
        // unmounted it, and left why
        let mut f = unmounted(healthy());
        f.seen.store = StoreStatus::default();
        f.refusal = Some("not using the SSD: /dev/sdb1 (btrfs UUID 4f1c…): … carries no enrolment token".into());
        check(&f, Health::Broken, "carries no enrolment token (activate refused it this boot)");
    }

    #[test]
    fn untrusted_enrolment_is_broken() {
        let f = Facts { enrolment_error: Some("/var/lib/nix-ssd/enrolled is not root-owned".into()), ..healthy() };
        check(&f, Health::Broken, "nothing of the SSD is used: /var/lib/nix-ssd/enrolled");
    }

    #[test]
    fn present_but_unmounted_is_broken() {
        check(&unmounted(healthy()), Health::Broken, "is not mounted (see `journalctl -u");
    }

    #[test]
    fn mounted_without_overlay_is_broken() {
        let mut f = healthy();
        f.seen.store = StoreStatus { fstype: Some("overlay".into()), ..Default::default() };
        check(&f, Health::Broken, "the overlay is not on /nix/store");
    }

    #[test]
    fn daemon_not_on_the_overlay_is_broken() {
        let mut f = healthy();
        f.seen.daemon.store = None;
        check(&f, Health::Broken, "does not use the local-overlay store");
    }

    #[test]
    fn full_ssd_is_broken() {
        let mut f = healthy();
        f.ssd_space.as_mut().unwrap().space.avail = 1 << 20;
        check(&f, Health::Broken, "the SSD is full (1 MiB free)");
    }

    #[test]
    fn missing_reserve_warns() {
        let mut f = healthy();
        f.ssd_space.as_mut().unwrap().reserve_present = false;
        check(&f, Health::Healthy, "reserve is missing (it holds 1024 MiB back");
    }

    #[test]
    fn unpinned_default_profile_degrades() {
        let mut f = healthy();
        f.default_profile = BootDefault::Missing { target: "/nix/store/x-nix".into(), missing: 1 };
        check(
            &f,
            Health::Degraded,
            "the default profile /nix/var/nix/profiles/default -> /nix/store/x-nix has 1 path(s)",
        );
        check(
            &f,
            Health::Degraded,
            "Nix itself may be missing without it; run `nix-ssd pin /nix/var/nix/profiles/default`",
        );
    }

    #[test]
    fn unpinned_boot_default_degrades() {
        let mut f = healthy();
        f.boot_default = BootDefault::Missing { target: "/nix/store/x-system".into(), missing: 3 };
        check(&f, Health::Degraded, "has 3 path(s) only on the SSD");
        // never lifts a broken machine
        f.seen.daemon.store = None;
        assert_eq!(judge(&f).0, Health::Broken);
    }

    #[test]
    fn a_moved_boot_default_degrades_and_says_which_and_why() {
        let mut f = healthy();
        f.boot_fallback = Some(crate::ops::boot_default::Fallback {
            loader: "extlinux".into(),
            menu: "/boot/extlinux/extlinux.conf".into(),
            from_entry: "nixos-default".into(),
            from_system: "b-nixos-system-3".into(),
            to_entry: "nixos-2".into(),
            to_system: "a-nixos-system-2".into(),
            why: "it could not be pinned: I/O error".into(),
            at: 0,
        });
        check(
            &f,
            Health::Degraded,
            "the boot menu's default is nixos-2 (/nix/store/a-nixos-system-2), not nixos-default (/nix/store/b-nixos-system-3)",
        );
        check(&f, Health::Degraded, "it could not be pinned: I/O error");
    }

    #[test]
    fn a_boot_default_a_switch_is_copying_in_is_no_warning() {
        let mut f = healthy();
        f.boot_default = BootDefault::Missing { target: "/nix/store/x-system".into(), missing: 3 };
        f.seen.internal.pending_install = Some("/nix/store/x-system".into());
        check(&f, Health::Healthy, "");
        f.seen.internal.pending_install = Some("/nix/store/y-system".into());
        check(&f, Health::Degraded, "has 3 path(s) only on the SSD");
    }
}
