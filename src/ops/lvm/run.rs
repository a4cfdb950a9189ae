//! Reading the live state, printing the plan and running it.
use super::report::{LVS_FIELDS, PVS_FIELDS, REPORT_OPTS, parse_lvs, parse_pvs};
use super::{LvmError, MEASURED_LVM, Plan, Request, State, Step, after_failure, plan, verify};
use crate::ops::Progress;
use crate::sys::{CmdError, cmd};
use std::process::{Command, Stdio};

fn output(argv: &[&str]) -> Result<String, CmdError> {
    cmd::output(Command::new(argv[0]).args(&argv[1..]).env("LC_ALL", "C"))
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
    let mut c = match step {
        Step::Setup { .. } => Command::new(std::env::current_exe().map_err(|e| format!("this program: {e}"))?),
        _ => Command::new(&argv[0]),
    };
    c.args(&argv[1..]).env("LC_ALL", "C").stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr()));
    match cmd::status(&mut c) {
        Ok(()) => Ok(()),
        Err(CmdError::Failed { status, .. }) => Err(format!("{status}; its messages are above")),
        Err(CmdError::Spawn { source, .. }) => Err(format!("cannot run it: {source}")),
    }
}

/// Reads the live state, says the plan (`say`: `#` findings, then one command a line) and,
/// with `execute`, runs it (each step reported to `progress` first).
pub fn lvm_plan(req: &Request, execute: bool, say: Progress, progress: Progress) -> Result<(), LvmError> {
    let state = read_state(&req.vg)?;
    let req = &canonical_pv(req, &state);
    let plan = plan(req, &state)?;
    match lvm_version() {
        Some(v) if older_than_measured(&v) => say(&format!(
            "# warning: lvm2 {v} is older than the measured {MEASURED_LVM}; if a step refuses an active LV, unmount it and `lvchange -an` it first"
        )),
        Some(v) => say(&format!("# lvm2 {v}")),
        None => {}
    }
    for n in &plan.notes {
        say(&format!("# {n}"));
    }
    for s in &plan.steps {
        say(&s.to_string());
    }
    if !execute {
        say("# dry run: nothing was changed; run again with --execute to do these steps");
        return Ok(());
    }
    execute_plan(&plan, req, progress)
}

/// pvs names a PV by the path it was found under: match links (/dev/disk/by-*) by target.
fn canonical_pv(req: &Request, state: &State) -> Request {
    let mut req = req.clone();
    let canon = |p: &str| std::fs::canonicalize(p).ok();
    if !state.pvs.iter().any(|p| p.name == req.pv)
        && let Some(p) = state.pvs.iter().find(|p| canon(&p.name).is_some_and(|c| Some(c) == canon(&req.pv)))
    {
        req.pv = p.name.clone();
    }
    req
}

/// Runs the steps in order; stops at the first failure saying what state the VG is in and
/// how to go on; checks the result.
fn execute_plan(plan: &Plan, req: &Request, progress: Progress) -> Result<(), LvmError> {
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        progress(&format!("[{}/{total}] {step}", i + 1));
        if let Err(why) = run_step(step) {
            if let Ok(t) = output(&["lvs", "-a", "-o", "lv_name,segtype,lv_size,pool_lv,cache_mode,devices", &req.vg]) {
                progress(&format!("{} now:\n{}", req.vg, t.trim_end()));
            }
            let (state, next) = after_failure(plan, req, i);
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
    let done = verify(plan, req, &read_state(&req.vg)?)?;
    progress(&format!("done: {done}"));
    Ok(())
}
