//! Helpers shared by the engine tests: run a definition with scripted tasks on paused time.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::{Detail, Driver, Execution, HistoryEvent, Registry, TaskCall, TokioClock};
use recflow::tasks::{Scripted, ScriptedRunner};
use serde_json::Value;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap()
}

pub struct Outcome {
    pub execution: Execution,
    pub history: Vec<HistoryEvent>,
    pub calls: Vec<TaskCall>,
}

pub fn script(pairs: &[(&str, Vec<Scripted>)]) -> Arc<ScriptedRunner> {
    let map: HashMap<String, Vec<Scripted>> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    Arc::new(ScriptedRunner::new(map))
}

/// Runs `definition` to its end (call from a `start_paused` tokio test).
pub async fn run(definition: Value, input: Value, runner: Arc<ScriptedRunner>) -> Outcome {
    let machine = StateMachine::from_json(&definition).unwrap_or_else(|e| panic!("definition: {e:?}"));
    let mut registry = Registry::new();
    registry.register("", runner.clone());
    let clock = TokioClock::starting_at(t0());
    let store = MemoryStore::default();
    let driver =
        Driver::start(&machine, &definition, &registry, &clock, &store, "test", "machine", input, 42)
            .await
            .expect("start");
    let execution = driver.run().await.expect("run");
    Outcome { execution, history: store.history_of("test"), calls: runner.calls() }
}

pub fn kinds(history: &[HistoryEvent]) -> Vec<&'static str> {
    history.iter().map(|e| e.detail.type_name()).collect()
}

pub fn retry_delays(history: &[HistoryEvent]) -> Vec<f64> {
    history
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::RetryScheduled { delay_seconds, .. } => Some(*delay_seconds),
            _ => None,
        })
        .collect()
}
