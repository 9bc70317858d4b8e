//! The real binary running Parallel and Map, SIGKILLed and resumed. A 200-item Map killed at 20
//! random moments: no finished item is called again, every item's task is one call (one
//! idempotency key, repeated only for a call that was in flight at a kill), and the output is the
//! same as an uninterrupted run's. A Parallel killed while both branches wait: after the resume
//! the second branch fails, the first is stopped, and the Catch runs once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_recflow");
const ITEMS: usize = 200;

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn workflow() -> Value {
    json!({"StartAt": "Items", "States": {
        "Items": {"Type": "Pass", "Parameters": {"ids.$": "States.ArrayRange(0, 199, 1)"}, "Next": "PerItem"},
        "PerItem": {"Type": "Map", "ItemsPath": "$.ids", "MaxConcurrency": 10, "End": true,
            "ItemSelector": {"id.$": "$$.Map.Item.Value", "tenant": "t1"},
            "ItemProcessor": {"StartAt": "Nap", "States": {
                // 20 rounds of 3 s at --time-scale 10: 6 s of work, more than 20 kills at
                // most 200 ms apart can take, so the 20th kill always finds it running.
                "Nap": {"Type": "Wait", "Seconds": 3, "Next": "Score"},
                "Score": {"Type": "Task", "Resource": "arn:aws:states:::test:score",
                          "Parameters": {"id.$": "$.id"}, "ResultPath": "$.score", "End": true}}}}}})
}

fn command<S: AsRef<std::ffi::OsStr>>(dir: &Path, log: &Path, args: &[S]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--checkpoint-dir")
        .arg(dir.join("executions"))
        .arg("--mock")
        .arg(dir.join("mock.json"))
        .arg("--mock-call-log")
        .arg(log)
        .arg("--output")
        .arg("json")
        .stderr(Stdio::null());
    cmd
}

fn output_of(stdout: &[u8]) -> Value {
    let described: Value = serde_json::from_slice(stdout).expect("one JSON document");
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    serde_json::from_str(described["output"].as_str().unwrap()).unwrap()
}

#[test]
fn a_map_killed_twenty_times_calls_each_item_once_and_ends_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("per-item.asl.json");
    write(&wf, &workflow());
    write(&dir.path().join("mock.json"), &json!({"Score": {"Return": 0.5}}));
    let run_args = |name: &str| {
        vec!["run".to_string(), wf.to_string_lossy().into(), "--name".into(), name.into()]
            .into_iter()
            .chain(["--time-scale", "10", "--no-fsync"].map(String::from))
            .collect::<Vec<_>>()
    };

    // The reference: one process, never interrupted.
    let clean_log = dir.path().join("clean.jsonl");
    let out = command(dir.path(), &clean_log, &run_args("clean")).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let reference = output_of(&out.stdout);
    assert_eq!(reference.as_array().unwrap().len(), ITEMS);

    // The same execution, killed at random moments and resumed after each kill.
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let log = dir.path().join("crashy.jsonl");
    let mut kills = 0;
    let mut first = true;
    while kills < 20 {
        let mut cmd = if first {
            command(dir.path(), &log, &run_args("crashy"))
        } else {
            command(dir.path(), &log, &["resume", "crashy"])
        };
        first = false;
        let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(30..200)));
        if child.try_wait().unwrap().is_some() {
            break; // finished before this kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if kills == 10 {
            // Between two processes, status shows how far the Map is.
            let out = Command::new(BIN)
                .args(["status", "crashy", "--checkpoint-dir"])
                .arg(dir.path().join("executions"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let line =
                text.lines().find(|l| l.starts_with("Map PerItem: ")).unwrap_or_else(|| panic!("{text}"));
            assert!(line.contains("/200 done") && line.contains("running"), "{line}");
        }
    }
    let out = command(dir.path(), &log, &["resume", "crashy"]).output().unwrap();
    let status = out.status.code();
    let resumed_output = if status == Some(0) {
        output_of(&out.stdout)
    } else {
        // Finished before the last kill: read the outcome.
        let out = Command::new(BIN)
            .args(["status", "crashy", "--output", "json", "--checkpoint-dir"])
            .arg(dir.path().join("executions"))
            .output()
            .unwrap();
        output_of(&out.stdout)
    };
    assert_eq!(kills, 20, "seed {seed}: the run ended before the 20th kill");
    assert_eq!(resumed_output, reference, "seed {seed}");

    // One logical call per item: one idempotency key each; a key seen twice is a call that was
    // in flight at a kill, repeated by the next process and marked as such.
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a call log line"))
        .collect();
    let mut keys: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for line in &lines {
        keys.entry(line["parameters"]["id"].as_u64().unwrap()).or_default().push(line);
    }
    assert_eq!(keys.len(), ITEMS, "seed {seed}: every item's task was called");
    for (id, calls) in &keys {
        let first_key = &calls[0]["idempotency_key"];
        assert!(
            calls.iter().all(|c| &c["idempotency_key"] == first_key),
            "seed {seed}: item {id}: {calls:?}"
        );
        assert!(calls[1..].iter().all(|c| c["resumed"] == true), "seed {seed}: item {id}: {calls:?}");
    }
    let repeated = lines.len() - ITEMS;
    assert!(repeated <= kills * 10, "seed {seed}: {repeated} repeats for {kills} kills");
    println!("seed {seed}: {kills} kills, {repeated} calls repeated (each was in flight at a kill)");
}

#[test]
fn a_parallel_killed_while_both_branches_wait_stops_the_first_when_the_second_fails() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("fan.asl.json");
    write(
        &wf,
        &json!({"StartAt": "Both", "States": {
            "Both": {"Type": "Parallel", "Next": "Published", "Branches": [
                {"StartAt": "Long", "States": {
                    "Long": {"Type": "Wait", "Seconds": 36000, "Next": "Publish"},
                    "Publish": {"Type": "Task", "Resource": "arn:aws:states:::test:publish", "End": true}}},
                {"StartAt": "Short", "States": {
                    "Short": {"Type": "Wait", "Seconds": 20, "Next": "Train"},
                    "Train": {"Type": "Task", "Resource": "arn:aws:states:::test:train", "End": true}}}],
             "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Announce"}]},
            "Announce": {"Type": "Task", "Resource": "arn:aws:states:::test:announce", "ResultPath": null, "End": true},
            "Published": {"Type": "Pass", "End": true}}}),
    );
    write(
        &dir.path().join("mock.json"),
        &json!({"Train": {"Throw": {"Error": "Personalize.JobFailed", "Cause": "bad data"}},
                "Publish": {"Return": "published"}, "Announce": {"Return": "sent"}}),
    );
    let log = dir.path().join("calls.jsonl");
    let args =
        [wf.to_string_lossy().to_string(), "--name".into(), "fan".into(), "--time-scale".into(), "10".into()];
    let mut run = vec!["run".to_string()];
    run.extend(args);
    let mut child = command(dir.path(), &log, &run).stdout(Stdio::null()).spawn().unwrap();
    let checkpoint = dir.path().join("executions/fan/checkpoint.json");
    let start = std::time::Instant::now();
    // Both branches sleeping: two Waiting frames in the checkpoint.
    while !std::fs::read_to_string(&checkpoint).is_ok_and(|t| t.matches("\"phase\":\"Waiting\"").count() == 2)
    {
        assert!(start.elapsed() < Duration::from_secs(60), "the branches never both waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let out = command(dir.path(), &log, &["resume", "fan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let described: Value = serde_json::from_slice(&out.stdout).unwrap();
    let output: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["failure"]["Error"], "Personalize.JobFailed");
    let states: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["state"].as_str().unwrap().to_string())
        .collect();
    // The first branch was stopped in its ten-hour Wait: Publish never ran; Announce ran once.
    assert_eq!(states, ["Train", "Announce"]);
}
