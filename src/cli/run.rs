//! `recflow run`: start an execution of a workflow and drive it to its end.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;
use tracing::info;

use super::common::{
    ExitCode, OutputFormat, check_name, check_runnable, clock, load_definition, machine_name, report, usage,
};
use super::integrations::{Launch, TaskOptions, integrations};
use super::summary;
use crate::checkpoint::{CheckpointStore, Durability, FileStore, NullStore};
use crate::engine::Driver;

pub struct RunOptions {
    pub file: PathBuf,
    pub input: Option<String>,
    pub input_file: Option<PathBuf>,
    pub name: Option<String>,
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
    let user_input = read_input(&opts)?;
    let state_machine = machine_name(&opts.file);
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(&state_machine),
    };
    check_name(&name)?;
    let checkpoints = (!opts.no_checkpoint).then_some(opts.checkpoint_dir.as_path());
    let integrations = integrations(&opts.tasks, &machine, &source, checkpoints).await?;
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
    let mut store: Box<dyn CheckpointStore> = if opts.no_checkpoint {
        Box::new(NullStore)
    } else {
        let durability = if opts.no_fsync { Durability::NoFsync } else { Durability::Fsync };
        Box::new(FileStore::create(&opts.checkpoint_dir, &name, durability)?)
    };
    if let Some(dir) = checkpoints {
        Launch { local: opts.tasks.local, time_scale: opts.tasks.time_scale() }.record(dir, &name);
    }
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
        store.as_mut(),
        &name,
        &state_machine,
        input,
        fastrand::u64(..),
    )?
    .with_limits(opts.limits);
    let driver = if opts.output == OutputFormat::Human && std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        let start = driver.execution().start_time;
        driver.observe(super::progress::observer(start))
    } else {
        driver
    };
    let resumable = checkpoints.map(|dir| (name.as_str(), dir));
    let execution = match until_interrupted(driver.run(), resumable).await? {
        Some(execution) => execution,
        None => return Ok(ExitCode::Usage),
    };
    drop(store);
    finish(&execution, opts.output, checkpoints, &definition, integrations).await
}

fn read_input(opts: &RunOptions) -> Result<Value> {
    let (text, source) = match (&opts.input, &opts.input_file) {
        (Some(_), Some(_)) => return Err(usage("give --input or --input-file, not both")),
        (Some(text), None) => (text.clone(), "--input".to_string()),
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
pub(super) async fn until_interrupted(
    run: impl std::future::Future<Output = Result<crate::engine::Execution, crate::checkpoint::CheckpointError>>,
    resumable: Option<(&str, &std::path::Path)>,
) -> Result<Option<crate::engine::Execution>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        execution = run => Ok(Some(execution?)),
        _ = tokio::signal::ctrl_c() => Ok(interrupted(resumable)),
        _ = term.recv() => Ok(interrupted(resumable)),
    }
}

fn interrupted(resumable: Option<(&str, &std::path::Path)>) -> Option<crate::engine::Execution> {
    match resumable {
        Some((name, dir)) => eprintln!(
            "\nrecflow: interrupted; the execution is checkpointed: continue it with `recflow resume {name} --checkpoint-dir {}`",
            dir.display()
        ),
        None => eprintln!("\nrecflow: interrupted; with --no-checkpoint there is nothing to resume"),
    }
    None
}

/// Prints the outcome and, for people, the summary; stops the embedded emulator.
pub(super) async fn finish(
    execution: &crate::engine::Execution,
    output: OutputFormat,
    checkpoints: Option<&std::path::Path>,
    definition: &Value,
    integrations: super::integrations::Integrations,
) -> Result<ExitCode> {
    let code = report(execution, output)?;
    if let (OutputFormat::Human, Some(dir)) = (output, checkpoints) {
        summary::print(dir, execution, definition, integrations.clients.as_ref()).await;
    }
    if let Some(local) = integrations.local {
        local.emulator.shutdown().await;
    }
    Ok(code)
}
