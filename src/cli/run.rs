//! `recflow run`: start an execution of a workflow and drive it to its end.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;
use tracing::info;

use super::common::{
    ExitCode, OutputFormat, check_name, check_runnable, clock, load_definition, machine_name, registry,
    report, usage,
};
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
    pub mock: Option<PathBuf>,
    pub mock_call_log: Option<PathBuf>,
    pub time_scale: f64,
    pub output: OutputFormat,
}

pub async fn run(opts: RunOptions) -> Result<ExitCode> {
    let source = opts.file.display().to_string();
    let (machine, definition) = load_definition(&opts.file)?;
    check_runnable(&machine, &source)?;
    let (registry, _) = registry(opts.mock.as_deref(), opts.mock_call_log.as_deref(), &machine, &source)?;
    let input = read_input(&opts)?;
    let state_machine = machine_name(&opts.file);
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(&state_machine),
    };
    check_name(&name)?;
    let clock = clock(opts.time_scale, None)?;
    let mut store: Box<dyn CheckpointStore> = if opts.no_checkpoint {
        Box::new(NullStore)
    } else {
        let durability = if opts.no_fsync { Durability::NoFsync } else { Durability::Fsync };
        Box::new(FileStore::create(&opts.checkpoint_dir, &name, durability)?)
    };
    let checkpoints = if opts.no_checkpoint {
        "none (dry run)".to_string()
    } else {
        opts.checkpoint_dir.join(&name).display().to_string()
    };
    info!(execution = %name, checkpoints = %checkpoints, "starting");
    let driver = Driver::start(
        &machine,
        &definition,
        &registry,
        clock.as_ref(),
        store.as_mut(),
        &name,
        &state_machine,
        input,
        fastrand::u64(..),
    )?;
    let execution = driver.run().await?;
    report(&execution, opts.output)
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
