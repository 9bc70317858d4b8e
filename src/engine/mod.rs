//! Executions: a pure transition function and the async driver that performs its effects.

pub mod clock;
pub mod driver;
pub mod execution;
mod fork;
pub mod history;
pub mod task;
pub mod transition;

pub use clock::{Clock, SystemClock, TokioClock};
pub use driver::{Driver, Observer};
pub use execution::{Execution, PollPhase, Status};
pub use history::{Detail, HistoryEvent};
pub use task::{Answer, CallId, Registry, TaskRunner};
pub use transition::{Effect, Event, TaskCall, Transition, pending, start, transition};
