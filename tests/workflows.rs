//! The shipped workflows end to end: the engine with the real AWS SDK task integrations against
//! the embedded emulator on loopback, with the emulator's faults switched on where a test needs
//! them. Emulated jobs and the engine's clock run at the same time scale.

#[path = "support/demo_local.rs"]
mod demo_local;

use std::path::Path;

use demo_local::{Local, SCALE};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::clock::ScaledClock;
use recflow::engine::{Detail, Driver, Execution, HistoryEvent, Status};
use recflow::local::demo;
use recflow::local::faults::{Fault, JobKind, OperationFault};
use recflow::local::seed::SeedOptions;
use serde_json::{Value, json};

async fn local() -> Local {
    demo_local::local(
        SeedOptions { users: 300, items: 120, interactions: 9000, days: 90, clusters: 4, seed: 7 },
        std::time::Duration::from_secs(30),
    )
    .await
}

fn definition(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn run(local: &Local, file: &str, extra: Value) -> (Execution, Vec<HistoryEvent>) {
    run_definition(local, definition(file), extra).await
}

async fn run_definition(local: &Local, definition: Value, extra: Value) -> (Execution, Vec<HistoryEvent>) {
    assert_eq!(recflow::tasks::check_definition(&definition), vec![], "{definition}");
    let machine = StateMachine::from_json(&definition).unwrap();
    let mut registry = recflow::tasks::aws_registry(&local.clients, None, SCALE);
    recflow::tasks::register_recflow_tasks(&mut registry, &local.clients);
    let mut input = local.demo.input();
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let clock = ScaledClock::new(SCALE);
    let store = MemoryStore::default();
    let driver = Driver::start(
        &machine,
        &definition,
        &registry,
        &clock,
        &store,
        "nightly-test",
        "nightly-refresh",
        input,
        7,
    )
    .await
    .unwrap();
    let execution = driver.run().await.unwrap();
    (execution, store.history_of("nightly-test"))
}

/// The next solution version ends CREATE FAILED with Personalize's reason for too little data.
fn fail_next_training(local: &Local) {
    local.emulator.personalize.faults().inject(Fault::FailNextJob {
        kind: JobKind::SolutionVersion,
        reason: "Dataset has fewer than 25 users with at least 2 interactions each.".into(),
    });
}

/// Imports the demo interactions and trains a version with the event-import workflow; its ARN.
async fn import_and_train(local: &Local) -> String {
    let event = json!({"detail": {"bucket": {"name": "recflow-demo"}, "object": {"key": "interactions/interactions.csv"}}});
    let (trained, _) = run(local, "workflows/event-import.asl.json", event).await;
    assert_eq!(trained.status, Status::Succeeded, "{:?}", trained.cause);
    trained.output.unwrap()["solutionVersionArn"].as_str().unwrap().to_string()
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
    fail_next_training(&local);
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

fn picks_output(exec: &Execution) -> Value {
    exec.output.as_ref().map(|o| o["picks"].clone()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_refresh_imports_trains_gates_publishes_and_announces() {
    nightly_refresh_runs_through("workflows/nightly-refresh.asl.json").await;
}

/// The same pipeline written in JSONata with workflow variables: the same jobs, picks, events
/// and output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jsonata_nightly_refresh_does_the_same() {
    let exec = nightly_refresh_runs_through("workflows/nightly-refresh-jsonata.asl.json").await;
    let output = exec.output.unwrap();
    let keys: Vec<&String> = output.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["date", "datasetImportJobArn", "solutionVersionArn", "metrics", "batchInferenceJobArn", "picks"],
        "the JSONPath workflow's output fields, in its order"
    );
    assert!(exec.variables["solutionVersionArn"].as_str().unwrap().contains(":solution/"));
}

async fn nightly_refresh_runs_through(file: &str) -> Execution {
    let local = local().await;
    let (exec, history) = run(&local, file, json!({})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?} {:?}", exec.error, exec.cause);
    let picks = picks_output(&exec);
    assert_eq!(picks["Users"], 300, "{picks}");
    assert_eq!(picks["UsersWithErrors"], 0, "{picks}");
    assert!(picks["Latest"].as_str().unwrap().ends_with("picks/latest.json"));
    // Each job was awaited by polling, recorded in the history.
    for state in ["ImportInteractions", "TrainSolutionVersion", "PrecomputeRecommendations"] {
        let report = history
            .iter()
            .find_map(|e| match &e.detail {
                Detail::TaskSucceeded { state: s, report: Some(r), .. } if s == state => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{state} has no polling report"));
        assert!(report["DescribeCalls"].as_u64().unwrap() >= 1, "{report}");
        assert!(report["DetectionDelaySeconds"].as_f64().unwrap() >= 0.0, "{report}");
        assert!(
            history.iter().any(|e| matches!(&e.detail, Detail::TaskPolled { state: s, .. } if s == state))
        );
    }
    let metrics = &exec.output.as_ref().unwrap()["metrics"];
    assert!(metrics["normalized_discounted_cumulative_gain_at_10"].as_f64().unwrap() > 0.0, "{metrics}");
    assert!(events(&local).iter().any(|e| e.to_string().contains("Recommendations Refreshed")));
    // One job of each kind, named from the execution, the state and its visit.
    let imports = local
        .clients
        .personalize
        .list_dataset_import_jobs()
        .dataset_arn(&local.demo.dataset_arn)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = imports.dataset_import_jobs().iter().filter_map(|j| j.job_name()).collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with("nightly-test-ImportInteractions-"), "{names:?}");
    // Today's picks come from a batch job that applied the demo's purchase-exclusion filter.
    let pz = &local.clients.personalize;
    let versions = pz.list_solution_versions().solution_arn(&local.demo.solution_arn).send().await.unwrap();
    let version = versions.solution_versions()[0].solution_version_arn().unwrap();
    let jobs = pz.list_batch_inference_jobs().solution_version_arn(version).send().await.unwrap();
    let job = jobs.batch_inference_jobs()[0].batch_inference_job_arn().unwrap();
    let job = pz.describe_batch_inference_job().batch_inference_job_arn(job).send().await.unwrap();
    assert_eq!(job.batch_inference_job().unwrap().filter_arn(), Some(local.demo.filter_arn.as_str()));
    local.emulator.shutdown().await;
    exec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quality_gate_stops_a_bad_version_with_nothing_published() {
    quality_gate_stops("workflows/nightly-refresh.asl.json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jsonata_quality_gate_stops_a_bad_version_too() {
    quality_gate_stops("workflows/nightly-refresh-jsonata.asl.json").await;
}

async fn quality_gate_stops(file: &str) {
    let local = local().await;
    let (exec, history) = run(&local, file, json!({"minNdcgAt10": 0.99})).await;
    assert_eq!(exec.status, Status::Failed);
    let cause = exec.cause.unwrap();
    assert!(cause.contains("Recflow.QualityGate") && cause.contains("nothing was published"), "{cause}");
    assert!(!history.iter().any(
        |e| matches!(&e.detail, Detail::StateEntered { state, .. } if state == "PrecomputeRecommendations")
    ));
    let listed =
        local.clients.s3.list_objects_v2().bucket("recflow-demo").prefix("picks/").send().await.unwrap();
    assert_eq!(listed.contents().len(), 0, "no picks, no latest.json");
    assert!(events(&local).iter().any(|e| e.to_string().contains("Recommendations Refresh Failed")));
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_batch_job_waits_for_the_queue_with_backoff() {
    let local = local().await;
    let version = import_and_train(&local).await;
    // Five slow batch jobs fill the queue (at most 5 pending or in progress); an emulated hour
    // each (6 s of wall time), so they still run when the workflow reaches its batch job even
    // on a loaded machine.
    for i in 0..5 {
        local
            .emulator
            .personalize
            .faults()
            .inject(Fault::SlowNextJob { kind: JobKind::BatchInferenceJob, seconds: 3600.0 });
        local
            .clients
            .personalize
            .create_batch_inference_job()
            .job_name(format!("other-{i}"))
            .solution_version_arn(&version)
            .job_input(
                aws_sdk_personalize::types::BatchInferenceJobInput::builder()
                    .s3_data_source(
                        aws_sdk_personalize::types::S3DataConfig::builder()
                            .path("s3://recflow-demo/batch/users.jsonl")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .job_output(
                aws_sdk_personalize::types::BatchInferenceJobOutput::builder()
                    .s3_data_destination(
                        aws_sdk_personalize::types::S3DataConfig::builder()
                            .path(format!("s3://recflow-demo/other-{i}/"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .role_arn(demo::ROLE_ARN)
            .send()
            .await
            .unwrap();
    }
    let (exec, history) =
        run(&local, "workflows/todays-picks.asl.json", json!({"solutionVersionArn": version})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?}", exec.cause);
    let errors = errors(&history);
    assert!(
        errors.contains(&"PrecomputeRecommendations Personalize.LimitExceededException".to_string()),
        "{errors:?}"
    );
    let delays: Vec<f64> = history
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::RetryScheduled { state, delay_seconds, .. } if state == "PrecomputeRecommendations" => {
                Some(*delay_seconds)
            }
            _ => None,
        })
        .collect();
    assert!(
        !delays.is_empty() && delays.iter().all(|d| *d <= 1800.0),
        "minute-scale backoff, capped: {delays:?}"
    );
    assert_eq!(picks_output(&exec)["Users"], 300);
    local.emulator.shutdown().await;
}

/// A create repeated for a name this execution sent adopts the job; the same name sent for the
/// first time by anyone else stays an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_adopts_its_own_job_and_only_its_own() {
    use recflow::engine::TaskRunner;
    use recflow::engine::transition::TaskCall;
    use recflow::tasks::personalize::PersonalizeRunner;

    let local = local().await;
    let runner = PersonalizeRunner::new(local.clients.personalize.clone());
    let clock = ScaledClock::new(SCALE);
    let call = |params: Value, resumed: bool, attempt: u32| TaskCall {
        execution: "adopt".into(),
        frame: 0,
        state_machine: "m".into(),
        state: "Import".into(),
        visit: 4,
        resource: "arn:aws:states:::aws-sdk:personalize:createDatasetImportJob".into(),
        parameters: params,
        credentials: None,
        attempt,
        idempotency_key: "k".into(),
        not_before: None,
        timeout_seconds: None,
        deadline: None,
        started: None,
        poll: None,
        resumed,
    };
    let derived = json!({
        "DatasetArn": local.demo.dataset_arn,
        "DataSource": {"DataLocation": "s3://recflow-demo/interactions/interactions.csv"},
        "RoleArn": demo::ROLE_ARN,
    });
    let answer = |a: recflow::engine::Answer| match a {
        recflow::engine::Answer::Done { output, .. } => output,
        other => panic!("{other:?}"),
    };
    let first = answer(runner.call(&call(derived.clone(), false, 0), &clock).await.unwrap());
    let again = answer(runner.call(&call(derived.clone(), false, 0), &clock).await.unwrap());
    assert_eq!(first["DatasetImportJobArn"], again["DatasetImportJobArn"], "a derived name is always ours");
    assert!(first["DatasetImportJobArn"].as_str().unwrap().ends_with("/adopt-Import-4"));

    let mut named = derived.clone();
    named["JobName"] = json!("team-import");
    answer(runner.call(&call(named.clone(), false, 0), &clock).await.unwrap());
    let taken = runner.call(&call(named.clone(), false, 0), &clock).await.unwrap_err();
    assert_eq!(taken.error, "Personalize.ResourceAlreadyExistsException");
    for (resumed, attempt) in [(true, 0), (false, 1)] {
        let adopted = answer(runner.call(&call(named.clone(), resumed, attempt), &clock).await.unwrap());
        assert!(adopted["DatasetImportJobArn"].as_str().unwrap().ends_with("/team-import"), "{adopted}");
    }
    let listed = local
        .clients
        .personalize
        .list_dataset_import_jobs()
        .dataset_arn(&local.demo.dataset_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.dataset_import_jobs().len(), 2);
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_job_is_personalize_job_failed_with_its_reason() {
    let local = local().await;
    fail_next_training(&local);
    let (exec, history) = run(&local, "workflows/nightly-refresh.asl.json", json!({})).await;
    assert_eq!(exec.status, Status::Failed);
    assert_eq!(exec.error.as_deref(), Some("Recflow.NightlyRefreshFailed"));
    let cause = exec.cause.unwrap();
    assert!(cause.contains("Personalize.JobFailed") && cause.contains("fewer than 25 users"), "{cause}");
    assert!(errors(&history).contains(&"TrainSolutionVersion Personalize.JobFailed".to_string()));
    assert!(events(&local).iter().any(|e| e.to_string().contains("Recommendations Refresh Failed")));
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_into_a_missing_bucket_fails_and_creates_no_bucket() {
    let local = local().await;
    let (exec, history) = run(
        &local,
        "workflows/nightly-refresh.asl.json",
        json!({"outputS3Path": "s3://no-such-bucket/out/"}),
    )
    .await;
    assert_eq!(exec.status, Status::Failed);
    let cause = exec.cause.unwrap();
    assert!(
        cause.contains("Personalize.JobFailed") && cause.contains("s3://no-such-bucket/ does not exist"),
        "{cause}"
    );
    assert!(errors(&history).contains(&"PrecomputeRecommendations Personalize.JobFailed".to_string()));
    let buckets = local.clients.s3.list_buckets().send().await.unwrap();
    assert!(!buckets.buckets().iter().any(|b| b.name() == Some("no-such-bucket")), "{buckets:?}");
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_failed_job_makes_a_new_job_and_a_live_one_is_adopted() {
    let local = local().await;
    let definition = json!({"StartAt": "Train", "States": {"Train": {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion.sync",
        "Parameters": {"SolutionArn.$": "$.solutionArn"},
        "Retry": [{"ErrorEquals": ["Personalize.JobFailed"], "IntervalSeconds": 60, "MaxAttempts": 2}],
        "End": true
    }}});
    // Data first, so that training has something to train on.
    import_and_train(&local).await;
    fail_next_training(&local);
    let (exec, history) = run_definition(&local, definition, json!({})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?}", exec.cause);
    assert_eq!(errors(&history), vec!["Train Personalize.JobFailed".to_string()]);
    let versions = local
        .clients
        .personalize
        .list_solution_versions()
        .solution_arn(&local.demo.solution_arn)
        .send()
        .await
        .unwrap();
    // The event-import's version, the failed one, and the retry's own.
    assert_eq!(versions.solution_versions().len(), 3, "{versions:?}");
    let output = exec.output.unwrap();
    assert_eq!(output["SolutionVersion"]["Name"], "nightly-test-Train-2-r1", "{output}");
    assert_eq!(output["SolutionVersion"]["Status"], "ACTIVE");
    local.emulator.shutdown().await;
}

/// The lines of an object in the local bucket, parsed.
async fn jsonl(local: &Local, key: &str) -> Vec<Value> {
    let object = local.clients.s3.get_object().bucket(demo::BUCKET).key(key).send().await.unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    String::from_utf8(bytes.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_compare_trains_three_solutions_at_once_and_runs_a_batch_job_for_each() {
    let local = local().await;
    let (exec, history) = run(&local, "workflows/train-compare.asl.json", json!({})).await;
    assert_eq!(exec.status, Status::Succeeded, "{:?} {:?}", exec.error, exec.cause);
    assert_eq!(errors(&history), Vec::<String>::new());
    let output = exec.output.unwrap();
    assert!(output["import"]["arn"].as_str().unwrap().contains("dataset-import-job/"), "{output}");
    let solutions = output["solutions"].as_array().unwrap();
    // In the order of the branches, whatever order the jobs ended in.
    let expected = [
        ("user-personalization", &local.demo.solution_arn, "aws-user-personalization", "batch/users.jsonl"),
        ("sims", &local.demo.sims_solution_arn, "aws-sims", demo::ITEMS_KEY),
        (
            "personalized-ranking",
            &local.demo.ranking_solution_arn,
            "aws-personalized-ranking",
            demo::RANKING_KEY,
        ),
    ];
    assert_eq!(solutions.len(), expected.len(), "{output}");
    let pz = &local.clients.personalize;
    let mut all_jobs = 0;
    for (solution, (name, arn, recipe, input_key)) in solutions.iter().zip(expected) {
        assert_eq!(solution["name"], name, "{solution}");
        assert_eq!(solution["solutionArn"].as_str(), Some(arn.as_str()), "{solution}");
        assert_eq!(solution["recipeArn"], format!("arn:aws:personalize:::recipe/{recipe}"), "{solution}");
        assert_eq!(solution["batchInputS3Path"], format!("s3://recflow-demo/{input_key}"), "{solution}");
        assert!(solution["metrics"]["normalized_discounted_cumulative_gain_at_10"].is_number(), "{solution}");
        // One version trained per solution, and it is the one reported.
        let versions = pz.list_solution_versions().solution_arn(arn).send().await.unwrap();
        let versions = versions.solution_versions();
        assert_eq!(versions.len(), 1, "{name}: {versions:?}");
        assert_eq!(versions[0].status(), Some("ACTIVE"));
        let version = versions[0].solution_version_arn().unwrap();
        assert_eq!(solution["solutionVersionArn"].as_str(), Some(version), "{solution}");
        // One batch job per version, with the batch input its recipe reads, answered line by line.
        let jobs = pz.list_batch_inference_jobs().solution_version_arn(version).send().await.unwrap();
        let jobs = jobs.batch_inference_jobs();
        assert_eq!(jobs.len(), 1, "{name}: {jobs:?}");
        assert_eq!(jobs[0].status(), Some("ACTIVE"));
        all_jobs += 1;
        let job_arn = jobs[0].batch_inference_job_arn().unwrap();
        assert_eq!(solution["batch"]["batchInferenceJobArn"].as_str(), Some(job_arn), "{solution}");
        let out_path = solution["batch"]["outputS3Path"].as_str().unwrap();
        assert_eq!(out_path, format!("s3://recflow-demo/batch/output/nightly-test/{name}/"));
        let file = input_key.rsplit('/').next().unwrap();
        let out_key = format!("batch/output/nightly-test/{name}/{file}.out");
        let lines = jsonl(&local, &out_key).await;
        assert_eq!(lines.len(), jsonl(&local, input_key).await.len(), "{out_key}");
        assert!(lines.iter().all(|l| l["error"].is_null()), "{out_key}: {:?}", lines.first());
        let first = &lines[0];
        match name {
            "sims" => assert!(first["input"]["itemId"].is_string(), "{first}"),
            "personalized-ranking" => {
                // The given list, re-ranked.
                let mut given: Vec<&Value> = first["input"]["itemList"].as_array().unwrap().iter().collect();
                let mut ranked: Vec<&Value> =
                    first["output"]["recommendedItems"].as_array().unwrap().iter().collect();
                assert_eq!(given.len(), demo::RANKING_CANDIDATES);
                given.sort_by_key(|v| v.to_string());
                ranked.sort_by_key(|v| v.to_string());
                assert_eq!(given, ranked, "{first}");
            }
            _ => assert!(first["input"]["userId"].is_string(), "{first}"),
        }
    }
    let listed = pz.list_batch_inference_jobs().send().await.unwrap();
    assert_eq!(listed.batch_inference_jobs().len(), all_jobs);
    // The three trainings ran at once: each started before any of them ended.
    let position = |wanted: fn(&Detail) -> bool| {
        history.iter().enumerate().filter(|(_, e)| wanted(&e.detail)).map(|(i, _)| i).collect::<Vec<_>>()
    };
    let trainings_started = position(
        |d| matches!(d, Detail::TaskScheduled { resource, .. } if resource.ends_with("createSolutionVersion.sync")),
    );
    let trainings_ended = position(
        |d| matches!(d, Detail::TaskSucceeded { output, .. } if output["SolutionVersion"]["Status"] == "ACTIVE"),
    );
    assert_eq!((trainings_started.len(), trainings_ended.len()), (3, 3));
    assert!(
        trainings_started.iter().max() < trainings_ended.iter().min(),
        "{trainings_started:?} {trainings_ended:?}"
    );
    assert_eq!(position(|d| matches!(d, Detail::ParallelStateStarted { branches: 3, .. })).len(), 1);
    assert_eq!(position(|d| matches!(d, Detail::MapIterationSucceeded { .. })).len(), 3);
    local.emulator.shutdown().await;
}
