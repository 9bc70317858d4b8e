//! `recflow daemon` as a process: SIGTERM mid-call lets the call answer, checkpoints it and
//! exits 0; a new daemon completes the execution without repeating the call. An API off
//! loopback without a token is refused at start.

#[path = "support/process.rs"]
mod process;

use std::process::{Child, Command};
use std::time::Duration;

use process::{http, spawn_daemon, terminate};

use serde_json::{Value, json};

const DEFINITION: &str = r#"{"StartAt": "Work", "States": {
  "Work": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion", "Parameters": {"SolutionArn": "arn:aws:personalize:us-east-1:1:solution/s"}, "Next": "Pause"},
  "Pause": {"Type": "Wait", "Seconds": 3600, "End": true}
}}"#;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slow.asl.json"), DEFINITION).unwrap();
        std::fs::write(dir.path().join("recflow.toml"), "[workflows.slow]\ndefinition = \"slow.asl.json\"\n")
            .unwrap();
        // The call takes 2 s: long enough to signal the daemon while it is in flight.
        std::fs::write(
            dir.path().join("mock.json"),
            r#"{"Work": {"Return": {"ok": true}, "DelaySeconds": 2}}"#,
        )
        .unwrap();
        Setup { dir }
    }

    /// Starts a daemon on this setup's config, data and mock; gives it and its address.
    fn daemon(&self, extra: &[&str]) -> (Child, String) {
        let d = self.dir.path();
        let mut args: Vec<std::ffi::OsString> = vec!["--config".into(), d.join("recflow.toml").into()];
        args.extend([
            "--data-dir".into(),
            d.join("data").into(),
            "--mock".into(),
            d.join("mock.json").into(),
        ]);
        args.extend(["--mock-call-log".into(), d.join("calls.jsonl").into()]);
        args.extend(extra.iter().map(Into::into));
        spawn_daemon(&args)
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls.jsonl")).unwrap_or_default().lines().count()
    }
}

#[test]
fn sigterm_mid_call_checkpoints_the_answer_and_a_new_daemon_completes_the_execution() {
    let setup = Setup::new();
    let (mut first, address) = setup.daemon(&[]);
    let (status, body) = http(&address, "POST", "/workflows/slow/executions", r#"{"name": "slow-1"}"#);
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    let (code, took) = terminate(&mut first);
    assert_eq!(code, 0, "a SIGTERM is a clean stop");
    assert!(took < Duration::from_secs(12), "within the grace: {took:?}");
    // The call made before the signal answered, and its answer is in the checkpoint.
    let checkpoint: Value = serde_json::from_str(
        &std::fs::read_to_string(setup.dir.path().join("data/executions/slow-1/checkpoint.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(checkpoint["execution"]["status"], "RUNNING");
    assert_eq!(checkpoint["execution"]["at"]["state"], "Pause");
    assert_eq!(setup.calls(), 1);
    // `recflow status` points at the daemon, which started it without a launch record.
    let status = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .args(["status", "slow-1", "--data-dir"])
        .arg(setup.dir.path().join("data"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.contains("start the `recflow daemon` that runs it again"), "{said}");

    // The next daemon resumes it; at 3600x the hour's Wait passes in about a second.
    let (mut second, address) = setup.daemon(&["--time-scale", "3600"]);
    let mut described = json!(null);
    for _ in 0..300 {
        described = http(&address, "GET", "/executions/slow-1", "").1;
        if described["status"] != "RUNNING" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    assert_eq!(setup.calls(), 1, "the answered call was not made again");
    assert_eq!(terminate(&mut second).0, 0);
}

/// Counts `$.i` to `$.n`: two transitions per round.
const COUNTER: &str = r#"{"StartAt": "Done?", "States": {
  "Done?": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThanPath": "$.n", "Next": "Increment"}], "Default": "Done"},
  "Increment": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "n.$": "$.n"}, "Next": "Done?"},
  "Done": {"Type": "Succeed"}
}}"#;

#[test]
fn sigkill_amid_group_commits_loses_nothing_a_new_daemon_finishes_every_execution() {
    let setup = Setup::new();
    let d = setup.dir.path();
    std::fs::write(d.join("counter.asl.json"), COUNTER).unwrap();
    std::fs::write(d.join("recflow.toml"), "[workflows.counter]\ndefinition = \"counter.asl.json\"\n")
        .unwrap();
    let (mut first, address) = setup.daemon(&[]);
    for i in 0..20 {
        let body = format!(r#"{{"name": "c-{i}", "input": {{"i": 0, "n": 300}}}}"#);
        assert_eq!(http(&address, "POST", "/workflows/counter/executions", &body).0, 200);
    }
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    // Killed mid-run: some executions were unfinished (their files may lag the commit log).
    let unfinished = (0..20)
        .filter(|i| {
            let path = d.join(format!("data/executions/c-{i}/checkpoint.json"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.contains("\"status\":\"SUCCEEDED\"")
        })
        .count();
    assert!(unfinished > 0, "the kill came after every execution had ended");
    let (mut second, address) = setup.daemon(&[]);
    for i in 0..20 {
        let name = format!("c-{i}");
        let mut described = json!(null);
        for _ in 0..600 {
            described = http(&address, "GET", &format!("/executions/{name}"), "").1;
            if described["status"] != "RUNNING" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(described["status"], "SUCCEEDED", "{name}: {}", described["cause"]);
        assert_eq!(described["output"], r#"{"i":300,"n":300}"#);
        // One history, every event once, in order: nothing lost, nothing repeated.
        let ids: Vec<u64> =
            described["history"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{name}");
        // Started; 301 Choice, 300 Pass and one Succeed visit, each entered and exited; succeeded.
        assert_eq!(ids.len(), 1 + (301 + 300 + 1) * 2 + 1, "{name}");
    }
    assert_eq!(terminate(&mut second).0, 0);
}

#[test]
fn an_api_off_loopback_needs_a_token() {
    let setup = Setup::new();
    let output = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .args(["daemon", "--config"])
        .arg(setup.dir.path().join("recflow.toml"))
        .args(["--listen", "0.0.0.0:0", "--mock"])
        .arg(setup.dir.path().join("mock.json"))
        .env_remove("RECFLOW_API_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen 0.0.0.0:0: an API off loopback needs a token"), "{stderr}");
}
