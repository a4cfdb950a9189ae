//! `nix-ssd enroll DEVICE`: records a btrfs prepared elsewhere (or adopted) as this machine's
//! SSD, so that `activate` stacks it (`nix-ssd setup` enrols what it makes).
use crate::enrol::{self, EnrolError};
use crate::paths::ENROLLED;
use crate::sys::{CmdError, cmd};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error("{0} holds {1}, not btrfs: only a btrfs prepared by `nix-ssd setup` can be the Nix SSD")]
    NotBtrfs(String, String),
    #[error("{0}: blkid finds no file system UUID")]
    NoUuid(String),
}

/// The device's file system type and UUID, as `blkid -p` reads them from the device itself.
pub fn probe(device: &str) -> Result<(Option<String>, Option<String>), CmdError> {
    let out = cmd::probe(Command::new("blkid").args(["-p", "-o", "export", device]))?;
    let (devs, _) = crate::generator::blkid::parse_export(&out);
    let d = devs.first();
    Ok((d.and_then(|d| d.tag("TYPE")).map(String::from), d.and_then(|d| d.tag("UUID")).map(String::from)))
}

pub fn enroll(device: &str) -> Result<Vec<String>, EnrollError> {
    let (fs_type, uuid) = probe(device)?;
    match fs_type.as_deref() {
        Some("btrfs") => {}
        other => return Err(EnrollError::NotBtrfs(device.into(), other.unwrap_or("no file system").into())),
    }
    let uuid = uuid.ok_or_else(|| EnrollError::NoUuid(device.into()))?;
    Ok(vec![if enrol::record(&uuid)? {
        format!("enrolled {device} (btrfs UUID {uuid}) in {ENROLLED}: it is used from the next boot")
    } else {
        format!("{device} (btrfs UUID {uuid}) is enrolled already")
    }])
}
