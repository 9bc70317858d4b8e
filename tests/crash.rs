//! The real binary, SIGKILLed in the middle of a Wait, then resumed by a second process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_recflow");

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn calls(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a call log line"))
        .collect()
}

/// Polls until `check` holds; the bound only stops a broken build from hanging CI.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_during_a_wait_then_resume_finishes_without_repeating_calls() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("crashy.asl.json");
    let mock = dir.path().join("mock.json");
    let log = dir.path().join("calls.jsonl");
    let store = dir.path().join("executions");
    write(
        &wf,
        &json!({"StartAt": "Before", "States": {
        "Before": {"Type": "Task", "Resource": "arn:aws:states:::test:before", "ResultPath": "$.before", "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 3, "Next": "After"},
        "After": {"Type": "Task", "Resource": "arn:aws:states:::test:after", "ResultPath": "$.after", "End": true}}}),
    );
    write(&mock, &json!({"Before": {"Return": "b"}, "After": {"Return": "a"}}));
    let common = |cmd: &mut Command| {
        cmd.arg("--checkpoint-dir").arg(&store).arg("--mock").arg(&mock).arg("--mock-call-log").arg(&log);
    };

    let mut first = Command::new(BIN);
    first.args(["run", wf.to_str().unwrap(), "--name", "crashy", "--input", r#"{"day": "2026-11-25"}"#]);
    common(&mut first);
    let mut child = first.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let checkpoint = store.join("crashy/checkpoint.json");
    eventually("the Wait to be checkpointed", || {
        std::fs::read_to_string(&checkpoint).is_ok_and(|t| t.contains("\"phase\":\"Waiting\""))
    });

    // While the first process holds the execution, a second one is turned away by name and pid.
    let mut second = Command::new(BIN);
    second.args(["resume", "crashy"]);
    common(&mut second);
    let out = second.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("pid {}", child.id())), "{stderr}");

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(std::fs::read_to_string(&checkpoint).unwrap().contains("\"phase\":\"Waiting\""));

    let mut resume = Command::new(BIN);
    resume.args(["resume", "crashy", "--output", "json"]);
    common(&mut resume);
    let out = resume.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let described: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(described["status"], "SUCCEEDED");
    assert_eq!(described["name"], "crashy");
    let output: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"day": "2026-11-25", "before": "b", "after": "a"}));

    let states: Vec<String> = calls(&log).iter().map(|c| c["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, vec!["Before", "After"], "each task called exactly once");

    // The history holds one wait, entered once, and it ended no earlier than it was due.
    let out = Command::new(BIN)
        .args(["history", "crashy", "--output", "json", "--checkpoint-dir"])
        .arg(&store)
        .output()
        .unwrap();
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = history["events"].as_array().unwrap();
    let waits: Vec<&Value> = events.iter().filter(|e| e["type"] == "WaitStarted").collect();
    assert_eq!(waits.len(), 1);
    let until = waits[0]["until"].as_str().unwrap();
    let exited = events.iter().find(|e| e["type"] == "StateExited" && e["state"] == "Nap").unwrap();
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    assert!(parse(exited["timestamp"].as_str().unwrap()) >= parse(until));
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "history ids are contiguous");
    assert_eq!(events.last().unwrap()["type"], "ExecutionSucceeded");
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("executions");
    let wf = dir.path().join("tiny.asl.json");
    write(&wf, &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
    let out = Command::new(BIN)
        .args(["run", wf.to_str().unwrap(), "--name", "tiny", "--checkpoint-dir"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let checkpoint = store.join("tiny/checkpoint.json");

    for (bad, expect) in [
        ("{\"format\": 1, \"execution\": ", "corrupt checkpoint"),
        ("{\"format\": 99, \"execution\": {}}", "checkpoint format 99"),
    ] {
        std::fs::write(&checkpoint, bad).unwrap();
        let out =
            Command::new(BIN).args(["resume", "tiny", "--checkpoint-dir"]).arg(&store).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect) && stderr.contains("checkpoint.json"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), bad, "left untouched");
    }
}
