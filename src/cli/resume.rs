//! `recflow resume`: continue an execution from its checkpoint, exactly where it stopped.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use tracing::info;

use super::args::{Store, Tasks};
use super::common::{
    ExitCode, OutputFormat, check_name, check_runnable, clock, open_store, report, s3_checkpoints, usage,
};
use super::integrations::{LaunchRecord, TaskOptions, integrations};
use crate::asl::definition::StateMachine;
use crate::checkpoint::Durability;
use crate::engine::{Launch, Status};

/// `recflow resume`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct ResumeArgs {
    /// The execution's name (as `run` printed it, or `recflow status` lists it)
    pub name: String,
    #[command(flatten)]
    pub store: Store,
    #[command(flatten)]
    pub tasks: Tasks,
    /// Stop (exit 0, checkpointed) when nothing would be due before this much wall time, as
    /// for `run --max-runtime`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_runtime: Option<std::time::Duration>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

impl ResumeArgs {
    /// The checked options of a resume.
    pub fn into_options(self) -> ResumeOptions {
        ResumeOptions {
            max_runtime: self.max_runtime,
            checkpoint_dir: self.store.checkpoint_dir(),
            no_fsync: self.tasks.no_fsync,
            tasks: self.tasks.options(&self.store),
            output: self.output,
            name: self.name,
        }
    }
}

/// A resume's checked options.
pub struct ResumeOptions {
    pub name: String,
    pub checkpoint_dir: PathBuf,
    pub no_fsync: bool,
    pub tasks: TaskOptions,
    /// Stop, checkpointed, when nothing is due within this much wall time.
    pub max_runtime: Option<std::time::Duration>,
    pub output: OutputFormat,
}

pub async fn resume(opts: ResumeOptions) -> Result<ExitCode> {
    super::signals::install()?;
    check_name(&opts.name)?;
    let durability = if opts.no_fsync { Durability::NoFsync } else { Durability::Fsync };
    let store = open_store(&opts.checkpoint_dir, durability).await?;
    let local_dir = Some(opts.checkpoint_dir.as_path()).filter(|d| s3_checkpoints(d).is_none());
    let loaded = store.load(&opts.name).await?;
    let source = format!("{}/{}/definition.json", opts.checkpoint_dir.display(), opts.name);
    let machine = StateMachine::from_json(&loaded.definition).map_err(|errors| {
        usage(errors.iter().map(|e| format!("{source}: {e}")).collect::<Vec<_>>().join("\n"))
    })?;
    if loaded.execution.status != Status::Running {
        return report(&loaded.execution, opts.output);
    }
    // A hand-edited or mismatched checkpoint: refuse it now, untouched, rather than fail later.
    if let Some(at) = loaded.execution.at.as_ref().filter(|at| machine.state(&at.state).is_none()) {
        return Err(usage(format!(
            "{}/{}/checkpoint.json: the execution stands at state '{}', which its definition does not have; left untouched",
            opts.checkpoint_dir.display(),
            opts.name,
            at.state
        )));
    }
    check_runnable(&machine, &source)?;
    let launch_record = LaunchRecord::read(&opts.checkpoint_dir, &opts.name);
    if launch_record.is_none()
        && local_dir.is_some()
        && opts.tasks.mock.is_none()
        && !opts.tasks.local
        && !machine.task_resources().is_empty()
    {
        // Nothing says how it was started: AWS it is, which is wrong for a `--local` or `--mock`
        // run whose launch.json was lost. (S3 checkpoint folders and the daemon keep none.)
        tracing::warn!(
            "no record of how {} was started ({}/{}/launch.json): resuming against AWS; give --local or --mock if it ran on them",
            opts.name,
            opts.checkpoint_dir.display(),
            opts.name
        );
    }
    let tasks = opts.tasks.resuming(launch_record.as_ref());
    let integrations = integrations(&tasks, &machine, &source, local_dir).await?;
    let clock = clock(tasks.time_scale(), loaded.execution.updated)?;
    let at = loaded.execution.at.as_ref().map(|p| p.state.clone()).unwrap_or_default();
    info!(execution = %opts.name, state = %at, "resuming");
    let mut integrations = integrations;
    let launch = Launch {
        machine: Arc::new(machine),
        definition: Arc::new(loaded.definition.clone()),
        registry: Arc::new(std::mem::take(&mut integrations.registry)),
        clock: Arc::from(clock),
        store: Arc::from(store),
    };
    let horizon = super::run::horizon(opts.max_runtime, tasks.time_scale(), launch.clock.as_ref());
    let stop = launch.run(loaded, horizon, None, super::run::shutdown_signal()?, None).await?;
    super::run::release(launch.store.as_ref(), &opts.name).await;
    let checkpoints = Some(opts.checkpoint_dir.as_path());
    super::run::finish(stop, opts.output, checkpoints, local_dir, &launch, integrations, tasks.time_scale())
        .await
}
