//! What Parallel and Map share: a state that runs child frames (its branches, or one iteration per
//! item) and ends when they have all ended, or when one fails beyond what the state tolerates.
//!
//! Step Functions' rules kept here (Parallel and Map pages of the developer guide, and the
//! recorded cases in tests/data/conformance): branch outputs come in branch order and iteration
//! outputs in item order; a failed branch stops the others and the state fails with that branch's
//! error; Retry runs every branch or item again; a Map that sets ToleratedFailureCount or
//! ToleratedFailurePercentage fails with States.ExceedToleratedFailureThreshold once more
//! iterations fail than it tolerates, and without them fails with the first iteration's error.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::asl::definition::{Kind, State};
use crate::asl::errors::StatesError;
use crate::asl::retry::RUNTIME;
use crate::engine::dataflow::Ending;
use crate::engine::execution::{Entered, Fork, MapCold, Phase, Position};
use crate::engine::history::Detail;
use crate::engine::transition::{Tx, later};

impl Tx<'_> {
    /// A Parallel or Map state just entered, before its first attempt.
    pub(in crate::engine) fn fork(&self, state: &State, entered: &Entered) -> Fork {
        Fork {
            entered: entered.clone(),
            attempt: 0,
            retries: vec![0; state.retry.len()],
            not_before: None,
            running: BTreeMap::new(),
            total: 0,
            started: 0,
            succeeded: 0,
            failed: 0,
            max_concurrency: None,
            tolerated_failures: None,
            outputs: Vec::new(),
            cold: MapCold::default(),
        }
    }

    /// A branch or iteration of the state at which frame `parent` stands has ended.
    pub(in crate::engine) fn child_ended(
        &mut self,
        parent: u64,
        index: usize,
        result: Result<Value, StatesError>,
    ) {
        let scope = self.machine_of(parent);
        let Some(at) = self.take_cursor(parent) else { return };
        let Some(state) = scope.and_then(|m| m.state(&at.state)) else {
            return self.fail_execution(StatesError::runtime(format!(
                "state '{}' is not in the definition",
                at.state
            )));
        };
        match at.phase {
            Phase::Parallel(fork) => self.branch_ended(parent, state, at.input, *fork, index, result),
            Phase::Map(fork) => self.iteration_ended(parent, state, *fork, index, result),
            phase => self.place(parent, Position { state: at.state, input: at.input, phase }),
        }
    }

    /// The whole Parallel or Map state failed: retry it after the retrier's delay, or let Catch
    /// (or the frame's failure) take the error.
    pub(in crate::engine) fn fork_failed(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        mut fork: Fork,
        err: StatesError,
    ) {
        if err.error != RUNTIME
            && let Some((retrier, delay)) = self.retry_delay(state, &mut fork.retries, &err.error)
        {
            fork.attempt += 1;
            let not_before = later(self.now, delay);
            fork.not_before = Some(not_before);
            self.emit(Detail::RetryScheduled {
                state: state.name.clone(),
                retrier,
                attempt: fork.attempt,
                delay_seconds: delay,
                not_before,
            });
            let at = match state.kind {
                Kind::Map(_) => {
                    fork.cold = MapCold { input: raw, ..MapCold::default() };
                    Position {
                        state: state.name.clone(),
                        input: Value::Null,
                        phase: Phase::Map(Box::new(fork)),
                    }
                }
                _ => {
                    Position { state: state.name.clone(), input: raw, phase: Phase::Parallel(Box::new(fork)) }
                }
            };
            return self.place(frame, at);
        }
        let entered = fork.entered;
        self.state_error(frame, state, raw, &entered, err);
    }

    /// All children succeeded: their outputs are the state's result.
    pub(in crate::engine) fn finish_fork(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        entered: &Entered,
        results: Vec<Value>,
    ) {
        let env = self.env(frame, state, entered, None);
        if let Err(err) =
            self.leave(frame, state, raw.clone(), Ending::Result(Value::Array(results)), &env, None)
        {
            self.state_error(frame, state, raw, entered, err);
        }
    }
}

/// A value as Step Functions quotes it in its Map messages: `"NoNumber"`, `"{}"`.
pub(super) fn quoted(value: Option<&Value>) -> String {
    match value {
        None => "null".into(),
        Some(Value::String(s)) => format!("\"{s}\""),
        Some(other) => format!("\"{other}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting_follows_the_recorded_messages() {
        assert_eq!(quoted(Some(&json!("NoNumber"))), "\"NoNumber\"");
        assert_eq!(quoted(Some(&json!({}))), "\"{}\"");
        assert_eq!(quoted(None), "null");
    }
}
