//! How data flows through a state in each query language, and the workflow variables it reads
//! and sets.
//!
//! JSONPath: InputPath, then Parameters (or Result) give what the state works on; its result
//! goes through ResultSelector, then `Assign` (whose `$` is that selected result), ResultPath and
//! OutputPath. JSONata: Arguments are evaluated over `$states.input`; `Assign` and `Output` are
//! evaluated together over `$states.input`, `$states.result` (or `$states.errorOutput` in a
//! Catch) and `$states.context`. In both, every expression of a state reads the variables as
//! they were when the state was entered: a state's assignments take effect as it leaves.
//! Source: the developer guide's "Passing data between states with variables" and
//! "Transforming data with JSONata" pages, and the recorded cases in tests/data/conformance.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::execution::Entered;
use super::transition::{Tx, apply_input_path, apply_output_path, apply_result_path, spend};
use crate::asl::Env;
use crate::asl::choice::ChoiceRule;
use crate::asl::definition::{Payload, QueryLanguage, State};
use crate::asl::errors::{StatesError, names};
use crate::asl::jsonata::{self, Bindings};
use crate::asl::retry::{Catcher, error_matches};

/// Step Functions' bounds on variables (quotas page): what one Assign sets, and all variables
/// of an execution together.
const MAX_ASSIGN_BYTES: u64 = 256 * 1024;
const MAX_VARIABLES_BYTES: u64 = 10 * 1024 * 1024;

/// How a state ends, which decides the fields that shape its output and the Assign that applies.
pub(super) enum Ending<'s> {
    /// A Task's, Parallel's or Map's result.
    Result(Value),
    /// A state without a result of its own (Pass, Wait, Succeed, a Choice by its Default):
    /// `value` is what JSONPath takes for its result (Pass's Result or Parameters, otherwise the
    /// effective input); JSONata gives Output, or the state's input.
    Own(Value),
    /// A Choice rule matched, over the effective input `value`: the rule's Assign and Output.
    Rule(&'s ChoiceRule, Value),
    /// A catcher took the error; `value` is the error output `{"Error", "Cause"}`.
    Caught(&'s Catcher, Value),
}

impl Tx<'_> {
    /// What the state's paths and expressions read besides its input: the context object (only
    /// for states that read it) and the variables visible from `frame` (only for states that may
    /// read them).
    pub(super) fn env(&self, frame: u64, state: &State, entered: &Entered, retry_count: Option<u32>) -> Env {
        let context = self.context(state, entered, retry_count);
        let variables = if state.uses_variables { self.visible_variables(frame) } else { Map::new() };
        Env { context, variables }
    }

    /// The top-level scope's variables, then each enclosing branch's or iteration's down to
    /// `frame`'s own.
    fn visible_variables(&self, frame: u64) -> Map<String, Value> {
        let mut chain = Vec::new();
        let mut id = frame;
        while id != 0 {
            let Some(f) = self.exec.frames.get(&id) else { break };
            chain.push(&f.variables);
            id = f.parent;
        }
        let mut out = self.exec.variables.clone();
        for scope in chain.into_iter().rev() {
            out.extend(scope.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// `$states` for a JSONata expression, with the variables in scope.
    pub(super) fn bindings<'a>(
        &mut self,
        env: &'a Env,
        input: &'a Value,
        result: Option<&'a Value>,
        error_output: Option<&'a Value>,
    ) -> Bindings<'a> {
        Bindings::new(input, result, error_output, &env.context, &env.variables, self.now, self.rng.u64(..))
    }

    /// The state's effective input: InputPath over the raw input (JSONPath), or the raw input
    /// itself (JSONata).
    pub(super) fn effective_input<'a>(
        &self,
        state: &State,
        raw: &'a Value,
        env: &'a Env,
    ) -> Result<Cow<'a, Value>, StatesError> {
        match state.language {
            QueryLanguage::JsonPath => apply_input_path(&state.input_path, raw, env),
            QueryLanguage::Jsonata => Ok(Cow::Borrowed(raw)),
        }
    }

    /// What a Task sends and each Parallel branch gets: Parameters over the effective input
    /// (JSONPath), or Arguments over `$states.input` (JSONata); the effective input without them.
    pub(super) fn arguments(&mut self, state: &State, raw: &Value, env: &Env) -> Result<Value, StatesError> {
        match state.language {
            QueryLanguage::JsonPath => {
                let effective = apply_input_path(&state.input_path, raw, env)?;
                match &state.parameters {
                    Some(p) => p.eval(&effective, env, &mut self.rng, "Parameters"),
                    None => Ok(effective.into_owned()),
                }
            }
            QueryLanguage::Jsonata => match &state.arguments {
                Some(t) => {
                    let bindings = self.bindings(env, raw, None, None);
                    t.eval(&bindings, "Arguments")
                }
                None => Ok(raw.clone()),
            },
        }
    }

    /// A payload field in either language (ItemSelector, Credentials): JSONPath reads `data`,
    /// JSONata `$states.input` = `raw`.
    pub(super) fn payload(
        &mut self,
        payload: &Payload,
        data: &Value,
        raw: &Value,
        env: &Env,
        field: &str,
    ) -> Result<Value, StatesError> {
        match payload {
            Payload::Paths(t) => t.eval(data, env, &mut self.rng, field),
            Payload::Jsonata(t) => {
                let bindings = self.bindings(env, raw, None, None);
                t.eval(&bindings, field)
            }
        }
    }

    /// Hands the error to the first matching catcher; false when none matches.
    pub(super) fn catch(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        entered: &Entered,
        err: &StatesError,
    ) -> bool {
        let Some(catcher) = state.catch.iter().find(|c| error_matches(&c.error_equals, &err.error)) else {
            return false;
        };
        let error_output = json!({"Error": err.error, "Cause": err.cause});
        let env = self.env(frame, state, entered, None);
        let caught = Ending::Caught(catcher, error_output);
        if let Err(err) = self.leave(frame, state, raw, caught, &env, Some(&catcher.next)) {
            self.fail(frame, err);
        }
        true
    }

    /// Ends the state: shapes its output from `ending`, sets the variables its Assign gives, and
    /// leaves to `next` (or its own Next, or the end of its scope). An error comes back before
    /// anything changed, for the caller's Retry, Catch or failure.
    pub(super) fn leave(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        ending: Ending<'_>,
        env: &Env,
        next: Option<&str>,
    ) -> Result<(), StatesError> {
        let (output, assigned) = match state.language {
            QueryLanguage::JsonPath => self.jsonpath_ending(state, raw, ending, env)?,
            QueryLanguage::Jsonata => self.jsonata_ending(state, raw, ending, env)?,
        };
        if let Some(assigned) = &assigned {
            self.set_variables(frame, state, assigned)?;
        }
        self.exit(frame, state, output, next, assigned);
        Ok(())
    }

    fn jsonpath_ending(
        &mut self,
        state: &State,
        raw: Value,
        ending: Ending<'_>,
        env: &Env,
    ) -> Result<(Value, Option<Map<String, Value>>), StatesError> {
        let result_path_failure = |c| StatesError::new(names::REFERENCE_PATH_CONFLICT, c);
        match ending {
            Ending::Result(value) | Ending::Own(value) => {
                let selected = match &state.result_selector {
                    Some(t) => t.eval(&value, env, &mut self.rng, "ResultSelector")?,
                    None => value,
                };
                let assigned = self.assign(state.assign.as_ref(), &selected, env)?;
                let output =
                    apply_result_path(&state.result_path, raw, selected).map_err(result_path_failure)?;
                Ok((apply_output_path(&state.output_path, output, env)?, assigned))
            }
            Ending::Rule(rule, effective) => {
                let assigned = self.assign(rule.assign.as_ref(), &effective, env)?;
                Ok((apply_output_path(&state.output_path, effective, env)?, assigned))
            }
            Ending::Caught(catcher, error_output) => {
                let assigned = self.assign(catcher.assign.as_ref(), &error_output, env)?;
                let output = apply_result_path(&catcher.result_path, raw, error_output)
                    .map_err(result_path_failure)?;
                Ok((output, assigned))
            }
        }
    }

    fn jsonata_ending(
        &mut self,
        state: &State,
        raw: Value,
        ending: Ending<'_>,
        env: &Env,
    ) -> Result<(Value, Option<Map<String, Value>>), StatesError> {
        let (result, error_output, assign, output) = match ending {
            Ending::Result(v) => (Some(v), None, state.assign.as_ref(), state.output.as_ref()),
            Ending::Own(_) => (None, None, state.assign.as_ref(), state.output.as_ref()),
            Ending::Rule(rule, _) => (None, None, rule.assign.as_ref(), rule.output.as_ref()),
            Ending::Caught(catcher, e) => (None, Some(e), catcher.assign.as_ref(), catcher.output.as_ref()),
        };
        if assign.is_none() && output.is_none() {
            return Ok((result.or(error_output).unwrap_or(raw), None));
        }
        let bindings = self.bindings(env, &raw, result.as_ref(), error_output.as_ref());
        let assigned = match assign {
            Some(Payload::Jsonata(t)) => Some(object(t.eval(&bindings, "Assign")?)),
            Some(Payload::Paths(t)) => Some(object(t.eval(&raw, env, &mut self.rng, "Assign")?)),
            None => None,
        };
        let output = match output {
            Some(t) => t.eval(&bindings, "Output")?,
            None => result.or(error_output).unwrap_or(raw),
        };
        Ok((output, assigned))
    }

    /// A JSONPath Assign over `data` (its `$`).
    fn assign(
        &mut self,
        assign: Option<&Payload>,
        data: &Value,
        env: &Env,
    ) -> Result<Option<Map<String, Value>>, StatesError> {
        let value = match assign {
            None => return Ok(None),
            Some(Payload::Paths(t)) => t.eval(data, env, &mut self.rng, "Assign")?,
            Some(Payload::Jsonata(t)) => {
                let bindings = self.bindings(env, data, None, None);
                t.eval(&bindings, "Assign")?
            }
        };
        Ok(Some(object(value)))
    }

    /// Sets variables in `frame`'s scope, within Step Functions' bounds. A name that an enclosing
    /// scope holds cannot be set from inside a branch or iteration: its value there is the outer
    /// one, read-only.
    fn set_variables(
        &mut self,
        frame: u64,
        state: &State,
        assigned: &Map<String, Value>,
    ) -> Result<(), StatesError> {
        let mut budget = i128::from(MAX_ASSIGN_BYTES);
        assigned.values().for_each(|v| spend(v, &mut budget));
        if budget < 0 {
            return Err(StatesError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state '{}' assigns more than the maximum of {MAX_ASSIGN_BYTES} bytes of variables in one Assign ({}).",
                    state.name,
                    sizes(assigned)
                ),
            ));
        }
        if frame != 0 {
            let outer = self.exec.frames.get(&frame).map_or(0, |f| f.parent);
            let visible = self.visible_variables(outer);
            if let Some(name) = assigned.keys().find(|k| visible.contains_key(*k)) {
                return Err(StatesError::runtime(format!(
                    "Cannot assign the variable '{name}' inside a Parallel branch or Map iteration: an enclosing scope holds it"
                )));
            }
        }
        let scope = if frame == 0 {
            &mut self.exec.variables
        } else {
            match self.exec.frames.get_mut(&frame) {
                Some(f) => &mut f.variables,
                None => return Ok(()),
            }
        };
        scope.extend(assigned.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut budget = i128::from(MAX_VARIABLES_BYTES);
        let scopes =
            std::iter::once(&self.exec.variables).chain(self.exec.frames.values().map(|f| &f.variables));
        for value in scopes.flat_map(|scope| scope.values()) {
            spend(value, &mut budget);
        }
        if budget < 0 {
            return Err(StatesError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The execution's variables exceed the maximum total size of {MAX_VARIABLES_BYTES} bytes after the state '{}' assigned {}.",
                    state.name,
                    sizes(assigned)
                ),
            ));
        }
        Ok(())
    }

    /// A JSONata expression that must give a JSON value of the field's type; `expected` is the
    /// JSONata type name AWS's message uses ("array", "number", "string", "boolean").
    pub(super) fn typed(
        &mut self,
        expr: &jsonata::Expr,
        env: &Env,
        raw: &Value,
        field: &str,
        expected: &str,
    ) -> Result<Value, StatesError> {
        let bindings = self.bindings(env, raw, None, None);
        let value = expr.eval_defined(&bindings, field)?;
        if type_name(&value) != expected {
            return Err(jsonata::query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{}' for value: {value}",
                expr.source(),
                type_name(&value)
            )));
        }
        Ok(value)
    }
}

/// JSONata's name for a JSON value's type, as AWS's messages give it.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The variables' names with their sizes, largest first: `blob 300,002 bytes, n 1 bytes`.
fn sizes(assigned: &Map<String, Value>) -> String {
    let mut sized: Vec<(usize, &String)> =
        assigned.iter().map(|(k, v)| (serde_json::to_vec(v).map_or(0, |b| b.len()), k)).collect();
    sized.sort_by(|a, b| b.cmp(a));
    sized.iter().map(|(n, k)| format!("{k} {n} bytes")).collect::<Vec<_>>().join(", ")
}

/// An Assign's value is an object by construction (the definition refuses anything else).
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
