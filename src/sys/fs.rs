//! File-system calls std does not offer: descriptor walks that never follow a symlink,
//! statvfs, syncfs, fallocate; and the atomic file write every runtime file goes through.
use super::error::{Context, IoError};
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// `p` as a C string (a path with a NUL byte becomes the empty string, which every call refuses).
pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// Opens a directory (relative to `at` if given), refusing a symlink unless `follow`.
pub fn open_dir_at(at: Option<&OwnedFd>, path: &Path, follow: bool) -> io::Result<OwnedFd> {
    let c = cstr(path);
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
    let dirfd = at.map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
    // SAFETY: a valid NUL-terminated path and a valid directory descriptor (or AT_FDCWD).
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory `name` inside `parent`: created (owned by uid:gid) when missing, opened
/// without following a symlink (ELOOP/ENOTDIR if someone put one there).
pub fn child_dir(parent: &OwnedFd, name: &str, mode: u32, uid: u32, gid: u32) -> io::Result<OwnedFd> {
    let c = CString::new(name).unwrap_or_default();
    // SAFETY: valid descriptor and NUL-terminated name.
    let made = unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode) } == 0;
    let fd = open_dir_at(Some(parent), Path::new(name), false)?;
    if made {
        // chown the directory we hold open, not whatever the name points to by now
        // SAFETY: a valid open descriptor.
        if unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// Sets the extended attribute `name` to `value` on the file open as `fd`.
pub fn set_xattr(fd: &OwnedFd, name: &str, value: &[u8]) -> io::Result<()> {
    let n = CString::new(name).unwrap_or_default();
    // SAFETY: a valid open descriptor, a NUL-terminated name, a buffer of `value.len()` bytes.
    if unsafe { libc::fsetxattr(fd.as_raw_fd(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens `p` for reading without blocking (O_NONBLOCK, O_NOCTTY): a FIFO or a device opens at
/// once instead of stalling the caller.
pub fn open_nonblocking(p: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(p)
}

/// Creates `p` exclusively for writing with `mode`, never through a symlink (O_NOFOLLOW).
pub fn create_new_nofollow(p: &Path, mode: u32) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
}

/// Opens the regular file `p` for reading, never through a symlink (O_NOFOLLOW).
pub fn open_read_nofollow(p: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(p)
}

/// Replaces `path` by a file holding `body` with `mode`, on a file system that is not trusted:
/// the temporary file beside it is created exclusively and never through a symlink (a link
/// left there is removed, not followed), synced, then renamed over `path`.
pub fn replace_nofollow(path: &Path, body: &str, mode: u32) -> Result<(), IoError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(IoError::new(format!("remove {}", tmp.display()), e));
        }
        _ => {}
    }
    let mut f = create_new_nofollow(&tmp, mode).ctx(format!("create {}", tmp.display()))?;
    f.set_permissions(fs::Permissions::from_mode(mode)).ctx(format!("chmod {}", tmp.display()))?;
    f.write_all(body.as_bytes()).ctx(format!("write {}", tmp.display()))?;
    f.sync_all().ctx(format!("sync {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(format!("rename {}", path.display()))
}

/// statfs(2) magic of btrfs.
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
/// `_IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)` (1024 bytes; the fsid at offset 16).
const BTRFS_IOC_FS_INFO: libc::c_ulong = 0x8400_941F;

/// The btrfs file system UUID (fsid) of the file system holding the directory `dir`, or None
/// if it is not btrfs. The directory is opened without following a symlink.
pub fn btrfs_fsid(dir: &Path) -> io::Result<Option<[u8; 16]>> {
    let fd = open_dir_at(None, dir, false)?;
    // SAFETY: fstatfs fills the zeroed struct it is given, on a descriptor we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.f_type as i64 != BTRFS_SUPER_MAGIC {
        return Ok(None);
    }
    let mut args = [0u8; 1024];
    // SAFETY: BTRFS_IOC_FS_INFO writes at most 1024 bytes into the buffer it is given.
    if unsafe { libc::ioctl(fd.as_raw_fd(), BTRFS_IOC_FS_INFO as _, args.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fsid = [0u8; 16];
    fsid.copy_from_slice(&args[16..32]);
    Ok(Some(fsid))
}

/// Size and room of a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Space {
    pub total: u64,
    /// Bytes an unprivileged writer may still use (statvfs f_bavail).
    pub avail: u64,
}

/// statvfs(3) of the file system holding `p`.
pub fn space(p: &Path) -> io::Result<Space> {
    let c = cstr(p);
    // SAFETY: statvfs writes into the zeroed struct it is given.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let f = st.f_frsize as u64;
    Ok(Space { total: st.f_blocks as u64 * f, avail: st.f_bavail as u64 * f })
}

/// Commits the file system holding `p` (syncfs(2)); errors are ignored.
pub fn syncfs(p: &Path) {
    if let Ok(d) = fs::File::open(p) {
        // SAFETY: a plain syscall on a descriptor we own.
        unsafe { libc::syncfs(d.as_raw_fd()) };
    }
}

/// Preallocates `len` bytes of `f` (fallocate(2), mode 0).
pub fn fallocate(f: &fs::File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a plain syscall on a descriptor we own.
    if unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `body` to `path` atomically (a temporary file beside it, renamed over it), mode 0644,
/// creating the parent directory (mode 0755) when missing.
pub fn write_atomic(path: &Path, body: &str) -> Result<(), IoError> {
    write_atomic_mode(path, body, 0o644, 0o755)
}

/// [`write_atomic`] with the file's mode and its parent directory's mode (if made), synced to
/// disk before the rename.
pub fn write_atomic_mode(path: &Path, body: &str, mode: u32, dir_mode: u32) -> Result<(), IoError> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new().mode(dir_mode).recursive(true).create(dir).ctx(format!("mkdir {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).ctx(format!("create {}", tmp.display()))?;
    f.set_permissions(fs::Permissions::from_mode(mode)).ctx(format!("chmod {}", tmp.display()))?;
    f.write_all(body.as_bytes()).ctx(format!("write {}", tmp.display()))?;
    f.sync_all().ctx(format!("sync {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(format!("rename {}", path.display()))
}
