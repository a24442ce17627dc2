//! Compose's units: durations (`1m30s`, `500ms`) and byte sizes (`256m`, `1gb`).

use std::time::Duration;

/// A Compose duration: numbers with units `us`, `ms`, `s`, `m`, `h`, one after the other.
pub fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit] {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit..];
        total += Duration::try_from_secs_f64(number * seconds).ok()?;
    }
    Some(total)
}

/// A Compose byte size: a number and an optional unit `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`
/// (powers of 1024, any case).
pub fn bytes(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let number: i64 = t[..digits].parse().ok()?;
    let factor: i64 = match &t[digits..] {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// converge's duration text for `d` (`90s`, `1500ms`).
pub fn text(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_as_compose_writes_them() {
        assert_eq!(duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(duration("10"), None);
        assert_eq!(duration("10 parsecs"), None);
        assert_eq!(bytes("256m"), Some(256 << 20));
        assert_eq!(bytes("1GB"), Some(1 << 30));
        assert_eq!(bytes("512"), Some(512));
        assert_eq!(bytes("1t"), None);
        assert_eq!(text(Duration::from_secs(90)), "90s");
        assert_eq!(text(Duration::from_millis(1500)), "1500ms");
    }
}
