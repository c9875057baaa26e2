//! Business hours: when an inbox counts time. A calendar has a time zone, opening intervals per
//! weekday (several a day, e.g. 09:00–14:00 and 15:00–18:00) and holidays. Durations and
//! deadlines "in business hours" count only the time inside those intervals, in the calendar's
//! own zone (so a daylight-saving change moves nothing an agent would notice).

use std::collections::BTreeSet;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A calendar as clients write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// An IANA zone, e.g. `Europe/Madrid`.
    pub time_zone: String,
    /// Opening intervals per weekday (`mon` … `sun`): `[["09:00", "14:00"], ["15:00", "18:00"]]`.
    pub hours: std::collections::BTreeMap<String, Vec<[String; 2]>>,
    /// Days closed all day, `YYYY-MM-DD` in the calendar's zone.
    #[serde(default)]
    pub holidays: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {reason}")]
pub struct CalendarError {
    pub field: String,
    pub reason: String,
}

fn error(field: impl Into<String>, reason: impl std::fmt::Display) -> CalendarError {
    CalendarError {
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// A parsed calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
    /// Index 0 is Monday; intervals sorted and not overlapping.
    week: [Vec<(Time, Time)>; 7],
    holidays: BTreeSet<Date>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Calendar {
    pub fn parse(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        let zone = TimeZone::get(&spec.time_zone).map_err(|_| error("time_zone", "not a known IANA time zone"))?;
        let mut week: [Vec<(Time, Time)>; 7] = Default::default();
        for (day, intervals) in &spec.hours {
            let index = DAYS
                .iter()
                .position(|d| d == day)
                .ok_or_else(|| error(format!("hours.{day}"), "days are mon, tue, wed, thu, fri, sat, sun"))?;
            let mut parsed = Vec::with_capacity(intervals.len());
            for (i, [from, to]) in intervals.iter().enumerate() {
                let field = format!("hours.{day}[{i}]");
                let from: Time = from
                    .parse()
                    .map_err(|_| error(&field, format!("{from:?} is not HH:MM")))?;
                let to: Time = if to == "24:00" {
                    Time::MAX
                } else {
                    to.parse().map_err(|_| error(&field, format!("{to:?} is not HH:MM")))?
                };
                if from >= to {
                    return Err(error(field, "an interval must end after it starts"));
                }
                parsed.push((from, to));
            }
            parsed.sort();
            if parsed.windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(error(format!("hours.{day}"), "intervals overlap"));
            }
            week[index] = parsed;
        }
        if week.iter().all(Vec::is_empty) {
            return Err(error("hours", "a calendar needs at least one opening interval"));
        }
        let holidays = spec
            .holidays
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.parse::<Date>()
                    .map_err(|_| error(format!("holidays[{i}]"), format!("{d:?} is not YYYY-MM-DD")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { zone, week, holidays })
    }

    /// The opening intervals of one local date, as instants.
    fn open_on(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        if self.holidays.contains(&date) {
            return vec![];
        }
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        self.week[weekday]
            .iter()
            .filter_map(|(from, to)| {
                let start = self
                    .zone
                    .to_ambiguous_zoned(date.to_datetime(*from))
                    .compatible()
                    .ok()?;
                let end = if *to == Time::MAX {
                    self.zone
                        .to_ambiguous_zoned(date.tomorrow().ok()?.to_datetime(Time::midnight()))
                        .compatible()
                        .ok()?
                } else {
                    self.zone.to_ambiguous_zoned(date.to_datetime(*to)).compatible().ok()?
                };
                Some((start.timestamp(), end.timestamp()))
            })
            .collect()
    }

    fn local_date(&self, at: Timestamp) -> Date {
        at.to_zoned(self.zone.clone()).date()
    }

    /// Seconds between `start` and `end` that fall in opening hours.
    pub fn business_seconds(&self, start: OffsetDateTime, end: OffsetDateTime) -> i64 {
        let (start, end) = (stamp(start), stamp(end));
        if end <= start {
            return 0;
        }
        let mut total = 0i64;
        let mut date = self.local_date(start);
        let last = self.local_date(end);
        while date <= last {
            for (from, to) in self.open_on(date) {
                let a = from.max(start);
                let b = to.min(end);
                if b > a {
                    total += b.as_second() - a.as_second();
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        total
    }

    /// The instant at which `seconds` of opening hours have passed since `start`.
    pub fn add_business_seconds(&self, start: OffsetDateTime, seconds: i64) -> OffsetDateTime {
        let start_ts = stamp(start);
        let mut left = seconds.max(0);
        let mut date = self.local_date(start_ts);
        // A calendar with any opening interval has one within every 8 days plus holidays;
        // ten years of holidays bound the search.
        for _ in 0..3_700 {
            for (from, to) in self.open_on(date) {
                let a = from.max(start_ts);
                if to <= a {
                    continue;
                }
                let available = to.as_second() - a.as_second();
                if left <= available {
                    return unstamp(a.checked_add(left.seconds()).unwrap_or(a));
                }
                left -= available;
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        unstamp(Timestamp::MAX)
    }
}

fn stamp(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_second(t.unix_timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn unstamp(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.as_second()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// How time counts for a metric or a deadline: every second, or only opening hours.
#[derive(Debug, Clone, Default)]
pub enum Hours {
    #[default]
    Always,
    Business(Calendar),
}

impl Hours {
    pub fn seconds(&self, start: OffsetDateTime, end: OffsetDateTime) -> i64 {
        match self {
            Self::Always => (end - start).whole_seconds().max(0),
            Self::Business(calendar) => calendar.business_seconds(start, end),
        }
    }

    pub fn add(&self, start: OffsetDateTime, seconds: i64) -> OffsetDateTime {
        match self {
            Self::Always => start + time::Duration::seconds(seconds.max(0)),
            Self::Business(calendar) => calendar.add_business_seconds(start, seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn madrid() -> Calendar {
        let spec: CalendarSpec = serde_json::from_value(serde_json::json!({
            "time_zone": "Europe/Madrid",
            "hours": {
                "mon": [["09:00", "14:00"], ["15:00", "18:00"]],
                "tue": [["09:00", "14:00"], ["15:00", "18:00"]],
                "wed": [["09:00", "14:00"], ["15:00", "18:00"]],
                "thu": [["09:00", "14:00"], ["15:00", "18:00"]],
                "fri": [["09:00", "14:00"]],
            },
            "holidays": ["2026-12-08"],
        }))
        .unwrap();
        Calendar::parse(&spec).unwrap()
    }

    #[test]
    fn business_time_skips_lunch_nights_weekends_and_holidays() {
        let cal = madrid();
        // Monday 2026-11-23, 13:30 to 15:30 Madrid (UTC+1): 30 min before lunch, 30 after.
        assert_eq!(
            cal.business_seconds(datetime!(2026-11-23 12:30 UTC), datetime!(2026-11-23 14:30 UTC)),
            3_600
        );
        // Friday 13:00 to Monday 10:00 Madrid: Friday 13–14 and Monday 9–10.
        assert_eq!(
            cal.business_seconds(datetime!(2026-11-27 12:00 UTC), datetime!(2026-11-30 09:00 UTC)),
            7_200
        );
        // Monday 7 Dec 17:00 to Wednesday 9 Dec 10:00 Madrid: Tuesday 8 Dec is a holiday.
        assert_eq!(
            cal.business_seconds(datetime!(2026-12-07 16:00 UTC), datetime!(2026-12-09 09:00 UTC)),
            7_200
        );
        // Saturday alone: nothing.
        assert_eq!(
            cal.business_seconds(datetime!(2026-11-28 08:00 UTC), datetime!(2026-11-28 20:00 UTC)),
            0
        );
    }

    #[test]
    fn deadlines_land_inside_opening_hours_and_agree_with_durations() {
        let cal = madrid();
        // Friday 13:30 Madrid + 1 h of business time: 30 min on Friday, 30 min on Monday.
        let due = cal.add_business_seconds(datetime!(2026-11-27 12:30 UTC), 3_600);
        assert_eq!(due, datetime!(2026-11-30 08:30 UTC));
        assert_eq!(cal.business_seconds(datetime!(2026-11-27 12:30 UTC), due), 3_600);
        // A message on Sunday night is due one business hour after Monday opens.
        assert_eq!(
            cal.add_business_seconds(datetime!(2026-11-29 22:00 UTC), 3_600),
            datetime!(2026-11-30 09:00 UTC)
        );
    }

    #[test]
    fn daylight_saving_changes_nothing_in_local_hours() {
        let cal = madrid();
        // Friday 2026-03-27 (UTC+1) 13:00 to Monday 2026-03-30 (UTC+2, after the change) 10:00.
        assert_eq!(
            cal.business_seconds(datetime!(2026-03-27 12:00 UTC), datetime!(2026-03-30 08:00 UTC)),
            7_200
        );
    }

    #[test]
    fn bad_calendars_name_the_field() {
        let bad = |value: serde_json::Value| {
            Calendar::parse(&serde_json::from_value::<CalendarSpec>(value).unwrap())
                .unwrap_err()
                .field
        };
        assert_eq!(
            bad(serde_json::json!({"time_zone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}})),
            "time_zone"
        );
        assert_eq!(
            bad(serde_json::json!({"time_zone": "UTC", "hours": {"lun": [["09:00", "17:00"]]}})),
            "hours.lun"
        );
        assert_eq!(
            bad(serde_json::json!({"time_zone": "UTC", "hours": {"mon": [["17:00", "09:00"]]}})),
            "hours.mon[0]"
        );
        assert_eq!(
            bad(serde_json::json!({"time_zone": "UTC", "hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}})),
            "hours.mon"
        );
        assert_eq!(bad(serde_json::json!({"time_zone": "UTC", "hours": {}})), "hours");
        assert_eq!(
            bad(serde_json::json!({"time_zone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["25/12"]})),
            "holidays[0]"
        );
    }
}
