//! `recflow daemon`'s core on paused tokio time: schedules fire at the right instants over a
//! simulated week (across a daylight-saving change), the overlap policies, catch-up after a
//! restart, and executions left unfinished by one daemon completed by the next.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::daemon::{CatchUp, Daemon, Overlap, Workflow};
use recflow::engine::execution::Limits;
use recflow::engine::{Execution, ExecutionStore, Launch, Registry, Status, TokioClock};
use recflow::schedule::Schedule;
use recflow::tasks::Scripted;
use serde_json::{Value, json};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A workflow that waits `wait_seconds` and succeeds, with one scripted task first.
fn waiting(wait_seconds: u64) -> Value {
    json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "arn:aws:states:::test:work", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": wait_seconds, "End": true}
    }})
}

struct Spec {
    name: &'static str,
    definition: Value,
    schedules: &'static [&'static str],
    tz: chrono_tz::Tz,
    overlap: Overlap,
    catch_up: CatchUp,
}

impl Spec {
    fn new(name: &'static str, definition: Value, schedules: &'static [&'static str]) -> Spec {
        Spec {
            name,
            definition,
            schedules,
            tz: chrono_tz::UTC,
            overlap: Overlap::Forbid,
            catch_up: CatchUp::Skip,
        }
    }
}

fn daemon(
    specs: Vec<Spec>,
    start: DateTime<Utc>,
    store: Arc<dyn ExecutionStore>,
    state_file: Option<std::path::PathBuf>,
) -> Arc<Daemon> {
    let clock: Arc<dyn recflow::engine::Clock> = Arc::new(TokioClock::starting_at(start));
    let runner = common::script(&[("Work", vec![Scripted::ok(json!("done"))])]);
    let mut registry = Registry::new();
    registry.register("", runner);
    let registry = Arc::new(registry);
    let workflows = specs
        .into_iter()
        .map(|spec| Workflow {
            name: spec.name.to_string(),
            launch: Launch {
                machine: Arc::new(StateMachine::from_json(&spec.definition).unwrap()),
                definition: Arc::new(spec.definition),
                registry: Arc::clone(&registry),
                clock: Arc::clone(&clock),
                store: Arc::clone(&store),
            },
            input: json!({}),
            defaults: Default::default(),
            schedules: spec.schedules.iter().map(|s| Schedule::parse(s).unwrap()).collect(),
            tz: spec.tz,
            overlap: spec.overlap,
            catch_up: spec.catch_up,
            jitter: Duration::ZERO,
            limits: Limits::default(),
        })
        .collect();
    Daemon::new(workflows, clock, state_file).unwrap()
}

/// Runs `daemon` for `span` of paused time, then shuts it down and waits for it.
async fn run_for(daemon: &Arc<Daemon>, span: Duration) -> usize {
    let resumed = daemon.start().await.unwrap();
    tokio::time::sleep(span).await;
    daemon.shutdown();
    daemon.stopped().await;
    resumed
}

/// The executions of `workflow`, by start time: (name, start time, status).
async fn started(store: &dyn ExecutionStore, workflow: &str) -> Vec<(String, DateTime<Utc>, Status)> {
    let mut out: Vec<(String, DateTime<Utc>, Status)> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .filter(|e: &Execution| e.state_machine == workflow)
        .map(|e| (e.name, e.start_time, e.status))
        .collect();
    out.sort_by_key(|e| e.1);
    out
}

fn starts(list: &[(String, DateTime<Utc>, Status)]) -> Vec<DateTime<Utc>> {
    list.iter().map(|e| e.1).collect()
}

#[tokio::test(start_paused = true)]
async fn two_schedules_fire_at_their_instants_over_a_week_across_a_daylight_saving_change() {
    // Berlin moves its clocks from 02:00 to 03:00 on Sunday 2026-03-29: 02:30 does not exist
    // that day, and EventBridge Scheduler skips it.
    let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::default());
    let mut nightly = Spec::new("nightly", waiting(60), &["cron(30 2 * * ? *)"]);
    nightly.tz = chrono_tz::Europe::Berlin;
    let weekdays = Spec::new("weekdays", waiting(60), &["cron(0 12 ? * MON-FRI *)"]);
    let start = utc("2026-03-25T00:00:00Z");
    let d = daemon(vec![nightly, weekdays], start, Arc::clone(&store), None);
    run_for(&d, Duration::from_secs(7 * 86_400)).await;

    let nightly = started(store.as_ref(), "nightly").await;
    assert_eq!(
        starts(&nightly),
        vec![
            // 02:30 CET is 01:30 UTC ...
            utc("2026-03-25T01:30:00Z"),
            utc("2026-03-26T01:30:00Z"),
            utc("2026-03-27T01:30:00Z"),
            utc("2026-03-28T01:30:00Z"),
            // ... Sunday the 29th has no 02:30; from Monday 02:30 CEST is 00:30 UTC.
            utc("2026-03-30T00:30:00Z"),
            utc("2026-03-31T00:30:00Z"),
        ]
    );
    assert_eq!(nightly[0].0, "nightly-20260325T013000Z");
    assert!(nightly.iter().all(|e| e.2 == Status::Succeeded), "{nightly:?}");
    let weekdays = started(store.as_ref(), "weekdays").await;
    assert_eq!(
        starts(&weekdays),
        ["25", "26", "27", "30", "31"].map(|day| utc(&format!("2026-03-{day}T12:00:00Z"))).to_vec(),
        "Wednesday to Friday, then Monday and Tuesday"
    );
}

/// Runs a workflow whose executions take 90 minutes, fired every hour, for 5 h 15 min.
async fn overlapping(overlap: Overlap) -> (Vec<(String, DateTime<Utc>, Status)>, String) {
    let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::default());
    let mut spec = Spec::new("hourly", waiting(90 * 60), &["rate(1 hour)"]);
    spec.overlap = overlap;
    let start = utc("2026-11-30T00:00:00Z");
    let d = daemon(vec![spec], start, Arc::clone(&store), None);
    run_for(&d, Duration::from_secs(5 * 3600 + 900)).await;
    (started(store.as_ref(), "hourly").await, d.metrics_text())
}

#[tokio::test(start_paused = true)]
async fn overlap_forbid_skips_a_firing_while_an_execution_runs() {
    let (list, metrics) = overlapping(Overlap::Forbid).await;
    let hours = |hs: &[&str]| hs.iter().map(|h| utc(&format!("2026-11-30T{h}:00Z"))).collect::<Vec<_>>();
    // 01:00 runs to 02:30, so 02:00 is skipped; 03:00 runs to 04:30, so 04:00 is skipped.
    assert_eq!(starts(&list), hours(&["01:00", "03:00", "05:00"]));
    assert!(metrics.contains("recflow_firings_skipped_total{workflow=\"hourly\"} 2"), "{metrics}");
}

#[tokio::test(start_paused = true)]
async fn overlap_queue_starts_each_firing_when_the_one_before_ends() {
    let (list, _) = overlapping(Overlap::Queue).await;
    let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
    // Each queued firing keeps its own name and starts when the execution before it ends.
    assert_eq!(names, ["hourly-20261130T010000Z", "hourly-20261130T020000Z", "hourly-20261130T030000Z"]);
    let times = |ts: &[&str]| ts.iter().map(|t| utc(&format!("2026-11-30T{t}:00Z"))).collect::<Vec<_>>();
    assert_eq!(starts(&list), times(&["01:00", "02:30", "04:00"]));
}

#[tokio::test(start_paused = true)]
async fn overlap_allow_starts_every_firing() {
    let (list, _) = overlapping(Overlap::Allow).await;
    let hours = |hs: &[&str]| hs.iter().map(|h| utc(&format!("2026-11-30T{h}:00Z"))).collect::<Vec<_>>();
    assert_eq!(starts(&list), hours(&["01:00", "02:00", "03:00", "04:00", "05:00"]));
}

#[tokio::test(start_paused = true)]
async fn a_restarted_daemon_runs_the_latest_missed_firing_once_with_catch_up_once() {
    for (catch_up, expected) in [
        (
            CatchUp::Once,
            vec!["hourly-20261130T010000Z", "hourly-20261130T100000Z", "hourly-20261130T110000Z"],
        ),
        (CatchUp::Skip, vec!["hourly-20261130T010000Z", "hourly-20261130T110000Z"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let state = Some(dir.path().join("daemon-schedules.json"));
        let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::default());
        let spec = || {
            let mut spec = Spec::new("hourly", waiting(60), &["rate(1 hour)"]);
            spec.catch_up = catch_up;
            spec
        };
        let start = utc("2026-11-30T00:00:00Z");
        run_for(&daemon(vec![spec()], start, Arc::clone(&store), state.clone()), Duration::from_secs(5400))
            .await;
        // Down from 01:30 to 10:30: eight firings missed (02:00 to 10:00, hourly from the anchor).
        let later = start + chrono::Duration::minutes(630);
        run_for(&daemon(vec![spec()], later, Arc::clone(&store), state), Duration::from_secs(3600)).await;
        let list = started(store.as_ref(), "hourly").await;
        assert_eq!(list.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), expected, "{catch_up:?}");
        if catch_up == CatchUp::Once {
            // Started at once, at 10:30, not waiting for the next firing.
            assert_eq!(list[1].1, later);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_daemon_finishes_what_a_stopped_one_left_in_a_wait() {
    let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::default());
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
    let first = daemon(vec![Spec::new("slow", waiting(7200), &[])], start, Arc::clone(&store), None);
    first.start().await.unwrap();
    first
        .start_execution("slow", Some("slow-1".into()), json!({}), recflow::daemon::Trigger::Api)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    first.shutdown();
    first.stopped().await;
    let stopped = store.read("slow-1").await.unwrap().execution;
    assert_eq!(stopped.status, Status::Running);
    assert_eq!(stopped.at.as_ref().map(|a| a.state.as_str()), Some("Pause"));

    let second = daemon(vec![Spec::new("slow", waiting(7200), &[])], start, Arc::clone(&store), None);
    let resumed = run_for(&second, Duration::from_secs(3 * 3600)).await;
    assert_eq!(resumed, 1);
    let done = store.read("slow-1").await.unwrap().execution;
    assert_eq!(done.status, Status::Succeeded);
    // The Wait kept its end: two hours after it began, not after the restart.
    assert_eq!(done.stop_time, Some(start + chrono::Duration::seconds(7200)));
}

#[tokio::test(start_paused = true)]
async fn a_rate_counts_from_the_first_start_even_across_a_restart_before_it_fires() {
    let dir = tempfile::tempdir().unwrap();
    let state = Some(dir.path().join("daemon-schedules.json"));
    let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::default());
    let start = utc("2026-11-30T00:00:00Z");
    let spec = || Spec::new("hourly", waiting(60), &["rate(1 hour)"]);
    run_for(&daemon(vec![spec()], start, Arc::clone(&store), state.clone()), Duration::from_secs(1800)).await;
    // Restarted at 00:50, before the first firing: it still comes at 01:00, not at 01:50.
    let later = start + chrono::Duration::minutes(50);
    run_for(&daemon(vec![spec()], later, Arc::clone(&store), state), Duration::from_secs(1200)).await;
    assert_eq!(starts(&started(store.as_ref(), "hourly").await), [utc("2026-11-30T01:00:00Z")]);
}
