//! Engine throughput: the counter loop of benches/counter.asl.json in memory, with checkpoints
//! without fsync, and with fsync after every transition; beside them, the raw rate of atomic
//! 0.5 KB file replacements on the same disk, and the whole `recflow run --no-checkpoint`
//! process. Prints figures; asserts nothing about speed.
//!
//! cargo bench --bench engine            (RECFLOW_BENCH_N=5000 RECFLOW_BENCH_PROCESS_N=100000)

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use recflow::asl::StateMachine;
use recflow::checkpoint::{Durability, ExecutionStore, FileStore, NullStore};
use recflow::engine::{Driver, Registry, Status, SystemClock};
use serde_json::{Value, json};

const COUNTER: &str = include_str!("counter.asl.json");
/// The same loop in JSONata, counting in a workflow variable.
const COUNTER_JSONATA: &str = include_str!("counter-jsonata.asl.json");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the counter to `n` and gives (transitions, seconds).
fn counter(rt: &tokio::runtime::Runtime, n: u64, store: &dyn ExecutionStore, name: &str) -> (u64, f64) {
    counter_of(COUNTER, rt, n, store, name)
}

fn counter_of(
    text: &str,
    rt: &tokio::runtime::Runtime,
    n: u64,
    store: &dyn ExecutionStore,
    name: &str,
) -> (u64, f64) {
    let definition: Value = serde_json::from_str(text).unwrap();
    let machine = StateMachine::from_json(&definition).unwrap();
    let registry = Registry::new();
    let start = Instant::now();
    let exec = rt.block_on(async {
        let driver = Driver::start(
            &machine,
            &definition,
            &registry,
            &SystemClock,
            store,
            name,
            "counter",
            json!({"i": 0, "n": n}),
            1,
        )
        .await
        .unwrap();
        driver.run().await.unwrap()
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(exec.status, Status::Succeeded);
    assert_eq!(exec.output, Some(json!({"i": n, "n": n})));
    (exec.transitions, secs)
}

fn file_counter(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    name: &str,
    n: u64,
    durability: Durability,
) -> (u64, f64, u64) {
    let store = FileStore::new(dir, durability);
    let (t, s) = counter(rt, n, &store, name);
    let size = std::fs::metadata(dir.join(name).join("checkpoint.json")).unwrap().len();
    (t, s, size)
}

/// Atomic replacement of a 0.5 KB file, as the checkpoint does it: write a temporary file,
/// fsync, rename over, fsync the folder.
fn raw_atomic_replaces(dir: &Path, count: usize, fsync: bool) -> f64 {
    let payload = vec![b'x'; 512];
    let folder = File::open(dir).unwrap();
    let (tmp, target) = (dir.join("raw.tmp"), dir.join("raw.json"));
    let start = Instant::now();
    for _ in 0..count {
        let mut f = File::create(&tmp).unwrap();
        f.write_all(&payload).unwrap();
        if fsync {
            f.sync_data().unwrap();
        }
        drop(f);
        std::fs::rename(&tmp, &target).unwrap();
        if fsync {
            folder.sync_all().unwrap();
        }
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = env_usize("RECFLOW_BENCH_N", 5000) as u64;
    let n_fsync = env_usize("RECFLOW_BENCH_FSYNC_N", 500) as u64;
    let n_process = env_usize("RECFLOW_BENCH_PROCESS_N", 100_000) as u64;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // On the project's disk, not a tmpfs, so fsync costs what it costs for real checkpoints.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();

    counter(&rt, 1000, &NullStore, "warm-up"); // warm up
    let (t, s) = counter(&rt, n, &NullStore, "memory");
    println!(
        "in memory (no checkpoint):  {:>10.0} transitions/s  ({t} transitions in {:.3} s)",
        t as f64 / s,
        s
    );

    // JSONata with a variable against JSONPath, alternating, medians of 5.
    counter_of(COUNTER_JSONATA, &rt, 1000, &NullStore, "warm-up-jsonata");
    let (mut jsonpath, mut jsonata) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (t, s) = counter(&rt, n, &NullStore, "memory");
        jsonpath.push(t as f64 / s);
        let (t, s) = counter_of(COUNTER_JSONATA, &rt, n, &NullStore, "jsonata");
        jsonata.push(t as f64 / s);
    }
    let (jsonpath, jsonata) = (median(jsonpath), median(jsonata));
    println!(
        "JSONata + variable, memory: {jsonata:>10.0} transitions/s  ({:.0} % of the JSONPath loop's {jsonpath:.0}; medians of 5)",
        100.0 * jsonata / jsonpath
    );

    let (t, s, size) = file_counter(&rt, dir.path(), "nofsync", n, Durability::NoFsync);
    println!(
        "checkpoints, no fsync:      {:>10.0} transitions/s  ({t} transitions in {:.3} s)",
        t as f64 / s,
        s
    );

    let raw_nofsync = raw_atomic_replaces(dir.path(), n as usize, false);
    println!(
        "raw 0.5 KB replaces, no fsync: {raw_nofsync:>7.0} /s  (write, rename: the floor of the no-fsync store on this disk)"
    );

    // fsync costs drift from second to second on a shared disk: alternate the two, take medians.
    let (mut durable, mut raw, mut size_fsync) = (Vec::new(), Vec::new(), 0);
    for round in 0..5 {
        let (t, s, size) =
            file_counter(&rt, dir.path(), &format!("fsync{round}"), n_fsync, Durability::Fsync);
        durable.push(t as f64 / s);
        size_fsync = size;
        raw.push(raw_atomic_replaces(dir.path(), (2 * n_fsync) as usize, true));
    }
    let (durable, raw) = (median(durable), median(raw));
    println!(
        "checkpoints, fsync each:    {durable:>10.0} transitions/s  (median of 5 runs of {} transitions)",
        2 * n_fsync + 1
    );
    println!(
        "raw atomic 0.5 KB replaces: {raw:>10.0} /s  (write, fsync, rename, dir fsync; same disk, alternating, median of 5)"
    );
    println!("durable / raw:              {:>10.1} %", 100.0 * durable / raw);
    println!("checkpoint size after run:  {:>10} bytes (n = {n}), {size_fsync} bytes (n = {n_fsync})", size);

    let history = std::fs::metadata(dir.path().join("nofsync/history.jsonl")).unwrap().len();
    println!("history after run:          {:>10} bytes (n = {n}, appended, never rewritten)", history);

    // The whole process, as a user runs it.
    let bin = env!("CARGO_BIN_EXE_recflow");
    let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/counter.asl.json");
    let input = format!("{{\"i\": 0, \"n\": {n_process}}}");
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let out = Command::new(bin)
            .args(["--log-level", "warn", "run"])
            .arg(&wf)
            .args([
                "--no-checkpoint",
                "--max-history-events",
                "100000000",
                "--input",
                &input,
                "--output",
                "json",
            ])
            .output()
            .unwrap();
        best = best.min(start.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let transitions = 2 * n_process + 1;
    println!(
        "recflow run --no-checkpoint: {:>10.0} transitions/s  (whole process, n = {n_process}: {transitions} transitions in {:.3} s, best of 3)",
        transitions as f64 / best.as_secs_f64(),
        best.as_secs_f64()
    );
}
