//! `nix-ssd activate`: run by the generated nix-ssd.service before nix-daemon starts. In
//! overlay mode it binds the lower store read-only and private at /nix/.lower-store, stacks
//! the SSD's upper layer on /nix/store, and tells nix-daemon to use Nix's `local-overlay://`
//! store; in both modes it points the daemon's build-dir at the SSD. What it decides is
//! written to the daemon's environment file; without that file the daemon uses the lower store.
use crate::enrol;
use crate::generator::config::Mode;
use crate::nix::{self, EnvFile};
use crate::overlay::{self, OverlayError};
use crate::paths::{
    self, BUILD_DIR_MODE, CACHE_USER_MODE, LOWER_DB, LOWER_DB_DIR, LOWER_GC_LIMIT_SECS, LOWER_GC_WANTED, MOVED_IN,
    STATE, STORE, UPPER,
};
use crate::pins;
use crate::reserve;
use crate::session::{self, Session};
use crate::sys::fs::{child_dir, open_dir_at, write_atomic};
use crate::sys::mount::{self, is_mountpoint};
use crate::sys::{Context, IoError, cmd, users};
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What activation did, for the log and the service status.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub env: EnvFile,
}

/// Runs activation. Never mounts under a daemon that already runs: the service is ordered
/// before nix-daemon.service.
pub fn activate(req: &Request) -> Result<Report, ActivateError> {
    let mut r = Report::default();
    // The store is decided once, before the daemon starts: never change it under a running
    // daemon (an SSD that appeared late is used from the next boot; `nix-ssd status` says so).
    if let Some(pid) = nix::daemon_pid() {
        r.lines.push(format!(
            "nix-daemon already runs (pid {pid}): leaving its store alone; the SSD is used from the next boot"
        ));
        return Ok(r);
    }
    // Only this machine's SSD: nothing of another file system is stacked, bound or built on.
    let dirs: Vec<&PathBuf> =
        [&req.overlay_dir, &req.build_dir, &req.cache_dir].into_iter().filter_map(mounted).collect();
    let _ = fs::remove_file(paths::refusal(&req.env_file));
    if let Some(refusal) = foreign(&dirs, &mut r) {
        write_atomic(&paths::refusal(&req.env_file), &format!("{refusal}\n"))?;
        r.lines.push(refusal);
        for d in dirs {
            let _ = mount::umount(d);
        }
        r.env.write(&req.env_file)?;
        client_files(&req.env_file, false)?;
        return Ok(r);
    }
    // Asked before stacking: afterwards a `nix-daemon` found through PATH could resolve into
    // the upper layer.
    let version = nix::version();
    let overlay_up = req.mode == Mode::Overlay && overlay_mode(mounted(&req.overlay_dir), &mut r)?;
    match mounted(&req.build_dir) {
        Some(b) => build_dir(b, version, &mut r),
        None => r.lines.push("the build subvolume is not mounted; builds stay on the internal disk".into()),
    }
    if let Some(c) = mounted(&req.cache_dir) {
        caches(c, &req.cache_users, &mut r)?;
    }
    r.env.write(&req.env_file)?;
    client_files(&req.env_file, overlay_up)?;
    Ok(r)
}

fn mounted(p: &Option<PathBuf>) -> Option<&PathBuf> {
    p.as_ref().filter(|p| is_mountpoint(p))
}

/// Why the SSD mounted at `dirs` must not be used, if it must not: a file system whose btrfs
/// UUID is not enrolled or whose enrolment token does not match (a copy of the UUID), or an
/// enrolment list that cannot be trusted. An SSD enrolled by UUID alone is bound now.
fn foreign(dirs: &[&PathBuf], r: &mut Report) -> Option<String> {
    let (enrolled, tokens) = match (enrol::enrolled(), enrol::tokens()) {
        (Ok(e), Ok(t)) => (e, t),
        (Err(e), _) | (_, Err(e)) => return Some(format!("not using the SSD: {e}")),
    };
    // UUID -> (the device it is mounted from, its mounted subvolumes)
    let mut by_uuid: BTreeMap<String, (String, Vec<&PathBuf>)> = BTreeMap::new();
    for d in dirs {
        let source = mount::top_mount(d).map(|m| m.source).unwrap_or_else(|| "?".into());
        match enrol::uuid_of(d) {
            Ok(u) if enrolled.contains(&u) => by_uuid.entry(u).or_insert_with(|| (source, vec![])).1.push(d),
            Ok(u) => {
                return Some(format!(
                    "not using the SSD: {source} (btrfs UUID {u}) mounted at {} is not enrolled on this machine; \
                     if it is this machine's SSD, run `nix-ssd enroll {source}`",
                    d.display()
                ));
            }
            Err(e) => return Some(format!("not using the SSD: {e}")),
        }
    }
    for (u, (source, ds)) in by_uuid {
        match enrol::check_binding(&u, tokens.get(&u).map(String::as_str), &ds) {
            Ok(bound) => r.lines.extend(bound),
            Err(why) => {
                return Some(format!(
                    "not using the SSD: {source} (btrfs UUID {u}): {why}; if it is this machine's SSD \
                     (made again, or moved from another machine), run `nix-ssd enroll {source}`"
                ));
            }
        }
    }
    None
}

/// Overlay mode: stack the overlay and name its store to the daemon. Ok(true) if it is up.
fn overlay_mode(dir: Option<&PathBuf>, r: &mut Report) -> Result<bool, ActivateError> {
    let Some(dir) = dir else {
        r.lines.push("the overlay subvolume is not mounted; the store stays on the internal disk".into());
        return Ok(false);
    };
    // Made (or read) before stacking: it runs nix-store found through PATH.
    let key = nix::signing_key();
    let url = match stack_overlay(dir, r) {
        Ok(url) => url,
        // A disk without our layout: mount nothing on /nix/store, say why, go on.
        Err(e @ (OverlayError::Layout(..) | OverlayError::Owner(..))) => {
            r.lines.push(format!("not stacking the overlay: {e}"));
            return Ok(false);
        }
        Err(OverlayError::Io(e)) => return Err(e.into()),
    };
    // Before the daemon opens its database on the SSD: a full SSD would stop it.
    match reserve::maintain(dir) {
        Ok(o) => r.lines.push(o.to_string()),
        Err(e) => r.lines.push(format!("space reserve: {e}")),
    }
    r.env.nix_config.push("extra-experimental-features = local-overlay-store read-only-local-store".into());
    r.env.nix_config.push(format!("store = {url}"));
    // The SSD can vanish while running (pulled, power, USB reset). Nix fsyncs its database but
    // not a path's files: measured after a device_del, a path added just before was valid in
    // the database and missing from the store. Rather than an fsync per file while running
    // (`fsync-store-paths`: 2.7× the import time on the modelled board, and builds not covered),
    // the paths of a session that did not end cleanly are verified at the next activation
    // (`check_store` below, `crate::session`).
    // What the daemon builds is signed with this machine's key, so that `nix-ssd pin` can tell
    // it from a path someone put into the SSD's database elsewhere.
    match key {
        Ok(_) => r.env.nix_config.push(format!("extra-secret-key-files = {}", crate::paths::SIGNING_KEY)),
        Err(e) => r.lines.push(format!(
            "no signing key ({e}): `nix-ssd pin` takes only content-addressed paths and paths signed by a trusted key"
        )),
    }
    // The SSD's database against the store, before the daemon opens it: when the lower store
    // may have lost paths since the last check (a boot without the SSD; listing 100 000 valid
    // paths takes ~4 s, so not at every boot) and after an unclean stop (pulled, power lost).
    let stamp_file = dir.join(STATE).join(paths::LOWER_DB_STAMP);
    let stamp = lower_db_stamp();
    let lower_changed = fs::read_to_string(&stamp_file).ok().as_deref() != Some(stamp.as_str());
    let since = match session::read(dir) {
        Session::Open(t) => Some(t.saturating_sub(session::CLOCK_MARGIN_SECS)),
        _ => None,
    };
    let checked = !(lower_changed || since.is_some()) || {
        let cfg = r.env.nix_config.clone();
        check_store(&cfg, since, r)
    };
    if checked {
        let _ = crate::sys::fs::write_atomic_mode(&stamp_file, &stamp, 0o600, 0o755);
    }
    // The session is open from here: an unclean stop is verified at the next activation. After
    // a failed check an open session keeps its start, so that the next check covers both.
    if (checked || since.is_none())
        && let Err(e) = session::open(dir)
    {
        r.lines.push(format!("could not write the session marker ({e}): an unclean stop may go unverified"));
    }
    Ok(true)
}

/// Size and mtime of the lower database and its WAL: what changes when the lower store does.
fn lower_db_stamp() -> String {
    [LOWER_DB.to_string(), format!("{LOWER_DB}-wal")]
        .iter()
        .map(|f| match fs::metadata(f) {
            Ok(m) => format!("{f} {} {}.{}\n", m.len(), m.mtime(), m.mtime_nsec()),
            Err(_) => format!("{f} none\n"),
        })
        .collect()
}

/// Drops from the overlay store what is valid there without its files, before the daemon
/// opens it: (1) a path the SSD's database lists that is in neither layer — the overlay store
/// registers a lower path there when asked about it and takes the lower store as immutable,
/// but the internal store's own GC may have freed it while the SSD was away; (2) with `since`
/// (an unclean stop), a path registered since then whose files do not hash to what the
/// database says (Nix registers a path before its files are synced). Such paths and what
/// references them (incomplete closures) are deleted from the overlay store. True when the
/// store is known to be consistent afterwards.
fn check_store(nix_config: &[String], since: Option<u64>, r: &mut Report) -> bool {
    let cfg = nix_config.join("\n");
    let nix = |tool: &str, args: &[&str], paths: &[String]| -> Result<Command, crate::sys::CmdError> {
        let mut c = overlay::trusted_command(tool)?;
        c.args(args).args(paths).env_remove("NIX_REMOTE").env("NIX_CONFIG", &cfg);
        Ok(c)
    };
    let listed = nix("nix", &["--extra-experimental-features", "nix-command", "path-info", "--json", "--all"], &[])
        .and_then(|mut c| cmd::output(&mut c));
    let listed = match listed {
        Ok(o) => o,
        Err(e) => {
            r.lines.push(format!("could not list the SSD's valid paths: {e}"));
            return false;
        }
    };
    let (stale, suspects) = judge_listing(&listed, since, |p| fs::symlink_metadata(p).is_ok());
    let mut bad = stale.clone();
    for batch in suspects.chunks(nix::ARG_BATCH) {
        match nix("nix-store", &["--verify-path"], batch).and_then(|mut c| cmd::outputs(&mut c)) {
            Ok(out) => bad.extend(modified_paths(&String::from_utf8_lossy(&out.stderr))),
            Err(e) => {
                r.lines.push(format!("could not verify the paths registered since the unclean stop: {e}"));
                return false;
            }
        }
    }
    if since.is_some() {
        r.lines.push(format!(
            "the SSD was not stopped cleanly: verified the {} path(s) registered since, {} did not reach the disk whole",
            suspects.len(),
            bad.len() - stale.len()
        ));
    }
    if bad.is_empty() {
        return true;
    }
    let doomed = match nix("nix-store", &["--query", "--referrers-closure"], &bad).and_then(|mut c| cmd::output(&mut c))
    {
        Ok(o) => o.lines().map(String::from).collect::<Vec<_>>(),
        Err(e) => {
            r.lines.push(format!(
                "{} path(s) valid on the SSD without their files; could not find their referrers: {e}",
                bad.len()
            ));
            return false;
        }
    };
    match nix("nix-store", &["--delete", "--ignore-liveness"], &doomed).and_then(|mut c| cmd::output(&mut c)) {
        Ok(_) => {
            r.lines.push(format!(
                "dropped {} path(s) the SSD's database listed without their files{}: {}",
                bad.len(),
                if doomed.len() > bad.len() {
                    format!(" and {} that reference them", doomed.len() - bad.len())
                } else {
                    String::new()
                },
                bad.iter().take(10).map(|p| p.trim_start_matches("/nix/store/")).collect::<Vec<_>>().join(" ")
            ));
            true
        }
        Err(e) => {
            r.lines
                .push(format!("{} path(s) valid on the SSD without their files; could not drop them: {e}", bad.len()));
            false
        }
    }
}

/// From `nix path-info --json --all`: the listed paths that are not there, and those that are
/// and were registered at or after `since` (to verify). Both orders Nix has printed: an object
/// keyed by path (2.19 and later) or an array of objects with `path`.
fn judge_listing(json: &str, since: Option<u64>, exists: impl Fn(&str) -> bool) -> (Vec<String>, Vec<String>) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    let entries: Vec<(String, &serde_json::Value)> = match &v {
        serde_json::Value::Object(m) => m.iter().map(|(k, i)| (k.clone(), i)).collect(),
        serde_json::Value::Array(a) => {
            a.iter().filter_map(|i| Some((i.get("path")?.as_str()?.to_string(), i))).collect()
        }
        _ => Vec::new(),
    };
    let (mut stale, mut suspects) = (Vec::new(), Vec::new());
    for (p, info) in entries {
        if !p.strip_prefix("/nix/store/").is_some_and(nix::is_store_name) {
            continue;
        }
        if !exists(&p) {
            stale.push(p);
        } else if let Some(t) = since {
            // no registration time: treat as recent
            if info.get("registrationTime").and_then(|x| x.as_u64()).is_none_or(|rt| rt >= t) {
                suspects.push(p);
            }
        }
    }
    (stale, suspects)
}

/// The paths `nix-store --verify-path` reports as modified (`path '…' was modified! …`).
fn modified_paths(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("was modified!"))
        .filter_map(|l| l.split('\'').nth(1))
        .filter(|p| p.strip_prefix("/nix/store/").is_some_and(nix::is_store_name))
        .map(String::from)
        .collect()
}

/// Collects the lower store when `prune-pins` dropped pins since the last collection: before
/// stacking (the lower store must not change under the overlay), after a clean stop only (the
/// stop's sync-roots rooted what the SSD layer needs of it), for at most
/// [`LOWER_GC_LIMIT_SECS`] (the boot's nix-daemon waits; cut short, it goes on next time). The
/// check of the SSD's database after a lower change (`check_store`) then drops what the SSD
/// listed of what went.
fn collect_lower(dir: &Path, r: &mut Report) {
    let Ok(wanted) = fs::read_to_string(LOWER_GC_WANTED) else { return };
    let n = wanted.lines().filter(|l| !l.trim().is_empty()).count();
    if !matches!(session::read(dir), Session::Closed(_)) {
        r.lines.push(format!(
            "not collecting the internal store yet ({n} dropped pin(s)): the last session with the SSD did not end \
             cleanly, so what the SSD layer needs there may not be rooted; after the next clean stop"
        ));
        return;
    }
    let t0 = std::time::Instant::now();
    let mut gc = nix::command("nix-store");
    gc.arg("--gc").env_remove("NIX_REMOTE").env_remove("NIX_CONFIG");
    let ms = || t0.elapsed().as_millis();
    match cmd::output_within(&mut gc, std::time::Duration::from_secs(LOWER_GC_LIMIT_SECS)) {
        Ok(Some(out)) => {
            let _ = fs::remove_file(LOWER_GC_WANTED);
            let said = out.lines().last().unwrap_or("").trim().to_string();
            r.lines.push(format!(
                "collected the internal store ({n} dropped pin(s)) in {} ms, before stacking: {said}",
                ms()
            ));
        }
        Ok(None) => r.lines.push(format!(
            "collecting the internal store was cut short after {} ms; it goes on at the next activation",
            ms()
        )),
        Err(e) => r.lines.push(format!("collecting the internal store failed ({} ms): {e}", ms())),
    }
}

/// Stacks the overlay on /nix/store (unless it is already there). Returns the daemon's store URL.
fn stack_overlay(dir: &Path, r: &mut Report) -> Result<String, OverlayError> {
    overlay::check_layout(dir)?;
    if !Path::new(LOWER_DB).exists() {
        return Err(OverlayError::Layout(
            LOWER_DB.into(),
            "the internal store has no database yet; run any nix-store command once (e.g. `nix-store --init`) so the read-only lower store can be opened",
        ));
    }
    let (upper, state) = (dir.join(UPPER), dir.join(STATE));
    let hook = overlay::remount_hook_path();
    if hook.is_none() {
        r.lines.push("no nix-ssd-remount-hook next to nix-ssd: Nix cannot refresh the overlay after deleting upper-layer duplicates".into());
    }
    let url = overlay::store_url(&upper, &state, hook.as_deref());
    // Before the daemon can collect garbage: it must see every root the internal disk holds.
    let shared = overlay::share_lower_roots(dir)?;
    if !shared.is_empty() {
        r.lines.push(format!(
            "the overlay store sees the internal store's GC roots: {} bound read-only into {}",
            paths::SHARED_ROOTS.map(|(_, src)| src).join(" and "),
            state.join("gcroots").display()
        ));
    }
    if overlay::stacked().is_some_and(|s| s.upper == upper) {
        r.lines.push("the overlay is already on /nix/store".into());
        return Ok(url);
    }
    // /nix/store is still the lower store here: nobody's lower layer, the one time it may change.
    collect_lower(dir, r);
    let copies = pins::parse(&fs::read_to_string(MOVED_IN).unwrap_or_default());
    let sh = overlay::quarantine_shadows(dir, Path::new(STORE), &copies)?;
    let _ = fs::remove_file(MOVED_IN);
    r.lines.push(format!(
        "checked {} upper-layer entries against the lower store in {} ms{}{}",
        sh.checked,
        sh.elapsed.as_millis(),
        if sh.dropped.is_empty() {
            String::new()
        } else {
            format!("; deleted {} upper copies of paths pinned into it", sh.dropped.len())
        },
        if sh.moved.is_empty() {
            String::new()
        } else {
            format!(
                "; moved {} that would shadow it to {}: {}",
                sh.moved.len(),
                sh.quarantine.display(),
                sh.moved.iter().take(10).cloned().collect::<Vec<_>>().join(" ")
            )
        }
    ));
    if let Err(e) = overlay::hide_lower_links(dir) {
        r.lines.push(format!("the lower store's {} stays in the overlay store's view: {e}", overlay::LINKS));
    }
    let opts = overlay::stack(dir)?;
    r.lines.push(format!("stacked overlay on {STORE}: {opts}"));
    match overlay::guard_lower_db() {
        Ok(()) => r.lines.push(format!("{LOWER_DB_DIR} is read-only while the overlay is up")),
        Err(e) => r
            .lines
            .push(format!("could not make {LOWER_DB_DIR} read-only ({}): root must use NIX_REMOTE=daemon", e.source)),
    }
    Ok(url)
}

/// Points the daemon's builds at the build subvolume (root's: builds must not start in a
/// directory someone else controls).
fn build_dir(b: &Path, version: Option<(u32, u32)>, r: &mut Report) {
    match fs::symlink_metadata(b) {
        Ok(m) if m.is_dir() && m.uid() == 0 => {
            // Nix 2.30 refuses a world-writable build dir; the daemon makes per-build dirs inside.
            if m.permissions().mode() & 0o022 != 0 {
                let _ = fs::set_permissions(b, fs::Permissions::from_mode(BUILD_DIR_MODE));
                r.lines.push(format!("{} was group- or world-writable (Nix 2.30 refuses that): now 0755", b.display()));
            }
        }
        Ok(m) => {
            r.lines.push(format!(
                "not using {} for builds: it is owned by uid {}, not root (`nix-ssd setup` makes it so); builds stay on the internal disk",
                b.display(),
                m.uid()
            ));
            return;
        }
        Err(e) => {
            r.lines.push(format!("not using {} for builds ({e}); builds stay on the internal disk", b.display()));
            return;
        }
    }
    match version {
        // `build-dir` exists since Nix 2.22; older daemons take their builds' TMPDIR.
        Some(v) if v < (2, 22) => {
            r.lines.push(format!("Nix {}.{} has no build-dir: using TMPDIR", v.0, v.1));
            r.env.extra.push(format!("TMPDIR={}", b.display()));
        }
        _ => r.env.nix_config.push(format!("build-dir = {}", b.display())),
    }
}

/// While the overlay is up, clients must not open the merged /nix/store with the lower
/// database (root's default `auto` store would: its GC deletes SSD paths). Root shells
/// (profile snippet) and nix-gc/nix-optimise (generated drop-ins) read `client.env`; the
/// nix.conf fragment (`!include`d by the NixOS module) serves processes that read no profile,
/// e.g. `sudo nix …`; the daemon's own NIX_CONFIG names its store and wins.
fn client_files(env_file: &Path, overlay_up: bool) -> Result<(), IoError> {
    let client = paths::client_env(env_file);
    let conf = paths::client_conf(env_file);
    const HEAD: &str = "# Written by `nix-ssd activate`: Nix clients go through the daemon while the overlay is up.\n";
    if overlay_up {
        crate::sys::fs::write_atomic(&client, &format!("{HEAD}NIX_REMOTE=daemon\n"))?;
        crate::sys::fs::write_atomic(&conf, &format!("{HEAD}store = daemon\n"))?;
    } else {
        let _ = fs::remove_file(&client);
        let _ = fs::remove_file(&conf);
    }
    Ok(())
}

/// Binds each user's cache from the cache subvolume `c`, which must be root's and writable by
/// nobody else ("a root-owned directory the user cannot change": else one user could swap
/// another's).
fn caches(c: &Path, users: &[String], r: &mut Report) -> Result<(), IoError> {
    let fd = open_dir_at(None, c, false).ctx(format!("open {} (no symlinks)", c.display()));
    match fd.map_err(OverlayError::from).and_then(|fd| overlay::root_only(&fd, c)) {
        Ok(_) => {
            for u in users {
                bind_cache(c, u, r)?;
            }
        }
        Err(e) => r.lines.push(format!("not binding the caches: {e}")),
    }
    Ok(())
}

/// Binds `<cache>/<user>` onto `~user/.cache/nix`, refusing any symlink on the way.
fn bind_cache(cache: &Path, user: &str, r: &mut Report) -> Result<(), IoError> {
    let Some(u) = users::lookup(user) else {
        r.lines.push(format!("cache for {user}: no such user; skipped"));
        return Ok(());
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
            fs::DirBuilder::new().mode(CACHE_USER_MODE).create(&src).ctx(format!("mkdir {}", src.display()))?;
            std::os::unix::fs::lchown(&src, Some(u.uid), Some(u.gid)).ctx(format!("chown {}", src.display()))?;
        }
    }
    // The home side belongs to the user, who may race us: walk it with descriptors, never
    // following a symlink below the home directory, so nothing is created, chowned or
    // mounted anywhere but inside it.
    let target = u.home.join(".cache/nix");
    let mut dir = match open_dir_at(None, &u.home, true) {
        Ok(fd) => fd,
        Err(e) => {
            r.lines.push(format!("cache for {user}: cannot open {} ({e}); skipped", u.home.display()));
            return Ok(());
        }
    };
    let mut at = u.home.clone();
    for (name, mode) in [(".cache", 0o700), ("nix", 0o755)] {
        at.push(name);
        dir = match child_dir(&dir, name, mode, u.uid, u.gid) {
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
    mount::bind(&src, &via).ctx(format!("bind {} on {}", src.display(), target.display()))?;
    // The bind keeps the cache subvolume's nosuid,nodev (a bind mount copies its source's
    // per-mount flags); it is not remounted through the user's path, which they may change.
    r.lines.push(format!("cache for {user}: {} on {}", src.display(), target.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a";
    const B: &str = "/nix/store/1123456789abcdfghijklmnpqrsvwxyz-b";
    const C: &str = "/nix/store/2123456789abcdfghijklmnpqrsvwxyz-c";

    #[test]
    fn listing_names_the_missing_and_the_recent() {
        let json = format!(
            r#"{{"{A}": {{"registrationTime": 100}}, "{B}": {{"registrationTime": 200}}, "{C}": {{"registrationTime": 300}}}}"#
        );
        let there = |p: &str| p != C;
        assert_eq!(judge_listing(&json, None, there), (vec![C.to_string()], vec![]));
        assert_eq!(judge_listing(&json, Some(200), there), (vec![C.to_string()], vec![B.to_string()]));
        let array = format!(r#"[{{"path": "{A}", "registrationTime": 100}}, {{"path": "{B}"}}]"#);
        assert_eq!(judge_listing(&array, Some(150), |_| true), (vec![], vec![B.to_string()]));
        assert_eq!(judge_listing("not json", Some(0), |_| true), (vec![], vec![]));
    }

    #[test]
    fn verify_path_reports_are_read() {
        let err = format!(
            "checking path '{A}'...\nerror: path '{B}' was modified! expected hash 'sha256:x', got 'sha256:y'\npath '../x' was modified!\n"
        );
        assert_eq!(modified_paths(&err), vec![B.to_string()]);
    }
}
