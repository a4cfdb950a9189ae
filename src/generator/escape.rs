//! Escaping for the three places our values end up: udev device node names, unit names, and
//! unit-file values. Each function matches what systemd itself does (checked against the real
//! `systemd-escape` in tests/escape.rs).

/// Unit name of a path, exactly as `systemd-escape --path --suffix=SUFFIX PATH`.
/// The path must already be normalised (see [`normalized_abs_path`]).
pub fn unit_name_from_path(path: &str, suffix: &str) -> String {
    format!("{}.{}", libsystemd::unit::escape_path(path), suffix)
}

/// systemd refuses unit names longer than this (UNIT_NAME_MAX - 1).
pub const UNIT_NAME_MAX: usize = 255;

/// A udev device node name for a tag value, as udev and systemd's `fstab_node_to_udev_node()`
/// build `/dev/disk/by-label/…`: ASCII letters, digits and `#+-.:=@_` stay, valid multi-byte
/// UTF-8 stays, every other byte becomes `\xNN`.
pub fn encode_devnode_name(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) || !c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
    }
    out
}

/// A value inside a unit file: systemd expands `%` specifiers in most settings, so every `%`
/// is doubled (generator.c does the same for What=, Where= and Options=).
pub fn unit_value(v: &str) -> String {
    v.replace('%', "%%")
}

/// One word of an `ExecStart=` command line: `%` doubled, `$` doubled (systemd expands
/// environment variables there), and quoted with C escapes when it holds anything but plain
/// path characters.
pub fn exec_word(w: &str) -> String {
    let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.@:+=,-".contains(&b));
    let v = w.replace('%', "%%").replace('$', "$$");
    if plain {
        return v;
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks that `p` is an absolute, normalised path (no empty, `.` or `..` components, no
/// trailing slash, no control characters), the form systemd requires for `Where=` and that
/// `systemd-escape --path` accepts.
pub fn normalized_abs_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("is not an absolute path");
    }
    if p.chars().any(|c| c.is_control()) {
        return Err("contains a control character");
    }
    if p == "/" {
        return Ok(());
    }
    for comp in p[1..].split('/') {
        match comp {
            "" => return Err("has an empty component (// or a trailing /)"),
            "." | ".." => return Err("has a . or .. component"),
            _ => {}
        }
    }
    if p.len() > 4095 {
        return Err("is longer than PATH_MAX");
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for nested store URLs).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnode_names() {
        assert_eq!(encode_devnode_name("NIX_SSD"), "NIX_SSD");
        assert_eq!(encode_devnode_name("my ssd"), "my\\x20ssd");
        assert_eq!(encode_devnode_name("a/b%c"), "a\\x2fb\\x25c");
        assert_eq!(encode_devnode_name("a\\b"), "a\\x5cb");
        assert_eq!(encode_devnode_name("ü"), "ü");
    }

    #[test]
    fn exec_words() {
        assert_eq!(exec_word("/usr/bin/nix-ssd"), "/usr/bin/nix-ssd");
        assert_eq!(exec_word("/mnt/a b"), "\"/mnt/a b\"");
        assert_eq!(exec_word("/mnt/100%"), "\"/mnt/100%%\"");
        assert_eq!(exec_word("$HOME"), "\"$$HOME\"");
        assert_eq!(exec_word("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(exec_word(""), "\"\"");
    }

    #[test]
    fn paths() {
        assert!(normalized_abs_path("/mnt/nix-ssd").is_ok());
        assert!(normalized_abs_path("mnt").is_err());
        assert!(normalized_abs_path("/mnt/").is_err());
        assert!(normalized_abs_path("/mnt//x").is_err());
        assert!(normalized_abs_path("/mnt/../etc").is_err());
        assert!(normalized_abs_path("/mnt/a\nb").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            url_encode("local://?real=/nix/.lower-store&read-only=true"),
            "local%3A%2F%2F%3Freal%3D%2Fnix%2F.lower-store%26read-only%3Dtrue"
        );
    }
}
