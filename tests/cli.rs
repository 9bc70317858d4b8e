//! The command line as a user meets it: exit codes, human and JSON output, status, history, graph.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_recflow");

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).to_string_lossy().into_owned()
}

fn recflow(args: &[&str], store: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RECFLOW_CHECKPOINT_DIR", store)
        .env("RECFLOW_LOG", "warn")
        // Never let an AWS SDK look for instance metadata off the loopback.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_nightly_workflow_runs_offline_and_is_inspectable() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("workflows/nightly-refresh-portable.asl.json");
    let mock = repo("workflows/nightly-refresh-portable.mock.json");
    let out = recflow(
        &["run", &wf, "--mock", &mock, "--time-scale", "100000", "--name", "nightly-1", "--output", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let described: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(described["status"], "SUCCEEDED");
    for field in ["executionArn", "stateMachineArn", "name", "startDate", "stopDate", "input", "output"] {
        assert!(described.get(field).is_some(), "DescribeExecution field {field} missing: {described}");
    }
    let output: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["execution"], "nightly-1");

    let out = recflow(&["status"], dir.path());
    assert!(stdout(&out).contains("SUCCEEDED") && stdout(&out).contains("nightly-1"), "{}", stdout(&out));
    let out = recflow(&["status", "nightly-1"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("execution nightly-1 SUCCEEDED"));
    assert!(!stdout(&out).contains("history:"), "{}", stdout(&out));

    let out = recflow(&["history", "nightly-1"], dir.path());
    let text = stdout(&out);
    assert!(
        text.contains("RetryScheduled")
            && text.contains("WaitStarted")
            && text.contains("ExecutionSucceeded"),
        "{text}"
    );

    // The same name cannot be started twice.
    let out = recflow(&["run", &wf, "--mock", &mock, "--name", "nightly-1"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn a_failed_execution_exits_1_with_error_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("fails.asl.json");
    std::fs::write(
        &wf,
        r#"{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Recflow.Nope", "Cause": "because"}}}"#,
    )
    .unwrap();
    let out = recflow(&["run", wf.to_str().unwrap(), "--no-checkpoint"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Error: Recflow.Nope") && stdout(&out).contains("Cause: because"));
    assert!(!dir.path().join(".recflow").exists(), "--no-checkpoint writes nothing");
}

#[test]
fn usage_errors_exit_2_and_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A Task no integration serves (recflow has no Lambda integration): refused before anything
    // starts.
    let wf = dir.path().join("lambda.asl.json");
    std::fs::write(
        &wf,
        r#"{"StartAt": "ImportInteractions", "States": {"ImportInteractions": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}}"#,
    )
    .unwrap();
    let out = recflow(&["run", wf.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("States.ImportInteractions.Resource: no task integration"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("executions").exists());

    let out = recflow(
        &["run", &repo("benches/counter.asl.json"), "--input", "{oops", "--no-checkpoint"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--input: the input is not valid JSON"), "{}", stderr(&out));
    // The same from the environment names the variable.
    let out = Command::new(BIN)
        .args(["run", &repo("benches/counter.asl.json"), "--no-checkpoint"])
        .env("RECFLOW_INPUT", "{oops")
        .env("RECFLOW_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RECFLOW_INPUT: the input is not valid JSON"), "{}", stderr(&out));

    let out = recflow(&["run", "missing.asl.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.asl.json"));

    let out = recflow(&["resume", "nobody"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no execution named 'nobody'"), "{}", stderr(&out));

    let out = recflow(&["run", &repo("benches/counter.asl.json"), "--name", "bad name!"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn graph_draws_mermaid_and_dot() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("workflows/nightly-refresh-portable.asl.json");
    let out = recflow(&["graph", &wf], dir.path());
    let text = stdout(&out);
    assert!(text.starts_with("stateDiagram-v2\n"), "{text}");
    assert!(text.contains("state \"ImportInteractions (Task)\" as s2"));
    assert!(text.contains("[*] --> s0"));
    assert!(text.contains("Catch States.ALL"));
    let out = recflow(&["graph", &wf, "--format", "dot"], dir.path());
    let text = stdout(&out);
    assert!(
        text.starts_with("digraph workflow {") && text.contains("\"ImportDone?\" [shape=diamond"),
        "{text}"
    );
    // Parallel branches and Map iteration bodies are drawn as nested states.
    let wf = repo("workflows/train-compare.asl.json");
    let text = stdout(&recflow(&["graph", &wf], dir.path()));
    assert!(text.contains("(Parallel)\" as s") && text.contains("(Map)\" as s"), "{text}");
    assert!(text.lines().filter(|l| l.trim() == "--").count() == 2, "three branches, two separators: {text}");
    assert!(text.contains("        [*] --> s"), "a nested scope has its own start: {text}");
    let text = stdout(&recflow(&["graph", &wf, "--format", "dot"], dir.path()));
    assert!(text.contains("subgraph cluster_") && text.contains("ItemProcessor"), "{text}");
}

#[test]
fn json_logs_carry_the_execution_and_state_as_span_fields() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("workflows/nightly-refresh-portable.asl.json");
    let mock = repo("workflows/nightly-refresh-portable.mock.json");
    let out = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "run",
            &wf,
            "--mock",
            &mock,
            "--time-scale",
            "100000",
            "--no-checkpoint",
        ])
        .arg("--name")
        .arg("logged")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> =
        stderr(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let call =
        lines.iter().find(|l| l["fields"]["message"] == "calling task").expect("a task call is logged");
    let step = &call["spans"][0];
    assert_eq!(step["execution"], "logged");
    assert_eq!(step["state"], "ImportInteractions");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "execution ended" && l["fields"]["status"] == "SUCCEEDED")
    );
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("workflows/nightly-refresh-portable.asl.json");
    let mock = repo("workflows/nightly-refresh-portable.mock.json");
    let out =
        recflow(&["run", &wf, "--mock", &mock, "--time-scale", "100000", "--name", "piped"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // `recflow history piped | head -1`: the reader goes away after one line.
    let mut child = Command::new(BIN)
        .args(["history", "piped"])
        .env("RECFLOW_CHECKPOINT_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first)
        .unwrap();
    assert!(first.contains("ExecutionStarted"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(101), "a panic: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn time_scales_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let counter = repo("benches/counter.asl.json");
    for scale in ["0", "-1", "1e20", "1e-300", "NaN", "inf"] {
        let flag = format!("--time-scale={scale}");
        let out = recflow(&["run", &counter, "--no-checkpoint", &flag], dir.path());
        assert_eq!(out.status.code(), Some(2), "{scale}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--time-scale must be between 0.001 and 1000000"),
            "{scale}: {}",
            stderr(&out)
        );
    }
    let out = recflow(
        &[
            "local",
            "serve",
            "--port",
            "0",
            "--time-scale",
            "1e20",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_mock_may_return_null() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("wf.asl.json");
    std::fs::write(&wf, r#"{"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}}"#).unwrap();
    let mock = dir.path().join("mock.json");
    std::fs::write(&mock, r#"{"Work": {"Return": null}}"#).unwrap();
    let out = recflow(
        &[
            "run",
            wf.to_str().unwrap(),
            "--mock",
            mock.to_str().unwrap(),
            "--no-checkpoint",
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let described: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(described["output"], "null");
}

#[test]
fn a_mock_without_answers_for_a_state_names_the_near_key() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("wf.asl.json");
    std::fs::write(&wf, r#"{"StartAt": "Send", "States": {"Send": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}}"#).unwrap();
    let mock = dir.path().join("mock.json");
    std::fs::write(&mock, r#"{"Sendd": {"Return": 1}}"#).unwrap();
    let out = recflow(&["run", wf.to_str().unwrap(), "--mock", mock.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("States.Send: the --mock file") && err.contains("did you mean 'Send'?"), "{err}");
}

#[test]
fn schedule_prints_the_next_fire_times_in_a_zone() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "schedule",
        "cron(30 2 * * ? *)",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-03-28T00:00:00Z",
        "--next",
        "3",
    ];
    let out = recflow(&args, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Berlin springs forward on 2026-03-29 at 02:00: 02:30 does not exist that day.
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "Sat 2026-03-28 02:30:00 CET  (2026-03-28T01:30:00Z)",
            "Mon 2026-03-30 02:30:00 CEST  (2026-03-30T00:30:00Z)",
            "Tue 2026-03-31 02:30:00 CEST  (2026-03-31T00:30:00Z)"
        ]
    );
    let out = recflow(&["schedule", "cron(0 3 * * * *)"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("must be '?'"), "{}", stderr(&out));
    let out = recflow(&["schedule", "rate(1 hours)"], dir.path());
    assert!(stderr(&out).contains("write rate(1 hour)"), "{}", stderr(&out));
    let out = recflow(&["schedule", "rate(1 hour)", "--tz", "Mars/Olympus"], dir.path());
    assert!(stderr(&out).contains("not an IANA time zone"), "{}", stderr(&out));
}

/// Starts `recflow run` on an hour-long Wait in `dir` and returns once it is checkpointed waiting.
fn waiting_run(dir: &Path, name: &str) -> std::process::Child {
    let wf = dir.join("wait.asl.json");
    std::fs::write(
        &wf,
        r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#,
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["run", wf.to_str().unwrap(), "--name", name])
        .env("RECFLOW_CHECKPOINT_DIR", dir)
        .env("RECFLOW_LOG", "warn")
        .spawn()
        .unwrap();
    let checkpoint = dir.join(name).join("checkpoint.json");
    for _ in 0..500 {
        if std::fs::read_to_string(&checkpoint).is_ok_and(|t| t.contains("Waiting")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

#[test]
fn status_of_a_running_execution_exits_0_and_says_who_advances_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = waiting_run(dir.path(), "napping");
    let out = recflow(&["status", "napping"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("advanced by recflow process {}", child.id())),
        "{}",
        stdout(&out)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let out = recflow(&["status", "napping"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("no process is advancing it; continue it with: recflow resume napping"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_checkpoint_at_a_state_its_definition_lacks_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = waiting_run(dir.path(), "edited");
    let checkpoint = dir.path().join("edited/checkpoint.json");
    child.kill().unwrap();
    child.wait().unwrap();
    let edited = std::fs::read_to_string(&checkpoint).unwrap().replace("\"Nap\"", "\"Nope\"");
    std::fs::write(&checkpoint, &edited).unwrap();
    let out = recflow(&["resume", "edited"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stands at state 'Nope', which its definition does not have"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), edited, "left untouched");
}

#[test]
fn without_aws_region_or_credentials_a_run_is_refused_at_once_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("workflows/nightly-refresh.asl.json");
    let bare = |extra: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["run", &wf, "--data-dir", dir.path().to_str().unwrap()]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = bare(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no AWS region: set AWS_REGION"), "{}", stderr(&out));
    let out = bare(&[("AWS_REGION", "eu-west-1")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no AWS credentials") && stderr(&out).contains("--local"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("executions").exists()
            || std::fs::read_dir(dir.path().join("executions")).unwrap().count() == 0
    );
}

#[test]
fn sigterm_during_a_run_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("wait.asl.json");
    std::fs::write(
        &wf,
        r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#,
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["run", wf.to_str().unwrap(), "--name", "stopped"])
        .env("RECFLOW_CHECKPOINT_DIR", dir.path())
        .env("RECFLOW_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("stopped/checkpoint.json");
    for _ in 0..500 {
        if std::fs::read_to_string(&checkpoint).is_ok_and(|t| t.contains("Waiting")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("interrupted; the execution is checkpointed: continue it with `recflow resume stopped"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn deeply_nested_expressions_are_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let calls = format!("{}1{}", "States.Array(".repeat(7000), ")".repeat(7000));
    let filter = format!("$[?({}@.a == 1{})]", "(".repeat(3000), ")".repeat(3000));
    for (what, expr, needle) in [
        ("calls", calls, "intrinsic functions nested more than 64 deep"),
        ("filter", filter, "filter parentheses nested more than 64 deep"),
    ] {
        let wf = dir.path().join(format!("{what}.asl.json"));
        let def = serde_json::json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"x.$": expr}, "End": true}}});
        std::fs::write(&wf, def.to_string()).unwrap();
        let out = recflow(&["validate", wf.to_str().unwrap()], dir.path());
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("States.P.Parameters") && stdout(&out).contains(needle),
            "{what}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn a_growing_payload_and_an_endless_loop_end_with_clear_failures() {
    let dir = tempfile::tempdir().unwrap();
    // Doubles $.s on every round; the Catch does not help (States.DataLimitExceeded is terminal).
    let doubling = serde_json::json!({"StartAt": "Grow", "States": {
        "Grow": {"Type": "Pass", "Parameters": {"s.$": "States.Format('{}{}', $.s, $.s)"}, "Next": "Enough?"},
        "Enough?": {"Type": "Choice", "Choices": [{"Variable": "$.s", "StringEquals": "never", "Next": "Done"}], "Default": "Grow"},
        "Done": {"Type": "Succeed"}}});
    let wf = dir.path().join("doubling.asl.json");
    std::fs::write(&wf, doubling.to_string()).unwrap();
    let out =
        recflow(&["run", wf.to_str().unwrap(), "--no-checkpoint", "--input", r#"{"s": "ab"}"#], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("Error: States.DataLimitExceeded"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("exceeding the maximum number of bytes service limit (262144 bytes)"),
        "{}",
        stdout(&out)
    );

    // A loop whose way out is never taken stops at the history limit, checkpointed or not.
    let spinning = serde_json::json!({"StartAt": "Spin", "States": {
        "Spin": {"Type": "Pass", "Next": "Out?"},
        "Out?": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "BooleanEquals": true, "Next": "Done"}], "Default": "Spin"},
        "Done": {"Type": "Succeed"}}});
    let wf = dir.path().join("spin.asl.json");
    std::fs::write(&wf, spinning.to_string()).unwrap();
    let out = recflow(
        &[
            "run",
            wf.to_str().unwrap(),
            "--name",
            "spin",
            "--max-history-events",
            "500",
            "--input",
            r#"{"stop": false}"#,
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("history events, reaching its limit of 500"), "{}", stdout(&out));
    let history = std::fs::read_to_string(dir.path().join("spin/history.jsonl")).unwrap();
    let lines = history.lines().count();
    assert!(
        (500..=503).contains(&lines),
        "the limit (a transition writes up to two events), then ExecutionFailed: {lines}"
    );
}

/// The checkpoint reads fine beside a damaged history: `status` says so before `resume` refuses.
#[test]
fn status_names_the_events_a_damaged_history_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("workflows/nightly-refresh-portable.asl.json");
    let mock = repo("workflows/nightly-refresh-portable.mock.json");
    let out = recflow(&["run", &wf, "--mock", &mock, "--time-scale", "100000", "--name", "cut"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let path = dir.path().join("cut/history.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged: String =
        text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&path, damaged).unwrap();
    let out = recflow(&["status", "cut"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("history: events 2 are missing"), "{}", stdout(&out));
}

/// A `--mock` run resumes with its answers, and a resume with no record of how the execution
/// started says it goes to AWS.
#[test]
fn resume_keeps_the_mock_answers_and_says_when_it_cannot_know_how_a_run_started() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("nap-then-work.asl.json");
    std::fs::write(
        &wf,
        r#"{"StartAt": "Nap", "States": {
            "Nap": {"Type": "Wait", "Seconds": 100, "Next": "Work"},
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:listRecipes", "End": true}}}"#,
    )
    .unwrap();
    let mock = dir.path().join("answers.json");
    std::fs::write(&mock, r#"{"Work": {"Return": {"Recipes": ["mocked"]}}}"#).unwrap();
    let wf = wf.to_str().unwrap();
    let calls = dir.path().join("calls.jsonl");
    for name in ["dry", "unrecorded"] {
        let out = recflow(
            &[
                "run",
                wf,
                "--mock",
                mock.to_str().unwrap(),
                "--mock-call-log",
                calls.to_str().unwrap(),
                "--name",
                name,
                "--max-runtime",
                "1s",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // Calls that would go past the loopback fail at once instead.
    let offline = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("RECFLOW_CHECKPOINT_DIR", dir.path())
            .env("RECFLOW_LOG", "warn")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "offline")
            .env("AWS_SECRET_ACCESS_KEY", "offline")
            .output()
            .unwrap()
    };
    let out = offline(&["resume", "dry", "--time-scale", "100000", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("mocked"), "answered by the mock file: {}", stdout(&out));
    let logged = std::fs::read_to_string(&calls).expect("the call log kept");
    assert!(logged.contains("\"Work\""), "{logged}");

    std::fs::remove_file(dir.path().join("unrecorded/launch.json")).unwrap();
    let out = offline(&["resume", "unrecorded", "--max-runtime", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no record of how unrecorded was started"), "{}", stderr(&out));
    assert!(stderr(&out).contains("give --local or --mock"), "{}", stderr(&out));
}

#[test]
fn a_typo_in_the_log_level_is_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let out = recflow(&["--log-level", "debgu", "status"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did you mean 'debug'"), "{}", stderr(&out));
    let out = recflow(&["--log-level", "recflow=debug,warn", "status"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_workflow_runs_by_name_from_recflow_toml_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("echo.asl.json"),
        r#"{"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": true}}}"#,
    )
    .unwrap();
    let config = dir.path().join("recflow.toml");
    std::fs::write(
        &config,
        "[workflows.echo]\ndefinition = \"echo.asl.json\"\ninput = { day = \"2026-11-29\", topN = 10 }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = recflow(&["run", "echo", "--config", config, "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let described: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(described["output"], r#"{"day":"2026-11-29","topN":10}"#);
    // --input wins over the file's input.
    let out = recflow(
        &["run", "echo", "--config", config, "--input", r#"{"day": "today"}"#, "--output", "json"],
        dir.path(),
    );
    let described: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(described["output"], r#"{"day":"today"}"#);
    // A name the file does not have, and a mistake in the file, are refused before anything runs.
    let out = recflow(&["run", "weekly", "--config", config], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no workflow named 'weekly' (it has: echo)"), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("recflow.toml"),
        "[workflows.echo]\ndefinition = \"echo.asl.json\"\nmax_runtme = \"1m\"\n",
    )
    .unwrap();
    let out = recflow(&["run", "echo", "--config", config], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("recflow.toml:3") && stderr(&out).contains("max_runtme"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_example_recflow_toml_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown workflow name makes `run` list the file's workflows after checking all of it.
    let out = recflow(&["run", "nothing", "--config", &repo("workflows/recflow.toml")], dir.path());
    assert!(stderr(&out).contains("it has: demo, nightly"), "{}", stderr(&out));
}

#[test]
fn an_s3_checkpoint_location_without_a_bucket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wf = repo("benches/counter.asl.json");
    let out =
        recflow(&["run", &wf, "--checkpoint-dir", "s3://", "--input", r#"{"i": 0, "n": 1}"#], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs a bucket"), "{}", stderr(&out));
    let out = recflow(&["status", "--checkpoint-dir", "s3:///x"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

/// Every positional argument of every command says what it is in `--help`.
#[test]
fn every_positional_argument_is_described_in_help() {
    let commands: &[&[&str]] = &[
        &["validate"],
        &["run"],
        &["resume"],
        &["status"],
        &["history"],
        &["graph"],
        &["schedule"],
        &["daemon"],
        &["local", "serve"],
        &["local", "seed"],
        &["export"],
        &["iam-policy"],
    ];
    for command in commands {
        let out = Command::new(BIN).args(*command).arg("-h").output().expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        let mut in_arguments = false;
        for line in help.lines() {
            if line.starts_with("Arguments:") {
                in_arguments = true;
            } else if !line.starts_with(' ') {
                in_arguments = false;
            } else if in_arguments && !line.trim().is_empty() {
                assert!(
                    line.split_whitespace().count() > 1,
                    "`recflow {}`: {line:?} has no description",
                    command.join(" ")
                );
            }
        }
    }
}

/// Off AWS the SDK's region chain warns about IMDS with its whole HTTP response; recflow's own
/// "no AWS region" says it in one line, so the SDK's warnings stay out unless asked for.
#[test]
fn a_missing_region_is_one_line_without_the_sdks_imds_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let out = Command::new(BIN)
        .args(["run", "--no-checkpoint", "--input-file"])
        .arg(workflows.join("nightly.example.json"))
        .arg(workflows.join("nightly-refresh.asl.json"))
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no AWS region"), "{stderr}");
    assert!(!stderr.contains("IMDS"), "{stderr}");
}
