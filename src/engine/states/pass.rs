//! Pass: its Result, or Parameters over its effective input (JSONPath), or its Output (JSONata).

use serde_json::Value;

use crate::asl::Env;
use crate::asl::definition::{QueryLanguage, State};
use crate::asl::errors::StatesError;
use crate::engine::dataflow::Ending;
use crate::engine::transition::Tx;

impl Tx<'_> {
    pub(in crate::engine) fn run_pass(
        &mut self,
        frame: u64,
        state: &State,
        result: Option<&Value>,
        raw: Value,
        env: &Env,
    ) -> Result<(), StatesError> {
        let value = match (state.language, result, &state.parameters) {
            (QueryLanguage::Jsonata, ..) => Value::Null,
            (_, Some(r), _) => r.clone(),
            (_, None, Some(p)) => {
                let effective = self.effective_input(state, &raw, env)?;
                p.eval(&effective, env, &mut self.rng, "Parameters")?
            }
            (_, None, None) => self.effective_input(state, &raw, env)?.into_owned(),
        };
        self.leave(frame, state, raw, Ending::Own(value), env, None)
    }
}
