//! Local recommender at scale: generates 2,000,000 interactions over 100,000 users and 10,000 items
//! with the demo data generator, trains aws-user-personalization on them (metrics holdout
//! included), then runs batch inference from the users file to an output file: 25,000, 50,000 and
//! 100,000 users x 25 results. Prints figures; asserts only that every line was answered.
//!
//! Memory: VmHWM (peak resident set) after training and after the batches; for each batch the
//! peak is first reset (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0) so VmHWM - VmRSS(before)
//! is the growth during that batch; VmRSS before/after is printed too.
//!
//! CARGO_TARGET_DIR=/work/main/target cargo bench --bench batch
//! (RECFLOW_BENCH_USERS=100000 RECFLOW_BENCH_ITEMS=10000 RECFLOW_BENCH_INTERACTIONS=2000000)

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use recflow::local::recommender::{Model, Recipe, read_dataset, run_batch, train_dataset};
use recflow::local::seed::{SeedOptions, write_demo_data};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A field of /proc/self/status in kB (VmRSS, VmHWM).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The first `n` lines of `users` into their own file.
fn head(users: &Path, n: usize, to: &Path) {
    let mut w = BufWriter::new(File::create(to).unwrap());
    for line in BufReader::new(File::open(users).unwrap()).lines().take(n) {
        writeln!(w, "{}", line.unwrap()).unwrap();
    }
}

fn batch(model: &Model, input: &Path, output: &Path, expect: usize, can_reset: bool) {
    let rss_before = status_kb("VmRSS");
    let hwm_before = status_kb("VmHWM");
    if can_reset {
        reset_peak();
    }
    let start = Instant::now();
    let reader = BufReader::with_capacity(1 << 20, File::open(input).unwrap());
    let stats = run_batch(model, reader, File::create(output).unwrap(), 25).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(stats.lines as usize, expect);
    assert_eq!(stats.errors, 0);
    let rss_after = status_kb("VmRSS");
    let hwm_after = status_kb("VmHWM");
    let size = std::fs::metadata(output).unwrap().len();
    println!(
        "batch {expect:>7} users x 25: {secs:6.2} s, {:>9.0} users/s, output {:7.1} MB ({:.0} MB/s)",
        expect as f64 / secs,
        size as f64 / 1e6,
        size as f64 / 1e6 / secs
    );
    if can_reset {
        println!(
            "    memory: VmRSS before {:.1} MB, after {:.1} MB; peak during the batch {:.1} MB (growth {:+.1} MB)",
            mb(rss_before),
            mb(rss_after),
            mb(hwm_after),
            mb(hwm_after) - mb(rss_before)
        );
    } else {
        println!(
            "    memory: VmRSS before {:.1} MB, after {:.1} MB ({:+.1} MB); VmHWM {:.1} -> {:.1} MB",
            mb(rss_before),
            mb(rss_after),
            mb(rss_after) - mb(rss_before),
            mb(hwm_before),
            mb(hwm_after)
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let opts = SeedOptions {
        users: env_usize("RECFLOW_BENCH_USERS", 100_000),
        items: env_usize("RECFLOW_BENCH_ITEMS", 10_000),
        interactions: env_usize("RECFLOW_BENCH_INTERACTIONS", 2_000_000),
        days: 90,
        clusters: 20,
        seed: 42,
    };
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("target"));
    std::fs::create_dir_all(&target).unwrap();
    let dir = tempfile::tempdir_in(&target).unwrap();
    println!(
        "local recommender: {} users, {} items, {} interactions, {} cores",
        opts.users,
        opts.items,
        opts.interactions,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let start = Instant::now();
    let summary = write_demo_data(dir.path(), "bench", &opts).unwrap();
    let csv = dir.path().join("bench").join(&summary.interactions_key);
    let users = dir.path().join("bench").join(&summary.users_key);
    println!(
        "generate: {:.2} s ({:.1} MB of CSV)",
        start.elapsed().as_secs_f64(),
        std::fs::metadata(&csv).unwrap().len() as f64 / 1e6
    );

    let start = Instant::now();
    let data = read_dataset(BufReader::with_capacity(1 << 20, File::open(&csv).unwrap())).unwrap();
    let read_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let model = train_dataset(Recipe::UserPersonalization, &data).unwrap();
    let train_secs = start.elapsed().as_secs_f64();
    println!(
        "read CSV: {read_secs:.2} s; train (metrics holdout + final model): {train_secs:.2} s; VmHWM after training {:.1} MB, VmRSS {:.1} MB",
        mb(status_kb("VmHWM")),
        mb(status_kb("VmRSS"))
    );
    // The baseline is trained after the figures above, so they are aws-user-personalization's own.
    let start = Instant::now();
    let baseline = train_dataset(Recipe::PopularityCount, &data).unwrap();
    let baseline_secs = start.elapsed().as_secs_f64();
    drop(data);
    let pick = |m: &std::collections::BTreeMap<String, f64>| {
        [
            "precision_at_10",
            "normalized_discounted_cumulative_gain_at_10",
            "mean_reciprocal_rank_at_25",
            "coverage",
        ]
        .map(|k| format!("{k} {:.4}", m[k]))
        .join(", ")
    };
    println!("aws-user-personalization metrics: {}", pick(model.metrics()));
    println!("aws-popularity-count metrics ({baseline_secs:.2} s to train): {}", pick(baseline.metrics()));
    drop(baseline);

    let model_path = dir.path().join("model.bin");
    let start = Instant::now();
    model.save(&model_path).unwrap();
    let save_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let model = {
        drop(model);
        Model::load(&model_path).unwrap()
    };
    println!(
        "model file: {:.1} MB, save {save_secs:.2} s, load {:.2} s",
        std::fs::metadata(&model_path).unwrap().len() as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );

    let can_reset = reset_peak();
    if !can_reset {
        println!("(cannot reset VmHWM here: printing VmRSS deltas)");
    }
    for n in [opts.users / 4, opts.users / 2] {
        let input = dir.path().join(format!("users-{n}.jsonl"));
        head(&users, n, &input);
        batch(&model, &input, &dir.path().join(format!("users-{n}.jsonl.out")), n, can_reset);
    }
    batch(&model, &users, &dir.path().join("users.jsonl.out"), opts.users, can_reset);
    println!("VmHWM at the end (whole process): {:.1} MB", mb(status_kb("VmHWM")));
}
