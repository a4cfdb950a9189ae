//! The kernel command line, split and matched by systemd's rules (`proc_cmdline_parse()`):
//! words separated by whitespace, `"…"` and `'…'` quote anywhere inside a word (an unterminated
//! quote runs to the end), backslashes are kept as they are, `-` and `_` are equal in keys, and
//! the last assignment wins.
use nom::{
    IResult,
    branch::alt,
    bytes::complete::{is_not, take_till},
    character::complete::{char, multispace0},
    combinator::opt,
    multi::{fold_many1, many0},
    sequence::{delimited, terminated},
};

fn quoted(q: char) -> impl FnMut(&str) -> IResult<&str, &str> {
    move |i| delimited(char(q), take_till(move |c| c == q), opt(char(q)))(i)
}

fn word(i: &str) -> IResult<&str, String> {
    fold_many1(alt((quoted('"'), quoted('\''), is_not(" \t\n\r\"'"))), String::new, |mut acc, part| {
        acc.push_str(part);
        acc
    })(i)
}

/// Splits a command line into words (quotes removed).
pub fn words(line: &str) -> Vec<String> {
    match delimited(multispace0, many0(terminated(word, multispace0)), multispace0)(line) {
        Ok((_, w)) => w,
        Err(_) => Vec::new(), // unreachable: many0 of words separated by whitespace always matches
    }
}

/// Compares command-line keys, treating `-` and `_` as equal (`proc_cmdline_key_streq()`).
pub fn key_eq(a: &str, b: &str) -> bool {
    let norm = |c: char| if c == '_' { '-' } else { c };
    a.len() == b.len() && a.chars().map(norm).eq(b.chars().map(norm))
}

/// `KEY[=VALUE]` pairs in order of appearance.
pub fn pairs(line: &str) -> Vec<(String, Option<String>)> {
    words(line)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

/// The value of the last `KEY=…` on the line, if any (`None` inside for a bare `KEY`).
pub fn last_value(line: &str, key: &str) -> Option<Option<String>> {
    pairs(line).into_iter().rev().find(|(k, _)| key_eq(k, key)).map(|(_, v)| v)
}

/// systemd's `parse_boolean()`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(words("  a b\tc\n"), ["a", "b", "c"]);
        assert_eq!(words(r#"x="a b" "y=c d" z"#), ["x=a b", "y=c d", "z"]);
        assert_eq!(words(r#"a'b c'd"#), ["ab cd"]);
        assert_eq!(words(r#"x="unterminated rest"#), ["x=unterminated rest"]);
        assert_eq!(words(r"a\ b"), [r"a\", "b"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn keys() {
        assert!(key_eq("nix_ssd.device_timeout", "nix-ssd.device-timeout"));
        assert!(!key_eq("nix-ssd", "nix-ssdx"));
        assert_eq!(last_value("nix-ssd=0 nix_ssd=build", "nix-ssd"), Some(Some("build".into())));
        assert_eq!(last_value("quiet nix-ssd", "nix-ssd"), Some(None));
        assert_eq!(last_value("quiet", "nix-ssd"), None);
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("Off"), Some(false));
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("overlay"), None);
    }
}
