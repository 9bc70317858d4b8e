//! The transition function: (definition, execution, event) -> (execution, history events).
//! It reads no clock, does no I/O and draws no randomness of its own: the time arrives inside
//! the event, and randomness comes from the execution's seed. Given the same inputs it gives the
//! same outputs, which is what lets a restarted process continue from a checkpoint as if it had
//! never stopped.
//!
//! An execution is a tree of frames (the root, and each running Parallel branch or Map
//! iteration); every event is addressed to one frame, and [`pending`] lists what each frame waits
//! for. Parallel and Map themselves live in [`super::fork`].

use std::borrow::Cow;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::execution::{Entered, Execution, Frame, Phase, Position, Status, TaskPhase, timestamp};
use super::history::{Detail, HistoryEvent};
use super::task::Answer;
pub use super::task::{CallId, TaskCall};
use crate::asl::Env;
pub use crate::asl::definition::MAX_SECONDS;
use crate::asl::definition::{Kind, PathField, State, StateMachine};
use crate::asl::errors::{StatesError, names};
use crate::asl::retry::{RUNTIME, error_matches};

/// What happened since the last transition, addressed to one frame (0: the root).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Enter the frame's current state, end a Wait whose time has come, or start a retried
    /// Parallel or Map again.
    Proceed { now: DateTime<Utc>, frame: u64 },
    /// The task call `call` returned. An answer to a call the frame no longer waits for (its
    /// branch was stopped) changes nothing.
    TaskReturned { now: DateTime<Utc>, call: CallId, result: Result<Answer, StatesError> },
    /// Stop the execution from outside (Step Functions' StopExecution): it ends ABORTED with
    /// this error and cause, whatever its states' Retry or Catch say.
    Stop { now: DateTime<Utc>, error: String, cause: String },
}

/// What the driver must do for one frame before that frame's next transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Transition the frame again at once (it stands before a state).
    Proceed { frame: u64 },
    /// Sleep until the instant, then transition with `Event::Proceed` for the frame.
    SleepUntil { frame: u64, until: DateTime<Utc> },
    /// Call a task (after `not_before`, if set), then transition with `Event::TaskReturned`.
    Call(Box<TaskCall>),
    /// The execution has ended.
    Done,
}

/// The outcome of one transition: the execution as it now stands and the history events the
/// transition wrote (ids following the execution's `last_event_id` before it).
pub struct Transition {
    pub execution: Execution,
    pub events: Vec<HistoryEvent>,
}

/// A new execution and its ExecutionStarted event.
pub fn start(
    machine: &StateMachine,
    name: &str,
    state_machine: &str,
    input: Value,
    now: DateTime<Utc>,
    seed: u64,
) -> Transition {
    let mut execution = Execution::new(name, state_machine, input.clone(), &machine.start_at, now, seed);
    execution.deadline = machine.timeout_seconds.map(|t| later(now, t as f64));
    let mut tx =
        Tx { machine, exec: execution, events: Vec::with_capacity(1), now, rng: fastrand::Rng::with_seed(0) };
    tx.emit(Detail::ExecutionStarted { input });
    tx.finish()
}

/// Every effect a (possibly just loaded) execution is waiting for, one per frame that waits for
/// something, root first: `[Done]` once the execution has ended. A frame running a Parallel or
/// Map waits for nothing itself (its children do), unless a retry of the state is due.
pub fn pending(exec: &Execution) -> Vec<Effect> {
    if exec.status != Status::Running {
        return vec![Effect::Done];
    }
    // The state machine's deadline cuts every sleep short.
    let cap = |t: DateTime<Utc>| exec.deadline.map_or(t, |d| t.min(d));
    let mut out = Vec::new();
    for (frame, at) in exec.cursors() {
        match &at.phase {
            Phase::Ready => out.push(Effect::Proceed { frame }),
            Phase::Waiting { until, .. } => out.push(Effect::SleepUntil { frame, until: cap(*until) }),
            Phase::Task(task) => out.push(Effect::Call(Box::new(TaskCall {
                execution: exec.name.clone(),
                state_machine: exec.state_machine.clone(),
                frame,
                state: at.state.clone(),
                visit: task.entered.event_id,
                resource: task.resource.clone(),
                parameters: task.parameters.clone(),
                credentials: task.credentials.clone(),
                attempt: task.attempt,
                idempotency_key: task.idempotency_key.clone(),
                not_before: task.not_before.map(cap),
                timeout_seconds: task.timeout_seconds,
                deadline: exec.deadline,
                started: task.started,
                poll: task.poll.clone(),
                resumed: false,
            }))),
            Phase::Parallel(fork) | Phase::Map(fork) => {
                if let Some(t) = fork.not_before {
                    out.push(Effect::SleepUntil { frame, until: cap(t) });
                }
            }
        }
    }
    if out.is_empty() {
        // A running execution with nothing to wait for cannot move: a transition reports it.
        out.push(Effect::Proceed { frame: 0 });
    }
    out
}

/// Applies `event` to `exec`: the next state of the execution and the history events that
/// lead there. Never fails: an error in the definition or the data becomes an ASL error
/// (`States.Runtime`, ...) that Retry, Catch or the execution's failure answers.
pub fn transition(machine: &StateMachine, exec: Execution, event: Event) -> Transition {
    let (now, frame, call, result) = match event {
        Event::Proceed { now, frame } => (now, frame, None, None),
        Event::TaskReturned { now, call, result } => (now, call.frame, Some(call), Some(result)),
        Event::Stop { now, error, cause } => return stop(machine, exec, now, error, cause),
    };
    // Randomness (jitter, States.UUID) is drawn from the execution's seed and the transition
    // number: a transition repeated after a crash draws exactly what it drew before.
    let entropy = splitmix(exec.seed ^ exec.transitions.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut tx =
        Tx { machine, exec, events: Vec::with_capacity(4), now, rng: fastrand::Rng::with_seed(entropy) };
    if tx.exec.status != Status::Running {
        return tx.finish();
    }
    tx.exec.updated = Some(now);
    if let Some(deadline) = tx.exec.deadline.filter(|d| now >= *d) {
        tx.time_out(deadline);
        return tx.finish();
    }
    if tx.exec.last_event_id >= tx.exec.limits.max_history_events {
        let cause = format!(
            "the execution has written {} history events, reaching its limit of {} (--max-history-events; Step Functions stops standard workflows at 25,000)",
            tx.exec.last_event_id, tx.exec.limits.max_history_events
        );
        tx.fail_execution(StatesError::runtime(cause));
        return tx.finish();
    }
    let scope = tx.machine_of(frame);
    let Some(at) = tx.take_cursor(frame) else {
        if frame == 0 {
            tx.fail_execution(StatesError::runtime("the execution is running but stands at no state"));
        }
        // Otherwise the frame has ended (its branch was stopped): a late answer changes nothing.
        return tx.finish();
    };
    let Some(state) = scope.and_then(|m| m.state(&at.state)) else {
        tx.fail_execution(StatesError::runtime(format!("state '{}' is not in the definition", at.state)));
        return tx.finish();
    };
    tx.exec.transitions += 1;
    match (at.phase, result) {
        (Phase::Ready, None) => tx.enter(frame, state, at.input),
        (Phase::Waiting { entered, until }, None) if now >= until => {
            tx.leave_wait(frame, state, at.input, &entered)
        }
        (Phase::Task(task), Some(result)) if call.is_some_and(|c| c == task_id(frame, &task)) => {
            tx.task_returned(frame, state, at.input, *task, result)
        }
        (Phase::Parallel(fork), None) if fork.not_before.is_some_and(|t| now >= t) => {
            tx.start_parallel(frame, state, at.input, *fork)
        }
        (Phase::Map(mut fork), None) if fork.not_before.is_some_and(|t| now >= t) => {
            let raw = std::mem::take(&mut fork.cold.input);
            tx.start_map(frame, state, raw, *fork)
        }
        (phase, _) => {
            // Woken early, or an answer the frame no longer waits for: nothing happens.
            tx.exec.transitions -= 1;
            tx.place(frame, Position { state: at.state, input: at.input, phase });
        }
    }
    tx.finish()
}

/// StopExecution: a running execution ends ABORTED; an ended one is left as it is.
fn stop(
    machine: &StateMachine,
    exec: Execution,
    now: DateTime<Utc>,
    error: String,
    cause: String,
) -> Transition {
    let mut tx = Tx { machine, exec, events: Vec::with_capacity(1), now, rng: fastrand::Rng::with_seed(0) };
    if tx.exec.status == Status::Running {
        tx.exec.updated = Some(now);
        tx.emit(Detail::ExecutionAborted { error: error.clone(), cause: cause.clone() });
        tx.exec.status = Status::Aborted;
        tx.exec.at = None;
        tx.exec.frames.clear();
        tx.exec.error = Some(error);
        tx.exec.cause = Some(cause);
        tx.exec.stop_time = Some(now);
    }
    tx.finish()
}

/// The id of the call a task phase waits for.
fn task_id(frame: u64, task: &TaskPhase) -> CallId {
    CallId {
        frame,
        visit: task.entered.event_id,
        attempt: task.attempt,
        polls: task.poll.as_ref().map_or(0, |p| p.polls),
    }
}

/// One transition in progress: the execution it changes and the events it writes.
pub(super) struct Tx<'m> {
    pub(super) machine: &'m StateMachine,
    pub(super) exec: Execution,
    events: Vec<HistoryEvent>,
    pub(super) now: DateTime<Utc>,
    pub(super) rng: fastrand::Rng,
}

impl<'m> Tx<'m> {
    fn finish(self) -> Transition {
        Transition { execution: self.exec, events: self.events }
    }

    /// The states a frame runs: the root machine, a Parallel branch or a Map's ItemProcessor.
    pub(super) fn machine_of(&self, frame: u64) -> Option<&'m StateMachine> {
        if frame == 0 {
            return Some(self.machine);
        }
        let f = self.exec.frames.get(&frame)?;
        let parent = self.machine_of(f.parent)?.state(&self.exec.cursor(f.parent)?.state)?;
        match &parent.kind {
            Kind::Parallel { branches } => branches.get(f.index),
            Kind::Map(map) => Some(&map.processor),
            _ => None,
        }
    }

    pub(super) fn take_cursor(&mut self, frame: u64) -> Option<Position> {
        if frame == 0 { self.exec.at.take() } else { self.exec.frames.get_mut(&frame)?.at.take() }
    }

    pub(super) fn place(&mut self, frame: u64, position: Position) {
        if frame == 0 {
            self.exec.at = Some(position);
        } else if let Some(f) = self.exec.frames.get_mut(&frame) {
            f.at = Some(position);
        }
    }

    /// A new child frame of `parent` at `state` of its scope, ready to enter it.
    pub(super) fn spawn(&mut self, parent: u64, index: usize, state: &str, input: Value) -> u64 {
        self.exec.next_frame += 1;
        let id = self.exec.next_frame;
        let at = Some(Position { state: state.to_string(), input, phase: Phase::Ready });
        self.exec.frames.insert(id, Frame { parent, index, at, variables: Map::new() });
        id
    }

    /// Stops a frame and every frame below it.
    pub(super) fn abort(&mut self, frame: u64) {
        let mut doomed = vec![frame];
        while let Some(id) = doomed.pop() {
            self.exec.frames.remove(&id);
            doomed.extend(self.exec.frames.iter().filter(|(_, f)| f.parent == id).map(|(id, _)| *id));
        }
    }

    pub(super) fn emit(&mut self, detail: Detail) -> u64 {
        self.exec.last_event_id += 1;
        let id = self.exec.last_event_id;
        self.events.push(HistoryEvent { id, timestamp: self.now, detail });
        id
    }

    /// The frame's scope ends with `result`: the root's end ends the execution; a child's end
    /// is handed to the Parallel or Map state that runs it.
    pub(super) fn end_scope(&mut self, frame: u64, result: Result<Value, StatesError>) {
        if frame == 0 {
            return match result {
                Ok(output) => self.succeed(output),
                Err(err) => self.fail_execution(err),
            };
        }
        if let Some(f) = self.exec.frames.remove(&frame) {
            self.child_ended(f.parent, f.index, result);
        }
    }

    /// The frame's scope fails with `err` (which its parent state may still retry or catch).
    pub(super) fn fail(&mut self, frame: u64, err: StatesError) {
        self.end_scope(frame, Err(err));
    }

    /// The execution fails, whatever frame the error arose in: no Retry or Catch answers it.
    pub(super) fn fail_execution(&mut self, err: StatesError) {
        self.emit(Detail::ExecutionFailed { error: err.error.clone(), cause: err.cause.clone() });
        self.exec.status = Status::Failed;
        self.exec.at = None;
        self.exec.frames.clear();
        self.exec.error = Some(err.error);
        self.exec.cause = Some(err.cause);
        self.exec.stop_time = Some(self.now);
    }

    /// The state machine's TimeoutSeconds ran out: the execution ends TIMED_OUT, whatever the
    /// current state's Retry or Catch say.
    fn time_out(&mut self, deadline: DateTime<Utc>) {
        let cause = format!("the execution did not finish before its deadline {}", timestamp(deadline));
        self.emit(Detail::ExecutionTimedOut { error: names::TIMEOUT.into(), cause: cause.clone() });
        self.exec.status = Status::TimedOut;
        self.exec.at = None;
        self.exec.frames.clear();
        self.exec.error = Some(names::TIMEOUT.into());
        self.exec.cause = Some(cause);
        self.exec.stop_time = Some(self.now);
    }

    fn succeed(&mut self, output: Value) {
        self.emit(Detail::ExecutionSucceeded { output: output.clone() });
        self.exec.status = Status::Succeeded;
        self.exec.at = None;
        self.exec.output = Some(output);
        self.exec.stop_time = Some(self.now);
    }

    /// Leaves `state` with `output`, to `next` (or its own Next), or ends the frame's scope.
    /// `assigned` are the variables the state's Assign set, for the history.
    pub(super) fn exit(
        &mut self,
        frame: u64,
        state: &State,
        output: Value,
        next: Option<&str>,
        assigned: Option<Map<String, Value>>,
    ) {
        let limit = self.exec.limits.max_payload_bytes;
        if json_size_exceeds(&output, limit) {
            // Terminal, as in Step Functions: no Retry or Catch answers it.
            return self.fail_execution(StatesError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit ({limit} bytes).",
                    state.name
                ),
            ));
        }
        self.emit(Detail::StateExited {
            state: state.name.clone(),
            output: output.clone(),
            assigned_variables: assigned,
        });
        match next.or(state.next.as_deref()) {
            Some(next) => {
                self.place(frame, Position { state: next.to_string(), input: output, phase: Phase::Ready })
            }
            None => self.end_scope(frame, Ok(output)),
        }
    }

    /// Step Functions prefixes runtime causes with where they happened.
    fn runtime(&self, state: &State, entered: &Entered, cause: &str) -> StatesError {
        StatesError::runtime(format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {cause}",
            state.name, entered.event_id
        ))
    }

    /// An error raised by the state itself (not by its task): States.Runtime ends the
    /// execution; anything else may be caught.
    pub(super) fn state_error(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        entered: &Entered,
        err: StatesError,
    ) {
        let located = [RUNTIME, names::QUERY_EVALUATION_ERROR].contains(&err.error.as_str());
        let err = if located && !err.cause.starts_with("An error occurred") {
            StatesError::new(err.error, self.runtime(state, entered, &err.cause).cause)
        } else {
            err
        };
        if !self.catch(frame, state, raw, entered, &err) {
            self.fail(frame, err);
        }
    }

    /// The context object (`$$`), for states that read it; Null for the others.
    pub(super) fn context(&self, state: &State, entered: &Entered, retry_count: Option<u32>) -> Value {
        if !state.uses_context {
            return Value::Null;
        }
        let mut st = Map::new();
        st.insert("EnteredTime".into(), timestamp(entered.time).into());
        st.insert("Name".into(), state.name.clone().into());
        if let Some(n) = retry_count {
            st.insert("RetryCount".into(), n.into());
        }
        json!({
            "Execution": {
                "Id": self.exec.arn(),
                "Input": self.exec.input,
                "Name": self.exec.name,
                "RoleArn": "arn:aws:iam::000000000000:role/recflow",
                "StartTime": timestamp(self.exec.start_time),
                "RedriveCount": 0,
            },
            "State": st,
            "StateMachine": {
                "Id": self.exec.state_machine_arn(),
                "Name": self.exec.state_machine,
            },
        })
    }

    fn enter(&mut self, frame: u64, state: &State, raw: Value) {
        let event_id = self.emit(Detail::StateEntered { state: state.name.clone(), input: raw.clone() });
        let entered = Entered { time: self.now, event_id };
        let retry_count = matches!(state.kind, Kind::Task(_)).then_some(0);
        let env = self.env(frame, state, &entered, retry_count);
        if let Err(err) = self.run(frame, state, raw.clone(), &entered, &env) {
            self.state_error(frame, state, raw, &entered, err);
        }
    }

    fn run(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        entered: &Entered,
        ctx: &Env,
    ) -> Result<(), StatesError> {
        match &state.kind {
            Kind::Pass { result } => self.run_pass(frame, state, result.as_ref(), raw, ctx),
            Kind::Choice { choices, default } => {
                self.run_choice(frame, state, raw, choices, default.as_deref(), entered, ctx)
            }
            Kind::Succeed => self.run_succeed(frame, state, raw, ctx),
            Kind::Fail { error, cause } => self.run_fail(frame, error.as_ref(), cause.as_ref(), &raw, ctx),
            Kind::Wait(wait) => self.run_wait(frame, state, wait, raw, entered, ctx),
            Kind::Task(task) => self.run_task(frame, state, task, raw, entered, ctx),
            Kind::Parallel { .. } => {
                let fork = self.fork(state, entered);
                self.start_parallel(frame, state, raw, fork);
                Ok(())
            }
            Kind::Map(_) => {
                let fork = self.fork(state, entered);
                self.start_map(frame, state, raw, fork);
                Ok(())
            }
        }
    }

    /// The first retrier whose ErrorEquals matches `error` decides: its delay in seconds, with
    /// the retry counted in `retries`; None when no retrier matches or its attempts are spent
    /// (later retriers are not consulted, as in Step Functions).
    pub(super) fn retry_delay(
        &mut self,
        state: &State,
        retries: &mut Vec<u64>,
        error: &str,
    ) -> Option<(usize, f64)> {
        let i = state.retry.iter().position(|r| error_matches(&r.error_equals, error))?;
        let jitter = self.rng.f64();
        // A checkpoint from an edited definition may hold fewer counters than retriers.
        retries.resize(state.retry.len(), 0);
        let delay = state.retry[i].delay(retries[i], jitter)?;
        retries[i] += 1;
        Some((i, delay.min(MAX_SECONDS as f64)))
    }
}

/// Whether `value` as compact JSON is longer than `limit` bytes (floats counted at their longest);
/// stops counting once it is, and formats nothing.
pub fn json_size_exceeds(value: &Value, limit: u64) -> bool {
    let mut budget = i128::from(limit);
    spend(value, &mut budget);
    budget < 0
}

/// Takes `v`'s compact JSON size (as [`json_size_exceeds`] counts it) from `budget`, stopping
/// once the budget is spent.
pub(super) fn spend(v: &Value, budget: &mut i128) {
    if *budget < 0 {
        return;
    }
    *budget -= match v {
        Value::Null => 4,
        Value::Bool(b) => 4 + i128::from(!*b),
        // Integers exactly, without formatting them; a float at most 24 characters.
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.checked_ilog10().map_or(1, |d| d + 1) as i128,
            (None, Some(i)) => i.unsigned_abs().checked_ilog10().map_or(1, |d| d + 1) as i128 + 1,
            _ => 24,
        },
        Value::String(s) => s.len() as i128 + 2,
        Value::Array(items) => {
            for item in items {
                spend(item, budget);
            }
            items.len().max(1) as i128 + 1
        }
        Value::Object(map) => {
            for (k, item) in map {
                *budget -= k.len() as i128 + 3;
                spend(item, budget);
            }
            map.len().max(1) as i128 + 1
        }
    };
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `now` plus `seconds`, saturating instead of overflowing the calendar.
pub(super) fn later(now: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    let millis = (seconds * 1000.0).clamp(0.0, MAX_SECONDS as f64 * 1000.0) as i64;
    now.checked_add_signed(Duration::milliseconds(millis)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn positive_integer(value: Option<&Value>, path: &str, field: &str) -> Result<u64, StatesError> {
    match value.and_then(Value::as_u64) {
        Some(n) if (1..=MAX_SECONDS).contains(&n) => Ok(n),
        _ => Err(StatesError::runtime(format!(
            "The {field} field refers to value {} which is not a valid positive integer: {path}",
            value.map_or("null".to_string(), Value::to_string)
        ))),
    }
}

/// InputPath: `$` (the default) keeps the raw input, null gives `{}`, a path selects; a path
/// that selects nothing is `States.Runtime`.
pub fn apply_input_path<'a>(
    field: &PathField,
    raw: &'a Value,
    ctx: &'a Env,
) -> Result<Cow<'a, Value>, StatesError> {
    match field {
        PathField::Default => Ok(Cow::Borrowed(raw)),
        PathField::Null => Ok(Cow::Owned(Value::Object(Map::new()))),
        PathField::Path(p) => p.select(raw, ctx).ok_or_else(|| {
            StatesError::runtime(format!(
                "Invalid path '{}' : No results for path: {}",
                p.as_str(),
                p.as_str()
            ))
        }),
    }
}

/// OutputPath, with InputPath's rules, over a state's output.
pub fn apply_output_path(field: &PathField, output: Value, ctx: &Env) -> Result<Value, StatesError> {
    match field {
        PathField::Default => Ok(output),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) => match p.select(&output, ctx) {
            Some(v) => Ok(v.into_owned()),
            None => Err(StatesError::runtime(format!(
                "Invalid path '{}' : No results for path: {}",
                p.as_str(),
                p.as_str()
            ))),
        },
    }
}

/// ResultPath: `$` (the default) replaces the input, null keeps it, a path places the result
/// inside it (creating missing objects on the way).
pub fn apply_result_path(field: &PathField, raw: Value, result: Value) -> Result<Value, String> {
    match field {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw),
        PathField::Path(p) => {
            let mut target = raw;
            p.set(&mut target, result)?;
            Ok(target)
        }
    }
}
