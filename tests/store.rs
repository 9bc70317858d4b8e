//! One test suite for every execution store: the memory store (the fake), the file store, and
//! the S3 store on the embedded S3. Each must refuse a second creation, a stale version, and a
//! second process advancing an execution, and give back what was committed.

use chrono::{TimeZone, Utc};
use recflow::checkpoint::{
    CheckpointError, Durability, ExecutionStore, FileStore, MemoryStore, Precondition, S3Store,
};
use recflow::engine::execution::Execution;
use recflow::engine::{Detail, HistoryEvent, Version};
use serde_json::json;

fn execution(name: &str, minute: u32) -> Execution {
    let start = Utc.with_ymd_and_hms(2026, 11, 29, 2, minute, 0).unwrap();
    Execution::new(name, "nightly", json!({"day": "2026-11-29"}), "Import", start, 1)
}

fn event(id: u64, detail: Detail) -> HistoryEvent {
    HistoryEvent { id, timestamp: Utc.with_ymd_and_hms(2026, 11, 29, 2, 0, 0).unwrap(), detail }
}

fn started(exec: &mut Execution) -> Vec<HistoryEvent> {
    exec.last_event_id = 1;
    vec![event(1, Detail::ExecutionStarted { input: exec.input.clone() })]
}

/// The suite. `a` and `b` are two views of the same storage, as two processes would have.
async fn suite(a: &dyn ExecutionStore, b: &dyn ExecutionStore, two_processes_can_load: bool) {
    let definition = json!({"StartAt": "Import", "States": {"Import": {"Type": "Pass", "End": true}}});
    let mut exec = execution("first", 0);
    let events = started(&mut exec);
    let v1 = a.commit(&exec, &events, Some(&definition), Precondition::DoesNotExist).await.unwrap();

    // A second creation of the same name is refused, by this view and by the other.
    let again = a.commit(&exec, &events, Some(&definition), Precondition::DoesNotExist).await;
    assert!(
        matches!(again, Err(CheckpointError::Exists { .. } | CheckpointError::Conflict { .. })),
        "{again:?}"
    );
    let again = b.commit(&exec, &events, Some(&definition), Precondition::DoesNotExist).await;
    assert!(
        matches!(
            again,
            Err(CheckpointError::Exists { .. }
                | CheckpointError::Conflict { .. }
                | CheckpointError::Locked { .. })
        ),
        "{again:?}"
    );

    // A transition at the current version is recorded and moves the version on.
    exec.last_event_id = 2;
    exec.transitions = 1;
    let entered = vec![event(2, Detail::StateEntered { state: "Import".into(), input: exec.input.clone() })];
    let v2 = a.commit(&exec, &entered, None, Precondition::Matches(v1.clone())).await.unwrap();
    assert_ne!(v1, v2);

    // A stale version is refused, and changes nothing.
    let stale = a.commit(&exec, &[], None, Precondition::Matches(v1.clone())).await;
    assert!(matches!(stale, Err(CheckpointError::Conflict { .. })), "{stale:?}");

    // What was committed comes back: definition, execution (its input rehydrated), version,
    // history.
    let read = b.read("first").await.unwrap();
    assert_eq!(read.definition, definition);
    assert_eq!(read.execution, exec);
    assert_eq!(read.execution.input, json!({"day": "2026-11-29"}));
    assert_eq!(read.version, v2);
    let history = b.history("first").await.unwrap();
    assert_eq!(history.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);

    // Another process cannot advance it: either it cannot load it while this one holds it, or
    // its commit is refused once this one has moved on.
    match b.load("first").await {
        Err(CheckpointError::Locked { .. }) => assert!(!two_processes_can_load),
        Ok(loaded) => {
            assert!(two_processes_can_load);
            exec.transitions = 2;
            let v3 = a.commit(&exec, &[], None, Precondition::Matches(v2.clone())).await.unwrap();
            let late = b.commit(&loaded.execution, &[], None, Precondition::Matches(loaded.version)).await;
            assert!(matches!(late, Err(CheckpointError::Conflict { .. })), "{late:?}");
            assert_eq!(b.read("first").await.unwrap().version, v3);
        }
        Err(other) => panic!("{other}"),
    }

    // Listing: oldest first, with their states.
    let mut second = execution("second", 5);
    let events = started(&mut second);
    a.commit(&second, &events, Some(&definition), Precondition::DoesNotExist).await.unwrap();
    let listed: Vec<String> = a.list().await.unwrap().into_iter().map(|e| e.unwrap().name).collect();
    assert_eq!(listed, ["first", "second"]);

    // An unknown execution is NotFound, not an empty one.
    assert!(matches!(b.read("nobody").await, Err(CheckpointError::NotFound { .. })));
    let never =
        a.commit(&execution("nobody", 9), &[], None, Precondition::Matches(Version("1".into()))).await;
    assert!(
        matches!(never, Err(CheckpointError::Conflict { .. } | CheckpointError::NotFound { .. })),
        "{never:?}"
    );
}

#[tokio::test]
async fn the_memory_store() {
    let store = MemoryStore::default();
    suite(&store, &store, true).await;
}

#[tokio::test]
async fn the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path(), Durability::Fsync);
    let b = FileStore::new(dir.path(), Durability::Fsync);
    suite(&a, &b, false).await;
}

#[tokio::test]
async fn the_file_store_with_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path(), Durability::Fsync).with_group_commit().unwrap();
    // One view: another process reads files up to a second behind a group-commit store.
    suite(&a, &a, false).await;
    // The log: one JSON record per line; a new execution's first one carries its definition.
    let log = std::fs::read_to_string(dir.path().join(".commit-log.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records[0]["name"], "first");
    assert_eq!(records[0]["definition"]["StartAt"], "Import");
    drop(a);
    // What it committed is in the executions' files, for any reader.
    let b = FileStore::new(dir.path(), Durability::Fsync);
    let listed: Vec<String> = b.list().await.unwrap().into_iter().map(|e| e.unwrap().name).collect();
    assert_eq!(listed, ["first", "second"]);
    assert_eq!(b.history("first").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_commit_log_is_held_by_one_process_and_recovered_by_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path(), Durability::Fsync).with_group_commit().unwrap();
    let second = FileStore::new(dir.path(), Durability::Fsync).with_group_commit();
    assert!(
        matches!(&second, Err(CheckpointError::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock),
        "a second committer is refused"
    );
    drop(a);
    // An unclean stop left a record whose execution's files never got it.
    let definition = json!({"StartAt": "Import", "States": {"Import": {"Type": "Pass", "End": true}}});
    let mut exec = execution("lost", 0);
    let events = started(&mut exec);
    let document = json!({"format": 3, "version": 1, "execution": exec, "last_events": []});
    let record = json!({"name": "lost", "definition": definition, "version": 1, "checkpoint": document, "events": events});
    std::fs::write(dir.path().join(".commit-log.jsonl"), format!("{record}\n")).unwrap();
    let store = FileStore::opened(dir.path(), Durability::NoFsync).unwrap();
    let read = store.read("lost").await.unwrap();
    assert_eq!((read.execution.name.as_str(), read.definition), ("lost", definition));
    assert_eq!(store.history("lost").await.unwrap().len(), events.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_on_the_embedded_s3() {
    let dir = tempfile::tempdir().unwrap();
    let config = recflow::local::emulator::LocalConfig::new(dir.path().join("local"));
    let emulator = recflow::local::emulator::Emulator::start(&config).await.unwrap();
    let s3 = recflow::tasks::aws::Clients::local(&emulator.endpoints()).s3;
    s3.create_bucket().bucket("checkpoints").send().await.unwrap();
    let a = S3Store::new(s3.clone(), "checkpoints", "team/nightly").with_holder("host-a:1");
    let b = S3Store::new(s3, "checkpoints", "team/nightly/").with_holder("host-b:2");
    suite(&a, &b, false).await;
    emulator.shutdown().await;
}
