//! The scripted runner: task answers from a script per state, in the spirit of Step Functions
//! Local's mock configuration. The CLI's `--mock FILE`, and the engine's tests, use it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use crate::asl::errors::{StatesError, names};
use crate::engine::clock::Clock;
use crate::engine::task::{Answer, TaskFuture, TaskRunner};
use crate::engine::transition::TaskCall;

/// One scripted answer of a task, in the spirit of Step Functions Local's mock configuration:
/// `{"Return": <value>}` or `{"Throw": {"Error": "...", "Cause": "..."}}`, optionally after
/// `"DelaySeconds"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripted {
    #[serde(rename = "Return", default)]
    pub returns: Option<Value>,
    #[serde(rename = "Throw", default)]
    pub throws: Option<StatesError>,
    #[serde(rename = "DelaySeconds", default)]
    pub delay_seconds: f64,
}

impl Scripted {
    pub fn ok(value: Value) -> Scripted {
        Scripted { returns: Some(value), throws: None, delay_seconds: 0.0 }
    }

    pub fn err(error: &str, cause: &str) -> Scripted {
        Scripted { returns: None, throws: Some(StatesError::new(error, cause)), delay_seconds: 0.0 }
    }

    pub fn after(mut self, seconds: f64) -> Scripted {
        self.delay_seconds = seconds;
        self
    }
}

/// Answers calls from a script per state name: the n-th call of a state gets the n-th answer,
/// and the last answer repeats. Keeps every call it saw, for tests.
#[derive(Default)]
pub struct ScriptedRunner {
    script: HashMap<String, Vec<Scripted>>,
    calls: Mutex<Vec<TaskCall>>,
    log: Option<Mutex<std::fs::File>>,
}

impl ScriptedRunner {
    pub fn new(script: HashMap<String, Vec<Scripted>>) -> ScriptedRunner {
        ScriptedRunner { script, calls: Mutex::new(Vec::new()), log: None }
    }

    /// Also appends one JSON line per call (state, attempt, idempotency key, parameters, and
    /// whether it was due at a resume) to `path`, so a call made by a process that later died is
    /// still on record.
    pub fn with_call_log(mut self, path: &std::path::Path) -> std::io::Result<ScriptedRunner> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        self.log = Some(Mutex::new(file));
        Ok(self)
    }

    /// Reads a mock file: `{"StateName": {"Return": ...}, "Other": [{"Throw": {...}}, {"Return": 1}]}`.
    pub fn from_json(value: &Value) -> Result<ScriptedRunner, String> {
        let Value::Object(map) = value else {
            return Err("a mock file must hold an object of state names".into());
        };
        let mut script = HashMap::new();
        for (state, answers) in map {
            let list = match answers {
                Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            let mut parsed = Vec::with_capacity(list.len());
            for (i, item) in list.into_iter().enumerate() {
                // `{"Return": null}` is an answer (the task returned null), not a missing one.
                let returns_null = item.get("Return").is_some_and(Value::is_null);
                let mut answer: Scripted = serde_json::from_value(item)
                    .map_err(|e| format!("{state}[{i}]: {e} (expected {{\"Return\": ...}} or {{\"Throw\": {{\"Error\", \"Cause\"}}}})"))?;
                if returns_null {
                    answer.returns = Some(Value::Null);
                }
                if answer.returns.is_some() == answer.throws.is_some() {
                    return Err(format!("{state}[{i}]: give exactly one of Return and Throw"));
                }
                parsed.push(answer);
            }
            if parsed.is_empty() {
                return Err(format!("{state}: give at least one answer"));
            }
            script.insert(state.clone(), parsed);
        }
        Ok(ScriptedRunner::new(script))
    }

    pub fn calls(&self) -> Vec<TaskCall> {
        self.calls.lock().expect("calls lock").clone()
    }
}

impl TaskRunner for ScriptedRunner {
    fn call<'a>(&'a self, call: &'a TaskCall, clock: &'a dyn Clock) -> TaskFuture<'a> {
        Box::pin(async move {
            let n = {
                let mut calls = self.calls.lock().expect("calls lock");
                calls.push(call.clone());
                calls.iter().filter(|c| c.state == call.state).count() - 1
            };
            if let Some(log) = &self.log {
                let line = serde_json::json!({
                    "state": call.state,
                    "attempt": call.attempt,
                    "idempotency_key": call.idempotency_key,
                    "parameters": call.parameters,
                    "resumed": call.resumed,
                });
                // One write of the whole line: `writeln!` on a File may split it into several
                // writes, and a process killed between them leaves a torn line in the log.
                let text = format!("{line}\n");
                let mut file = log.lock().expect("call log lock");
                file.write_all(text.as_bytes())
                    .map_err(|e| StatesError::new(names::TASK_FAILED, format!("mock call log: {e}")))?;
            }
            let answers = self.script.get(&call.state).ok_or_else(|| {
                StatesError::new(names::TASK_FAILED, format!("no scripted answer for state '{}'", call.state))
            })?;
            let answer = &answers[n.min(answers.len() - 1)];
            if answer.delay_seconds > 0.0 {
                let millis = (answer.delay_seconds * 1000.0).min(i64::MAX as f64) as i64;
                let until = clock.now().checked_add_signed(chrono::Duration::milliseconds(millis));
                clock.sleep_until(until.unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)).await;
            }
            match (&answer.returns, &answer.throws) {
                (_, Some(err)) => Err(err.clone()),
                (Some(value), None) => Ok(Answer::done(value.clone())),
                (None, None) => Ok(Answer::done(Value::Null)),
            }
        })
    }

    fn accepts(&self, state: &str, _resource: &str) -> bool {
        self.script.contains_key(state)
    }
}
