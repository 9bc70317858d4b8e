//! Map throughput and checkpoint cost: a Map of 1,000 and of 10,000 Pass items with
//! MaxConcurrency 100, checkpointed to files, beside the engine benchmark's single execution (the
//! counter loop) in the same run. Prints transitions per second and bytes written per transition
//! (from /proc/self/io, split into checkpoint and history); asserts nothing about speed.
//!
//! cargo bench --bench map            (RECFLOW_BENCH_MAP_FSYNC_N=1000 sets the fsync Map's size)

use std::path::Path;
use std::time::Instant;

use recflow::asl::StateMachine;
use recflow::checkpoint::{Durability, FileStore};
use recflow::engine::execution::Limits;
use recflow::engine::{Driver, Registry, Status, SystemClock};
use serde_json::{Value, json};

const COUNTER: &str = include_str!("counter.asl.json");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes this process has handed to write(2) so far (`wchar` of /proc/self/io).
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

struct Figures {
    transitions: u64,
    seconds: f64,
    bytes: u64,
    history_bytes: u64,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.transitions as f64 / self.seconds
    }

    fn print(&self, label: &str) {
        let per = |b: u64| b as f64 / self.transitions as f64;
        println!(
            "{label:<34} {:>8.0} transitions/s  {:>7.0} B/transition written ({:>6.0} checkpoint + {:>4.0} history; {} transitions in {:.3} s)",
            self.rate(),
            per(self.bytes),
            per(self.bytes.saturating_sub(self.history_bytes)),
            per(self.history_bytes),
            self.transitions,
            self.seconds
        );
    }
}

fn drive(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    name: &str,
    definition: &Value,
    input: Value,
    durability: Durability,
) -> (Figures, Value) {
    let machine = StateMachine::from_json(definition).unwrap();
    let registry = Registry::new();
    let limits = Limits { max_history_events: 10_000_000, max_concurrency: 100, ..Limits::default() };
    let store = FileStore::new(dir, durability);
    let before = written();
    let start = Instant::now();
    let exec = rt.block_on(async {
        let driver =
            Driver::start(&machine, definition, &registry, &SystemClock, &store, name, "bench", input, 1)
                .await
                .unwrap()
                .with_limits(limits);
        driver.run().await.unwrap()
    });
    let seconds = start.elapsed().as_secs_f64();
    let bytes = written() - before;
    assert_eq!(exec.status, Status::Succeeded, "{:?} {:?}", exec.error, exec.cause);
    let history_bytes = std::fs::metadata(dir.join(name).join("history.jsonl")).unwrap().len();
    (Figures { transitions: exec.transitions, seconds, bytes, history_bytes }, exec.output.unwrap())
}

fn map_of(items: usize) -> (Value, Value) {
    let definition = json!({"StartAt": "Each", "States": {"Each": {"Type": "Map", "MaxConcurrency": 100, "End": true,
        "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}}}}});
    (definition, Value::Array((0..items).map(|i| json!({"id": i})).collect()))
}

fn main() {
    let fsync_items = env_usize("RECFLOW_BENCH_MAP_FSYNC_N", 1000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let counter: Value = serde_json::from_str(COUNTER).unwrap();

    println!("no fsync (survives a killed process):");
    let (single, _) =
        drive(&rt, dir.path(), "counter", &counter, json!({"i": 0, "n": 5000}), Durability::NoFsync);
    single.print("  single execution (counter)");
    for items in [1_000, 10_000] {
        let (definition, input) = map_of(items);
        let (figures, output) =
            drive(&rt, dir.path(), &format!("map{items}"), &definition, input.clone(), Durability::NoFsync);
        assert_eq!(output, input);
        figures.print(&format!("  Map of {items} Pass items"));
    }

    println!("fsync on every transition (survives power loss):");
    let (single, _) =
        drive(&rt, dir.path(), "counter-fsync", &counter, json!({"i": 0, "n": 500}), Durability::Fsync);
    single.print("  single execution (counter)");
    let (definition, input) = map_of(fsync_items);
    let (map, output) = drive(&rt, dir.path(), "map-fsync", &definition, input.clone(), Durability::Fsync);
    assert_eq!(output, input);
    map.print(&format!("  Map of {fsync_items} Pass items"));
    println!(
        "durable Map / single execution:    {:>8.0} %  (transitions per second, same run, same disk)",
        100.0 * map.rate() / single.rate()
    );
}
