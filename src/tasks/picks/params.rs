//! The task's Parameters: read at run time (`from_parameters`) and checked at validate time
//! (`check_static`), with one checker per field shared by both.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{PublishPicks, S3Location};

pub(super) const DEFAULT_TOP_N: usize = 10;
pub(super) const MAX_TOP_N: usize = 500;

const BATCH_OUTPUT_PATH: &str = "BatchOutputPath";
const PICKS_PATH: &str = "PicksPath";
const DATE: &str = "Date";
const TOP_N: &str = "TopN";
const EXCLUDE_ITEMS: &str = "ExcludeItems";
const MIN_SCORE: &str = "MinScore";
const BATCH_INFERENCE_JOB_ARN: &str = "BatchInferenceJobArn";
const SOLUTION_VERSION_ARN: &str = "SolutionVersionArn";

/// Every parameter, required ones first.
const FIELDS: [(&str, bool); 8] = [
    (BATCH_OUTPUT_PATH, true),
    (PICKS_PATH, true),
    (DATE, true),
    (TOP_N, false),
    (EXCLUDE_ITEMS, false),
    (MIN_SCORE, false),
    (BATCH_INFERENCE_JOB_ARN, false),
    (SOLUTION_VERSION_ARN, false),
];

pub(super) fn from_parameters(params: &Value) -> Result<PublishPicks, String> {
    let map = object(params)?;
    let mut problems = unknown_names(map.keys().map(String::as_str));
    for (name, required) in FIELDS {
        if required && !map.contains_key(name) {
            problems.push(missing(name));
        }
    }
    // A field with a problem keeps its placeholder, so that all problems are reported together.
    // Optional fields may be null, as a JSONPath to a missing optional value gives.
    let field = |name: &str| map.get(name).filter(|v| !v.is_null());
    let mut request = PublishPicks {
        batch_output: S3Location { bucket: String::new(), prefix: String::new() },
        destination: S3Location { bucket: String::new(), prefix: String::new() },
        date: String::new(),
        top_n: DEFAULT_TOP_N,
        exclude_items: Vec::new(),
        min_score: None,
        source_job_arn: None,
        solution_version_arn: None,
    };
    if let Some(v) = map.get(BATCH_OUTPUT_PATH) {
        note(&mut problems, BATCH_OUTPUT_PATH, s3_path(v).map(|l| request.batch_output = l));
    }
    if let Some(v) = map.get(PICKS_PATH) {
        note(&mut problems, PICKS_PATH, s3_path(v).map(|l| request.destination = l));
    }
    if let Some(v) = map.get(DATE) {
        note(&mut problems, DATE, date(v).map(|d| request.date = d));
    }
    if let Some(v) = field(TOP_N) {
        note(&mut problems, TOP_N, top_n(v).map(|n| request.top_n = n));
    }
    if let Some(v) = field(EXCLUDE_ITEMS) {
        note(&mut problems, EXCLUDE_ITEMS, string_list(v).map(|l| request.exclude_items = l));
    }
    if let Some(v) = field(MIN_SCORE) {
        note(&mut problems, MIN_SCORE, min_score(v).map(|s| request.min_score = Some(s)));
    }
    if let Some(v) = field(BATCH_INFERENCE_JOB_ARN) {
        note(&mut problems, BATCH_INFERENCE_JOB_ARN, arn(v).map(|a| request.source_job_arn = Some(a)));
    }
    if let Some(v) = field(SOLUTION_VERSION_ARN) {
        note(&mut problems, SOLUTION_VERSION_ARN, arn(v).map(|a| request.solution_version_arn = Some(a)));
    }
    if problems.is_empty() { Ok(request) } else { Err(problems.join("; ")) }
}

pub(super) fn check_static(params: &Value) -> Vec<String> {
    let map = match object(params) {
        Ok(map) => map,
        Err(message) => return vec![message],
    };
    let mut problems = unknown_names(map.keys().map(|k| k.strip_suffix(".$").unwrap_or(k)));
    for (name, required) in FIELDS {
        let literal = map.get(name);
        let dynamic = map.contains_key(&format!("{name}.$"));
        if literal.is_some() && dynamic {
            problems.push(format!("{name}: given both as {name} and as {name}.$"));
        }
        let Some(value) = literal else {
            if required && !dynamic {
                problems.push(missing(name));
            }
            continue;
        };
        if value.is_null() && !required {
            continue;
        }
        let checked = match name {
            BATCH_OUTPUT_PATH | PICKS_PATH => s3_path(value).map(drop),
            DATE => date(value).map(drop),
            TOP_N => top_n(value).map(drop),
            EXCLUDE_ITEMS => string_list(value).map(drop),
            MIN_SCORE => min_score(value).map(drop),
            _ => arn(value).map(drop),
        };
        if let Err(message) = checked {
            problems.push(format!("{name}: {message}"));
        }
    }
    problems
}

fn note(problems: &mut Vec<String>, name: &str, result: Result<(), String>) {
    if let Err(message) = result {
        problems.push(format!("{name}: {message}"));
    }
}

fn object(params: &Value) -> Result<&Map<String, Value>, String> {
    params.as_object().ok_or_else(|| format!("Parameters: must be an object, not {}", kind(params)))
}

fn missing(name: &str) -> String {
    let what = match name {
        BATCH_OUTPUT_PATH => "the batch inference job's output path, s3://bucket/prefix/",
        PICKS_PATH => "where the picks go, s3://bucket/prefix/",
        _ => "the day of the picks, YYYY-MM-DD",
    };
    format!("{name}: required ({what})")
}

/// Unknown names in the order given (duplicates once), each with a did-you-mean when one of the
/// known names is close.
fn unknown_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    for name in names {
        if FIELDS.iter().any(|(known, _)| *known == name) || !seen.insert(name) {
            continue;
        }
        problems.push(match suggestion(name) {
            Some(known) => format!("{name}: unknown parameter; did you mean {known}?"),
            None => format!(
                "{name}: unknown parameter (expected {})",
                FIELDS.iter().map(|(known, _)| *known).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    problems
}

/// The known name closest to `name`, if close enough to be a slip: equal but for case, or at
/// most a third of its letters (and at least 1, at most 3) away.
fn suggestion(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    FIELDS
        .iter()
        .map(|(known, _)| (*known, strsim::levenshtein(&lower, &known.to_ascii_lowercase())))
        .filter(|(known, distance)| *distance <= (known.len() / 3).clamp(1, 3))
        .min_by_key(|(_, distance)| *distance)
        .map(|(known, _)| known)
}

/// How a value is named in messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn string<'a>(value: &'a Value, what: &str) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| format!("must be {what}, not {}", kind(value)))
}

fn s3_path(value: &Value) -> Result<S3Location, String> {
    S3Location::parse(string(value, "an s3:// path")?)
}

pub(super) fn date(value: &Value) -> Result<String, String> {
    let text = string(value, "a date, YYYY-MM-DD")?;
    let shaped = text.len() == 10
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if shaped && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        Ok(text.to_owned())
    } else {
        Err(format!("must be a date, YYYY-MM-DD, not {text:?}"))
    }
}

fn top_n(value: &Value) -> Result<usize, String> {
    let range = || format!("must be 1 to {MAX_TOP_N}, not {value}");
    match value {
        Value::Number(n) if n.is_u64() => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_TOP_N).contains(n))
            .ok_or_else(range),
        Value::Number(n) if n.is_i64() => Err(range()),
        _ => Err(format!("must be an integer, not {}", kind(value))),
    }
}

fn string_list(value: &Value) -> Result<Vec<String>, String> {
    let Value::Array(values) = value else {
        return Err(format!("must be an array of item ids, not {}", kind(value)));
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_owned).ok_or_else(|| format!("[{i}] must be a string, not {}", kind(v)))
        })
        .collect()
}

fn min_score(value: &Value) -> Result<f64, String> {
    value.as_f64().filter(|s| s.is_finite()).ok_or_else(|| format!("must be a number, not {}", kind(value)))
}

fn arn(value: &Value) -> Result<String, String> {
    let text = string(value, "an ARN")?;
    if text.starts_with("arn:") && text.len() > 4 {
        Ok(text.to_owned())
    } else {
        Err(format!("must be an ARN (arn:...), not {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggestion("Topn"), Some(TOP_N));
        assert_eq!(suggestion("ExcludedItems"), Some(EXCLUDE_ITEMS));
        assert_eq!(suggestion("MinScores"), Some(MIN_SCORE));
        assert_eq!(suggestion("Dates"), Some(DATE));
        assert_eq!(suggestion("Bucket"), None);
    }
}
