//! The one writer: creates every file exclusively under the output directory, or none.
use super::render::{Content, OutFile};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path} already exists (another generator wrote it?); nothing of ours was written")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}; nothing of ours was left behind")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("refusing output path {0:?}: not a plain relative path")]
    BadPath(String),
}

/// Writes all files. On the first error everything created so far is removed again, so the
/// output directory holds either all of our files or none.
pub fn write_all(dir: &Path, files: &[OutFile]) -> Result<(), WriteError> {
    let mut created: Vec<PathBuf> = Vec::new();
    let result = files.iter().try_for_each(|f| write_one(dir, f, &mut created));
    if result.is_err() {
        for p in created.iter().rev() {
            let _ = fs::remove_file(p).or_else(|_| fs::remove_dir(p));
        }
    }
    result
}

fn write_one(dir: &Path, f: &OutFile, created: &mut Vec<PathBuf>) -> Result<(), WriteError> {
    // Output names come from our own renderer; still, never let one escape the directory.
    let rel = Path::new(&f.path);
    if f.path.is_empty() || rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(WriteError::BadPath(f.path.clone()));
    }
    let path = dir.join(rel);
    let io = |source| WriteError::Io { path: path.clone(), source };
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        let d = dir.join(parent);
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(WriteError::Io { path: d, source: e }),
        }
    }
    let exists = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AlreadyExists;
    match &f.content {
        Content::Symlink(target) => match symlink(target, &path) {
            Ok(()) => created.push(path),
            Err(e) if exists(&e) => return Err(WriteError::Exists { path }),
            Err(e) => return Err(io(e)),
        },
        Content::Text(body) => {
            let mut file = match fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path) {
                Ok(file) => file,
                Err(e) if exists(&e) => return Err(WriteError::Exists { path }),
                Err(e) => return Err(io(e)),
            };
            created.push(path.clone());
            file.write_all(body.as_bytes()).and_then(|()| file.flush()).map_err(io)?;
        }
    }
    Ok(())
}
