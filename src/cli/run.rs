//! `recflow run`: start an execution of a workflow and drive it to its end.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;
use tracing::info;

use super::common::{
    ExitCode, OutputFormat, check_name, check_runnable, clock, load_definition, machine_name, open_store,
    report, s3_checkpoints, usage,
};
use super::integrations::{Launch, TaskOptions, integrations};
use super::summary;
use crate::checkpoint::{Durability, ExecutionStore, NullStore};
use crate::engine::{Driver, Stop};

pub struct RunOptions {
    pub file: PathBuf,
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
    let source = opts.file.display().to_string();
    let (machine, definition) = load_definition(&opts.file)?;
    check_runnable(&machine, &source)?;
    let state_machine = machine_name(&opts.file);
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
        (_, input) => input,
    };
    let store: Box<dyn ExecutionStore> = if opts.no_checkpoint {
        Box::new(NullStore)
    } else {
        let durability = if opts.no_fsync { Durability::NoFsync } else { Durability::Fsync };
        open_store(&opts.checkpoint_dir, durability).await?
    };
    let checkpoint_text = match checkpoints {
        None => "none (--no-checkpoint)".to_string(),
        Some(dir) => dir.join(&name).display().to_string(),
    };
    info!(execution = %name, checkpoints = %checkpoint_text, "starting");
    let driver = Driver::start(
        &machine,
        &definition,
        &integrations.registry,
        clock.as_ref(),
        store.as_ref(),
        &name,
        &state_machine,
        input,
        fastrand::u64(..),
    )
    .await?
    .with_limits(opts.limits);
    // Beside the checkpoint, which the first commit has just created.
    if let Some(dir) = local_dir {
        Launch { local: opts.tasks.local, time_scale: opts.tasks.time_scale() }.record(dir, &name);
    }
    if let Some(events) = &integrations.status_events {
        events.publish(driver.execution()).await;
    }
    let driver = if opts.output == OutputFormat::Human && std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        let start = driver.execution().start_time;
        driver.observe(super::progress::observer(start))
    } else {
        driver
    };
    let resumable = checkpoints.map(|dir| (name.as_str(), dir));
    let drive = drive(driver, opts.max_runtime, opts.tasks.time_scale(), clock.as_ref());
    let Some(stop) = until_interrupted(drive, resumable).await? else {
        return Ok(ExitCode::Usage);
    };
    release(store.as_ref(), &name).await;
    finish(stop, opts.output, local_dir, &definition, integrations, clock.as_ref(), opts.tasks.time_scale())
        .await
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

/// Runs the driver to the end, or (with `--max-runtime`) until nothing is due within that much
/// wall time: the execution's clock runs `time_scale` times faster.
pub(super) async fn drive(
    driver: Driver<'_>,
    max_runtime: Option<std::time::Duration>,
    time_scale: f64,
    clock: &dyn crate::engine::Clock,
) -> Result<Stop, crate::checkpoint::CheckpointError> {
    match max_runtime {
        None => driver.run().await.map(Stop::Ended),
        Some(wall) => {
            let span = chrono::Duration::from_std(wall.mul_f64(time_scale)).unwrap_or(chrono::Duration::MAX);
            let horizon =
                clock.now().checked_add_signed(span).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            driver.run_within(horizon).await
        }
    }
}

fn read_input(opts: &RunOptions) -> Result<Value> {
    let (text, source) = match (&opts.input, &opts.input_file) {
        (Some(_), Some(_)) => {
            return Err(usage("give --input (or RECFLOW_INPUT) or --input-file, not both"));
        }
        (Some(text), None) => (text.clone(), "--input".to_string()),
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

/// Runs the driver until the execution ends, or until Ctrl-C or SIGTERM: then it says how to
/// resume (the checkpoint holds every committed transition) and gives None.
pub(super) async fn until_interrupted<T>(
    run: impl std::future::Future<Output = Result<T, crate::checkpoint::CheckpointError>>,
    resumable: Option<(&str, &std::path::Path)>,
) -> Result<Option<T>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        execution = run => Ok(Some(execution?)),
        _ = tokio::signal::ctrl_c() => Ok(interrupted(resumable)),
        _ = term.recv() => Ok(interrupted(resumable)),
    }
}

fn interrupted<T>(resumable: Option<(&str, &std::path::Path)>) -> Option<T> {
    match resumable {
        Some((name, dir)) => eprintln!(
            "\nrecflow: interrupted; the execution is checkpointed: continue it with `recflow resume {name} --checkpoint-dir {}`",
            dir.display()
        ),
        None => eprintln!("\nrecflow: interrupted; with --no-checkpoint there is nothing to resume"),
    }
    None
}

/// Prints the outcome and, for people, the summary (or, for a parked execution, when to start
/// again); stops the embedded emulator.
pub(super) async fn finish(
    stop: Stop,
    output: OutputFormat,
    checkpoints: Option<&std::path::Path>,
    definition: &Value,
    integrations: super::integrations::Integrations,
    clock: &dyn crate::engine::Clock,
    time_scale: f64,
) -> Result<ExitCode> {
    let code = match &stop {
        Stop::Ended(execution) => {
            if let Some(events) = &integrations.status_events {
                events.publish(execution).await;
            }
            let code = report(execution, output)?;
            if let (OutputFormat::Human, Some(dir)) = (output, checkpoints) {
                summary::print(dir, execution, definition, integrations.clients.as_ref()).await;
            }
            code
        }
        Stop::Parked { execution, until } => {
            parked(execution, *until, output, clock, time_scale)?;
            ExitCode::Succeeded
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
                "continue it with `recflow run <workflow> --resume-or-start` or `recflow resume {}`",
                execution.name
            );
        }
    }
    Ok(())
}
