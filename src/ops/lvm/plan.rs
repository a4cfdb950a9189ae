//! The plan: the live state and the request → checked steps (pure); what state a failed
//! step leaves and how to go on; the check after the last step.
use super::report::{Pv, Seg, State};
use super::size::{human, lvm_size};
use super::{LvmError, MEASURED_LVM};
use std::fmt;

/// lvm2's smallest cache pool metadata LV.
const MIN_META: u64 = 2 << 20;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub vg: String,
    /// The SSD PV as `pvs` names it (callers canonicalize /dev/disk/by-* links).
    pub pv: String,
    pub lv: Option<String>,
    pub pool: Option<String>,
    pub nix_name: String,
    pub cache_size: u64,
    pub meta_size: u64,
    pub nix_size: u64,
}

impl Request {
    /// The `nix-ssd lvm-plan` command line that asks for this again (for a cached or
    /// uncached LV alike).
    pub fn command_line(&self, lv: &str, pool: &str) -> String {
        format!(
            "nix-ssd lvm-plan --vg {} --pv {} --lv {lv} --pool {pool} --nix-name {} --cache-size {} --meta-size {} --nix-size {} --execute",
            self.vg,
            self.pv,
            self.nix_name,
            lvm_size(self.cache_size).to_uppercase(),
            lvm_size(self.meta_size).to_uppercase(),
            lvm_size(self.nix_size).to_uppercase()
        )
    }
}

/// One step, printed before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Uncache { vg: String, lv: String },
    CreatePool { vg: String, pool: String, pv: String, cache_size: u64, meta_size: u64 },
    Attach { vg: String, lv: String, pool: String },
    CreateLv { vg: String, name: String, pv: String, size: u64 },
    Setup { device: String },
}

impl Step {
    /// The command: program and arguments (`nix-ssd` for [`Step::Setup`] is this program).
    pub fn argv(&self) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Step::Uncache { vg, lv } => v(&["lvconvert", "-y", "--uncache", &format!("{vg}/{lv}")]),
            Step::CreatePool { vg, pool, pv, cache_size, meta_size } => v(&[
                "lvcreate",
                "-y",
                "--type",
                "cache-pool",
                "-L",
                &lvm_size(*cache_size),
                "--poolmetadatasize",
                &lvm_size(*meta_size),
                "-n",
                pool,
                vg,
                pv,
            ]),
            Step::Attach { vg, lv, pool } => v(&[
                "lvconvert",
                "-y",
                "--type",
                "cache",
                "--cachepool",
                &format!("{vg}/{pool}"),
                "--cachemode",
                "writeback",
                &format!("{vg}/{lv}"),
            ]),
            Step::CreateLv { vg, name, pv, size } => v(&["lvcreate", "-y", "-L", &lvm_size(*size), "-n", name, vg, pv]),
            Step::Setup { device } => v(&["nix-ssd", "setup", device]),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.argv().join(" "))
    }
}

/// The checked plan: findings (printed as `#` comments) and the steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub vg: String,
    pub lv: String,
    pub pool: String,
    /// The pool that caches the LV now and its mode, if it is cached.
    pub old_pool: Option<(String, String)>,
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
}

pub fn bare(name: &str) -> &str {
    name.trim_start_matches('[').trim_end_matches(']')
}

/// lvm2 2.03 renames an attached pool `P` to `[P_cpool]`: the name it was created with.
pub fn pool_base(name: &str) -> &str {
    let b = bare(name);
    b.strip_suffix("_cpool").filter(|s| !s.is_empty()).unwrap_or(b)
}

/// Extents of LV `lv` (as lvs prints it, brackets or not) on PV `pv`.
pub fn extents_on(state: &State, lv: &str, pv: &str) -> u64 {
    state
        .segs
        .iter()
        .filter(|s| bare(&s.lv) == bare(lv))
        .flat_map(|s| &s.ranges)
        .filter(|r| r.dev == pv)
        .map(|r| r.end + 1 - r.start)
        .sum()
}

/// The plan for `req` against the live `state`; every check that can be made before running.
pub fn plan(req: &Request, state: &State) -> Result<Plan, LvmError> {
    let vg = &req.vg;
    if req.meta_size < MIN_META {
        return Err(LvmError::MetaTooSmall(lvm_size(req.meta_size)));
    }
    let pv = ssd_pv(req, state)?;
    let segs: Vec<&Seg> = state.segs.iter().filter(|s| &s.vg == vg).collect();
    let lv_seg = lv_to_cache(req, &segs)?;
    let lv = lv_seg.lv.clone();
    let cached = lv_seg.segtype == "cache";
    if !cached && !matches!(lv_seg.segtype.as_str(), "linear" | "striped") {
        return Err(LvmError::Unsupported { vg: vg.clone(), lv, segtype: lv_seg.segtype.clone() });
    }
    let mut notes = Vec::new();
    let mut steps = Vec::new();
    let (old_pool, mut freed) = match cached {
        true => {
            let (old, freed) = old_pool(vg, lv_seg, &segs, state, pv, &mut notes);
            steps.push(Step::Uncache { vg: vg.clone(), lv: lv.clone() });
            (Some(old), freed)
        }
        false => {
            notes.push(format!("{vg}/{lv} is not cached ({}); after the plan: cached in writeback", lv_seg.segtype));
            (None, 0)
        }
    };
    notes.push(format!(
        "{vg}/{lv} is {} ({}): lvm2 {MEASURED_LVM} uncaches and attaches online (measured), nothing to deactivate or unmount",
        if lv_seg.active { "active" } else { "inactive" },
        human(lv_seg.lv_size)
    ));
    let (pool, create_pool) = new_pool(req, &segs, old_pool.as_ref(), cached, &mut notes)?;
    freed += spare_freed(&segs, old_pool.as_ref(), cached, state, pv);
    let spare = if cached && !other_pools(&segs, old_pool.as_ref()) { 0 } else { spare_extents(&segs) };
    check_space(req, pv, create_pool, spare, freed, cached, &mut notes)?;
    if create_pool {
        steps.push(Step::CreatePool {
            vg: vg.clone(),
            pool: pool.clone(),
            pv: pv.name.clone(),
            cache_size: req.cache_size,
            meta_size: req.meta_size,
        });
    }
    steps.push(Step::Attach { vg: vg.clone(), lv: lv.clone(), pool: pool.clone() });
    steps.push(Step::CreateLv { vg: vg.clone(), name: req.nix_name.clone(), pv: pv.name.clone(), size: req.nix_size });
    steps.push(Step::Setup { device: format!("/dev/{vg}/{}", req.nix_name) });
    Ok(Plan { vg: vg.clone(), lv, pool, old_pool, notes, steps })
}

/// The SSD PV of the request, which must be a PV of its VG.
fn ssd_pv<'a>(req: &Request, state: &'a State) -> Result<&'a Pv, LvmError> {
    let vg = &req.vg;
    let vg_pvs: Vec<&Pv> = state.pvs.iter().filter(|p| &p.vg == vg).collect();
    if vg_pvs.is_empty() {
        return Err(LvmError::NoVg(vg.clone()));
    }
    vg_pvs.into_iter().find(|p| p.name == req.pv).ok_or_else(|| LvmError::PvNotInVg {
        pv: req.pv.clone(),
        vg: vg.clone(),
        listed: state.pvs.iter().map(|p| format!("{} ({})", p.name, p.vg)).collect::<Vec<_>>().join(", "),
    })
}

fn find<'a>(segs: &[&'a Seg], name: &str) -> Option<&'a Seg> {
    segs.iter().find(|s| bare(&s.lv) == bare(name)).copied()
}

/// The LV to keep cached: the one named, else the VG's only cached LV.
fn lv_to_cache<'a>(req: &Request, segs: &[&'a Seg]) -> Result<&'a Seg, LvmError> {
    let vg = &req.vg;
    if let Some(l) = &req.lv {
        return find(segs, l)
            .filter(|s| !s.lv.starts_with('['))
            .ok_or_else(|| LvmError::NoLv { vg: vg.clone(), lv: l.clone() });
    }
    let cached: Vec<&Seg> = segs.iter().filter(|s| s.segtype == "cache" && !s.lv.starts_with('[')).copied().collect();
    match cached.as_slice() {
        [one] => Ok(*one),
        [] => Err(LvmError::NoCachedLv(vg.clone())),
        many => Err(LvmError::SeveralCached {
            vg: vg.clone(),
            lvs: many.iter().map(|s| s.lv.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The pool that caches `lv_seg` now and its mode, and the extents uncaching frees on the SSD PV.
fn old_pool(
    vg: &str,
    lv_seg: &Seg,
    segs: &[&Seg],
    state: &State,
    pv: &Pv,
    notes: &mut Vec<String>,
) -> ((String, String), u64) {
    let lv = &lv_seg.lv;
    let pool_name = lv_seg.pool_lv.clone();
    let mode = if lv_seg.cache_mode.is_empty() { "unknown".to_string() } else { lv_seg.cache_mode.clone() };
    let mut parts = vec![pool_name.clone()];
    if let Some(p) = find(segs, &pool_name) {
        parts.extend([p.data_lv.clone(), p.metadata_lv.clone()].into_iter().filter(|s| !s.is_empty()));
    }
    let freed = parts.iter().map(|p| extents_on(state, p, &pv.name)).sum();
    notes.push(format!(
        "{vg}/{lv} is cached by {pool_name} in {mode} mode ({} extents of it on {}); after the plan: writeback",
        freed, pv.name
    ));
    if mode == "writeback" {
        notes
            .push("uncaching writes the dirty blocks back to the origin first (lvm2 does it; may take a while)".into());
    }
    ((pool_name, mode), freed)
}

/// The new pool's name, and whether it must be created (an unattached cache pool of that name
/// is attached as it is); refuses names that are taken.
fn new_pool(
    req: &Request,
    segs: &[&Seg],
    old_pool: Option<&(String, String)>,
    cached: bool,
    notes: &mut Vec<String>,
) -> Result<(String, bool), LvmError> {
    let vg = &req.vg;
    let pool =
        req.pool.clone().unwrap_or_else(|| old_pool.map(|(p, _)| pool_base(p).to_string()).unwrap_or("cpool".into()));
    let old_parts = |name: &str| {
        old_pool.is_some_and(|(p, _)| {
            let (p, n) = (bare(p), bare(name));
            n == p || n == format!("{p}_cdata") || n == format!("{p}_cmeta")
        })
    };
    let mut create_pool = true;
    if let Some(existing) = find(segs, &pool).filter(|s| !old_parts(&s.lv)) {
        if existing.segtype == "cache-pool" && !existing.lv.starts_with('[') && !cached {
            notes.push(format!("{vg}/{pool} is an unattached cache pool already: it is attached as it is"));
            create_pool = false;
        } else {
            return Err(LvmError::Exists {
                vg: vg.clone(),
                name: pool,
                hint: "choose another name for the new cache pool with --pool".into(),
            });
        }
    }
    if find(segs, &req.nix_name).is_some() {
        return Err(LvmError::Exists {
            vg: vg.clone(),
            name: req.nix_name.clone(),
            hint: "remove it (lvremove) or choose another name with --nix-name".into(),
        });
    }
    Ok((pool, create_pool))
}

// The VG's hidden pool metadata spare ([lvol0_pmspare]) goes with its last pool: uncaching the
// only pool frees it too, and the new pool makes it again with the new metadata size on the PV
// it is given (measured); with other pools left it stays and grows to the new metadata size if
// smaller.

fn spare_lv(segs: &[&Seg]) -> Option<String> {
    segs.iter().find(|s| bare(&s.lv).ends_with("_pmspare")).map(|s| s.lv.clone())
}

/// Are there pools besides the old one?
fn other_pools(segs: &[&Seg], old_pool: Option<&(String, String)>) -> bool {
    segs.iter().any(|s| {
        matches!(s.segtype.as_str(), "cache-pool" | "thin-pool") && old_pool.is_none_or(|(p, _)| bare(p) != bare(&s.lv))
    })
}

/// The spare's size in extents.
fn spare_extents(segs: &[&Seg]) -> u64 {
    spare_lv(segs).map(|l| segs.iter().filter(|s| s.lv == l).map(|s| s.seg_size_pe).sum()).unwrap_or(0)
}

/// Extents of the spare on the SSD PV that uncaching the only pool frees.
fn spare_freed(segs: &[&Seg], old_pool: Option<&(String, String)>, cached: bool, state: &State, pv: &Pv) -> u64 {
    match spare_lv(segs) {
        Some(l) if cached && !other_pools(segs, old_pool) => extents_on(state, &l, &pv.name),
        _ => 0,
    }
}

/// Checks that the new pool (if created), the spare's growth and the Nix LV fit on the SSD PV
/// after uncaching; notes the figures.
fn check_space(
    req: &Request,
    pv: &Pv,
    create_pool: bool,
    spare: u64,
    freed: u64,
    cached: bool,
    notes: &mut Vec<String>,
) -> Result<(), LvmError> {
    let ext = pv.extent_size;
    let exts = |b: u64| b.div_ceil(ext);
    let (cache_x, meta_x, nix_x) = (exts(req.cache_size), exts(req.meta_size), exts(req.nix_size));
    let spare_x = if create_pool { meta_x.saturating_sub(spare) } else { 0 };
    let mut need = nix_x;
    let mut detail = Vec::new();
    if create_pool {
        need += cache_x + meta_x + spare_x;
        detail.push(format!("cache {cache_x} + metadata {meta_x}"));
        if spare_x > 0 {
            detail.push(format!("metadata spare growth {spare_x}"));
        }
    }
    detail.push(format!("{} {nix_x}", req.nix_name));
    let detail = detail.join(" + ");
    let free = pv.free_extents();
    let avail = free + freed;
    if need > avail {
        return Err(LvmError::NoSpace { pv: pv.name.clone(), need, detail, avail, free, freed, extent: human(ext) });
    }
    let after = if cached { format!(", {avail} after uncaching") } else { String::new() };
    notes.push(format!(
        "{}: {} extents of {}; {free} free now{after}; the plan uses {need} ({detail}), {} stay free",
        pv.name,
        pv.pe_count,
        human(ext),
        avail - need
    ));
    Ok(())
}

/// After step `failed` (index into `plan.steps`) failed: the state the VG is in, and the
/// commands that finish the plan from there.
pub fn after_failure(plan: &Plan, req: &Request, failed: usize) -> (String, Vec<String>) {
    let (vg, lv, pool) = (&plan.vg, &plan.lv, &plan.pool);
    let rest: Vec<String> = plan.steps[failed..].iter().map(|s| s.to_string()).collect();
    let rerun = format!("or plan again from the live state: {}", req.command_line(lv, pool));
    match &plan.steps[failed] {
        Step::Uncache { .. } => {
            let (old, mode) = plan.old_pool.clone().unwrap_or_default();
            (
                format!("unchanged by this plan: {vg}/{lv} is still cached by {old} ({mode})"),
                vec!["fix the cause above, then run the same command again".into()],
            )
        }
        Step::CreatePool { .. } => (
            format!(
                "{vg}/{lv} is NOT cached any more (its data is whole on its origin PV; the old cache pool is removed); it works uncached"
            ),
            [rest, vec![rerun]].concat(),
        ),
        Step::Attach { .. } => (
            format!("{vg}/{lv} is NOT cached; the new cache pool {vg}/{pool} exists, unattached"),
            [vec![format!("re-attach with: {}", plan.steps[failed])], rest[1..].to_vec(), vec![rerun]].concat(),
        ),
        Step::CreateLv { .. } => {
            (format!("{vg}/{lv} is cached by {pool} in writeback (done); the LV for Nix was not created"), rest)
        }
        Step::Setup { device } => (
            format!(
                "{vg}/{lv} is cached by {pool} in writeback (done); {device} exists but its Nix layout is missing or partial"
            ),
            vec![format!("nix-ssd setup --force {device}   (makes the btrfs again; {device} holds nothing else)")],
        ),
    }
}

/// Checks the state after the plan ran: the LV cached by the new pool in writeback, on the
/// SSD PV, and the Nix LV there.
pub fn verify(plan: &Plan, req: &Request, state: &State) -> Result<String, LvmError> {
    let bad = |m: String| Err(LvmError::Verify(m));
    let lv = state.segs.iter().find(|s| s.vg == plan.vg && s.lv == plan.lv);
    let Some(lv) = lv else { return bad(format!("{}/{} is gone", plan.vg, plan.lv)) };
    if lv.segtype != "cache" || lv.cache_mode != "writeback" {
        return bad(format!("{}/{} is {} mode {:?}", plan.vg, plan.lv, lv.segtype, lv.cache_mode));
    }
    let pool = state.segs.iter().find(|s| s.vg == plan.vg && bare(&s.lv) == bare(&lv.pool_lv));
    let data = pool.map(|p| extents_on(state, &p.data_lv, &req.pv)).unwrap_or(0);
    if data == 0 {
        return bad(format!("the cache pool {} has no data extents on {}", lv.pool_lv, req.pv));
    }
    if extents_on(state, &req.nix_name, &req.pv) == 0 {
        return bad(format!("{}/{} is not on {}", plan.vg, req.nix_name, req.pv));
    }
    Ok(format!(
        "{}/{} cached by {} in writeback ({data} extents on {}); {}/{} on {}",
        plan.vg, plan.lv, lv.pool_lv, req.pv, plan.vg, req.nix_name, req.pv
    ))
}
