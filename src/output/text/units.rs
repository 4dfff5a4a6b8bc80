//! How numbers are written in reports: signs on growth, sizes in the largest exact unit.

/// `+5`, `0`, `-3`.
pub(super) fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// Bytes in the largest unit that writes them exactly: `5 MiB`, `24 KiB`, `100 B` (maps come in
/// whole pages, so mapped bytes read in KiB or MiB).
pub(super) fn size(n: i64) -> String {
    const KIB: i64 = 1024;
    const MIB: i64 = 1024 * KIB;
    match n {
        0 => "0 B".into(),
        n if n % MIB == 0 => format!("{} MiB", n / MIB),
        n if n % KIB == 0 => format!("{} KiB", n / KIB),
        n => format!("{n} B"),
    }
}

/// [`size`] with a `+` on growth.
pub(super) fn signed_size(n: i64) -> String {
    if n > 0 {
        format!("+{}", size(n))
    } else {
        size(n)
    }
}

/// `1 block`, `3 blocks`.
pub(super) fn blocks(n: u64) -> String {
    if n == 1 {
        "1 block".into()
    } else {
        format!("{n} blocks")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_in_the_largest_exact_unit() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(100), "100 B");
        assert_eq!(size(24 << 10), "24 KiB");
        assert_eq!(size(5 << 20), "5 MiB");
        assert_eq!(size((5 << 20) + 4096), "5124 KiB");
        assert_eq!(signed_size(4096), "+4 KiB");
        assert_eq!(signed_size(-4096), "-4 KiB");
        assert_eq!(signed(0), "0");
        assert_eq!(signed(-2), "-2");
        assert_eq!(blocks(1), "1 block");
        assert_eq!(blocks(0), "0 blocks");
    }
}
