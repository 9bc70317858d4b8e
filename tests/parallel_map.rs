//! Parallel and Map on paused tokio time with scripted tasks: ordering, concurrency, failure,
//! tolerance, nesting, and resuming a Map from its checkpoint without repeating finished items.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use common::{run, script, t0};
use recflow::asl::StateMachine;
use recflow::checkpoint::{ExecutionStore, MemoryStore};
use recflow::engine::execution::Phase;
use recflow::engine::{Detail, Driver, HistoryEvent, Registry, Status, TokioClock};
use recflow::tasks::Scripted;
use serde_json::{Value, json};

fn count(history: &[HistoryEvent], kind: &str) -> usize {
    history.iter().filter(|e| e.detail.type_name() == kind).count()
}

/// The most iterations running at once, read from the history.
fn peak_running(history: &[HistoryEvent]) -> usize {
    let (mut running, mut peak) = (0usize, 0usize);
    for e in history {
        match e.detail {
            Detail::MapIterationStarted { .. } => running += 1,
            Detail::MapIterationSucceeded { .. }
            | Detail::MapIterationFailed { .. }
            | Detail::MapIterationAborted { .. } => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    peak
}

#[tokio::test(start_paused = true)]
async fn parallel_branches_run_at_once_and_give_outputs_in_branch_order() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Slow", "States": {"Slow": {"Type": "Wait", "Seconds": 30, "Next": "A"},
                                       "A": {"Type": "Pass", "Result": "a", "End": true}}},
        {"StartAt": "Fast", "States": {"Fast": {"Type": "Wait", "Seconds": 10, "Next": "B"},
                                       "B": {"Type": "Pass", "Result": "b", "End": true}}}]}}});
    let out = run(def, json!({}), script(&[])).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.output, Some(json!(["a", "b"])));
    // Concurrent: the state took the longer branch's 30 s, not 40 s.
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(30)));
    assert_eq!(count(&out.history, "ParallelStateStarted"), 1);
    assert_eq!(count(&out.history, "ParallelStateSucceeded"), 1);
    // Branch B ended first: its events come before A's.
    let exits: Vec<&str> = out
        .history
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::StateExited { state, .. } if state == "A" || state == "B" => Some(state.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(exits, ["B", "A"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_branch_stops_the_waiting_one_and_catch_runs_once() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "Done", "Branches": [
            {"StartAt": "Sleep", "States": {
                "Sleep": {"Type": "Wait", "Seconds": 3600, "Next": "Late"},
                "Late": {"Type": "Task", "Resource": "arn:aws:states:::test:late", "End": true}}},
            {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Branch.Failed", "Cause": "b2"}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}]},
        "Handled": {"Type": "Pass", "End": true},
        "Done": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({}), script(&[("Late", vec![Scripted::ok(json!(1))])])).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.output, Some(json!({"error": {"Error": "Branch.Failed", "Cause": "b2"}})));
    // The first branch was stopped in its Wait: its task never ran, nothing waited an hour.
    assert!(out.calls.is_empty());
    assert_eq!(out.execution.stop_time, Some(t0()));
    assert_eq!(count(&out.history, "ParallelStateFailed"), 1);
    let handled = out
        .history
        .iter()
        .filter(|e| matches!(&e.detail, Detail::StateEntered { state, .. } if state == "Handled"))
        .count();
    assert_eq!(handled, 1);
}

#[tokio::test(start_paused = true)]
async fn map_keeps_item_order_and_its_concurrency_bound() {
    let items: Vec<Value> = (0..10).map(|i| json!({"n": i})).collect();
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemsPath": "$.items",
        "MaxConcurrency": 3,
        "ItemSelector": {"n.$": "$$.Map.Item.Value.n", "index.$": "$$.Map.Item.Index", "tenant.$": "$.tenant"},
        "ItemProcessor": {"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::test:work", "ResultPath": "$.done", "End": true}}}}}});
    // Every call takes 5 s: with 3 at a time, 10 items take 4 rounds.
    let runner = script(&[("Work", vec![Scripted::ok(json!(true)).after(5.0)])]);
    let out = run(def, json!({"items": items, "tenant": "t1"}), runner).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    let expected: Vec<Value> =
        (0..10).map(|i| json!({"n": i, "index": i, "tenant": "t1", "done": true})).collect();
    assert_eq!(out.execution.output, Some(Value::Array(expected)));
    assert_eq!(peak_running(&out.history), 3);
    assert_eq!(out.calls.len(), 10);
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(20)));
    assert_eq!(count(&out.history, "MapStateStarted"), 1);
    assert_eq!(count(&out.history, "MapIterationSucceeded"), 10);
    assert_eq!(count(&out.history, "MapStateSucceeded"), 1);
}

#[tokio::test(start_paused = true)]
async fn map_concurrency_zero_is_bounded_by_the_execution_ceiling() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "MaxConcurrency": 0,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}}}}});
    let items: Vec<Value> = (0..100).map(Value::from).collect();
    let out = run(def, Value::Array(items.clone()), script(&[])).await;
    assert_eq!(out.execution.output, Some(Value::Array(items)));
    // Step Functions' 40 for an inline Map.
    assert_eq!(peak_running(&out.history), 40);
}

fn tolerant_map(tolerance: Value) -> Value {
    let mut map = json!({"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "Check", "States": {
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThanEquals": 100, "Next": "Bad"}], "Default": "Good"},
            "Bad": {"Type": "Fail", "Error": "Item.Bad", "Cause": "too big"},
            "Good": {"Type": "Pass", "End": true}}}});
    map.as_object_mut().unwrap().extend(tolerance.as_object().unwrap().clone());
    json!({"StartAt": "M", "States": {"M": map}})
}

#[tokio::test(start_paused = true)]
async fn tolerated_failures_leave_their_error_in_the_results() {
    let out = run(tolerant_map(json!({"ToleratedFailureCount": 1})), json!([1, 200, 3]), script(&[])).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.output, Some(json!([1, {"Error": "Item.Bad", "Cause": "too big"}, 3])));
}

#[tokio::test(start_paused = true)]
async fn failures_past_the_tolerance_fail_the_map() {
    let out = run(
        tolerant_map(json!({"ToleratedFailurePercentage": 40})),
        json!([1, 200, 300, 400, 5]),
        script(&[]),
    )
    .await;
    assert_eq!(out.execution.status, Status::Failed);
    assert_eq!(out.execution.error.as_deref(), Some("States.ExceedToleratedFailureThreshold"));
    // Without a tolerance the first failure's own error fails the Map.
    let out = run(tolerant_map(json!({})), json!([1, 200]), script(&[])).await;
    assert_eq!(out.execution.error.as_deref(), Some("Item.Bad"));
    assert_eq!(count(&out.history, "MapStateFailed"), 1);
}

#[tokio::test(start_paused = true)]
async fn map_inside_parallel_and_parallel_inside_map() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "X", "States": {"X": {"Type": "Pass", "Parameters": {"x.$": "$"}, "End": true}}},
                {"StartAt": "Y", "States": {"Y": {"Type": "Pass", "Parameters": {"y.$": "$"}, "End": true}}}]}}}}}},
        {"StartAt": "Z", "States": {"Z": {"Type": "Pass", "Result": "z", "End": true}}}]}}});
    let out = run(def, json!([1, 2]), script(&[])).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.output, Some(json!([[[{"x": 1}, {"y": 1}], [{"x": 2}, {"y": 2}]], "z"])));
    assert!(out.execution.frames.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_map_over_a_non_array_is_a_runtime_error() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Pass", "End": true}}}}}});
    let out = run(def, json!({"items": {"a": 1}}), script(&[])).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"));
    assert!(out.execution.cause.unwrap().contains("must be an array"));
}

/// Iterations of the root's Map that have succeeded so far.
fn map_succeeded(execution: &recflow::engine::Execution) -> usize {
    match execution.at.as_ref().map(|p| &p.phase) {
        Some(Phase::Map(fork)) => fork.succeeded,
        _ => 0,
    }
}

/// A Map stopped in the middle resumes from its checkpoint: finished items are not called
/// again, running ones repeat their due call with the same key, and no checkpoint ever held the
/// items or the finished results (they come back from the history).
#[tokio::test(start_paused = true)]
async fn a_resumed_map_calls_only_unfinished_items() {
    let items: Vec<Value> = (0..50).map(|i| json!(format!("item-{i:02}-{}", "x".repeat(40)))).collect();
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "MaxConcurrency": 5,
        "ItemProcessor": {"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::test:work", "ResultPath": null, "End": true}}}}}});
    let machine = StateMachine::from_json(&def).unwrap();
    let runner = script(&[("Work", vec![Scripted::ok(json!("ok")).after(1.0)])]);
    let mut registry = Registry::new();
    registry.register("", runner.clone());
    let clock = TokioClock::starting_at(t0());
    let largest = Arc::new(AtomicUsize::new(0));
    let seen = largest.clone();
    let store = MemoryStore::default();
    let mut driver =
        Driver::start(&machine, &def, &registry, &clock, &store, "m", "m", Value::Array(items.clone()), 3)
            .await
            .unwrap()
            .observe(Box::new(move |exec, _| {
                let size = serde_json::to_string(exec).unwrap().len();
                seen.fetch_max(size, Ordering::Relaxed);
            }));
    while map_succeeded(driver.execution()) < 17 {
        driver.step().await.unwrap();
    }
    drop(driver);
    let checkpoint = store.checkpoint("m").unwrap();
    assert!(!checkpoint.contains("item-00"), "the checkpoint holds no finished item: {checkpoint}");
    let finished: Vec<String> = store
        .history_of("m")
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::MapIterationSucceeded { index, .. } => Some(items[*index].to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 17);
    let before = runner.calls().len();

    let stored = store.load("m").await.unwrap();
    let mut driver = Driver::resume(&machine, &registry, &clock, &store, stored);
    while driver.step().await.unwrap() {}
    let execution = driver.execution().clone();
    drop(driver);
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.output, Some(Value::Array(items)));
    let calls = runner.calls();
    let mut called: Vec<String> = calls.iter().map(|c| c.parameters.to_string()).collect();
    called.sort();
    called.dedup();
    assert_eq!(called.len(), 50, "every item called");
    assert!(calls[before..].iter().all(|c| !finished.contains(&c.parameters.to_string())));
    // Only the items running at the stop (at most MaxConcurrency) were called again, each with
    // the key of its first call.
    let again: Vec<_> = calls[before..]
        .iter()
        .filter(|c| calls[..before].iter().any(|b| b.idempotency_key == c.idempotency_key))
        .collect();
    assert!(again.len() <= 5, "{} calls repeated", again.len());
    assert!(again.iter().all(|c| c.resumed), "a repeated call says it may have been sent before");
    // Five running iterations at most, whatever the number of items: the checkpoint stays small.
    let largest = largest.load(Ordering::Relaxed);
    assert!(largest < 4_000, "the checkpoint stays small: {largest} bytes");
    assert_eq!(count(&store.history_of("m"), "MapIterationSucceeded"), 50);
}
