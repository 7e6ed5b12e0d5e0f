//! The current date and time in a route's IANA time zone, for its system prompt.
//!
//! The filter has no time zone database (nothing to read inside Envoy's sandbox) and should not
//! carry one (it would weigh more than the rest of the module). So a zone comes with its rules
//! worked out: the list of its offset changes ([`Transition`]s) that `airouter envoy` computes
//! with jiff from the tz database the sidecar carries (from 2020 to 2100) and writes into the
//! configuration Envoy holds (`[time_zones]`). Here an instant's offset is found in that list
//! and jiff turns the instant and offset into a civil date and time, formatted below.

use jiff::tz::Offset;
use jiff::Timestamp;

/// From `at` on (Unix seconds), the zone is `offset` seconds east of UTC, abbreviated
/// `abbreviation` (`CEST`, `+0530`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub at: i64,
    pub offset: i32,
    pub abbreviation: String,
}

/// A route's time zone: its IANA name and its offset changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    zone: String,
    /// Sorted by `at`, never empty; the first also holds before its `at`, the last after.
    transitions: Vec<Transition>,
}

/// One instant as a system prompt shows it; see [`crate::router::template::Slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// `2025-03-14`.
    pub date: String,
    /// `09:26`, 24-hour.
    pub time: String,
    /// `Friday`.
    pub weekday: &'static str,
    /// `Friday, 2025-03-14 09:26 CET (Europe/Berlin, UTC+01:00)`.
    pub datetime: String,
}

/// The most offset changes a zone may bring (about 2 a year for 80 years, with room).
pub const MAX_TRANSITIONS: usize = 1024;

impl Clock {
    /// The zone `zone` with its offset changes, which must be 1 to [`MAX_TRANSITIONS`], in
    /// increasing order, with offsets within ±25 hours and short printable abbreviations.
    pub fn new(zone: &str, transitions: Vec<Transition>) -> Result<Clock, String> {
        if transitions.is_empty() || transitions.len() > MAX_TRANSITIONS {
            return Err(format!("needs 1 to {MAX_TRANSITIONS} offset changes"));
        }
        if transitions.windows(2).any(|w| w[0].at >= w[1].at) {
            return Err("offset changes must be in increasing order of time".into());
        }
        for t in &transitions {
            if Offset::from_seconds(t.offset).is_err() {
                return Err(format!("offset {} is beyond ±25 hours", t.offset));
            }
            let a = &t.abbreviation;
            if a.is_empty() || a.len() > 16 || !a.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!("`{a}` is not a time zone abbreviation"));
            }
        }
        Ok(Clock {
            zone: zone.to_string(),
            transitions,
        })
    }

    /// The zone's IANA name.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The offset change in force at `secs` (Unix seconds).
    fn in_force(&self, secs: i64) -> Option<&Transition> {
        let after = self.transitions.partition_point(|t| t.at <= secs);
        self.transitions.get(after.saturating_sub(1))
    }

    /// The time at `now_ms` (milliseconds since the Unix epoch, the host's clock).
    pub fn at(&self, now_ms: u64) -> LocalTime {
        let ts = i64::try_from(now_ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let (secs, abbreviation) = match self.in_force(ts.as_second()) {
            Some(t) => (t.offset, t.abbreviation.as_str()),
            None => (0, "UTC"),
        };
        let offset = Offset::from_seconds(secs).unwrap_or(Offset::UTC);
        let dt = offset.to_datetime(ts);
        let date = format!("{:04}-{:02}-{:02}", dt.year(), dt.month(), dt.day());
        let time = format!("{:02}:{:02}", dt.hour(), dt.minute());
        let weekday = match dt.weekday() {
            jiff::civil::Weekday::Monday => "Monday",
            jiff::civil::Weekday::Tuesday => "Tuesday",
            jiff::civil::Weekday::Wednesday => "Wednesday",
            jiff::civil::Weekday::Thursday => "Thursday",
            jiff::civil::Weekday::Friday => "Friday",
            jiff::civil::Weekday::Saturday => "Saturday",
            jiff::civil::Weekday::Sunday => "Sunday",
        };
        let sign = if secs < 0 { '-' } else { '+' };
        let abs = secs.unsigned_abs();
        let utc = format!("UTC{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60);
        let datetime = format!(
            "{weekday}, {date} {time} {abbreviation} ({}, {utc})",
            self.zone
        );
        LocalTime {
            date,
            time,
            weekday,
            datetime,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn change(at: i64, offset: i32, abbreviation: &str) -> Transition {
        Transition {
            at,
            offset,
            abbreviation: abbreviation.into(),
        }
    }

    /// Kolkata's rules since 1945: +05:30, IST.
    pub(crate) fn kolkata() -> Vec<Transition> {
        vec![change(-764_145_000, 19_800, "IST")]
    }

    /// Berlin's 2025 changes: CET, CEST from 2025-03-30T01:00Z, CET from 2025-10-26T01:00Z.
    pub(crate) fn berlin_2025() -> Vec<Transition> {
        vec![
            change(1_729_990_800, 3_600, "CET"),
            change(1_743_296_400, 7_200, "CEST"),
            change(1_761_440_400, 3_600, "CET"),
        ]
    }

    /// 2025-03-14T03:56:40Z, a Friday.
    pub(crate) const FIXED_NOW_MS: u64 = 1_741_924_600_000;

    #[test]
    fn the_time_is_shown_in_the_zone() {
        let clock = Clock::new("Asia/Kolkata", kolkata()).unwrap();
        let t = clock.at(FIXED_NOW_MS);
        assert_eq!(
            (t.date.as_str(), t.time.as_str(), t.weekday),
            ("2025-03-14", "09:26", "Friday")
        );
        assert_eq!(
            t.datetime,
            "Friday, 2025-03-14 09:26 IST (Asia/Kolkata, UTC+05:30)"
        );
        let west = Clock::new("Pacific/Honolulu", vec![change(0, -36_000, "HST")]).unwrap();
        assert_eq!(
            west.at(FIXED_NOW_MS).datetime,
            "Thursday, 2025-03-13 17:56 HST (Pacific/Honolulu, UTC-10:00)"
        );
    }

    #[test]
    fn daylight_saving_time_starts_and_ends_on_its_second() {
        let berlin = Clock::new("Europe/Berlin", berlin_2025()).unwrap();
        let at = |ms: u64| berlin.at(ms).datetime;
        assert_eq!(
            at(FIXED_NOW_MS),
            "Friday, 2025-03-14 04:56 CET (Europe/Berlin, UTC+01:00)"
        );
        assert_eq!(
            at(1_743_296_399_999),
            "Sunday, 2025-03-30 01:59 CET (Europe/Berlin, UTC+01:00)"
        );
        assert_eq!(
            at(1_743_296_400_000),
            "Sunday, 2025-03-30 03:00 CEST (Europe/Berlin, UTC+02:00)"
        );
        assert_eq!(
            at(1_761_440_400_000),
            "Sunday, 2025-10-26 02:00 CET (Europe/Berlin, UTC+01:00)"
        );
        // Before the first change and after the last, the nearest holds.
        assert!(at(0).contains("CET"));
        assert!(at(4_102_444_800_000).contains("CET"));
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(Clock::new("X", vec![]).is_err());
        assert!(Clock::new("X", vec![change(5, 0, "A"), change(5, 0, "B")]).is_err());
        assert!(Clock::new("X", vec![change(0, 200_000, "A")]).is_err());
        assert!(Clock::new("X", vec![change(0, 0, "")]).is_err());
        assert!(Clock::new("X", vec![change(0, 0, "with space")]).is_err());
    }
}
