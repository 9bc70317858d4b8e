//! The embedded emulator end to end, through the real AWS SDK clients: 2 million interactions of
//! 100,000 users over 10,000 items in the local S3, then import, training and a batch inference
//! job for every user (25 results each), timed from create to ACTIVE. Prints the figures and the
//! process's peak resident memory after each phase; asserts nothing about speed.
//!
//! cargo bench --bench emulator     (RECFLOW_BENCH_USERS, RECFLOW_BENCH_INTERACTIONS to resize)

use std::time::Instant;

use aws_sdk_personalize::types::{BatchInferenceJobInput, BatchInferenceJobOutput, S3DataConfig};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::seed::{SeedOptions, write_demo_data};

#[path = "../tests/support/clients.rs"]
mod clients;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Peak resident memory of this process so far (VmHWM), in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let opts = SeedOptions {
        users: env("RECFLOW_BENCH_USERS", 100_000),
        items: env("RECFLOW_BENCH_ITEMS", 10_000),
        interactions: env("RECFLOW_BENCH_INTERACTIONS", 2_000_000),
        days: 90,
        clusters: 20,
        seed: 42,
    };
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let started = Instant::now();
    let summary = write_demo_data(&dir.path().join("s3"), "bench", &opts).unwrap();
    println!(
        "emulator: {} users, {} items, {} interactions seeded into the local S3 in {:.2} s",
        opts.users,
        opts.items,
        opts.interactions,
        started.elapsed().as_secs_f64()
    );

    let mut config = LocalConfig::new(dir.path());
    // Lifecycle phases shrink to milliseconds: what remains is the real work.
    config.time_scale = 1000.0;
    let emulator = Emulator::start(&config).await.unwrap();
    let pz = clients::personalize(&emulator);
    let s3 = clients::s3(&emulator);

    let clients::Group { dataset, solution, .. } =
        clients::dataset_group(&pz, "bench", "aws-user-personalization").await;

    let t = Instant::now();
    let location = format!("s3://bench/{}", summary.interactions_key);
    clients::import_and_wait(&pz, "bench-import", &dataset, &location, 20, 100_000).await;
    println!(
        "import job:       {:>7.2} s create to ACTIVE; peak RSS {:.0} MB",
        t.elapsed().as_secs_f64(),
        peak_mb()
    );

    let t = Instant::now();
    let version = pz
        .create_solution_version()
        .solution_arn(&solution)
        .send()
        .await
        .unwrap()
        .solution_version_arn
        .unwrap();
    let status = clients::wait_for("training", 20, 100_000, || async {
        let v = pz.describe_solution_version().solution_version_arn(&version).send().await.unwrap();
        v.solution_version.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    println!(
        "solution version: {:>7.2} s create to ACTIVE; peak RSS {:.0} MB",
        t.elapsed().as_secs_f64(),
        peak_mb()
    );

    let t = Instant::now();
    let s3_path = |p: String| S3DataConfig::builder().path(p).build().unwrap();
    let job = pz
        .create_batch_inference_job()
        .job_name("bench-batch")
        .solution_version_arn(&version)
        .job_input(
            BatchInferenceJobInput::builder()
                .s3_data_source(s3_path(format!("s3://bench/{}", summary.users_key)))
                .build(),
        )
        .job_output(
            BatchInferenceJobOutput::builder()
                .s3_data_destination(s3_path("s3://bench/picks/".into()))
                .build(),
        )
        .role_arn(clients::ROLE)
        .num_results(25)
        .send()
        .await
        .unwrap()
        .batch_inference_job_arn
        .unwrap();
    let status = clients::wait_for("batch", 20, 100_000, || async {
        let j = pz.describe_batch_inference_job().batch_inference_job_arn(&job).send().await.unwrap();
        j.batch_inference_job.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    let secs = t.elapsed().as_secs_f64();
    let head = s3.head_object().bucket("bench").key("picks/users.jsonl.out").send().await.unwrap();
    let bytes = head.content_length().unwrap_or(0);
    println!(
        "batch inference:  {secs:>7.2} s create to ACTIVE = {:.0} users/s x 25 results; output {:.1} MB (via S3 HeadObject); peak RSS {:.0} MB",
        opts.users as f64 / secs,
        bytes as f64 / 1e6,
        peak_mb()
    );
    emulator.shutdown().await;
}
