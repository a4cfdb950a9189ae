//! Facts about Nix: where its tools are, the daemon's version and process, store path names,
//! GC-root directories, and the daemon's environment file (`NIX_CONFIG`) that `activate`
//! writes and `status`/`sync-roots` read back.
use crate::paths::{ENROLLED_MODE, SIGNING_KEY, SIGNING_PUB, STATE_DIR_MODE, STORE};
use crate::sys::{Context, IoError, cmd};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds a Nix command: PATH, then where NixOS and single-user installs keep it (systemd
/// services on NixOS do not have it in PATH).
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/run/current-system/sw/bin", "/nix/var/nix/profiles/default/bin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A command for the Nix tool `name` (see [`tool`]).
pub fn command(name: &str) -> Command {
    Command::new(tool(name))
}

/// The daemon's Nix version (`nix-daemon --version`: "nix-daemon (Nix) 2.26.3").
pub fn version() -> Option<(u32, u32)> {
    parse_version(&cmd::output(command("nix-daemon").arg("--version")).ok()?)
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().last()?;
    let mut it = v.split('.').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

/// This machine's signing key pair ([`SIGNING_KEY`], [`SIGNING_PUB`]), made once with
/// `nix-store --generate-binary-cache-key` (the secret root's only). Returns the public key.
/// Run it before stacking: it runs the Nix tool found through PATH.
pub fn signing_key() -> Result<String, SigningKeyError> {
    if let (Ok(_), Ok(p)) = (fs::metadata(SIGNING_KEY), fs::read_to_string(SIGNING_PUB)) {
        return Ok(p.trim().to_string());
    }
    let dir = Path::new(SIGNING_KEY).parent().unwrap_or(Path::new("/var/lib/nix-ssd"));
    fs::DirBuilder::new().mode(STATE_DIR_MODE).recursive(true).create(dir).ctx(format!("mkdir {}", dir.display()))?;
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = format!(
        "nix-ssd-{}-1",
        host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').collect::<String>()
    );
    let (sec, public) = (format!("{SIGNING_KEY}.tmp"), format!("{SIGNING_PUB}.tmp"));
    let _ = (fs::remove_file(&sec), fs::remove_file(&public));
    cmd::output(command("nix-store").args(["--generate-binary-cache-key", &name, &sec, &public]))?;
    fs::set_permissions(&sec, fs::Permissions::from_mode(ENROLLED_MODE)).ctx(format!("chmod {sec}"))?;
    fs::rename(&sec, SIGNING_KEY).ctx(format!("rename {sec}"))?;
    fs::rename(&public, SIGNING_PUB).ctx(format!("rename {public}"))?;
    Ok(fs::read_to_string(SIGNING_PUB).ctx(format!("read {SIGNING_PUB}"))?.trim().to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(transparent)]
    Cmd(#[from] cmd::CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The main nix-daemon process (its parent is PID 1), if one runs.
pub fn daemon_pid() -> Option<u32> {
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid ..."
        let Some((comm, rest)) = stat.split_once(") ") else { continue };
        if comm.ends_with("(nix-daemon") && rest.split(' ').nth(1) == Some("1") {
            return Some(pid);
        }
    }
    None
}

/// Store paths per Nix command line (about 60 bytes each: far below ARG_MAX; one argument list
/// of every upper path failed with E2BIG past ~26 000 of them).
pub const ARG_BATCH: usize = 4096;

/// Is `n` a store path's name (`<32 hash chars>-<name>`, the name of Nix's characters: no `/`)?
pub fn is_store_name(n: &str) -> bool {
    n.len() > 33
        && n.as_bytes()[32] == b'-'
        && n[..32].bytes().all(|b| b.is_ascii_alphanumeric())
        && n[33..].bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b))
}

#[derive(Debug, thiserror::Error)]
#[error("{0} is not in /nix/store (give a store path or a link to one)")]
pub struct NotStorePath(pub String);

/// `/nix/store/<hash>-<name>` for a path or a link into the store.
pub fn store_path(p: &str) -> Result<String, StorePathError> {
    let real = fs::canonicalize(p).ctx(p.to_string())?;
    let rest = real.strip_prefix(STORE).map_err(|_| NotStorePath(p.into()))?;
    let first = rest.components().next().ok_or_else(|| NotStorePath(p.into()))?;
    Ok(format!("{STORE}/{}", first.as_os_str().to_string_lossy()))
}

#[derive(Debug, thiserror::Error)]
pub enum StorePathError {
    #[error(transparent)]
    NotStorePath(#[from] NotStorePath),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The store paths a GC-root directory roots (one symlink per path, named like the path).
pub fn roots(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| format!("{STORE}/{}", e.file_name().to_string_lossy())).collect())
        .unwrap_or_default()
}

/// Replaces the symlinks in the GC-root directory `dir` by exactly one per store path in
/// `paths`; returns how many there are.
pub fn set_roots(dir: &Path, paths: &BTreeSet<String>) -> Result<usize, IoError> {
    fs::DirBuilder::new().mode(0o755).recursive(true).create(dir).ctx(format!("mkdir {}", dir.display()))?;
    let wanted: BTreeSet<&str> = paths.iter().filter_map(|p| p.strip_prefix("/nix/store/")).collect();
    for e in fs::read_dir(dir).ctx(format!("read {}", dir.display()))?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !wanted.contains(n.as_str()) {
            let _ = fs::remove_file(e.path());
        }
    }
    for n in &wanted {
        let link = dir.join(n);
        if fs::symlink_metadata(&link).is_err() {
            symlink(format!("{STORE}/{n}"), &link).ctx(format!("link {}", link.display()))?;
        }
    }
    Ok(wanted.len())
}

/// The daemon's environment file: `NIX_CONFIG` (one setting a line) and further `KEY=value`
/// lines. Written by `activate` for this boot; without it the daemon uses the lower store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub nix_config: Vec<String>,
    pub extra: Vec<String>,
}

impl EnvFile {
    pub fn is_empty(&self) -> bool {
        self.nix_config.is_empty() && self.extra.is_empty()
    }

    /// The file's text: `NIX_CONFIG="…"` quoted for systemd's EnvironmentFile=.
    pub fn text(&self) -> String {
        let quoted: String = self
            .nix_config
            .join("\n")
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' | '$' | '`' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let mut body = format!(
            "# Written by `nix-ssd activate` for nix-daemon.service (this boot only).\nNIX_CONFIG=\"{quoted}\"\n"
        );
        for e in &self.extra {
            body += &format!("{e}\n");
        }
        body
    }

    /// Writes it atomically, or removes the file when there is nothing to say.
    pub fn write(&self, path: &Path) -> Result<(), IoError> {
        if self.is_empty() {
            let _ = fs::remove_file(path);
            return Ok(());
        }
        crate::sys::fs::write_atomic(path, &self.text())
    }
}

/// Reads NIX_CONFIG out of an env file written by [`EnvFile::write`] (a quoted value).
pub fn env_file_nix_config(text: &str) -> Option<String> {
    let start = text.find("NIX_CONFIG=\"")? + "NIX_CONFIG=\"".len();
    let mut out = String::new();
    let mut chars = text[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// NIX_CONFIG in a process environment (`/proc/PID/environ`).
pub fn environ_nix_config(environ: &[u8]) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"NIX_CONFIG="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The value of the setting `key` in a NIX_CONFIG text.
pub fn setting(nix_config: &str, key: &str) -> Option<String> {
    nix_config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The store path name a link leads to (following links, relative ones included), if any;
/// the path itself need not exist (an SSD path while the SSD is absent).
pub fn link_target_name(link: &Path) -> Option<String> {
    let mut at = link.to_path_buf();
    for _ in 0..8 {
        let t = fs::read_link(&at).ok()?;
        let t = if t.is_absolute() { t } else { at.parent()?.join(t) };
        if let Ok(rest) = t.strip_prefix(STORE) {
            let name = rest.components().next()?.as_os_str().to_string_lossy().into_owned();
            return is_store_name(&name).then_some(name);
        }
        at = t;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names() {
        assert!(is_store_name("0123456789abcdfghijklmnpqrsvwxyz-hello-1.0"));
        assert!(!is_store_name(".links"));
        assert!(!is_store_name("0123456789abcdfghijklmnpqrsvwxyz"));
        assert!(!is_store_name("0123456789abcdfghijklmnpqrsvwxyz-x/../../etc"));
        assert!(!is_store_name("0123456789abcdfghijklmnpqrsvwxyz-a b"));
    }

    #[test]
    fn env_file_roundtrip() {
        let t = "# x\nNIX_CONFIG=\"extra-experimental-features = a b\nstore = local-overlay://?x=1&y=\\\"q\\\"\nbuild-dir = /mnt/b\"\n";
        let c = env_file_nix_config(t).unwrap();
        assert_eq!(setting(&c, "store").as_deref(), Some("local-overlay://?x=1&y=\"q\""));
        assert_eq!(setting(&c, "build-dir").as_deref(), Some("/mnt/b"));
        let e = EnvFile { nix_config: vec!["store = a$b\"c".into(), "build-dir = /b".into()], extra: vec![] };
        assert_eq!(env_file_nix_config(&e.text()).as_deref(), Some("store = a$b\"c\nbuild-dir = /b"));
        // further KEY=value lines (TMPDIR for Nix before 2.22) are written too
        let e = EnvFile { nix_config: vec![], extra: vec!["TMPDIR=/mnt/nix-ssd/build".into()] };
        assert!(e.text().ends_with("NIX_CONFIG=\"\"\nTMPDIR=/mnt/nix-ssd/build\n"), "{}", e.text());
    }
}
