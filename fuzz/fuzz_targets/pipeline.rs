//! The whole decision: inputs → plan → rendered files. The output is either nothing or the
//! complete set of files, and every line of it passes fuzz/check.rs (no injected line, no NUL
//! or control character, no continuation, every `%` escaped, absolute normalised paths,
//! unit names ≤ 255 bytes). Also: the mount units' Where= are the plan's targets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nix_ssd_generator::generator::render::{self, Content};
use nix_ssd_generator::generator::{escape, plan};

#[path = "../check.rs"]
mod check;
#[path = "../pipeline_input.rs"]
mod pipeline_input;

fuzz_target!(|data: &[u8]| {
    let inputs = pipeline_input::decode(data);
    let outcome = plan::plan(&inputs);
    // Every planned name must fit a file name, the device drop-in directory included
    // (this target found the 254/255-byte case; fixed in plan::decide).
    if let Ok(p) = &outcome.result {
        assert!(p.device_unit.len() + ".d".len() <= 255, "device drop-in dir too long: {}", p.device_unit);
    }
    let files = outcome.result.as_ref().map(render::render).unwrap_or_default();
    assert!(!outcome.summary().is_empty());
    let tree: Vec<(String, Option<String>)> = files
        .iter()
        .map(|f| match &f.content {
            Content::Text(t) => (f.path.clone(), Some(t.clone())),
            Content::Symlink(_) => (f.path.clone(), None),
        })
        .collect();
    if let Err(e) = check::check_tree(&tree) {
        panic!("{e}\ninputs: {inputs:?}\nfiles: {tree:#?}");
    }
    if let Ok(p) = &outcome.result {
        for m in &p.mounts {
            assert_eq!(escape::unit_name_from_path(&m.target, "mount"), m.unit);
            let f = files.iter().find(|f| f.path == m.unit).expect("a file per mount");
            let Content::Text(t) = &f.content else { panic!("mount unit is a symlink") };
            let where_ = t.lines().find_map(|l| l.strip_prefix("Where=")).map(|w| w.replace("%%", "%"));
            assert_eq!(where_.as_deref(), Some(m.target.as_str()));
        }
    }
});
