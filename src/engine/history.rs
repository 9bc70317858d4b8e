//! The execution history, shaped after Step Functions' GetExecutionHistory events. Events of
//! Parallel branches and Map iterations sit in the same history, as in Step Functions; the Map
//! events also carry the items and each iteration's output, which makes the history the journal
//! a restarted Map is rebuilt from ([`super::execution::Execution::rehydrate`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One history event: its id (from 1, in order), when it happened, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub detail: Detail,
}

/// What happened, tagged by Step Functions' event type name (`type` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Detail {
    ExecutionStarted {
        input: Value,
    },
    StateEntered {
        state: String,
        input: Value,
    },
    TaskScheduled {
        state: String,
        resource: String,
        parameters: Value,
        attempt: u32,
        idempotency_key: String,
    },
    TaskSucceeded {
        state: String,
        output: Value,
        /// How a polled task was awaited (Describe calls, detection delay), when it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<Value>,
    },
    /// A task answered "still running" and will be called again at `next_poll`.
    TaskPolled {
        state: String,
        status: String,
        polls: u32,
        next_poll: DateTime<Utc>,
    },
    TaskFailed {
        state: String,
        error: String,
        cause: String,
    },
    RetryScheduled {
        state: String,
        retrier: usize,
        attempt: u32,
        delay_seconds: f64,
        not_before: DateTime<Utc>,
    },
    WaitStarted {
        state: String,
        until: DateTime<Utc>,
    },
    StateExited {
        state: String,
        output: Value,
        /// The workflow variables the state's Assign set as it left (Step Functions'
        /// `assignedVariables`), name to value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_variables: Option<serde_json::Map<String, Value>>,
    },
    /// A Parallel state starts its branches (again, after a retry: `attempt` > 0).
    ParallelStateStarted {
        state: String,
        attempt: u32,
        branches: usize,
    },
    ParallelStateSucceeded {
        state: String,
    },
    /// A branch failed: the other branches were stopped; Retry and Catch of the state follow.
    ParallelStateFailed {
        state: String,
        error: String,
        cause: String,
    },
    /// A Map state starts its iterations; `visit` is the id of its StateEntered event.
    MapStateStarted {
        state: String,
        visit: u64,
        attempt: u32,
        length: usize,
        items: Vec<Value>,
    },
    MapIterationStarted {
        state: String,
        visit: u64,
        attempt: u32,
        index: usize,
    },
    MapIterationSucceeded {
        state: String,
        visit: u64,
        attempt: u32,
        index: usize,
        output: Value,
    },
    MapIterationFailed {
        state: String,
        visit: u64,
        attempt: u32,
        index: usize,
        error: String,
        cause: String,
    },
    /// An iteration stopped because the Map failed.
    MapIterationAborted {
        state: String,
        visit: u64,
        attempt: u32,
        index: usize,
    },
    MapStateSucceeded {
        state: String,
    },
    MapStateFailed {
        state: String,
        error: String,
        cause: String,
    },
    ExecutionSucceeded {
        output: Value,
    },
    ExecutionFailed {
        error: String,
        cause: String,
    },
    ExecutionTimedOut {
        error: String,
        cause: String,
    },
    /// Stopped from outside (StopExecution), with the error and cause the stop gave.
    ExecutionAborted {
        error: String,
        cause: String,
    },
}

impl Detail {
    /// The event's type name, as Step Functions spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Detail::ExecutionStarted { .. } => "ExecutionStarted",
            Detail::StateEntered { .. } => "StateEntered",
            Detail::TaskScheduled { .. } => "TaskScheduled",
            Detail::TaskSucceeded { .. } => "TaskSucceeded",
            Detail::TaskFailed { .. } => "TaskFailed",
            Detail::TaskPolled { .. } => "TaskPolled",
            Detail::RetryScheduled { .. } => "RetryScheduled",
            Detail::WaitStarted { .. } => "WaitStarted",
            Detail::StateExited { .. } => "StateExited",
            Detail::ParallelStateStarted { .. } => "ParallelStateStarted",
            Detail::ParallelStateSucceeded { .. } => "ParallelStateSucceeded",
            Detail::ParallelStateFailed { .. } => "ParallelStateFailed",
            Detail::MapStateStarted { .. } => "MapStateStarted",
            Detail::MapIterationStarted { .. } => "MapIterationStarted",
            Detail::MapIterationSucceeded { .. } => "MapIterationSucceeded",
            Detail::MapIterationFailed { .. } => "MapIterationFailed",
            Detail::MapIterationAborted { .. } => "MapIterationAborted",
            Detail::MapStateSucceeded { .. } => "MapStateSucceeded",
            Detail::MapStateFailed { .. } => "MapStateFailed",
            Detail::ExecutionSucceeded { .. } => "ExecutionSucceeded",
            Detail::ExecutionFailed { .. } => "ExecutionFailed",
            Detail::ExecutionTimedOut { .. } => "ExecutionTimedOut",
            Detail::ExecutionAborted { .. } => "ExecutionAborted",
        }
    }
}
