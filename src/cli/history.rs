//! `recflow history`: the events of an execution, as GetExecutionHistory lists them.

use std::path::PathBuf;

use anyhow::Result;

use super::common::{ExitCode, OutputFormat, check_name, clipped, open_store};
use crate::checkpoint::Durability;
use crate::engine::execution::timestamp;
use crate::engine::history::Detail;

/// `recflow history`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// The execution's name (as `recflow status` lists it)
    pub name: String,
    #[command(flatten)]
    pub store: super::args::Store,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

impl HistoryArgs {
    /// The checked options of a history query.
    pub fn into_options(self) -> HistoryOptions {
        HistoryOptions { checkpoint_dir: self.store.checkpoint_dir(), name: self.name, output: self.output }
    }
}

/// A history query's options.
pub struct HistoryOptions {
    pub name: String,
    pub checkpoint_dir: PathBuf,
    pub output: OutputFormat,
}

pub async fn history(opts: HistoryOptions) -> Result<ExitCode> {
    check_name(&opts.name)?;
    let events = open_store(&opts.checkpoint_dir, Durability::NoFsync).await?.history(&opts.name).await?;
    match opts.output {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"events": events}))?)
        }
        OutputFormat::Human => {
            for e in &events {
                let what = match &e.detail {
                    Detail::ExecutionStarted { .. } => String::new(),
                    Detail::StateEntered { state, .. }
                    | Detail::StateExited { state, assigned_variables: None, .. } => state.clone(),
                    Detail::StateExited { state, assigned_variables: Some(assigned), .. } => {
                        let values: Vec<String> = assigned
                            .iter()
                            .map(|(k, v)| format!("${k} = {}", clipped(&v.to_string(), 60)))
                            .collect();
                        format!("{state} assigned {}", values.join(", "))
                    }
                    Detail::TaskScheduled { state, resource, attempt, .. } => {
                        format!("{state} {resource} attempt {attempt}")
                    }
                    Detail::TaskSucceeded { state, report: None, .. } => state.clone(),
                    Detail::TaskSucceeded { state, report: Some(report), .. } => format!("{state} {report}"),
                    Detail::TaskPolled { state, status, polls, next_poll } => {
                        format!("{state} {status} (poll {polls}), next at {}", timestamp(*next_poll))
                    }
                    Detail::TaskFailed { state, error, .. } => format!("{state} {error}"),
                    Detail::RetryScheduled { state, delay_seconds, attempt, .. } => {
                        format!("{state} attempt {attempt} in {delay_seconds:.1} s")
                    }
                    Detail::WaitStarted { state, until } => format!("{state} until {}", timestamp(*until)),
                    Detail::ParallelStateStarted { state, branches, attempt } => {
                        format!("{state} {branches} branches, attempt {attempt}")
                    }
                    Detail::ParallelStateSucceeded { state } | Detail::MapStateSucceeded { state } => {
                        state.clone()
                    }
                    Detail::ParallelStateFailed { state, error, .. }
                    | Detail::MapStateFailed { state, error, .. } => format!("{state} {error}"),
                    Detail::MapStateStarted { state, length, attempt, .. } => {
                        format!("{state} {length} items, attempt {attempt}")
                    }
                    Detail::MapIterationStarted { state, index, .. }
                    | Detail::MapIterationSucceeded { state, index, .. }
                    | Detail::MapIterationAborted { state, index, .. } => format!("{state}[{index}]"),
                    Detail::MapIterationFailed { state, index, error, .. } => {
                        format!("{state}[{index}] {error}")
                    }
                    Detail::ExecutionSucceeded { .. } => String::new(),
                    Detail::ExecutionFailed { error, cause }
                    | Detail::ExecutionTimedOut { error, cause }
                    | Detail::ExecutionAborted { error, cause } => {
                        format!("{error}: {cause}")
                    }
                };
                println!("{:>5}  {}  {:<22} {what}", e.id, timestamp(e.timestamp), e.detail.type_name());
            }
        }
    }
    Ok(ExitCode::Succeeded)
}
