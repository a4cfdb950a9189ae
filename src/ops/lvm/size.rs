//! Size arguments as lvm2 reads and writes them.

/// A size on the command line: digits, optionally with a binary unit `K M G T` (also `KiB`,
/// lowercase, or `B`); no unit = bytes. As lvm2 reads `-L`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: expected a number with an optional unit, e.g. 512M"))?;
    let shift = match unit.to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M, G, T)")),
    };
    let b = n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?}: too large"))?;
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
