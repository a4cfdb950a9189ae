//! Size arguments as lvm2 reads and writes them.

/// A size on the command line: a number, optionally with a decimal fraction (`1.5G`), and an
/// optional binary unit `K M G T` (also `KiB`, lowercase, or `B`); no unit = bytes. As lvm2
/// reads `-L`; a fraction of a byte is rounded down.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let number = t.chars().take_while(|c| c.is_ascii_digit() || *c == '.').count();
    let (n, unit) = t.split_at(number);
    let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
    let expected = || format!("{s:?}: expected a number with an optional unit, e.g. 512M or 1.5G");
    if whole.is_empty() || frac.contains('.') || frac.len() > 9 || (n.contains('.') && frac.is_empty()) {
        return Err(expected());
    }
    let whole: u64 = whole.parse().map_err(|_| expected())?;
    let shift = match unit.to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M, G, T)")),
    };
    let too_large = || format!("{s:?}: too large");
    let mut b = whole.checked_mul(1 << shift).ok_or_else(too_large)?;
    if !frac.is_empty() {
        // frac / 10^len of the unit, in integers (9 digits × 2^40 needs more than 64 bits)
        let digits: u128 = frac.parse().map_err(|_| expected())?;
        let part = (digits << shift) / 10u128.pow(frac.len() as u32);
        b = b.checked_add(part as u64).ok_or_else(too_large)?;
    }
    if b == 0 {
        return Err(format!("{s:?}: must not be zero"));
    }
    Ok(b)
}

/// A byte count as an lvm2 size argument: the largest exact binary unit (`256m`, `1g`, `4096b`).
pub fn lvm_size(b: u64) -> String {
    for (shift, u) in [(40, 't'), (30, 'g'), (20, 'm'), (10, 'k')] {
        if b >= 1 << shift && b.is_multiple_of(1 << shift) {
            return format!("{}{u}", b >> shift);
        }
    }
    format!("{b}b")
}

pub fn human(b: u64) -> String {
    if b >= 1 << 30 { format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64) } else { format!("{} MiB", b >> 20) }
}
