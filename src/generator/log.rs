//! A tiny logger: `<prio>nix-ssd-generator[pid]: message` lines to /dev/kmsg, or to stderr
//! when /dev/kmsg cannot be opened or `SYSTEMD_LOG_TARGET=console`. The level comes from
//! `systemd.log_level=` on the kernel command line or `SYSTEMD_LOG_LEVEL` (which wins).
use std::fs::OpenOptions;
use std::io::Write;

pub const ERR: u8 = 3;
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;
pub const INFO: u8 = 6;
pub const DEBUG: u8 = 7;

pub struct Logger {
    ident: &'static str,
    max: u8,
    kmsg: Option<std::fs::File>,
}

/// A level by number or by name (systemd's `log_level_from_string()`).
pub fn parse_level(s: &str) -> Option<u8> {
    const NAMES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
    match s.parse::<u8>() {
        Ok(n) if n <= 7 => Some(n),
        Ok(_) => None,
        Err(_) => NAMES.iter().position(|n| *n == s).map(|p| p as u8),
    }
}

impl Logger {
    /// `cmdline` is the kernel command line (for `systemd.log_level=`/`systemd.log_target=`).
    pub fn new(ident: &'static str, cmdline: Option<&str>) -> Logger {
        let from_cmdline = |key: &str| cmdline.and_then(|c| super::cmdline::last_value(c, key)).flatten();
        let level = std::env::var("SYSTEMD_LOG_LEVEL")
            .ok()
            .or_else(|| from_cmdline("systemd.log_level"))
            .and_then(|s| parse_level(&s))
            .unwrap_or(INFO);
        let target = std::env::var("SYSTEMD_LOG_TARGET").ok().or_else(|| from_cmdline("systemd.log_target"));
        let kmsg = match target.as_deref() {
            Some("console") => None,
            _ => OpenOptions::new().write(true).open("/dev/kmsg").ok(),
        };
        Logger { ident, max: level, kmsg }
    }

    pub fn log(&mut self, prio: u8, msg: &str) {
        if prio > self.max {
            return;
        }
        // One record per line: a newline inside a value must not forge a second log line.
        let msg: String = msg.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if let Some(k) = self.kmsg.as_mut() {
            let line = format!("<{prio}>{}[{}]: {msg}\n", self.ident, std::process::id());
            if k.write_all(line.as_bytes()).is_ok() {
                return;
            }
        }
        let _ = writeln!(std::io::stderr(), "{}: {msg}", self.ident);
    }
}
