//! Pass: its Result, or Parameters over its effective input, placed by ResultPath.

use serde_json::Value;

use crate::asl::definition::State;
use crate::asl::errors::{StatesError, names};
use crate::engine::transition::{Tx, apply_input_path, apply_output_path, apply_result_path};

impl Tx<'_> {
    pub(in crate::engine) fn run_pass(
        &mut self,
        frame: u64,
        state: &State,
        result: Option<&Value>,
        raw: Value,
        ctx: &Value,
    ) -> Result<(), StatesError> {
        let effective = apply_input_path(&state.input_path, &raw, ctx)?;
        let result = match (result, &state.parameters) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => p.eval(&effective, ctx, &mut self.rng, "Parameters")?,
            (None, None) => effective.into_owned(),
        };
        let output = apply_result_path(&state.result_path, raw, result)
            .map_err(|c| StatesError::new(names::RESULT_PATH_MATCH_FAILURE, c))?;
        let output = apply_output_path(&state.output_path, output, ctx)?;
        self.exit(frame, state, output, None);
        Ok(())
    }
}
