//! `recflow run`: start an execution of a workflow and drive it to its end.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;
use tracing::info;

use super::args::{Store, Tasks};
use super::common::{
    ExitCode, OutputFormat, check_name, check_runnable, clock, load_definition, machine_name, open_store,
    report, s3_checkpoints, usage,
};
use super::integrations::{LaunchRecord, TaskOptions, integrations};
use super::summary;
use crate::checkpoint::{CheckpointError, Durability, ExecutionStore, NullStore};
use crate::engine::{Launch, Stop};

/// `recflow run`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The ASL definition (JSON), or with --config a workflow's name in that file.
    pub file: PathBuf,
    /// A recflow.toml naming workflows (definition, input, schedules, checkpoint location,
    /// policies): FILE is then a workflow's name. Flags and RECFLOW_* variables override it.
    #[arg(long, value_name = "TOML", env = "RECFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Execution input as JSON text (default {}); RECFLOW_INPUT is how ECS container overrides
    /// and EventBridge input transformers pass it.
    #[arg(long, value_name = "JSON", env = "RECFLOW_INPUT")]
    pub input: Option<String>,
    /// Read the execution input from a file (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Execution name (default: <workflow>-<UTC time>-<random>).
    #[arg(long)]
    pub name: Option<String>,
    /// For a container a scheduler starts: continue the oldest unfinished execution of this
    /// workflow in the checkpoint folder (with --name: that one) and start a new one only when
    /// there is none. A second process on the same execution is refused, naming the holder.
    #[arg(long, conflicts_with = "no_checkpoint")]
    pub resume_or_start: bool,
    /// Stop (exit 0, everything checkpointed) when nothing would be due before this much
    /// wall time has passed: the execution sits in a Wait, a retry delay or a job's next poll
    /// past it. Prints when to start again. Examples: 10m, 90s, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_runtime: Option<std::time::Duration>,
    #[command(flatten)]
    pub store: Store,
    /// Keep the execution in memory only: no checkpoint, no history, nothing to resume. The
    /// tasks still run (with --local on the emulator; without it, on AWS): pair it with
    /// --mock for a dry run.
    #[arg(long)]
    pub no_checkpoint: bool,
    #[command(flatten)]
    pub tasks: Tasks,
    /// The largest state input or output, in bytes of JSON; past it the execution fails with
    /// States.DataLimitExceeded (Step Functions' limit is 262144, 256 KiB).
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    pub max_payload_bytes: u64,
    /// The most history events an execution may write before it fails (Step Functions stops
    /// standard workflows at 25000); it bounds a runaway loop.
    #[arg(long, value_name = "N", default_value_t = 25_000)]
    pub max_history_events: u64,
    /// The most Map iterations that run at once, whatever a Map's MaxConcurrency says (0
    /// there means no bound of its own); Step Functions runs at most 40 per inline Map.
    #[arg(long, value_name = "N", default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrency: u64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

impl RunArgs {
    /// The checked options of a run: a `--config` file's workflow (definition, input,
    /// checkpoint location, policies) fills what flags and `RECFLOW_*` variables left open.
    pub fn into_options(self) -> Result<RunOptions> {
        let mut state_machine = None;
        let RunArgs {
            mut file,
            config,
            mut input,
            mut input_file,
            name,
            mut resume_or_start,
            mut max_runtime,
            mut store,
            no_checkpoint,
            mut tasks,
            max_payload_bytes,
            max_history_events,
            max_concurrency,
            output,
        } = self;
        if let Some(config) = config {
            let config = super::config::Config::load(&config)?;
            let workflow = config.workflow(&file.to_string_lossy())?.clone();
            // The workflow's name, as `recflow daemon` names it: each finds the other's
            // unfinished executions.
            state_machine = Some(workflow.name);
            file = workflow.definition;
            if input.is_none() && input_file.is_none() {
                input = workflow.input.map(|v| v.to_string());
                input_file = workflow.input_file;
            }
            store.checkpoint_dir = store.checkpoint_dir.or(workflow.checkpoint_dir);
            tasks.events_bus = tasks.events_bus.or(workflow.events_bus);
            tasks.time_scale = tasks.time_scale.or(workflow.time_scale);
            tasks.local = tasks.local || (workflow.local && tasks.mock.is_none());
            max_runtime = max_runtime.or(workflow.max_runtime);
            resume_or_start = resume_or_start || workflow.resume_or_start;
        }
        Ok(RunOptions {
            state_machine,
            file,
            input,
            input_file,
            name,
            resume_or_start,
            max_runtime,
            checkpoint_dir: store.checkpoint_dir(),
            no_checkpoint,
            no_fsync: tasks.no_fsync,
            tasks: tasks.options(&store),
            limits: crate::engine::execution::Limits {
                max_payload_bytes,
                max_history_events,
                max_concurrency,
            },
            output,
        })
    }
}

/// A run's checked options.
pub struct RunOptions {
    pub file: PathBuf,
    /// The state machine's name (default: the definition file's name up to its first dot).
    pub state_machine: Option<String>,
    pub input: Option<String>,
    pub input_file: Option<PathBuf>,
    pub name: Option<String>,
    /// Continue an unfinished execution of the workflow, if there is one.
    pub resume_or_start: bool,
    /// Stop, checkpointed, when nothing is due within this much wall time.
    pub max_runtime: Option<std::time::Duration>,
    pub checkpoint_dir: PathBuf,
    pub no_checkpoint: bool,
    pub no_fsync: bool,
    pub tasks: TaskOptions,
    pub limits: crate::engine::execution::Limits,
    pub output: OutputFormat,
}

pub async fn run(opts: RunOptions) -> Result<ExitCode> {
    super::signals::install()?;
    super::common::check_checkpoint_dir(&opts.checkpoint_dir)?;
    let source = opts.file.display().to_string();
    let (machine, definition) = load_definition(&opts.file)?;
    check_runnable(&machine, &source)?;
    let state_machine = opts.state_machine.clone().unwrap_or_else(|| machine_name(&opts.file));
    if opts.resume_or_start
        && let Some(name) = unfinished(&opts.checkpoint_dir, &state_machine, opts.name.as_deref()).await?
    {
        info!(execution = %name, workflow = %state_machine, "resuming the unfinished execution (--resume-or-start); its input is the one it started with");
        return super::resume::resume(super::resume::ResumeOptions {
            name,
            checkpoint_dir: opts.checkpoint_dir,
            no_fsync: opts.no_fsync,
            tasks: opts.tasks,
            max_runtime: opts.max_runtime,
            output: opts.output,
        })
        .await;
    }
    let user_input = read_input(&opts)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(&state_machine),
    };
    check_name(&name)?;
    let checkpoints = (!opts.no_checkpoint).then_some(opts.checkpoint_dir.as_path());
    // Job durations, launch.json and the summary live beside file checkpoints only.
    let local_dir = checkpoints.filter(|d| s3_checkpoints(d).is_none());
    // Before the emulator starts (and resumes the jobs it holds): a name in use is refused now.
    if let Some(dir) = local_dir
        && dir.join(&name).join("checkpoint.json").exists()
    {
        return Err(CheckpointError::Exists { name, dir: dir.to_path_buf() }.into());
    }
    let integrations = integrations(&opts.tasks, &machine, &source, local_dir).await?;
    // After the integrations: a sped-up clock must not count the emulator's setup, or the
    // execution would start in the future.
    let clock = clock(opts.tasks.time_scale(), None)?;
    // A local run's input is the demo's ARNs and paths; the user's fields override them.
    let input = match (&integrations.local, user_input) {
        (Some(local), Value::Object(user)) => {
            let mut merged = local.demo.input();
            merged.as_object_mut().expect("the demo input is an object").extend(user);
            merged
        }
        // The demo's ARNs and paths cannot be merged into a string or a list: refused rather
        // than silently dropped.
        (Some(_), other) => {
            return Err(usage(format!(
                "--local puts the demo's ARNs and paths into the input, which must then be a JSON object (fields \
                 given override the demo's), not {}",
                crate::text::clipped(&other.to_string(), 60)
            )));
        }
        (_, input) => input,
    };
    let store: Arc<dyn ExecutionStore> = if opts.no_checkpoint {
        Arc::new(NullStore)
    } else {
        let durability = if opts.no_fsync { Durability::NoFsync } else { Durability::Fsync };
        Arc::from(open_store(&opts.checkpoint_dir, durability).await?)
    };
    let checkpoint_text = match checkpoints {
        None => "none (--no-checkpoint)".to_string(),
        Some(dir) => dir.join(&name).display().to_string(),
    };
    info!(execution = %name, checkpoints = %checkpoint_text, "starting");
    let mut integrations = integrations;
    let launch = Launch {
        machine: Arc::new(machine),
        definition: Arc::new(definition),
        registry: Arc::new(std::mem::take(&mut integrations.registry)),
        clock: Arc::from(clock),
        store,
    };
    let stored = launch.create(&name, &state_machine, input, fastrand::u64(..), opts.limits).await?;
    // Beside the checkpoint, which the first commit has just created.
    if let Some(dir) = local_dir {
        // Absolute, so that a resume from another folder finds it.
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let record = LaunchRecord {
            local: opts.tasks.local,
            time_scale: opts.tasks.time_scale(),
            mock: opts.tasks.mock.as_ref().map(absolute),
            mock_call_log: opts.tasks.mock_call_log.as_ref().map(absolute),
        };
        record.record(dir, &name);
    }
    if let Some(events) = &integrations.status_events {
        events.publish(&stored.execution).await;
    }
    let observer = (opts.output == OutputFormat::Human
        && std::io::IsTerminal::is_terminal(&std::io::stderr()))
    .then(|| super::progress::observer(stored.execution.start_time));
    let horizon = horizon(opts.max_runtime, opts.tasks.time_scale(), launch.clock.as_ref());
    let stop = launch.run(stored, horizon, observer, shutdown_signal()?, None).await?;
    release(launch.store.as_ref(), &name).await;
    finish(stop, opts.output, checkpoints, local_dir, &launch, integrations, opts.tasks.time_scale()).await
}

/// Lets the next process take the execution at once; a failure only delays it (until the
/// claim runs out), so it is logged, not fatal.
pub(super) async fn release(store: &dyn ExecutionStore, name: &str) {
    if let Err(e) = store.release(name).await {
        tracing::warn!(execution = %name, error = %e, "could not release the execution; the next process may wait for the claim to run out");
    }
}

/// The oldest unfinished execution of `state_machine` in `dir` (only `name`, when given).
async fn unfinished(
    dir: &std::path::Path,
    state_machine: &str,
    name: Option<&str>,
) -> Result<Option<String>> {
    for execution in open_store(dir, Durability::NoFsync).await?.list().await? {
        // An unreadable checkpoint is not this run's business: `status` reports it.
        let Ok(execution) = execution else { continue };
        if execution.status == crate::engine::Status::Running
            && execution.state_machine == state_machine
            && name.is_none_or(|n| n == execution.name)
        {
            return Ok(Some(execution.name));
        }
    }
    Ok(None)
}

/// With `--max-runtime`, the instant of the execution's clock past which a run parks: that much
/// wall time from now, the clock running `time_scale` times faster.
pub(super) fn horizon(
    max_runtime: Option<std::time::Duration>,
    time_scale: f64,
    clock: &dyn crate::engine::Clock,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let wall = max_runtime?;
    let span = chrono::Duration::from_std(wall.mul_f64(time_scale)).unwrap_or(chrono::Duration::MAX);
    Some(clock.now().checked_add_signed(span).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC))
}

fn read_input(opts: &RunOptions) -> Result<Value> {
    let (text, source) = match (&opts.input, &opts.input_file) {
        (Some(_), Some(_)) => {
            return Err(usage("give --input (or RECFLOW_INPUT) or --input-file, not both"));
        }
        (Some(text), None) => {
            // clap reads RECFLOW_INPUT into --input: name the one the user wrote.
            let flag = std::env::args().any(|a| a == "--input" || a.starts_with("--input="));
            let from_env = !flag && std::env::var("RECFLOW_INPUT").is_ok_and(|v| v == *text);
            (text.clone(), if from_env { "RECFLOW_INPUT" } else { "--input" }.to_string())
        }
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| usage(format!("standard input: {e}")))?;
            (text, "standard input".to_string())
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
            (text, path.display().to_string())
        }
        (None, None) => return Ok(Value::Object(Default::default())),
    };
    serde_json::from_str(&text).map_err(|e| usage(format!("{source}: the input is not valid JSON: {e}")))
}

fn default_name(state_machine: &str) -> String {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut name = format!("{state_machine}-{stamp}-{:04x}", fastrand::u16(..));
    name.truncate(80);
    name
}

/// Completes on the first Ctrl-C or SIGTERM: a run then drains (calls already made answer and
/// are checkpointed) and stops. A second signal ends the process at once (exit 130 for SIGINT,
/// 143 for SIGTERM): every
/// commit is atomic, so the checkpoint still holds the last transition.
/// Signals count from the command's start ([`super::signals`]), so one sent before the run
/// began is not lost.
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    super::signals::install()?;
    Ok(async move {
        super::signals::received(1).await;
        tracing::info!(
            "stopping: in-flight calls may finish and are checkpointed; a second signal exits at once"
        );
        tokio::spawn(async move {
            let number = super::signals::received(2).await;
            eprintln!("recflow: second signal: exiting at once");
            // The shell's codes: 128 + the signal's number.
            std::process::exit(128 + number);
        });
    })
}

/// Prints the outcome and, for people, the summary (or, for a parked execution, when to start
/// again); stops the embedded emulator.
pub(super) async fn finish(
    stop: Stop,
    output: OutputFormat,
    checkpoints: Option<&std::path::Path>,
    local_dir: Option<&std::path::Path>,
    launch: &Launch,
    integrations: super::integrations::Integrations,
    time_scale: f64,
) -> Result<ExitCode> {
    let (definition, clock) = (launch.definition.as_ref(), launch.clock.as_ref());
    let code = match &stop {
        Stop::Ended(execution) => {
            if let Some(events) = &integrations.status_events {
                events.publish(execution).await;
            }
            let code = report(execution, output)?;
            if let (OutputFormat::Human, Some(dir)) = (output, local_dir) {
                summary::print(dir, execution, definition, integrations.clients.as_ref()).await;
            }
            code
        }
        Stop::Parked { execution, until } => {
            parked(execution, *until, output, clock, time_scale)?;
            ExitCode::Succeeded
        }
        Stop::Interrupted { name } => {
            match checkpoints {
                Some(dir) => eprintln!(
                    "\nrecflow: interrupted; the execution is checkpointed: continue it with `recflow resume {name} --checkpoint-dir {}`",
                    dir.display()
                ),
                None => eprintln!("\nrecflow: interrupted; with --no-checkpoint there is nothing to resume"),
            }
            ExitCode::Usage
        }
    };
    if let Some(local) = integrations.local {
        local.emulator.shutdown().await;
    }
    Ok(code)
}

/// A parked execution: where it waits, and when (on the execution's clock and in wall time) a
/// new start will find something to do.
fn parked(
    execution: &crate::engine::Execution,
    until: chrono::DateTime<chrono::Utc>,
    output: OutputFormat,
    clock: &dyn crate::engine::Clock,
    time_scale: f64,
) -> Result<()> {
    let ahead = (until - clock.now()).num_milliseconds() as f64 / 1000.0;
    // Sped-up time runs sped up only while a process runs; between starts it is wall time.
    let wait = if time_scale == 1.0 {
        format!("start again at or after {}", crate::engine::execution::timestamp(until))
    } else {
        format!(
            "a start runs at --time-scale {time_scale} and waits about {:.0} s of wall time for it",
            (ahead / time_scale).max(0.0).ceil()
        )
    };
    let states: Vec<&str> = execution.cursors().map(|(_, at)| at.state.as_str()).collect();
    match output {
        OutputFormat::Json => {
            let mut described = execution.describe();
            described["nextDue"] = crate::engine::execution::timestamp(until).into();
            described["parked"] = wait.into();
            println!("{}", serde_json::to_string_pretty(&described)?);
        }
        OutputFormat::Human => {
            println!(
                "execution {} RUNNING, parked at {}: nothing is due before {} (--max-runtime); {wait}",
                execution.name,
                states.join(", "),
                crate::engine::execution::timestamp(until)
            );
            println!(
                "continue it by running the same command again (--resume-or-start) or with `recflow resume {}`",
                execution.name
            );
        }
    }
    Ok(())
}
