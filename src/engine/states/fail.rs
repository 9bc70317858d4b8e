//! Fail: fails its scope with Error and Cause (or ErrorPath and CausePath, or JSONata
//! expressions); the state that runs the scope, or the execution, answers it.

use serde_json::Value;

use crate::asl::Env;
use crate::asl::definition::Dynamic;
use crate::asl::errors::StatesError;
use crate::engine::transition::Tx;

impl Tx<'_> {
    pub(in crate::engine) fn run_fail(
        &mut self,
        frame: u64,
        error: Option<&Dynamic>,
        cause: Option<&Dynamic>,
        raw: &Value,
        env: &Env,
    ) -> Result<(), StatesError> {
        let error = self.fail_field(error, "Error", raw, env)?;
        let cause = self.fail_field(cause, "Cause", raw, env)?;
        self.fail(frame, StatesError::new(error, cause));
        Ok(())
    }

    pub(in crate::engine) fn fail_field(
        &mut self,
        field: Option<&Dynamic>,
        name: &str,
        raw: &Value,
        env: &Env,
    ) -> Result<String, StatesError> {
        let value = match field {
            None => return Ok(String::new()),
            Some(Dynamic::Literal(s)) => return Ok(s.clone()),
            Some(Dynamic::Path(p)) => p
                .select(raw, env)
                .ok_or_else(|| {
                    StatesError::runtime(format!("Invalid path '{}': no value at that path", p.as_str()))
                })?
                .into_owned(),
            Some(Dynamic::Call(call)) => call.eval(raw, env, &mut self.rng)?,
            Some(Dynamic::Expr(e)) => self.typed(e, env, raw, name, "string")?,
        };
        match value {
            Value::String(s) => Ok(s),
            other => {
                Err(StatesError::runtime(format!("ErrorPath/CausePath must give a string, not {other}")))
            }
        }
    }
}
