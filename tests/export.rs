//! `recflow export --target stepfunctions` and `recflow iam-policy`, through the real binary:
//! every shipped workflow's export passes the independent `asl-validator` (npm) and runs on
//! recflow against the embedded emulator, with the real AWS SDK clients over loopback, to the
//! same result as the original; the IAM policies list exactly the actions each workflow calls.
//!
//! asl-validator: `npm install --prefix target/asl-validator asl-validator` (as `.ci/run` does),
//! or RECFLOW_ASL_VALIDATOR=path/to/asl-validator. Without it the validator test says so and
//! passes, unless RECFLOW_ASL_VALIDATOR_TESTS=1 (set by `.ci/run`): then it fails.

#[path = "support/demo_local.rs"]
mod demo_local;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use demo_local::{Local, SCALE};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::clock::{Clock, ScaledClock};
use recflow::engine::task::TaskFuture;
use recflow::engine::{Execution, Status, TaskCall, TaskRunner};
use recflow::local::seed::SeedOptions;
use recflow::tasks::picks_runner::PicksRunner;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_recflow");
/// The Lambda function that publishes today's picks in the exports.
const PICKS_LAMBDA: &str = "arn:aws:lambda:eu-west-1:123456789012:function:recflow-picks";
const WORKFLOWS: [&str; 6] = [
    "workflows/event-import.asl.json",
    "workflows/nightly-refresh.asl.json",
    "workflows/nightly-refresh-jsonata.asl.json",
    "workflows/nightly-refresh-portable.asl.json",
    "workflows/todays-picks.asl.json",
    "workflows/train-compare.asl.json",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn recflow(args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn stdout_json(out: &Output, what: &str) -> Value {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn exported(file: &str) -> Value {
    let out = recflow(&["export", file, "--target", "stepfunctions", "--picks-lambda", PICKS_LAMBDA]);
    stdout_json(&out, file)
}

fn original(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo(file)).unwrap()).unwrap()
}

fn asl_validator() -> Option<PathBuf> {
    let path = std::env::var_os("RECFLOW_ASL_VALIDATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("target/asl-validator/node_modules/.bin/asl-validator"));
    path.exists().then_some(path)
}

#[test]
fn every_export_passes_asl_validator() {
    let Some(validator) = asl_validator() else {
        assert!(
            std::env::var_os("RECFLOW_ASL_VALIDATOR_TESTS").is_none(),
            "RECFLOW_ASL_VALIDATOR_TESTS is set but there is no target/asl-validator/node_modules/.bin/asl-validator (RECFLOW_ASL_VALIDATOR)"
        );
        eprintln!("skipped: no asl-validator (npm install --prefix target/asl-validator asl-validator)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let validate = |name: &str, definition: &Value| {
        let path = dir.path().join(name.replace('/', "_"));
        std::fs::write(&path, serde_json::to_string_pretty(definition).unwrap()).unwrap();
        let out = Command::new(&validator).arg("--json-path").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{name}: asl-validator refused the export:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for file in WORKFLOWS {
        let definition = exported(file);
        assert!(!definition.to_string().contains(".sync\""), "{file}: a .sync resource is left");
        assert!(!definition.to_string().contains("arn:recflow:"), "{file}: a recflow task is left");
        validate(file, &definition);
        let template = stdout_json(
            &recflow(&[
                "export",
                file,
                "--target",
                "stepfunctions",
                "--format",
                "cloudformation",
                "--picks-lambda",
                PICKS_LAMBDA,
            ]),
            file,
        );
        let properties = &template["Resources"]["StateMachine"]["Properties"];
        assert_eq!(properties["Definition"], definition, "{file}");
        validate(&format!("{file}.cfn"), &properties["Definition"]);
    }
}

#[test]
fn picks_without_a_lambda_are_refused_with_the_state_named() {
    for (file, states) in [
        ("workflows/nightly-refresh.asl.json", vec!["PublishPicks"]),
        ("workflows/nightly-refresh-jsonata.asl.json", vec!["PublishPicks"]),
        ("workflows/todays-picks.asl.json", vec!["PublishPicks"]),
    ] {
        let out = recflow(&["export", file, "--target", "stepfunctions"]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for state in states {
            assert!(stderr.contains(&format!("States.{state}.Resource")), "{stderr}");
        }
        assert!(stderr.contains("--picks-lambda"), "{stderr}");
    }
    let out = recflow(&["export", WORKFLOWS[1], "--target", "stepfunctions", "--picks-lambda", "picks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Lambda function ARN"));
}

#[test]
fn a_sync_create_becomes_a_loop_inside_a_parallel_with_the_original_retry_and_catch() {
    let before = original("workflows/nightly-refresh.asl.json");
    let after = exported("workflows/nightly-refresh.asl.json");
    let was = &before["States"]["ImportInteractions"];
    let state = &after["States"]["ImportInteractions"];
    assert_eq!(state["Type"], "Parallel");
    assert_eq!(state["Catch"], was["Catch"], "the Catch is kept");
    assert_eq!(state["Retry"], json!([{"ErrorEquals": ["Personalize.JobFailed"], "MaxAttempts": 0}]));
    assert_eq!(state["ResultPath"], "$.import");
    assert_eq!(state["Next"], "ImportInteractions Result");
    let result = &after["States"]["ImportInteractions Result"];
    assert_eq!(
        result,
        &json!({"Type": "Pass", "InputPath": "$.import[0]", "ResultPath": "$.import", "Next": "TrainSolutionVersion"})
    );
    let branch = &state["Branches"][0]["States"];
    let create = &branch["ImportInteractions Create"];
    assert_eq!(create["Resource"], "arn:aws:states:::aws-sdk:personalize:createDatasetImportJob");
    assert_eq!(create["Retry"], was["Retry"]);
    assert_eq!(create["Parameters"]["DatasetArn.$"], "$.config.datasetArn");
    assert_eq!(create["Parameters"]["JobName.$"], "States.Format('ImportInteractions-{}', States.UUID())");
    assert_eq!(branch["ImportInteractions Wait"]["Seconds"], 60);
    let describe = &branch["ImportInteractions Describe"];
    assert_eq!(describe["Resource"], "arn:aws:states:::aws-sdk:personalize:describeDatasetImportJob");
    assert_eq!(describe["Retry"], was["Retry"]);
    assert_eq!(branch["ImportInteractions Status"]["Default"], "ImportInteractions Wait");
    assert_eq!(branch["ImportInteractions Failed"]["Error"], "Personalize.JobFailed");
    assert_eq!(branch["ImportInteractions Done"]["Parameters"], was["ResultSelector"]);
    // Everything else is as written.
    assert_eq!(after["States"]["QualityGate"], before["States"]["QualityGate"]);
    assert_eq!(after["States"]["PublishPicks"]["Resource"], PICKS_LAMBDA);
    assert_eq!(after["States"]["PublishPicks"]["Retry"], before["States"]["PublishPicks"]["Retry"]);

    let after = exported("workflows/nightly-refresh-jsonata.asl.json");
    let state = &after["States"]["TrainSolutionVersion"];
    assert_eq!(state["Type"], "Parallel");
    assert_eq!(
        state["Assign"]["solutionVersionArn"],
        "{% $states.result[0].SolutionVersion.SolutionVersionArn %}"
    );
    let create = &state["Branches"][0]["States"]["TrainSolutionVersion Create"];
    assert_eq!(create["Arguments"]["Name"], "{% 'TrainSolutionVersion-' & $uuid() %}");
}

#[test]
fn the_cloudformation_format_gives_the_state_machine_its_role() {
    let out = recflow(&[
        "export",
        "workflows/event-import.asl.json",
        "--target",
        "stepfunctions",
        "--format",
        "cloudformation",
    ]);
    let template = stdout_json(&out, "event-import");
    assert_eq!(template["Parameters"]["StateMachineName"]["Default"], "event-import");
    let role = &template["Resources"]["StateMachineRole"]["Properties"];
    let document = &role["Policies"][0]["PolicyDocument"];
    let mut actions: Vec<&str> = document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()))
        .collect();
    actions.sort();
    // Step Functions calls exactly create and describe: no List (recflow's adoption), no wildcard.
    assert_eq!(
        actions,
        [
            "events:PutEvents",
            "iam:PassRole",
            "personalize:CreateDatasetImportJob",
            "personalize:CreateSolutionVersion",
            "personalize:DescribeDatasetImportJob",
            "personalize:DescribeSolutionVersion",
        ]
    );
}

/// The actions of `recflow iam-policy FILE` (for recflow), in statement order.
fn policy_actions(args: &[&str]) -> (Vec<String>, Value) {
    let mut all = vec!["iam-policy"];
    all.extend(args);
    let policy = stdout_json(&recflow(&all), &args.join(" "));
    let mut actions: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
        .collect();
    actions.sort();
    (actions, policy)
}

#[test]
fn iam_policy_lists_exactly_the_actions_each_workflow_calls() {
    let pz_import = [
        "personalize:CreateDatasetImportJob",
        "personalize:DescribeDatasetImportJob",
        "personalize:ListDatasetImportJobs",
    ];
    let pz_train = [
        "personalize:CreateSolutionVersion",
        "personalize:DescribeSolutionVersion",
        "personalize:ListSolutionVersions",
    ];
    let pz_batch = [
        "personalize:CreateBatchInferenceJob",
        "personalize:DescribeBatchInferenceJob",
        "personalize:ListBatchInferenceJobs",
    ];
    let picks = ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"];
    let nightly: Vec<&str> = ["events:PutEvents", "iam:PassRole", "personalize:GetSolutionMetrics"]
        .into_iter()
        .chain(pz_import)
        .chain(pz_train)
        .chain(pz_batch)
        .chain(picks)
        .collect();
    let todays: Vec<&str> = ["events:PutEvents", "iam:PassRole", "personalize:ListSolutionVersions"]
        .into_iter()
        .chain(pz_batch)
        .chain(picks)
        .collect();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("workflows/nightly-refresh.asl.json", nightly.clone()),
        ("workflows/nightly-refresh-jsonata.asl.json", nightly),
        (
            "workflows/event-import.asl.json",
            ["events:PutEvents", "iam:PassRole"].into_iter().chain(pz_import).chain(pz_train).collect(),
        ),
        ("workflows/todays-picks.asl.json", todays),
        (
            "workflows/train-compare.asl.json",
            ["iam:PassRole", "personalize:GetSolutionMetrics"]
                .into_iter()
                .chain(pz_import)
                .chain(pz_train)
                .chain(pz_batch)
                .collect(),
        ),
        (
            "workflows/nightly-refresh-portable.asl.json",
            vec![
                "events:PutEvents",
                "iam:PassRole",
                "personalize:CreateBatchInferenceJob",
                "personalize:CreateDatasetImportJob",
                "personalize:CreateSolutionVersion",
                "personalize:DescribeBatchInferenceJob",
                "personalize:DescribeDatasetImportJob",
                "personalize:DescribeSolutionVersion",
                "personalize:ListBatchInferenceJobs",
                "personalize:ListDatasetImportJobs",
                "personalize:ListSolutionVersions",
            ],
        ),
    ];
    for (file, expected) in cases {
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        expected.sort();
        expected.dedup();
        let (actions, policy) = policy_actions(&[file]);
        assert_eq!(actions, expected, "{file}");
        assert!(actions.iter().all(|a| !a.contains('*')), "{file}: a wildcard action: {policy}");
        let pass = policy["Statement"].as_array().unwrap().iter().find(|s| s["Action"][0] == "iam:PassRole");
        assert_eq!(
            pass.unwrap()["Condition"],
            json!({"StringEquals": {"iam:PassedToService": "personalize.amazonaws.com"}}),
            "{file}"
        );
    }
}

#[test]
fn iam_policy_narrows_resources_the_definition_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixed.asl.json");
    let definition = json!({
        "StartAt": "Metrics",
        "States": {
            "Metrics": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:getSolutionMetrics",
                "Parameters": {"SolutionVersionArn": "arn:aws:personalize:eu-west-1:123456789012:solution/shop/abc"},
                "Next": "Read"
            },
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": "shop", "Key": "config.json"},
                "Next": "Announce"
            },
            "Announce": {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Source": "shop", "DetailType": "x", "Detail": {}, "EventBusName": "shop-bus"}]},
                "End": true
            }
        }
    });
    std::fs::write(&path, definition.to_string()).unwrap();
    let (actions, policy) = policy_actions(&[path.to_str().unwrap()]);
    assert_eq!(actions, ["events:PutEvents", "personalize:GetSolutionMetrics", "s3:GetObject"]);
    let resources: Vec<(Value, Value)> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["Action"].clone(), s["Resource"].clone()))
        .collect();
    assert!(
        resources.contains(&(json!(["s3:GetObject"]), json!(["arn:aws:s3:::shop/config.json"]))),
        "{policy}"
    );
    assert!(
        resources.contains(&(
            json!(["personalize:GetSolutionMetrics"]),
            json!(["arn:aws:personalize:eu-west-1:123456789012:solution/shop/abc"])
        )),
        "{policy}"
    );
    assert!(
        resources.contains(&(json!(["events:PutEvents"]), json!(["arn:aws:events:*:*:event-bus/shop-bus"]))),
        "{policy}"
    );
}

// ---- The exports run on recflow against the emulator ----

async fn local() -> Local {
    demo_local::local(
        SeedOptions { users: 200, items: 100, interactions: 6000, days: 60, clusters: 4, seed: 11 },
        std::time::Duration::from_secs(60),
    )
    .await
}

/// The Lambda function of `--picks-lambda` as recflow's picks task would run inside it: the
/// same parameters in, the same result and error names out.
struct PicksFunction(PicksRunner);

impl TaskRunner for PicksFunction {
    fn call<'a>(&'a self, call: &'a TaskCall, clock: &'a dyn Clock) -> TaskFuture<'a> {
        self.0.call(call, clock)
    }
}

async fn run(local: &Local, definition: &Value, name: &str, extra: &Value, seed: u64) -> Execution {
    assert_eq!(recflow::tasks::check_definition(definition), vec![], "{definition}");
    let machine = StateMachine::from_json(definition).unwrap();
    let mut registry = recflow::tasks::aws_registry(&local.clients, None, SCALE);
    recflow::tasks::register_recflow_tasks(&mut registry, &local.clients);
    registry.register(PICKS_LAMBDA, Arc::new(PicksFunction(PicksRunner::new(local.clients.s3.clone()))));
    let mut input = local.demo.input();
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let clock = ScaledClock::new(SCALE);
    let store = MemoryStore::default();
    let driver = recflow::engine::Driver::start(
        &machine, definition, &registry, &clock, &store, name, "export", input, seed,
    )
    .await
    .unwrap();
    driver.run().await.unwrap()
}

/// How many import jobs, solution versions and batch inference jobs the emulator holds.
async fn jobs(local: &Local) -> [usize; 3] {
    let pz = &local.clients.personalize;
    let imports = pz.list_dataset_import_jobs().dataset_arn(&local.demo.dataset_arn).send().await.unwrap();
    let mut versions = 0;
    for solution in
        [&local.demo.solution_arn, &local.demo.sims_solution_arn, &local.demo.ranking_solution_arn]
    {
        let listed = pz.list_solution_versions().solution_arn(solution).send().await.unwrap();
        versions += listed.solution_versions().len();
    }
    let batches = pz.list_batch_inference_jobs().send().await.unwrap();
    [imports.dataset_import_jobs().len(), versions, batches.batch_inference_jobs().len()]
}

/// A value's shape: objects keep their keys (in order), arrays their length, leaves their type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => Value::Null,
    }
}

/// Runs `file` and its export one after the other on one emulator; both must end alike, create
/// as many jobs of each kind and give outputs of the same shape. The original's execution.
async fn same_result(local: &Local, file: &str, extra: Value) -> Execution {
    // Execution names per file: derived job names must not meet an earlier run's.
    let stem = file.trim_start_matches("workflows/").trim_end_matches(".asl.json");
    let before = jobs(local).await;
    let original = run(local, &original(file), &format!("{stem}-original"), &extra, 7).await;
    let middle = jobs(local).await;
    let export = run(local, &exported(file), &format!("{stem}-exported"), &extra, 8).await;
    let after = jobs(local).await;
    assert_eq!(original.status, export.status, "{file}: {:?} / {:?}", original.cause, export.cause);
    assert_eq!(original.error, export.error, "{file}");
    let made = |a: [usize; 3], b: [usize; 3]| [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    assert_eq!(made(before, middle), made(middle, after), "{file}: jobs made (imports, versions, batches)");
    assert_eq!(
        original.output.as_ref().map(shape),
        export.output.as_ref().map(shape),
        "{file}: {:?}\n{:?}",
        original.output,
        export.output
    );
    original
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_import_and_todays_picks_exports_run_to_the_same_result() {
    let local = local().await;
    let event = json!({"detail": {"bucket": {"name": "recflow-demo"}, "object": {"key": "interactions/interactions.csv"}}});
    let imported = same_result(&local, "workflows/event-import.asl.json", event).await;
    assert_eq!(imported.status, Status::Succeeded, "{:?}", imported.cause);
    let version = imported.output.unwrap()["solutionVersionArn"].clone();
    let picked =
        same_result(&local, "workflows/todays-picks.asl.json", json!({"solutionVersionArn": version})).await;
    assert_eq!(picked.status, Status::Succeeded, "{:?}", picked.cause);
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_refresh_exports_run_to_the_same_result() {
    let local = local().await;
    for file in ["workflows/nightly-refresh.asl.json", "workflows/nightly-refresh-jsonata.asl.json"] {
        let exec = same_result(&local, file, json!({})).await;
        assert_eq!(exec.status, Status::Succeeded, "{file}: {:?}", exec.cause);
    }
    local.emulator.shutdown().await;
}

/// A failed training: the export's Fail inside the Parallel reaches the original Catch, so the
/// failure is announced and the execution fails with the workflow's own error, as the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_in_an_export_reaches_the_original_catch() {
    use recflow::local::faults::{Fault, JobKind};
    let local = local().await;
    let file = "workflows/nightly-refresh.asl.json";
    for (definition, name, seed) in [(original(file), "original", 7), (exported(file), "exported", 8)] {
        local.emulator.personalize.faults().inject(Fault::FailNextJob {
            kind: JobKind::SolutionVersion,
            reason: "Dataset has fewer than 25 users with at least 2 interactions each.".into(),
        });
        let exec = run(&local, &definition, name, &json!({}), seed).await;
        assert_eq!(exec.status, Status::Failed, "{name}");
        assert_eq!(exec.error.as_deref(), Some("Recflow.NightlyRefreshFailed"), "{name}");
        let cause: Value = serde_json::from_str(exec.cause.as_deref().unwrap()).unwrap();
        assert_eq!(cause["Error"], "Personalize.JobFailed", "{name}: {cause}");
        assert!(
            cause["Cause"].as_str().unwrap().contains("ended CREATE FAILED: Dataset has fewer"),
            "{cause}"
        );
    }
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_compare_and_portable_exports_run_to_the_same_result() {
    let local = local().await;
    for file in ["workflows/train-compare.asl.json", "workflows/nightly-refresh-portable.asl.json"] {
        let exec = same_result(&local, file, json!({})).await;
        assert_eq!(exec.status, Status::Succeeded, "{file}: {:?}", exec.cause);
    }
    local.emulator.shutdown().await;
}
