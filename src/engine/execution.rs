//! What an execution is between two transitions: the whole of it is checkpointed, so it holds
//! everything a restarted process needs and nothing it can recompute.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Step Functions' execution statuses (recflow never produces ABORTED yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    #[default]
    Running,
    Succeeded,
    Failed,
    /// The state machine's TimeoutSeconds ran out.
    TimedOut,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub name: String,
    pub state_machine: String,
    pub input: Value,
    pub start_time: DateTime<Utc>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Where a running execution stands; None once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Position>,
    /// Id of the newest history event (events are numbered from 1, as in Step Functions).
    pub last_event_id: u64,
    pub transitions: u64,
    /// Chosen at start; with the transition number it seeds each transition's randomness.
    pub seed: u64,
    /// When the state machine's TimeoutSeconds runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// The time of the latest transition: a resumed run's clock never goes back before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
    /// Bounds the execution keeps to, recorded with it so a resume keeps them too.
    #[serde(default)]
    pub limits: Limits,
}

/// What one execution may grow to. Step Functions' standard workflows stop at 256 KiB for a
/// state's input or output (`States.DataLimitExceeded`) and at 25,000 history events (Step
/// Functions quotas page); recflow takes the same defaults, and `recflow run --max-payload-bytes /
/// --max-history-events` changes them. They keep a runaway loop from filling memory and disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The largest state input or output, in bytes of compact JSON.
    pub max_payload_bytes: u64,
    /// The most history events an execution may write.
    pub max_history_events: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_payload_bytes: 256 * 1024, max_history_events: 25_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub state: String,
    /// The state's raw input, before InputPath.
    pub input: Value,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase")]
pub enum Phase {
    /// About to enter the state.
    Ready,
    /// A Wait state sleeping until `until`.
    Waiting { entered: Entered, until: DateTime<Utc> },
    /// A Task whose call is due: made durable before the call, so a restart repeats the same
    /// call (same idempotency key) rather than inventing a new one.
    Task(Box<TaskPhase>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entered {
    pub time: DateTime<Utc>,
    /// Id of the StateEntered event: tells visits of the same state apart.
    pub event_id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPhase {
    pub entered: Entered,
    pub resource: String,
    /// The resolved Parameters (or effective input) sent to the task.
    pub parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Value>,
    /// 0 for the first call, then one more per retry.
    pub attempt: u32,
    /// Retries used so far by each retrier of the state, in Retry order.
    pub retries: Vec<u64>,
    /// A retry waits until this instant before calling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    pub idempotency_key: String,
    /// A task answered "still running": what it asked to be handed back on the next call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollPhase>,
    /// When the current attempt's first call returned "still running": TimeoutSeconds counts
    /// from here for the polls that follow, across restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
}

/// A polled task's progress, checkpointed with every poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollPhase {
    /// The runner's token (for a Personalize job: its ARN and when it was created).
    pub token: Value,
    /// Polls answered so far.
    pub polls: u32,
}

impl Execution {
    pub fn new(
        name: &str,
        state_machine: &str,
        input: Value,
        start_at: &str,
        start_time: DateTime<Utc>,
        seed: u64,
    ) -> Execution {
        Execution {
            name: name.to_string(),
            state_machine: state_machine.to_string(),
            input: input.clone(),
            start_time,
            status: Status::Running,
            stop_time: None,
            output: None,
            error: None,
            cause: None,
            at: Some(Position { state: start_at.to_string(), input, phase: Phase::Ready }),
            last_event_id: 0,
            transitions: 0,
            seed,
            deadline: None,
            updated: Some(start_time),
            limits: Limits::default(),
        }
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:states:local:000000000000:execution:{}:{}", self.state_machine, self.name)
    }

    pub fn state_machine_arn(&self) -> String {
        format!("arn:aws:states:local:000000000000:stateMachine:{}", self.state_machine)
    }

    /// The shape of Step Functions' DescribeExecution, for `--output json`.
    pub fn describe(&self) -> Value {
        let mut out = json!({
            "executionArn": self.arn(),
            "stateMachineArn": self.state_machine_arn(),
            "name": self.name,
            "status": self.status.as_str(),
            "startDate": timestamp(self.start_time),
            "input": self.input.to_string(),
        });
        let obj = out.as_object_mut().expect("built as an object");
        if let Some(t) = self.stop_time {
            obj.insert("stopDate".into(), timestamp(t).into());
        }
        if let Some(o) = &self.output {
            obj.insert("output".into(), o.to_string().into());
        }
        if let Some(e) = &self.error {
            obj.insert("error".into(), e.clone().into());
        }
        if let Some(c) = &self.cause {
            obj.insert("cause".into(), c.clone().into());
        }
        if let Some(at) = &self.at {
            obj.insert("currentState".into(), at.state.clone().into());
        }
        out
    }
}

/// Step Functions' timestamp format: RFC 3339, milliseconds, Z.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
