//! Human durations in config and on the command line: `90s`, `30m`, `2h`, `7d`, `1h30m`.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: write a number followed by s, m, h or d, e.g. \"30s\", \"15m\", \"2h\", \"7d\""
)]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
}

/// Parses `30s`, `15m`, `2h`, `7d` and concatenations such as `1h30m`. Zero is allowed; callers
/// that need a positive duration check that themselves.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_string(),
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(error());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(error()),
        };
        let value: u64 = digits.parse().map_err(|_| error())?;
        total = value
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(error)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(error());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it, largest units first.
pub fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in ["", "30", "m", "3x", "1.5h", "-5m", "99999999999999999999d"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.to_string().contains("e.g."), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["20s", "30m", "1h30m", "7d", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
