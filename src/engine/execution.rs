//! What an execution is between two transitions: the whole of it is checkpointed, so it holds
//! everything a restarted process needs and nothing it can recompute.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::history::{Detail, HistoryEvent};

/// Step Functions' execution statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    #[default]
    Running,
    Succeeded,
    Failed,
    /// The state machine's TimeoutSeconds ran out.
    TimedOut,
    /// Stopped from outside (StopExecution; `POST /executions/{name}/stop`).
    Aborted,
}

impl Status {
    /// The status as Step Functions spells it (`RUNNING`, `SUCCEEDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// One execution: its identity, outcome, and where each of its frames stands. The root frame's
/// cursor is `at`; each running Parallel branch and Map iteration is a child frame in `frames`.
/// The whole struct is what a checkpoint holds, except the cold parts of running Map states
/// (their items and finished results), which the history carries and [`Execution::rehydrate`]
/// rebuilds, so a checkpoint's size follows the running frames, not the number of items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub name: String,
    pub state_machine: String,
    /// The execution's input. Cold: the ExecutionStarted event holds it, so a checkpoint does
    /// not repeat it on every transition (a Map over a 10,000-item input would); [`rehydrate`]
    /// puts it back. Format-1 checkpoints, which hold it, still load.
    ///
    /// [`rehydrate`]: Execution::rehydrate
    #[serde(default, skip_serializing)]
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
    /// Where the root frame of a running execution stands; None once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Position>,
    /// Running Parallel branches and Map iterations by frame id (1, 2, ...; 0 is the root).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frames: BTreeMap<u64, Frame>,
    /// The id the next child frame gets; ids are never reused within an execution.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_frame: u64,
    /// The workflow variables of the top-level scope (set by `Assign`, read as `$name`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
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

mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &BTreeMap<usize, u64>, s: S) -> Result<S::Ok, S::Error> {
        map.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<usize, u64>, D::Error> {
        Ok(Vec::<(usize, u64)>::deserialize(d)?.into_iter().collect())
    }
}

/// The cold parts of the Map entered at event `visit`, if it runs attempt `attempt`.
fn cold_of<'m>(
    maps: &'m mut BTreeMap<u64, (u32, &mut MapCold)>,
    visit: u64,
    attempt: u32,
) -> Option<&'m mut MapCold> {
    maps.get_mut(&visit).filter(|(a, _)| *a == attempt).map(|(_, cold)| &mut **cold)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A Parallel branch or a Map iteration: a scope with its own cursor, run by the Parallel or
/// Map state at which its parent frame stands. When its last state ends, the frame ends and
/// hands its output (or error) to that state; only the root frame's end ends the execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// The frame whose current state runs this one (0: the root).
    pub parent: u64,
    /// The branch index (Parallel) or the item index (Map), from 0.
    pub index: usize,
    /// Where the frame stands; taken out only while a transition works on it.
    pub at: Option<Position>,
    /// The workflow variables assigned in this branch or iteration: visible to it and to the
    /// frames it runs, gone when it ends (developer guide, "Passing data between states with
    /// variables": variable scope).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
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
    /// The most Map iterations that run at once, whatever MaxConcurrency says (0 there means
    /// "no bound of its own"). Step Functions runs at most 40 iterations of an inline Map at once
    /// (Map state, inline mode, developer guide); `recflow run --max-concurrency` changes it.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u64,
}

fn default_concurrency() -> u64 {
    40
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_payload_bytes: 256 * 1024,
            max_history_events: 25_000,
            max_concurrency: default_concurrency(),
        }
    }
}

/// A frame's cursor: the state it is at, that state's input, and how far into it it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub state: String,
    /// The state's raw input, before InputPath (null for a running Map state, whose input is
    /// cold: in [`Fork::cold`], rebuilt from history).
    pub input: Value,
    pub phase: Phase,
}

/// How far into its state a frame is.
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
    /// A Parallel state running its branches as child frames.
    Parallel(Box<Fork>),
    /// A Map state running its items as child frames.
    Map(Box<Fork>),
}

/// A running Parallel or Map state: which children run, how many have ended, and its own Retry
/// counters (a retry runs every branch or item again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fork {
    pub entered: Entered,
    /// 0 for the first run, then one more per retry of the whole state.
    pub attempt: u32,
    /// Retries used so far by each retrier of the state, in Retry order.
    pub retries: Vec<u64>,
    /// A retry starts the children again at this instant; none run meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Running children: branch or item index to frame id (in JSON, `[[index, frame], ...]`: an
    /// internally tagged enum cannot read integer map keys back).
    #[serde(with = "pairs")]
    pub running: BTreeMap<usize, u64>,
    /// Branches or items in all.
    pub total: usize,
    /// Children started in this attempt; a Map starts its items in order.
    pub started: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Map: how many iterations may run at once (MaxConcurrency under the execution's ceiling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<usize>,
    /// Map: failed iterations tolerated before the state fails (the count and percentage
    /// thresholds resolved at entry); None when the state sets neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_failures: Option<usize>,
    /// Parallel: the branches' outputs so far, in branch order (a handful, so kept hot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Option<Value>>,
    /// Map: what the checkpoint leaves out.
    #[serde(skip)]
    pub cold: MapCold,
}

/// The parts of a running Map state that grow with its items. They are written once to the
/// history (StateEntered, MapStateStarted, MapIterationSucceeded/Failed) instead of into every
/// checkpoint; [`Execution::rehydrate`] reads them back after a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapCold {
    /// The Map state's raw input.
    pub input: Value,
    /// The items, after ItemsPath.
    pub items: Vec<Value>,
    /// Each item's output (an iteration's output, or its Error and Cause if tolerated).
    pub outputs: Vec<Option<Value>>,
}

/// When a state was entered, and which visit of it this is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entered {
    pub time: DateTime<Utc>,
    /// Id of the StateEntered event: tells visits of the same state apart.
    pub event_id: u64,
}

/// A Task state between StateEntered and its end: the call due (resolved Parameters, attempt,
/// idempotency key), its Retry counters, and a polled job's token.
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
    /// A new execution standing before `start_at`, not yet recorded (see `transition::start`).
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
            frames: BTreeMap::new(),
            next_frame: 0,
            variables: Map::new(),
            last_event_id: 0,
            transitions: 0,
            seed,
            deadline: None,
            updated: Some(start_time),
            limits: Limits::default(),
        }
    }

    /// The cursor of frame `id` (0: the root), if the frame runs.
    pub fn cursor(&self, id: u64) -> Option<&Position> {
        if id == 0 { self.at.as_ref() } else { self.frames.get(&id)?.at.as_ref() }
    }

    /// Every running frame's cursor, the root first, then children by id.
    pub fn cursors(&self) -> impl Iterator<Item = (u64, &Position)> {
        let root = self.at.as_ref().map(|p| (0, p));
        root.into_iter().chain(self.frames.iter().filter_map(|(id, f)| f.at.as_ref().map(|p| (*id, p))))
    }

    /// Refills what the checkpoint leaves out (the input, and the cold parts of running Map
    /// states) from the execution's `history` (every event up to the checkpoint, oldest first). A history that lacks a Map's events leaves its cold parts
    /// empty; the Map then fails with States.Runtime rather than inventing results.
    pub fn rehydrate(&mut self, history: &[HistoryEvent]) {
        if let Some(Detail::ExecutionStarted { input }) = history.first().map(|e| &e.detail) {
            self.input = input.clone();
        }
        let mut maps: BTreeMap<u64, (u32, &mut MapCold)> = BTreeMap::new();
        let root = self.at.as_mut();
        for at in root.into_iter().chain(self.frames.values_mut().filter_map(|f| f.at.as_mut())) {
            if let Phase::Map(fork) = &mut at.phase {
                maps.insert(fork.entered.event_id, (fork.attempt, &mut fork.cold));
            }
        }
        if maps.is_empty() {
            return;
        }
        for event in history {
            match &event.detail {
                Detail::StateEntered { input, .. } => {
                    if let Some((_, cold)) = maps.get_mut(&event.id) {
                        cold.input = input.clone();
                    }
                }
                Detail::MapStateStarted { visit, attempt, items, .. } => {
                    if let Some(cold) = cold_of(&mut maps, *visit, *attempt) {
                        cold.items = items.clone();
                        cold.outputs = vec![None; items.len()];
                    }
                }
                Detail::MapIterationSucceeded { visit, attempt, index, output, .. } => {
                    if let Some(slot) =
                        cold_of(&mut maps, *visit, *attempt).and_then(|c| c.outputs.get_mut(*index))
                    {
                        *slot = Some(output.clone());
                    }
                }
                Detail::MapIterationFailed { visit, attempt, index, error, cause, .. } => {
                    if let Some(slot) =
                        cold_of(&mut maps, *visit, *attempt).and_then(|c| c.outputs.get_mut(*index))
                    {
                        *slot = Some(json!({"Error": error, "Cause": cause}));
                    }
                }
                _ => {}
            }
        }
    }

    /// The execution ARN in Step Functions' shape, in the `local` region of account 000000000000.
    pub fn arn(&self) -> String {
        format!("arn:aws:states:local:000000000000:execution:{}:{}", self.state_machine, self.name)
    }

    /// The state machine ARN, in the same shape as [`Execution::arn`].
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
        if !self.variables.is_empty() {
            // recflow's addition to DescribeExecution's shape: the top-level scope's variables.
            obj.insert("variables".into(), Value::Object(self.variables.clone()));
        }
        out
    }
}

/// Step Functions' timestamp format: RFC 3339, milliseconds, Z.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
