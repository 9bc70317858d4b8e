//! recflow as a container a scheduler starts: `run --resume-or-start` continues the unfinished
//! execution of the workflow or starts one, `--max-runtime` parks it (exit 0, checkpointed) when
//! nothing is due soon, the input comes from RECFLOW_INPUT or standard input, and two containers
//! started at once on one execution cannot both advance it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

#[path = "support/clients.rs"]
mod clients;
#[path = "support/served.rs"]
mod served;

use served::{BIN, serve};

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// A task, a ten-hour Wait, a task: at --time-scale 36000 the Wait takes one second.
fn setup(dir: &Path) -> (String, Vec<String>) {
    let wf = dir.join("nightly-ish.asl.json");
    write(
        &wf,
        &json!({"StartAt": "Import", "States": {
            "Import": {"Type": "Task", "Resource": "arn:aws:states:::test:import", "ResultPath": "$.import", "Next": "Settle"},
            "Settle": {"Type": "Wait", "Seconds": 36000, "Next": "Publish"},
            "Publish": {"Type": "Task", "Resource": "arn:aws:states:::test:publish", "ResultPath": "$.publish", "End": true}}}),
    );
    write(
        &dir.join("mock.json"),
        &json!({"Import": {"Return": "imported"}, "Publish": {"Return": "published"}}),
    );
    let common = [
        "--checkpoint-dir".to_string(),
        dir.join("executions").display().to_string(),
        "--mock".into(),
        dir.join("mock.json").display().to_string(),
        "--mock-call-log".into(),
        dir.join("calls.jsonl").display().to_string(),
        "--time-scale".into(),
        "36000".into(),
    ];
    (wf.display().to_string(), common.to_vec())
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn max_runtime_parks_the_execution_and_later_starts_finish_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wf, common) = setup(dir.path());
    let start = || {
        Command::new(BIN)
            .args(["run", &wf, "--resume-or-start", "--max-runtime", "100ms", "--output", "json"])
            .args(&common)
            .env("RECFLOW_INPUT", r#"{"day": "2026-11-29"}"#)
            .stderr(Stdio::null())
            .output()
            .unwrap()
    };
    let first = start();
    assert_eq!(first.status.code(), Some(0), "a parked run exits 0");
    let described: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(described["status"], "RUNNING");
    assert_eq!(described["currentState"], "Settle");
    assert!(described["nextDue"].is_string(), "{described}");
    assert_eq!(calls(dir.path()), ["Import"]);
    let name = described["name"].as_str().unwrap().to_string();

    // A second start with room for the rest continues the same execution to its end. (Time
    // sped up by --time-scale runs sped up only while a process runs: a start with the same
    // short --max-runtime would park again.)
    let out = Command::new(BIN)
        .args(["run", &wf, "--resume-or-start", "--max-runtime", "10m", "--output", "json"])
        .args(&common)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let finished: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finished["name"], name.as_str(), "the same execution is continued, not a new one");
    assert_eq!(finished["status"], "SUCCEEDED");
    let output: Value = serde_json::from_str(finished["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"day": "2026-11-29", "import": "imported", "publish": "published"}));
    assert_eq!(calls(dir.path()), ["Import", "Publish"], "each task called once across the starts");

    // Once it has ended, the next start begins a new execution (its input from standard input).
    let mut child = Command::new(BIN)
        .args([
            "run",
            &wf,
            "--resume-or-start",
            "--max-runtime",
            "100ms",
            "--input-file",
            "-",
            "--output",
            "json",
        ])
        .args(&common)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(br#"{"day": "2026-11-30"}"#).unwrap();
    let out = child.wait_with_output().unwrap();
    let described: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(described["name"], name.as_str());
    assert_eq!(described["input"], r#"{"day":"2026-11-30"}"#);
}

#[test]
fn two_starts_at_once_on_one_execution_one_advances_the_other_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (wf, common) = setup(dir.path());
    // Park an execution first.
    let out = Command::new(BIN)
        .args(["run", &wf, "--resume-or-start", "--max-runtime", "100ms"])
        .args(&common)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Two containers at once, without --max-runtime: whoever takes the execution sleeps in it.
    let spawn = || {
        Command::new(BIN)
            .args(["run", &wf, "--resume-or-start"])
            .args(&common)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    let refused = loop {
        if let Some(status) = a.try_wait().unwrap() {
            break (status, a, b);
        }
        if let Some(status) = b.try_wait().unwrap() {
            break (status, b, a);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (status, loser, mut winner) = refused;
    let stderr = {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut loser.stderr.unwrap(), &mut text).unwrap();
        text
    };
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", winner.id())), "{stderr}");
    // The winner goes on to the end; the loser called nothing.
    let out = winner.wait().unwrap();
    assert_eq!(out.code(), Some(0));
    assert_eq!(calls(dir.path()), ["Import", "Publish"]);
}

fn checkpoint_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("runs")
}

/// The nightly refresh on a served emulator: a start with a short --max-runtime parks while the
/// import runs, the next start finishes, and together they made exactly one import job, one
/// solution version and one batch inference job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_nightly_refresh_finishes_at_the_next_start_with_one_of_each_job() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = serve(dir.path(), &["--time-scale", "600"]);
    let seeded = Command::new(BIN)
        .args(["local", "seed", "--users", "300", "--items", "120", "--interactions", "9000", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(seeded.status.success());
    let group =
        clients::dataset_group(&emulator.personalize().await, "cron", "aws-user-personalization").await;
    emulator.fault(r#"{"slowNextJob": "SolutionVersion", "seconds": 900}"#);
    let input = clients::nightly_input(&group).to_string();
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/nightly-refresh.asl.json");
    let workflow = workflow.display().to_string();
    let start = |max_runtime: &str| {
        emulator
            .recflow(&[
                "--log-level",
                "warn",
                "run",
                &workflow,
                "--resume-or-start",
                "--max-runtime",
                max_runtime,
                "--time-scale",
                "600",
                "--output",
                "json",
            ])
            .env("RECFLOW_DATA_DIR", checkpoint_dir(dir.path()))
            .env("RECFLOW_INPUT", &input)
            .output()
            .unwrap()
    };
    // 50 ms of wall time is 30 s of the execution's: less than the first poll of the import.
    let out = start("50ms");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let parked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parked["status"], "RUNNING", "{parked}");
    assert_eq!(parked["currentState"], "ImportInteractions");
    let out = start("10m");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let finished: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["name"], parked["name"]);
    let pz = emulator.personalize().await;
    clients::assert_one_job_of_each(&pz, &group).await;
    emulator.stop();
}

/// Two containers started at once on one execution checkpointed in S3 (the served emulator's):
/// the conditional writes let exactly one advance it; the other stops cleanly, and no task is
/// called twice.
#[test]
fn two_starts_at_once_with_s3_checkpoints_one_advances_the_other_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("local/s3/checkpoints")).unwrap();
    let emulator = serve(dir.path(), &[]);
    let (wf, mut common) = setup(dir.path());
    common[1] = "s3://checkpoints/team/".into();
    let out = emulator
        .recflow(&["run", &wf, "--resume-or-start", "--max-runtime", "100ms", "--output", "json"])
        .args(&common)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let parked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parked["status"], "RUNNING");
    let bucket = recflow::local::s3::BucketName::parse("checkpoints").unwrap();
    let stored = recflow::local::s3::objects::list(&dir.path().join("local/s3"), &bucket, "team/").unwrap();
    assert!(!stored.is_empty(), "the checkpoint is in the bucket");

    let spawn = || {
        emulator
            .recflow(&["run", &wf, "--resume-or-start", "--output", "json"])
            .args(&common)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (winner, loser) = if a.status.code() == Some(0) { (a, b) } else { (b, a) };
    assert_eq!(winner.status.code(), Some(0), "{}", String::from_utf8_lossy(&winner.stderr));
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert_eq!(loser.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("another recflow process"), "{stderr}");
    let finished: Value = serde_json::from_slice(&winner.stdout).unwrap();
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(finished["name"], parked["name"]);
    assert_eq!(calls(dir.path()), ["Import", "Publish"], "no task called twice");
    // status and history read the execution from S3.
    let name = parked["name"].as_str().unwrap();
    let out = emulator
        .recflow(&["history", name, "--output", "json", "--checkpoint-dir", &common[1]])
        .output()
        .unwrap();
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = history["events"].as_array().unwrap();
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "the whole history, in order");
    assert_eq!(events.last().unwrap()["type"], "ExecutionSucceeded");
    emulator.stop();
}
