//! One I/O error type: what was being done, and the OS error.
use std::io;

/// An I/O error with what was being done ("mkdir /run/nix-ssd", "bind /nix/store on …").
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct IoError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

impl IoError {
    pub fn new(what: impl Into<String>, source: io::Error) -> Self {
        IoError { what: what.into(), source }
    }

    /// The last OS error (errno) for `what`.
    pub fn last(what: impl Into<String>) -> Self {
        IoError::new(what, io::Error::last_os_error())
    }
}

/// `.ctx("what")` on an `io::Result`.
pub trait Context<T> {
    fn ctx(self, what: impl Into<String>) -> Result<T, IoError>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl Into<String>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(what, e))
    }
}
