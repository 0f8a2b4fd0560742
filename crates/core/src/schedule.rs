//! When `serve` runs a policy (SPEC 6.4): a cron expression of 5 fields, or 6 with seconds
//! first, in an IANA time zone (UTC by default). Vixie semantics: day-of-month and
//! day-of-week are ORed when both are restricted, 0 and 7 are Sunday. A time that a
//! daylight-saving change skips runs at the next valid time; one it repeats runs once
//! (croner's OCPS rules, on jiff's zones).

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A policy's schedule: its cron expression in its time zone.
#[derive(Clone)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
    /// As the policy wrote them, for reports.
    pub expression: String,
    pub timezone: String,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expression, self.timezone)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl Schedule {
    /// Parses `expression` in time zone `timezone`; `Err` says what is wrong with which.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = time_zone(timezone)?;
        let cron = cron(expression)?;
        Ok(Self {
            cron,
            tz,
            expression: expression.to_owned(),
            timezone: timezone.to_owned(),
        })
    }

    /// The first tick strictly after `after` (`None`: the expression never matches again,
    /// like `0 0 30 2 *`).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(self.tz.clone());
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The newest tick in `(since, now]`: one that was missed while the service was down.
    pub fn last_missed(&self, since: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let now_zoned = now.to_zoned(self.tz.clone());
        let last = self
            .cron
            .find_previous_occurrence(&now_zoned, true)
            .ok()?
            .timestamp();
        (last > since).then_some(last)
    }
}

/// What is wrong with a schedule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("is not a cron expression of 5 fields (or 6 with seconds first): {0}")]
    Cron(String),
    #[error("is not an IANA time zone name (like UTC or Europe/Berlin)")]
    TimeZone,
}

/// An IANA time zone by name.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    if name.is_empty() || name.len() > 64 {
        return Err(ScheduleError::TimeZone);
    }
    TimeZone::get(name).map_err(|_| ScheduleError::TimeZone)
}

/// A cron expression: 5 fields, or 6 with seconds first (no year).
fn cron(expression: &str) -> Result<Cron, ScheduleError> {
    let fields = expression.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(ScheduleError::Cron(format!("it has {fields} fields")));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| ScheduleError::Cron(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(expr: &str, tz: &str, after: &str) -> String {
        Schedule::parse(expr, tz)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_string()
    }

    #[test]
    fn five_fields_in_a_zone() {
        assert_eq!(
            next("0 3 * * *", "Europe/Berlin", "2026-12-05T01:00:00Z"),
            "2026-12-05T02:00:00Z",
            "03:00 in Berlin is 02:00 UTC in winter"
        );
        assert_eq!(
            next("0 3 * * *", "UTC", "2026-12-05T01:00:00Z"),
            "2026-12-05T03:00:00Z"
        );
    }

    #[test]
    fn six_fields_take_seconds_first() {
        assert_eq!(
            next("*/5 * * * * *", "UTC", "2026-12-05T01:00:02Z"),
            "2026-12-05T01:00:05Z"
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored_and_7_is_sunday() {
        // The 15th, or any Sunday: from Monday 2026-12-07 the next is Sunday the 13th.
        assert_eq!(
            next("0 0 15 * 7", "UTC", "2026-12-07T00:00:00Z"),
            "2026-12-13T00:00:00Z"
        );
        assert_eq!(
            next("0 0 15 * 0", "UTC", "2026-12-14T00:00:00Z"),
            "2026-12-15T00:00:00Z"
        );
    }

    #[test]
    fn a_skipped_time_runs_at_the_next_valid_time_and_a_repeated_one_once() {
        // Berlin springs forward at 02:00 local on 2027-03-28: 02:30 does not exist.
        let skipped = next("30 2 * * *", "Europe/Berlin", "2027-03-27T12:00:00Z");
        assert_eq!(
            skipped, "2027-03-28T01:00:00Z",
            "03:00 CEST, the next valid time"
        );
        // It falls back at 03:00 local on 2027-10-31: 02:30 happens twice, runs once.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let first = s.next_after(at("2027-10-30T12:00:00Z")).unwrap();
        let second = s.next_after(first).unwrap();
        assert_eq!(first.to_string(), "2027-10-31T00:30:00Z");
        assert_eq!(
            second.to_string(),
            "2027-11-01T01:30:00Z",
            "not again an hour later"
        );
    }

    #[test]
    fn a_missed_tick_is_the_newest_since_the_last_run() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        let missed = s.last_missed(at("2026-12-05T01:10:00Z"), at("2026-12-05T04:30:00Z"));
        assert_eq!(missed.unwrap().to_string(), "2026-12-05T04:00:00Z");
        assert_eq!(
            s.last_missed(at("2026-12-05T04:10:00Z"), at("2026-12-05T04:30:00Z")),
            None
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "* * * * * * *",
            "0 3 * * mon-xyz",
        ] {
            assert!(
                matches!(Schedule::parse(bad, "UTC"), Err(ScheduleError::Cron(_))),
                "{bad:?}"
            );
        }
        for bad in ["Mars/Olympus", "", "utc+1"] {
            assert_eq!(
                Schedule::parse("0 3 * * *", bad).unwrap_err(),
                ScheduleError::TimeZone,
                "{bad:?}"
            );
        }
    }
}
