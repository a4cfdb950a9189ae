//! The boot menus NixOS's loaders write, read for the systems their entries boot and the entry
//! that boots by default, and the one edit nix-ssd makes to them: which entry is the default.
//!
//! - extlinux (`generic-extlinux-compatible`, the Rock 5C's U-Boot): /boot/extlinux/extlinux.conf,
//!   `DEFAULT <label>` and `LABEL nixos-default` / `LABEL nixos-<generation>` entries whose
//!   `APPEND` holds `init=/nix/store/<system>/init`. NixOS's extlinux-conf-builder.sh writes
//!   above the DEFAULT line: "Change this to e.g. nixos-42 to temporarily boot to an older
//!   configuration." — that is the edit made here.
//! - GRUB (install-grub.pl): /boot/grub/grub.cfg, `menuentry "NixOS - Default"` and a submenu
//!   `"NixOS - All configurations"` of `menuentry "NixOS - Configuration <n> (…)"`, each with a
//!   `linux … init=/nix/store/<system>/init`; the default is the `set default=…` of the branch
//!   taken when no `next_entry` is set (`boot.loader.grub.default`, `0` unless configured). The
//!   edit sets it to the title path `"<submenu>><entry>"`, which GRUB accepts for `default`.
//! - systemd-boot (systemd-boot-builder.py): /boot/loader/loader.conf `default <entry id>` (and
//!   `preferred`, which newer builders write for boot counting and which wins over `default`)
//!   and entries /boot/loader/entries/nixos-generation-<n>.conf with `options init=…`. The edit
//!   sets both to the entry's file name. (An EFI variable `LoaderEntryDefault` set by
//!   `bootctl set-default` would still win over loader.conf; NixOS does not set it.)
//!
//! Parsing is pure (text in, [`Menu`] out); [`write`] is the one writer (atomic, synced).
use crate::nix;
use crate::sys::{IoError, fs::write_atomic};
use std::fs;
use std::path::{Path, PathBuf};

/// The loader a menu belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    Extlinux,
    Grub,
    SystemdBoot,
}

impl Loader {
    pub fn name(self) -> &'static str {
        match self {
            Loader::Extlinux => "extlinux",
            Loader::Grub => "GRUB",
            Loader::SystemdBoot => "systemd-boot",
        }
    }
}

/// One entry of a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the default names: the extlinux label, GRUB's title path (`Sub>Title` inside a
    /// submenu), systemd-boot's entry file name.
    pub id: String,
    /// The store path name of the NixOS system it boots (`init=/nix/store/<this>/init`).
    pub system: Option<String>,
    /// The system profile's generation, where the entry says it (None: the "default" entry).
    pub generation: Option<u32>,
}

/// A boot menu as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub loader: Loader,
    /// The file holding the default (extlinux.conf, grub.cfg, loader.conf).
    pub path: PathBuf,
    pub text: String,
    pub entries: Vec<Entry>,
    /// Index into `entries` of the entry booted by default, if it can be told.
    pub default: Option<usize>,
}

impl Menu {
    pub fn default_entry(&self) -> Option<&Entry> {
        self.default.and_then(|i| self.entries.get(i))
    }

    /// The menu's file with `id` made the default (the rest of the text unchanged).
    pub fn with_default(&self, id: &str) -> Option<String> {
        if !self.entries.iter().any(|e| e.id == id) {
            return None;
        }
        match self.loader {
            Loader::Extlinux => replace_lines(&self.text, |l| keyword(l, "default").map(|_| format!("DEFAULT {id}"))),
            Loader::Grub => replace_lines(&self.text, |l| {
                grub_default(l).map(|(indent, _)| format!("{indent}set default=\"{id}\""))
            }),
            Loader::SystemdBoot => replace_lines(&self.text, |l| {
                ["default", "preferred"].iter().find_map(|k| keyword(l, k).map(|_| format!("{k} {id}")))
            }),
        }
    }
}

/// The first menu found below `root` (extlinux, GRUB, systemd-boot, in that order).
pub fn read(root: &Path) -> Option<Menu> {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    if let Ok(t) = fs::read_to_string(at(EXTLINUX)) {
        return Some(extlinux(at(EXTLINUX), t));
    }
    if let Ok(t) = fs::read_to_string(at(GRUB)) {
        return Some(grub(at(GRUB), t));
    }
    let conf = at(SD_LOADER_CONF);
    let t = fs::read_to_string(&conf).ok()?;
    let mut files: Vec<(String, String)> = fs::read_dir(at(SD_ENTRIES))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let text = fs::read_to_string(e.path()).ok()?;
                    name.ends_with(".conf").then_some((name, text))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    Some(systemd_boot(conf, t, &files))
}

/// Replaces the menu's file with `text` (atomically, synced).
pub fn write(menu: &Menu, text: &str) -> Result<(), IoError> {
    write_atomic(&menu.path, text)
}

pub const EXTLINUX: &str = "/boot/extlinux/extlinux.conf";
pub const GRUB: &str = "/boot/grub/grub.cfg";
pub const SD_LOADER_CONF: &str = "/boot/loader/loader.conf";
pub const SD_ENTRIES: &str = "/boot/loader/entries";

/// `KEYWORD value` (keyword case-insensitive, as extlinux and loader.conf read it): the value.
fn keyword<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let (k, v) = t.split_once(char::is_whitespace)?;
    k.eq_ignore_ascii_case(key).then(|| v.trim())
}

/// The NixOS system an `init=/nix/store/<system>/init` on the line names.
fn system_of(line: &str) -> Option<String> {
    line.split_whitespace()
        .filter_map(|w| w.trim_matches('"').strip_prefix("init=/nix/store/"))
        .map(|rest| rest.split('/').next().unwrap_or("").to_string())
        .find(|n| nix::is_store_name(n))
}

fn replace_lines(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut changed = false;
    let out: Vec<String> = text
        .split_inclusive('\n')
        .map(|l| {
            let (body, nl) = l.strip_suffix('\n').map_or((l, ""), |b| (b, "\n"));
            match f(body) {
                Some(new) => {
                    changed = true;
                    format!("{new}{nl}")
                }
                None => l.to_string(),
            }
        })
        .collect();
    changed.then(|| out.concat())
}

fn extlinux(path: PathBuf, text: String) -> Menu {
    let mut entries: Vec<Entry> = Vec::new();
    let mut default_label = None;
    for l in text.lines() {
        if let Some(v) = keyword(l, "default") {
            default_label = Some(v.to_string());
        } else if let Some(v) = keyword(l, "label") {
            let generation = v.strip_prefix("nixos-").and_then(|g| g.parse().ok());
            entries.push(Entry { id: v.to_string(), system: None, generation });
        } else if let (Some(_), Some(e)) = (keyword(l, "append"), entries.last_mut()) {
            e.system = e.system.take().or_else(|| system_of(l));
        }
    }
    let default = default_label.and_then(|d| entries.iter().position(|e| e.id == d));
    Menu { loader: Loader::Extlinux, path, text, entries, default }
}

/// `set default=VALUE` with a literal value (not the `${next_entry}` branch): indent, value.
fn grub_default(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let v = t.strip_prefix("set default=")?;
    (!v.contains("${")).then(|| (&line[..line.len() - t.len()], v.trim().trim_matches('"')))
}

/// A quoted title after `menuentry`/`submenu`.
fn grub_title(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    rest[1..].split(q).next().map(String::from)
}

fn grub(path: PathBuf, text: String) -> Menu {
    // top: each top-level item, Some(its entry) for a menuentry, None for a submenu
    let (mut entries, mut top) = (Vec::new(), Vec::new());
    let (mut submenu, mut depth, mut default_value) = (None::<(String, usize)>, 0usize, None);
    for l in text.lines() {
        let t = l.trim_start();
        if let Some((_, v)) = grub_default(l) {
            default_value = Some(v.to_string());
        }
        if let Some(title) = t.strip_prefix("submenu").and_then(grub_title) {
            top.push(None);
            submenu = Some((title, depth));
        } else if let Some(title) = t.strip_prefix("menuentry").and_then(grub_title) {
            if submenu.is_none() {
                top.push(Some(entries.len()));
            }
            let id = submenu.as_ref().map_or(title.clone(), |(s, _)| format!("{s}>{title}"));
            let generation =
                title.strip_prefix("NixOS - Configuration ").and_then(|r| r.split(' ').next()?.parse().ok());
            entries.push(Entry { id, system: None, generation });
        } else if t.starts_with("linux ")
            && let Some(e) = entries.last_mut()
        {
            e.system = e.system.take().or_else(|| system_of(l));
        }
        depth += l.matches('{').count();
        depth = depth.saturating_sub(l.matches('}').count());
        if submenu.as_ref().is_some_and(|(_, d)| depth <= *d) {
            submenu = None;
        }
    }
    // GRUB's default: a number counts top-level items (a submenu boots nothing by itself),
    // else a title path.
    let default = default_value.and_then(|v| match v.parse::<usize>() {
        Ok(n) => top.get(n).copied().flatten(),
        Err(_) => entries.iter().position(|e| e.id == v),
    });
    Menu { loader: Loader::Grub, path, text, entries, default }
}

fn systemd_boot(path: PathBuf, text: String, files: &[(String, String)]) -> Menu {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(name, body)| {
            let generation = name
                .split("-generation-")
                .nth(1)
                .and_then(|r| r.trim_end_matches(".conf").split('-').next().and_then(|g| g.parse().ok()));
            let system = body.lines().filter(|l| keyword(l, "options").is_some()).find_map(system_of);
            Entry { id: name.clone(), system, generation }
        })
        .collect();
    // `preferred` wins over `default`; a value names an entry with or without ".conf", or is a
    // glob (NixOS writes `nixos-*` when no generation matched): its newest generation here.
    let value = ["preferred", "default"].iter().find_map(|k| text.lines().find_map(|l| keyword(l, k)));
    let default = value.and_then(|v| {
        let hit = |e: &Entry| e.id == v || e.id.strip_suffix(".conf") == Some(v);
        entries.iter().position(hit).or_else(|| {
            let prefix = v.strip_suffix('*')?;
            (0..entries.len()).filter(|&i| entries[i].id.starts_with(prefix)).max_by_key(|&i| entries[i].generation)
        })
    });
    Menu { loader: Loader::SystemdBoot, path, text, entries, default }
}

#[cfg(test)]
mod tests;
