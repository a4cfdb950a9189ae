//! User lookups (getpwnam_r(3): /etc/passwd and whatever NSS adds).
use std::ffi::{CStr, CString};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// The user `name`, if there is one.
pub fn lookup(name: &str) -> Option<User> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: zeroed passwd is a valid out-parameter; getpwnam_r fills it with pointers into buf.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the lengths given; buf outlives every use of pw.
    let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: pw_dir points into buf, NUL-terminated, as getpwnam_r guarantees on success.
    let home = unsafe { CStr::from_ptr(pw.pw_dir) }.to_string_lossy().into_owned();
    Some(User { uid: pw.pw_uid, gid: pw.pw_gid, home: PathBuf::from(home) })
}

/// Is this process privileged (effective uid 0)?
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_uid_0() {
        let r = super::lookup("root").expect("root exists");
        assert_eq!((r.uid, r.gid), (0, 0));
        assert!(super::lookup("no-such-user-nix-ssd").is_none());
        assert!(super::lookup("bad\0name").is_none());
    }
}
