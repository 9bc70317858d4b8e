//! `recflow daemon`: runs the workflows of a `recflow.toml` on their schedules and on request
//! through an HTTP API and status page, resuming at start whatever an earlier process left
//! unfinished. SIGTERM or Ctrl-C: nothing new starts, calls already made answer and are
//! checkpointed, and the process exits 0; a second signal exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;
use tracing::info;

use super::args::{Store, Tasks};
use super::common::{ExitCode, check_runnable, clock, load_definition, open_store, s3_checkpoints, usage};
use super::config::Config;
use super::integrations::{LocalRun, integrations_sharing, start_local};
use crate::checkpoint::{Durability, ExecutionStore, FileStore};
use crate::daemon::http::{ApiOptions, DEFAULT_MAX_BODY_BYTES, router};
use crate::daemon::{Daemon, EventQueue, Workflow};
use crate::engine::Launch;
use crate::engine::execution::Limits;

/// `recflow daemon`'s arguments.
#[derive(clap::Args)]
#[command(after_help = "The HTTP API (http://127.0.0.1:7400 by default):
  GET  /                          status page: workflows, next runs, recent executions
  GET  /ui/executions/NAME        one execution: its graph, jobs and history
  GET  /healthz, GET /metrics     health (never needs the token), Prometheus metrics
  GET  /executions, GET /executions/NAME     ListExecutions' items; DescribeExecution and history
  POST /workflows/ID/executions   {\"input\": {...}, \"name\": \"...\"} (both optional; the input
                                  replaces the file's), or an EventBridge event as an API
                                  destination posts it: the event is the input, its id names the
                                  execution, and the same event again starts nothing new
  POST /executions/NAME/stop      {\"error\": \"...\", \"cause\": \"...\"} (optional): ends it ABORTED
With a token, send `Authorization: Bearer TOKEN`; a browser asks for a user (any) and password
(the token). With --mock, all executions share the script: the n-th call of a state, whichever
execution makes it, gets the n-th answer.

Examples:
  recflow daemon --config recflow.toml
  recflow daemon --config recflow.toml --listen 0.0.0.0:7400 --token-file /run/secrets/recflow-token
  curl -X POST localhost:7400/workflows/nightly/executions -d '{\"input\": {\"topN\": 5}}'
  curl localhost:7400/executions/nightly-20261130T010000Z
  curl -X POST localhost:7400/executions/nightly-20261130T010000Z/stop -d '{\"cause\": \"bad data\"}'")]
pub struct DaemonArgs {
    /// The recflow.toml whose workflows to run: each on its `schedules` (in its `tz`), with its
    /// `overlap` (forbid, queue, allow), `catch_up` (skip, once) and `jitter`.
    #[arg(long, value_name = "TOML", env = "RECFLOW_CONFIG")]
    pub config: PathBuf,
    /// Where the HTTP API and status page listen: HOST:PORT (localhost:7400, 0.0.0.0:7400, port
    /// 0 for a free one). Anything but loopback needs a token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7400", env = "RECFLOW_LISTEN")]
    pub listen: String,
    /// The API's bearer token, in a file (its first line). RECFLOW_API_TOKEN gives it directly.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    #[arg(long, env = "RECFLOW_API_TOKEN", hide_env_values = true, hide = true)]
    pub token: Option<String>,
    /// The largest request body the API takes, in bytes (Step Functions' input limit).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub store: Store,
    #[command(flatten)]
    pub tasks: Tasks,
}

pub async fn daemon(args: DaemonArgs) -> Result<ExitCode> {
    super::signals::install()?;
    let config = Config::load(&args.config)?;
    let token = token(&args)?;
    let listen: SocketAddr = tokio::net::lookup_host(&args.listen)
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| {
            usage(format!(
                "--listen {}: not an address such as 127.0.0.1:7400 or localhost:7400",
                args.listen
            ))
        })?;
    if token.is_none() && !listen.ip().is_loopback() {
        return Err(usage(format!(
            "--listen {}: an API off loopback needs a token (RECFLOW_API_TOKEN or --token-file), or anyone who reaches the port could start executions",
            args.listen
        )));
    }
    refuse_missing_aws(&args, &config).await?;
    // Each execution the daemon drives holds its checkpoint's lock open.
    crate::open_files::raise_soft_limit();
    let time_scale = time_scale(&args, &config)?;
    let any_local =
        args.tasks.mock.is_none() && (args.tasks.local || config.workflows.values().any(|w| w.local));
    let local = if any_local { Some(start_local(&args.store.data_dir, time_scale).await?) } else { None };
    let clock: Arc<dyn crate::engine::Clock> = Arc::from(clock(time_scale, None)?);
    let mut stores: Vec<(PathBuf, Arc<dyn ExecutionStore>)> = Vec::new();
    let mut workflows = Vec::new();
    for wf in config.workflows.values() {
        let source = wf.definition.display().to_string();
        let (machine, definition) = load_definition(&wf.definition)?;
        check_runnable(&machine, &source)?;
        let dir = wf.checkpoint_dir.clone().unwrap_or_else(|| args.store.checkpoint_dir());
        let store = match stores.iter().find(|(d, _)| *d == dir) {
            Some((_, store)) => Arc::clone(store),
            None => {
                let durability = if args.tasks.no_fsync { Durability::NoFsync } else { Durability::Fsync };
                // Many executions commit at once: a folder's commits share flushes.
                super::common::check_checkpoint_dir(&dir)?;
                let store: Arc<dyn ExecutionStore> = match s3_checkpoints(&dir) {
                    None => Arc::new(FileStore::new(&dir, durability).with_group_commit()?),
                    Some(_) => Arc::from(open_store(&dir, durability).await?),
                };
                stores.push((dir.clone(), Arc::clone(&store)));
                store
            }
        };
        let mut tasks = args.tasks.options(&args.store);
        tasks.local = tasks.mock.is_none() && (tasks.local || wf.local);
        tasks.time_scale = Some(time_scale);
        tasks.events_bus = tasks.events_bus.or_else(|| wf.events_bus.clone());
        let local_dir = Some(dir.as_path()).filter(|d| s3_checkpoints(d).is_none());
        let mut integrations = integrations_sharing(&tasks, &machine, &source, local_dir, local.as_ref())
            .await
            .with_context(|| format!("workflow '{}'", wf.name))?;
        let defaults = match (&local, tasks.local) {
            (Some(LocalRun { demo, .. }), true) => demo.input().as_object().cloned().unwrap_or_default(),
            _ => Default::default(),
        };
        workflows.push(Workflow {
            name: wf.name.clone(),
            launch: Launch {
                machine: Arc::new(machine),
                definition: Arc::new(definition),
                registry: Arc::new(std::mem::take(&mut integrations.registry)),
                clock: Arc::clone(&clock),
                store,
            },
            input: input(wf)?,
            defaults,
            schedules: wf.schedules.clone(),
            tz: wf.tz,
            overlap: wf.overlap,
            catch_up: wf.catch_up,
            jitter: wf.jitter,
            limits: Limits::default(),
        });
    }
    let state_file = args.store.data_dir.join("daemon-schedules.json");
    std::fs::create_dir_all(&args.store.data_dir)
        .map_err(|e| usage(format!("{}: {e}", args.store.data_dir.display())))?;
    let daemon = Daemon::new(workflows, clock, Some(state_file)).map_err(|e| usage(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| usage(format!("--listen {}: {e}", args.listen)))?;
    let address = listener.local_addr()?;
    let resumed = daemon.start().await?;
    for wf in config.workflows.values() {
        if let Some(queue) = &wf.events_queue {
            let local =
                local.as_ref().filter(|_| args.tasks.mock.is_none() && (args.tasks.local || wf.local));
            daemon.consume(event_queue(wf, queue, local, &args.store.data_dir).await?);
        }
    }
    info!(
        workflows = daemon.workflows().len(),
        resumed,
        api = %format!("http://{address}/"),
        time_scale,
        "daemon started"
    );
    let (workflows, all) = (daemon.workflows().len(), address.ip().is_unspecified());
    eprintln!(
        "recflow daemon: {workflows} workflow{}, {resumed} resumed; status page and API on http://{address}/{}",
        if workflows == 1 { "" } else { "s" },
        if all { " (on every interface of this host)" } else { "" }
    );
    let api = router(Arc::clone(&daemon), ApiOptions { token, max_body_bytes: args.max_body_bytes });
    let server = {
        let daemon = Arc::clone(&daemon);
        tokio::spawn(async move {
            axum::serve(listener, api)
                .with_graceful_shutdown(async move { daemon.shutting_down().await })
                .await
        })
    };
    super::run::shutdown_signal()?.await;
    info!("shutting down: no new executions; running ones finish their calls and are checkpointed");
    daemon.shutdown();
    daemon.stopped().await;
    server.await.context("the HTTP server")?.context("the HTTP server")?;
    if let Some(local) = local {
        local.emulator.shutdown().await;
    }
    eprintln!("recflow daemon: stopped; every execution is checkpointed");
    Ok(ExitCode::Succeeded)
}

/// The SQS queue a workflow's `events_queue` names: a URL as it is, or a queue name looked up
/// (on the embedded emulator, created when missing, so that its EventBridge rules can target it).
async fn event_queue(
    wf: &super::config::Workflow,
    queue: &str,
    local: Option<&LocalRun>,
    data_dir: &std::path::Path,
) -> Result<EventQueue> {
    let client = match local {
        Some(local) => local.clients.sqs.clone(),
        None => {
            crate::tasks::aws::Clients::from_environment()
                .await
                .map_err(|e| usage(format!("workflow '{}': events_queue {queue}: {e}", wf.name)))?
                .sqs
        }
    };
    let failed = |e: &(dyn std::error::Error + 'static)| {
        usage(format!("workflow '{}': events_queue {queue}: {}", wf.name, crate::error_chain::error_chain(e)))
    };
    let queue_url = if queue.starts_with("https://") || queue.starts_with("http://") {
        queue.to_string()
    } else if local.is_some() {
        let created = client.create_queue().queue_name(queue).send().await.map_err(|e| failed(&e))?;
        created.queue_url().unwrap_or_default().to_string()
    } else {
        let found = client.get_queue_url().queue_name(queue).send().await.map_err(|e| failed(&e))?;
        found.queue_url().unwrap_or_default().to_string()
    };
    Ok(EventQueue { client, queue_url, workflow: wf.name.clone(), poison_dir: data_dir.join("poison") })
}

/// Workflows whose tasks call AWS need its configuration (a region at least): checked before the
/// embedded emulator of the `local` ones takes its time.
async fn refuse_missing_aws(args: &DaemonArgs, config: &Config) -> Result<()> {
    if args.tasks.mock.is_some() || args.tasks.local {
        return Ok(());
    }
    for wf in config.workflows.values().filter(|w| !w.local) {
        let (machine, _) = load_definition(&wf.definition)?;
        if !machine.task_resources().is_empty() {
            crate::tasks::aws::Clients::from_environment().await.map_err(|e| {
                usage(format!(
                    "workflow '{}' calls AWS (it is not `local = true` and there is no --mock): {e}",
                    wf.name
                ))
            })?;
            return Ok(());
        }
    }
    Ok(())
}

/// The token from `--token-file` (its first line) or RECFLOW_API_TOKEN; an empty one is refused.
fn token(args: &DaemonArgs) -> Result<Option<String>> {
    let token = match (&args.token_file, &args.token) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--token-file {}: {e}", path.display())))?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
        (None, token) => token.clone(),
    };
    if token.as_deref() == Some("") {
        return Err(usage("the API token is empty (RECFLOW_API_TOKEN or --token-file)"));
    }
    Ok(token)
}

/// One clock serves every workflow: `--time-scale`, else the scale the workflows agree on,
/// else real time.
fn time_scale(args: &DaemonArgs, config: &Config) -> Result<f64> {
    if let Some(scale) = args.tasks.time_scale {
        return Ok(scale);
    }
    let mut scales: Vec<(f64, &str)> =
        config.workflows.values().filter_map(|w| w.time_scale.map(|t| (t, w.name.as_str()))).collect();
    scales.dedup_by(|a, b| a.0 == b.0);
    match scales.as_slice() {
        [] => Ok(1.0),
        [(scale, _)] => Ok(*scale),
        [(a, first), (b, second), ..] => Err(usage(format!(
            "{}: workflows '{first}' and '{second}' ask for time scales {a} and {b}; a daemon runs one clock: give --time-scale",
            config.path.display()
        ))),
    }
}

fn input(wf: &super::config::Workflow) -> Result<Value> {
    if let Some(input) = &wf.input {
        return Ok(input.clone());
    }
    match &wf.input_file {
        None => Ok(Value::Object(Default::default())),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| usage(format!("{}: the input is not valid JSON: {e}", path.display())))
        }
    }
}
