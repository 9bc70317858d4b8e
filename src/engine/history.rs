//! The execution history, shaped after Step Functions' GetExecutionHistory events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub detail: Detail,
}

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
}

impl Detail {
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
            Detail::ExecutionSucceeded { .. } => "ExecutionSucceeded",
            Detail::ExecutionFailed { .. } => "ExecutionFailed",
            Detail::ExecutionTimedOut { .. } => "ExecutionTimedOut",
        }
    }
}
