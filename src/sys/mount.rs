//! mount(2), umount2(2), /proc/self/mountinfo, and private mount namespaces.
use super::error::{Context, IoError};
use super::fs::cstr;
use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;

pub use libc::{MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT};

/// mount(2). `data` is the file system's option string.
pub fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::io::Result<()> {
    let src = src.map(cstr);
    let target = cstr(target);
    let fstype = fstype.map(|s| CString::new(s).unwrap_or_default());
    let data = data.map(|s| CString::new(s).unwrap_or_default());
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a valid NUL-terminated string or null, as mount(2) accepts.
    let r = unsafe { libc::mount(ptr(&src), target.as_ptr(), ptr(&fstype), flags, ptr(&data).cast()) };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// A bind mount of `src` on `target` (flags added to MS_BIND, e.g. MS_REC).
pub fn bind(src: &Path, target: &Path) -> std::io::Result<()> {
    mount(Some(src), target, None, MS_BIND, None)
}

/// Remounts the bind mount at `target` with `flags` (MS_RDONLY, MS_NOSUID, …; none: writable).
pub fn remount_bind(target: &Path, flags: libc::c_ulong) -> std::io::Result<()> {
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags, None)
}

/// Sets the propagation of the mount at `target` (MS_PRIVATE, optionally | MS_REC).
pub fn propagation(target: &Path, flags: libc::c_ulong) -> std::io::Result<()> {
    mount(None, target, None, flags, None)
}

/// Lazily unmounts `target` (MNT_DETACH).
pub fn umount(target: &Path) -> std::io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(cstr(target).as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One line of /proc/self/mountinfo: mount point, file system type, source, per-mount options
/// and super options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub target: String,
    pub fstype: String,
    pub source: String,
    pub options: String,
    pub super_options: String,
}

impl MountInfo {
    /// The value of `key=` among the super options (e.g. an overlay's `upperdir`).
    pub fn super_option(&self, key: &str) -> Option<&str> {
        self.super_options.split(',').find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }

    /// Is `flag` (e.g. "ro", "nosuid") among the per-mount options?
    pub fn has_option(&self, flag: &str) -> bool {
        self.options.split(',').any(|o| o == flag)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unoctal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountInfo {
                target: unoctal(pre.get(4)?),
                options: pre.get(5)?.to_string(),
                fstype: post.first()?.to_string(),
                source: unoctal(post.get(1)?),
                super_options: post.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// This process's mounts, in mount order.
pub fn mounts() -> Vec<MountInfo> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The topmost of `all` on `path`.
pub fn top_of<'a>(all: &'a [MountInfo], path: &str) -> Option<&'a MountInfo> {
    all.iter().rev().find(|m| m.target == path)
}

/// The topmost mount on `path`, if it is a mount point.
pub fn top_mount(path: &Path) -> Option<MountInfo> {
    top_of(&mounts(), &path.to_string_lossy()).cloned()
}

pub fn is_mountpoint(p: &Path) -> bool {
    top_mount(p).is_some()
}

/// Moves this process into a new mount namespace whose mounts are all private: what it mounts
/// is never seen outside and vanishes with it. Single-threaded callers only.
pub fn enter_private_namespace() -> Result<(), IoError> {
    // SAFETY: a plain syscall; the callers are single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(IoError::last("unshare(CLONE_NEWNS)"));
    }
    propagation(Path::new("/"), MS_REC | MS_PRIVATE).ctx("make / private")
}

/// Runs `f` in a private mount namespace (see [`enter_private_namespace`]), then returns to
/// this process's namespace, whatever `f` did.
pub fn in_private_namespace<T, E: From<IoError>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let host = fs::File::open("/proc/self/ns/mnt").ctx("open /proc/self/ns/mnt")?;
    enter_private_namespace()?;
    let result = f();
    // SAFETY: host is an open mount-namespace descriptor.
    if unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(IoError::last("return to the host mount namespace").into());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_option_takes_the_whole_key() {
        let m = MountInfo {
            target: "/nix/store".into(),
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: "rw,nosuid".into(),
            super_options: "rw,lowerdir=/nix/.lower-store,upperdir=/u,workdir=/w".into(),
        };
        assert_eq!(m.super_option("upperdir"), Some("/u"));
        assert_eq!(m.super_option("lowerdir"), Some("/nix/.lower-store"));
        assert_eq!(m.super_option("dir"), None);
        assert_eq!(m.super_option("rw"), None);
        assert!(m.has_option("nosuid") && !m.has_option("ro"));
    }

    #[test]
    fn mountinfo_lines() {
        let t = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n";
        let m = &parse_mountinfo(t)[0];
        assert_eq!((m.target.as_str(), m.fstype.as_str(), m.source.as_str()), ("/mnt x", "ext3", "/dev/root"));
        assert_eq!(m.options, "rw,noatime");
        assert_eq!(m.super_options, "rw,errors=continue");
    }
}
