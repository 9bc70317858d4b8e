//! The nightly refresh survives SIGKILL anywhere: the real binary runs
//! workflows/nightly-refresh.asl.json against `recflow local serve` in another process (so the
//! emulator outlives each kill), is killed at 20 or more points (right after a Create* answered
//! and before the answer was checkpointed, after polls, after the metrics, the picks and the
//! event, and at random moments), and is resumed each time. In the end the emulator holds exactly
//! one import job, one solution version and one batch inference job, and today's picks are byte
//! for byte those of an uninterrupted run on a fresh emulator with the same data.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

#[path = "support/clients.rs"]
mod clients;
#[path = "support/served.rs"]
mod served;

use served::{BIN, Served, serve};

const NAME: &str = "nightly-crash";

fn workflow() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/nightly-refresh.asl.json").display().to_string()
}

/// A served emulator with the demo data and a dataset group; jobs made slow enough (in emulated
/// time) that each `.sync` state polls several times.
async fn prepared(dir: &Path, auto_training: bool) -> (Served, clients::Group) {
    let emulator = serve(dir, &["--time-scale", "600"]);
    let seeded = std::process::Command::new(BIN)
        .args(["local", "seed", "--users", "300", "--items", "120", "--interactions", "9000", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(seeded.status.success());
    let group = clients::dataset_group_training(
        &emulator.personalize().await,
        "crash",
        "aws-user-personalization",
        auto_training,
    )
    .await;
    for kind in ["DatasetImportJob", "SolutionVersion", "BatchInferenceJob"] {
        emulator.fault(&format!(r#"{{"slowNextJob": "{kind}", "seconds": 900}}"#));
    }
    (emulator, group)
}

fn input(group: &clients::Group) -> String {
    clients::nightly_input(group).to_string()
}

fn succeeded(out: &std::process::Output) {
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
}

fn checkpoints(dir: &Path) -> PathBuf {
    dir.join("runs")
}

/// The picks part files of the day, as (name, bytes), in name order.
fn picks(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let bucket = recflow::local::s3::BucketName::parse("recflow-demo").unwrap();
    let stored = recflow::local::s3::objects::list(&dir.join("local/s3"), &bucket, "picks/").unwrap();
    let days: std::collections::BTreeSet<&str> =
        stored.iter().filter_map(|o| o.key.split('/').nth(1)).filter(|d| *d != "latest.json").collect();
    assert_eq!(days.len(), 1, "{days:?}");
    let parts: Vec<(String, Vec<u8>)> = stored
        .iter()
        .filter(|o| o.file_name().starts_with("part-"))
        .map(|o| (o.file_name().to_owned(), std::fs::read(&o.path).unwrap()))
        .collect();
    assert!(!parts.is_empty());
    parts
}

fn status(emulator: &Served, dir: &Path) -> Value {
    let out = emulator
        .recflow(&["status", NAME, "--output", "json"])
        .env("RECFLOW_DATA_DIR", checkpoints(dir))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_anywhere_then_resume_makes_one_of_each_job_and_the_same_picks() {
    // The uninterrupted run, on its own emulator, its solution with Personalize's default
    // performAutoTraining on (an automatic version would not change the picks, which come from
    // the workflow's own version).
    let straight_dir = tempfile::tempdir().unwrap();
    let (straight, group) = prepared(straight_dir.path(), true).await;
    let out = straight
        .recflow(&[
            "--log-level",
            "warn",
            "run",
            &workflow(),
            "--name",
            NAME,
            "--time-scale",
            "600",
            "--input",
            &input(&group),
        ])
        .env("RECFLOW_DATA_DIR", checkpoints(straight_dir.path()))
        .output()
        .unwrap();
    succeeded(&out);
    // The summary warns that this solution (created with Personalize's default,
    // performAutoTraining on) also trains by itself.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("trains automatically every 7 days"),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("Today's picks: s3://recflow-demo/picks/"), "{summary}");
    let expected = picks(straight_dir.path());
    straight.stop();

    // The same, killed again and again; automatic training off, so however long the kills make
    // it last, the group holds only the workflow's jobs.
    let dir = tempfile::tempdir().unwrap();
    let (emulator, group) = prepared(dir.path(), false).await;
    let targets = [
        "ImportInteractions", // right after the create answered, before it was checkpointed
        "ImportInteractions", // after a poll
        "ImportInteractions",
        "TrainSolutionVersion",
        "TrainSolutionVersion",
        "TrainSolutionVersion",
        "GetMetrics",
        "PrecomputeRecommendations",
        "PrecomputeRecommendations",
        "PrecomputeRecommendations",
        "PublishPicks",
        "AnnounceRefreshed",
    ];
    let mut kills = 0;
    let mut started = false;
    let mut rng = fastrand::Rng::with_seed(7);
    let workflow = workflow();
    let input = input(&group);
    for round in 0..60 {
        let mut args = vec!["--log-level", "warn"];
        if started {
            args.extend(["resume", NAME, "--time-scale", "600"]);
        } else {
            args.extend(["run", &workflow, "--name", NAME, "--time-scale", "600", "--input", &input]);
        }
        let mut cmd = emulator.recflow(&args);
        cmd.env("RECFLOW_DATA_DIR", checkpoints(dir.path())).stdout(Stdio::null()).stderr(Stdio::null());
        // Even rounds: a kill right after a named state's call; odd rounds: a kill at a random
        // moment, whatever the process is doing.
        let targeted = round % 2 == 0 && round / 2 < targets.len();
        if targeted {
            cmd.env("RECFLOW_KILL_AFTER_CALL", targets[round / 2]);
        }
        let mut child = cmd.spawn().unwrap();
        started = true;
        if !targeted {
            tokio::time::sleep(Duration::from_millis(rng.u64(5..120))).await;
            let _ = child.kill();
        }
        let exit = child.wait().unwrap();
        if exit.code() == Some(0) {
            break;
        }
        if exit.code().is_none() {
            kills += 1;
        }
    }
    // Whatever is left, to the end.
    let out = emulator
        .recflow(&["--log-level", "warn", "resume", NAME, "--time-scale", "600"])
        .env("RECFLOW_DATA_DIR", checkpoints(dir.path()))
        .output()
        .unwrap();
    succeeded(&out);
    assert_eq!(status(&emulator, dir.path())["status"], "SUCCEEDED");
    eprintln!("{kills} kills landed");
    assert!(kills >= 20, "only {kills} kills landed");

    let pz = emulator.personalize().await;
    clients::assert_one_job_of_each(&pz, &group).await;

    assert_eq!(picks(dir.path()), expected, "today's picks differ from the uninterrupted run's");
    emulator.stop();
}
