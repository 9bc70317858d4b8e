//! Task runners: how the engine reaches the world. The engine knows a Resource string and a
//! `TaskRunner`; which AWS service (or script) sits behind it is the registry's business.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::transition::TaskCall;
use crate::asl::errors::StatesError;

pub type TaskFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, StatesError>> + Send + 'a>>;

pub trait TaskRunner: Send + Sync {
    /// Performs one call. Errors carry their ASL name (`States.TaskFailed`,
    /// `Personalize.ResourceInUseException`, ...) for Retry and Catch to match.
    fn call<'a>(&'a self, call: &'a TaskCall) -> TaskFuture<'a>;

    /// Whether this runner can serve the state's resource; checked before a run starts so a
    /// missing integration is reported up front, not hours into a run.
    fn accepts(&self, _state: &str, _resource: &str) -> bool {
        true
    }
}

/// Runners looked up by Resource prefix (longest match wins).
#[derive(Clone, Default)]
pub struct Registry {
    runners: Vec<(String, Arc<dyn TaskRunner>)>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn register(&mut self, prefix: impl Into<String>, runner: Arc<dyn TaskRunner>) {
        self.runners.push((prefix.into(), runner));
        self.runners.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    }

    pub fn find(&self, state: &str, resource: &str) -> Option<&Arc<dyn TaskRunner>> {
        self.runners
            .iter()
            .find(|(prefix, runner)| resource.starts_with(prefix.as_str()) && runner.accepts(state, resource))
            .map(|(_, r)| r)
    }

    /// States whose resource no runner serves, as (state, resource).
    pub fn missing<'a>(&self, tasks: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        tasks.iter().filter(|(s, r)| self.find(s, r).is_none()).copied().collect()
    }
}

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

    /// Also appends one JSON line per call (state, attempt, idempotency key) to `path`, so a
    /// call made by a process that later died is still on record.
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
                let answer: Scripted = serde_json::from_value(item)
                    .map_err(|e| format!("{state}[{i}]: {e} (expected {{\"Return\": ...}} or {{\"Throw\": {{\"Error\", \"Cause\"}}}})"))?;
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
    fn call<'a>(&'a self, call: &'a TaskCall) -> TaskFuture<'a> {
        Box::pin(async move {
            let n = {
                let mut calls = self.calls.lock().expect("calls lock");
                calls.push(call.clone());
                calls.iter().filter(|c| c.state == call.state).count() - 1
            };
            if let Some(log) = &self.log {
                let line = serde_json::json!({"state": call.state, "attempt": call.attempt, "idempotency_key": call.idempotency_key});
                let mut file = log.lock().expect("call log lock");
                writeln!(file, "{line}")
                    .map_err(|e| StatesError::new("States.TaskFailed", format!("mock call log: {e}")))?;
            }
            let answers = self.script.get(&call.state).ok_or_else(|| {
                StatesError::new(
                    "States.TaskFailed",
                    format!("no scripted answer for state '{}'", call.state),
                )
            })?;
            let answer = &answers[n.min(answers.len() - 1)];
            if answer.delay_seconds > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(answer.delay_seconds)).await;
            }
            match (&answer.returns, &answer.throws) {
                (_, Some(err)) => Err(err.clone()),
                (Some(value), None) => Ok(value.clone()),
                (None, None) => Ok(Value::Null),
            }
        })
    }

    fn accepts(&self, state: &str, _resource: &str) -> bool {
        self.script.contains_key(state)
    }
}
