//! The boot default, kept bootable without the SSD, whatever made it the default.
//!
//! What boots is what the boot menu's default entry names (and what the system profile names,
//! which the next boot-loader install makes the default). Stage 1 needs its closure in the
//! internal store before the overlay exists: it is *bootable* when it is in the internal store,
//! or staged by `nix-ssd pin` and its own stage 1 moves staged paths into the store (its
//! bootspec says so: the NixOS module writes that; a system built without the module does not).
//!
//! At shutdown ([`at_shutdown`], while the overlay is still up) a boot default that is not
//! bootable is pinned; if it still is not (the SSD is gone, the internal disk is full, or its
//! stage 1 cannot move staged paths), the menu's default is set to the newest entry that is,
//! and a note of it is kept ([`BOOT_FALLBACK`]) for `nix-ssd status`. The note's default is put
//! back as soon as that system is bootable (at shutdown after a pin, or at boot after the
//! staged paths were moved in: [`at_boot`]), unless the menu was rewritten since.
//!
//! probe → [`Facts`] → [`judge`] (pure) → act.
use super::pin;
use crate::menus::{self, Menu};
use crate::nix;
use crate::overlay;
use crate::paths::{BOOT_FALLBACK, BOOT_PROFILE, BOOTSPEC_EXTENSION, LOWER_STORE, STORE};
use crate::pins;
use crate::sys::{Context, IoError, fs::write_atomic_mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// What is known of one system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct System {
    /// Its files are in the internal store (and so its closure: Nix keeps closures whole, and
    /// a pin moves a closure in whole).
    pub whole: bool,
    /// Named in the staging manifest (its closure staged or in the internal store).
    pub staged: bool,
    /// Its bootspec says its stage 1 moves staged paths into the store.
    pub moves_pins: bool,
}

impl System {
    pub fn boots(&self) -> bool {
        self.whole || (self.staged && self.moves_pins)
    }
}

/// The note kept when the menu's default was moved away from a system that would not boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    pub loader: String,
    pub menu: String,
    /// The entry that was the default, and its system.
    pub from_entry: String,
    pub from_system: String,
    /// The entry made the default, and its system.
    pub to_entry: String,
    pub to_system: String,
    pub why: String,
    /// Seconds since the epoch.
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub menu: Option<Menu>,
    /// The system profile's system.
    pub profile: Option<String>,
    pub systems: BTreeMap<String, System>,
    pub fallback: Option<Fallback>,
}

impl Facts {
    fn of(&self, s: &str) -> System {
        self.systems.get(s).copied().unwrap_or_default()
    }

    /// The systems that would be booted next (the menu's default, the profile's) and do not boot.
    pub fn not_bootable(&self) -> Vec<String> {
        let mut v: Vec<String> = self.menu_default().into_iter().chain(self.profile.clone()).collect();
        v.sort();
        v.dedup();
        v.retain(|s| !self.of(s).boots());
        v
    }

    fn menu_default(&self) -> Option<String> {
        self.menu.as_ref()?.default_entry()?.system.clone()
    }
}

/// What to do about the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing (the default boots, or there is no menu to change).
    Keep,
    /// Make `entry` (system `system`) the default: the current one does not boot.
    FallBack { entry: String, system: String },
    /// No entry of the menu boots: leave it, say so.
    NoneBoots,
    /// The noted fallback can be undone: `entry` (the former default) boots again.
    Restore { entry: String },
    /// The note is stale (the menu was rewritten since): drop it.
    Forget,
}

/// The pure judgement over the facts.
pub fn judge(f: &Facts) -> Verdict {
    let Some(menu) = &f.menu else { return Verdict::Keep };
    let current = menu.default_entry();
    if let Some(fb) = &f.fallback {
        if current.map(|e| e.id.as_str()) != Some(fb.to_entry.as_str()) {
            return Verdict::Forget;
        }
        let back = menu.entries.iter().find(|e| e.id == fb.from_entry);
        if back.and_then(|e| e.system.as_deref()) == Some(fb.from_system.as_str()) && f.of(&fb.from_system).boots() {
            return Verdict::Restore { entry: fb.from_entry.clone() };
        }
        return Verdict::Keep;
    }
    match current.and_then(|e| e.system.as_deref()) {
        None => Verdict::Keep, // a default that boots no NixOS system (or none): not ours to judge
        Some(s) if f.of(s).boots() => Verdict::Keep,
        Some(_) => menu
            .entries
            .iter()
            .filter_map(|e| Some((e, e.system.as_deref()?)))
            .filter(|(_, s)| f.of(s).boots())
            // the newest generation; the unnumbered "default" entry after any numbered one
            .max_by_key(|(e, _)| e.generation.map_or(0, |g| g + 1))
            .map_or(Verdict::NoneBoots, |(e, s)| Verdict::FallBack { entry: e.id.clone(), system: s.to_string() }),
    }
}

/// The facts on this machine: the menu, the profile, what each system named there is.
pub fn probe() -> Facts {
    let menu = menus::read(Path::new("/"));
    let profile = nix::link_target_name(Path::new(BOOT_PROFILE));
    let mut names: Vec<String> = profile.iter().cloned().collect();
    if let Some(m) = &menu {
        names.extend(m.entries.iter().filter_map(|e| e.system.clone()));
    }
    let staged = pins::staged();
    let systems = names.into_iter().map(|n| (n.clone(), system_with(&n, &staged))).collect();
    Facts { menu, profile, systems, fallback: read_fallback() }
}

/// What is known of the system `name` (a store path name).
pub fn system(name: &str) -> System {
    system_with(name, &pins::staged())
}

fn system_with(name: &str, staged: &std::collections::BTreeSet<String>) -> System {
    // While the overlay is up the internal store is its lower layer; else /nix/store itself.
    let internal = if overlay::stacked().is_some() { LOWER_STORE } else { STORE };
    System {
        whole: Path::new(internal).join(name).exists(),
        staged: staged.contains(name),
        moves_pins: moves_pins(&Path::new(STORE).join(name)),
    }
}

/// Does the system's bootspec (`boot.json`) say its stage 1 moves staged pins? Unreadable,
/// absent (bootspec off, a system without the module) or anything else: no.
fn moves_pins(system: &Path) -> bool {
    let Ok(t) = fs::read_to_string(system.join("boot.json")) else { return false };
    serde_json::from_str::<serde_json::Value>(&t)
        .ok()
        .and_then(|j| j.get(BOOTSPEC_EXTENSION)?.get("stage1MovesPins")?.as_bool())
        .unwrap_or(false)
}

/// The fallback note, if one was made.
pub fn read_fallback() -> Option<Fallback> {
    serde_json::from_str(&fs::read_to_string(BOOT_FALLBACK).ok()?).ok()
}

/// At shutdown: pin what would boot next and does not boot, then judge the menu and act.
pub fn at_shutdown() -> Vec<String> {
    let mut lines = Vec::new();
    let mut facts = probe();
    let mut why = String::new();
    let need = facts.not_bootable();
    if !need.is_empty() && overlay::stacked().is_some() {
        let paths: Vec<String> = need.iter().map(|n| format!("{STORE}/{n}")).collect();
        match pin::pin(&paths) {
            Ok(l) => lines.extend(l),
            Err(e) => {
                why = format!("it could not be pinned: {e}");
                lines.push(format!("could not pin the boot default {}: {e}", need.join(" ")));
            }
        }
        facts = probe();
    }
    for s in facts.not_bootable() {
        if why.is_empty() || !need.contains(&s) {
            why = not_bootable_why(&facts, &s);
        }
        lines.push(format!("{STORE}/{s} would not boot without the SSD: {why}"));
    }
    lines.extend(act(&facts, &why));
    lines
}

/// At boot, after staged paths were moved in: undo a fallback whose system boots again.
pub fn at_boot() -> Vec<String> {
    let facts = probe();
    match judge(&facts) {
        v @ (Verdict::Restore { .. } | Verdict::Forget) => act_on(&facts, v, ""),
        _ => vec![],
    }
}

fn not_bootable_why(f: &Facts, s: &str) -> String {
    let sys = f.of(s);
    if sys.staged && !sys.moves_pins {
        "it is staged, but its stage 1 does not move staged paths into the store (it was built without \
         services.nix-ssd, or without bootspec): a boot of a generation that does moves it in"
            .into()
    } else {
        "it is not in the internal store, nor staged".into()
    }
}

fn act(f: &Facts, why: &str) -> Vec<String> {
    act_on(f, judge(f), why)
}

fn act_on(f: &Facts, v: Verdict, why: &str) -> Vec<String> {
    let Some(menu) = &f.menu else { return vec![] };
    let set = |entry: &str| -> Result<(), IoError> {
        let text = menu.with_default(entry).ok_or_else(|| {
            IoError::new(format!("edit {}", menu.path.display()), std::io::Error::other("no default to change"))
        })?;
        menus::write(menu, &text)
    };
    match v {
        Verdict::Keep => vec![],
        Verdict::NoneBoots => vec![format!(
            "no entry of {} boots without the SSD: left as it is (connect the SSD to boot, or pin a generation)",
            menu.path.display()
        )],
        Verdict::Forget => {
            let _ = fs::remove_file(BOOT_FALLBACK);
            vec![format!("{} was rewritten since the fallback: dropped the note", menu.path.display())]
        }
        Verdict::Restore { entry } => match set(&entry) {
            Ok(()) => {
                let _ = fs::remove_file(BOOT_FALLBACK);
                vec![format!("{}: the default is {entry} again (it boots without the SSD now)", menu.path.display())]
            }
            Err(e) => vec![format!("could not put back the default {entry}: {e}")],
        },
        Verdict::FallBack { entry, system } => fall_back(menu, &entry, &system, why, set),
    }
}

fn fall_back(
    menu: &Menu,
    entry: &str,
    system: &str,
    why: &str,
    set: impl Fn(&str) -> Result<(), IoError>,
) -> Vec<String> {
    let from = menu.default_entry().cloned();
    let note = Fallback {
        loader: menu.loader.name().into(),
        menu: menu.path.display().to_string(),
        from_entry: from.as_ref().map(|e| e.id.clone()).unwrap_or_default(),
        from_system: from.and_then(|e| e.system).unwrap_or_default(),
        to_entry: entry.into(),
        to_system: system.into(),
        why: why.into(),
        at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    // The note first: a menu changed without one would never be put back.
    let r = serde_json::to_string_pretty(&note)
        .map_err(|e| IoError::new("encode the fallback note", std::io::Error::other(e)))
        .and_then(|j| write_atomic_mode(Path::new(BOOT_FALLBACK), &j, 0o600, 0o700))
        .and_then(|()| set(entry));
    match r {
        Ok(()) => vec![format!(
            "{} ({}): the default is now {entry} ({STORE}/{system}), the newest entry that boots without the SSD, \
             instead of {} ({STORE}/{}); it is put back once that boots",
            menu.path.display(),
            menu.loader.name(),
            note.from_entry,
            note.from_system
        )],
        Err(e) => {
            let _ = fs::remove_file(BOOT_FALLBACK).ctx("remove the fallback note");
            vec![format!("could not make {entry} the default of {}: {e}", menu.path.display())]
        }
    }
}

/// `nix-ssd boot-menu`: the boot menu below `root`, its default and, on this machine (`root` is
/// /), whether each entry's system boots without the SSD; with `set_default`, makes that entry
/// the default first (e.g. to undo a fallback by hand).
pub fn boot_menu(root: &Path, set_default: Option<&str>) -> Result<Vec<String>, IoError> {
    let no_menu = || {
        IoError::new(
            format!("read the boot menu below {}", root.display()),
            std::io::Error::other(format!(
                "none found ({}, {}, {})",
                menus::EXTLINUX,
                menus::GRUB,
                menus::SD_LOADER_CONF
            )),
        )
    };
    let mut menu = menus::read(root).ok_or_else(no_menu)?;
    if let Some(id) = set_default {
        let text = menu.with_default(id).ok_or_else(|| {
            let ids: Vec<&str> = menu.entries.iter().map(|e| e.id.as_str()).collect();
            IoError::new(
                format!("make {id} the default of {}", menu.path.display()),
                std::io::Error::other(format!("no such entry (entries: {})", ids.join(", "))),
            )
        })?;
        menus::write(&menu, &text)?;
        menu = menus::read(root).ok_or_else(no_menu)?;
    }
    let facts = (root == Path::new("/")).then(probe);
    let mut lines = vec![format!("{} ({})", menu.path.display(), menu.loader.name())];
    for (i, e) in menu.entries.iter().enumerate() {
        let boots = match (&facts, &e.system) {
            (Some(f), Some(s)) if f.of(s).boots() => "boots without the SSD",
            (Some(_), Some(_)) => "needs the SSD",
            _ => "",
        };
        let mark = if menu.default == Some(i) { "*" } else { " " };
        lines.push(format!("{mark} {}  {}  {boots}", e.id, e.system.as_deref().unwrap_or("-")).trim_end().to_string());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;
