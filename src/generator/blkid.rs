//! What is already known about block devices when the generator runs, in the three forms it
//! can be found in: `blkid -o export` output, libblkid's cache file (`/run/blkid/blkid.tab`),
//! and udev's database (`/run/udev/data/b*`). All parsers are nom; all are total (they never
//! panic and report a line they cannot read).
use nom::{
    IResult,
    branch::alt,
    bytes::complete::{escaped_transform, is_not, tag, take_till, take_while1},
    character::complete::{anychar, char, space0, space1},
    combinator::{all_consuming, map, value},
    multi::many0,
    sequence::{delimited, preceded, separated_pair, terminated, tuple},
};

/// One block device and its tags (`TYPE`, `LABEL`, `UUID`, `PARTUUID`, `PARTLABEL`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// The device node, e.g. `/dev/sda1`, if the source names it.
    pub devname: Option<String>,
    /// udev's links for it, without `/dev/` (`disk/by-label/NIX_SSD`), from the udev database.
    pub links: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl Device {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: cannot read {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub text: String,
}

fn err(line: usize, text: &str) -> ParseError {
    ParseError { line, text: text.chars().take(80).collect() }
}

/// `KEY=value` with blkid's backslash escapes (`LABEL=my\ ssd`).
fn export_line(i: &str) -> IResult<&str, (String, String)> {
    all_consuming(separated_pair(
        map(take_while1(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'), String::from),
        char('='),
        map(
            many0(alt((map(is_not("\\"), String::from), map(preceded(char('\\'), anychar), |c: char| c.to_string())))),
            |parts| parts.concat(),
        ),
    ))(i)
}

/// Parses `blkid -o export` output: blank-line separated records of `KEY=value` lines.
pub fn parse_export(text: &str) -> (Vec<Device>, Vec<ParseError>) {
    let mut devices = Vec::new();
    let mut errors = Vec::new();
    let mut cur = Device::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !cur.tags.is_empty() || cur.devname.is_some() {
                devices.push(std::mem::take(&mut cur));
            }
            continue;
        }
        match export_line(line) {
            Ok((_, (k, v))) if k == "DEVNAME" => cur.devname = Some(v),
            Ok((_, kv)) => cur.tags.push(kv),
            Err(_) => errors.push(err(n + 1, line)),
        }
    }
    if !cur.tags.is_empty() || cur.devname.is_some() {
        devices.push(cur);
    }
    (devices, errors)
}

/// An attribute of the cache file: `NAME="value"` (libblkid writes values unescaped, but a
/// backslash-escaped quote is accepted).
fn cache_attr(i: &str) -> IResult<&str, (String, String)> {
    preceded(
        space1,
        separated_pair(
            map(take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_'), String::from),
            char('='),
            delimited(
                char('"'),
                alt((
                    escaped_transform(is_not("\\\""), '\\', alt((value("\\", tag("\\")), value("\"", tag("\""))))),
                    map(tag(""), String::from),
                )),
                char('"'),
            ),
        ),
    )(i)
}

fn cache_line(i: &str) -> IResult<&str, Device> {
    all_consuming(map(
        delimited(
            tuple((space0, tag("<device"))),
            tuple((terminated(many0(cache_attr), tuple((space0, char('>')))), take_till(|c| c == '<'))),
            tuple((tag("</device>"), space0)),
        ),
        |(attrs, name): (Vec<(String, String)>, &str)| Device {
            devname: Some(name.to_string()),
            links: Vec::new(),
            tags: attrs,
        },
    ))(i)
}

/// Parses libblkid's cache file, one `<device …>/dev/x</device>` per line.
pub fn parse_cache(text: &str) -> (Vec<Device>, Vec<ParseError>) {
    let mut devices = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match cache_line(line) {
            Ok((_, d)) => devices.push(d),
            Err(_) => errors.push(err(n + 1, line)),
        }
    }
    (devices, errors)
}

fn udev_line(i: &str) -> IResult<&str, (char, &str)> {
    all_consuming(separated_pair(anychar, char(':'), nom::combinator::rest))(i)
}

/// Parses one udev database file (`/run/udev/data/b8:1`): `N:` the node name, `S:` links,
/// `E:ID_FS_*=` properties. Unknown record types are skipped, as udev itself does.
pub fn parse_udev_db(text: &str) -> (Device, Vec<ParseError>) {
    let mut dev = Device::default();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        match udev_line(line) {
            Ok((_, ('N', name))) => dev.devname = Some(format!("/dev/{name}")),
            Ok((_, ('S', link))) => dev.links.push(link.to_string()),
            Ok((_, ('E', prop))) => {
                let Some((k, v)) = prop.split_once('=') else {
                    errors.push(err(n + 1, line));
                    continue;
                };
                let tag = match k {
                    "ID_FS_TYPE" => "TYPE",
                    "ID_FS_LABEL" => "LABEL",
                    "ID_FS_UUID" => "UUID",
                    "ID_PART_ENTRY_UUID" => "PARTUUID",
                    "ID_PART_ENTRY_NAME" => "PARTLABEL",
                    _ => continue,
                };
                dev.tags.push((tag.into(), v.into()));
            }
            Ok(_) => {}
            Err(_) => errors.push(err(n + 1, line)),
        }
    }
    (dev, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export() {
        let (d, e) = parse_export(
            "DEVNAME=/dev/sda1\nLABEL=my\\ ssd\\ \\\"x\\\"\nUUID=1-2\nTYPE=btrfs\n\nDEVNAME=/dev/sdb\nTYPE=ext4\nbroken line\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].tag("LABEL"), Some("my ssd \"x\""));
        assert_eq!(d[0].tag("TYPE"), Some("btrfs"));
        assert_eq!(d[1].devname.as_deref(), Some("/dev/sdb"));
        assert_eq!(e, vec![err(8, "broken line")]);
    }

    #[test]
    fn cache() {
        let (d, e) = parse_cache(
            "<device DEVNO=\"0x0811\" TIME=\"1.2\" LABEL=\"NIX SSD\" UUID=\"u\" TYPE=\"btrfs\">/dev/sdb1</device>\n<device>x\n",
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].tag("LABEL"), Some("NIX SSD"));
        assert_eq!(d[0].devname.as_deref(), Some("/dev/sdb1"));
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn udev() {
        let (d, e) = parse_udev_db(
            "S:disk/by-label/NIX_SSD\nN:sdb1\nE:ID_FS_TYPE=btrfs\nE:ID_FS_LABEL=NIX_SSD\nI:123\nG:systemd\nbad\n",
        );
        assert_eq!(d.devname.as_deref(), Some("/dev/sdb1"));
        assert_eq!(d.links, ["disk/by-label/NIX_SSD"]);
        assert_eq!(d.tag("TYPE"), Some("btrfs"));
        assert_eq!(e.len(), 1);
    }
}
