//! systemd time spans (`parse_sec()` in systemd): `10s`, `1min 30s`, `1.5h`, `500ms`, a bare
//! number is seconds, `infinity`.
use nom::{
    IResult,
    branch::alt,
    bytes::complete::tag,
    character::complete::{digit0, digit1, space0},
    combinator::{all_consuming, map, opt, recognize},
    multi::many1,
    sequence::{pair, preceded, terminated, tuple},
};

const USEC_PER_SEC: u64 = 1_000_000;

/// A parsed time span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpan {
    Usec(u64),
    Infinity,
}

// Longest names first, as in systemd's table, so that "ms" is not read as "m" + "s".
const UNITS: &[(&str, u64)] = &[
    ("seconds", USEC_PER_SEC),
    ("second", USEC_PER_SEC),
    ("sec", USEC_PER_SEC),
    ("s", USEC_PER_SEC),
    ("minutes", 60 * USEC_PER_SEC),
    ("minute", 60 * USEC_PER_SEC),
    ("min", 60 * USEC_PER_SEC),
    ("months", 2_629_800 * USEC_PER_SEC),
    ("month", 2_629_800 * USEC_PER_SEC),
    ("M", 2_629_800 * USEC_PER_SEC),
    ("msec", 1000),
    ("ms", 1000),
    ("m", 60 * USEC_PER_SEC),
    ("hours", 3600 * USEC_PER_SEC),
    ("hour", 3600 * USEC_PER_SEC),
    ("hr", 3600 * USEC_PER_SEC),
    ("h", 3600 * USEC_PER_SEC),
    ("days", 86_400 * USEC_PER_SEC),
    ("day", 86_400 * USEC_PER_SEC),
    ("d", 86_400 * USEC_PER_SEC),
    ("weeks", 604_800 * USEC_PER_SEC),
    ("week", 604_800 * USEC_PER_SEC),
    ("w", 604_800 * USEC_PER_SEC),
    ("years", 31_557_600 * USEC_PER_SEC),
    ("year", 31_557_600 * USEC_PER_SEC),
    ("y", 31_557_600 * USEC_PER_SEC),
    ("usec", 1),
    ("us", 1),
    ("μs", 1),
    ("μsec", 1),
];

fn unit(i: &str) -> IResult<&str, u64> {
    for (name, mult) in UNITS {
        if let Some(rest) = i.strip_prefix(name) {
            // a unit name must not run straight into more letters ("secs" is not a unit)
            if !rest.starts_with(|c: char| c.is_alphabetic()) {
                return Ok((rest, *mult));
            }
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Tag)))
}

/// One `NUMBER[.FRACTION] [UNIT]` item, in microseconds (None on overflow).
fn item(i: &str) -> IResult<&str, Option<u64>> {
    map(
        tuple((
            terminated(recognize(pair(digit1, opt(pair(tag("."), digit0)))), space0),
            opt(terminated(unit, space0)),
        )),
        |(num, mult): (&str, Option<u64>)| {
            let mult = mult.unwrap_or(USEC_PER_SEC);
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            let mut usec = int.parse::<u64>().ok()?.checked_mul(mult)?;
            let mut scale = mult;
            for d in frac.bytes().take(18) {
                scale /= 10;
                usec = usec.checked_add(u64::from(d - b'0') * scale)?;
            }
            Some(usec)
        },
    )(i)
}

fn span(i: &str) -> IResult<&str, Option<TimeSpan>> {
    preceded(
        space0,
        alt((
            map(terminated(tag("infinity"), space0), |_| Some(TimeSpan::Infinity)),
            map(many1(item), |items| {
                items.into_iter().try_fold(0u64, |acc, x| acc.checked_add(x?)).map(TimeSpan::Usec)
            }),
        )),
    )(i)
}

/// Parses a systemd time span; `None` if it is not one (or overflows).
pub fn parse(s: &str) -> Option<TimeSpan> {
    all_consuming(span)(s).ok().and_then(|(_, v)| v)
}

impl std::fmt::Display for TimeSpan {
    /// The shortest exact form systemd reads back: `10s`, `1500ms`, `7us`, `infinity`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            TimeSpan::Infinity => f.write_str("infinity"),
            TimeSpan::Usec(u) if u % USEC_PER_SEC == 0 => write!(f, "{}s", u / USEC_PER_SEC),
            TimeSpan::Usec(u) if u % 1000 == 0 => write!(f, "{}ms", u / 1000),
            TimeSpan::Usec(u) => write!(f, "{u}us"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TimeSpan::*;

    #[test]
    fn spans() {
        assert_eq!(parse("10s"), Some(Usec(10_000_000)));
        assert_eq!(parse("10"), Some(Usec(10_000_000)));
        assert_eq!(parse("0"), Some(Usec(0)));
        assert_eq!(parse(" 1min 30s "), Some(Usec(90_000_000)));
        assert_eq!(parse("1min30s"), Some(Usec(90_000_000)));
        assert_eq!(parse("1.5s"), Some(Usec(1_500_000)));
        assert_eq!(parse("500ms"), Some(Usec(500_000)));
        assert_eq!(parse("2m"), Some(Usec(120_000_000)));
        assert_eq!(parse("1h"), Some(Usec(3_600_000_000)));
        assert_eq!(parse("infinity"), Some(Infinity));
        assert_eq!(parse("5 us"), Some(Usec(5)));
        for bad in ["", "s", "-1s", "10x", "10secs", "1.2.3s", "infinity 1s", "99999999999999999999s"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["10s", "1500ms", "7us", "infinity", "0s"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }
}
