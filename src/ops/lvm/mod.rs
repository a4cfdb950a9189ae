//! `nix-ssd lvm-plan`: moves an LVM cache to writeback and makes room for the Nix SSD, as an
//! ordered list of commands checked against the live `pvs`/`lvs`. An existing VG holds a data LV on the HDD PV, cached (dm-cache, often
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
//!
//! Files: [`size`] (size arguments), [`report`] (reading `pvs`/`lvs`), [`plan`] (the pure
//! plan, what to do after a failure, the check afterwards), [`run`] (reading the live state,
//! printing, `--execute`).
pub mod plan;
pub mod report;
pub mod run;
pub mod size;

pub use plan::{Plan, Request, Step, after_failure, extents_on, plan, verify};
pub use report::{Pv, Range, Seg, State, parse_capture, parse_lvs, parse_pvs, parse_rows};
pub use run::{lvm_plan, lvm_version, older_than_measured, read_state};
pub use size::{lvm_size, parse_size};

/// The lvm2 version the plan was measured with (see the module docs).
pub const MEASURED_LVM: &str = "2.03.31";

#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    #[error(transparent)]
    Cmd(#[from] crate::sys::CmdError),
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

#[cfg(test)]
mod tests;
