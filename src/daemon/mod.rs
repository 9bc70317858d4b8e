//! `recflow daemon`: one long-lived process that runs the workflows of a `recflow.toml` on their
//! schedules and on request (its HTTP API), each execution a tokio task driven through the one
//! launch path ([`Launch`]), and every execution left unfinished by an earlier process resumed
//! at start. A Wait is a timer, never a thread: ten thousand waiting executions cost their
//! memory only.
//!
//! Shutdown ([`Daemon::shutdown`]): schedules stop firing, nothing new starts, and every running
//! execution drains (calls already made answer and are checkpointed), so the next daemon
//! continues each from its checkpoint.

pub mod http;
mod metrics;
mod page;
mod queue;
mod scheduler;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::engine::execution::Limits;
use crate::engine::{
    CheckpointError, Clock, Execution, ExecutionStore, HistoryEvent, Launch, Status, Stop, StopRequest,
    Stored,
};
use crate::schedule::Schedule;
pub use metrics::Metrics;
pub use queue::{EventQueue, MAX_RECEIVES};

/// What the daemon does with a scheduled firing while an execution of the same workflow (started
/// by any trigger) is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// Skip the firing and log it (the default: two imports into one dataset fail anyway).
    #[default]
    Forbid,
    /// Start it when the running execution ends, in order.
    Queue,
    /// Start it at once, beside the running one.
    Allow,
}

/// What the daemon does at start with the firings it missed while it was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Skip them (logged with their count).
    #[default]
    Skip,
    /// Start one execution for the latest of them at once.
    Once,
}

/// A workflow the daemon runs: how its executions are launched, and when.
pub struct Workflow {
    /// The name in `recflow.toml`; also the executions' state machine name.
    pub name: String,
    pub launch: Launch,
    /// The input of scheduled executions.
    pub input: Value,
    /// Fields every execution's input gets unless it has its own (the embedded emulator's demo
    /// ARNs with `local = true`).
    pub defaults: Map<String, Value>,
    pub schedules: Vec<Schedule>,
    pub tz: chrono_tz::Tz,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    /// Each scheduled start waits a random part of this first (spreads load; zero: none).
    pub jitter: Duration,
    pub limits: Limits,
}

/// What started an execution (logs, metrics, the status page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A schedule's firing at this instant.
    Schedule(DateTime<Utc>),
    /// `POST /workflows/{id}/executions` with an input.
    Api,
    /// An EventBridge event (by its `id`), posted to the API or read from a queue.
    Event(String),
    /// Found unfinished at start and continued.
    Resumed,
}

impl Trigger {
    fn label(&self) -> &'static str {
        match self {
            Trigger::Schedule(_) => "schedule",
            Trigger::Api => "api",
            Trigger::Event(_) => "event",
            Trigger::Resumed => "resumed",
        }
    }
}

/// Why an execution could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no workflow named '{name}' (the daemon runs: {known})")]
    NoWorkflow { name: String, known: String },
    #[error("an execution named '{0}' already exists")]
    Exists(String),
    #[error("'{0}': an execution name is 1 to 80 letters, digits, '-' or '_'")]
    BadName(String),
    #[error("the daemon is shutting down and starts nothing new")]
    ShuttingDown,
    #[error(transparent)]
    Store(CheckpointError),
}

/// Why an execution could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("no execution named '{0}'")]
    NotFound(String),
    #[error("execution '{name}' is {status}, not running")]
    NotRunning { name: String, status: &'static str },
    #[error("execution '{0}' is running but not in this daemon (another recflow process holds it)")]
    Elsewhere(String),
    #[error("the daemon is shutting down: stop the execution once a daemon runs it again")]
    ShuttingDown,
}

struct Running {
    workflow: String,
    stop: Option<tokio::sync::oneshot::Sender<StopRequest>>,
}

#[derive(Default)]
struct Inner {
    /// Executions this daemon drives (or is creating), by name.
    running: BTreeMap<String, Running>,
    /// Firings held back by `overlap = "queue"`, by workflow, oldest first.
    queued: HashMap<String, VecDeque<DateTime<Utc>>>,
    /// Each workflow's next firing.
    next_run: HashMap<String, DateTime<Utc>>,
}

/// The daemon: its workflows, the executions it drives, and the signal that stops it.
pub struct Daemon {
    workflows: BTreeMap<String, Workflow>,
    clock: Arc<dyn Clock>,
    schedules: scheduler::ScheduleState,
    inner: Mutex<Inner>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    metrics: Metrics,
}

impl Daemon {
    /// A daemon over `workflows`, on `clock`. `state_file` keeps each workflow's last firing
    /// across restarts (for `catch_up`); without it every start counts as the first.
    pub fn new(
        workflows: Vec<Workflow>,
        clock: Arc<dyn Clock>,
        state_file: Option<std::path::PathBuf>,
    ) -> std::io::Result<Arc<Daemon>> {
        let names: Vec<String> = workflows.iter().map(|w| w.name.clone()).collect();
        Ok(Arc::new(Daemon {
            workflows: workflows.into_iter().map(|w| (w.name.clone(), w)).collect(),
            clock,
            schedules: scheduler::ScheduleState::open(state_file)?,
            inner: Mutex::new(Inner::default()),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            metrics: Metrics::new(&names),
        }))
    }

    /// Resumes every unfinished execution of the daemon's workflows found in their stores, then
    /// starts each workflow's schedules. Gives the number resumed. An execution another process
    /// holds is left to it (logged); one of a workflow the daemon does not run is left too.
    pub async fn start(self: &Arc<Self>) -> Result<usize, CheckpointError> {
        let mut resumed = 0;
        for store in self.stores() {
            for listed in store.list().await? {
                let Ok(execution) = listed else { continue };
                if execution.status != Status::Running {
                    continue;
                }
                if !self.workflows.contains_key(&execution.state_machine) {
                    warn!(execution = %execution.name, state_machine = %execution.state_machine, "unfinished execution of a workflow this daemon does not run: left alone");
                    continue;
                }
                if !self.reserve(&execution.state_machine, &execution.name) {
                    continue;
                }
                match store.load(&execution.name).await {
                    Ok(stored) => {
                        info!(execution = %execution.name, "resuming an unfinished execution");
                        self.spawn_run(&execution.state_machine, stored, Trigger::Resumed);
                        resumed += 1;
                    }
                    Err(e) => {
                        self.unreserve(&execution.name);
                        warn!(execution = %execution.name, error = %e, "could not resume");
                    }
                }
            }
        }
        for workflow in self.workflows.values().filter(|w| !w.schedules.is_empty()) {
            let daemon = Arc::clone(self);
            let name = workflow.name.clone();
            self.tracker.spawn(async move { scheduler::run(daemon, name).await });
        }
        Ok(resumed)
    }

    /// Stops taking work: schedules stop, starts are refused, and every running execution
    /// drains and stops, checkpointed. [`Daemon::stopped`] completes when all have.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
    }

    /// Completes once [`Daemon::shutdown`] was called and every execution and schedule stopped.
    pub async fn stopped(&self) {
        self.shutdown.cancelled().await;
        self.tracker.wait().await;
    }

    /// Starts an execution of `workflow` named `name` (default: `<workflow>-<UTC time>-<random>`)
    /// with `input` (objects get the workflow's default fields). Gives the execution as
    /// created. With [`Trigger::Event`], the name defaults to `<workflow>-<event id>`, so an
    /// event delivered twice starts one execution (the second start is `Exists`).
    pub async fn start_execution(
        self: &Arc<Self>,
        workflow: &str,
        name: Option<String>,
        input: Value,
        trigger: Trigger,
    ) -> Result<Execution, StartError> {
        self.workflow(workflow)?;
        let name = name.unwrap_or_else(|| default_name(workflow, &trigger));
        if name.is_empty()
            || name.len() > 80
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StartError::BadName(name));
        }
        if self.shutdown.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        if !self.reserve(workflow, &name) {
            return Err(StartError::Exists(name));
        }
        // A task of its own: a caller that goes away (an HTTP client hanging up) cannot leave
        // the name claimed or the execution created and not driven.
        let daemon = Arc::clone(self);
        let workflow = workflow.to_string();
        let created =
            self.tracker.spawn(async move { daemon.create_reserved(&workflow, name, input, trigger).await });
        created.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Creates and launches an execution whose name [`Daemon::reserve`] has claimed.
    async fn create_reserved(
        self: &Arc<Self>,
        workflow: &str,
        name: String,
        input: Value,
        trigger: Trigger,
    ) -> Result<Execution, StartError> {
        let wf = self.workflow(workflow)?;
        let input = match input {
            Value::Object(mut own) => {
                for (k, v) in &wf.defaults {
                    own.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Value::Object(own)
            }
            other => other,
        };
        match wf.launch.create(&name, workflow, input, fastrand::u64(..), wf.limits).await {
            Ok(stored) => {
                let execution = stored.execution.clone();
                info!(execution = %name, workflow, trigger = trigger.label(), "started");
                self.metrics.started(workflow, trigger.label());
                self.spawn_run(workflow, stored, trigger);
                Ok(execution)
            }
            Err(e) => {
                self.unreserve(&name);
                Err(match e {
                    CheckpointError::Exists { name, .. } => StartError::Exists(name),
                    other => StartError::Store(other),
                })
            }
        }
    }

    /// Asks a running execution to stop (StopExecution): it ends ABORTED with `error` and
    /// `cause` at its next transition, which is at once.
    pub async fn stop_execution(&self, name: &str, error: String, cause: String) -> Result<(), StopError> {
        if self.shutdown.is_cancelled() {
            return Err(StopError::ShuttingDown);
        }
        if let Some(running) = self.inner.lock().expect("daemon lock").running.get_mut(name)
            && let Some(stop) = running.stop.take()
        {
            // A send fails only when the run has just ended: the read below reports it.
            if stop.send(StopRequest { error, cause }).is_ok() {
                return Ok(());
            }
        }
        match self.read(name).await {
            Some((stored, _)) if stored.execution.status == Status::Running => {
                Err(StopError::Elsewhere(name.to_string()))
            }
            Some((stored, _)) => Err(StopError::NotRunning {
                name: name.to_string(),
                status: stored.execution.status.as_str(),
            }),
            None => Err(StopError::NotFound(name.to_string())),
        }
    }

    /// Every execution in the daemon's stores, newest first.
    pub async fn executions(&self) -> Vec<Execution> {
        let mut all = Vec::new();
        for store in self.stores() {
            match store.list().await {
                Ok(listed) => all.extend(listed.into_iter().flatten()),
                Err(e) => warn!(error = %e, "could not list executions"),
            }
        }
        all.sort_by(|a, b| b.start_time.cmp(&a.start_time).then_with(|| a.name.cmp(&b.name)));
        all
    }

    /// One execution and its history, from whichever store has it.
    pub async fn read(&self, name: &str) -> Option<(Stored, Vec<HistoryEvent>)> {
        for store in self.stores() {
            if let Ok(stored) = store.read(name).await {
                let history = store.history(name).await.unwrap_or_default();
                return Some((stored, history));
            }
        }
        None
    }

    /// The workflows, by name.
    pub fn workflows(&self) -> &BTreeMap<String, Workflow> {
        &self.workflows
    }

    /// A workflow's next scheduled firing, once its schedule loop has computed it.
    pub fn next_run(&self, workflow: &str) -> Option<DateTime<Utc>> {
        self.inner.lock().expect("daemon lock").next_run.get(workflow).copied()
    }

    /// Whether this daemon is driving the execution now.
    pub fn is_running(&self, name: &str) -> bool {
        self.inner.lock().expect("daemon lock").running.contains_key(name)
    }

    /// Completes when [`Daemon::shutdown`] is called (to stop the HTTP server with it).
    pub async fn shutting_down(&self) {
        self.shutdown.cancelled().await;
    }

    /// The daemon's clock (the executions' time).
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The daemon's metrics in Prometheus' text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode(&self.workflows, |w| self.next_run(w))
    }

    fn workflow(&self, name: &str) -> Result<&Workflow, StartError> {
        self.workflows.get(name).ok_or_else(|| StartError::NoWorkflow {
            name: name.to_string(),
            known: self.workflows.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The distinct stores of the workflows (workflows sharing a checkpoint folder share one).
    fn stores(&self) -> Vec<Arc<dyn ExecutionStore>> {
        let mut stores: Vec<Arc<dyn ExecutionStore>> = Vec::new();
        for w in self.workflows.values() {
            if !stores.iter().any(|s| Arc::ptr_eq(s, &w.launch.store)) {
                stores.push(Arc::clone(&w.launch.store));
            }
        }
        stores
    }

    /// Claims `name` for this daemon; false if it already drives (or is creating) it.
    fn reserve(&self, workflow: &str, name: &str) -> bool {
        let mut inner = self.inner.lock().expect("daemon lock");
        if inner.running.contains_key(name) {
            return false;
        }
        inner.running.insert(name.to_string(), Running { workflow: workflow.to_string(), stop: None });
        true
    }

    fn unreserve(&self, name: &str) {
        self.inner.lock().expect("daemon lock").running.remove(name);
    }

    /// How many executions of `workflow` this daemon drives now.
    fn running_of(&self, workflow: &str) -> usize {
        self.inner.lock().expect("daemon lock").running.values().filter(|r| r.workflow == workflow).count()
    }

    /// Drives a stored execution as a task of its own until it ends or the daemon shuts down.
    fn spawn_run(self: &Arc<Self>, workflow: &str, stored: Stored, trigger: Trigger) {
        let (stop_sender, stop_receiver) = tokio::sync::oneshot::channel();
        let name = stored.execution.name.clone();
        if let Some(running) = self.inner.lock().expect("daemon lock").running.get_mut(&name) {
            running.stop = Some(stop_sender);
        }
        let daemon = Arc::clone(self);
        let workflow = workflow.to_string();
        // The task's state lives as long as the execution waits: kept small (see Driver::run_until).
        let fut = async move {
            let claim = Claim { daemon: Arc::clone(&daemon), name: name.clone() };
            let wf = &daemon.workflows[&workflow];
            let observer = daemon.metrics.observer(&workflow);
            let shutdown = daemon.shutdown.clone();
            let stop = wf
                .launch
                .run(stored, None, Some(observer), shutdown.cancelled_owned(), Some(stop_receiver))
                .await;
            if let Err(e) = wf.launch.store.release(&name).await {
                warn!(execution = %name, error = %e, "could not release the execution");
            }
            match stop {
                Ok(Stop::Ended(execution)) => {
                    info!(execution = %name, status = execution.status.as_str(), trigger = trigger.label(), "ended");
                    daemon.metrics.ended(&workflow, execution.status.as_str());
                }
                Ok(Stop::Interrupted { .. }) => {
                    info!(execution = %name, "stopped for shutdown; checkpointed")
                }
                Ok(Stop::Parked { .. }) => {}
                Err(e) => {
                    warn!(execution = %name, error = %e, "the execution stopped: its checkpoint could not be written")
                }
            }
            drop(claim);
            daemon.start_queued(&workflow);
        };
        self.tracker.spawn(fut);
    }

    /// With `overlap = "queue"`: starts the oldest held-back firing once nothing of the workflow
    /// runs.
    fn start_queued(self: &Arc<Self>, workflow: &str) {
        if self.shutdown.is_cancelled() {
            return;
        }
        // Decided and claimed under one lock: a firing or another ending at the same instant
        // sees the claimed name running.
        let claimed = {
            let mut inner = self.inner.lock().expect("daemon lock");
            if inner.running.values().any(|r| r.workflow == workflow) {
                return;
            }
            let Some(at) = inner.queued.get_mut(workflow).and_then(VecDeque::pop_front) else { return };
            let name = scheduled_name(workflow, at);
            if inner.running.contains_key(&name) {
                return;
            }
            inner.running.insert(name.clone(), Running { workflow: workflow.to_string(), stop: None });
            (at, name)
        };
        let (at, name) = claimed;
        let daemon = Arc::clone(self);
        let workflow = workflow.to_string();
        self.tracker.spawn(async move {
            let input = daemon.workflows[&workflow].input.clone();
            if let Err(e) = daemon.create_reserved(&workflow, name, input, Trigger::Schedule(at)).await {
                warn!(workflow, error = %e, "could not start the queued firing; the next one in the queue goes");
                daemon.start_queued(&workflow);
            }
        });
    }

    /// A schedule fired for `workflow` at `at`: start, skip or queue by its overlap policy.
    async fn fire(self: &Arc<Self>, workflow: &str, at: DateTime<Utc>) {
        let wf = &self.workflows[workflow];
        let running = self.running_of(workflow);
        let waiting =
            self.inner.lock().expect("daemon lock").queued.get(workflow).is_some_and(|q| !q.is_empty());
        match wf.overlap {
            Overlap::Forbid | Overlap::Allow if running == 0 && !waiting => {
                self.start_scheduled(workflow, at).await
            }
            Overlap::Allow => self.start_scheduled(workflow, at).await,
            Overlap::Forbid => {
                info!(workflow, firing = %crate::engine::execution::timestamp(at), running, "skipping the firing: an execution of the workflow is still running (overlap = \"forbid\")");
                self.metrics.skipped(workflow);
            }
            Overlap::Queue => {
                self.inner
                    .lock()
                    .expect("daemon lock")
                    .queued
                    .entry(workflow.to_string())
                    .or_default()
                    .push_back(at);
                if running > 0 {
                    info!(workflow, firing = %crate::engine::execution::timestamp(at), "queueing the firing until the running execution ends (overlap = \"queue\")");
                }
                // Starts the oldest waiting firing if nothing runs (decided under one lock).
                self.start_queued(workflow);
            }
        }
    }

    /// Starts the execution of a firing, named after its instant, so a firing started before a
    /// crash is not started twice.
    async fn start_scheduled(self: &Arc<Self>, workflow: &str, at: DateTime<Utc>) {
        let name = scheduled_name(workflow, at);
        let input = self.workflows[workflow].input.clone();
        match self.start_execution(workflow, Some(name.clone()), input, Trigger::Schedule(at)).await {
            Ok(_) => {}
            Err(StartError::Exists(_)) => {
                info!(execution = %name, "the firing's execution already exists (started before a restart)")
            }
            Err(StartError::ShuttingDown) => {}
            Err(e) => warn!(workflow, error = %e, "could not start the scheduled execution"),
        }
    }

    fn set_next_run(&self, workflow: &str, at: Option<DateTime<Utc>>) {
        let mut inner = self.inner.lock().expect("daemon lock");
        match at {
            Some(at) => inner.next_run.insert(workflow.to_string(), at),
            None => inner.next_run.remove(workflow),
        };
    }
}

/// A run task's claim on its execution's name, given up when the task ends, even by a panic.
struct Claim {
    daemon: Arc<Daemon>,
    name: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.daemon.unreserve(&self.name);
    }
}

/// A scheduled execution's name: the workflow and the firing's UTC instant,
/// `nightly-20261130T020000Z`, cut to Step Functions' 80 characters.
pub fn scheduled_name(workflow: &str, at: DateTime<Utc>) -> String {
    let mut name = format!("{workflow}-{}", at.format("%Y%m%dT%H%M%SZ"));
    name.truncate(80);
    name
}

fn default_name(workflow: &str, trigger: &Trigger) -> String {
    let mut name = match trigger {
        Trigger::Event(id) => {
            let id: String =
                id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
            format!("{workflow}-{id}")
        }
        _ => format!("{workflow}-{}-{:04x}", Utc::now().format("%Y%m%dT%H%M%SZ"), fastrand::u16(..)),
    };
    name.truncate(80);
    name
}
