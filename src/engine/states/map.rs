//! Map, inline mode: one child frame per item, at most MaxConcurrency at once, outputs in item
//! order; the items and finished outputs are journaled in the history, not the checkpoint.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::fork::quoted;
use crate::asl::Env;
use crate::asl::definition::{Bound, Kind, MapState, Payload, QueryLanguage, State};
use crate::asl::errors::{StatesError, names};
use crate::asl::jsonata::{Template, query_error};
use crate::asl::retry::RUNTIME;
use crate::engine::execution::{Entered, Fork, MapCold, Phase, Position};
use crate::engine::history::Detail;
use crate::engine::transition::Tx;

impl Tx<'_> {
    /// Starts a Map state's iterations (on entry, or again after a retry's delay): resolves its
    /// items and bounds, journals the items, and starts as many iterations as it may run at once.
    pub(in crate::engine) fn start_map(&mut self, frame: u64, state: &State, raw: Value, mut fork: Fork) {
        let Kind::Map(map) = &state.kind else { return };
        let (items, max_concurrency, tolerated) =
            match self.resolve_map(frame, state, map, &raw, &fork.entered) {
                Ok(resolved) => resolved,
                Err(err) => return self.state_error(frame, state, raw, &fork.entered, err),
            };
        self.emit(Detail::MapStateStarted {
            state: state.name.clone(),
            visit: fork.entered.event_id,
            attempt: fork.attempt,
            length: items.len(),
            items: items.clone(),
        });
        fork.not_before = None;
        fork.total = items.len();
        (fork.started, fork.succeeded, fork.failed) = (0, 0, 0);
        fork.running.clear();
        fork.max_concurrency = Some(max_concurrency);
        fork.tolerated_failures = tolerated;
        fork.cold = MapCold { input: raw, outputs: vec![None; items.len()], items };
        self.advance_map(frame, state, fork);
    }

    /// The items, the number of iterations that may run at once, and the failures tolerated.
    pub(in crate::engine) fn resolve_map(
        &mut self,
        frame: u64,
        state: &State,
        map: &MapState,
        raw: &Value,
        entered: &Entered,
    ) -> Result<(Vec<Value>, usize, Option<usize>), StatesError> {
        let env = self.env(frame, state, entered, None);
        let effective = self.effective_input(state, raw, &env)?.into_owned();
        let items = self.items(state, map, raw, &effective, &env)?;
        let ceiling = usize::try_from(self.exec.limits.max_concurrency.max(1)).unwrap_or(usize::MAX);
        let max_concurrency =
            match self.bound(&map.max_concurrency, "MaxConcurrency", &effective, raw, &env)? {
                None => 0,
                Some((v, name)) => v.as_ref().and_then(Value::as_u64).ok_or_else(|| {
                    StatesError::runtime(format!(
                        "The {} field refers to value {} which is not a valid integer: {name}",
                        bound_field(&map.max_concurrency, "MaxConcurrency"),
                        quoted(v.as_ref()),
                    ))
                })?,
            };
        let max_concurrency = match usize::try_from(max_concurrency).unwrap_or(usize::MAX) {
            0 => ceiling,
            n => n.min(ceiling),
        };
        let count =
            match self.bound(&map.tolerated_failure_count, "ToleratedFailureCount", &effective, raw, &env)? {
                None => None,
                Some((v, name)) => match v.as_ref().and_then(Value::as_i64) {
                    Some(n) if n < 0 => {
                        return Err(StatesError::runtime("ToleratedFailureCount cannot be negative."));
                    }
                    Some(n) => Some(n as f64),
                    None => {
                        return Err(StatesError::runtime(format!(
                            "The {} field refers to value {} which is not a valid integer: {name}",
                            bound_field(&map.tolerated_failure_count, "ToleratedFailureCount"),
                            quoted(v.as_ref()),
                        )));
                    }
                },
            };
        let field = "ToleratedFailurePercentage";
        let percentage = match self.bound(&map.tolerated_failure_percentage, field, &effective, raw, &env)? {
            None => None,
            Some((v, name)) => match v.as_ref().and_then(Value::as_f64) {
                Some(x) if !(0.0..=100.0).contains(&x) => {
                    return Err(StatesError::runtime(
                        "ToleratedFailurePercentage must be between 0 and 100.",
                    ));
                }
                Some(x) => Some(x),
                None => {
                    return Err(StatesError::runtime(format!(
                        "The {} field refers to value {} which is not a valid float: {name}",
                        bound_field(&map.tolerated_failure_percentage, field),
                        quoted(v.as_ref()),
                    )));
                }
            },
        };
        // Either threshold, when set, bounds the failures: the stricter one decides.
        let by_percentage = percentage.map(|p| (p / 100.0 * items.len() as f64).floor());
        let tolerated = match (count, by_percentage) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(f64::MAX).min(b.unwrap_or(f64::MAX)).min(usize::MAX as f64) as usize),
        };
        Ok((items, max_concurrency, tolerated))
    }

    /// Starts the next items while the Map may run more, then completes it if nothing is left.
    pub(in crate::engine) fn advance_map(&mut self, frame: u64, state: &State, mut fork: Fork) {
        let Kind::Map(map) = &state.kind else { return };
        let limit = fork.max_concurrency.unwrap_or(1).max(1);
        while fork.started < fork.total && fork.running.len() < limit {
            let index = fork.started;
            let input = match self.iteration_input(frame, state, map, &fork, index) {
                Ok(input) => input,
                Err(err) => return self.map_failed(frame, state, fork, err),
            };
            self.emit(Detail::MapIterationStarted {
                state: state.name.clone(),
                visit: fork.entered.event_id,
                attempt: fork.attempt,
                index,
            });
            let id = self.spawn(frame, index, &map.processor.start_at, input);
            fork.running.insert(index, id);
            fork.started += 1;
        }
        if fork.running.is_empty() && fork.started == fork.total {
            self.emit(Detail::MapStateSucceeded { state: state.name.clone() });
            let outputs = std::mem::take(&mut fork.cold.outputs);
            let results = outputs.into_iter().map(|o| o.unwrap_or(Value::Null)).collect();
            let raw = std::mem::take(&mut fork.cold.input);
            return self.finish_fork(frame, state, raw, &fork.entered, results);
        }
        // The Map's input lives in the cold part, out of the checkpoint.
        let phase = Phase::Map(Box::new(fork));
        self.place(frame, Position { state: state.name.clone(), input: Value::Null, phase });
    }

    /// What the Map iterates over: ItemsPath over the effective input (JSONPath), or Items (the
    /// state input when absent) in JSONata; anything but an array fails the state.
    fn items(
        &mut self,
        state: &State,
        map: &MapState,
        raw: &Value,
        effective: &Value,
        env: &Env,
    ) -> Result<Vec<Value>, StatesError> {
        if state.language == QueryLanguage::Jsonata {
            return match &map.items {
                Some(Template::Expr(e)) => match self.typed(e, env, raw, "Items", "array")? {
                    Value::Array(items) => Ok(items),
                    _ => unreachable!("typed checked the array"),
                },
                Some(template) => match template.eval(&self.bindings(env, raw, None, None), "Items")? {
                    Value::Array(items) => Ok(items),
                    other => Err(query_error(format!("The Items field must give an array, not {other}"))),
                },
                None => match raw {
                    Value::Array(items) => Ok(items.clone()),
                    other => Err(query_error(format!("Map state input must be an array but was: {other}"))),
                },
            };
        }
        let items = match &map.items_path {
            None => Some(Cow::Borrowed(effective)),
            Some(p) => p.select(effective, env),
        };
        match items.as_deref() {
            Some(Value::Array(items)) => Ok(items.clone()),
            other => {
                let path = map.items_path.as_ref().map_or("$", |p| p.as_str());
                Err(StatesError::runtime(format!(
                    "Map state input must be an array: ItemsPath {path} selects {}",
                    other.map_or("nothing".to_string(), Value::to_string)
                )))
            }
        }
    }

    /// A bound's value (None when the field is absent) with what names it in messages: the
    /// path, or the JSONata expression.
    fn bound<T>(
        &mut self,
        bound: &Option<Bound<T>>,
        field: &str,
        effective: &Value,
        raw: &Value,
        env: &Env,
    ) -> Result<Option<(Option<Value>, String)>, StatesError>
    where
        T: Clone + Into<Value>,
    {
        Ok(match bound {
            None => None,
            Some(Bound::Fixed(v)) => Some((Some(v.clone().into()), String::new())),
            Some(Bound::Path(p)) => {
                Some((p.select(effective, env).map(Cow::into_owned), p.as_str().to_string()))
            }
            Some(Bound::Expr(e)) => {
                Some((Some(self.typed(e, env, raw, field, "number")?), e.source().to_string()))
            }
        })
    }

    /// An iteration's input: the item, or what ItemSelector (or the older Parameters) builds
    /// from the Map's effective input and `$$.Map.Item` (`$states.context.Map.Item`).
    pub(in crate::engine) fn iteration_input(
        &mut self,
        frame: u64,
        state: &State,
        map: &MapState,
        fork: &Fork,
        index: usize,
    ) -> Result<Value, StatesError> {
        let item = fork.cold.items.get(index).cloned().ok_or_else(|| {
            StatesError::runtime(format!(
                "item {index} of the Map state is missing from its history: the execution's history was cut short"
            ))
        })?;
        let legacy = state.parameters.clone().map(Payload::Paths);
        let Some(selector) = map.item_selector.as_ref().or(legacy.as_ref()) else {
            return Ok(item);
        };
        let mut env = self.env(frame, state, &fork.entered, None);
        let item = json!({"Index": index, "Value": item});
        match &mut env.context {
            Value::Object(o) => {
                o.insert("Map".into(), json!({ "Item": item }));
            }
            other => *other = json!({"Map": {"Item": item}}),
        }
        let raw = &fork.cold.input;
        let effective = self.effective_input(state, raw, &env)?.into_owned();
        self.payload(selector, &effective, raw, &env, "ItemSelector")
    }

    pub(in crate::engine) fn iteration_ended(
        &mut self,
        frame: u64,
        state: &State,
        mut fork: Fork,
        index: usize,
        result: Result<Value, StatesError>,
    ) {
        fork.running.remove(&index);
        let (visit, attempt, name) = (fork.entered.event_id, fork.attempt, state.name.clone());
        match result {
            Ok(output) => {
                self.emit(Detail::MapIterationSucceeded {
                    state: name,
                    visit,
                    attempt,
                    index,
                    output: output.clone(),
                });
                if let Some(slot) = fork.cold.outputs.get_mut(index) {
                    *slot = Some(output);
                }
                fork.succeeded += 1;
            }
            Err(err) => {
                fork.failed += 1;
                self.emit(Detail::MapIterationFailed {
                    state: name,
                    visit,
                    attempt,
                    index,
                    error: err.error.clone(),
                    cause: err.cause.clone(),
                });
                let tolerated =
                    err.error != RUNTIME && fork.tolerated_failures.is_some_and(|t| fork.failed <= t);
                if !tolerated {
                    let err = match fork.tolerated_failures {
                        Some(_) if err.error != RUNTIME => StatesError::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        ),
                        _ => err,
                    };
                    return self.map_failed(frame, state, fork, err);
                }
                if let Some(slot) = fork.cold.outputs.get_mut(index) {
                    *slot = Some(json!({"Error": err.error, "Cause": err.cause}));
                }
            }
        }
        self.advance_map(frame, state, fork);
    }

    /// Stops the Map's running iterations and hands `err` to the state's Retry and Catch.
    pub(in crate::engine) fn map_failed(
        &mut self,
        frame: u64,
        state: &State,
        mut fork: Fork,
        err: StatesError,
    ) {
        for (index, id) in std::mem::take(&mut fork.running) {
            self.abort(id);
            self.emit(Detail::MapIterationAborted {
                state: state.name.clone(),
                visit: fork.entered.event_id,
                attempt: fork.attempt,
                index,
            });
        }
        self.emit(Detail::MapStateFailed {
            state: state.name.clone(),
            error: err.error.clone(),
            cause: err.cause.clone(),
        });
        let raw = std::mem::take(&mut fork.cold.input);
        self.fork_failed(frame, state, raw, fork, err);
    }
}

/// The field a bound came from, as messages name it: `MaxConcurrencyPath` for a path,
/// `MaxConcurrency` for a value or an expression.
fn bound_field<T>(bound: &Option<Bound<T>>, field: &str) -> String {
    match bound {
        Some(Bound::Path(_)) => format!("{field}Path"),
        _ => field.to_string(),
    }
}
