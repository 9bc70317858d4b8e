//! A daemon for tests: `event-import` (workflows/event-import.asl.json) and `parked` (a Task
//! then a day-long Wait), their tasks scripted, on a memory store and the wall clock.

use std::sync::Arc;
use std::time::Duration;

use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::daemon::{CatchUp, Daemon, Overlap, Workflow};
use recflow::engine::execution::Limits;
use recflow::engine::{ExecutionStore, Launch, Registry, Status, SystemClock};
use recflow::tasks::{Scripted, ScriptedRunner};
use serde_json::{Value, json};

/// The started daemon and its store.
pub async fn event_import_daemon() -> (Arc<Daemon>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let clock: Arc<dyn recflow::engine::Clock> = Arc::new(SystemClock);
    let answers = [
        ("ImportObject", json!({"DatasetImportJob": {"DatasetImportJobArn": "arn:import"}})),
        ("Retrain", json!({"SolutionVersion": {"SolutionVersionArn": "arn:sv"}})),
        ("Work", json!("done")),
    ];
    let script = answers.into_iter().map(|(state, answer)| (state.to_string(), vec![Scripted::ok(answer)]));
    let mut registry = Registry::new();
    registry.register("", Arc::new(ScriptedRunner::new(script.collect())));
    let registry = Arc::new(registry);
    let event_import: Value =
        serde_json::from_str(&std::fs::read_to_string("workflows/event-import.asl.json").unwrap()).unwrap();
    let parked = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "arn:aws:states:::test:work", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 86400, "End": true}
    }});
    let workflow = |name: &str, definition: Value, defaults: Value| Workflow {
        name: name.to_string(),
        launch: Launch {
            machine: Arc::new(StateMachine::from_json(&definition).unwrap()),
            definition: Arc::new(definition),
            registry: Arc::clone(&registry),
            clock: Arc::clone(&clock),
            store: store.clone() as Arc<dyn ExecutionStore>,
        },
        input: json!({}),
        defaults: defaults.as_object().unwrap().clone(),
        schedules: vec![],
        tz: chrono_tz::UTC,
        overlap: Overlap::Forbid,
        catch_up: CatchUp::Skip,
        jitter: Duration::ZERO,
        limits: Limits::default(),
    };
    let config = json!({"datasetArn": "arn:aws:personalize:us-east-1:1:dataset/d", "roleArn": "arn:aws:iam::1:role/r", "solutionArn": "arn:s"});
    let daemon = Daemon::new(
        vec![workflow("event-import", event_import, config), workflow("parked", parked, json!({}))],
        clock,
        None,
    )
    .unwrap();
    daemon.start().await.unwrap();
    (daemon, store)
}

/// An EventBridge S3 "Object Created" event's detail for `key` in bucket recflow-drop.
pub fn object_created_detail(key: &str) -> Value {
    json!({"version": "0", "bucket": {"name": "recflow-drop"}, "object": {"key": key, "size": 1024}})
}

/// Waits (up to 10 s) until the execution exists and is no longer running.
pub async fn ended(store: &MemoryStore, name: &str) -> recflow::engine::Execution {
    for _ in 0..1000 {
        if let Ok(stored) = store.read(name).await
            && stored.execution.status != Status::Running
        {
            return stored.execution;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} did not end");
}

/// The S3 location `event-import`'s ImportObject read, from the execution's history.
pub fn imported_location(store: &MemoryStore, name: &str) -> Option<Value> {
    store.history_of(name).iter().find_map(|e| match &e.detail {
        recflow::engine::Detail::TaskScheduled { state, parameters, .. } if state == "ImportObject" => {
            Some(parameters["DataSource"]["DataLocation"].clone())
        }
        _ => None,
    })
}
