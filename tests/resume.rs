//! Crash-resume by construction: a workflow with Waits, Retries and Catches run straight
//! through, then run again with the engine dropped and reloaded from its serialized checkpoint
//! after every single transition. Both runs must agree on output, history and task calls.

mod common;

use std::collections::HashSet;

use common::{script, t0};
use recflow::asl::StateMachine;
use recflow::checkpoint::{CheckpointError, ExecutionStore, MemoryStore, Precondition, Stored, Version};
use recflow::engine::{Driver, Effect, Registry, Status, TaskRunner, TokioClock, pending};
use recflow::tasks::Scripted;
use serde_json::{Value, json};

fn workflow() -> Value {
    json!({"StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Parameters": {"round": 0, "who.$": "$$.Execution.Name", "id.$": "States.UUID()"}, "Next": "Fetch"},
        "Fetch": {"Type": "Task", "Resource": "arn:aws:states:::test:fetch", "ResultPath": "$.fetched",
                  "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 5, "MaxAttempts": 3, "JitterStrategy": "FULL"}],
                  "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 600, "Next": "Risky"},
        "Risky": {"Type": "Task", "Resource": "arn:aws:states:::test:risky", "ResultPath": "$.risky",
                  "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.caught", "Next": "Count"}], "Next": "Count"},
        "Count": {"Type": "Pass", "Parameters": {"round.$": "States.MathAdd($.round, 1)", "who.$": "$.who", "id.$": "$.id", "fetched.$": "$.fetched"}, "Next": "Again?"},
        "Again?": {"Type": "Choice", "Choices": [{"Variable": "$.round", "NumericLessThan": 3, "Next": "Nap"}], "Default": "Publish"},
        "Publish": {"Type": "Task", "Resource": "arn:aws:states:::test:publish", "TimeoutSeconds": 60, "End": true}
    }})
}

fn runner() -> std::sync::Arc<recflow::tasks::ScriptedRunner> {
    script(&[
        (
            "Fetch",
            vec![
                Scripted::err("Busy", "queue full"),
                Scripted::err("Busy", "queue full"),
                Scripted::ok(json!({"rows": 1000})),
            ],
        ),
        (
            "Risky",
            vec![
                Scripted::err("Boom", "bad luck"),
                Scripted::ok(json!("fine")),
                Scripted::err("Boom", "again"),
            ],
        ),
        ("Publish", vec![Scripted::ok(json!({"published": true})).after(2.0)]),
    ])
}

#[tokio::test(start_paused = true)]
async fn reloading_after_every_transition_changes_nothing() {
    let definition = workflow();
    let machine = StateMachine::from_json(&definition).expect("valid");

    // Straight through.
    let straight_runner = runner();
    let mut registry = Registry::new();
    registry.register("", straight_runner.clone());
    let clock = TokioClock::starting_at(t0());
    let straight = MemoryStore::default();
    let driver =
        Driver::start(&machine, &definition, &registry, &clock, &straight, "exec", "wf", json!({}), 99)
            .await
            .expect("start");
    let expected = driver.run().await.expect("run");
    assert_eq!(expected.status, Status::Succeeded, "{:?}", expected.cause);

    // Killed and reloaded after every transition: each step starts from the serialized checkpoint.
    let reloaded_runner = runner();
    let (store, reloads) = run_reloading(&machine, &definition, reloaded_runner.clone(), "exec", 99).await;
    let actual = store.load("exec").await.expect("final checkpoint").execution;

    assert!(reloads > 20, "only {reloads} transitions");
    assert_eq!(actual.output, expected.output);
    assert_eq!(actual, expected);
    assert_eq!(store.history_of("exec"), straight.history_of("exec"));
    let keys: Vec<String> = reloaded_runner.calls().iter().map(|c| c.idempotency_key.clone()).collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a (state, attempt) was called twice: {keys:?}");
    assert_eq!(keys, straight_runner.calls().iter().map(|c| c.idempotency_key.clone()).collect::<Vec<_>>());
    assert_eq!(keys.len(), 3 + 3 + 1);
}

/// Starts execution `name` of `machine` with input `{}`, then drives it to its end with the engine
/// dropped and reloaded from the serialized checkpoint before every transition: the store, and the
/// number of transitions taken that way.
async fn run_reloading(
    machine: &StateMachine,
    definition: &Value,
    runner: std::sync::Arc<recflow::tasks::ScriptedRunner>,
    name: &str,
    seed: u64,
) -> (MemoryStore, usize) {
    let mut registry = Registry::new();
    registry.register("", runner);
    let clock = TokioClock::starting_at(t0());
    let store = MemoryStore::default();
    drop(
        Driver::start(machine, definition, &registry, &clock, &store, name, "wf", json!({}), seed)
            .await
            .expect("start"),
    );
    let mut reloads = 0;
    loop {
        let stored = store.load(name).await.expect("a checkpoint");
        let machine = StateMachine::from_json(&stored.definition).expect("valid");
        let mut driver = Driver::resume(&machine, &registry, &clock, &store, stored);
        if !driver.step().await.expect("step") {
            break;
        }
        reloads += 1;
    }
    (store, reloads)
}

/// A crash after a call went out but before its result was checkpointed repeats the call,
/// with the same idempotency key, so an integration can recognise it.
#[tokio::test(start_paused = true)]
async fn an_unanswered_call_is_repeated_with_the_same_key() {
    let definition = workflow();
    let machine = StateMachine::from_json(&definition).expect("valid");
    let runner = runner();
    let mut registry = Registry::new();
    registry.register("", runner.clone());
    let clock = TokioClock::starting_at(t0());
    let store = MemoryStore::default();
    let mut driver =
        Driver::start(&machine, &definition, &registry, &clock, &store, "exec", "wf", json!({}), 1)
            .await
            .expect("start");
    driver.step().await.expect("Init");
    driver.step().await.expect("enter Fetch");
    drop(driver);

    let stored = store.load("exec").await.expect("checkpoint");
    let Effect::Call(call) = pending(&stored.execution).remove(0) else { panic!("Fetch should be due") };
    let _lost = runner.call(&call, &clock).await; // the process dies before recording the result

    let mut driver = Driver::resume(&machine, &registry, &clock, &store, stored);
    driver.step().await.expect("Fetch again");
    let calls = runner.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key);
    assert_eq!(calls[0].attempt, calls[1].attempt);
    // The repeated call says it may have been sent before: a create may then adopt its resource.
    assert!(!calls[0].resumed && calls[1].resumed);
}

/// A store whose third commit fails, as a full disk would.
struct FullDisk {
    inner: MemoryStore,
    commits: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl ExecutionStore for FullDisk {
    async fn commit(
        &self,
        exec: &recflow::engine::Execution,
        events: &[recflow::engine::HistoryEvent],
        definition: Option<&Value>,
        precondition: Precondition,
    ) -> Result<Version, CheckpointError> {
        // The creation does not count: the third transition's commit fails.
        let transition = matches!(precondition, Precondition::Matches(_));
        if transition && self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == 3 {
            return Err(CheckpointError::Io {
                path: "checkpoint.json".into(),
                source: std::io::Error::other("no space left on device"),
            });
        }
        self.inner.commit(exec, events, definition, precondition).await
    }

    async fn load(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.inner.load(name).await
    }

    async fn read(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.inner.read(name).await
    }

    async fn list(
        &self,
    ) -> Result<Vec<Result<recflow::engine::Execution, CheckpointError>>, CheckpointError> {
        self.inner.list().await
    }

    async fn history(&self, name: &str) -> Result<Vec<recflow::engine::HistoryEvent>, CheckpointError> {
        self.inner.history(name).await
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_failed_checkpoint_the_driver_goes_no_further() {
    let definition = workflow();
    let machine = StateMachine::from_json(&definition).expect("valid");
    let mut registry = Registry::new();
    registry.register("", runner());
    let clock = TokioClock::starting_at(t0());
    let store = FullDisk { inner: MemoryStore::default(), commits: Default::default() };
    let mut driver =
        Driver::start(&machine, &definition, &registry, &clock, &store, "exec", "wf", json!({}), 5)
            .await
            .expect("start");
    driver.step().await.expect("first");
    driver.step().await.expect("second");
    assert!(driver.step().await.is_err(), "the third commit fails");
    let again = driver.step().await.expect_err("no step after a failed commit");
    assert!(again.to_string().contains("recflow resume exec"), "{again}");
}

/// A JSONata machine with Assign in a loop, a Map whose iterations assign their own variables,
/// and a Catch that assigns: reloaded after every transition, it ends with the same output,
/// history and variables as straight through.
fn variables_workflow() -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Assign": {"round": 0, "seen": [], "token": "{% $uuid() %}"}, "Next": "Work"},
        "Work": {"Type": "Map", "Items": "{% $range(1, $round + 2, 1) %}", "MaxConcurrency": 2,
                 "ItemProcessor": {"StartAt": "Square", "States": {
                     "Square": {"Type": "Pass", "Assign": {"mine": "{% $states.input * $states.input %}"}, "Next": "Give"},
                     "Give": {"Type": "Pass", "Output": "{% $mine + $round %}", "End": true}}},
                 "Assign": {"seen": "{% $append($seen, $sum($states.result)) %}"}, "Next": "Risky"},
        "Risky": {"Type": "Task", "Resource": "arn:aws:states:::test:risky",
                  "Arguments": {"round": "{% $round %}", "token": "{% $token %}"},
                  "Catch": [{"ErrorEquals": ["Boom"], "Next": "Count",
                             "Assign": {"caught": "{% $append($exists($caught) ? $caught : [], $states.errorOutput.Cause) %}"}}],
                  "Assign": {"last": "{% $states.result %}"}, "Next": "Count"},
        "Count": {"Type": "Pass", "Assign": {"round": "{% $round + 1 %}"}, "Next": "Again?"},
        "Again?": {"Type": "Choice", "Choices": [{"Condition": "{% $round < 3 %}", "Next": "Nap"}], "Default": "Done"},
        "Nap": {"Type": "Wait", "Seconds": "{% $round * 60 %}", "Next": "Work"},
        "Done": {"Type": "Succeed", "Output": {
            "round": "{% $round %}", "seen": "{% $seen %}", "caught": "{% $caught %}", "last": "{% $last %}",
            "token": "{% $token %}", "mine": "{% $exists($mine) %}", "at": "{% $now() %}"}}
    }})
}

#[tokio::test(start_paused = true)]
async fn variables_survive_reloading_after_every_transition() {
    let definition = variables_workflow();
    let machine = StateMachine::from_json(&definition).expect("valid");
    let runner = || {
        script(&[(
            "Risky",
            vec![Scripted::err("Boom", "first"), Scripted::ok(json!("fine")), Scripted::err("Boom", "third")],
        )])
    };
    let mut registry = Registry::new();
    registry.register("", runner());
    let clock = TokioClock::starting_at(t0());
    let straight = MemoryStore::default();
    let driver =
        Driver::start(&machine, &definition, &registry, &clock, &straight, "vars", "wf", json!({}), 3)
            .await
            .expect("start");
    let expected = driver.run().await.expect("run");
    assert_eq!(expected.status, Status::Succeeded, "{:?}", expected.cause);
    let output = expected.output.clone().expect("output");
    assert_eq!(output["round"], json!(3));
    assert_eq!(output["seen"], json!([5, 17, 38]), "the Map's results, one sum per round");
    assert_eq!(output["caught"], json!(["first", "third"]));
    assert_eq!(output["last"], json!("fine"));
    assert_eq!(output["mine"], json!(false), "an iteration's variables do not leak out of the Map");

    let reloaded_runner = runner();
    let (store, reloads) = run_reloading(&machine, &definition, reloaded_runner.clone(), "vars", 3).await;
    let actual = store.load("vars").await.expect("final checkpoint").execution;
    assert!(reloads > 30, "only {reloads} transitions");
    assert_eq!(actual.output, expected.output);
    assert_eq!(actual.variables, expected.variables);
    assert_eq!(actual.variables["seen"], json!([5, 17, 38]));
    assert_eq!(actual, expected);
    assert_eq!(store.history_of("vars"), straight.history_of("vars"));
    let arguments: Vec<Value> = reloaded_runner.calls().iter().map(|c| c.parameters.clone()).collect();
    assert_eq!(arguments.len(), 3);
    assert_eq!(arguments[2]["round"], json!(2));
    assert_eq!(arguments[0]["token"], output["token"], "the UUID drawn once, in Init");
}
