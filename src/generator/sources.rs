//! Reads the generator's inputs from the running system (or from a test root). Reads only
//! regular files that are already there; never waits for a device, never runs a program.
use super::blkid;
use super::plan::{ConfigSource, Inputs};
use crate::paths::{ENROLLED, ENROLLED_ETC};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Config directories, highest priority first (systemd's CONF_PATHS).
pub const CONF_DIRS: [&str; 4] = ["/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd"];
pub const CONF_NAME: &str = "nix-ssd-generator.conf";

/// Where inputs are read from: `/` normally, a fixture tree in tests.
#[derive(Debug, Clone)]
pub struct Root(pub PathBuf);

impl Root {
    /// `NIX_SSD_GENERATOR_ROOT` (tests), else `/`.
    pub fn from_env() -> Root {
        Root(std::env::var_os("NIX_SSD_GENERATOR_ROOT").map(PathBuf::from).unwrap_or_else(|| "/".into()))
    }
    fn at(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }
}

fn is_masked(p: &Path) -> bool {
    fs::read_link(p).is_ok_and(|t| t == Path::new("/dev/null"))
        || fs::metadata(p).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()))
}

/// Reads a regular file without ever blocking: opened O_NONBLOCK (a FIFO or a device at a
/// config path would otherwise stall the boot), anything but a regular file is refused.
fn read(p: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut f = crate::sys::fs::open_nonblocking(p).map_err(|e| e.to_string())?;
    if !f.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let mut b = Vec::new();
    f.read_to_end(&mut b).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// The config files that apply, in order: the main file (first found by priority; a
/// /dev/null one masks the rest), then drop-ins merged by file name across the `.conf.d`
/// directories (higher priority wins a name, /dev/null masks it), sorted by name.
pub fn config_files(root: &Root) -> Vec<ConfigSource> {
    let mut out = Vec::new();
    for d in CONF_DIRS {
        let abs = format!("{d}/{CONF_NAME}");
        let p = root.at(&abs);
        if fs::symlink_metadata(&p).is_err() {
            continue;
        }
        if !is_masked(&p) {
            out.push(ConfigSource { path: abs, text: read(&p) });
        }
        break;
    }
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for d in CONF_DIRS.iter().rev() {
        let dir = format!("{d}/{CONF_NAME}.d");
        let Ok(entries) = fs::read_dir(root.at(&dir)) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                dropins.insert(name.clone(), format!("{dir}/{name}"));
            }
        }
    }
    for abs in dropins.into_values() {
        let p = root.at(&abs);
        if !is_masked(&p) {
            out.push(ConfigSource { path: abs, text: read(&p) });
        }
    }
    out
}

/// Known block devices: udev's database, then libblkid's cache (`BLKID_FILE` as libblkid
/// honours it, else /run/blkid/blkid.tab and /etc/blkid.tab), then `NIX_SSD_BLKID_EXPORT`
/// (a saved `blkid -o export`, for tests and debugging).
pub fn devices(root: &Root, notes: &mut Vec<String>) -> Vec<blkid::Device> {
    let mut devices = Vec::new();
    let udev = root.at("/run/udev/data");
    if let Ok(entries) = fs::read_dir(&udev) {
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names.into_iter().filter(|n| n.to_string_lossy().starts_with('b')) {
            if let Ok(text) = read(&udev.join(&n)) {
                let (d, errs) = blkid::parse_udev_db(&text);
                for e in errs {
                    notes.push(format!("/run/udev/data/{}: {e}; skipped", n.to_string_lossy()));
                }
                devices.push(d);
            }
        }
    }
    let caches: Vec<(String, PathBuf)> = match std::env::var("BLKID_FILE") {
        Ok(f) => vec![(f.clone(), PathBuf::from(f))],
        Err(_) => ["/run/blkid/blkid.tab", "/etc/blkid.tab"].iter().map(|a| (a.to_string(), root.at(a))).collect(),
    };
    for (name, p) in caches {
        if let Ok(text) = read(&p) {
            let (d, errs) = blkid::parse_cache(&text);
            notes.extend(errs.into_iter().map(|e| format!("{name}: {e}; skipped")));
            // only block devices: `blkid IMAGE-FILE` caches regular files too (DEVNO 0x0000)
            devices.extend(d.into_iter().filter(|d| d.devname.as_deref().is_some_and(|n| n.starts_with("/dev/"))));
        }
    }
    if let Ok(f) = std::env::var("NIX_SSD_BLKID_EXPORT") {
        match read(Path::new(&f)) {
            Ok(text) => {
                let (d, errs) = blkid::parse_export(&text);
                notes.extend(errs.into_iter().map(|e| format!("{f}: {e}; skipped")));
                devices.extend(d);
            }
            Err(e) => notes.push(format!("cannot read NIX_SSD_BLKID_EXPORT={f}: {e}")),
        }
    }
    devices
}

/// The kernel command line: `SYSTEMD_PROC_CMDLINE` if set (as systemd's own generators
/// honour it), else /proc/cmdline.
pub fn cmdline() -> Result<String, String> {
    match std::env::var("SYSTEMD_PROC_CMDLINE") {
        Ok(v) => Ok(v),
        Err(_) => read(Path::new("/proc/cmdline")).map_err(|e| format!("/proc/cmdline: {e}")),
    }
}

/// The UUIDs in an enrolment file's text: one a line, `#` starts a comment, lowercase.
pub fn parse_enrolled(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|l| l.len() == 36 && l.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .collect()
}

/// The enrolled UUIDs that can be read now (/var may not be mounted yet: then none).
pub fn enrolled(root: &Root) -> Vec<String> {
    let mut v: Vec<String> = [ENROLLED, ENROLLED_ETC]
        .iter()
        .filter_map(|f| read(&root.at(f)).ok())
        .flat_map(|t| parse_enrolled(&t))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// All inputs.
pub fn gather(root: &Root) -> Inputs {
    let mut device_notes = Vec::new();
    let devices = devices(root, &mut device_notes);
    Inputs { cmdline: cmdline(), config_files: config_files(root), devices, device_notes, enrolled: enrolled(root) }
}
