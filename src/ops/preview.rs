//! `nix-ssd preview`: the units the generator would write for this machine (or for another
//! command line, root directory or saved `blkid -o export` output), with their file names.
use crate::generator::plan::{self, Inputs};
use crate::generator::render::{self, Content};
use crate::generator::sources::{self, Root};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// A root that is not there would silently give the defaults, as if it held no config.
    #[error("--root {0}: not a directory")]
    Root(String),
}

/// The preview's lines: warnings and the decision as `#` comments, then each file.
pub fn preview(cmdline: Option<String>, root: &Path, blkid_export: Option<&Path>) -> Result<Vec<String>, PreviewError> {
    if !root.is_dir() {
        return Err(PreviewError::Root(root.display().to_string()));
    }
    let root = Root(PathBuf::from(root));
    let mut notes = Vec::new();
    let mut devices = sources::devices(&root, &mut notes);
    if let Some(f) = blkid_export {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                let (d, errs) = crate::generator::blkid::parse_export(&t);
                devices.extend(d);
                notes.extend(errs.into_iter().map(|e| format!("{}: {e}; skipped", f.display())));
            }
            Err(e) => notes.push(format!("cannot read {}: {e}", f.display())),
        }
    }
    let inputs = Inputs {
        cmdline: cmdline.map(Ok).unwrap_or_else(sources::cmdline),
        config_files: sources::config_files(&root),
        devices,
        device_notes: notes,
        enrolled: sources::enrolled(&root),
    };
    let outcome = plan::plan(&inputs);
    let mut out: Vec<String> = outcome.warnings.iter().map(|w| format!("# warning: {w}")).collect();
    out.push(format!("# {}", outcome.summary()));
    if let Ok(p) = &outcome.result {
        for f in render::render(p) {
            out.push(match f.content {
                Content::Text(t) => format!("\n==> {} <==\n{t}", f.path),
                Content::Symlink(t) => format!("\n==> {} -> {t}", f.path),
            });
        }
    }
    Ok(out)
}
