//! Ending a run from outside, on paused tokio time: StopExecution (the execution ends ABORTED)
//! and a shutdown that lets calls already made answer and checkpoints them.

mod common;

use std::time::Duration;

use common::{kinds, script, t0};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::{Driver, ExecutionStore, Registry, Status, Stop, StopRequest, TokioClock};
use recflow::tasks::Scripted;
use serde_json::json;

fn definition() -> serde_json::Value {
    json!({"StartAt": "Train", "States": {
        "Train": {"Type": "Task", "Resource": "arn:aws:states:::test:train", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 3600, "Next": "Publish"},
        "Publish": {"Type": "Task", "Resource": "arn:aws:states:::test:publish", "End": true}
    }})
}

/// The definition, its runner (Train answers as given, Publish with 2), paused clock and store.
struct Rig {
    definition: serde_json::Value,
    machine: StateMachine,
    registry: Registry,
    runner: std::sync::Arc<recflow::tasks::ScriptedRunner>,
    clock: TokioClock,
    store: MemoryStore,
}

impl Rig {
    fn new(train: Vec<Scripted>) -> Rig {
        let definition = definition();
        let machine = StateMachine::from_json(&definition).unwrap();
        let runner = script(&[("Train", train), ("Publish", vec![Scripted::ok(json!(2))])]);
        let mut registry = Registry::new();
        registry.register("", runner.clone());
        Rig {
            definition,
            machine,
            registry,
            runner,
            clock: TokioClock::starting_at(t0()),
            store: MemoryStore::default(),
        }
    }

    /// Execution `e`, started.
    async fn driver(&self) -> Driver<'_> {
        let (machine, registry) = (&self.machine, &self.registry);
        Driver::start(machine, &self.definition, registry, &self.clock, &self.store, "e", "m", json!({}), 1)
            .await
            .unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_ends_the_execution_aborted_with_its_error_and_cause() {
    let rig = Rig::new(vec![Scripted::ok(json!(1))]);
    let (runner, store) = (&rig.runner, &rig.store);
    let driver = rig.driver().await;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        sender.send(StopRequest { error: "Operator".into(), cause: "bad data today".into() }).unwrap();
    });
    let stop = driver.run_until(None, std::future::pending(), Some(receiver), Duration::ZERO).await.unwrap();
    let Stop::Ended(execution) = stop else { panic!("ended: {stop:?}") };
    assert_eq!(execution.status, Status::Aborted);
    assert_eq!(
        (execution.error.as_deref(), execution.cause.as_deref()),
        (Some("Operator"), Some("bad data today"))
    );
    assert_eq!(execution.stop_time, Some(t0() + chrono::Duration::seconds(60)));
    let history = store.history_of("e");
    assert_eq!(kinds(&history).last(), Some(&"ExecutionAborted"));
    // Stopped in the Wait: Publish never ran.
    assert_eq!(runner.calls().iter().map(|c| c.state.as_str()).collect::<Vec<_>>(), vec!["Train"]);
    // What is stored says the same.
    assert_eq!(store.read("e").await.unwrap().execution.status, Status::Aborted);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_lets_a_call_already_made_answer_and_checkpoints_it() {
    // Train takes 5 s to answer; the shutdown comes 1 s into it.
    let rig = Rig::new(vec![Scripted::ok(json!("model-1")).after(5.0)]);
    let (runner, store) = (&rig.runner, &rig.store);
    let driver = rig.driver().await;
    let shutdown = tokio::time::sleep(Duration::from_secs(1));
    let stop = driver.run_until(None, shutdown, None, Duration::from_secs(10)).await.unwrap();
    assert!(matches!(stop, Stop::Interrupted { ref name } if name == "e"), "{stop:?}");
    // The answer was committed, and nothing after it started: the Wait was not entered.
    let stored = store.read("e").await.unwrap();
    assert_eq!(stored.execution.status, Status::Running);
    let history = store.history_of("e");
    assert_eq!(kinds(&history).last(), Some(&"StateExited"), "{:?}", kinds(&history));
    assert_eq!(stored.execution.at.as_ref().map(|a| a.state.as_str()), Some("Pause"));
    assert_eq!(runner.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_drops_a_call_that_outlives_the_grace_and_sleeps_at_once() {
    let rig = Rig::new(vec![Scripted::ok(json!(1)).after(600.0)]);
    let store = &rig.store;
    let driver = rig.driver().await;
    let started = tokio::time::Instant::now();
    let shutdown = tokio::time::sleep(Duration::from_secs(1));
    let stop = driver.run_until(None, shutdown, None, Duration::from_secs(10)).await.unwrap();
    assert!(matches!(stop, Stop::Interrupted { .. }));
    // One second to the signal, ten of grace: the 600-second call was not waited for.
    assert_eq!(started.elapsed(), Duration::from_secs(11));
    let stored = store.read("e").await.unwrap();
    assert_eq!(stored.execution.at.as_ref().map(|a| a.state.as_str()), Some("Train"));
    assert_eq!(kinds(&store.history_of("e")).last(), Some(&"TaskScheduled"));
}

#[tokio::test(start_paused = true)]
async fn a_stop_sent_as_the_shutdown_comes_is_still_honoured() {
    let rig = Rig::new(vec![Scripted::ok(json!(1))]);
    let driver = rig.driver().await;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    sender.send(StopRequest { error: "Operator".into(), cause: "now".into() }).unwrap();
    // Both at once: the shutdown wins the race, and the stop it found waiting is applied.
    let stop = driver
        .run_until(None, std::future::ready(()), Some(receiver), Duration::from_secs(10))
        .await
        .unwrap();
    let Stop::Ended(execution) = stop else { panic!("ended: {stop:?}") };
    assert_eq!(execution.status, Status::Aborted);
    assert_eq!(rig.store.read("e").await.unwrap().execution.status, Status::Aborted);
}
