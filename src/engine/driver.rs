//! The async driver: performs what the transition function asks for (sleep, call a task) and
//! checkpoints after every transition, so the effect of a transition is durable before the
//! next side effect starts.

use serde_json::Value;
use tracing::{Instrument, debug, info, info_span, warn};

use super::clock::Clock;
use super::execution::{Execution, Status};
use super::history::HistoryEvent;
use super::task::{Answer, Registry};
use super::transition::{Effect, Event, TaskCall, pending, start, transition};
use crate::asl::definition::StateMachine;
use crate::asl::errors::{StatesError, names};
use crate::checkpoint::{CheckpointError, CheckpointStore};

/// Called after every committed transition with the execution as it now stands and the
/// transition's history events (progress displays, metrics).
pub type Observer<'a> = Box<dyn FnMut(&Execution, &[HistoryEvent]) + Send + 'a>;

pub struct Driver<'a> {
    machine: &'a StateMachine,
    registry: &'a Registry,
    clock: &'a dyn Clock,
    store: &'a mut dyn CheckpointStore,
    execution: Execution,
    /// Set when a checkpoint write failed.
    broken: bool,
    /// Set by `resume` until the first call: that call may have been sent before the crash.
    resumed: bool,
    observer: Option<Observer<'a>>,
}

impl<'a> Driver<'a> {
    /// Starts a new execution and records it in `store`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        machine: &'a StateMachine,
        definition: &Value,
        registry: &'a Registry,
        clock: &'a dyn Clock,
        store: &'a mut dyn CheckpointStore,
        name: &str,
        state_machine: &str,
        input: Value,
        seed: u64,
    ) -> Result<Driver<'a>, CheckpointError> {
        let t = start(machine, name, state_machine, input, clock.now(), seed);
        store.create(definition, &t.execution, &t.events)?;
        Ok(Driver {
            machine,
            registry,
            clock,
            store,
            execution: t.execution,
            broken: false,
            resumed: false,
            observer: None,
        })
    }

    /// Continues an execution loaded from a checkpoint.
    pub fn resume(
        machine: &'a StateMachine,
        registry: &'a Registry,
        clock: &'a dyn Clock,
        store: &'a mut dyn CheckpointStore,
        execution: Execution,
    ) -> Driver<'a> {
        Driver { machine, registry, clock, store, execution, broken: false, resumed: true, observer: None }
    }

    /// Sets the bounds a new execution keeps to (recorded with its next checkpoint).
    pub fn with_limits(mut self, limits: super::execution::Limits) -> Driver<'a> {
        self.execution.limits = limits;
        self
    }

    /// Calls `observer` after every committed transition.
    pub fn observe(mut self, observer: Observer<'a>) -> Driver<'a> {
        self.observer = Some(observer);
        self
    }

    pub fn execution(&self) -> &Execution {
        &self.execution
    }

    /// Runs until the execution ends.
    pub async fn run(mut self) -> Result<Execution, CheckpointError> {
        while self.step().await? {}
        Ok(self.execution)
    }

    /// Performs the pending effect and one transition; false once the execution has ended.
    pub async fn step(&mut self) -> Result<bool, CheckpointError> {
        if self.broken {
            return Err(CheckpointError::Unrecorded { name: self.execution.name.clone() });
        }
        let state = self.execution.at.as_ref().map_or("", |p| p.state.as_str()).to_string();
        let span = info_span!("step", execution = %self.execution.name, state = %state);
        self.perform_and_transition().instrument(span).await
    }

    async fn perform_and_transition(&mut self) -> Result<bool, CheckpointError> {
        let event = match pending(&self.execution) {
            Effect::Done => return Ok(false),
            Effect::Proceed => Event::Proceed { now: self.clock.now() },
            Effect::SleepUntil(until) => {
                self.resumed = false;
                info!(until = %until, "waiting");
                self.clock.sleep_until(until).await;
                Event::Proceed { now: self.clock.now() }
            }
            Effect::Call(mut call) => {
                call.resumed = std::mem::take(&mut self.resumed);
                let result = self.call(&call).instrument(info_span!("task", attempt = call.attempt)).await;
                crash_point(&call.state);
                Event::TaskReturned { now: self.clock.now(), result }
            }
        };
        let t = transition(self.machine, std::mem::take(&mut self.execution), event);
        self.execution = t.execution;
        if let Err(e) = self.store.commit(&self.execution, &t.events) {
            // The execution in memory is now ahead of its checkpoint: refuse to go on from it, so
            // only a resume from the checkpoint can continue.
            self.broken = true;
            return Err(e);
        }
        for event in &t.events {
            debug!(id = event.id, event = event.detail.type_name(), "history");
        }
        if let Some(observer) = &mut self.observer {
            observer(&self.execution, &t.events);
        }
        if self.execution.status != Status::Running {
            info!(
                status = self.execution.status.as_str(),
                error = self.execution.error.as_deref().unwrap_or(""),
                "execution ended"
            );
        }
        Ok(true)
    }

    async fn call(&self, call: &TaskCall) -> Result<Answer, StatesError> {
        if let Some(not_before) = call.not_before {
            self.clock.sleep_until(not_before).await;
        }
        let Some(runner) = self.registry.find(&call.state, &call.resource) else {
            return Err(StatesError::runtime(format!(
                "no task integration serves resource '{}' (state '{}')",
                call.resource, call.state
            )));
        };
        if call.poll.is_some() {
            info!(resource = %call.resource, key = %call.idempotency_key, "polling task");
        } else {
            info!(resource = %call.resource, key = %call.idempotency_key, "calling task");
        }
        let deadline = async {
            match call.deadline {
                Some(d) => self.clock.sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let call_with_timeout = async {
            match call.timeout_seconds {
                Some(secs) => {
                    let from = call.started.unwrap_or_else(|| self.clock.now());
                    let deadline = from + chrono::Duration::seconds(secs as i64);
                    tokio::select! {
                        r = runner.call(call, self.clock) => r,
                        () = self.clock.sleep_until(deadline) => Err(StatesError::new(
                            names::TIMEOUT,
                            format!("the task did not finish within TimeoutSeconds ({secs} s)"),
                        )),
                    }
                }
                None => runner.call(call, self.clock).await,
            }
        };
        let result = tokio::select! {
            r = call_with_timeout => r,
            () = deadline => Err(StatesError::new(names::TIMEOUT, "the execution's TimeoutSeconds ran out during the call")),
        };
        match &result {
            Ok(Answer::Done { .. }) => info!("task succeeded"),
            Ok(Answer::Poll { status, after_seconds, .. }) => {
                info!(status = %status, next_poll_seconds = after_seconds, "task still running")
            }
            Err(e) => warn!(error = %e.error, cause = %e.cause, "task failed"),
        }
        result
    }
}

/// Fault injection for crash tests: with `RECFLOW_KILL_AFTER_CALL=<state>[,<state>...]` in the
/// environment, the process SIGKILLs itself as soon as a call of a named state has answered and
/// before the answer is checkpointed: the moment when a create has reached the service but the
/// execution does not know it yet. Inert when the variable is unset.
fn crash_point(state: &str) {
    let Some(targets) = std::env::var_os("RECFLOW_KILL_AFTER_CALL") else { return };
    if targets.to_string_lossy().split(',').any(|t| t == state) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
        // The signal is on its way: make sure nothing else runs meanwhile.
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
