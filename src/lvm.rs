//! `nix-ssd lvm-plan`: the seed's Stage 2 on LVM as an ordered list of commands, checked against
//! the live `pvs`/`lvs`. An existing VG holds a data LV on the HDD PV, cached (dm-cache, often
//! writethrough) by a cache pool on the SSD PV. The SSD is repurposed: part of it stays cache,
//! now in writeback, and a new LV on the SSD PV holds the Nix btrfs. Steps:
//!
//! 1. `lvconvert --uncache VG/LV` (flushes dirty blocks, removes the old pool)
//! 2. `lvcreate --type cache-pool` on the SSD PV with the new data and metadata sizes
//! 3. `lvconvert --type cache --cachepool VG/POOL --cachemode writeback VG/LV`
//! 4. `lvcreate` the Nix LV on the SSD PV
//! 5. `nix-ssd setup /dev/VG/NIX` (btrfs NIX_SSD with the subvolume layout)
//!
//! [`plan`] is pure (parsed live state → steps); [`lvm_plan`] reads the state, prints, and with
//! `--execute` runs the steps in order and stops at the first failure saying what to do next.
//!
//! Measured with lvm2 2.03.31 / kernel 6.12 (tests/lvm/capture.sh in a qemu guest): uncache,
//! cache-pool attach (writeback) and `lvchange --cachemode` all work with the LV active and its
//! file system mounted, and attaching also works with the LV inactive. So the plan deactivates
//! nothing and needs no unmount; lvm2 older than 2.03 was not measured and gets a warning. When
//! attached, lvm2 2.03 renames pool `P` to the hidden `[P_cpool]` (data `[P_cpool_cdata]`,
//! metadata `[P_cpool_cmeta]`); uncaching removes it but keeps the VG's hidden
//! `[lvol0_pmspare]`, which a new pool grows to its metadata size on the PVs it is given.
//!
//! `pvs`/`lvs` are read with `--nameprefixes --noheadings --units b --nosuffix`: every field
//! comes as `LVM2_FIELD='value'`, so the output names its fields (order and additions do not
//! matter, as with `--reportformat json`) while staying one line per row that a small nom
//! grammar reads. A separator format would break on `devices`/`seg_pe_ranges`, which hold
//! commas and spaces themselves; JSON would want a JSON parser rather than nom.
use nom::{
    IResult,
    bytes::complete::{tag, take_till, take_while1},
    character::complete::{char, digit1, space0, space1},
    combinator::{all_consuming, map_res},
    multi::separated_list1,
    sequence::{delimited, preceded, separated_pair, terminated, tuple},
};
use std::fmt;
use std::process::{Command, ExitCode, Stdio};

/// The lvm2 version the plan was measured with (see the module docs).
pub const MEASURED_LVM: &str = "2.03.31";

/// lvm2's smallest cache pool metadata LV.
const MIN_META: u64 = 2 << 20;

/// The `nix-ssd lvm-plan` command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Volume group holding the cached LV, its HDD PV and the SSD PV
    #[arg(long, value_name = "NAME")]
    pub vg: String,
    /// The SSD physical volume: the new cache pool and the Nix LV are allocated on it only
    #[arg(long, value_name = "DEVICE")]
    pub pv: String,
    /// Data size of the new cache pool (binary units: 512M, 200G, 1T; plain number = bytes)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub cache_size: u64,
    /// Metadata size of the new cache pool (lvmcache(7): about 1/1000 of the cache size, at least 8M)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub meta_size: u64,
    /// Size of the new LV that gets the Nix btrfs (`nix-ssd setup`)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub nix_size: u64,
    /// The LV to keep cached [default: the only cached LV of the VG; needed when it is no longer cached]
    #[arg(long, value_name = "NAME")]
    pub lv: Option<String>,
    /// Name of the new cache pool [default: the current pool's name, else "cpool"]
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
    /// Name of the new LV for Nix
    #[arg(long, value_name = "NAME", default_value = "nix")]
    pub nix_name: String,
    /// Run the steps (without it the plan is only printed); stops at the first failure and says what to do next
    #[arg(long)]
    pub execute: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed: {why}")]
    Command { cmd: String, why: String },
    #[error("{what} output, line {line}: cannot read {text:?}")]
    Parse { what: &'static str, line: usize, text: String },
    #[error("{0} is not a volume group here (no PV of it in `pvs`)")]
    NoVg(String),
    #[error("{pv} is not a physical volume of {vg} (`pvs` lists: {listed})")]
    PvNotInVg { pv: String, vg: String, listed: String },
    #[error("no LV {lv} in {vg}")]
    NoLv { vg: String, lv: String },
    #[error("{0} has no cached LV; name the LV to cache with --lv")]
    NoCachedLv(String),
    #[error("{vg} has several cached LVs ({lvs}); choose one with --lv")]
    SeveralCached { vg: String, lvs: String },
    #[error("{vg}/{lv} is a {segtype} LV; lvm-plan handles a cached (dm-cache) or plain linear/striped LV")]
    Unsupported { vg: String, lv: String, segtype: String },
    #[error("{vg}/{name} exists already; {hint}")]
    Exists { vg: String, name: String, hint: String },
    #[error("--meta-size {0} is below lvm2's minimum cache pool metadata size of 2 MiB")]
    MetaTooSmall(String),
    #[error(
        "not enough free space on {pv}: the plan needs {need} extents ({detail}), {avail} are free after uncaching ({free} free now + {freed} of the old cache pool); extent size {extent}"
    )]
    NoSpace { pv: String, need: u64, detail: String, avail: u64, free: u64, freed: u64, extent: String },
    #[error("step {n}/{total} failed: `{cmd}` ({why})\nstate: {state}\nwhat to do next:\n{next}")]
    StepFailed { n: usize, total: usize, cmd: String, why: String, state: String, next: String },
    #[error("the steps ran but the result is not as planned: {0}")]
    Verify(String),
}

// ---------------------------------------------------------------- sizes

/// A size on the command line: digits, optionally with a binary unit `K M G T` (also `KiB`,
/// lowercase, or `B`); no unit = bytes. As lvm2 reads `-L`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: expected a number with an optional unit, e.g. 512M"))?;
    let shift = match unit.to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M, G, T)")),
    };
    let b = n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?}: too large"))?;
    if b == 0 {
        return Err(format!("{s:?}: must not be zero"));
    }
    Ok(b)
}

/// A byte count as an lvm2 size argument: the largest exact binary unit (`256m`, `1g`, `4096b`).
pub fn lvm_size(b: u64) -> String {
    for (shift, u) in [(40, 't'), (30, 'g'), (20, 'm'), (10, 'k')] {
        if b >= 1 << shift && b.is_multiple_of(1 << shift) {
            return format!("{}{u}", b >> shift);
        }
    }
    format!("{b}b")
}

fn human(b: u64) -> String {
    if b >= 1 << 30 { format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64) } else { format!("{} MiB", b >> 20) }
}

// ---------------------------------------------------------------- live state

/// One row of `pvs` (the fields of [`PVS_FIELDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pv {
    pub name: String,
    pub vg: String,
    pub pe_count: u64,
    pub pe_alloc: u64,
    pub extent_size: u64,
}

impl Pv {
    pub fn free_extents(&self) -> u64 {
        self.pe_count.saturating_sub(self.pe_alloc)
    }
}

/// A range of extents a segment uses: `/dev/vdc:4-259` (a PV) or `data_corig:0-255` (an LV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub dev: String,
    pub start: u64,
    pub end: u64,
}

/// One segment row of `lvs -a --segments` (the fields of [`LVS_FIELDS`]). Hidden LVs keep
/// their brackets (`[cpool_cpool]`), as lvm2 prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    pub vg: String,
    pub lv: String,
    pub attr: String,
    pub segtype: String,
    pub lv_size: u64,
    pub pool_lv: String,
    pub cache_mode: String,
    pub active: bool,
    pub ranges: Vec<Range>,
    pub seg_size_pe: u64,
    pub data_lv: String,
    pub metadata_lv: String,
}

/// What the plan is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub pvs: Vec<Pv>,
    pub segs: Vec<Seg>,
}

pub const PVS_FIELDS: &str = "pv_name,vg_name,pv_size,pv_free,pv_pe_count,pv_pe_alloc_count,vg_extent_size";
pub const LVS_FIELDS: &str = "vg_name,lv_name,lv_attr,segtype,lv_size,pool_lv,cache_mode,lv_active,seg_pe_ranges,seg_size_pe,devices,data_lv,metadata_lv,origin";
const REPORT_OPTS: [&str; 5] = ["--nameprefixes", "--noheadings", "--units", "b", "--nosuffix"];

/// `LVM2_KEY='value'`
fn field(i: &str) -> IResult<&str, (&str, &str)> {
    separated_pair(
        preceded(tag("LVM2_"), take_while1(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')),
        char('='),
        delimited(char('\''), take_till(|c| c == '\''), char('\'')),
    )(i)
}

/// One report row: fields separated by blanks.
fn row(i: &str) -> IResult<&str, Vec<(&str, &str)>> {
    all_consuming(delimited(space0, separated_list1(space1, field), space0))(i)
}

/// `DEV:START-END`
fn range(i: &str) -> IResult<&str, Range> {
    let num = |i| map_res(digit1, str::parse::<u64>)(i);
    let (i, (dev, _, start, _, end)) = tuple((take_till(|c| c == ':'), char(':'), num, char('-'), num))(i)?;
    Ok((i, Range { dev: dev.to_string(), start, end }))
}

fn ranges(i: &str) -> IResult<&str, Vec<Range>> {
    all_consuming(terminated(separated_list1(space1, range), space0))(i)
}

/// Every row of a `--nameprefixes` report as (field, value) pairs, field names lowercased
/// without `LVM2_`; lines starting with `#` and blank lines are skipped (fixtures).
pub fn parse_rows(what: &'static str, text: &str) -> Result<Vec<Vec<(String, String)>>, LvmError> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (_, fields) = row(line).map_err(|_| LvmError::Parse {
            what,
            line: n + 1,
            text: line.trim().chars().take(100).collect(),
        })?;
        rows.push(fields.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect());
    }
    Ok(rows)
}

struct Row<'a> {
    what: &'static str,
    line: usize,
    fields: &'a [(String, String)],
}

impl Row<'_> {
    fn err(&self, why: String) -> LvmError {
        LvmError::Parse { what: self.what, line: self.line, text: why }
    }
    fn s(&self, k: &str) -> Result<String, LvmError> {
        self.fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(format!("no field {k}")))
    }
    fn n(&self, k: &str) -> Result<u64, LvmError> {
        let v = self.s(k)?;
        // lvm2 prints sizes in bytes with --units b --nosuffix; some versions add ".00"
        v.trim_end_matches(".00").parse().map_err(|_| self.err(format!("{k}={v:?} is not a number")))
    }
}

/// Parses `pvs` output read with [`PVS_FIELDS`].
pub fn parse_pvs(text: &str) -> Result<Vec<Pv>, LvmError> {
    let rows = parse_rows("pvs", text)?;
    rows.iter()
        .enumerate()
        .map(|(i, fields)| {
            let r = Row { what: "pvs", line: i + 1, fields };
            Ok(Pv {
                name: r.s("pv_name")?,
                vg: r.s("vg_name")?,
                pe_count: r.n("pv_pe_count")?,
                pe_alloc: r.n("pv_pe_alloc_count")?,
                extent_size: r.n("vg_extent_size")?,
            })
        })
        .collect()
}

/// Parses `lvs -a --segments` output read with [`LVS_FIELDS`].
pub fn parse_lvs(text: &str) -> Result<Vec<Seg>, LvmError> {
    let rows = parse_rows("lvs", text)?;
    rows.iter()
        .enumerate()
        .map(|(i, fields)| {
            let r = Row { what: "lvs", line: i + 1, fields };
            let pe = r.s("seg_pe_ranges")?;
            let ranges = if pe.trim().is_empty() {
                Vec::new()
            } else {
                ranges(pe.trim()).map_err(|_| r.err(format!("seg_pe_ranges {pe:?}")))?.1
            };
            Ok(Seg {
                vg: r.s("vg_name")?,
                lv: r.s("lv_name")?,
                attr: r.s("lv_attr")?,
                segtype: r.s("segtype")?,
                lv_size: r.n("lv_size")?,
                pool_lv: r.s("pool_lv")?,
                cache_mode: r.s("cache_mode")?,
                active: r.s("lv_active")? == "active",
                ranges,
                seg_size_pe: r.n("seg_size_pe")?,
                data_lv: r.s("data_lv")?,
                metadata_lv: r.s("metadata_lv")?,
            })
        })
        .collect()
}

/// A captured `# pvs` / `# lvs` pair (tests/lvm/fixtures/*.txt, cut from capture.sh's output).
pub fn parse_capture(text: &str) -> Result<State, LvmError> {
    let (pvs, lvs) = text.split_once("# lvs").unwrap_or((text, ""));
    Ok(State { pvs: parse_pvs(pvs)?, segs: parse_lvs(lvs)? })
}

// ---------------------------------------------------------------- the plan

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

fn bare(name: &str) -> &str {
    name.trim_start_matches('[').trim_end_matches(']')
}

/// lvm2 2.03 renames an attached pool `P` to `[P_cpool]`: the name it was created with.
fn pool_base(name: &str) -> &str {
    let b = bare(name);
    b.strip_suffix("_cpool").filter(|s| !s.is_empty()).unwrap_or(b)
}

/// Extents of LV `lv` (as lvs prints it, brackets or not) on PV `pv`.
fn extents_on(state: &State, lv: &str, pv: &str) -> u64 {
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
    let vg_pvs: Vec<&Pv> = state.pvs.iter().filter(|p| &p.vg == vg).collect();
    if vg_pvs.is_empty() {
        return Err(LvmError::NoVg(vg.clone()));
    }
    let Some(pv) = vg_pvs.iter().find(|p| p.name == req.pv) else {
        return Err(LvmError::PvNotInVg {
            pv: req.pv.clone(),
            vg: vg.clone(),
            listed: state.pvs.iter().map(|p| format!("{} ({})", p.name, p.vg)).collect::<Vec<_>>().join(", "),
        });
    };
    let segs: Vec<&Seg> = state.segs.iter().filter(|s| &s.vg == vg).collect();
    let find = |name: &str| segs.iter().find(|s| bare(&s.lv) == bare(name)).copied();

    // the LV to keep cached
    let lv_seg = match &req.lv {
        Some(l) => find(l)
            .filter(|s| !s.lv.starts_with('['))
            .ok_or_else(|| LvmError::NoLv { vg: vg.clone(), lv: l.clone() })?,
        None => {
            let cached: Vec<&Seg> =
                segs.iter().filter(|s| s.segtype == "cache" && !s.lv.starts_with('[')).copied().collect();
            match cached.as_slice() {
                [one] => *one,
                [] => return Err(LvmError::NoCachedLv(vg.clone())),
                many => {
                    return Err(LvmError::SeveralCached {
                        vg: vg.clone(),
                        lvs: many.iter().map(|s| s.lv.as_str()).collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
    };
    let lv = lv_seg.lv.clone();
    let cached = lv_seg.segtype == "cache";
    if !cached && !matches!(lv_seg.segtype.as_str(), "linear" | "striped") {
        return Err(LvmError::Unsupported { vg: vg.clone(), lv, segtype: lv_seg.segtype.clone() });
    }
    let mut notes = Vec::new();
    let mut steps = Vec::new();
    let ext = pv.extent_size;
    let exts = |b: u64| b.div_ceil(ext);

    // the old pool: what uncaching frees on the SSD PV
    let mut freed = 0;
    let mut old_pool = None;
    if cached {
        let pool_name = lv_seg.pool_lv.clone();
        let mode = if lv_seg.cache_mode.is_empty() { "unknown".to_string() } else { lv_seg.cache_mode.clone() };
        let pool_seg = find(&pool_name);
        let mut parts = vec![pool_name.clone()];
        if let Some(p) = pool_seg {
            parts.extend([p.data_lv.clone(), p.metadata_lv.clone()].into_iter().filter(|s| !s.is_empty()));
        }
        freed = parts.iter().map(|p| extents_on(state, p, &pv.name)).sum();
        notes.push(format!(
            "{vg}/{lv} is cached by {pool_name} in {mode} mode ({} extents of it on {}); after the plan: writeback",
            freed, pv.name
        ));
        if mode == "writeback" {
            notes.push(
                "uncaching writes the dirty blocks back to the origin first (lvm2 does it; may take a while)".into(),
            );
        }
        old_pool = Some((pool_name, mode));
        steps.push(Step::Uncache { vg: vg.clone(), lv: lv.clone() });
    } else {
        notes.push(format!("{vg}/{lv} is not cached ({}); after the plan: cached in writeback", lv_seg.segtype));
    }
    notes.push(format!(
        "{vg}/{lv} is {} ({}): lvm2 {MEASURED_LVM} uncaches and attaches online (measured), nothing to deactivate or unmount",
        if lv_seg.active { "active" } else { "inactive" },
        human(lv_seg.lv_size)
    ));

    // the new pool
    let pool = req
        .pool
        .clone()
        .unwrap_or_else(|| old_pool.as_ref().map(|(p, _)| pool_base(p).to_string()).unwrap_or("cpool".into()));
    let old_parts = |name: &str| {
        old_pool.as_ref().is_some_and(|(p, _)| {
            let p = bare(p);
            let n = bare(name);
            n == p || n == format!("{p}_cdata") || n == format!("{p}_cmeta")
        })
    };
    let mut create_pool = true;
    if let Some(existing) = find(&pool).filter(|s| !old_parts(&s.lv)) {
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
    if find(&req.nix_name).is_some() {
        return Err(LvmError::Exists {
            vg: vg.clone(),
            name: req.nix_name.clone(),
            hint: "remove it (lvremove) or choose another name with --nix-name".into(),
        });
    }

    // space on the SSD PV. The VG's hidden pool metadata spare ([lvol0_pmspare]) goes with its
    // last pool: uncaching the only pool frees it too, and the new pool makes it again with the
    // new metadata size on the PV it is given (measured); with other pools left it stays and
    // grows to the new metadata size if smaller.
    let spare_lv = segs.iter().find(|s| bare(&s.lv).ends_with("_pmspare")).map(|s| s.lv.clone());
    let other_pools = segs.iter().any(|s| {
        matches!(s.segtype.as_str(), "cache-pool" | "thin-pool")
            && old_pool.as_ref().is_none_or(|(p, _)| bare(p) != bare(&s.lv))
    });
    let mut spare: u64 =
        spare_lv.as_ref().map(|l| segs.iter().filter(|s| &s.lv == l).map(|s| s.seg_size_pe).sum()).unwrap_or(0);
    if let Some(l) = spare_lv.as_ref().filter(|_| cached && !other_pools) {
        freed += extents_on(state, l, &pv.name);
        spare = 0;
    }
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

// ---------------------------------------------------------------- running it

fn output(cmd: &[&str]) -> Result<String, LvmError> {
    let shown = cmd.join(" ");
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| LvmError::Spawn { cmd: shown.clone(), source })?;
    if !out.status.success() {
        return Err(LvmError::Command { cmd: shown, why: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The live `pvs` (all PVs) and `lvs -a --segments` of `vg`.
pub fn read_state(vg: &str) -> Result<State, LvmError> {
    let mut pvs = vec!["pvs"];
    pvs.extend(REPORT_OPTS);
    pvs.extend(["-o", PVS_FIELDS]);
    let mut lvs = vec!["lvs", "-a", "--segments"];
    lvs.extend(REPORT_OPTS);
    lvs.extend(["-o", LVS_FIELDS, vg]);
    Ok(State { pvs: parse_pvs(&output(&pvs)?)?, segs: parse_lvs(&output(&lvs)?)? })
}

/// `lvm version`'s "LVM version:" (e.g. `2.03.31(2) (2025-02-27)`).
pub fn lvm_version() -> Option<String> {
    let out = output(&["lvm", "version"]).ok()?;
    out.lines().find_map(|l| l.trim().strip_prefix("LVM version:")).map(|v| v.trim().to_string())
}

/// True when `version` (`2.03.31(2) ...`) is older than 2.03, which was not measured.
pub fn older_than_measured(version: &str) -> bool {
    let mut it = version.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse::<u32>());
    match (it.next(), it.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) < (2, 3),
        _ => false,
    }
}

fn run_step(step: &Step) -> Result<(), String> {
    let argv = step.argv();
    let mut cmd = match step {
        Step::Setup { .. } => Command::new(std::env::current_exe().map_err(|e| format!("this program: {e}"))?),
        _ => Command::new(&argv[0]),
    };
    cmd.args(&argv[1..]).env("LC_ALL", "C").stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr()));
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{s}; its messages are above")),
        Err(e) => Err(format!("cannot run it: {e}")),
    }
}

/// Reads the live state, prints the plan (stdout: `#` findings, then one command a line) and,
/// with `execute`, runs it (each step shown on stderr first).
pub fn lvm_plan(req: &Request, execute: bool) -> Result<(), LvmError> {
    let state = read_state(&req.vg)?;
    // pvs names a PV by the path it was found under: match links (/dev/disk/by-*) by target
    let mut req = req.clone();
    let canon = |p: &str| std::fs::canonicalize(p).ok();
    if !state.pvs.iter().any(|p| p.name == req.pv)
        && let Some(p) = state.pvs.iter().find(|p| canon(&p.name).is_some_and(|c| Some(c) == canon(&req.pv)))
    {
        req.pv = p.name.clone();
    }
    let req = &req;
    let plan = plan(req, &state)?;
    match lvm_version() {
        Some(v) if older_than_measured(&v) => println!(
            "# warning: lvm2 {v} is older than the measured {MEASURED_LVM}; if a step refuses an active LV, unmount it and `lvchange -an` it first"
        ),
        Some(v) => println!("# lvm2 {v}"),
        None => {}
    }
    for n in &plan.notes {
        println!("# {n}");
    }
    for s in &plan.steps {
        println!("{s}");
    }
    if !execute {
        println!("# dry run: nothing was changed; run again with --execute to do these steps");
        return Ok(());
    }
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        eprintln!("nix-ssd lvm-plan: [{}/{total}] {step}", i + 1);
        if let Err(why) = run_step(step) {
            if let Ok(t) = output(&["lvs", "-a", "-o", "lv_name,segtype,lv_size,pool_lv,cache_mode,devices", &req.vg]) {
                eprintln!("nix-ssd lvm-plan: {} now:\n{}", req.vg, t.trim_end());
            }
            let (state, next) = after_failure(&plan, req, i);
            return Err(LvmError::StepFailed {
                n: i + 1,
                total,
                cmd: step.to_string(),
                why,
                state,
                next: next.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
            });
        }
    }
    let done = verify(&plan, req, &read_state(&req.vg)?)?;
    eprintln!("nix-ssd lvm-plan: done: {done}");
    Ok(())
}

/// `nix-ssd lvm-plan`.
pub fn cli(a: &Args) -> ExitCode {
    let req = Request {
        vg: a.vg.clone(),
        pv: a.pv.clone(),
        lv: a.lv.clone(),
        pool: a.pool.clone(),
        nix_name: a.nix_name.clone(),
        cache_size: a.cache_size,
        meta_size: a.meta_size,
        nix_size: a.nix_size,
    };
    match lvm_plan(&req, a.execute) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nix-ssd lvm-plan: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> State {
        let text = match name {
            "seed-writethrough" => include_str!("../tests/lvm/fixtures/seed-writethrough.txt"),
            "seed-pool-unattached" => include_str!("../tests/lvm/fixtures/seed-pool-unattached.txt"),
            "uncached" => include_str!("../tests/lvm/fixtures/uncached.txt"),
            "pool-created" => include_str!("../tests/lvm/fixtures/pool-created.txt"),
            "cached-writeback" => include_str!("../tests/lvm/fixtures/cached-writeback.txt"),
            "done" => include_str!("../tests/lvm/fixtures/done.txt"),
            _ => unreachable!(),
        };
        parse_capture(text).unwrap()
    }

    fn req() -> Request {
        Request {
            vg: "vg0".into(),
            pv: "/dev/vdc".into(),
            lv: None,
            pool: None,
            nix_name: "nix".into(),
            cache_size: 256 << 20,
            meta_size: 16 << 20,
            nix_size: 1 << 30,
        }
    }

    fn shown(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("16m"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(lvm_size(256 << 20), "256m");
        assert_eq!(lvm_size(1 << 30), "1g");
        assert_eq!(lvm_size(1536 << 20), "1536m");
        assert_eq!(lvm_size(1000), "1000b");
    }

    #[test]
    fn parses_captured_reports() {
        let s = fixture("seed-writethrough");
        assert_eq!(s.pvs.len(), 2);
        assert_eq!(
            s.pvs[1],
            Pv { name: "/dev/vdc".into(), vg: "vg0".into(), pe_count: 383, pe_alloc: 260, extent_size: 4 << 20 }
        );
        let data = s.segs.iter().find(|g| g.lv == "data").unwrap();
        assert_eq!(
            (data.segtype.as_str(), data.cache_mode.as_str(), data.pool_lv.as_str()),
            ("cache", "writethrough", "[cpool_cpool]")
        );
        assert!(data.active);
        assert_eq!(data.ranges, vec![Range { dev: "data_corig".into(), start: 0, end: 255 }]);
        let cdata = s.segs.iter().find(|g| g.lv == "[cpool_cpool_cdata]").unwrap();
        assert_eq!(cdata.ranges, vec![Range { dev: "/dev/vdc".into(), start: 4, end: 259 }]);
        assert_eq!(extents_on(&s, "[cpool_cpool]", "/dev/vdc"), 0);
        assert_eq!(extents_on(&s, "cpool_cpool_cdata", "/dev/vdc"), 256);
        for f in ["seed-pool-unattached", "uncached", "pool-created", "cached-writeback", "done"] {
            assert!(fixture(f).segs.iter().any(|g| g.lv == "data"), "{f}");
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse_lvs("  LVM2_VG_NAME='vg0' garbage\n").unwrap_err();
        assert!(matches!(e, LvmError::Parse { what: "lvs", line: 1, .. }), "{e}");
        let e = parse_pvs("  LVM2_PV_NAME='/dev/vdb'\n").unwrap_err();
        assert!(e.to_string().contains("no field vg_name"), "{e}");
        assert_eq!(parse_pvs("\n# comment\n").unwrap(), vec![]);
    }

    #[test]
    fn seed_to_stage_two() {
        let p = plan(&req(), &fixture("seed-writethrough")).unwrap();
        assert_eq!(
            shown(&p),
            [
                "lvconvert -y --uncache vg0/data",
                "lvcreate -y --type cache-pool -L 256m --poolmetadatasize 16m -n cpool vg0 /dev/vdc",
                "lvconvert -y --type cache --cachepool vg0/cpool --cachemode writeback vg0/data",
                "lvcreate -y -L 1g -n nix vg0 /dev/vdc",
                "nix-ssd setup /dev/vg0/nix",
            ]
        );
        assert_eq!(p.old_pool, Some(("[cpool_cpool]".into(), "writethrough".into())));
        let notes = p.notes.join("\n");
        assert!(
            notes.contains("vg0/data is cached by [cpool_cpool] in writethrough mode (258 extents of it on /dev/vdc)"),
            "{notes}"
        );
        // 123 free + 256 cdata + 2 cmeta + 2 pmspare (the last pool takes it along)
        assert!(notes.contains("123 free now, 383 after uncaching; the plan uses 328 (cache 64 + metadata 4 + metadata spare growth 4 + nix 256), 55 stay free"), "{notes}");
        assert!(notes.contains("is active"), "{notes}");
        assert_eq!(p.steps[4].argv(), ["nix-ssd", "setup", "/dev/vg0/nix"]);
    }

    #[test]
    fn measured_free_space_matches_lvm() {
        // the capture's `lvcreate -L 1G` after the plan said "256 extents needed, but only 55 available"
        let mut r = req();
        r.nix_size = (1 << 30) + (55 << 22);
        assert!(plan(&r, &fixture("seed-writethrough")).is_ok());
        r.nix_size += 1;
        let e = plan(&r, &fixture("seed-writethrough")).unwrap_err();
        assert!(matches!(e, LvmError::NoSpace { need: 384, avail: 383, free: 123, freed: 260, .. }), "{e}");
    }

    #[test]
    fn too_big_says_why() {
        let mut r = req();
        r.nix_size = 2 << 30;
        let e = plan(&r, &fixture("seed-writethrough")).unwrap_err().to_string();
        assert_eq!(
            e,
            "not enough free space on /dev/vdc: the plan needs 584 extents (cache 64 + metadata 4 + metadata spare growth 4 + nix 512), 383 are free after uncaching (123 free now + 260 of the old cache pool); extent size 4 MiB"
        );
    }

    #[test]
    fn uncached_lv_needs_lv_and_skips_uncache() {
        let s = fixture("uncached");
        assert!(matches!(plan(&req(), &s), Err(LvmError::NoCachedLv(_))));
        let r = Request { lv: Some("data".into()), ..req() };
        let p = plan(&r, &s).unwrap();
        assert_eq!(p.steps.len(), 4);
        assert!(matches!(p.steps[0], Step::CreatePool { .. }));
        assert_eq!(p.pool, "cpool");
        assert!(p.notes.iter().any(|n| n.contains("383 free now; the plan uses 328")), "{:?}", p.notes);
    }

    #[test]
    fn unattached_pool_is_reused() {
        let r = Request { lv: Some("data".into()), ..req() };
        let p = plan(&r, &fixture("pool-created")).unwrap();
        assert_eq!(
            shown(&p),
            [
                "lvconvert -y --type cache --cachepool vg0/cpool --cachemode writeback vg0/data",
                "lvcreate -y -L 1g -n nix vg0 /dev/vdc",
                "nix-ssd setup /dev/vg0/nix",
            ]
        );
    }

    #[test]
    fn refusals() {
        let s = fixture("seed-writethrough");
        assert!(matches!(plan(&Request { vg: "nope".into(), ..req() }, &s), Err(LvmError::NoVg(_))));
        let e = plan(&Request { pv: "/dev/vdz".into(), ..req() }, &s).unwrap_err().to_string();
        assert!(
            e.contains("/dev/vdz is not a physical volume of vg0 (`pvs` lists: /dev/vdb (vg0), /dev/vdc (vg0))"),
            "{e}"
        );
        assert!(matches!(plan(&Request { lv: Some("nope".into()), ..req() }, &s), Err(LvmError::NoLv { .. })));
        // hidden LVs are not LVs to cache
        assert!(matches!(plan(&Request { lv: Some("[data_corig]".into()), ..req() }, &s), Err(LvmError::NoLv { .. })));
        assert!(matches!(plan(&Request { meta_size: 1 << 20, ..req() }, &s), Err(LvmError::MetaTooSmall(_))));
        let e = plan(&Request { nix_name: "data".into(), ..req() }, &s).unwrap_err().to_string();
        assert!(e.contains("vg0/data exists already; remove it"), "{e}");
        // after the plan: the Nix LV is there
        let e = plan(&req(), &fixture("done")).unwrap_err().to_string();
        assert!(e.contains("vg0/nix exists already"), "{e}");
        // a plain LV and an unattached pool of that name: reused (the old 1 GiB pool leaves 123 extents)
        let r = Request { lv: Some("data".into()), pool: Some("cpool".into()), nix_size: 123 << 22, ..req() };
        assert_eq!(plan(&r, &fixture("seed-pool-unattached")).unwrap().steps.len(), 3);
        let r = Request { nix_size: 124 << 22, ..r };
        assert!(matches!(plan(&r, &fixture("seed-pool-unattached")), Err(LvmError::NoSpace { need: 124, .. })));
        let mut s2 = fixture("seed-writethrough");
        s2.segs.push(Seg { lv: "other".into(), segtype: "linear".into(), ranges: vec![], ..s2.segs[0].clone() });
        assert!(matches!(plan(&Request { pool: Some("other".into()), ..req() }, &s2), Err(LvmError::Exists { .. })));
        // the old pool's own name is free after uncaching
        assert!(plan(&Request { pool: Some("cpool_cpool".into()), ..req() }, &s).is_ok());
        // a thin LV is not handled
        let mut s3 = fixture("uncached");
        s3.segs[0].segtype = "thin".into();
        assert!(matches!(plan(&Request { lv: Some("data".into()), ..req() }, &s3), Err(LvmError::Unsupported { .. })));
    }

    #[test]
    fn several_cached_lvs_need_lv() {
        let mut s = fixture("seed-writethrough");
        let data = s.segs.iter().find(|g| g.lv == "data").unwrap().clone();
        s.segs.push(Seg { lv: "home".into(), ..data });
        let e = plan(&req(), &s).unwrap_err().to_string();
        assert_eq!(e, "vg0 has several cached LVs (data, home); choose one with --lv");
        assert!(plan(&Request { lv: Some("data".into()), ..req() }, &s).is_ok());
    }

    #[test]
    fn writeback_is_flushed_note_and_spare_kept_with_other_pools() {
        let s = fixture("cached-writeback");
        let p = plan(&req(), &s).unwrap();
        assert!(p.notes.iter().any(|n| n.contains("dirty blocks")), "{:?}", p.notes);
        // another pool in the VG keeps the 4-extent spare: nothing to grow for 16M metadata
        let mut s2 = s.clone();
        s2.segs.push(Seg { lv: "tpool".into(), segtype: "thin-pool".into(), ranges: vec![], ..s.segs[0].clone() });
        let p2 = plan(&req(), &s2).unwrap();
        assert!(p2.notes.iter().any(|n| n.contains("(cache 64 + metadata 4 + nix 256)")), "{:?}", p2.notes);
    }

    #[test]
    fn failure_help() {
        let r = req();
        let p = plan(&r, &fixture("seed-writethrough")).unwrap();
        let (state, next) = after_failure(&p, &r, 0);
        assert!(state.contains("still cached by [cpool_cpool] (writethrough)"), "{state}");
        assert_eq!(next.len(), 1);
        let (state, next) = after_failure(&p, &r, 1);
        assert!(state.contains("vg0/data is NOT cached"), "{state}");
        assert_eq!(next[0], p.steps[1].to_string());
        assert_eq!(next.len(), 5);
        assert!(next[4].contains("nix-ssd lvm-plan --vg vg0 --pv /dev/vdc --lv data --pool cpool --nix-name nix --cache-size 256M --meta-size 16M --nix-size 1G --execute"), "{}", next[4]);
        let (state, next) = after_failure(&p, &r, 2);
        assert!(state.contains("vg0/cpool exists, unattached"), "{state}");
        assert_eq!(next[0], format!("re-attach with: {}", p.steps[2]));
        let (_, next) = after_failure(&p, &r, 3);
        assert_eq!(next, ["lvcreate -y -L 1g -n nix vg0 /dev/vdc", "nix-ssd setup /dev/vg0/nix"]);
        let (_, next) = after_failure(&p, &r, 4);
        assert!(next[0].starts_with("nix-ssd setup --force /dev/vg0/nix"));
    }

    #[test]
    fn verify_after() {
        let r = req();
        let p = plan(&r, &fixture("seed-writethrough")).unwrap();
        let ok = verify(&p, &r, &fixture("done")).unwrap();
        assert!(ok.starts_with("vg0/data cached by [cpool_cpool] in writeback (64 extents on /dev/vdc)"), "{ok}");
        assert!(verify(&p, &r, &fixture("seed-writethrough")).is_err());
        assert!(verify(&p, &r, &fixture("cached-writeback")).unwrap_err().to_string().contains("vg0/nix is not on"));
    }

    #[test]
    fn versions() {
        assert!(!older_than_measured("2.03.31(2) (2025-02-27)"));
        assert!(older_than_measured("2.02.183(2) (2018-12-07)"));
        assert!(!older_than_measured("garbage"));
    }
}
