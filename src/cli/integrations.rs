//! Which task integrations a `run` or `resume` uses: scripted answers (`--mock`), the embedded
//! emulator (`--local`), or AWS itself (the default).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::common::usage;
use crate::asl::definition::StateMachine;
use crate::engine::task::Registry;
use crate::local::demo::{self, Demo};
use crate::local::emulator::{Emulator, LocalConfig};
use crate::local::seed::SeedOptions;
use crate::tasks::aws::Clients;
use crate::tasks::polling::JobDurations;
use crate::tasks::{ScriptedRunner, aws_registry};

/// The time scale `--local` runs at unless `--time-scale` says otherwise: emulated jobs of
/// minutes pass in a fraction of a second, and the engine's clock (Waits, retry delays, polls)
/// runs at the same speed, so the two agree on how long a job took.
pub const LOCAL_TIME_SCALE: f64 = 600.0;

/// Emulated seconds a local job stays CREATE PENDING, and at least CREATE IN_PROGRESS: a few
/// minutes, as small Personalize jobs take.
const LOCAL_PENDING_SECONDS: f64 = 60.0;
const LOCAL_IN_PROGRESS_SECONDS: f64 = 240.0;

/// How the tasks of a run are answered.
pub struct TaskOptions {
    pub mock: Option<PathBuf>,
    pub mock_call_log: Option<PathBuf>,
    pub local: bool,
    /// recflow's data directory: the emulator lives in `<data_dir>/local`.
    pub data_dir: PathBuf,
    pub time_scale: Option<f64>,
    /// Where execution status events go (`--events-bus`).
    pub events_bus: Option<String>,
}

impl TaskOptions {
    /// The engine's time scale: as given, else [`LOCAL_TIME_SCALE`] for `--local`, else 1.
    pub fn time_scale(&self) -> f64 {
        self.time_scale.unwrap_or(if self.local { LOCAL_TIME_SCALE } else { 1.0 })
    }
}

/// How an execution was started, kept beside its checkpoint (`launch.json`) so that `resume`
/// continues it the same way unless told otherwise: with the same `--mock` answers, against the
/// embedded emulator or AWS, at the same time scale. A sped-up run resumed at real speed would
/// turn minutes into days; a dry run resumed without its answers would call AWS.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LaunchRecord {
    pub local: bool,
    pub time_scale: f64,
    /// The `--mock` file (absolute), for a run answered by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<PathBuf>,
    /// Its `--mock-call-log` (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock_call_log: Option<PathBuf>,
}

impl LaunchRecord {
    const FILE: &'static str = "launch.json";

    /// Records how `name` was started; a failure to write is logged, not fatal (resume then needs
    /// the flags again).
    pub fn record(&self, checkpoint_dir: &Path, name: &str) {
        let path = checkpoint_dir.join(name).join(Self::FILE);
        let text = serde_json::to_string(self).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            tracing::warn!(path = %path.display(), error = %e, "could not record how the execution was started");
        }
    }

    /// How `name` was started, if recorded.
    pub fn read(checkpoint_dir: &Path, name: &str) -> Option<LaunchRecord> {
        let text = std::fs::read_to_string(checkpoint_dir.join(name).join(Self::FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl TaskOptions {
    /// Fills what the command line left open from how the execution was started: its `--mock`
    /// file (unless `--mock` or `--local` is given), `--local` (unless `--mock` is given) and
    /// the time scale.
    pub fn resuming(mut self, launch: Option<&LaunchRecord>) -> TaskOptions {
        if let Some(launch) = launch {
            if self.mock.is_none()
                && !self.local
                && let Some(mock) = &launch.mock
            {
                tracing::info!(mock = %mock.display(), "resuming with the answers the execution was started with (--mock)");
                self.mock = Some(mock.clone());
                self.mock_call_log = self.mock_call_log.take().or_else(|| launch.mock_call_log.clone());
            }
            if self.mock.is_none() && !self.local && launch.local {
                tracing::info!("resuming on the embedded emulator, as the execution was started (--local)");
                self.local = true;
            }
            if self.time_scale.is_none() {
                self.time_scale = Some(launch.time_scale);
            }
        }
        self
    }
}

/// The embedded emulator of a `--local` run, its clients, and the demo resources.
pub struct LocalRun {
    pub emulator: Emulator,
    pub clients: Clients,
    pub demo: Demo,
}

/// What a run needs from its integrations: the registry, the emulator of `--local`, the clients.
pub struct Integrations {
    pub registry: Registry,
    pub local: Option<LocalRun>,
    /// The AWS clients the tasks use (none with `--mock`).
    pub clients: Option<Clients>,
    /// Execution status events (`--events-bus`).
    pub status_events: Option<crate::tasks::status_events::StatusEvents>,
}

/// Builds the registry for a run and refuses, naming each state, a workflow whose Tasks no
/// integration serves. `checkpoint_dir` holds the `.sync` job durations (`job-durations.json`).
pub async fn integrations(
    opts: &TaskOptions,
    machine: &StateMachine,
    source: &str,
    checkpoint_dir: Option<&Path>,
) -> Result<Integrations> {
    integrations_sharing(opts, machine, source, checkpoint_dir, None).await
}

/// [`integrations`], with `--local` served by `shared` (an emulator already started, as the
/// daemon's workflows share one) instead of an emulator of its own.
pub async fn integrations_sharing(
    opts: &TaskOptions,
    machine: &StateMachine,
    source: &str,
    checkpoint_dir: Option<&Path>,
    shared: Option<&LocalRun>,
) -> Result<Integrations> {
    super::common::check_time_scale(opts.time_scale())?;
    let mut local = None;
    let mut aws = None;
    let registry = match &opts.mock {
        Some(path) => {
            if opts.local {
                return Err(usage("give --mock or --local, not both"));
            }
            scripted(path, opts.mock_call_log.as_deref())?
        }
        None if machine.task_resources().is_empty() => Registry::new(),
        None => {
            refuse_missing(
                &machine.task_resources(),
                source,
                |_, resource| crate::tasks::serves(resource),
                "recflow has no integration for it",
            )?;
            let durations = match checkpoint_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
                    let path = dir.join("job-durations.json");
                    Some(Arc::new(Mutex::new(
                        JobDurations::open(&path).map_err(|e| usage(format!("{}: {e}", path.display())))?,
                    )))
                }
                None => None,
            };
            let time_scale = opts.time_scale();
            let clients = if let (true, Some(shared)) = (opts.local, shared) {
                shared.clients.clone()
            } else if opts.local {
                let run = start_local(&opts.data_dir, time_scale).await?;
                let clients = run.clients.clone();
                local = Some(run);
                clients
            } else {
                Clients::from_environment().await.map_err(usage)?
            };
            // A sped-up clock only makes sense against a service sped up as much (the embedded
            // emulator, or `recflow local serve --time-scale N`): job durations read from the
            // service's timestamps are scaled the same way.
            let mut registry = aws_registry(&clients, durations, time_scale);
            crate::tasks::register_recflow_tasks(&mut registry, &clients);
            aws = Some(clients);
            registry
        }
    };
    let tasks = machine.task_resources();
    if let Some(mock) = &opts.mock {
        refuse_unanswered(&tasks, source, mock)?;
    }
    refuse_missing(
        &tasks,
        source,
        |state, resource| registry.find(state, resource).is_some(),
        "give answers for it in the --mock file",
    )?;
    let status_events = match &opts.events_bus {
        None => None,
        Some(bus) => {
            let client = match (&aws, opts.local) {
                (Some(clients), _) => clients.events.clone(),
                (None, true) if shared.is_some() => shared.expect("checked").clients.events.clone(),
                (None, true) => {
                    let run = start_local(&opts.data_dir, opts.time_scale()).await?;
                    let client = run.clients.events.clone();
                    local = Some(run);
                    client
                }
                (None, false) => {
                    Clients::from_environment()
                        .await
                        .map_err(|e| usage(format!("--events-bus {bus}: {e}")))?
                        .events
                }
            };
            Some(crate::tasks::status_events::StatusEvents::new(client, bus.clone()))
        }
    };
    Ok(Integrations { registry, local, clients: aws, status_events })
}

/// Refuses, naming every state, Tasks that `served` says no integration answers. Checked before
/// any AWS client is made, so a workflow that cannot run never touches the network.
fn refuse_missing(
    tasks: &[(&str, &str)],
    source: &str,
    served: impl Fn(&str, &str) -> bool,
    hint: &str,
) -> Result<()> {
    let lines: Vec<String> = tasks
        .iter()
        .filter(|(state, resource)| !served(state, resource))
        .map(|(state, resource)| {
            format!("{source}: States.{state}.Resource: no task integration serves '{resource}'; {hint}")
        })
        .collect();
    if lines.is_empty() { Ok(()) } else { Err(usage(lines.join("\n"))) }
}

/// With `--mock`, every Task state needs answers under its name: a missing one is named with the
/// mock file's keys that name no Task state (a typo is the usual cause).
fn refuse_unanswered(tasks: &[(&str, &str)], source: &str, mock: &Path) -> Result<()> {
    let text = std::fs::read_to_string(mock).map_err(|e| usage(format!("{}: {e}", mock.display())))?;
    let keys: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => return Ok(()), // `scripted` reports a malformed file.
    };
    let stray: Vec<&String> = keys.iter().filter(|k| !tasks.iter().any(|(s, _)| s == k)).collect();
    let lines: Vec<String> = tasks
        .iter()
        .filter(|(state, _)| !keys.iter().any(|k| k == state))
        .map(|(state, _)| {
            let near = stray
                .iter()
                .min_by_key(|k| strsim::levenshtein(k, state))
                .filter(|k| strsim::levenshtein(k, state) <= 3);
            let hint = match near {
                Some(k) => {
                    format!(" (it has answers for '{k}', which is no Task state: did you mean '{state}'?)")
                }
                None => String::new(),
            };
            format!(
                "{source}: States.{state}: the --mock file {} has no answers for this Task state{hint}",
                mock.display()
            )
        })
        .collect();
    if lines.is_empty() { Ok(()) } else { Err(usage(lines.join("\n"))) }
}

fn scripted(path: &Path, call_log: Option<&Path>) -> Result<Registry> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("{}: not valid JSON: {e}", path.display())))?;
    let mut runner =
        ScriptedRunner::from_json(&value).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    if let Some(log) = call_log {
        runner = runner.with_call_log(log).map_err(|e| usage(format!("{}: {e}", log.display())))?;
    }
    let mut registry = Registry::new();
    registry.register("", Arc::new(runner));
    Ok(registry)
}

/// Starts the emulator on free loopback ports over `<data_dir>/local` and prepares the demo.
pub async fn start_local(data_dir: &Path, time_scale: f64) -> Result<LocalRun> {
    let mut config = LocalConfig::new(data_dir.join("local"));
    config.time_scale = time_scale;
    config.pending_seconds = LOCAL_PENDING_SECONDS;
    config.in_progress_seconds = LOCAL_IN_PROGRESS_SECONDS;
    // Ctrl-C or SIGTERM while the demo is prepared comes before any execution exists: say so,
    // and stop the emulator cleanly (its state is saved call by call), rather than die without
    // a word. Signals are counted from the command's start, so none is missed.
    super::signals::install()?;
    let emulator = Emulator::start(&config).await.context("starting the embedded emulator")?;
    let clients = Clients::local(&emulator.endpoints());
    // The dataset group and the solution each pass CREATE PENDING and CREATE IN_PROGRESS.
    let setup = (LOCAL_PENDING_SECONDS + LOCAL_IN_PROGRESS_SECONDS) / time_scale;
    if setup > 5.0 {
        eprintln!(
            "recflow: preparing the demo dataset group and solution takes about {:.0} s at --time-scale {time_scale}",
            2.0 * setup
        );
    }
    let max_wait = std::time::Duration::from_secs_f64(30.0 + 2.0 * setup);
    let seed = SeedOptions::default();
    let prepared = tokio::select! {
        prepared = demo::prepare(&emulator, &clients.personalize, &seed, max_wait) => Some(prepared),
        _ = super::signals::received(1) => None,
    };
    let Some(prepared) = prepared else {
        emulator.shutdown().await;
        anyhow::bail!(
            "interrupted while preparing the local demo: no execution was started, so there is nothing \
             to resume; run the same command again (what was prepared so far is kept)"
        );
    };
    let demo = prepared.context("preparing the demo dataset group")?;
    Ok(LocalRun { emulator, clients, demo })
}
