//! Settings: the embedded defaults, then the config file and its drop-ins, then the kernel
//! command line. Every value is checked here; a bad one is reported with the input that
//! held it and ignored, so the previous value stays.
use super::cmdline;
use super::escape::normalized_abs_path;
use super::timespan::{self, TimeSpan};
use nom::{
    IResult,
    branch::alt,
    bytes::complete::{tag, take_till, take_while},
    character::complete::{char, space0},
    combinator::{all_consuming, map, rest},
    sequence::{delimited, separated_pair, tuple},
};
use std::fmt;

/// What goes on the SSD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The store's writable upper layer (Nix's `local-overlay://` store), builds and caches.
    Overlay,
    /// Only the build directory and caches.
    Build,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Overlay => "overlay",
            Mode::Build => "build",
        })
    }
}

/// How the SSD is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `LABEL=`, `UUID=`, `PARTUUID=` or `PARTLABEL=` and its value.
    Tag(Tag, String),
    /// A `/dev/…` path.
    Path(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Label,
    Uuid,
    PartUuid,
    PartLabel,
}

impl Tag {
    pub fn name(self) -> &'static str {
        match self {
            Tag::Label => "LABEL",
            Tag::Uuid => "UUID",
            Tag::PartUuid => "PARTUUID",
            Tag::PartLabel => "PARTLABEL",
        }
    }
    /// The directory under /dev/disk where udev links devices by this tag.
    pub fn by_dir(self) -> &'static str {
        match self {
            Tag::Label => "by-label",
            Tag::Uuid => "by-uuid",
            Tag::PartUuid => "by-partuuid",
            Tag::PartLabel => "by-partlabel",
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Tag(t, v) => write!(f, "{}={}", t.name(), v),
            DeviceSpec::Path(p) => f.write_str(p),
        }
    }
}

/// Where a setting came from, for messages and `SourcePath=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(String),
    Cmdline,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(p) => f.write_str(p),
            Origin::Cmdline => f.write_str("the kernel command line"),
        }
    }
}

/// The effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub enabled: bool,
    pub mode: Mode,
    pub device: DeviceSpec,
    pub mount_point: String,
    pub device_timeout: TimeSpan,
    pub overlay_subvolume: String,
    pub build_subvolume: String,
    pub cache_subvolume: String,
    pub cache_users: Vec<String>,
    /// Where `enabled`/`mode` were last set.
    pub mode_origin: Origin,
    /// Every input that changed a setting, in order.
    pub origins: Vec<Origin>,
}

impl Default for Config {
    /// The defaults: overlay mode on the btrfs labelled NIX_SSD at /mnt/nix-ssd.
    fn default() -> Self {
        Config {
            enabled: true,
            mode: Mode::Overlay,
            device: DeviceSpec::Tag(Tag::Label, "NIX_SSD".into()),
            mount_point: "/mnt/nix-ssd".into(),
            device_timeout: TimeSpan::Usec(10_000_000),
            overlay_subvolume: "@overlay".into(),
            build_subvolume: "@build".into(),
            cache_subvolume: "@cache".into(),
            cache_users: Vec::new(),
            mode_origin: Origin::Default,
            origins: Vec::new(),
        }
    }
}

/// Where a setting was read: a file and its line, or the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub origin: Origin,
    /// The line in a config file (1-based); None on the kernel command line.
    pub line: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.origin),
            None => write!(f, "{}", self.origin),
        }
    }
}

/// At most this many characters of an input are shown in a message; a longer one is cut
/// with "…" (a 5000-character value is not echoed back whole).
pub const SHOWN_MAX: usize = 80;

/// `s` cut after [`SHOWN_MAX`] characters, marked with "…".
pub fn cut(s: &str) -> String {
    match s.char_indices().nth(SHOWN_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `s` as a message shows it: quoted and escaped, cut after [`SHOWN_MAX`] characters.
pub fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_MAX) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// A setting that was ignored, and why. Its text names the input (a file with its line, or
/// the kernel command line) and says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{origin}:{line}: ignoring line {}: expected `key = value` after [nix-ssd], a `[section]` or a comment",
        shown(text)
    )]
    Syntax { origin: Origin, line: usize, text: String },
    #[error("{origin}:{line}: ignoring section [{}]: the only section is [nix-ssd]", cut(section))]
    Section { origin: Origin, line: usize, section: String },
    #[error("{at}: ignoring unknown setting {} (known: {known})", shown(key))]
    UnknownKey { at: Place, key: String, known: &'static str },
    #[error("{at}: ignoring {key}={}: {why}", shown(value))]
    BadValue { at: Place, key: String, value: String, why: String },
    #[error(
        "{at}: ignoring {key}={}: a `#` after a value is not a comment (comments are whole lines \
             starting with # or ;): move the comment to a line of its own",
        shown(value)
    )]
    InlineComment { at: Place, key: String, value: String },
    #[error("{at}: ignoring {key} without a value: {why}")]
    Missing { at: Place, key: String, why: &'static str },
    #[error("ignoring config file {path:?}: its name holds a control character (it would go into SourcePath=)")]
    BadPath { path: String },
    #[error("cannot read {path}: {why}; its settings are ignored")]
    Unreadable { path: String, why: String },
}

const KNOWN: &str =
    "mode, device, mount-point, device-timeout, overlay-subvolume, build-subvolume, cache-subvolume, cache-users";

/// A line of a config file.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Section(&'a str),
    Assign(&'a str, &'a str),
}

fn ini_line(i: &str) -> IResult<&str, Line<'_>> {
    alt((
        map(tuple((space0, alt((tag("#"), tag(";"))), rest)), |_| Line::Blank),
        map(all_consuming(space0), |_| Line::Blank),
        map(
            all_consuming(delimited(tuple((space0, char('['))), take_till(|c| c == ']'), tuple((char(']'), space0)))),
            |s: &str| Line::Section(s.trim()),
        ),
        map(
            all_consuming(separated_pair(
                delimited(space0, take_while(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_'), space0),
                char('='),
                rest,
            )),
            |(k, v): (&str, &str)| Line::Assign(k, v.trim()),
        ),
    ))(i)
}

impl Config {
    /// Applies a config file's text. Returns what was ignored.
    pub fn apply_file(&mut self, path: &str, text: &str) -> Vec<ConfigError> {
        // The path becomes `SourcePath=` in every unit: a newline in a drop-in's file name
        // would inject a unit line. Such a file is ignored as a whole.
        if path.chars().any(char::is_control) {
            return vec![ConfigError::BadPath { path: path.to_string() }];
        }
        let origin = Origin::File(path.to_string());
        let mut errors = Vec::new();
        // None: before any section header; Some(false): inside a foreign section (reported once).
        let mut section: Option<bool> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            match ini_line(raw).map(|(_, l)| l) {
                Ok(Line::Blank) => {}
                Ok(Line::Section(s)) => {
                    section = Some(s == "nix-ssd");
                    if s != "nix-ssd" {
                        errors.push(ConfigError::Section { origin: origin.clone(), line, section: s.into() });
                    }
                }
                Ok(Line::Assign(k, v)) if section == Some(true) && !k.is_empty() => {
                    let at = Place { origin: origin.clone(), line: Some(line) };
                    if let Err(e) = self.set_at(&at, k, Some(v)) {
                        errors.push(e);
                    }
                }
                Ok(Line::Assign(..)) if section == Some(false) => {}
                _ => errors.push(ConfigError::Syntax { origin: origin.clone(), line, text: raw.to_string() }),
            }
        }
        errors
    }

    /// Applies the kernel command line: `nix-ssd=` and `nix-ssd.KEY=`.
    pub fn apply_cmdline(&mut self, line: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (k, v) in cmdline::pairs(line) {
            let key = if cmdline::key_eq(&k, "nix-ssd") {
                "nix-ssd"
            } else if k.len() > 8 && k.get(..8).is_some_and(|p| cmdline::key_eq(p, "nix-ssd.")) {
                // `get`, not `[..8]`: byte 8 may fall inside a multi-byte character
                // (`nix-ssdü=1`), which must be an ignored word, not a panic.
                &k[8..]
            } else {
                continue;
            };
            if let Err(e) = self.set(&Origin::Cmdline, key, v.as_deref()) {
                errors.push(e);
            }
        }
        errors
    }

    /// Sets one key (`-` and `_` equal) from `origin` (no line). `nix-ssd` is the command
    /// line's switch.
    pub fn set(&mut self, origin: &Origin, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
        self.set_at(&Place { origin: origin.clone(), line: None }, key, value)
    }

    /// Sets one key read at `at`. In a file (a line is known) a value holding whitespace and
    /// then `#` is refused: the format has comment lines only, as systemd's, so that value
    /// would carry the comment (`LABEL=NIX_SSD   # …` names no device).
    fn set_at(&mut self, at: &Place, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
        // Messages name the key as the user wrote it: `nix-ssd.device=` on the command line.
        let shown_key = match at.origin {
            Origin::Cmdline if key != "nix-ssd" => format!("nix-ssd.{key}"),
            _ => key.to_string(),
        };
        let bad = |why: String| ConfigError::BadValue {
            at: at.clone(),
            key: shown_key.clone(),
            value: value.unwrap_or_default().to_string(),
            why,
        };
        let k = key.replace('_', "-");
        if k == "nix-ssd" {
            // A bare `nix-ssd` means "on", like a boolean switch in systemd.
            let v = value.unwrap_or("1");
            match (cmdline::parse_bool(v), parse_mode(v)) {
                (Some(b), _) => self.enabled = b,
                (None, Some(m)) => self.set_mode(m),
                _ => return Err(bad("expected a boolean (0/1, no/yes, off/on) or a mode (overlay, build)".into())),
            }
            self.mode_origin = at.origin.clone();
            self.note(&at.origin);
            return Ok(());
        }
        if !KNOWN.split(", ").any(|known| known == k) {
            return Err(ConfigError::UnknownKey { at: at.clone(), key: shown_key, known: KNOWN });
        }
        let Some(v) = value else {
            return Err(ConfigError::Missing { at: at.clone(), key: shown_key, why: "write KEY=VALUE" });
        };
        if at.line.is_some() && has_inline_comment(v) {
            return Err(ConfigError::InlineComment { at: at.clone(), key: shown_key, value: v.to_string() });
        }
        self.apply(&k, v).map_err(bad)?;
        if k == "mode" {
            self.mode_origin = at.origin.clone();
        }
        self.note(&at.origin);
        Ok(())
    }

    fn set_mode(&mut self, m: Mode) {
        self.enabled = true;
        self.mode = m;
    }

    /// Sets the known key `k` (dashes, not underscores) to `v`, or says why `v` is bad.
    fn apply(&mut self, k: &str, v: &str) -> Result<(), String> {
        match k {
            "mode" => match v {
                "off" => self.enabled = false,
                _ => self.set_mode(parse_mode(v).ok_or("expected overlay, build or off")?),
            },
            "device" => self.device = parse_device(v)?,
            "mount-point" => {
                check_mount_point(v)?;
                self.mount_point = v.into();
            }
            "device-timeout" => {
                self.device_timeout = timespan::parse(v)
                    .ok_or("expected a time span such as 10s, 1min 30s, 0 (do not wait) or infinity")?
            }
            "overlay-subvolume" | "build-subvolume" | "cache-subvolume" => {
                check_subvolume(v)?;
                let slot = match k {
                    "overlay-subvolume" => &mut self.overlay_subvolume,
                    "build-subvolume" => &mut self.build_subvolume,
                    _ => &mut self.cache_subvolume,
                };
                *slot = v.into();
            }
            "cache-users" => {
                let users: Vec<String> = v.split_whitespace().map(String::from).collect();
                if let Some(u) = users.iter().find(|u| !valid_user_name(u)) {
                    return Err(format!("{} is not a valid user name", shown(u)));
                }
                self.cache_users = users;
            }
            _ => unreachable!("checked by `known` in `set`"),
        }
        Ok(())
    }

    fn note(&mut self, origin: &Origin) {
        if !self.origins.contains(origin) {
            self.origins.push(origin.clone());
        }
    }
}

/// Whitespace followed by `#`: what an inline comment looks like (`device = LABEL=X   # …`).
fn has_inline_comment(v: &str) -> bool {
    v.char_indices().any(|(i, c)| c == '#' && v[..i].ends_with(char::is_whitespace))
}

fn parse_mode(v: &str) -> Option<Mode> {
    match v {
        "overlay" => Some(Mode::Overlay),
        "build" => Some(Mode::Build),
        _ => None,
    }
}

/// `LABEL=…`, `UUID=…`, `PARTUUID=…`, `PARTLABEL=…` or a normalised `/dev/…` path.
pub fn parse_device(v: &str) -> Result<DeviceSpec, &'static str> {
    if v.starts_with('/') {
        normalized_abs_path(v).map_err(|_| "a device path must be absolute and normalised (no //, . or ..)")?;
        if !v.starts_with("/dev/") || v.len() == 5 {
            return Err("a device path must be below /dev");
        }
        // systemd strips whitespace around What=/ConditionPathExists= values, so a path
        // ending in a space would name another device; udev's names never hold whitespace
        // (by-label links spell a space \x20).
        if v.chars().any(char::is_whitespace) {
            return Err("a device path must not contain whitespace (udev writes a space as \\x20)");
        }
        // A value ending in a backslash continues onto the next unit-file line (What=/dev/x\
        // would swallow Where=). `\x20` inside a by-label name is fine.
        if v.ends_with('\\') {
            return Err("a device path must not end in a backslash");
        }
        return Ok(DeviceSpec::Path(v.into()));
    }
    let (t, val) = v.split_once('=').ok_or("expected LABEL=, UUID=, PARTUUID=, PARTLABEL= or a /dev path")?;
    let tag = match t {
        "LABEL" => Tag::Label,
        "UUID" => Tag::Uuid,
        "PARTUUID" => Tag::PartUuid,
        "PARTLABEL" => Tag::PartLabel,
        _ => return Err("expected LABEL=, UUID=, PARTUUID=, PARTLABEL= or a /dev path"),
    };
    if val.is_empty() {
        return Err("the tag has an empty value");
    }
    if val == "." || val == ".." {
        return Err("`.` and `..` cannot name a device link under /dev/disk");
    }
    if val.len() > 255 {
        return Err("the value is longer than 255 bytes");
    }
    Ok(DeviceSpec::Tag(tag, val.into()))
}

/// Subvolume names go into `subvol=` inside `Options=`: keep them to a safe alphabet.
/// A mount point the units and overlayfs options can carry.
fn check_mount_point(v: &str) -> Result<(), String> {
    normalized_abs_path(v).map_err(|w| format!("the mount point {w}"))?;
    if v == "/" || v == "/nix" || v.starts_with("/nix/") {
        return Err("the mount point must not be /, /nix or below /nix".into());
    }
    if let Some(c) = v.chars().find(|c| matches!(c, ',' | ':' | '\\' | ' ' | '\t' | '"' | '\'')) {
        return Err(format!("the mount point must not contain {c:?} (it goes into overlayfs options)"));
    }
    // The overlay subvolume's paths go into the daemon's `local-overlay://?…` store URL, which
    // is a query string inside NIX_CONFIG: these would need URL escaping there.
    if let Some(c) = v.chars().find(|c| matches!(c, '&' | '?' | '#' | '%' | '=')) {
        return Err(format!("the mount point must not contain {c:?} (it goes into the Nix store URL)"));
    }
    Ok(())
}

fn check_subvolume(v: &str) -> Result<(), &'static str> {
    if v.is_empty() || v.len() > 255 || v == "." || v == ".." {
        return Err("a subvolume name must be 1 to 255 characters and not . or ..");
    }
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c)) {
        return Err("a subvolume name may only hold letters, digits and @._+-");
    }
    Ok(())
}

/// The portable user-name rule systemd applies in strict mode, plus `@` for AD-style names.
fn valid_user_name(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 32
        && u.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && u.chars().all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini() {
        assert_eq!(ini_line("  # c").unwrap().1, Line::Blank);
        assert_eq!(ini_line("").unwrap().1, Line::Blank);
        assert_eq!(ini_line("[nix-ssd]").unwrap().1, Line::Section("nix-ssd"));
        assert_eq!(ini_line("mode = build ").unwrap().1, Line::Assign("mode", "build"));
        assert_eq!(ini_line("device=LABEL=a b").unwrap().1, Line::Assign("device", "LABEL=a b"));
        assert!(ini_line("garbage").is_err());
    }

    #[test]
    fn file_and_cmdline() {
        let mut c = Config::default();
        let e = c.apply_file("/etc/x.conf", "[nix-ssd]\nmode=build\ndevice-timeout=1min\nbogus=1\n[other]\nx=1\n");
        assert_eq!(c.mode, Mode::Build);
        assert_eq!(c.device_timeout, TimeSpan::Usec(60_000_000));
        assert_eq!(e.len(), 2, "{e:?}");
        let e = c.apply_cmdline("quiet nix-ssd=overlay nix_ssd.device=UUID=abc nix-ssd.device-timeout=forever");
        assert_eq!(c.mode, Mode::Overlay);
        assert_eq!(c.device, DeviceSpec::Tag(Tag::Uuid, "abc".into()));
        assert_eq!(c.device_timeout, TimeSpan::Usec(60_000_000), "bad value keeps the old one");
        assert_eq!(e.len(), 1);
        assert!(e[0].to_string().contains("nix-ssd.device-timeout") || e[0].to_string().contains("device-timeout"));
        c.apply_cmdline("nix-ssd=off");
        assert!(!c.enabled);
    }

    #[test]
    fn every_file_warning_names_file_and_line() {
        let mut c = Config::default();
        let text = "[nix-ssd]\nmode = sideways\n\nbogus = 1\ndevice\n";
        let e: Vec<String> = c.apply_file("/etc/x.conf", text).iter().map(ToString::to_string).collect();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("/etc/x.conf:2: ignoring mode=\"sideways\": expected overlay"), "{}", e[0]);
        assert!(e[1].starts_with("/etc/x.conf:4: ignoring unknown setting \"bogus\""), "{}", e[1]);
        assert!(e[2].starts_with("/etc/x.conf:5: ignoring line \"device\""), "{}", e[2]);
        // the command line has no lines
        let e = c.apply_cmdline("nix-ssd.mode=sideways");
        assert!(
            e[0].to_string().starts_with("the kernel command line: ignoring nix-ssd.mode=\"sideways\""),
            "{}",
            e[0]
        );
    }

    #[test]
    fn inline_comment_is_refused_not_taken_whole() {
        // README's example once had these: `device` was taken whole and named no device.
        let text = "[nix-ssd]\ndevice = LABEL=NIX_SSD      # LABEL= UUID=\nmode = build\t# or overlay\n\
                    mount-point = /mnt/a#b\n# a comment line\n; another\n  # indented\n";
        let mut c = Config::default();
        let e: Vec<String> = c.apply_file("/etc/x.conf", text).iter().map(ToString::to_string).collect();
        assert_eq!(c.device, DeviceSpec::Tag(Tag::Label, "NIX_SSD".into()), "the default stays");
        assert_eq!(c.mode, Mode::Overlay);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("/etc/x.conf:2: ignoring device=\"LABEL=NIX_SSD      # LABEL= UUID=\": a `#` after a value is not a comment"),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("/etc/x.conf:3: ignoring mode=\"build\\t# or overlay\": a `#` after a value"),
            "{}",
            e[1]
        );
        // a `#` inside a value (no whitespace before it) is the value's, judged as such
        assert!(
            e[2].contains("/etc/x.conf:4: ignoring mount-point=\"/mnt/a#b\": the mount point must not contain '#'"),
            "{}",
            e[2]
        );
        // the command line has no comments: a quoted label may hold " #"
        let mut c = Config::default();
        assert!(c.apply_cmdline("nix-ssd.device=\"LABEL=my #1\"").is_empty());
        assert_eq!(c.device, DeviceSpec::Tag(Tag::Label, "my #1".into()));
    }

    #[test]
    fn long_inputs_are_cut_in_messages() {
        let long = "x".repeat(5000);
        let mut c = Config::default();
        let text = format!("[nix-ssd]\nmode = {long}\n{long}\n{long} = 1\ncache-users = {long}\n[{long}]\n");
        let e = c.apply_file("/etc/x.conf", &text);
        assert_eq!(e.len(), 5, "{e:?}");
        for e in e.iter().map(ToString::to_string) {
            assert!(e.len() < 300, "{} characters: {e}", e.len());
            assert!(e.contains(&"x".repeat(SHOWN_MAX)) && !e.contains(&"x".repeat(SHOWN_MAX + 1)), "{e}");
            assert!(e.contains('…'), "{e}");
        }
        let e = c.apply_cmdline(&format!("nix-ssd.device=LABEL={long}"));
        assert!(e[0].to_string().len() < 300, "{}", e[0]);
        // short ones are shown whole
        assert_eq!(shown("abc"), "\"abc\"");
        assert_eq!(cut(&"ü".repeat(81)), format!("{}…", "ü".repeat(80)));
    }

    #[test]
    fn cmdline_key_with_multibyte_char_at_the_prefix_boundary() {
        // Found by fuzz/fuzz_targets/cmdline.rs: slicing the key at byte 8 panicked.
        for line in ["nix-ssdü=1", "nix-ssd\u{fffd}", "nix-ssd\u{10348}.mode=build", "ünix-ssd.mode=build"] {
            let mut c = Config::default();
            assert!(c.apply_cmdline(line).is_empty(), "{line:?}");
            assert_eq!(c, Config::default(), "{line:?}");
        }
        let mut c = Config::default();
        assert!(c.apply_cmdline("nix-ssdü=1 nix-ssd.mode=build").is_empty());
        assert_eq!(c.mode, Mode::Build);
    }

    #[test]
    fn file_name_with_control_character_is_ignored() {
        // A drop-in named "x\nWants=evil.service\n.conf" would otherwise end up in SourcePath=.
        let mut c = Config::default();
        let e = c.apply_file(
            "/etc/systemd/nix-ssd-generator.conf.d/x\nWants=evil.service\n.conf",
            "[nix-ssd]\nmode=build\n",
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].to_string().contains("control character"), "{}", e[0]);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn devices() {
        assert!(parse_device("LABEL=").is_err());
        assert!(parse_device("LABEL=..").is_err());
        assert!(parse_device("/dev/../etc/passwd").is_err());
        assert!(parse_device("/etc/passwd").is_err());
        assert_eq!(parse_device("/dev/sda1"), Ok(DeviceSpec::Path("/dev/sda1".into())));
        // From the command line a quoted value can end in a space; systemd would strip it.
        assert!(parse_device("/dev/sda1 ").is_err());
        assert!(parse_device("/dev/disk/by-label/a b").is_err());
        assert!(parse_device("/dev/sda\u{a0}").is_err());
        // Found by fuzz/fuzz_targets/pipeline.rs: a trailing backslash is a line continuation.
        assert!(parse_device("/dev/sdb1\\").is_err());
        assert!(parse_device("/dev/disk/by-label/my\\x20ssd").is_ok());
        assert_eq!(parse_device("PARTLABEL=a b"), Ok(DeviceSpec::Tag(Tag::PartLabel, "a b".into())));
    }
}
