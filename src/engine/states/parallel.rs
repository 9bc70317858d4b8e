//! Parallel: every branch at once, each a child frame; outputs in branch order; a failed branch
//! stops the others and fails the state with its error.

use serde_json::Value;

use crate::asl::definition::{Kind, State};
use crate::asl::errors::StatesError;
use crate::engine::execution::{Fork, Phase, Position};
use crate::engine::history::Detail;
use crate::engine::transition::Tx;

impl Tx<'_> {
    /// Starts every branch of a Parallel state (on entry, or again after a retry's delay), each
    /// with the state's effective input (InputPath, then Parameters; or Arguments in JSONata).
    pub(in crate::engine) fn start_parallel(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        mut fork: Fork,
    ) {
        let Kind::Parallel { branches } = &state.kind else { return };
        let env = self.env(frame, state, &fork.entered, None);
        let input = match self.arguments(state, &raw, &env) {
            Ok(input) => input,
            Err(err) => return self.state_error(frame, state, raw, &fork.entered, err),
        };
        self.emit(Detail::ParallelStateStarted {
            state: state.name.clone(),
            attempt: fork.attempt,
            branches: branches.len(),
        });
        fork.not_before = None;
        fork.total = branches.len();
        fork.started = branches.len();
        (fork.succeeded, fork.failed) = (0, 0);
        fork.outputs = vec![None; branches.len()];
        fork.running.clear();
        for (i, branch) in branches.iter().enumerate() {
            let id = self.spawn(frame, i, &branch.start_at, input.clone());
            fork.running.insert(i, id);
        }
        let phase = Phase::Parallel(Box::new(fork));
        self.place(frame, Position { state: state.name.clone(), input: raw, phase });
    }

    pub(in crate::engine) fn branch_ended(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        mut fork: Fork,
        index: usize,
        result: Result<Value, StatesError>,
    ) {
        fork.running.remove(&index);
        match result {
            Ok(output) => {
                if let Some(slot) = fork.outputs.get_mut(index) {
                    *slot = Some(output);
                }
                fork.succeeded += 1;
                if fork.succeeded < fork.total {
                    let phase = Phase::Parallel(Box::new(fork));
                    return self.place(frame, Position { state: state.name.clone(), input: raw, phase });
                }
                self.emit(Detail::ParallelStateSucceeded { state: state.name.clone() });
                let outputs = std::mem::take(&mut fork.outputs);
                let results = outputs.into_iter().map(|o| o.unwrap_or(Value::Null)).collect();
                self.finish_fork(frame, state, raw, &fork.entered, results);
            }
            Err(err) => {
                for (_, id) in std::mem::take(&mut fork.running) {
                    self.abort(id);
                }
                self.emit(Detail::ParallelStateFailed {
                    state: state.name.clone(),
                    error: err.error.clone(),
                    cause: err.cause.clone(),
                });
                self.fork_failed(frame, state, raw, fork, err);
            }
        }
    }
}
