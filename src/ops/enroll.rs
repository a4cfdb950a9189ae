//! `nix-ssd enroll DEVICE`: records a btrfs prepared elsewhere (or adopted) as this machine's
//! SSD and binds it (a new enrolment token on the internal disk and on each subvolume), so that
//! `activate` stacks it (`nix-ssd setup` enrols what it makes).
use crate::enrol::{self, EnrolError};
use crate::ops::setup::{self, Layout, SetupError};
use crate::paths::{ENROLLED, SETUP_TOP};
use crate::sys::mount::{self, enter_private_namespace};
use crate::sys::{CmdError, IoError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error("{0} holds {1}, not btrfs: only a btrfs prepared by `nix-ssd setup` can be the Nix SSD")]
    NotBtrfs(String, String),
    #[error("{0}: blkid finds no file system UUID")]
    NoUuid(String),
}

/// Enrols `device`, whose subvolumes are named by `layout`. Its top level is mounted in a
/// private mount namespace of this process (never seen elsewhere, gone with it).
pub fn enroll(device: &str, layout: &Layout) -> Result<Vec<String>, EnrollError> {
    // a missing device is not a device without a file system
    setup::check_exists(device)?;
    let setup::Signature { fs_type, uuid, .. } = setup::probe(device)?;
    match fs_type.as_deref() {
        Some("btrfs") => {}
        other => return Err(EnrollError::NotBtrfs(device.into(), other.unwrap_or("no file system").into())),
    }
    uuid.ok_or_else(|| EnrollError::NoUuid(device.into()))?;
    enter_private_namespace()?;
    let top = PathBuf::from(format!("{SETUP_TOP}.{}", std::process::id()));
    setup::mount_top(device, &top)?;
    let done = enrol::enrol_at(&top, &layout.subvolumes());
    let _ = mount::umount(&top);
    let _ = std::fs::remove_dir(&top);
    let (uuid, changed) = done?;
    Ok(vec![if changed {
        format!(
            "enrolled {device} (btrfs UUID {uuid}) in {ENROLLED} and bound it to this machine: it is used from the next boot"
        )
    } else {
        format!("{device} (btrfs UUID {uuid}) is enrolled and bound already")
    }])
}
