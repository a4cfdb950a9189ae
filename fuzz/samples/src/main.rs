//! render-samples OUT-DIR INPUT...: for each pipeline fuzz input that produces units, writes
//! them into OUT-DIR/NNN/ (with the generator's own writer) for `systemd-analyze verify`.
//! Prints how many inputs produced output.
#[path = "../../pipeline_input.rs"]
mod pipeline_input;

use nix_ssd_generator::generator::{plan, render, write};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, inputs)) = args.split_first() else {
        eprintln!("usage: render-samples OUT-DIR INPUT...");
        std::process::exit(2);
    };
    let max: usize = std::env::var("SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let mut n = 0;
    let mut seen = std::collections::BTreeSet::new();
    for f in inputs {
        if n >= max {
            break;
        }
        let Ok(data) = std::fs::read(f) else { continue };
        let outcome = plan::plan(&pipeline_input::decode(&data));
        let Ok(p) = &outcome.result else { continue };
        let files = render::render(p);
        if !seen.insert(format!("{files:?}")) {
            continue;
        }
        let dir = PathBuf::from(out).join(format!("{n:04}"));
        std::fs::create_dir_all(&dir).expect("create the sample directory");
        write::write_all(&dir, &files).expect("write the sample");
        std::fs::write(dir.join(".input"), f).expect("note the input");
        n += 1;
    }
    println!("{n}");
}
