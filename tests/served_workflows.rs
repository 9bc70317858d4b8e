//! Workflows run by the real `recflow run` process against `recflow local serve` in another
//! process, through the environment a user would export: the AWS blog's no-code pipeline runs
//! unchanged, and a misspelled parameter is refused by `validate` before anything runs.

use std::path::Path;

use serde_json::{Value, json};

#[path = "support/clients.rs"]
mod clients;
#[path = "support/served.rs"]
mod served;

use served::{BIN, serve};

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blogs_no_code_pipeline_runs_unchanged_against_local_serve() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = serve(dir.path(), &["--time-scale", "600"]);
    let seeded = std::process::Command::new(BIN)
        .args(["local", "seed", "--users", "300", "--items", "120", "--interactions", "9000", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let pz = emulator.personalize().await;
    let group = clients::dataset_group(&pz, "blog", "aws-user-personalization").await;
    // Training takes a while (300 emulated s more): the batch job is asked for meanwhile and
    // refused with ResourceInUse, which the blog's Catch answers by waiting and trying again.
    emulator.fault(r#"{"slowNextJob": "SolutionVersion", "seconds": 300}"#);

    let input = json!({
        "datasetArn": group.dataset,
        "solutionArn": group.solution,
        "roleArn": clients::ROLE,
        "interactionsS3Path": "s3://recflow-demo/interactions/interactions.csv",
        "usersS3Path": "s3://recflow-demo/batch/users.jsonl",
        "outputS3Path": "s3://recflow-demo/blog-output/",
    });
    let checkpoints = dir.path().join("runs");
    let out = emulator
        .recflow(&[
            "--log-level",
            "warn",
            "run",
            &repo("tests/data/blog/no-code-pipeline.asl.json"),
            "--name",
            "blog-1",
            "--time-scale",
            "600",
            "--output",
            "json",
            "--input",
            &input.to_string(),
        ])
        .env("RECFLOW_DATA_DIR", &checkpoints)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let described: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(described["status"], "SUCCEEDED");
    let output: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["batchStatus"]["Status"], "ACTIVE");
    assert_eq!(output["inUse"]["Error"], "Personalize.ResourceInUseException", "{output}");

    let history = emulator
        .recflow(&["history", "blog-1", "--output", "json"])
        .env("RECFLOW_DATA_DIR", &checkpoints)
        .output()
        .unwrap();
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let caught = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskFailed" && e["error"] == "Personalize.ResourceInUseException")
        .count();
    assert!(caught >= 1, "the batch job was never refused while training: {history}");
    let listed = pz
        .list_batch_inference_jobs()
        .solution_version_arn(output["solutionVersion"]["SolutionVersionArn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.batch_inference_jobs().len(), 1, "one batch job, however often it was asked for");
    emulator.stop();
}

#[test]
fn a_misspelled_parameter_is_refused_by_validate_naming_state_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("workflows/nightly-refresh.asl.json")).unwrap();
    let broken = text.replacen("\"DatasetArn.$\"", "\"DatasetArm.$\"", 1);
    let file = dir.path().join("typo.asl.json");
    std::fs::write(&file, broken).unwrap();
    let out = std::process::Command::new(BIN).args(["validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("States.ImportInteractions.Parameters.DatasetArm: unknown parameter 'DatasetArm'; did you mean 'DatasetArn'?"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("States.ImportInteractions.Parameters.DatasetArn: required by the service and missing"),
        "{stdout}"
    );
    // `run` refuses it the same way before starting anything.
    let out = std::process::Command::new(BIN)
        .args(["run", "--local", "--data-dir"])
        .arg(dir.path())
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DatasetArm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("local").exists(), "nothing started");
}
