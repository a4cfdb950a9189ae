//! The live state: `pvs` and `lvs -a --segments` rows read by a small nom grammar.
use super::LvmError;
use nom::{
    IResult,
    bytes::complete::{tag, take_till, take_while1},
    character::complete::{char, digit1, space0, space1},
    combinator::{all_consuming, map_res},
    multi::separated_list1,
    sequence::{delimited, preceded, separated_pair, terminated, tuple},
};

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
pub const REPORT_OPTS: [&str; 5] = ["--nameprefixes", "--noheadings", "--units", "b", "--nosuffix"];

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
