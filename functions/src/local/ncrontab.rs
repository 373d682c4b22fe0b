//! NCRONTAB schedules, as the Functions timer trigger reads them: six fields
//! (`second minute hour day month day-of-week`), always UTC here.
//!
//! Each field takes `*`, a value, a range `a-b`, a step `*/n` or `a-b/n`, and comma lists of
//! those; months and days of week also take English names (`Jan`, `Sun`). Day of week runs
//! 0-6 from Sunday (7 is Sunday too). As in NCrontab, when both day of month and day of week
//! are restricted, a day must match both. Five-field expressions (no seconds) are accepted with
//! seconds = 0.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
}

/// A schedule expression that cannot be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {expression:?}: {problem}")]
pub struct ScheduleError {
    pub expression: String,
    pub problem: String,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// How far ahead to look for an occurrence before deciding there is none (Feb 30th, say).
const SEARCH_YEARS: i32 = 8;

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let error = |problem: String| ScheduleError {
            expression: expression.to_owned(),
            problem,
        };
        let mut fields: Vec<&str> = expression.split_whitespace().collect();
        match fields.len() {
            6 => {}
            5 => fields.insert(0, "0"),
            count => {
                return Err(error(format!(
                    "expected 6 fields (second minute hour day month day-of-week), found {count}"
                )))
            }
        }
        let field = |index: usize, name: &str, min: u32, max: u32, names: &[&str], offset: u32| {
            parse_field(fields[index], min, max, names, offset)
                .map_err(|problem| error(format!("{name} field {:?}: {problem}", fields[index])))
        };
        let weekdays = field(5, "day-of-week", 0, 7, WEEKDAYS, 0)?;
        // 7 is Sunday as well.
        let weekdays = (weekdays & 0x7f) | ((weekdays >> 7) & 1);
        Ok(Self {
            seconds: field(0, "second", 0, 59, &[], 0)?,
            minutes: field(1, "minute", 0, 59, &[], 0)?,
            hours: u32::try_from(field(2, "hour", 0, 23, &[], 0)?)
                .map_err(|_| error("hour out of range".into()))?,
            days: u32::try_from(field(3, "day", 1, 31, &[], 0)?)
                .map_err(|_| error("day out of range".into()))?,
            months: u16::try_from(field(4, "month", 1, 12, MONTHS, 1)?)
                .map_err(|_| error("month out of range".into()))?,
            weekdays: u8::try_from(weekdays)
                .map_err(|_| error("day-of-week out of range".into()))?,
        })
    }

    /// The first occurrence strictly after `after` (`None` if the schedule never fires).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = after.with_nanosecond(0)? + Duration::seconds(1);
        let limit = after.year() + SEARCH_YEARS;
        while at.year() <= limit {
            if self.months & (1 << at.month()) == 0 {
                at = start_of_month(at.year(), at.month())?
                    .checked_add_months(chrono::Months::new(1))?;
                continue;
            }
            if !self.day_matches(at) {
                at = start_of_day(at)? + Duration::days(1);
                continue;
            }
            if self.hours & (1 << at.hour()) == 0 {
                at = at.with_minute(0)?.with_second(0)? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << at.minute()) == 0 {
                at = at.with_second(0)? + Duration::minutes(1);
                continue;
            }
            if self.seconds & (1 << at.second()) == 0 {
                at += Duration::seconds(1);
                continue;
            }
            return Some(at);
        }
        None
    }

    fn day_matches(&self, at: DateTime<Utc>) -> bool {
        let weekday = at.weekday().num_days_from_sunday();
        self.days & (1 << at.day()) != 0 && self.weekdays & (1 << weekday) != 0
    }
}

fn start_of_month(year: i32, month: u32) -> Option<DateTime<Utc>> {
    Some(Utc.from_utc_datetime(&NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?))
}

fn start_of_day(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(Utc.from_utc_datetime(&at.date_naive().and_hms_opt(0, 0, 0)?))
}

/// Parses one field into a bit set of allowed values.
fn parse_field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_offset: u32,
) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("step {step:?} is not a number"))?;
                if step == 0 {
                    return Err("step must be at least 1".into());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (
                value(low, min, max, names, name_offset)?,
                value(high, min, max, names, name_offset)?,
            )
        } else {
            let single = value(range, min, max, names, name_offset)?;
            // `a/n` means from a to the maximum in steps of n.
            (single, if part.contains('/') { max } else { single })
        };
        if low > high {
            return Err(format!("range {low}-{high} runs backwards"));
        }
        for allowed in (low..=high).step_by(step as usize) {
            bits |= 1 << allowed;
        }
    }
    Ok(bits)
}

fn value(text: &str, min: u32, max: u32, names: &[&str], name_offset: u32) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let parsed = match names
        .iter()
        .position(|name| lower.starts_with(name) && lower.len() >= 3)
    {
        Some(index) => {
            u32::try_from(index).map_err(|_| "name out of range".to_owned())? + name_offset
        }
        None => text
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?,
    };
    if (min..=max).contains(&parsed) {
        Ok(parsed)
    } else {
        Err(format!("{parsed} is outside {min}-{max}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_apps_schedules_fire_when_they_should() {
        let daily_two = Schedule::parse("0 0 2 * * *").unwrap();
        assert_eq!(
            daily_two.next_after(at("2026-11-21T01:59:59Z")),
            Some(at("2026-11-21T02:00:00Z"))
        );
        assert_eq!(
            daily_two.next_after(at("2026-11-21T02:00:00Z")),
            Some(at("2026-11-22T02:00:00Z"))
        );
        let sundays = Schedule::parse("0 0 3 * * 0").unwrap();
        // 2026-11-21 is a Saturday.
        assert_eq!(
            sundays.next_after(at("2026-11-21T12:00:00Z")),
            Some(at("2026-11-22T03:00:00Z"))
        );
        assert_eq!(
            sundays.next_after(at("2026-11-22T03:00:00Z")),
            Some(at("2026-11-29T03:00:00Z"))
        );
    }

    #[test]
    fn steps_ranges_lists_and_names() {
        let every_five = Schedule::parse("*/5 * * * * *").unwrap();
        assert_eq!(
            every_five.next_after(at("2026-11-21T00:00:03Z")),
            Some(at("2026-11-21T00:00:05Z"))
        );
        let weekdays = Schedule::parse("0 30 9 * * Mon-Fri").unwrap();
        assert_eq!(
            weekdays.next_after(at("2026-11-21T00:00:00Z")),
            Some(at("2026-11-23T09:30:00Z"))
        );
        let listed = Schedule::parse("0 0 8,20 1 Jan,Jul *").unwrap();
        assert_eq!(
            listed.next_after(at("2026-11-21T00:00:00Z")),
            Some(at("2027-01-01T08:00:00Z"))
        );
        let sunday_as_seven = Schedule::parse("0 0 0 * * 7").unwrap();
        assert_eq!(
            sunday_as_seven.next_after(at("2026-11-21T00:00:00Z")),
            Some(at("2026-11-22T00:00:00Z"))
        );
        let five_fields = Schedule::parse("15 * * * *").unwrap();
        assert_eq!(
            five_fields.next_after(at("2026-11-21T00:00:00Z")),
            Some(at("2026-11-21T00:15:00Z"))
        );
    }

    #[test]
    fn day_of_month_and_week_must_both_match() {
        // Friday the 13th.
        let schedule = Schedule::parse("0 0 0 13 * 5").unwrap();
        assert_eq!(
            schedule.next_after(at("2026-11-21T00:00:00Z")),
            Some(at("2027-08-13T00:00:00Z"))
        );
    }

    #[test]
    fn impossible_dates_have_no_occurrence() {
        assert_eq!(
            Schedule::parse("0 0 0 30 2 *")
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn bad_expressions_say_which_field() {
        for (expression, expected) in [
            ("0 60 2 * * *", "minute field"),
            ("0 0 24 * * *", "hour field"),
            ("0 0 * * * Funday", "day-of-week field"),
            ("*/0 * * * * *", "step must be at least 1"),
            ("0 0 5-2 * * *", "runs backwards"),
            ("0 0", "expected 6 fields"),
        ] {
            let message = Schedule::parse(expression).unwrap_err().to_string();
            assert!(message.contains(expected), "{expression}: {message}");
        }
    }
}
