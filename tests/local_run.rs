//! The README's main command as a user runs it: `recflow run workflows/nightly-refresh.asl.json
//! --local`, killed in the middle and resumed with no flags (the run's --local and time scale are
//! remembered), then run again on the same data.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_recflow");

fn recflow(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RECFLOW_DATA_DIR", dir)
        .env("RECFLOW_LOG", "warn")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("RECFLOW_CHECKPOINT_DIR");
    cmd
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn run_local_killed_then_resumed_without_flags_then_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/nightly-refresh.asl.json");
    let wf = wf.to_str().unwrap();

    let killed = recflow(dir.path(), &["run", wf, "--local", "--name", "first"])
        .env("RECFLOW_KILL_AFTER_CALL", "TrainSolutionVersion")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed by its signal: {}", text(&killed));
    let csv = dir.path().join("local/s3/recflow-demo/interactions%2Finteractions.csv");
    assert!(csv.exists(), "the demo data was seeded under --data-dir");
    let seeded_at = std::fs::metadata(&csv).unwrap().modified().unwrap();

    let resumed = recflow(dir.path(), &["resume", "first"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    let out = String::from_utf8_lossy(&resumed.stdout);
    assert!(out.starts_with("execution first SUCCEEDED"), "{out}");

    let again = recflow(dir.path(), &["run", wf, "--local", "--name", "second", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let described: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(described["status"], "SUCCEEDED");
    let output: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["picks"]["Users"], 2000);
    assert_eq!(
        std::fs::metadata(&csv).unwrap().modified().unwrap(),
        seeded_at,
        "the data is reused, not reseeded"
    );
    // With --output json, stdout is the one JSON document: no summary, no progress.
    assert!(!String::from_utf8_lossy(&again.stdout).contains("States (execution clock)"));
    // The second run polled with the first run's job durations in hand.
    let durations: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("executions/job-durations.json")).unwrap(),
    )
    .unwrap();
    assert!(durations.to_string().contains("TrainSolutionVersion"), "{durations}");
}

/// `--local` merges the demo's ARNs into the input: a string or a list is refused (exit 2,
/// naming the input), not dropped in favour of the demo's.
#[test]
fn a_local_run_refuses_an_input_that_is_not_an_object() {
    let dir = tempfile::tempdir().unwrap();
    for input in ["\"x\"", "[1]"] {
        let out =
            recflow(dir.path(), &["run", "workflows/nightly-refresh.asl.json", "--local", "--input", input])
                .output()
                .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("must then be a JSON object"), "{}", text(&out));
        assert!(text(&out).contains(&format!("not {input}")), "{}", text(&out));
    }
}

/// The summary labels each solution version's metrics with its state and version, so three
/// trained solutions give three lines that say which is which.
#[test]
fn train_compare_labels_each_solutions_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = recflow(dir.path(), &["run", "workflows/train-compare.asl.json", "--local"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Solution version metrics")).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    // The three branches run in parallel, so their lines come in any order.
    for state in ["UserPersonalizationMetrics", "SimsMetrics", "RankingMetrics"] {
        let label = format!("Solution version metrics ({state}, arn:aws:personalize:");
        assert_eq!(lines.iter().filter(|l| l.starts_with(&label)).count(), 1, "{state}: {stdout}");
    }
}

/// A name in use is refused before the emulator starts (which would resume the jobs it holds).
#[test]
fn a_local_run_with_a_name_in_use_is_refused_before_the_emulator_starts() {
    let dir = tempfile::tempdir().unwrap();
    let wf = "workflows/nightly-refresh-portable.asl.json";
    let mock = "workflows/nightly-refresh-portable.mock.json";
    let out = recflow(dir.path(), &["run", wf, "--mock", mock, "--name", "taken", "--time-scale", "100000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out =
        recflow(dir.path(), &["run", "workflows/nightly-refresh.asl.json", "--local", "--name", "taken"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert!(!dir.path().join("local").exists(), "the emulator was started: {}", text(&out));
}

/// Ctrl-C while `run --local` prepares the demo (before any execution exists) stops the
/// emulator and says there is nothing to resume, instead of dying without a word.
#[test]
fn ctrl_c_while_the_demo_is_prepared_says_nothing_was_started() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/nightly-refresh.asl.json");
    // At this time scale the demo's dataset group takes hours of real time to turn ACTIVE.
    let mut child = recflow(dir.path(), &["run", wf.to_str().unwrap(), "--local", "--time-scale", "0.01"])
        .arg("--name")
        .arg("early")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("preparing the demo") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "stderr ended before the demo was prepared");
    }
    // SAFETY: kill sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert!(rest.contains("interrupted while preparing the local demo"), "{rest}");
    assert!(rest.contains("nothing to resume"), "{rest}");
    assert!(!dir.path().join("executions/early").exists(), "no execution was started");
}
