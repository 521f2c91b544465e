//! Durations as written in tasks.toml: `500ms`, `10s`, `10m`, `1h`, or combined, `1m30s`.

use std::time::Duration;

/// Parses a duration; the error says what is wrong in a few words (used as a label).
pub fn parse(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        if rest.starts_with('.') {
            return Err("fractions are not supported; use a smaller unit, e.g. `1500ms`".into());
        }
        if rest.starts_with(char::is_whitespace) {
            return Err("no spaces: write the number and unit together, e.g. `5s`".into());
        }
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => number
                .checked_mul(60)
                .map(Duration::from_secs)
                .ok_or("number too large")?,
            "h" => number
                .checked_mul(3600)
                .map(Duration::from_secs)
                .ok_or("number too large")?,
            "" => return Err(format!("`{number}` needs a unit: ms, s, m or h")),
            other => return Err(format!("unknown unit `{other}`; use ms, s, m or h")),
        };
        total = total.checked_add(part).ok_or("duration too large")?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way a user writes it (`1m30s`, `500ms`), for messages.
pub fn format(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(parse(""), Err("empty duration".into()));
        assert_eq!(parse("10"), Err("`10` needs a unit: ms, s, m or h".into()));
        assert_eq!(
            parse("10sec"),
            Err("unknown unit `sec`; use ms, s, m or h".into())
        );
        assert_eq!(parse("ten s"), Err("expected a number at `ten s`".into()));
        assert_eq!(
            parse("1.5s"),
            Err("fractions are not supported; use a smaller unit, e.g. `1500ms`".into())
        );
        assert_eq!(
            parse("5 sec"),
            Err("no spaces: write the number and unit together, e.g. `5s`".into())
        );
        assert_eq!(parse("-1s"), Err("expected a number at `-1s`".into()));
        assert!(parse("99999999999999999999s").is_err());
        assert!(parse("18446744073709551615h").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "10s", "10m", "1h", "1m30s", "2h5s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
