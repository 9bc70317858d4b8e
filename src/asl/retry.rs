//! Retry and Catch: which retrier or catcher answers an error, and how long a retry waits.
//! The delay is computed here from a jitter fraction passed in, so the engine stays pure and the
//! chosen delay can be checkpointed.

use serde_json::Value;

use super::definition::{PathField, parse_result_path};
use super::errors::DefinitionError;
use super::fields::{Fields, MAX_SECONDS, kind};
use super::jsonata;
use super::query::{Payload, QueryLanguage};

pub use super::errors::names::{ALL, RUNTIME};
use super::errors::names::{TASK_FAILED, TIMEOUT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    None,
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter: Jitter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// JSONPath: where the error output `{"Error", "Cause"}` goes in the state's input.
    pub result_path: PathField,
    /// The variables set when this catcher takes the error.
    pub assign: Option<Payload>,
    /// JSONata: the state's output when this catcher takes the error (the error output when
    /// absent).
    pub output: Option<jsonata::Template>,
}

/// Whether an `ErrorEquals` list answers `error`. `States.ALL` matches everything and
/// `States.TaskFailed` everything but `States.Timeout`; neither matches `States.Runtime`,
/// which Step Functions never lets a Retry or Catch handle.
pub fn error_matches(error_equals: &[String], error: &str) -> bool {
    if error == RUNTIME {
        return false;
    }
    // Step Functions: "States.ALL ... can't catch the States.DataLimitExceeded terminal error
    // type" (error handling page): only its own name does.
    if error == super::errors::names::DATA_LIMIT_EXCEEDED {
        return error_equals.iter().any(|e| e == error);
    }
    error_equals.iter().any(|e| e == error || e == ALL || (e == TASK_FAILED && error != TIMEOUT))
}

impl Retrier {
    /// Seconds to wait before retry number `retries_done + 1`, or None when attempts are
    /// exhausted. `jitter` is a fraction in [0, 1) drawn by the caller; FULL jitter scales the
    /// delay by it, NONE ignores it.
    pub fn delay(&self, retries_done: u64, jitter: f64) -> Option<f64> {
        if retries_done >= self.max_attempts {
            return None;
        }
        let exponent = i32::try_from(retries_done).unwrap_or(i32::MAX);
        let mut delay = self.interval_seconds as f64 * self.backoff_rate.powi(exponent);
        if let Some(max) = self.max_delay_seconds {
            delay = delay.min(max as f64);
        }
        if !delay.is_finite() {
            delay = f64::MAX;
        }
        Some(match self.jitter {
            Jitter::None => delay,
            Jitter::Full => delay * jitter.clamp(0.0, 1.0),
        })
    }
}

fn error_equals(f: &mut Fields<'_>) -> Vec<String> {
    let Some(items) = f.array("ErrorEquals") else {
        if !f.has("ErrorEquals") {
            f.error("ErrorEquals", "is required");
        }
        return Vec::new();
    };
    if items.is_empty() {
        f.error("ErrorEquals", "must name at least one error");
    }
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => names.push(s.clone()),
            other => f.error(&format!("ErrorEquals[{i}]"), format!("must be a string, not {}", kind(other))),
        }
    }
    if names.len() > 1 && names.iter().any(|n| n == ALL) {
        f.error("ErrorEquals", "States.ALL must appear alone in ErrorEquals");
    }
    names
}

pub(crate) fn parse_retry(list: &[Value], at: &str, errors: &mut Vec<DefinitionError>) -> Vec<Retrier> {
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Some(mut f) = Fields::of(item, format!("{at}[{i}]"), errors) else { continue };
        f.only(
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            "a Retrier",
        );
        let names = error_equals(&mut f);
        if names.iter().any(|n| n == ALL) && i + 1 != list.len() {
            f.error("ErrorEquals", "a retrier with States.ALL must be the last one");
        }
        let backoff_rate = match f.number("BackoffRate") {
            Some(rate) if rate < 1.0 => {
                f.error("BackoffRate", format!("must be >= 1.0, not {rate}"));
                2.0
            }
            Some(rate) => rate,
            None => 2.0,
        };
        let jitter = match f.string("JitterStrategy") {
            None | Some("NONE") => Jitter::None,
            Some("FULL") => Jitter::Full,
            Some(other) => {
                f.error("JitterStrategy", format!("must be FULL or NONE, not '{other}'"));
                Jitter::None
            }
        };
        out.push(Retrier {
            error_equals: names,
            interval_seconds: f.integer("IntervalSeconds", 1, MAX_SECONDS).unwrap_or(1),
            max_attempts: f.integer("MaxAttempts", 0, MAX_SECONDS).unwrap_or(3),
            backoff_rate,
            max_delay_seconds: f.integer("MaxDelaySeconds", 1, 31_622_400),
            jitter,
        });
    }
    out
}

pub(crate) fn parse_catch(
    list: &[Value],
    at: &str,
    language: QueryLanguage,
    errors: &mut Vec<DefinitionError>,
) -> Vec<Catcher> {
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Some(mut f) = Fields::of(item, format!("{at}[{i}]"), errors) else { continue };
        let (own, other) = match language {
            QueryLanguage::JsonPath => ("ResultPath", "Output"),
            QueryLanguage::Jsonata => ("Output", "ResultPath"),
        };
        if f.has(other) {
            let message =
                format!("is not allowed in a {} state's Catcher (it takes {own})", language.as_str());
            f.error(other, message);
        }
        f.only(&["ErrorEquals", "Next", "Comment", "Assign", "ResultPath", "Output"], "a Catcher");
        let names = error_equals(&mut f);
        if names.iter().any(|n| n == ALL) && i + 1 != list.len() {
            f.error("ErrorEquals", "a catcher with States.ALL must be the last one");
        }
        let next = f.required_string("Next").unwrap_or_default().to_string();
        let result_path = parse_result_path(&mut f);
        let assign = f.raw("Assign").and_then(|v| {
            let at = f.loc("Assign");
            Payload::parse_assign(v, &at, language, f.errors)
        });
        let output = f.raw("Output").map(|v| {
            let at = f.loc("Output");
            jsonata::Template::parse(v, &at, f.errors)
        });
        out.push(Catcher { error_equals: names, next, result_path, assign, output });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(interval: u64, max: u64, rate: f64, cap: Option<u64>, jitter: Jitter) -> Retrier {
        Retrier {
            error_equals: vec![ALL.into()],
            interval_seconds: interval,
            max_attempts: max,
            backoff_rate: rate,
            max_delay_seconds: cap,
            jitter,
        }
    }

    #[test]
    fn backoff_grows_and_stops_after_max_attempts() {
        let r = retrier(3, 3, 2.0, None, Jitter::None);
        assert_eq!(r.delay(0, 0.5), Some(3.0));
        assert_eq!(r.delay(1, 0.5), Some(6.0));
        assert_eq!(r.delay(2, 0.5), Some(12.0));
        assert_eq!(r.delay(3, 0.5), None);
    }

    #[test]
    fn max_attempts_zero_never_retries() {
        assert_eq!(retrier(1, 0, 2.0, None, Jitter::None).delay(0, 0.0), None);
    }

    #[test]
    fn max_delay_caps_the_backoff() {
        let r = retrier(60, 10, 3.0, Some(600), Jitter::None);
        assert_eq!(r.delay(1, 0.0), Some(180.0));
        assert_eq!(r.delay(2, 0.0), Some(540.0));
        assert_eq!(r.delay(3, 0.0), Some(600.0));
        assert_eq!(r.delay(9, 0.0), Some(600.0));
    }

    #[test]
    fn full_jitter_scales_by_the_given_fraction() {
        let r = retrier(10, 3, 2.0, None, Jitter::Full);
        assert_eq!(r.delay(1, 0.25), Some(5.0));
        assert_eq!(r.delay(1, 0.0), Some(0.0));
    }

    #[test]
    fn huge_backoff_does_not_overflow() {
        let r = retrier(99_999_999, 99_999_999, 1000.0, None, Jitter::None);
        assert!(r.delay(5000, 0.0).unwrap().is_finite());
    }

    #[test]
    fn matching_rules() {
        let all = vec![ALL.to_string()];
        let task_failed = vec![TASK_FAILED.to_string()];
        assert!(error_matches(&all, "Personalize.ResourceInUseException"));
        assert!(error_matches(&all, TIMEOUT));
        assert!(!error_matches(&all, RUNTIME));
        assert!(error_matches(&task_failed, "Personalize.LimitExceededException"));
        assert!(!error_matches(&task_failed, TIMEOUT));
        assert!(error_matches(&["A".into(), "B".into()], "B"));
        assert!(!error_matches(&["A".into()], "AB"));
    }
}
