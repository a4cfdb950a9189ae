//! The systemd generator; see `nix_ssd_generator::generator`.
//!
//! Entered as C's `main`, without Rust's runtime start-up (`lang_start`): that polls the three
//! standard descriptors, reads /proc/self/maps for the main thread's stack guard and installs a
//! SIGSEGV handler on an alternate stack — a dozen system calls and a page of text parsing at
//! every boot that a run of under a millisecond does not need. `std::env::args` still works
//! (glibc hands argv to std's init_array hook).
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    nix_ssd_generator::generator::main(&args)
}
