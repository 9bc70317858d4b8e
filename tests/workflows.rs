//! The shipped workflows end to end: the engine with the real AWS SDK task integrations against
//! the embedded emulator on loopback, with the emulator's faults switched on where a test needs
//! them. Emulated jobs and the engine's clock run at the same time scale.

use std::path::Path;

use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::clock::ScaledClock;
use recflow::engine::{Detail, Driver, Execution, HistoryEvent, Status};
use recflow::local::demo::{self, Demo};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::faults::{Fault, JobKind, OperationFault};
use recflow::local::seed::SeedOptions;
use recflow::tasks::aws::Clients;
use serde_json::{Value, json};

const SCALE: f64 = 600.0;

struct Local {
    _dir: tempfile::TempDir,
    emulator: Emulator,
    clients: Clients,
    demo: Demo,
}

async fn local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(dir.path().join("local"));
    config.time_scale = SCALE;
    config.pending_seconds = 60.0;
    config.in_progress_seconds = 240.0;
    let emulator = Emulator::start(&config).await.unwrap();
    let clients = Clients::local(&emulator.endpoints());
    let seed = SeedOptions { users: 300, items: 120, interactions: 9000, days: 90, clusters: 4, seed: 7 };
    let demo = demo::prepare(&emulator, &clients.personalize, &seed).await.unwrap();
    Local { _dir: dir, emulator, clients, demo }
}

fn definition(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn run(local: &Local, file: &str, extra: Value) -> (Execution, Vec<HistoryEvent>) {
    let definition = definition(file);
    assert_eq!(recflow::tasks::check_definition(&definition), vec![], "{file}");
    let machine = StateMachine::from_json(&definition).unwrap();
    let mut registry = recflow::tasks::aws_registry(&local.clients, None, SCALE);
    recflow::tasks::register_recflow_tasks(&mut registry, &local.clients);
    let mut input = local.demo.input();
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let clock = ScaledClock::new(SCALE);
    let mut store = MemoryStore::default();
    let driver = Driver::start(
        &machine,
        &definition,
        &registry,
        &clock,
        &mut store,
        "nightly-test",
        "nightly-refresh",
        input,
        7,
    )
    .unwrap();
    let execution = driver.run().await.unwrap();
    (execution, store.history)
}

fn errors(history: &[HistoryEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::TaskFailed { state, error, .. } => Some(format!("{state} {error}")),
            _ => None,
        })
        .collect()
}

fn events(local: &Local) -> Vec<Value> {
    std::fs::read_to_string(local.emulator.events.log_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portable_workflow_runs_on_the_emulator() {
    let local = local().await;
    let (exec, history) = run(&local, "workflows/nightly-refresh-portable.asl.json", json!({})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?} {:?}", exec.error, exec.cause);
    let output = exec.output.unwrap();
    assert!(
        output["batchInferenceJobArn"].as_str().unwrap().contains("batch-inference-job/nightly-test-batch")
    );
    assert!(
        history
            .iter()
            .any(|e| matches!(&e.detail, Detail::WaitStarted { state, .. } if state == "WaitForTraining"))
    );
    let recorded = events(&local);
    assert!(recorded.iter().any(|e| e.to_string().contains("TodaysPicksReady")), "{recorded:?}");
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_training_reaches_the_catch_and_the_failure_event() {
    let local = local().await;
    local.emulator.personalize.faults().inject(Fault::FailNextJob {
        kind: JobKind::SolutionVersion,
        reason: "Dataset has fewer than 25 users with at least 2 interactions each.".into(),
    });
    let (exec, history) = run(&local, "workflows/nightly-refresh-portable.asl.json", json!({})).await;
    assert_eq!(exec.status, Status::Failed);
    assert_eq!(exec.error.as_deref(), Some("Recflow.NightlyRefreshFailed"));
    assert!(exec.cause.unwrap().contains("Recflow.TrainingFailed"));
    assert!(
        history
            .iter()
            .any(|e| matches!(&e.detail, Detail::StateEntered { state, .. } if state == "AnnounceFailure"))
    );
    assert!(events(&local).iter().any(|e| e.to_string().contains("NightlyRefreshFailed")));
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_describes_are_retried_by_the_sdk() {
    let local = local().await;
    local.emulator.personalize.faults().inject(Fault::Operation {
        operation: "DescribeDatasetImportJob".into(),
        fault: OperationFault::Throttle,
        count: 2,
    });
    let (exec, history) = run(&local, "workflows/nightly-refresh-portable.asl.json", json!({})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?}", exec.cause);
    // The SDK's own retries absorbed the throttling: the workflow saw no error.
    assert_eq!(errors(&history), Vec::<String>::new());
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_asked_for_during_an_import_is_retried_until_the_import_ends() {
    let local = local().await;
    // Another import into the same dataset group, slow: training must wait it out.
    local
        .emulator
        .personalize
        .faults()
        .inject(Fault::SlowNextJob { kind: JobKind::DatasetImportJob, seconds: 1500.0 });
    local
        .clients
        .personalize
        .create_dataset_import_job()
        .job_name("someone-elses-import")
        .dataset_arn(&local.demo.dataset_arn)
        .data_source(
            aws_sdk_personalize::types::DataSource::builder()
                .data_location("s3://recflow-demo/interactions/interactions.csv")
                .build(),
        )
        .role_arn(demo::ROLE_ARN)
        .send()
        .await
        .unwrap();
    let (exec, history) = run(&local, "workflows/nightly-refresh-portable.asl.json", json!({})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?}", exec.cause);
    let errors = errors(&history);
    assert!(
        errors.contains(&"TrainSolutionVersion Personalize.ResourceInUseException".to_string()),
        "{errors:?}"
    );
    assert!(history.iter().any(
        |e| matches!(&e.detail, Detail::RetryScheduled { state, .. } if state == "TrainSolutionVersion")
    ));
    local.emulator.shutdown().await;
}
