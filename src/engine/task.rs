//! Task runners: how the engine reaches the world. The engine knows a Resource string and a
//! `TaskRunner`; which AWS service (or script) sits behind it is the registry's business.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::clock::Clock;
use super::execution::PollPhase;
use crate::asl::errors::StatesError;

/// Names one task call: the frame that makes it, the visit of the state (its StateEntered
/// event id), the attempt, and how many "still running" answers came before it. The engine takes
/// an answer only for the call its frame waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    pub frame: u64,
    pub visit: u64,
    pub attempt: u32,
    pub polls: u32,
}

/// One call of a task, as the task runner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCall {
    pub execution: String,
    /// The state machine's name (the workflow file's stem).
    pub state_machine: String,
    /// The frame making the call: 0 for the root, else a Parallel branch or Map iteration.
    pub frame: u64,
    pub state: String,
    /// Which visit of the state this is: the id of its StateEntered event. Together with the
    /// execution and state names it names a create uniquely and stably across restarts.
    pub visit: u64,
    pub resource: String,
    pub parameters: Value,
    pub credentials: Option<Value>,
    pub attempt: u32,
    /// Stable across restarts for the same (visit of the state, attempt): a repeated call after
    /// a crash carries the same key, so integrations can make creates idempotent.
    pub idempotency_key: String,
    pub not_before: Option<DateTime<Utc>>,
    pub timeout_seconds: Option<u64>,
    /// The execution's deadline (state machine TimeoutSeconds): the call is abandoned then.
    pub deadline: Option<DateTime<Utc>>,
    /// When the attempt's first call returned "still running" (TimeoutSeconds counts from here).
    pub started: Option<DateTime<Utc>>,
    /// The token a polled task handed back with its last "still running" answer.
    pub poll: Option<PollPhase>,
    /// Set by the driver when the call was already due when the execution was loaded from its
    /// checkpoint: the process before may have sent it, so a create may find its own resource.
    pub resumed: bool,
}

impl TaskCall {
    /// The id the answer to this call must carry.
    pub fn id(&self) -> CallId {
        CallId {
            frame: self.frame,
            visit: self.visit,
            attempt: self.attempt,
            polls: self.poll.as_ref().map_or(0, |p| p.polls),
        }
    }
}

/// What a task call answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The task finished with `output` (its result, before ResultSelector). `report`, when set,
    /// says how the result was awaited (for a polled job: Describe calls, detection delay) and is
    /// recorded in the TaskSucceeded history event.
    Done { output: Value, report: Option<Value> },
    /// The task runs on (a job the service is still working on): the engine checkpoints `token`,
    /// records a TaskPolled event with `status`, and calls again with the token (in
    /// [`TaskCall::poll`]) after `after_seconds` of the execution's clock.
    Poll { token: Value, after_seconds: f64, status: String },
}

impl Answer {
    /// A finished task with nothing to report.
    pub fn done(output: Value) -> Answer {
        Answer::Done { output, report: None }
    }
}

/// The future a task call returns: the answer, or the ASL error it failed with.
pub type TaskFuture<'a> = Pin<Box<dyn Future<Output = Result<Answer, StatesError>> + Send + 'a>>;

/// What serves the Task states of some Resource (an AWS integration, the mock, a script).
pub trait TaskRunner: Send + Sync {
    /// Performs one call. Errors carry their ASL name (`States.TaskFailed`,
    /// `Personalize.ResourceInUseException`, ...) for Retry and Catch to match. `clock` is the
    /// execution's clock: a runner that waits or measures time uses it, never the wall clock, so
    /// `--time-scale` and paused test time apply.
    fn call<'a>(&'a self, call: &'a TaskCall, clock: &'a dyn Clock) -> TaskFuture<'a>;

    /// Whether this runner can serve the state's resource; checked before a run starts so a
    /// missing integration is reported up front, not hours into a run.
    fn accepts(&self, _state: &str, _resource: &str) -> bool {
        true
    }
}

/// Runners looked up by Resource prefix (longest match wins).
#[derive(Clone, Default)]
pub struct Registry {
    runners: Vec<(String, Arc<dyn TaskRunner>)>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn register(&mut self, prefix: impl Into<String>, runner: Arc<dyn TaskRunner>) {
        self.runners.push((prefix.into(), runner));
        self.runners.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    }

    pub fn find(&self, state: &str, resource: &str) -> Option<&Arc<dyn TaskRunner>> {
        self.runners
            .iter()
            .find(|(prefix, runner)| resource.starts_with(prefix.as_str()) && runner.accepts(state, resource))
            .map(|(_, r)| r)
    }

    /// States whose resource no runner serves, as (state, resource).
    pub fn missing<'a>(&self, tasks: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        tasks.iter().filter(|(s, r)| self.find(s, r).is_none()).copied().collect()
    }
}
