//! The "today's picks" publish through the embedded emulator's S3 and the real AWS SDK client:
//! batch inference output for 100,000 and 1,000,000 users x 25 scored items (deterministic,
//! written straight into the emulator's data directory), published with TopN 25 and TopN 10.
//! Prints for each run the input size, time, throughput, the process's peak resident memory
//! during the run (emulator included: it serves in-process), and `cat <file> > /dev/null` over
//! the same bytes for scale. Asserts only that the counts are right.
//!
//! cargo bench --bench picks     (RECFLOW_BENCH_PICKS_USERS=100000,1000000 to choose the sizes)

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::s3::{BucketName, objects};
use recflow::tasks::picks::{self, PublishPicks};
use serde_json::json;

#[path = "../tests/support/clients.rs"]
mod clients;

const BUCKET: &str = "bench";
const ITEMS: usize = 25;
const CATALOG: u64 = 50_000;

/// Peak resident memory of this process (VmHWM) and current (VmRSS), in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time of this process so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) end with ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// One plain GetObject of `key`, read to the end and dropped: the local S3's own ceiling for a
/// single stream, in seconds.
async fn time_get(s3: &aws_sdk_s3::Client, key: &str) -> f64 {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let object = s3.get_object().bucket(BUCKET).key(key).send().await.unwrap();
    let mut body = object.body.into_async_read();
    let mut buf = vec![0; 256 << 10];
    while body.read(&mut buf).await.unwrap() > 0 {}
    started.elapsed().as_secs_f64()
}

/// Sets the peak resident memory back to the current one.
fn reset_peak() {
    if let Err(err) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS: {err}");
    }
}

/// Batch inference output as Personalize writes it, scores descending with six decimals.
fn generate(path: &Path, users: usize) -> u64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for u in 0..users {
        write!(out, "{{\"input\": {{\"userId\": \"u{:07}\"}}, \"output\": {{\"recommendedItems\": [", u + 1)
            .unwrap();
        for i in 0..ITEMS {
            let sep = if i == 0 { "" } else { ", " };
            write!(out, "{sep}\"i{}\"", next() % CATALOG + 1).unwrap();
        }
        out.write_all(b"], \"scores\": [").unwrap();
        let mut score = 0.2 + (next() % 1000) as f64 / 2000.0;
        for i in 0..ITEMS {
            let sep = if i == 0 { "" } else { ", " };
            score *= 0.8 + (next() % 1000) as f64 / 5000.0;
            write!(out, "{sep}{}", (score * 1e6).round() / 1e6).unwrap();
        }
        out.write_all(b"]}, \"error\": null}\n").unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// `cat <path> > /dev/null` in a subprocess, in seconds.
fn time_cat(path: &Path) -> f64 {
    let started = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("cat \"$0\" > /dev/null")
        .arg(path)
        .status()
        .expect("run cat");
    assert!(status.success());
    started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("RECFLOW_BENCH_PICKS_USERS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let s3_root = dir.path().join("s3");
    let bucket = BucketName::parse(BUCKET).unwrap();
    let generated = dir.path().join("generated");

    let mut inputs = Vec::new();
    for &users in &sizes {
        let started = Instant::now();
        let key = format!("batch-{users}/users.json.out");
        let bytes = generate(&generated.join(&key), users);
        println!(
            "picks: generated {users} users x {ITEMS} items, {:.0} MB, in {:.2} s",
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        inputs.push((users, key, bytes));
    }

    let emulator = Emulator::start(&LocalConfig::new(dir.path())).await.unwrap();
    let s3 = clients::s3(&emulator);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    // Uploaded through the local S3, as a batch job's output would be stored.
    for (_, key, _) in &inputs {
        let started = Instant::now();
        let body = ByteStream::from_path(generated.join(key)).await.unwrap();
        s3.put_object().bucket(BUCKET).key(key).body(body).send().await.unwrap();
        println!("picks: uploaded {key} in {:.2} s", started.elapsed().as_secs_f64());
    }

    for (users, key, bytes) in &inputs {
        let prefix = key.rsplit_once('/').unwrap().0;
        for top_n in [25, 10] {
            let request = PublishPicks::from_parameters(&json!({
                "BatchOutputPath": format!("s3://{BUCKET}/{prefix}/"),
                "PicksPath": format!("s3://{BUCKET}/picks-{users}-top{top_n}/"),
                "Date": "2026-11-29",
                "TopN": top_n,
            }))
            .unwrap();
            reset_peak();
            let (_, rss_before) = memory_mb();
            let cpu_before = cpu_seconds();
            let started = Instant::now();
            let result = picks::publish(&s3, &request).await.unwrap();
            let secs = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu_before;
            let (peak, _) = memory_mb();
            assert_eq!(result["Users"], *users);
            assert_eq!(result["Items"], users * top_n);

            let cat = time_cat(&objects::object_path(&s3_root, &bucket, key));
            let get = time_get(&s3, key).await;
            let mb = *bytes as f64 / 1e6;
            let output: u64 =
                objects::list(&s3_root, &bucket, &format!("picks-{users}-top{top_n}/2026-11-29/"))
                    .unwrap()
                    .iter()
                    .map(|o| o.size)
                    .sum();
            println!(
                "picks: {users} users, TopN {top_n}: input {mb:.0} MB in {secs:.2} s = {:.0} MB/s \
                 (CPU {cpu:.1} s, {:.2} cores; output {:.0} MB in {} parts)\n  \
                 cat {cat:.3} s = {:.0} MB/s, ratio {:.3}; one plain GetObject of the input {get:.2} s = {:.0} MB/s\n  \
                 peak RSS {peak:.0} MB (RSS before {rss_before:.0} MB)",
                mb / secs,
                cpu / secs,
                output as f64 / 1e6,
                result["Parts"],
                mb / cat,
                cat / secs,
                mb / get,
            );
        }
    }
    emulator.shutdown().await;
}
