//! Succeed: ends its scope (the execution, or its Parallel branch or Map iteration) with its
//! effective input after OutputPath.

use serde_json::Value;

use crate::asl::definition::State;
use crate::asl::errors::StatesError;
use crate::engine::history::Detail;
use crate::engine::transition::{Tx, apply_input_path, apply_output_path};

impl Tx<'_> {
    pub(in crate::engine) fn run_succeed(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        ctx: &Value,
    ) -> Result<(), StatesError> {
        let effective = apply_input_path(&state.input_path, &raw, ctx)?;
        let output = apply_output_path(&state.output_path, effective.into_owned(), ctx)?;
        self.emit(Detail::StateExited { state: state.name.clone(), output: output.clone() });
        self.end_scope(frame, Ok(output));
        Ok(())
    }
}
