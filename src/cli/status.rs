//! `recflow status`: one execution as DescribeExecution shows it, or a table of all of them.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

use super::common::{ExitCode, OutputFormat, check_name, fork_progress, open_store, report, s3_checkpoints};
use crate::checkpoint::{Durability, FileStore};
use crate::engine::Status;
use crate::engine::execution::timestamp;

/// `recflow status`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The execution's name; without it, every execution is listed, oldest first
    pub name: Option<String>,
    #[command(flatten)]
    pub store: super::args::Store,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

impl StatusArgs {
    /// The checked options of a status query.
    pub fn into_options(self) -> StatusOptions {
        StatusOptions { checkpoint_dir: self.store.checkpoint_dir(), name: self.name, output: self.output }
    }
}

/// A status query's options.
pub struct StatusOptions {
    pub name: Option<String>,
    pub checkpoint_dir: PathBuf,
    pub output: OutputFormat,
}

pub async fn status(opts: StatusOptions) -> Result<ExitCode> {
    let store = open_store(&opts.checkpoint_dir, Durability::NoFsync).await?;
    if let Some(name) = &opts.name {
        check_name(name)?;
        let loaded = store.read(name).await?;
        let code = report(&loaded.execution, opts.output)?;
        // The checkpoint reads fine even when the history file beside it was damaged: better to
        // learn it here than from a refused `resume`.
        if opts.output == OutputFormat::Human && s3_checkpoints(&opts.checkpoint_dir).is_none() {
            match FileStore::history_gap(&opts.checkpoint_dir, name) {
                Err(err) => println!("history: unreadable: {err}"),
                Ok(Some((missing, true))) => println!(
                    "history: events {missing} are missing though they had been synced: the file was truncated or edited; `recflow resume` refuses it until history.jsonl is restored"
                ),
                Ok(Some((missing, false))) => println!(
                    "history: events {missing} are missing (lost to a power loss before they were synced); `recflow resume` goes on without them"
                ),
                Ok(None) => {}
            }
        }
        if loaded.execution.status != Status::Running {
            return Ok(code);
        }
        // A running execution is a fine answer to a status query: say who is advancing it.
        if opts.output == OutputFormat::Human && s3_checkpoints(&opts.checkpoint_dir).is_none() {
            match FileStore::holder(&opts.checkpoint_dir, name)? {
                Some(Some(pid)) => println!("advanced by recflow process {pid}"),
                Some(None) => println!("advanced by another recflow process"),
                // `run` records how it started an execution; the daemon does not (it resumes its own).
                None => match super::integrations::LaunchRecord::read(&opts.checkpoint_dir, name) {
                    Some(_) => println!(
                        "no process is advancing it; continue it with: recflow resume {name} --checkpoint-dir {}",
                        opts.checkpoint_dir.display()
                    ),
                    None => println!(
                        "no process is advancing it; start the `recflow daemon` that runs it again (it resumes it), or: recflow resume {name} --checkpoint-dir {} with the --local or --mock it ran with",
                        opts.checkpoint_dir.display()
                    ),
                },
            }
        }
        return Ok(ExitCode::Succeeded);
    }
    let all = store.list().await?;
    match opts.output {
        OutputFormat::Json => {
            let list: Vec<Value> = all
                .iter()
                .map(|r| match r {
                    Ok(e) => e.describe(),
                    Err(err) => serde_json::json!({"error": err.to_string()}),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"executions": list}))?);
        }
        OutputFormat::Human => {
            if all.is_empty() {
                println!("no executions in {}", opts.checkpoint_dir.display());
            }
            for r in &all {
                match r {
                    Ok(e) => {
                        let at = e.at.as_ref().map(|p| format!(" at {}", p.state)).unwrap_or_default();
                        println!("{:<10} {}  {}{at}", e.status.as_str(), timestamp(e.start_time), e.name);
                        for line in fork_progress(e) {
                            println!("           {line}");
                        }
                    }
                    Err(err) => println!("UNREADABLE {err}"),
                }
            }
        }
    }
    Ok(ExitCode::Succeeded)
}
