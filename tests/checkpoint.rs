//! The file store after crashes and power losses: what the history file may lose or gain, and
//! what opening the execution makes of it.

mod common;

use std::path::Path;

use common::{script, t0};
use recflow::asl::StateMachine;
use recflow::checkpoint::{CheckpointError, Durability, ExecutionStore, FileStore};
use recflow::engine::{Driver, HistoryEvent, Registry, TokioClock};
use recflow::tasks::Scripted;
use serde_json::json;

/// Runs a few transitions of a looping workflow into `root/name` and returns its history.
async fn partial_run(root: &Path, name: &str, steps: usize) -> Vec<HistoryEvent> {
    // The Catch is the loop's way out, which a definition must have; the script never throws.
    let definition = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "r", "ResultPath": "$.r", "Next": "Nap",
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Stop"}]},
        "Nap": {"Type": "Wait", "Seconds": 5, "Next": "Work"},
        "Stop": {"Type": "Fail", "Error": "Stopped"}}});
    let machine = StateMachine::from_json(&definition).unwrap();
    let mut registry = Registry::new();
    registry.register("", script(&[("Work", vec![Scripted::ok(json!(1))])]));
    let clock = TokioClock::starting_at(t0());
    let store = FileStore::new(root, Durability::Fsync);
    let mut driver =
        Driver::start(&machine, &definition, &registry, &clock, &store, name, "loop", json!({}), 3)
            .await
            .unwrap();
    for _ in 0..steps {
        assert!(driver.step().await.unwrap());
    }
    drop(driver);
    drop(store);
    history(root, name).await
}

async fn history(root: &Path, name: &str) -> Vec<HistoryEvent> {
    FileStore::new(root, Durability::Fsync).history(name).await.unwrap()
}

fn history_path(root: &Path, name: &str) -> std::path::PathBuf {
    root.join(name).join("history.jsonl")
}

#[tokio::test(start_paused = true)]
async fn events_lost_from_an_unsynced_history_are_restored_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let before = partial_run(dir.path(), "lossy", 12).await;
    assert!(before.len() > 12);
    // A power loss keeps only what was synced: here, the first two lines.
    let path = history_path(dir.path(), "lossy");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, kept).unwrap();

    let store = FileStore::new(dir.path(), Durability::Fsync);
    let loaded = store.load("lossy").await.unwrap();
    assert_eq!(loaded.execution.last_event_id, before.len() as u64);
    assert_eq!(history(dir.path(), "lossy").await, before);
}

#[tokio::test(start_paused = true)]
async fn a_torn_last_line_and_events_past_the_checkpoint_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let before = partial_run(dir.path(), "torn", 5).await;
    let path = history_path(dir.path(), "torn");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let extra = json!({"id": before.len() + 1, "timestamp": "2026-11-25T02:00:00Z", "type": "ExecutionStarted", "input": {}});
    text.push_str(&format!("{extra}\n{{\"id\": 99, \"times"));
    std::fs::write(&path, text).unwrap();

    let store = FileStore::new(dir.path(), Durability::Fsync);
    store.load("torn").await.unwrap();
    assert_eq!(history(dir.path(), "torn").await, before);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), before.len());
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_line_inside_the_history_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    partial_run(dir.path(), "rot", 5).await;
    let path = history_path(dir.path(), "rot");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"id\": 3, bit rot";
    let corrupt = lines.join("\n") + "\n";
    std::fs::write(&path, &corrupt).unwrap();

    let err = FileStore::new(dir.path(), Durability::Fsync).load("rot").await.expect_err("refused");
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("history.jsonl") && err.to_string().contains("line 3"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), corrupt);
}

/// A checkpoint written by recflow's format 1 (before Parallel and Map) loads and finishes: the
/// checked-in fixture is an execution SIGKILLed in a one-hour Wait.
#[tokio::test(start_paused = true)]
async fn a_format_1_checkpoint_still_loads_and_finishes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoints/format1");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("format1");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["checkpoint.json", "history.jsonl", "definition.json"] {
        std::fs::copy(fixture.join(file), dir.join(file)).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).unwrap();
    assert!(text.starts_with("{\"format\":1,"), "the fixture is format 1");

    let store = FileStore::new(root.path(), Durability::Fsync);
    let loaded = store.load("format1").await.unwrap();
    assert_eq!(loaded.execution.input, json!({"tenant": "a"}));
    let machine = StateMachine::from_json(&loaded.definition).unwrap();
    let registry = Registry::new();
    let clock = TokioClock::starting_at(t0() + chrono::Duration::days(30));
    let driver = Driver::resume(&machine, &registry, &clock, &store, loaded);
    let execution = driver.run().await.unwrap();
    assert_eq!(execution.status, recflow::engine::Status::Succeeded);
    assert_eq!(execution.output, Some(json!({"tenant": "a", "prepared": {"n": 1}})));
    // Checkpoints written from now on are the current format.
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).unwrap();
    assert!(text.starts_with(&format!("{{\"format\":{},", recflow::checkpoint::FORMAT)), "{text}");
    assert_eq!(recflow::checkpoint::FORMAT, 3);
}

/// Past the first fsync the history's head is durable: a file that lost it was damaged, not cut
/// by a power loss, and is refused untouched instead of being "repaired" into a gap.
#[tokio::test(start_paused = true)]
async fn a_synced_history_missing_its_first_lines_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let before = partial_run(dir.path(), "cut", 40).await;
    assert!(before.len() > 64, "the history has been synced at least once: {} events", before.len());
    let path = history_path(dir.path(), "cut");
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged: String = text.lines().skip(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &damaged).unwrap();

    let err = FileStore::new(dir.path(), Durability::Fsync).load("cut").await.expect_err("refused");
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("events 1..=3 are missing"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), damaged);
}

#[tokio::test(start_paused = true)]
async fn a_synced_history_missing_lines_in_the_middle_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    partial_run(dir.path(), "hole", 40).await;
    let path = history_path(dir.path(), "hole");
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged: String =
        text.lines().enumerate().filter(|(i, _)| *i != 9).map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&path, &damaged).unwrap();

    let err = FileStore::new(dir.path(), Durability::Fsync).load("hole").await.expect_err("refused");
    assert!(err.to_string().contains("events 10 are missing"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), damaged);
}

/// An execution runs the definition it started with; an edited definition.json is refused.
#[tokio::test(start_paused = true)]
async fn an_edited_definition_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    partial_run(dir.path(), "edited", 2).await;
    let path = dir.path().join("edited").join("definition.json");
    let mut definition: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    definition["States"]["Nap"]["Seconds"] = json!(1);
    let edited = serde_json::to_vec(&definition).unwrap();
    std::fs::write(&path, &edited).unwrap();

    let err = FileStore::new(dir.path(), Durability::Fsync).load("edited").await.expect_err("refused");
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("definition.json") && err.to_string().contains("started with"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), edited);
}

/// The lock is the execution's folder, not the `lock` file: deleting the file under a holder
/// lets nobody else in, and the refusal still names the holder.
#[tokio::test(start_paused = true)]
async fn deleting_the_lock_file_under_a_holder_lets_nobody_in() {
    let dir = tempfile::tempdir().unwrap();
    partial_run(dir.path(), "held", 2).await;
    let holder = FileStore::new(dir.path(), Durability::Fsync);
    holder.load("held").await.unwrap();
    std::fs::remove_file(dir.path().join("held").join("lock")).unwrap();

    let second = FileStore::new(dir.path(), Durability::Fsync).load("held").await;
    assert!(matches!(second, Err(CheckpointError::Locked { pid: None, .. })), "{:?}", second.err());
    assert!(FileStore::holder(dir.path(), "held").unwrap().is_some());
    std::fs::write(dir.path().join("held").join("lock"), std::process::id().to_string()).unwrap();
    let third = FileStore::new(dir.path(), Durability::Fsync).load("held").await;
    assert!(
        matches!(third, Err(CheckpointError::Locked { pid: Some(p), .. }) if p == std::process::id()),
        "{:?}",
        third.err()
    );
    drop(holder);
    FileStore::new(dir.path(), Durability::Fsync).load("held").await.unwrap();
}

/// A folder copied under another name is refused untouched: it would advance the original
/// execution (and call services as it).
#[tokio::test(start_paused = true)]
async fn a_checkpoint_in_a_folder_of_another_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    partial_run(dir.path(), "original", 2).await;
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["checkpoint.json", "history.jsonl", "definition.json"] {
        std::fs::copy(dir.path().join("original").join(file), copy.join(file)).unwrap();
    }
    let err = FileStore::new(dir.path(), Durability::Fsync).load("copy").await.expect_err("refused");
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("holds the execution 'original', but its folder is named 'copy'"),
        "{err}"
    );
}
