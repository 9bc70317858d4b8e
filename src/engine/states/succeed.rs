//! Succeed: ends its scope (the execution, or its Parallel branch or Map iteration) with its
//! effective input after OutputPath (JSONPath), or its Output (JSONata).

use serde_json::Value;

use crate::asl::Env;
use crate::asl::definition::State;
use crate::asl::errors::StatesError;
use crate::engine::dataflow::Ending;
use crate::engine::transition::Tx;

impl Tx<'_> {
    pub(in crate::engine) fn run_succeed(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        env: &Env,
    ) -> Result<(), StatesError> {
        let effective = self.effective_input(state, &raw, env)?.into_owned();
        self.leave(frame, state, raw, Ending::Own(effective), env, None)
    }
}
