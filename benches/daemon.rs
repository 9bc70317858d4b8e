//! `recflow daemon` figures: idle resident memory, resident memory with 10,000 executions
//! waiting, the time from starting the process to the first task call of an execution that is
//! due at start, and durable transitions per second with 1,000 executions running the counter
//! loop at once against one execution alone on the same store. Prints figures; asserts nothing
//! about speed.
//!
//! cargo bench --bench daemon     (RECFLOW_BENCH_WAITING=10000 RECFLOW_BENCH_CONCURRENT=1000)

#[path = "../tests/support/process.rs"]
mod process;

use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use process::{http, spawn_daemon, terminate};

use recflow::asl::StateMachine;
use recflow::checkpoint::{Durability, ExecutionStore, FileStore};
use recflow::daemon::{CatchUp, Daemon, Overlap, Trigger, Workflow};
use recflow::engine::execution::Limits;
use recflow::engine::{Launch, Registry, Status, SystemClock};
use serde_json::{Value, json};

const COUNTER: &str = include_str!("counter.asl.json");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A number field of /proc/PID/status (VmRSS in kB, Threads).
fn status_field(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Resident memory of a process, in MB.
fn rss_mb(pid: u32) -> f64 {
    status_field(pid, "VmRSS:") / 1024.0
}

fn spawn(dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut args: Vec<std::ffi::OsString> = vec!["--config".into(), dir.join("recflow.toml").into()];
    args.extend([
        "--data-dir".into(),
        dir.join("data").into(),
        "--mock".into(),
        dir.join("mock.json").into(),
    ]);
    args.extend([
        "--mock-call-log".into(),
        dir.join("calls.jsonl").into(),
        "--log-level".into(),
        "error".into(),
    ]);
    args.extend(extra.iter().map(Into::into));
    spawn_daemon(&args)
}

fn post(address: &str, path: &str, body: &str) {
    let (status, answer) = http(address, "POST", path, body);
    assert_eq!(status, 200, "{path}: {answer}");
}

/// Idle memory, then memory with `count` executions sitting in a day-long Wait.
fn memory(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("wait.asl.json"),
        r#"{"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 86400, "End": true}}}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("recflow.toml"),
        "[workflows.wait]\ndefinition = \"wait.asl.json\"\nschedules = [\"cron(0 3 * * ? *)\"]\n",
    )
    .unwrap();
    std::fs::write(d.join("mock.json"), "{}").unwrap();
    let (mut child, address) = spawn(d, &[]);
    std::thread::sleep(Duration::from_millis(500));
    println!("idle resident memory (one scheduled workflow, API up): {:.1} MB", rss_mb(child.id()));
    let began = Instant::now();
    for i in 0..count {
        post(&address, "/workflows/wait/executions", &format!(r#"{{"name": "w-{i}"}}"#));
    }
    let took = began.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1000));
    println!(
        "resident memory with {count} executions waiting, 1 s after the last start: {:.1} MB, {} threads ({count} starts over HTTP in {took:.1} s, group commit)",
        rss_mb(child.id()),
        status_field(child.id(), "Threads:")
    );
    // tokio's blocking pool (file commits) lets its idle threads go after 10 s.
    std::thread::sleep(Duration::from_secs(11));
    println!(
        "resident memory with {count} executions waiting, settled: {:.1} MB, {} threads",
        rss_mb(child.id()),
        status_field(child.id(), "Threads:")
    );
    terminate(&mut child);
}

/// From spawning the daemon to the first task call of an execution that is due at start (its
/// Wait ended while no daemon ran).
fn start_latency() -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("due.asl.json"),
        r#"{"StartAt": "Pause", "States": {
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Work"},
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion", "Parameters": {"SolutionArn": "arn:aws:personalize:us-east-1:1:solution/s"}, "End": true}}}"#,
    )
    .unwrap();
    std::fs::write(d.join("recflow.toml"), "[workflows.due]\ndefinition = \"due.asl.json\"\n").unwrap();
    std::fs::write(d.join("mock.json"), r#"{"Work": {"Return": {}}}"#).unwrap();
    let mut samples = Vec::new();
    for i in 0..5 {
        let (mut child, address) = spawn(d, &[]);
        post(&address, "/workflows/due/executions", &format!(r#"{{"name": "due-{i}"}}"#));
        terminate(&mut child);
        std::thread::sleep(Duration::from_millis(1100));
        let calls = d.join("calls.jsonl");
        let before = std::fs::read_to_string(&calls).unwrap_or_default().lines().count();
        let began = Instant::now();
        let (mut child, _) = spawn(d, &[]);
        while std::fs::read_to_string(&calls).unwrap_or_default().lines().count() == before {
            std::thread::sleep(Duration::from_micros(200));
            assert!(began.elapsed() < Duration::from_secs(10), "no call");
        }
        samples.push(began.elapsed().as_secs_f64() * 1000.0);
        terminate(&mut child);
    }
    samples
}

/// `executions` counter loops to `n` at once on one durable file store: (transitions, seconds).
fn concurrent(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    executions: usize,
    n: u64,
    group: bool,
) -> (u64, f64) {
    let definition: Value = serde_json::from_str(COUNTER).unwrap();
    let store = FileStore::new(dir, Durability::Fsync);
    let store: Arc<dyn ExecutionStore> =
        Arc::new(if group { store.with_group_commit().unwrap() } else { store });
    let workflow = Workflow {
        name: "counter".into(),
        launch: Launch {
            machine: Arc::new(StateMachine::from_json(&definition).unwrap()),
            definition: Arc::new(definition),
            registry: Arc::new(Registry::new()),
            clock: Arc::new(SystemClock),
            store: Arc::clone(&store),
        },
        input: json!({}),
        defaults: Default::default(),
        schedules: vec![],
        tz: chrono_tz::UTC,
        overlap: Overlap::Allow,
        catch_up: CatchUp::Skip,
        jitter: Duration::ZERO,
        limits: Limits::default(),
    };
    rt.block_on(async {
        let daemon = Daemon::new(vec![workflow], Arc::new(SystemClock), None).unwrap();
        daemon.start().await.unwrap();
        let began = Instant::now();
        for i in 0..executions {
            daemon
                .start_execution("counter", Some(format!("c-{i}")), json!({"i": 0, "n": n}), Trigger::Api)
                .await
                .unwrap();
        }
        while daemon.executions().await.iter().any(|e| e.status == Status::Running) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = began.elapsed().as_secs_f64();
        let all = daemon.executions().await;
        assert!(all.iter().all(|e| e.status == Status::Succeeded));
        (all.iter().map(|e| e.transitions).sum(), secs)
    })
}

fn main() {
    let waiting = env_usize("RECFLOW_BENCH_WAITING", 10_000);
    let executions = env_usize("RECFLOW_BENCH_CONCURRENT", 1_000);
    memory(waiting);
    let latency = start_latency();
    let mut sorted = latency.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "process start to the first call of a due execution: median {:.1} ms (runs: {})",
        sorted[sorted.len() / 2],
        latency.iter().map(|l| format!("{l:.1}")).collect::<Vec<_>>().join(", ")
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let base = std::env::current_dir().unwrap().join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let run = |executions: usize, n: u64, group: bool| {
        let dir = tempfile::tempdir_in(&base).unwrap();
        let (t, s) = concurrent(&rt, dir.path(), executions, n, group);
        (t, s, t as f64 / s)
    };
    // The single rate is the engine benchmark's: one execution, fsync per commit.
    let (t1, s1, r1) = run(1, 2_000, false);
    println!(
        "durable transitions/s, one execution, fsync per commit (counter to 2,000): {r1:.0} ({t1} in {s1:.2} s)"
    );
    let (tg, sg, rg) = run(1, 2_000, true);
    println!("durable transitions/s, one execution, group commit: {rg:.0} ({tg} in {sg:.2} s)");
    let (tp, sp, rp) = run(executions, 20, false);
    println!(
        "durable transitions/s, {executions} executions at once (counter to 20 each), fsync per commit: {rp:.0} ({tp} in {sp:.2} s): {:.1}x the single rate",
        rp / r1
    );
    let (tn, sn, rn) = run(executions, 20, true);
    println!(
        "durable transitions/s, {executions} executions at once, group commit (the daemon's store): {rn:.0} ({tn} in {sn:.2} s): {:.1}x the single rate",
        rn / r1
    );
}
