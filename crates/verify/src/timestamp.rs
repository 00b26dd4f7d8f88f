//! Durations from configuration and timestamps from providers, parsed leniently.
//!
//! Providers write timestamps in many shapes: `1614265330`, `1614265330123`,
//! `2023-06-30T18:52:27.885731Z`, `2024-01-1T10:00:00.7777748Z` (one-digit day, seven
//! fractional digits), `2023-04-26 10:00:00+02:00`, or naive times meant as UTC. An event
//! is never refused for its timestamp's spelling: [`parse_timestamp`] reads all of them.

use std::time::Duration;

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use crate::error::SpecError;

/// Parses a configured duration such as `5m`, `3s`, `1h 30m`, or a bare number of seconds.
pub fn parse_duration(key: &str, text: &str) -> Result<Duration, SpecError> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| {
        SpecError::new(
            key,
            format!("`{text}` is not a duration ({e}); write e.g. \"5m\""),
        )
    })
}

/// How a timestamp value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Unix seconds or milliseconds when numeric, else an ISO 8601 / RFC 3339 date-time.
    #[default]
    Auto,
    /// Unix seconds (may carry a fraction).
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// ISO 8601 / RFC 3339, read leniently (`%Y-%m-%dT%H:%M:%S.%fZ` and friends).
    Rfc3339,
}

impl TimestampFormat {
    /// Renders `at` in this format, the way a sender would write it. `Auto` and `Rfc3339`
    /// write `%Y-%m-%dT%H:%M:%S.%fZ` (microseconds), the shape QI Tech sends.
    pub fn render(self, at: OffsetDateTime) -> String {
        match self {
            TimestampFormat::Unix => at.unix_timestamp().to_string(),
            TimestampFormat::UnixMs => (at.unix_timestamp_nanos() / 1_000_000).to_string(),
            TimestampFormat::Auto | TimestampFormat::Rfc3339 => {
                let at = at.to_offset(UtcOffset::UTC);
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                    at.year(),
                    at.month() as u8,
                    at.day(),
                    at.hour(),
                    at.minute(),
                    at.second(),
                    at.microsecond()
                )
            }
        }
    }
}

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a timestamp")]
pub struct TimestampError(String);

/// Parses `text` as a timestamp in `format`.
pub fn parse_timestamp(
    text: &str,
    format: TimestampFormat,
) -> Result<OffsetDateTime, TimestampError> {
    let text = text.trim();
    let fail = || TimestampError(text.chars().take(64).collect());
    let numeric = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    match format {
        TimestampFormat::Unix => parse_unix(text, 1).ok_or_else(fail),
        TimestampFormat::UnixMs => parse_unix(text, 1000).ok_or_else(fail),
        TimestampFormat::Rfc3339 => parse_iso(text).ok_or_else(fail),
        TimestampFormat::Auto if numeric && !text[1..].contains('-') => {
            let whole = text.split('.').next().unwrap_or("");
            // 13 digits and more are milliseconds: seconds reach 13 digits only after year 33658.
            let scale = if whole.trim_start_matches('-').len() >= 13 {
                1000
            } else {
                1
            };
            parse_unix(text, scale).ok_or_else(fail)
        }
        TimestampFormat::Auto => parse_iso(text).ok_or_else(fail),
    }
}

fn parse_unix(text: &str, units_per_second: i128) -> Option<OffsetDateTime> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let mut frac_nanos: i128 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        frac_nanos += i128::from(digit - b'0') * 10i128.pow(8 - i as u32);
    }
    let magnitude =
        whole.checked_mul(1_000_000_000 / units_per_second)? + frac_nanos / units_per_second;
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(if negative { -magnitude } else { magnitude })
            .ok()?;
    in_range(at)
}

/// Provider timestamps outside years 0000–9999 are garbage, not times.
fn in_range(at: OffsetDateTime) -> Option<OffsetDateTime> {
    (0..=9999)
        .contains(&at.to_offset(UtcOffset::UTC).year())
        .then_some(at)
}

/// Lenient ISO 8601: `Y-M-D` with one- or two-digit month and day, `T` or space, `H:M[:S[.f…]]`
/// with any number of fractional digits, then `Z`, `±HH:MM`, `±HHMM`, `±HH` or nothing (UTC).
fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let mut cursor = Cursor {
        rest: text.as_bytes(),
    };
    let year = cursor.number(4, 4)? as i32;
    cursor.expect(b'-')?;
    let month = cursor.number(1, 2)? as u8;
    cursor.expect(b'-')?;
    let day = cursor.number(1, 2)? as u8;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    if cursor.rest.is_empty() {
        return Some(date.midnight().assume_utc());
    }
    match cursor.next()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let hour = cursor.number(1, 2)? as u8;
    cursor.expect(b':')?;
    let minute = cursor.number(2, 2)? as u8;
    let mut second = 0u8;
    let mut nanos = 0u32;
    if cursor.peek() == Some(b':') {
        cursor.next();
        second = cursor.number(2, 2)? as u8;
        if matches!(cursor.peek(), Some(b'.') | Some(b',')) {
            cursor.next();
            let digits = cursor.digits();
            if digits.is_empty() {
                return None;
            }
            for (i, d) in digits.iter().take(9).enumerate() {
                nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
            }
        }
    }
    // A leap second (60) is read as the last instant of the minute.
    let (second, nanos) = if second == 60 {
        (59, 999_999_999)
    } else {
        (second, nanos)
    };
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    let offset = match cursor.next() {
        None | Some(b'Z') | Some(b'z') => UtcOffset::UTC,
        Some(sign @ (b'+' | b'-')) => {
            let hours = cursor.number(2, 2)? as i8;
            if cursor.peek() == Some(b':') {
                cursor.next();
            }
            let minutes = if cursor.rest.is_empty() {
                0
            } else {
                cursor.number(2, 2)? as i8
            };
            let (h, m) = if sign == b'-' {
                (-hours, -minutes)
            } else {
                (hours, minutes)
            };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        Some(_) => return None,
    };
    if !cursor.rest.is_empty() {
        return None;
    }
    in_range(date.with_time(time).assume_offset(offset))
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn next(&mut self) -> Option<u8> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(*first)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn digits(&mut self) -> &'a [u8] {
        let n = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.rest.split_at(n);
        self.rest = rest;
        digits
    }

    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self
            .rest
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return None;
        }
        let (digits, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(
            digits
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    }
}

/// `at` for messages: RFC 3339 in UTC, fractions only when there are any.
pub fn display(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match at.nanosecond() {
        0 => format!("{base}Z"),
        n => format!("{base}.{}Z", format!("{n:09}").trim_end_matches('0')),
    }
}

/// Whether `at` lies within `tolerance` of `now`, either side.
pub(crate) fn within(at: OffsetDateTime, now: OffsetDateTime, tolerance: Duration) -> bool {
    let diff = (now - at).abs();
    diff <= time::Duration::try_from(tolerance).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn reads_the_shapes_providers_send() {
        let cases = [
            (
                "2024-01-1T10:00:00.7777748Z",
                datetime!(2024-01-01 10:00:00.7777748 UTC),
            ),
            (
                "2023-06-30T18:52:27.885731Z",
                datetime!(2023-06-30 18:52:27.885731 UTC),
            ),
            ("2023-04-26 10:00:00", datetime!(2023-04-26 10:00:00 UTC)),
            (
                "2023-04-26T10:00:00+02:00",
                datetime!(2023-04-26 08:00:00 UTC),
            ),
            (
                "2023-04-26T10:00:00-0530",
                datetime!(2023-04-26 15:30:00 UTC),
            ),
            ("2023-04-26T10:00Z", datetime!(2023-04-26 10:00:00 UTC)),
            ("2023-04-26", datetime!(2023-04-26 00:00:00 UTC)),
            ("1614265330", datetime!(2021-02-25 15:02:10 UTC)),
            ("1614265330.5", datetime!(2021-02-25 15:02:10.5 UTC)),
            ("1614265330123", datetime!(2021-02-25 15:02:10.123 UTC)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_timestamp(text, TimestampFormat::Auto),
                Ok(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for text in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-02-30",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00:00Zjunk",
            "1.2.3",
        ] {
            assert!(
                parse_timestamp(text, TimestampFormat::Auto).is_err(),
                "{text}"
            );
        }
        assert!(parse_timestamp("2024-01-01T00:00:00Z", TimestampFormat::Unix).is_err());
        // Found by the fuzzer: far-off Unix times are refused, not turned into year -4119.
        assert!(parse_timestamp("-192120212292222", TimestampFormat::Auto).is_err());
        assert!(parse_timestamp("-5", TimestampFormat::Unix).is_ok());
        assert!(parse_timestamp("0000-01-01T00:00:00+01:00", TimestampFormat::Auto).is_err());
    }

    #[test]
    fn renders_what_it_reads() {
        let at = datetime!(2023-06-30 18:52:27.885731 UTC);
        for format in [
            TimestampFormat::Rfc3339,
            TimestampFormat::Unix,
            TimestampFormat::UnixMs,
        ] {
            let text = format.render(at);
            let back = parse_timestamp(&text, format).unwrap();
            assert!(
                (back - at).abs() < time::Duration::SECOND,
                "{format:?} {text}"
            );
        }
        assert_eq!(
            TimestampFormat::Rfc3339.render(at),
            "2023-06-30T18:52:27.885731Z"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("k", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("k", "3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("k", "fast").unwrap_err().key, "k");
    }
}
