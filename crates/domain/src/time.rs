//! Timestamps as milliseconds since the Unix epoch: one integer column type on both databases.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(d.as_millis() as i64)
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0 + secs * 1000)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// ISO 8601 in UTC, e.g. `2026-11-27T13:11:40Z`, for `<time datetime>` and JSON.
    pub fn iso(self) -> String {
        let mut out = String::with_capacity(20);
        self.write_iso(&mut out);
        out
    }

    /// [`Timestamp::iso`] appended to `out` (an export writes a million without a `String` each).
    pub fn write_iso(self, out: &mut String) {
        use std::fmt::Write;
        let (y, mo, d, h, mi, s) = self.civil();
        // Writing to a String can't fail.
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    }

    /// Midnight UTC of a `YYYY-MM-DD` date (years 1 to 9999), as a date field sends it: the one
    /// date parser, for forms, filters, imports and the API alike.
    pub fn from_date(date: &str) -> Option<Self> {
        let date = date.trim();
        let mut parts = date.splitn(3, '-');
        let y: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        let d: i64 = parts.next()?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
            return None;
        }
        // Howard Hinnant's days-from-civil algorithm.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let t = Self(days * 86_400_000);
        // A day past the month's end (2026-02-30) would land in the next month.
        (t.iso()[..10] == *date).then_some(t)
    }

    fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (
            y,
            m,
            d,
            (rem / 3600) as u32,
            (rem % 3600 / 60) as u32,
            (rem % 60) as u32,
        )
    }
}

/// Human form in UTC, e.g. `2026-11-27 13:11 UTC`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, _) = self.civil();
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp(0).iso(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_795_784_700_000).iso(), "2026-11-27T13:05:00Z");
        assert_eq!(Timestamp(951_782_400_000).iso(), "2000-02-29T00:00:00Z");
        assert_eq!(
            Timestamp::from_date("2000-02-29"),
            Some(Timestamp(951_782_400_000))
        );
        assert_eq!(Timestamp::from_date("2026-02-30"), None);
        assert_eq!(Timestamp::from_date("yesterday"), None);
    }
}
