//! `recflow schedule`: the next fire times of a schedule expression, to check one before it goes
//! into recflow.toml.

use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::common::{ExitCode, OutputFormat, usage};
use crate::schedule::Schedule;

/// `recflow schedule`'s arguments, as clap reads them.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  recflow schedule 'cron(0 3 * * ? *)' --tz Europe/Berlin     every day at 03:00 Berlin time
  recflow schedule 'cron(0 18 ? * MON-FRI *)'                 weekdays at 18:00 UTC
  recflow schedule 'rate(6 hours)' --next 3                   every 6 hours from now
  recflow schedule '30 2 * * *' --tz America/New_York          classic cron; skips 02:30 when the clock springs forward")]
pub struct ScheduleArgs {
    /// `cron(minutes hours day-of-month month day-of-week year)` as EventBridge writes it (one of
    /// the two day fields is `?`; day-of-week 1-7 from SUN; L, W and # allowed), `rate(5
    /// minutes)` / `rate(1 day)`, or a classic 5-field cron line.
    pub expression: String,
    /// The IANA time zone the expression's times are in (daylight saving as EventBridge
    /// Scheduler: a skipped local time does not fire, a repeated one fires once).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// How many fire times to print.
    #[arg(long, default_value_t = 5)]
    pub next: usize,
    /// Count from this instant (RFC 3339) instead of now; a rate counts from it too.
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

pub fn schedule(args: ScheduleArgs) -> Result<ExitCode> {
    let schedule = Schedule::parse(&args.expression).map_err(|e| usage(e.to_string()))?;
    let tz: Tz = args.tz.parse().map_err(|_| {
        usage(format!(
            "--tz '{}' is not an IANA time zone such as Europe/Berlin or America/New_York",
            args.tz
        ))
    })?;
    let from = match &args.from {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                usage(format!("--from '{text}' is not an RFC 3339 time such as 2026-11-29T03:00:00Z: {e}"))
            })?
            .with_timezone(&Utc),
    };
    let times = schedule.fire_times(tz, from, from, args.next);
    match args.output {
        OutputFormat::Json => {
            let list: Vec<String> = times.iter().map(|t| t.with_timezone(&tz).to_rfc3339()).collect();
            println!("{}", serde_json::json!({"expression": schedule.as_str(), "tz": args.tz, "next": list}));
        }
        OutputFormat::Human => {
            for t in &times {
                let local = t.with_timezone(&tz);
                println!("{}  ({})", local.format("%a %Y-%m-%d %H:%M:%S %Z"), t.format("%Y-%m-%dT%H:%M:%SZ"));
            }
        }
    }
    Ok(ExitCode::Succeeded)
}
