//! `recflow local serve` as a user runs it: a real process that prints its endpoints and the
//! environment to export, answers the AWS SDK, keeps its state across a restart, and stops
//! cleanly on SIGTERM.

use std::process::Command;

#[path = "support/served.rs"]
mod served;

use served::{BIN, serve};

#[tokio::test]
async fn serve_prints_the_environment_answers_the_sdk_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = serve(dir.path(), &[]);
    for key in [
        "AWS_ENDPOINT_URL_PERSONALIZE",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME",
    ] {
        assert!(emulator.get(key).starts_with("http://127.0.0.1:"), "{key}");
    }
    // boto3 and the AWS CLI v1 read only AWS_DEFAULT_REGION.
    assert_eq!(emulator.get("AWS_DEFAULT_REGION"), "us-east-1");
    assert_eq!(emulator.get("AWS_REGION"), "us-east-1");
    let pz = emulator.personalize().await;
    let arn = pz.create_dataset_group().name("kept").send().await.unwrap().dataset_group_arn.unwrap();
    assert_eq!(arn, "arn:aws:personalize:us-east-1:000000000000:dataset-group/kept");
    emulator.stop();

    let emulator = serve(dir.path(), &[]);
    let pz = emulator.personalize().await;
    let described = pz.describe_dataset_group().dataset_group_arn(&arn).send().await.unwrap();
    assert_eq!(described.dataset_group.unwrap().name(), Some("kept"));
    emulator.stop();
}

#[test]
fn seed_writes_the_demo_data_into_the_local_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["local", "seed", "--users", "50", "--items", "30", "--interactions", "1200", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv =
        std::fs::read_to_string(dir.path().join("local/s3/recflow-demo/interactions%2Finteractions.csv"))
            .unwrap();
    assert_eq!(csv.lines().count(), 1 + 1200);
    assert!(csv.starts_with("USER_ID,ITEM_ID,TIMESTAMP"));
    let users =
        std::fs::read_to_string(dir.path().join("local/s3/recflow-demo/batch%2Fusers.jsonl")).unwrap();
    assert_eq!(users.lines().count(), 50);
}

#[test]
fn seed_refuses_bucket_names_s3_refuses_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for bucket in ["../../escaped", "..", "Upper", "xn--x", "ab"] {
        let out = Command::new(BIN)
            .args([
                "local",
                "seed",
                "--users",
                "30",
                "--items",
                "10",
                "--interactions",
                "100",
                "--bucket",
                bucket,
            ])
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bucket}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--bucket") && err.contains("bucket naming rules"), "{bucket}: {err}");
    }
    let written: Vec<_> = walk(dir.path());
    assert!(written.is_empty(), "{written:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn a_second_emulator_on_the_same_data_dir_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &[]);
    let second = Command::new(BIN)
        .args(["local", "serve", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("is in use by another recflow emulator (pid {})", first.child.id())),
        "{err}"
    );
    // `run --local` on the same folder is refused the same way, before it runs anything.
    let wf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/nightly-refresh.asl.json");
    let run = Command::new(BIN)
        .arg("run")
        .arg(&wf)
        .args(["--local", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("is in use by another recflow emulator"));
    first.stop();
    // Once it has stopped, the folder is free again.
    serve(dir.path(), &[]).stop();
}
