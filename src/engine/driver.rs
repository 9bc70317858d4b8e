//! The async driver: performs what the transition function asks for (sleep, call a task) and
//! checkpoints after every transition, so the effect of a transition is durable before the
//! next side effect starts. Frames run concurrently: every due call and sleep is in flight at
//! once, and their answers are transitioned one at a time, in the order they arrive.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use tracing::{Instrument, debug, info, info_span, warn};

use super::clock::Clock;
use super::execution::{Execution, Status};
use super::history::HistoryEvent;
use super::store::{CheckpointError, ExecutionStore, Precondition, Stored, Version};
use super::task::{Answer, CallId, Registry};
use super::transition::{Effect, Event, TaskCall, pending, start, transition};
use crate::asl::definition::StateMachine;
use crate::asl::errors::{StatesError, names};

/// Called after every committed transition with the execution as it now stands and the
/// transition's history events (progress displays, metrics).
pub type Observer<'a> = Box<dyn FnMut(&Execution, &[HistoryEvent]) + Send + 'a>;

/// A request to stop an execution from outside (Step Functions' StopExecution): the error and
/// cause its ExecutionAborted event and description carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    pub error: String,
    pub cause: String,
}

/// How [`Driver::run_within`] and [`Driver::run_until`] stopped.
#[derive(Debug)]
pub enum Stop {
    /// The execution ended (succeeded, failed or timed out).
    Ended(Execution),
    /// Still running, but nothing is due before `until` (the execution's clock); checkpointed.
    Parked { execution: Execution, until: DateTime<Utc> },
    /// Stopped by a shutdown signal ([`super::launch::Launch::run`]); checkpointed.
    Interrupted { name: String },
}

/// An effect in progress: a task call or a sleep, named so that it is started once and stopped
/// when its frame no longer waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flight {
    Call(CallId),
    Sleep { frame: u64, until: DateTime<Utc> },
}

type FlightFuture<'a> = Pin<Box<dyn Future<Output = (Flight, Event)> + Send + 'a>>;

/// Drives one execution: owns it between transitions, borrows the definition, the task
/// runners, the clock and the checkpoint store for as long as it runs.
pub struct Driver<'a> {
    machine: &'a StateMachine,
    registry: &'a Registry,
    clock: &'a dyn Clock,
    store: &'a dyn ExecutionStore,
    execution: Execution,
    /// The stored execution's version: each commit expects it and moves it on.
    version: Version,
    /// Set when a checkpoint write failed.
    broken: bool,
    /// The calls that were due when the execution was loaded from its checkpoint: the process
    /// before may have sent them.
    resumed_calls: HashSet<CallId>,
    observer: Option<Observer<'a>>,
    flights: FuturesUnordered<Abortable<FlightFuture<'a>>>,
    in_flight: HashMap<Flight, AbortHandle>,
}

impl<'a> Driver<'a> {
    /// Starts a new execution and records it in `store` (which refuses a name already used).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        machine: &'a StateMachine,
        definition: &Value,
        registry: &'a Registry,
        clock: &'a dyn Clock,
        store: &'a dyn ExecutionStore,
        name: &str,
        state_machine: &str,
        input: Value,
        seed: u64,
    ) -> Result<Driver<'a>, CheckpointError> {
        let t = start(machine, name, state_machine, input, clock.now(), seed);
        let version =
            store.commit(&t.execution, &t.events, Some(definition), Precondition::DoesNotExist).await?;
        Ok(Driver::new(machine, registry, clock, store, t.execution, version, HashSet::new()))
    }

    /// Continues an execution loaded from `store` ([`ExecutionStore::load`]), at the version
    /// it was loaded at.
    pub fn resume(
        machine: &'a StateMachine,
        registry: &'a Registry,
        clock: &'a dyn Clock,
        store: &'a dyn ExecutionStore,
        stored: Stored,
    ) -> Driver<'a> {
        let due = pending(&stored.execution)
            .into_iter()
            .filter_map(|e| match e {
                Effect::Call(call) => Some(call.id()),
                _ => None,
            })
            .collect();
        Driver::new(machine, registry, clock, store, stored.execution, stored.version, due)
    }

    fn new(
        machine: &'a StateMachine,
        registry: &'a Registry,
        clock: &'a dyn Clock,
        store: &'a dyn ExecutionStore,
        execution: Execution,
        version: Version,
        resumed_calls: HashSet<CallId>,
    ) -> Driver<'a> {
        Driver {
            machine,
            registry,
            clock,
            store,
            execution,
            version,
            broken: false,
            resumed_calls,
            observer: None,
            flights: FuturesUnordered::new(),
            in_flight: HashMap::new(),
        }
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

    /// The execution as of the last committed transition.
    pub fn execution(&self) -> &Execution {
        &self.execution
    }

    /// Runs until the execution ends.
    pub async fn run(mut self) -> Result<Execution, CheckpointError> {
        while self.step().await? {}
        Ok(self.execution)
    }

    /// Runs until the execution ends, or until nothing is due before `horizon` (an instant of
    /// the execution's clock): every frame waits (a Wait, a retry delay, the next poll of a job)
    /// past it. Then it stops without waiting, the checkpoint already holding everything, and
    /// says when the first thing is due: a cron-started container exits and is started again
    /// then (`recflow run --max-runtime`). A call that is due is made first, never abandoned.
    pub async fn run_within(self, horizon: DateTime<Utc>) -> Result<Stop, CheckpointError> {
        self.run_until(Some(horizon), std::future::pending(), None, Duration::ZERO).await
    }

    /// Runs until the execution ends, parks past `horizon` (see [`Driver::run_within`]), is
    /// stopped, or `shutdown` completes.
    ///
    /// - A [`StopRequest`] on `stop` (StopExecution) ends the execution ABORTED with its error
    ///   and cause, committed like any transition: [`Stop::Ended`].
    /// - `shutdown` drains: sleeps and calls not yet due are dropped, calls already made are
    ///   given up to `grace` (wall time) to answer and their answers are committed, and nothing
    ///   new starts: [`Stop::Interrupted`], the checkpoint holding everything that happened, so
    ///   that a later load continues without repeating a call that answered. Calls still running
    ///   after `grace` are dropped; their idempotency keys make the next attempt safe.
    pub async fn run_until(
        mut self,
        horizon: Option<DateTime<Utc>>,
        shutdown: impl Future<Output = ()>,
        mut stop: Option<tokio::sync::oneshot::Receiver<StopRequest>>,
        grace: Duration,
    ) -> Result<Stop, CheckpointError> {
        tokio::pin!(shutdown);
        loop {
            if let Some(until) = horizon.and_then(|h| self.parked_until(h)) {
                self.stop_flights(&HashSet::new());
                return Ok(Stop::Parked { execution: self.execution, until });
            }
            let requested = async {
                match stop.as_mut() {
                    Some(receiver) => receiver.await.ok(),
                    None => std::future::pending().await,
                }
            };
            // `next_event` only waits on its flights, so dropping it for a signal loses nothing.
            let event = tokio::select! {
                biased;
                // Boxed: the rare path's state would otherwise sit in every waiting execution.
                () = &mut shutdown => return Box::pin(self.drain(grace, stop)).await,
                request = requested => {
                    // A oneshot answers once: a request, or word that nobody can stop it any more.
                    stop = None;
                    match request {
                        Some(StopRequest { error, cause }) => Event::Stop { now: self.clock.now(), error, cause },
                        None => continue,
                    }
                }
                event = self.next_event() => match event? {
                    Some(event) => event,
                    None => return Ok(Stop::Ended(self.execution)),
                },
            };
            // Boxed for the same reason: a transition's state is large and short-lived.
            Box::pin(self.apply(event)).await?;
        }
    }

    /// The shutdown of [`Driver::run_until`]: the answers of calls already made are committed,
    /// everything else is dropped.
    /// A stop request that arrived before the shutdown is honoured after the calls answered.
    async fn drain(
        mut self,
        grace: Duration,
        stop: Option<tokio::sync::oneshot::Receiver<StopRequest>>,
    ) -> Result<Stop, CheckpointError> {
        let now = self.clock.now();
        let later: HashSet<Flight> = pending(&self.execution)
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::Call(call) if call.not_before.is_some_and(|t| t > now) => {
                    Some(Flight::Call(call.id()))
                }
                _ => None,
            })
            .collect();
        self.in_flight.retain(|flight, handle| {
            let made = matches!(flight, Flight::Call(_)) && !later.contains(flight);
            if !made {
                handle.abort();
            }
            made
        });
        let until = tokio::time::Instant::now() + grace;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(until, self.flights.next()).await {
                Ok(Some(Ok((flight, event)))) => {
                    self.in_flight.remove(&flight);
                    self.apply(event).await?;
                }
                Ok(Some(Err(_aborted))) => continue,
                Ok(None) => break,
                Err(_) => {
                    warn!(
                        calls = self.in_flight.len(),
                        grace_seconds = grace.as_secs_f64(),
                        "calls still running at the end of the shutdown grace; dropped, the next start makes them again"
                    );
                    break;
                }
            }
        }
        self.stop_flights(&HashSet::new());
        if let Some(Ok(StopRequest { error, cause })) = stop.map(|mut s| s.try_recv()) {
            self.apply(Event::Stop { now: self.clock.now(), error, cause }).await?;
            return Ok(Stop::Ended(self.execution));
        }
        Ok(Stop::Interrupted { name: self.execution.name })
    }

    /// The first instant anything is due, when that is past `horizon` and nothing is due now.
    fn parked_until(&self, horizon: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut first: Option<DateTime<Utc>> = None;
        for effect in pending(&self.execution) {
            let due = match effect {
                Effect::Done | Effect::Proceed { .. } => return None,
                Effect::SleepUntil { until, .. } => until,
                Effect::Call(call) => call.not_before.unwrap_or(DateTime::<Utc>::MIN_UTC),
            };
            first = Some(first.map_or(due, |f| f.min(due)));
        }
        first.filter(|t| *t > horizon && *t > self.clock.now())
    }

    /// Waits for the next thing to happen (a frame ready to enter a state, a sleep ending, a
    /// call answering) and makes one transition of it; false once the execution has ended.
    pub async fn step(&mut self) -> Result<bool, CheckpointError> {
        match self.next_event().await? {
            Some(event) => self.apply(event).await,
            None => Ok(false),
        }
    }

    /// The next event to transition, or `None` once the execution has ended. Cancel-safe: it
    /// changes nothing but the set of flights, so a caller may drop it for a signal.
    async fn next_event(&mut self) -> Result<Option<Event>, CheckpointError> {
        if self.broken {
            return Err(CheckpointError::Unrecorded { name: self.execution.name.clone() });
        }
        let effects = pending(&self.execution);
        if effects.iter().any(|e| matches!(e, Effect::Done)) {
            self.stop_flights(&HashSet::new());
            return Ok(None);
        }
        // Entering a state waits for nothing: do that before anything else goes out.
        if let Some(frame) = effects.iter().find_map(|e| match e {
            Effect::Proceed { frame } => Some(*frame),
            _ => None,
        }) {
            return Ok(Some(Event::Proceed { now: self.clock.now(), frame }));
        }
        self.launch(effects);
        loop {
            match self.flights.next().await {
                Some(Ok((flight, event))) => {
                    self.in_flight.remove(&flight);
                    return Ok(Some(event));
                }
                // Stopped because its frame no longer waits for it.
                Some(Err(_aborted)) => continue,
                None => {
                    self.broken = true;
                    return Err(CheckpointError::Unrecorded { name: self.execution.name.clone() });
                }
            }
        }
    }

    /// Puts every due call and sleep in flight that is not yet, and stops those no frame
    /// waits for any more (the calls of a stopped branch, a Wait that has ended).
    fn launch(&mut self, effects: Vec<Effect>) {
        let mut wanted = HashSet::new();
        for effect in effects {
            let (flight, future) = match effect {
                Effect::Call(mut call) => {
                    let flight = Flight::Call(call.id());
                    wanted.insert(flight);
                    if self.in_flight.contains_key(&flight) {
                        continue;
                    }
                    call.resumed = self.resumed_calls.remove(&call.id());
                    (flight, self.call_flight(flight, *call))
                }
                Effect::SleepUntil { frame, until } => {
                    let flight = Flight::Sleep { frame, until };
                    wanted.insert(flight);
                    if self.in_flight.contains_key(&flight) {
                        continue;
                    }
                    // A frame that sleeps was not calling when the process stopped.
                    self.resumed_calls.retain(|c| c.frame != frame);
                    (flight, self.sleep_flight(flight, frame, until))
                }
                Effect::Proceed { .. } | Effect::Done => continue,
            };
            let (handle, registration) = AbortHandle::new_pair();
            self.flights.push(Abortable::new(future, registration));
            self.in_flight.insert(flight, handle);
        }
        self.stop_flights(&wanted);
    }

    fn stop_flights(&mut self, wanted: &HashSet<Flight>) {
        self.in_flight.retain(|flight, handle| {
            let keep = wanted.contains(flight);
            if !keep {
                handle.abort();
            }
            keep
        });
    }

    fn call_flight(&self, flight: Flight, call: TaskCall) -> FlightFuture<'a> {
        let (registry, clock) = (self.registry, self.clock);
        let span =
            info_span!("task", execution = %call.execution, state = %call.state, attempt = call.attempt);
        Box::pin(
            async move {
                let result = perform(registry, clock, &call).await;
                crash_point(&call.state);
                (flight, Event::TaskReturned { now: clock.now(), call: call.id(), result })
            }
            .instrument(span),
        )
    }

    fn sleep_flight(&self, flight: Flight, frame: u64, until: DateTime<Utc>) -> FlightFuture<'a> {
        let clock = self.clock;
        let state = self.execution.cursor(frame).map_or("", |p| p.state.as_str()).to_string();
        info!(state = %state, until = %until, "waiting");
        Box::pin(async move {
            clock.sleep_until(until).await;
            (flight, Event::Proceed { now: clock.now(), frame })
        })
    }

    /// One transition, then its checkpoint.
    async fn apply(&mut self, event: Event) -> Result<bool, CheckpointError> {
        let span = match &event {
            Event::Proceed { frame, .. } => {
                let state = self.execution.cursor(*frame).map_or("", |p| p.state.as_str());
                info_span!("step", execution = %self.execution.name, state = %state)
            }
            _ => tracing::Span::none(),
        };
        let t = span.in_scope(|| transition(self.machine, std::mem::take(&mut self.execution), event));
        self.execution = t.execution;
        let expected = Precondition::Matches(self.version.clone());
        match self.store.commit(&self.execution, &t.events, None, expected).await {
            Ok(version) => self.version = version,
            Err(e) => {
                // The execution in memory is now ahead of its checkpoint (or someone else's):
                // refuse to go on from it, so only a resume from the checkpoint can continue.
                self.broken = true;
                self.stop_flights(&HashSet::new());
                return Err(e);
            }
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
}

/// Performs one task call: waits for its `not_before`, finds its runner, and bounds it by the
/// task's TimeoutSeconds and the execution's deadline.
async fn perform(registry: &Registry, clock: &dyn Clock, call: &TaskCall) -> Result<Answer, StatesError> {
    if let Some(not_before) = call.not_before {
        clock.sleep_until(not_before).await;
    }
    let Some(runner) = registry.find(&call.state, &call.resource) else {
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
            Some(d) => clock.sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let call_with_timeout = async {
        match call.timeout_seconds {
            Some(secs) => {
                let from = call.started.unwrap_or_else(|| clock.now());
                let deadline = from + chrono::Duration::seconds(secs as i64);
                tokio::select! {
                    r = runner.call(call, clock) => r,
                    () = clock.sleep_until(deadline) => Err(StatesError::new(
                        names::TIMEOUT,
                        format!("the task did not finish within TimeoutSeconds ({secs} s)"),
                    )),
                }
            }
            None => runner.call(call, clock).await,
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
