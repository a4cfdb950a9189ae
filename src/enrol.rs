//! Enrolment: which file systems are this machine's SSD. `nix-ssd setup` and `nix-ssd enroll`
//! record the btrfs UUID on the internal disk ([`ENROLLED`]); the NixOS module may state it
//! ([`ENROLLED_ETC`]). `activate` stacks, and binds, nothing from a file system whose UUID is
//! not listed: whoever can attach a disk labelled NIX_SSD must not get to change /nix/store.
//!
//! A UUID is no secret (every user reads it in /dev/disk/by-uuid, and `mkfs.btrfs -U` copies
//! it), so enrolment also binds the SSD to the machine: a random token, root's only, both in
//! [`TOKENS`] on the internal disk and in [`TOKEN_NAME`] at the root of each of the SSD's
//! subvolumes. `activate` stacks a file system only when its UUID is enrolled and its tokens
//! match; an SSD enrolled by UUID alone (the NixOS option) is bound at its first activation.
use crate::paths::{ENROLLED, ENROLLED_ETC, ENROLLED_MODE, STATE_DIR_MODE, TOKEN_NAME, TOKENS};
use crate::sys::fs::{btrfs_fsid, open_read_nofollow, replace_nofollow, write_atomic_mode};
use crate::sys::{Context, IoError};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0} is not root-owned or is writable by others (uid {1}, mode {2:o}): its UUIDs are not trusted")]
    Untrusted(String, u32, u32),
    #[error("{0} is not a btrfs file system")]
    NotBtrfs(String),
    #[error(
        "{0} is not root's own file or others can read it (uid {1}, mode {2:o}): the enrolment token may be known; run `nix-ssd enroll DEVICE` to make a new one"
    )]
    TokenExposed(String, u32, u32),
    #[error("none of the subvolumes {0} is on this file system: make them with `nix-ssd setup --adopt DEVICE`")]
    NoSubvolume(String),
}

/// A btrfs UUID as blkid prints it (lowercase, 8-4-4-4-12).
pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The UUID of the btrfs holding `dir` (a mounted subvolume).
pub fn uuid_of(dir: &Path) -> Result<String, EnrolError> {
    match btrfs_fsid(dir).ctx(format!("read the btrfs UUID of {}", dir.display()))? {
        Some(f) => Ok(format_uuid(&f)),
        None => Err(EnrolError::NotBtrfs(dir.display().to_string())),
    }
}

/// The UUIDs in an enrolment file's text (the generator reads it too).
pub fn parse(text: &str) -> BTreeSet<String> {
    crate::generator::sources::parse_enrolled(text).into_iter().collect()
}

/// Is the file described by `m` root's own regular file that nobody else may touch in `mask`
/// (0o022: write, 0o077: anything)? What the enrolment trusts must be.
fn root_only(m: &fs::Metadata, mask: u32) -> bool {
    m.uid() == 0 && m.mode() & mask == 0 && m.is_file()
}

/// Every enrolled UUID. A file that is missing adds nothing; one that is not root-owned or is
/// group- or world-writable is refused (an attacker's list must not count).
pub fn enrolled() -> Result<BTreeSet<String>, EnrolError> {
    let mut all = BTreeSet::new();
    for f in [ENROLLED, ENROLLED_ETC] {
        let Ok(m) = fs::symlink_metadata(f) else { continue };
        if !root_only(&m, 0o022) {
            return Err(EnrolError::Untrusted(f.into(), m.uid(), m.mode() & 0o7777));
        }
        all.extend(parse(&fs::read_to_string(f).ctx(format!("read {f}"))?));
    }
    Ok(all)
}

/// Adds `uuid` to [`ENROLLED`] (atomically, root only). Returns false if it was there.
pub fn record(uuid: &str) -> Result<bool, EnrolError> {
    let text = fs::read_to_string(ENROLLED).unwrap_or_default();
    if parse(&text).contains(&uuid.to_ascii_lowercase()) {
        return Ok(false);
    }
    let mut body = if text.is_empty() {
        "# btrfs UUIDs of this machine's Nix SSDs (nix-ssd setup / nix-ssd enroll); only these are stacked\n"
            .to_string()
    } else {
        text
    };
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body += &format!("{}\n", uuid.to_ascii_lowercase());
    write_atomic_mode(Path::new(ENROLLED), &body, ENROLLED_MODE, STATE_DIR_MODE)?;
    Ok(true)
}

/// A new enrolment token: 32 random bytes in hex.
pub fn new_token() -> Result<String, EnrolError> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).ctx("read /dev/urandom")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn is_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The `UUID TOKEN` lines of a tokens file (`#` starts a comment; other lines are ignored).
pub fn parse_tokens(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split('#').next().unwrap_or("").split_whitespace();
            let (u, t) = (w.next()?.to_ascii_lowercase(), w.next()?);
            (parse(&u).contains(&u) && is_token(t)).then(|| (u, t.to_string()))
        })
        .collect()
}

/// The recorded tokens; a missing file holds none. One that is not root's own, or that others
/// can read, is refused like an untrusted enrolment list.
pub fn tokens() -> Result<BTreeMap<String, String>, EnrolError> {
    let Ok(m) = fs::symlink_metadata(TOKENS) else { return Ok(BTreeMap::new()) };
    if !root_only(&m, 0o077) {
        return Err(EnrolError::Untrusted(TOKENS.into(), m.uid(), m.mode() & 0o7777));
    }
    Ok(parse_tokens(&fs::read_to_string(TOKENS).ctx(format!("read {TOKENS}"))?))
}

fn record_token(uuid: &str, token: &str) -> Result<(), EnrolError> {
    let mut all = tokens()?;
    all.insert(uuid.to_ascii_lowercase(), token.into());
    let mut body =
        "# enrolment tokens: the SSD with this UUID carries this token (nix-ssd setup / enroll / activate)\n"
            .to_string();
    for (u, t) in all {
        body += &format!("{u} {t}\n");
    }
    Ok(write_atomic_mode(Path::new(TOKENS), &body, ENROLLED_MODE, STATE_DIR_MODE)?)
}

/// The token at the root of the subvolume `dir` (None: there is none). It is read without
/// following a symlink and must be root's own and unreadable by others.
pub fn token_on(dir: &Path) -> Result<Option<String>, EnrolError> {
    let p = dir.join(TOKEN_NAME);
    let f = match open_read_nofollow(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        r => r.ctx(format!("open {}", p.display()))?,
    };
    let m = f.metadata().ctx(format!("stat {}", p.display()))?;
    if !root_only(&m, 0o077) {
        return Err(EnrolError::TokenExposed(p.display().to_string(), m.uid(), m.mode() & 0o7777));
    }
    let mut t = String::new();
    f.take(256).read_to_string(&mut t).ctx(format!("read {}", p.display()))?;
    Ok(Some(t.trim().to_string()))
}

fn put_token(dir: &Path, token: &str) -> Result<(), EnrolError> {
    Ok(replace_nofollow(&dir.join(TOKEN_NAME), &format!("{token}\n"), ENROLLED_MODE)?)
}

/// Is the file system with `uuid` the SSD bound to this machine, given the token recorded for
/// it and those found on its subvolumes?
#[derive(Debug, PartialEq, Eq)]
pub enum Binding {
    /// Every subvolume carries the recorded token.
    Bound,
    /// Nothing recorded yet (enrolled by UUID alone): bind it with this token, the one its
    /// subvolumes carry or a new one.
    Bind(String),
    /// Not the SSD enrolled here, and why.
    Mismatch(String),
}

/// The pure judgement over `found`: (subvolume, token on it).
pub fn judge(uuid: &str, recorded: Option<&str>, found: &[(String, Option<String>)], fresh: &str) -> Binding {
    if let Some(t) = recorded {
        return match found.iter().find(|(_, f)| f.as_deref() != Some(t)) {
            None => Binding::Bound,
            Some((d, None)) => Binding::Mismatch(format!(
                "{d} carries no enrolment token, but this machine bound UUID {uuid} to one: \
                 a stick with a copy of the enrolled SSD's UUID, or a subvolume made by hand"
            )),
            Some((d, Some(_))) => Binding::Mismatch(format!(
                "{d} carries another enrolment token than this machine recorded for UUID {uuid}: \
                 not the SSD enrolled here (a copy of its UUID?)"
            )),
        };
    }
    let carried: BTreeSet<&str> = found.iter().filter_map(|(_, t)| t.as_deref()).collect();
    match carried.into_iter().collect::<Vec<_>>()[..] {
        [] => Binding::Bind(fresh.into()),
        [t] if is_token(t) => Binding::Bind(t.into()),
        [_] => Binding::Mismatch(format!("the enrolment token on UUID {uuid} is malformed")),
        _ => Binding::Mismatch(format!("the subvolumes of UUID {uuid} carry different enrolment tokens")),
    }
}

/// Checks (and, for an SSD enrolled by UUID alone, makes) the binding of the mounted
/// subvolumes `dirs` of the enrolled file system `uuid`. Ok(Some(line)) when it bound them now;
/// Err(why) when they are not the SSD enrolled here.
pub fn check_binding(uuid: &str, recorded: Option<&str>, dirs: &[&PathBuf]) -> Result<Option<String>, String> {
    let mut found = Vec::new();
    for d in dirs {
        found.push((d.display().to_string(), token_on(d).map_err(|e| e.to_string())?));
    }
    let fresh = new_token().map_err(|e| e.to_string())?;
    match judge(uuid, recorded, &found, &fresh) {
        Binding::Bound => Ok(None),
        Binding::Mismatch(why) => Err(why),
        Binding::Bind(t) => {
            for d in dirs {
                put_token(d, &t).map_err(|e| e.to_string())?;
            }
            record_token(uuid, &t).map_err(|e| e.to_string())?;
            Ok(Some(format!("bound UUID {uuid} to this machine: its enrolment token is in {TOKENS}")))
        }
    }
}

/// Enrols the file system whose top level is mounted at `top` and binds it, with a new token
/// on each of `subvolumes` that exists. Ok((uuid, false)) if it was enrolled and bound already.
pub fn enrol_at(top: &Path, subvolumes: &[&str]) -> Result<(String, bool), EnrolError> {
    let uuid = uuid_of(top)?;
    let dirs: Vec<PathBuf> = subvolumes.iter().map(|s| top.join(s)).filter(|d| d.is_dir()).collect();
    if dirs.is_empty() {
        return Err(EnrolError::NoSubvolume(subvolumes.join(", ")));
    }
    let recorded = tokens()?.get(&uuid).cloned();
    let mut found = Vec::new();
    for d in &dirs {
        found.push((d.display().to_string(), token_on(d)?));
    }
    let token = new_token()?;
    let listed = fs::read_to_string(ENROLLED).map(|t| parse(&t).contains(&uuid)).unwrap_or(false);
    if listed && judge(&uuid, recorded.as_deref(), &found, &token) == Binding::Bound {
        return Ok((uuid, false));
    }
    for d in &dirs {
        put_token(d, &token)?;
    }
    record_token(&uuid, &token)?;
    record(&uuid)?;
    Ok((uuid, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let b = [0x4f, 0x1c, 0, 0x21, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xaa, 0xbb, 0xcc, 0xdd];
        assert_eq!(format_uuid(&b), "4f1c0021-abcd-ef01-2345-6789aabbccdd");
        let t = "# comment\n4F1C0021-ABCD-EF01-2345-6789AABBCCDD  # the SSD\nnot-a-uuid\n\n";
        assert_eq!(parse(t).into_iter().collect::<Vec<_>>(), vec!["4f1c0021-abcd-ef01-2345-6789aabbccdd"]);
    }

    const T: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const U: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    const ID: &str = "4f1c0021-abcd-ef01-2345-6789aabbccdd";

    fn on(t: &[Option<&str>]) -> Vec<(String, Option<String>)> {
        t.iter().enumerate().map(|(i, t)| (format!("/mnt/sub{i}"), t.map(String::from))).collect()
    }

    #[test]
    fn tokens_file() {
        let t = format!("# c\n{} {T}\nnot-a-uuid {T}\n{ID} short\n", ID.to_ascii_uppercase());
        assert_eq!(parse_tokens(&t).into_iter().collect::<Vec<_>>(), vec![(ID.to_string(), T.to_string())]);
    }

    #[test]
    fn binding_recorded() {
        assert_eq!(judge(ID, Some(T), &on(&[Some(T), Some(T)]), U), Binding::Bound);
        let Binding::Mismatch(w) = judge(ID, Some(T), &on(&[Some(T), None]), U) else { panic!() };
        assert!(w.starts_with("/mnt/sub1 carries no enrolment token") && w.contains(ID), "{w}");
        let Binding::Mismatch(w) = judge(ID, Some(T), &on(&[Some(U)]), T) else { panic!() };
        assert!(w.contains("another enrolment token"), "{w}");
    }

    #[test]
    fn binding_by_uuid_alone() {
        assert_eq!(judge(ID, None, &on(&[None, None]), U), Binding::Bind(U.into()));
        assert_eq!(judge(ID, None, &on(&[Some(T), None]), U), Binding::Bind(T.into()));
        assert!(matches!(judge(ID, None, &on(&[Some(T), Some(U)]), U), Binding::Mismatch(_)));
        assert!(matches!(judge(ID, None, &on(&[Some("x")]), U), Binding::Mismatch(_)));
    }

    #[test]
    fn new_tokens_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert!(is_token(&a) && a != b);
    }

    #[test]
    fn not_btrfs_is_said() {
        // /proc is never btrfs
        assert!(matches!(uuid_of(Path::new("/proc")), Err(EnrolError::NotBtrfs(_))));
    }
}
