//! The only place that talks to the kernel through libc, and the only `unsafe` code: mounts and
//! mountinfo, mount namespaces, descriptor walks, statvfs/syncfs/fallocate, user lookups; plus
//! the one command runner and the one I/O error type every runtime module uses. Nothing here
//! knows about Nix or the SSD layout (that is [`crate::paths`], [`crate::nix`],
//! [`crate::overlay`]).
pub mod cmd;
pub mod error;
pub mod fs;
pub mod mount;
pub mod users;

pub use cmd::CmdError;
pub use error::{Context, IoError};
