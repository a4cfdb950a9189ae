//! `nix-ssd activate`: run by the generated nix-ssd.service before nix-daemon starts. In
//! overlay mode it binds the eMMC store read-only and private at /nix/.lower-store, stacks
//! the SSD's upper layer on /nix/store, and tells nix-daemon to use Nix's `local-overlay://`
//! store; in both modes it points the daemon's build-dir at the SSD. What it decides is
//! written to the daemon's environment file; without that file the daemon uses the eMMC store.
use crate::generator::config::Mode;
use crate::generator::escape::url_encode;
use crate::paths::{LOWER_DB as EMMC_DB, LOWER_STATE as EMMC_STATE, LOWER_STORE, STORE};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};


#[derive(Debug, Clone)]
pub struct Request {
    pub mode: Mode,
    pub overlay_dir: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub cache_users: Vec<String>,
    pub env_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("{what} failed: {source}")]
    Sys { what: String, source: std::io::Error },
    #[error("overlay mode needs {0}: {1}")]
    Layout(String, &'static str),
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ActivateError {
    let what = what.into();
    move |source| ActivateError::Sys { what, source }
}

/// One line of /proc/self/mountinfo: mount point, file system type, super options.
#[derive(Debug, Clone)]
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

pub fn mounts() -> Vec<MountInfo> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The topmost mount on `path`, if it is a mount point.
pub fn top_mount(path: &Path) -> Option<MountInfo> {
    let p = path.to_string_lossy();
    mounts().into_iter().rev().find(|m| m.target == p)
}

pub(crate) fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

pub fn mount_raw(
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

pub fn umount_raw(target: &Path) -> std::io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(cstr(target).as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `local-overlay://` store URL for an overlay at `upper` with state in `state`.
pub fn overlay_store_url(upper: &Path, state: &Path, remount_hook: Option<&Path>) -> String {
    let lower = format!("local://?real={LOWER_STORE}&state={EMMC_STATE}&read-only=true");
    let mut url = format!(
        "local-overlay://?lower-store={}&upper-layer={}&state={}",
        url_encode(&lower),
        upper.display(),
        state.display()
    );
    if let Some(h) = remount_hook {
        url += &format!("&remount-hook={}", h.display());
    }
    url
}

/// What activation did, for the log and the service status.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub nix_config: Vec<String>,
    /// Further `KEY=value` lines for the daemon's environment file.
    pub extra_env: Vec<String>,
}

/// The daemon's Nix version (`nix-daemon --version`: "nix-daemon (Nix) 2.26.3").
fn nix_version() -> Option<(u32, u32)> {
    let out = std::process::Command::new(crate::pin::nix_tool("nix-daemon")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split_whitespace().last()?;
    let mut it = v.split('.').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

pub fn is_mountpoint(p: &Path) -> bool {
    top_mount(p).is_some()
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

/// The remount hook Nix calls after deleting a path from the upper layer directly: a link
/// named `nix-ssd-remount-hook` next to this program (dispatched on argv[0]).
pub fn remount_hook_path() -> Option<PathBuf> {
    let p = std::env::current_exe().ok()?.with_file_name("nix-ssd-remount-hook");
    p.exists().then_some(p)
}

/// `nix-ssd-remount-hook STORE`: remount the overlay so it sees the upper layer as it now is.
pub fn remount(store: &Path) -> Result<(), ActivateError> {
    let Some(m) = top_mount(store).filter(|m| m.fstype == "overlay") else {
        return Ok(()); // nothing stacked: nothing to refresh
    };
    // Classic mount(2) remount (util-linux's new-API reconfigure is refused by overlayfs:
    // "No changes allowed in reconfigure"); first without data, then with the options as
    // they are, which overlayfs accepts as "no change".
    mount_raw(None, store, None, libc::MS_REMOUNT, None)
        .or_else(|_| mount_raw(None, store, None, libc::MS_REMOUNT, Some(&m.super_options)))
        .map_err(sys(format!("remount {}", store.display())))
}

/// Checks the overlay layout: upper/, work/ and state/ are real directories on the very mount
/// of `dir` (overlayfs needs upper and work on one file system; a btrfs subvolume inside
/// would give EXDEV on every copy-up).
fn check_layout(dir: &Path) -> Result<(), ActivateError> {
    let top = fs::symlink_metadata(dir).map_err(sys(format!("stat {}", dir.display())))?;
    for sub in ["upper", "work", "state"] {
        let p = dir.join(sub);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() && m.dev() == top.dev() => {}
            Ok(m) if m.is_dir() => {
                return Err(ActivateError::Layout(
                    p.display().to_string(),
                    "it is a separate subvolume or mount; it must be a plain directory in the same subvolume",
                ));
            }
            Ok(_) => return Err(ActivateError::Layout(p.display().to_string(), "it is not a directory")),
            Err(_) => {
                return Err(ActivateError::Layout(
                    p.display().to_string(),
                    "it is missing; create it with `nix-ssd setup`",
                ));
            }
        }
    }
    Ok(())
}

/// Stacks the overlay on /nix/store. Returns the daemon's store URL.
fn stack_overlay(dir: &Path, r: &mut Report) -> Result<String, ActivateError> {
    check_layout(dir)?;
    if !Path::new(EMMC_DB).exists() {
        return Err(ActivateError::Layout(
            EMMC_DB.into(),
            "the eMMC store has no database yet; run any nix-store command once (e.g. `nix-store --init`) so the read-only lower store can be opened",
        ));
    }
    let (upper, work, state) = (dir.join("upper"), dir.join("work"), dir.join("state"));
    let hook = remount_hook_path();
    if hook.is_none() {
        r.lines.push("no nix-ssd-remount-hook next to nix-ssd: Nix cannot refresh the overlay after deleting upper-layer duplicates".into());
    }
    let url = overlay_store_url(&upper, &state, hook.as_deref());
    let store = Path::new(STORE);
    if let Some(m) = top_mount(store)
        && m.fstype == "overlay"
        && m.super_options.contains(&format!("upperdir={}", upper.display()))
    {
        r.lines.push("the overlay is already on /nix/store".into());
        return Ok(url);
    }
    let lower = Path::new(LOWER_STORE);
    fs::DirBuilder::new().mode(0o755).recursive(true).create(lower).map_err(sys(format!("mkdir {LOWER_STORE}")))?;
    let fresh_lower = !is_mountpoint(lower);
    if fresh_lower {
        mount_raw(Some(store), lower, None, libc::MS_BIND, None)
            .map_err(sys(format!("bind {STORE} on {LOWER_STORE}")))?;
        let ro = mount_raw(None, lower, None, libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY, None)
            .map_err(sys(format!("remount {LOWER_STORE} read-only")))
            // Under systemd / is shared: without this the overlay mounted on /nix/store would
            // propagate onto the lower bind too, and the "lower store" would be the merged view.
            .and_then(|()| {
                mount_raw(None, lower, None, libc::MS_PRIVATE, None).map_err(sys(format!("make {LOWER_STORE} private")))
            });
        if let Err(e) = ro {
            let _ = umount_raw(lower);
            return Err(e);
        }
    }
    let opts = format!("lowerdir={LOWER_STORE},upperdir={},workdir={}", upper.display(), work.display());
    if let Err(e) = mount_raw(Some(Path::new("overlay")), store, Some("overlay"), 0, Some(&opts)) {
        if fresh_lower {
            let _ = umount_raw(lower);
        }
        return Err(sys(format!("mount -t overlay -o {opts} overlay {STORE}"))(e));
    }
    r.lines.push(format!("stacked overlay on {STORE}: {opts}"));
    guard_emmc_db(r);
    Ok(url)
}

/// While the overlay is up the eMMC database must not be written through the merged view: a
/// root process that opens the local store directly (say `nix-collect-garbage` without
/// NIX_REMOTE=daemon) would register SSD files in it or delete SSD paths. A read-only bind of
/// the database directory makes such a process fail instead; the daemon opens the eMMC store
/// read-only anyway, and `nix-ssd pin` writes through its own private mount namespace.
fn guard_emmc_db(r: &mut Report) {
    let db = Path::new(EMMC_DB).parent().unwrap_or(Path::new("/nix/var/nix/db"));
    let res = mount_raw(Some(db), db, None, libc::MS_BIND, None)
        .and_then(|()| mount_raw(None, db, None, libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY, None));
    match res {
        Ok(()) => r.lines.push(format!("{} is read-only while the overlay is up", db.display())),
        Err(e) => {
            r.lines.push(format!("could not make {} read-only ({e}): root must use NIX_REMOTE=daemon", db.display()))
        }
    }
}

/// Binds `<cache>/<user>` onto `~user/.cache/nix`, refusing any symlink on the way.
fn bind_cache(cache: &Path, user: &str, r: &mut Report) -> Result<(), ActivateError> {
    let cuser = CString::new(user).unwrap_or_default();
    // SAFETY: getpwnam returns NULL or a pointer to static storage we copy from at once.
    let pw = unsafe { libc::getpwnam(cuser.as_ptr()) };
    if pw.is_null() {
        r.lines.push(format!("cache for {user}: no such user; skipped"));
        return Ok(());
    }
    // SAFETY: pw is non-null and points to a valid passwd entry.
    let (uid, gid, home) = unsafe {
        (
            (*pw).pw_uid,
            (*pw).pw_gid,
            PathBuf::from(std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned()),
        )
    };
    let src = cache.join(user);
    // The SSD side lives in a root-owned directory the user cannot change.
    match fs::symlink_metadata(&src) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            r.lines.push(format!("cache for {user}: {} is not a directory; skipped", src.display()));
            return Ok(());
        }
        Err(_) => {
            fs::DirBuilder::new().mode(0o700).create(&src).map_err(sys(format!("mkdir {}", src.display())))?;
            std::os::unix::fs::lchown(&src, Some(uid), Some(gid)).map_err(sys(format!("chown {}", src.display())))?;
        }
    }
    // The home side belongs to the user, who may race us: walk it with descriptors, never
    // following a symlink below the home directory, so nothing is created, chowned or
    // mounted anywhere but inside it.
    let target = home.join(".cache/nix");
    let home_fd = match open_dir_at(None, &home, true) {
        Ok(fd) => fd,
        Err(e) => {
            r.lines.push(format!("cache for {user}: cannot open {} ({e}); skipped", home.display()));
            return Ok(());
        }
    };
    let mut dir = home_fd;
    let mut at = home.clone();
    for (name, mode) in [(".cache", 0o700), ("nix", 0o755)] {
        at.push(name);
        dir = match child_dir(&dir, name, mode, uid, gid) {
            Ok(fd) => fd,
            Err(e) => {
                r.lines.push(format!("cache for {user}: {} is not a plain directory; skipped ({e})", at.display()));
                return Ok(());
            }
        };
    }
    if is_mountpoint(&target) {
        r.lines.push(format!("cache for {user}: {} already mounted", target.display()));
        return Ok(());
    }
    let via = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    mount_raw(Some(&src), &via, None, libc::MS_BIND, None).map_err(sys(format!(
        "bind {} on {}",
        src.display(),
        target.display()
    )))?;
    r.lines.push(format!("cache for {user}: {} on {}", src.display(), target.display()));
    Ok(())
}

/// Opens a directory (relative to `at` if given), refusing a symlink unless `follow`.
fn open_dir_at(at: Option<&OwnedFd>, path: &Path, follow: bool) -> std::io::Result<OwnedFd> {
    let c = cstr(path);
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
    let dirfd = at.map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
    // SAFETY: a valid NUL-terminated path and a valid directory descriptor (or AT_FDCWD).
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory `name` inside `parent`: created (owned by uid:gid) when missing, opened
/// without following a symlink (ELOOP/ENOTDIR if the user put one there).
fn child_dir(parent: &OwnedFd, name: &str, mode: u32, uid: u32, gid: u32) -> std::io::Result<OwnedFd> {
    let c = CString::new(name).unwrap_or_default();
    // SAFETY: valid descriptor and NUL-terminated name.
    let made = unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode) } == 0;
    let fd = open_dir_at(Some(parent), Path::new(name), false)?;
    if made {
        // chown the directory we hold open, not whatever the name points to by now
        // SAFETY: a valid open descriptor.
        if unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// Writes the daemon's environment file atomically (or removes it when there is nothing).
fn write_env(path: &Path, nix_config: &[String], extra: &[String]) -> Result<(), ActivateError> {
    if nix_config.is_empty() && extra.is_empty() {
        let _ = fs::remove_file(path);
        return Ok(());
    }
    let quoted: String = nix_config
        .join("\n")
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let body =
        format!("# Written by `nix-ssd activate` for nix-daemon.service (this boot only).\nNIX_CONFIG=\"{quoted}\"\n");
    write_file_atomic(path, &body)
}

fn write_file_atomic(path: &Path, body: &str) -> Result<(), ActivateError> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .mode(0o755)
            .recursive(true)
            .create(dir)
            .map_err(sys(format!("mkdir {}", dir.display())))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(sys(format!("create {}", tmp.display())))?;
    f.set_permissions(fs::Permissions::from_mode(0o644)).map_err(sys("chmod"))?;
    f.write_all(body.as_bytes()).map_err(sys(format!("write {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(sys(format!("rename {}", path.display())))
}

/// The Nix setting that puts a path's files on disk before the path is registered valid:
/// `fsync-store-paths` (Nix 2.25 and later), else the older, coarser `sync-before-registering`.
pub fn durability_setting(version: Option<(u32, u32)>) -> &'static str {
    match version {
        Some(v) if v < (2, 25) => "sync-before-registering = true",
        _ => "fsync-store-paths = true",
    }
}

/// Runs activation. Never mounts under a daemon that already runs: the service is ordered
/// before nix-daemon.service.
fn mounted(p: &Option<PathBuf>) -> Option<&PathBuf> {
    p.as_ref().filter(|p| is_mountpoint(p))
}

pub fn activate(req: &Request) -> Result<Report, ActivateError> {
    let mut r = Report::default();
    // The store is decided once, before the daemon starts: never change it under a running
    // daemon (an SSD that appeared late is used from the next boot; `nix-ssd status` says so).
    if let Some(pid) = daemon_pid() {
        r.lines.push(format!(
            "nix-daemon already runs (pid {pid}): leaving its store alone; the SSD is used from the next boot"
        ));
        return Ok(r);
    }
    let mut overlay_up = false;
    if req.mode == Mode::Overlay {
        match mounted(&req.overlay_dir) {
            Some(dir) => match stack_overlay(dir, &mut r) {
                Ok(url) => {
                    overlay_up = true;
                    // Before the daemon opens its database on the SSD: a full SSD would stop it.
                    match crate::reserve::maintain(dir) {
                        Ok(o) => r.lines.push(o.to_string()),
                        Err(e) => r.lines.push(format!("space reserve: {e}")),
                    }
                    r.nix_config.push("extra-experimental-features = local-overlay-store read-only-local-store".into());
                    r.nix_config.push(format!("store = {url}"));
                    // The SSD can vanish while running (pulled, power, USB reset). Nix fsyncs its
                    // database but not a path's files: measured after a device_del, a path added
                    // just before was valid in the database and missing from the store. Make Nix
                    // sync the files before it registers a path.
                    r.nix_config.push(durability_setting(nix_version()).into());
                }
                // A disk without our layout: mount nothing on /nix/store, say why, go on.
                Err(e @ ActivateError::Layout(..)) => r.lines.push(format!("not stacking the overlay: {e}")),
                Err(e) => return Err(e),
            },
            None => r.lines.push("the overlay subvolume is not mounted; the store stays on eMMC".into()),
        }
    }
    match mounted(&req.build_dir) {
        Some(b) => {
            // Nix 2.30 refuses a world-writable build dir; the daemon makes per-build dirs inside.
            if let Ok(m) = fs::metadata(b)
                && m.permissions().mode() & 0o002 != 0
            {
                let _ = fs::set_permissions(b, fs::Permissions::from_mode(0o755));
                r.lines.push(format!("{} was world-writable (Nix 2.30 refuses that): now 0755", b.display()));
            }
            match nix_version() {
                // `build-dir` exists since Nix 2.22; older daemons take their builds' TMPDIR.
                Some(v) if v < (2, 22) => {
                    r.lines.push(format!("Nix {}.{} has no build-dir: using TMPDIR", v.0, v.1));
                    r.extra_env.push(format!("TMPDIR={}", b.display()));
                }
                _ => r.nix_config.push(format!("build-dir = {}", b.display())),
            }
        }
        None => r.lines.push("the build subvolume is not mounted; builds stay on eMMC".into()),
    }
    if let Some(c) = mounted(&req.cache_dir) {
        for u in &req.cache_users {
            bind_cache(c, u, &mut r)?;
        }
    }
    write_env(&req.env_file, &r.nix_config, &r.extra_env)?;
    // While the overlay is up, clients must not open the merged /nix/store with the eMMC
    // database (root's default `auto` store would: its GC deletes SSD paths). Root shells
    // (profile snippet) and nix-gc/nix-optimise (generated drop-ins) read this file.
    // Also a nix.conf fragment (`!include`d by the NixOS module) for processes that read no
    // profile, e.g. `sudo nix …`; the daemon's own NIX_CONFIG names its store and wins.
    let client = client_env_path(&req.env_file);
    let conf = req.env_file.with_file_name("nix-client.conf");
    const HEAD: &str = "# Written by `nix-ssd activate`: Nix clients go through the daemon while the overlay is up.\n";
    if overlay_up {
        write_file_atomic(&client, &format!("{HEAD}NIX_REMOTE=daemon\n"))?;
        write_file_atomic(&conf, &format!("{HEAD}store = daemon\n"))?;
    } else {
        let _ = fs::remove_file(&client);
        let _ = fs::remove_file(&conf);
    }
    Ok(r)
}

/// `client.env` beside the daemon's env file.
pub fn client_env_path(env_file: &Path) -> PathBuf {
    env_file.with_file_name("client.env")
}

#[cfg(test)]
mod tests {
    use super::{MountInfo, durability_setting};

    #[test]
    fn super_option_takes_the_whole_key() {
        let m = MountInfo {
            target: "/nix/store".into(),
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: "rw".into(),
            super_options: "rw,lowerdir=/nix/.lower-store,upperdir=/u,workdir=/w".into(),
        };
        assert_eq!(m.super_option("upperdir"), Some("/u"));
        assert_eq!(m.super_option("lowerdir"), Some("/nix/.lower-store"));
        assert_eq!(m.super_option("dir"), None);
        assert_eq!(m.super_option("rw"), None);
    }

    #[test]
    fn durability_follows_the_nix_version() {
        assert_eq!(durability_setting(Some((2, 26))), "fsync-store-paths = true");
        assert_eq!(durability_setting(Some((2, 25))), "fsync-store-paths = true");
        assert_eq!(durability_setting(Some((2, 24))), "sync-before-registering = true");
        assert_eq!(durability_setting(Some((2, 18))), "sync-before-registering = true");
        // unknown version: the current setting
        assert_eq!(durability_setting(None), "fsync-store-paths = true");
    }
}
