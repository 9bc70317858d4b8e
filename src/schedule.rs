//! Schedules as EventBridge Scheduler writes them: `cron(minutes hours day-of-month month
//! day-of-week year)`, `rate(5 minutes)`, and classic 5-field cron (`0 3 * * *`), each read in an
//! IANA time zone (UTC by default).
//!
//! EventBridge's rules kept here (EventBridge Scheduler user guide, "Schedule types"): cron has
//! six fields, day-of-week counts 1-7 from SUN, exactly one of day-of-month and day-of-week is
//! `?`, `L`, `W` and `#` are allowed, the year runs from 1970 to 2199; a rate names a positive
//! whole number with `minute`, `hour` or `day` when it is 1 and the plural above. Daylight
//! saving time: a local time that the clock skips does not fire that day, and a local time that
//! the clock passes twice fires once (at its first instant).
//!
//! Parsing and matching are croner's (a maintained cron crate that has `L`, `W`, `#` and
//! Quartz-style weekdays); zones are chrono-tz's.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule expression, with the text it came from.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Matched on local (naive) times in the schedule's zone.
    Cron(Box<Cron>),
    /// Every `every`, counted from an anchor (the schedule's start).
    Rate(Duration),
}

/// Why an expression is not a schedule: the text, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

impl Schedule {
    /// Reads `cron(...)`, `rate(...)` or a classic 5-field cron line (`minute hour day-of-month
    /// month day-of-week`, day-of-week 0-7 from SUN). `Err` quotes the text and says what is
    /// wrong.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        let err = |why: String| ScheduleError(format!("'{trimmed}': {why}"));
        let kind = if let Some(inner) = inside(trimmed, "cron") {
            Kind::Cron(Box::new(eventbridge_cron(inner).map_err(err)?))
        } else if let Some(inner) = inside(trimmed, "rate") {
            Kind::Rate(rate(inner).map_err(err)?)
        } else if trimmed.starts_with("cron") || trimmed.starts_with("rate") {
            return Err(err("write cron(...) or rate(...) with the parentheses".into()));
        } else {
            let fields = trimmed.split_whitespace().count();
            if fields != 5 {
                return Err(err(format!(
                    "a classic cron line has 5 fields (minute hour day-of-month month day-of-week), not {fields}; EventBridge's six-field form is written cron(0 3 * * ? *)"
                )));
            }
            let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
            Kind::Cron(Box::new(parser.parse(trimmed).map_err(|e| err(e.to_string()))?))
        };
        Ok(Schedule { text: trimmed.to_string(), kind })
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The fire times strictly after `after`, in order: local times of the pattern in `tz` (a
    /// skipped one left out, a repeated one once), or for a rate `anchor`, `anchor + every`, ...
    /// Bounded by `limit` times.
    pub fn fire_times(
        &self,
        tz: Tz,
        after: DateTime<Utc>,
        anchor: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        match &self.kind {
            Kind::Rate(every) => {
                let ms = every.num_milliseconds().max(1);
                let behind = (after - anchor).num_milliseconds();
                // The first tick after `after` (the anchor itself when it is still ahead).
                let n = if behind < 0 { 0 } else { behind / ms + 1 };
                (0..limit as i64).map(|i| anchor + Duration::milliseconds((n + i) * ms)).collect()
            }
            Kind::Cron(cron) => {
                let mut out = Vec::with_capacity(limit);
                let start = after.with_timezone(&tz).naive_local();
                // Start an hour early so that the first half of a repeated hour is seen; times
                // not after `after` are dropped below.
                let from = start - Duration::hours(1);
                for local in cron.iter_after(from) {
                    if out.len() == limit {
                        break;
                    }
                    let Some(instant) = first_instant(tz, local) else { continue };
                    if instant > after && out.last() != Some(&instant) {
                        out.push(instant);
                    }
                }
                out
            }
        }
    }
}

/// The first instant a local time names in `tz`: None for a time the clock skips.
fn first_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// The text inside `name(...)`.
fn inside<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?.trim_start().strip_prefix('(')?.strip_suffix(')').map(str::trim)
}

/// EventBridge's six fields, checked as EventBridge checks them, matched by croner with
/// Quartz-style weekdays (1-7 from SUN) and a seconds field of 0.
fn eventbridge_cron(inner: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "EventBridge's cron has 6 fields (minutes hours day-of-month month day-of-week year), not {}",
            fields.len()
        ));
    }
    let (dom, dow) = (fields[2], fields[4]);
    match (dom == "?", dow == "?") {
        (true, true) => return Err("only one of day-of-month and day-of-week may be '?'".into()),
        (false, false) => {
            return Err(format!(
                "one of day-of-month ('{dom}') and day-of-week ('{dow}') must be '?': EventBridge cannot combine them, as in cron(0 3 * * ? *) or cron(0 3 ? * MON-FRI *)"
            ));
        }
        _ => {}
    }
    let year = fields[5];
    if year != "*" && year != "?" {
        for part in year.split([',', '-', '/']) {
            match part.parse::<u32>() {
                Ok(y) if !(1970..=2199).contains(&y) && !year.contains(&format!("/{part}")) => {
                    return Err(format!("the year {y} is outside 1970-2199"));
                }
                Err(_) if !part.is_empty() && part != "*" => {
                    return Err(format!("'{year}' is not a year, a range or a list of years"));
                }
                _ => {}
            }
        }
    }
    let pattern = format!("0 {}", fields.join(" "));
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        // EventBridge writes steps Quartz's way: `0/15` is every 15 from 0.
        .sloppy_ranges(true)
        .build();
    parser.parse(&pattern).map_err(|e| e.to_string())
}

/// `5 minutes`, `1 hour`, `2 days`: singular for 1, plural above, as EventBridge insists.
fn rate(inner: &str) -> Result<Duration, String> {
    let mut parts = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a rate is a number and a unit, as rate(5 minutes) or rate(1 day)".into());
    };
    let n: i64 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{value}' is not a positive whole number"))?;
    let (singular, seconds) = match unit {
        "minute" | "minutes" => ("minute", 60),
        "hour" | "hours" => ("hour", 3600),
        "day" | "days" => ("day", 86_400),
        other => return Err(format!("'{other}' is not a unit: use minutes, hours or days")),
    };
    let plural = format!("{singular}s");
    match (n, unit == singular) {
        (1, false) => Err(format!("write rate(1 {singular}): EventBridge takes the singular for 1")),
        (n, true) if n > 1 => Err(format!("write rate({n} {plural}): EventBridge takes the plural above 1")),
        _ => Ok(Duration::seconds(n * seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
        let tz: Tz = tz.parse().unwrap();
        Schedule::parse(expr)
            .unwrap()
            .fire_times(tz, utc(after), utc(after), n)
            .iter()
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .collect()
    }

    #[test]
    fn eventbridge_cron_examples_from_the_user_guide() {
        assert_eq!(
            next("cron(0 10 * * ? *)", "UTC", "2026-11-29T12:00:00Z", 2),
            ["2026-11-30T10:00:00+00:00", "2026-12-01T10:00:00+00:00"]
        );
        // 6 PM Monday to Friday: 2026-11-29 is a Sunday.
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", "UTC", "2026-11-29T00:00:00Z", 2),
            ["2026-11-30T18:00:00+00:00", "2026-12-01T18:00:00+00:00"]
        );
        // Day-of-week counts from 1 = SUN: 2 is Monday.
        assert_eq!(
            next("cron(0 8 ? * 2 *)", "UTC", "2026-11-29T00:00:00Z", 1),
            ["2026-11-30T08:00:00+00:00"]
        );
        assert_eq!(
            next("cron(0/15 * * * ? *)", "UTC", "2026-11-29T00:07:00Z", 2),
            ["2026-11-29T00:15:00+00:00", "2026-11-29T00:30:00+00:00"]
        );
        // The last day of the month, and the first Monday (2#1).
        assert_eq!(
            next("cron(0 0 L * ? *)", "UTC", "2026-02-01T00:00:00Z", 1),
            ["2026-02-28T00:00:00+00:00"]
        );
        assert_eq!(
            next("cron(0 9 ? * 2#1 *)", "UTC", "2026-11-29T00:00:00Z", 1),
            ["2026-12-07T09:00:00+00:00"]
        );
        // The nearest weekday to the 15th: 2026-11-15 is a Sunday.
        assert_eq!(
            next("cron(0 9 15W * ? *)", "UTC", "2026-11-01T00:00:00Z", 1),
            ["2026-11-16T09:00:00+00:00"]
        );
    }

    #[test]
    fn a_named_zone_follows_daylight_saving_time() {
        // America/New_York springs forward on 2026-03-08 (02:00 -> 03:00): 02:30 does not exist
        // that day and does not fire.
        assert_eq!(
            next("cron(30 2 * * ? *)", "America/New_York", "2026-03-07T00:00:00Z", 3),
            ["2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
        );
        // It falls back on 2026-11-01 (02:00 -> 01:00): 01:30 happens twice and fires once.
        assert_eq!(
            next("cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z", 3),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00"]
        );
        // An hourly schedule passes the repeated hour once, the skipped one not at all.
        let hourly = next("cron(0 * * * ? *)", "America/New_York", "2026-11-01T04:30:00Z", 3);
        assert_eq!(
            hourly,
            ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]
        );
    }

    #[test]
    fn rates_count_from_their_anchor() {
        let s = Schedule::parse("rate(5 minutes)").unwrap();
        let anchor = utc("2026-11-29T10:00:00Z");
        let times = s.fire_times(Tz::UTC, utc("2026-11-29T10:07:00Z"), anchor, 2);
        assert_eq!(times, [utc("2026-11-29T10:10:00Z"), utc("2026-11-29T10:15:00Z")]);
        let times = Schedule::parse("rate(1 day)").unwrap().fire_times(Tz::UTC, anchor, anchor, 1);
        assert_eq!(times, [utc("2026-11-30T10:00:00Z")]);
    }

    #[test]
    fn classic_five_field_cron_counts_sunday_as_0() {
        assert_eq!(next("0 3 * * 0", "UTC", "2026-11-25T00:00:00Z", 1), ["2026-11-29T03:00:00+00:00"]);
        assert_eq!(
            next("0 3 * * *", "Europe/Berlin", "2026-11-29T00:00:00Z", 1),
            ["2026-11-29T03:00:00+01:00"]
        );
    }

    #[test]
    fn errors_say_what_to_write() {
        let err = |e: &str| Schedule::parse(e).unwrap_err().0;
        assert!(err("cron(0 3 * * * *)").contains("must be '?'"), "{}", err("cron(0 3 * * * *)"));
        assert!(err("cron(0 3 ? * ? *)").contains("only one"));
        assert!(err("cron(0 3 * * ?)").contains("6 fields"));
        assert!(err("cron(0 3 * * ? 2300)").contains("1970-2199"));
        assert!(err("rate(1 minutes)").contains("write rate(1 minute)"));
        assert!(err("rate(5 minute)").contains("write rate(5 minutes)"));
        assert!(err("rate(0 minutes)").contains("positive whole number"));
        assert!(err("rate(5 weeks)").contains("minutes, hours or days"));
        assert!(err("0 3 * * ? *").contains("cron(0 3 * * ? *)"));
        assert!(err("cron 0 3 * * ? *").contains("parentheses"));
        assert!(err("cron(61 3 * * ? *)").starts_with("'cron(61 3 * * ? *)': "));
    }
}
