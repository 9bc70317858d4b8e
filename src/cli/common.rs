//! What several commands share: loading a definition, building task runners, the clock, and
//! printing an execution's outcome.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::asl::definition::{Kind, StateMachine};
use crate::checkpoint::{Durability, ExecutionStore, FileStore, S3Store};
use crate::engine::clock::{Clock, ScaledClock, SystemClock};
use crate::engine::execution::{Execution, Phase, Status, timestamp};

/// Exit codes: 0 the execution succeeded, 1 it failed (or timed out, or was stopped), 2 bad usage, an invalid definition, or
/// anything that kept the execution from running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Succeeded = 0,
    Failed = 1,
    Usage = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Readable text.
    Human,
    /// One JSON document on stdout.
    Json,
}

/// An error that is the user's to fix (exit code 2); the message says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow!(UsageError(message.into()))
}

/// Reads and checks a definition file; every problem is reported with the file's name.
pub fn load_definition(path: &Path) -> Result<(StateMachine, Value)> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("{}: not valid JSON: {e}", path.display())))?;
    let machine = StateMachine::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("{}: {e}", path.display())).collect();
        usage(lines.join("\n"))
    })?;
    let problems = crate::tasks::check_definition(&value);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|e| format!("{}: {e}", path.display())).collect();
        return Err(usage(lines.join("\n")));
    }
    Ok((machine, value))
}

/// The engine runs every state type, Map in inline mode only: a Map that reads its items with
/// ItemReader, batches them or writes results with ResultWriter (distributed mode's S3 fields)
/// is refused before starting, naming the state and the field.
pub fn check_runnable(machine: &StateMachine, source: &str) -> Result<()> {
    for state in &machine.states {
        match &state.kind {
            Kind::Map(map) => {
                if let Some(field) = map.distributed_fields.first() {
                    return Err(usage(format!(
                        "{source}: States.{}.{field}: distributed-mode Map fields (ItemReader, ItemBatcher, ResultWriter) are not supported by recflow, which runs Map inline: give the items in the input (ItemsPath)",
                        state.name
                    )));
                }
                check_runnable(&map.processor, source)?;
            }
            Kind::Parallel { branches } => {
                for branch in branches {
                    check_runnable(branch, source)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The clock for a run. `resumed_at` is the time of a resumed execution's latest transition:
/// if an earlier `--time-scale` run left it ahead of the wall clock, time continues from there.
pub fn clock(time_scale: f64, resumed_at: Option<DateTime<Utc>>) -> Result<Box<dyn Clock>> {
    check_time_scale(time_scale)?;
    let now = Utc::now();
    let ahead = resumed_at.filter(|t| *t > now);
    Ok(match (time_scale == 1.0, ahead) {
        (true, None) => Box::new(SystemClock),
        (_, base) => Box::new(ScaledClock::starting_at(time_scale, base.unwrap_or(now))),
    })
}

/// The time scales recflow accepts: from a thousandth of real time to a million times faster. Far
/// beyond, sped-up instants leave the calendar (a panic in chrono) or durations round to nothing.
pub const TIME_SCALE_RANGE: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;

/// Refuses a `--time-scale` outside [`TIME_SCALE_RANGE`] (exit code 2).
pub fn check_time_scale(time_scale: f64) -> Result<()> {
    if TIME_SCALE_RANGE.contains(&time_scale) {
        Ok(())
    } else {
        Err(usage(format!(
            "--time-scale must be between {} and {}, not {time_scale}",
            TIME_SCALE_RANGE.start(),
            TIME_SCALE_RANGE.end()
        )))
    }
}

/// Prints an ended (or still running) execution and gives the exit code for it.
pub fn report(exec: &Execution, format: OutputFormat) -> Result<ExitCode> {
    match format {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&exec.describe()).context("printing the execution")?);
        }
        OutputFormat::Human => {
            let s = if exec.transitions == 1 { "" } else { "s" };
            println!("execution {} {} ({} transition{s})", exec.name, exec.status.as_str(), exec.transitions);
            match exec.status {
                Status::Succeeded => {
                    let output = exec.output.as_ref().unwrap_or(&Value::Null);
                    println!("{}", serde_json::to_string_pretty(output).context("printing the output")?);
                }
                Status::Failed | Status::TimedOut | Status::Aborted => {
                    println!("Error: {}", exec.error.as_deref().unwrap_or(""));
                    println!("Cause: {}", exec.cause.as_deref().unwrap_or(""));
                }
                Status::Running => {
                    if let Some(at) = &exec.at {
                        println!("at state {}", at.state);
                    }
                    for line in fork_progress(exec) {
                        println!("{line}");
                    }
                }
            }
            // The top-level scope's workflow variables, one line each, values cut at 100 characters.
            for (name, value) in &exec.variables {
                println!("${name} = {}", clipped(&value.to_string(), 100));
            }
        }
    }
    Ok(match exec.status {
        Status::Succeeded => ExitCode::Succeeded,
        Status::Failed | Status::TimedOut | Status::Aborted => ExitCode::Failed,
        Status::Running => ExitCode::Usage,
    })
}

pub use crate::text::clipped;

/// One line per running Parallel or Map state, outermost first: `Map BatchPerSolution: 37/120
/// done, 4 running, 1 failed`, `Parallel TrainAll: 1/3 branches done, 2 running`, or `... retry
/// 2 at <time>` while a retried state waits to start again.
pub fn fork_progress(exec: &Execution) -> Vec<String> {
    exec.cursors()
        .filter_map(|(_, at)| {
            let (kind, fork, unit) = match &at.phase {
                Phase::Parallel(fork) => ("Parallel", fork, " branches"),
                Phase::Map(fork) => ("Map", fork, ""),
                _ => return None,
            };
            let mut line = format!(
                "{kind} {}: {}/{}{unit} done, {} running",
                at.state,
                fork.succeeded + fork.failed,
                fork.total,
                fork.running.len()
            );
            if fork.failed > 0 {
                line.push_str(&format!(", {} failed", fork.failed));
            }
            if let Some(t) = fork.not_before {
                line.push_str(&format!(", retry {} at {}", fork.attempt, timestamp(t)));
            }
            Some(line)
        })
        .collect()
}

/// The S3 location of `--checkpoint-dir s3://bucket/prefix/`, if that is what it names.
pub fn s3_checkpoints(dir: &Path) -> Option<(String, String)> {
    crate::checkpoint::S3Store::parse_url(dir.to_str()?)
}

/// Refuses a checkpoint location that starts like an S3 URL but names no bucket (`s3://`,
/// `s3:/x`), which would otherwise become a local folder named `s3:`.
pub fn check_checkpoint_dir(dir: &Path) -> Result<()> {
    let text = dir.to_string_lossy();
    if text.starts_with("s3:") && s3_checkpoints(dir).is_none() {
        return Err(usage(format!(
            "--checkpoint-dir {text}: an S3 location needs a bucket: s3://bucket/prefix/"
        )));
    }
    Ok(())
}

/// The execution store `--checkpoint-dir` names: a folder, or `s3://bucket/prefix/` (S3 from
/// the environment, as every AWS SDK finds it).
pub async fn open_store(dir: &Path, durability: Durability) -> Result<Box<dyn ExecutionStore>> {
    check_checkpoint_dir(dir)?;
    match s3_checkpoints(dir) {
        None => Ok(Box::new(FileStore::opened(dir, durability)?)),
        Some((bucket, prefix)) => {
            let clients = crate::tasks::aws::Clients::from_environment()
                .await
                .map_err(|e| usage(format!("--checkpoint-dir {}: {e}", dir.display())))?;
            Ok(Box::new(S3Store::new(clients.s3, &bucket, &prefix)))
        }
    }
}

/// The state machine's name: the file name up to its first dot (`nightly-refresh.asl.json`
/// gives `nightly-refresh`).
pub fn machine_name(path: &Path) -> String {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("state-machine");
    let stem = file.split('.').next().unwrap_or(file);
    let clean: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    if clean.is_empty() { "state-machine".into() } else { clean }
}

/// Execution names as Step Functions allows them: 1 to 80 of letters, digits, - and _.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 80
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(usage(format!("'{name}': an execution name is 1 to 80 letters, digits, '-' or '_'")));
    }
    Ok(())
}
