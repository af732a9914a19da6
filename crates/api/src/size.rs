//! Sizes as people write them: `16G`, `512M`, `1.5G`, or a byte count.

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("cannot parse size {0:?}")]
    Unreadable(String),
    #[error("size {0:?} is absurdly large")]
    TooLarge(String),
}

impl SizeError {
    /// How to write a size that parses.
    pub fn hint(&self) -> &'static str {
        match self {
            SizeError::Unreadable(_) => {
                "use a number with an optional unit K, M, G or T (binary), e.g. 8G or 512M"
            }
            SizeError::TooLarge(_) => "sizes up to 1P are accepted",
        }
    }
}

/// The largest size accepted: 1 PiB.
const MAX: u64 = 1 << 50;

/// Parses a size like `16G`, `512M`, `1.5G`, `1024K` or a plain byte count.
/// Units are binary (K = 1024).
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let bad = || SizeError::Unreadable(input.to_string());
    let s = input.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], s[i..].to_ascii_uppercase()),
        None => (s, String::new()),
    };
    let shift: u32 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    let number = number.trim();
    // Whole numbers are exact; fractions go through f64, which is exact
    // enough for sizes people type (1.5G).
    if let Ok(whole) = number.parse::<u64>() {
        return match whole.checked_shl(shift).filter(|b| b >> shift == whole) {
            Some(0) => Err(bad()),
            Some(bytes) if bytes <= MAX => Ok(bytes),
            _ => Err(SizeError::TooLarge(input.to_string())),
        };
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    let bytes = value * 2f64.powf(f64::from(shift));
    if bytes > MAX as f64 {
        return Err(SizeError::TooLarge(input.to_string()));
    }
    if bytes < 1.0 {
        return Err(bad());
    }
    // In range (checked above), so the conversion cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

/// Formats bytes the way [`parse_size`] reads them, e.g. `8G`, `512M`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (unit, shift) in UNITS {
        let size = 1u64 << shift;
        if bytes >= size {
            if bytes.is_multiple_of(size) {
                return format!("{}{unit}", bytes / size);
            }
            // One decimal is all a reader needs; precision loss is fine here.
            #[allow(clippy::cast_precision_loss)]
            let value = bytes as f64 / size as f64;
            return format!("{value:.1}{unit}");
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_sizes() {
        assert_eq!(parse_size("16G").unwrap(), 16 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1024T").unwrap(), 1 << 50);
    }

    #[test]
    fn rejects_sizes_that_do_not_parse() {
        for bad in ["", "G", "12Q", "-1G", "0", "abc", "0.0001", "1e400G"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Unreadable(_))),
                "{bad}"
            );
        }
        for huge in ["99999999T", "18446744073709551615G", "2048T"] {
            assert!(
                matches!(parse_size(huge), Err(SizeError::TooLarge(_))),
                "{huge}"
            );
        }
    }

    #[test]
    fn formats_sizes_round_trip() {
        for s in ["8G", "512M", "1T", "3K"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
        assert_eq!(format_size(1536 << 20), "1.5G");
        assert_eq!(format_size(100), "100B");
    }
}
