//! The end-of-run summary of `recflow run`: each state with its duration, the jobs made and how
//! they were awaited, the solution's metrics, where today's picks are (with a few users' picks),
//! and a warning when the solution also trains by itself.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::checkpoint::{Durability, ExecutionStore, FileStore};
use crate::engine::execution::Execution;
use crate::engine::history::{Detail, HistoryEvent};
use crate::tasks::aws::Clients;

/// Prints the summary; anything it cannot read is left out (the run's outcome is already printed).
pub async fn print(
    checkpoint_dir: &Path,
    execution: &Execution,
    definition: &Value,
    clients: Option<&Clients>,
) {
    let store = FileStore::new(checkpoint_dir, Durability::NoFsync);
    let Ok(history) = store.history(&execution.name).await else { return };
    println!("\nStates (execution clock):");
    for line in state_lines(&history) {
        println!("  {line}");
    }
    for event in &history {
        if let Detail::TaskSucceeded { state, output, .. } = &event.detail {
            if let Some(metrics) = output.get("Metrics").and_then(Value::as_object) {
                let shown: Vec<String> = metrics
                    .iter()
                    .filter(|(k, _)| k.ends_with("_at_10") || k.as_str() == "coverage")
                    .map(|(k, v)| format!("{k} {:.4}", v.as_f64().unwrap_or(f64::NAN)))
                    .collect();
                let version = output.get("SolutionVersionArn").and_then(Value::as_str).unwrap_or("?");
                println!("\nSolution version metrics ({state}, {version}): {}", shown.join(", "));
            }
            if let Some(location) = output.get("PicksLocation").and_then(Value::as_str) {
                println!(
                    "\nToday's picks: {location} ({} users, {} with errors; manifest {})",
                    output["Users"],
                    output["UsersWithErrors"],
                    output["Manifest"].as_str().unwrap_or("?")
                );
                if let Some(clients) = clients {
                    for line in sample_picks(clients, location, 3).await {
                        println!("  {line}");
                    }
                }
            }
        }
    }
    if let Some(clients) = clients {
        for warning in auto_training_warnings(clients, definition, &history).await {
            println!("\nNote: {warning}");
        }
    }
}

/// One line per state, in order of first entry: total time in it (the sum over its visits), visits,
/// and for Tasks the job ARN and the polling report of a `.sync` job.
fn state_lines(history: &[HistoryEvent]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut rows: std::collections::HashMap<String, (f64, u32, Vec<String>)> = Default::default();
    // Visits still in the state, oldest first. Map iterations and Parallel branches visit one
    // state at once and leave in any order; the events do not say which visit left, but the sum
    // of the visits' times is the sum of exits minus the sum of entries whatever the pairing.
    let mut entered: std::collections::HashMap<
        String,
        std::collections::VecDeque<chrono::DateTime<chrono::Utc>>,
    > = Default::default();
    for e in history {
        match &e.detail {
            Detail::StateEntered { state, .. } => {
                if !rows.contains_key(state) {
                    order.push(state.clone());
                }
                rows.entry(state.clone()).or_default().1 += 1;
                entered.entry(state.clone()).or_default().push_back(e.timestamp);
            }
            Detail::StateExited { state, .. } => {
                if let Some(t) = entered.get_mut(state).and_then(|q| q.pop_front()) {
                    rows.entry(state.clone()).or_default().0 +=
                        (e.timestamp - t).num_milliseconds() as f64 / 1000.0;
                }
            }
            Detail::TaskSucceeded { state, output, report } => {
                let notes = &mut rows.entry(state.clone()).or_default().2;
                if let Some(arn) = job_arn(output).filter(|a| !notes.contains(a)) {
                    notes.push(arn);
                }
                if let Some(r) = report {
                    notes.push(format!(
                        "{} Describe call{}, job {}, seen {} after it ended",
                        r["DescribeCalls"],
                        if r["DescribeCalls"] == 1 { "" } else { "s" },
                        duration(r["JobSeconds"].as_f64().unwrap_or(0.0)),
                        duration(r["DetectionDelaySeconds"].as_f64().unwrap_or(0.0))
                    ));
                }
            }
            _ => {}
        }
    }
    order
        .iter()
        .map(|state| {
            let (seconds, visits, notes) = &rows[state];
            let visits = if *visits > 1 { format!(" ({visits} visits)") } else { String::new() };
            let notes = if notes.is_empty() { String::new() } else { format!("  {}", notes.join("; ")) };
            format!("{state:<28} {:>9}{visits}{notes}", duration(*seconds))
        })
        .collect()
}

/// The ARN of the job a Task made or described (`DatasetImportJobArn`, `SolutionVersionArn`, ...).
fn job_arn(output: &Value) -> Option<String> {
    let arn_in = |obj: &serde_json::Map<String, Value>| {
        obj.iter()
            .find(|(k, v)| (k.ends_with("JobArn") || k.as_str() == "SolutionVersionArn") && v.is_string())
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    let obj = output.as_object()?;
    arn_in(obj).or_else(|| obj.values().filter_map(Value::as_object).find_map(arn_in))
}

fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{}m {:02}s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    } else {
        format!("{}h {:02}m", (seconds / 3600.0) as u64, ((seconds % 3600.0) / 60.0) as u64)
    }
}

/// The first `n` users of the day's first part file, as "user: item, item, ...".
async fn sample_picks(clients: &Clients, location: &str, n: usize) -> Vec<String> {
    let Some((bucket, prefix)) = location.strip_prefix("s3://").and_then(|p| p.split_once('/')) else {
        return Vec::new();
    };
    let key = format!("{prefix}part-00000.jsonl");
    let Ok(object) = clients.s3.get_object().bucket(bucket).key(&key).range("bytes=0-65535").send().await
    else {
        return Vec::new();
    };
    let Ok(bytes) = object.body.collect().await else { return Vec::new() };
    String::from_utf8_lossy(&bytes.into_bytes())
        .lines()
        .take(n)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| {
            let items: Vec<&str> =
                v["items"].as_array().into_iter().flatten().filter_map(Value::as_str).take(8).collect();
            format!(
                "{}: {}{}",
                v["userId"].as_str().unwrap_or("?"),
                items.join(", "),
                if items.len() == 8 { ", ..." } else { "" }
            )
        })
        .collect()
}

/// Personalize trains a new version every 7 days by itself unless `performAutoTraining` is off
/// (CreateSolution API reference); a workflow that also retrains pays twice.
async fn auto_training_warnings(
    clients: &Clients,
    definition: &Value,
    history: &[HistoryEvent],
) -> Vec<String> {
    if !definition.to_string().contains("personalize:createSolutionVersion") {
        return Vec::new();
    }
    let solutions: BTreeSet<String> = history
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::TaskScheduled { resource, parameters, .. }
                if resource.contains("createSolutionVersion") =>
            {
                parameters["SolutionArn"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .collect();
    let mut warnings = Vec::new();
    for arn in solutions {
        let d = match clients.personalize.describe_solution().solution_arn(&arn).send().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(solution = %arn, error = %aws_sdk_personalize::error::DisplayErrorContext(&e), "could not check automatic training");
                continue;
            }
        };
        if d.solution().and_then(|s| s.perform_auto_training()) != Some(false) {
            warnings.push(format!(
                "solution {arn} trains automatically every 7 days (performAutoTraining is on, Personalize's default) \
                 while this workflow also retrains it: the team pays for training twice. Turn it off with UpdateSolution \
                 (performAutoTraining false), or drop the retraining step and publish from the automatic version."
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    #[test]
    fn concurrent_visits_add_up() {
        let at = |s: i64| Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap();
        let event = |id: u64, s: i64, detail: Detail| HistoryEvent { id, timestamp: at(s), detail };
        let enter = |id, s| event(id, s, Detail::StateEntered { state: "Sleep".into(), input: json!({}) });
        let exit = |id, s| {
            event(
                id,
                s,
                Detail::StateExited { state: "Sleep".into(), output: json!({}), assigned_variables: None },
            )
        };
        // Three waits of 60, 120 and 180 s, two at a time, leaving out of order.
        let history = [enter(1, 0), enter(2, 0), exit(3, 60), enter(4, 60), exit(5, 120), exit(6, 240)];
        assert_eq!(state_lines(&history), ["Sleep                           6m 00s (3 visits)"]);
    }
}
