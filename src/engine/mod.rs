//! Executions: a pure transition function and the async driver that performs its effects.

/// Clocks an execution runs on.
pub mod clock;
mod dataflow;
/// The async driver that performs effects and checkpoints transitions.
pub mod driver;
/// The checkpointed execution: frames, cursors, phases, limits.
pub mod execution;
/// History events in Step Functions' shape.
pub mod history;
/// One owned launch path for run, resume and the daemon.
pub mod launch;
mod states;
/// The versioned, async store executions are kept in between transitions.
pub mod store;
/// Task runners, calls and answers.
pub mod task;
/// The pure transition function.
pub mod transition;

pub use clock::{Clock, SystemClock, TokioClock};
pub use driver::{Driver, Observer, Stop, StopRequest};
pub use execution::{Execution, PollPhase, Status};
pub use history::{Detail, HistoryEvent};
pub use launch::{Launch, SHUTDOWN_GRACE};
pub use store::{CheckpointError, ExecutionStore, Precondition, Stored, Version};
pub use task::{Answer, CallId, Registry, TaskRunner};
pub use transition::{Effect, Event, TaskCall, Transition, pending, start, transition};
