//! Execution status events: `--events-bus` puts Step Functions-shaped status-change events on
//! EventBridge (here the emulator's, served in another process) at the start and the end of an
//! execution; PutEvents failures are retried and never fail the workflow.

use std::path::Path;

use serde_json::{Value, json};

#[path = "support/served.rs"]
mod served;

use served::{Served, serve};

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("local/events/events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e.to_string().contains("Recflow Execution Status Change"))
        .collect()
}

/// The recorded event's detail, whatever the log line's envelope calls it.
fn detail(event: &Value) -> Value {
    let raw = event.get("Detail").or_else(|| event.get("detail")).unwrap_or(&Value::Null);
    match raw {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    }
}

fn run(emulator: &Served, dir: &Path, name: &str, fail: bool) -> std::process::Output {
    let wf = dir.join("wf.asl.json");
    write(
        &wf,
        &json!({"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::test:work", "End": true}}}),
    );
    let answer = if fail {
        json!({"Work": {"Throw": {"Error": "Personalize.JobFailed", "Cause": "bad data"}}})
    } else {
        json!({"Work": {"Return": {"picks": 25}}})
    };
    write(&dir.join("mock.json"), &answer);
    emulator
        .recflow(&["run", wf.to_str().unwrap(), "--name", name, "--mock"])
        .arg(dir.join("mock.json"))
        .args(["--events-bus", "default", "--input", r#"{"day": "2026-11-29"}"#, "--checkpoint-dir"])
        .arg(dir.join("runs"))
        .output()
        .unwrap()
}

#[test]
fn start_and_end_events_carry_step_functions_status_change_details() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = serve(dir.path(), &[]);
    let out = run(&emulator, dir.path(), "ok-1", false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&emulator, dir.path(), "bad-1", true);
    assert_eq!(out.status.code(), Some(1));

    let recorded = events(dir.path());
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    let details: Vec<Value> = recorded.iter().map(detail).collect();
    let statuses: Vec<(&str, &str)> =
        details.iter().map(|d| (d["name"].as_str().unwrap(), d["status"].as_str().unwrap())).collect();
    assert_eq!(
        statuses,
        [("ok-1", "RUNNING"), ("ok-1", "SUCCEEDED"), ("bad-1", "RUNNING"), ("bad-1", "FAILED")]
    );
    let started = &details[0];
    assert_eq!(started["executionArn"], "arn:aws:states:local:000000000000:execution:wf:ok-1");
    assert_eq!(started["stateMachineArn"], "arn:aws:states:local:000000000000:stateMachine:wf");
    assert_eq!(started["input"], r#"{"day":"2026-11-29"}"#);
    assert!(started["startDate"].as_i64().unwrap() > 1_700_000_000_000, "epoch milliseconds");
    assert_eq!(started["stopDate"], Value::Null);
    let ended = &details[1];
    assert_eq!(ended["output"], r#"{"picks":25}"#);
    assert_eq!(ended["outputDetails"], json!({"included": true}));
    assert!(ended["stopDate"].as_i64().unwrap() >= started["startDate"].as_i64().unwrap());
    let failed = &details[3];
    assert_eq!(
        (failed["error"].as_str(), failed["cause"].as_str()),
        (Some("Personalize.JobFailed"), Some("bad data"))
    );
    let envelope = recorded[0].to_string();
    assert!(envelope.contains("\"recflow\""), "source recflow: {envelope}");
    emulator.stop();
}

#[test]
fn put_events_failures_are_retried_and_never_fail_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = serve(dir.path(), &[]);
    // More failures in a row than the SDK's own three attempts: recflow's backoff takes over.
    emulator.fault_on(
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        r#"{"operation": "PutEvents", "fault": "http500", "count": 4}"#,
    );
    let out = run(&emulator, dir.path(), "flaky-1", false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status event not delivered; retrying"), "{stderr}");
    let statuses: Vec<String> =
        events(dir.path()).iter().map(|e| detail(e)["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, ["RUNNING", "SUCCEEDED"], "both events arrived in the end");
    emulator.stop();
}
