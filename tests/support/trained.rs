//! The demo set up on a fresh emulator (`recflow::local::demo::prepare`: dataset group, the
//! interactions dataset with EVENT_TYPE, the purchase-exclusion filter, the solutions), its
//! interactions imported and a solution trained: what the filter and runtime tests start from.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use aws_sdk_personalize::types::{BatchInferenceJobInput, BatchInferenceJobOutput, S3DataConfig};
use recflow::local::demo::{self, BUCKET, Demo};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::s3::{BucketName, objects};
use recflow::local::seed::{INTERACTIONS_KEY, SeedOptions};
use serde_json::Value;

use super::clients::{self, ROLE};

pub struct Trained {
    pub emulator: Emulator,
    pub pz: aws_sdk_personalize::Client,
    pub demo: Demo,
}

/// The demo on an emulator over `dir`, 600 times faster than real time, its interactions imported.
pub async fn demo_imported(dir: &Path) -> Trained {
    let mut config = LocalConfig::new(dir);
    config.time_scale = 600.0;
    let emulator = Emulator::start(&config).await.unwrap();
    let pz = clients::personalize(&emulator);
    let demo = demo::prepare(&emulator, &pz, &SeedOptions::default(), Duration::from_secs(60)).await.unwrap();
    let location = format!("s3://{BUCKET}/{INTERACTIONS_KEY}");
    clients::import_and_wait(&pz, "demo-import", &demo.dataset_arn, &location, 10, 3000).await;
    Trained { emulator, pz, demo }
}

impl Trained {
    /// Trains a version of `solution` and waits until it is ACTIVE.
    pub async fn train(&self, solution: &str) -> String {
        clients::train_and_wait(&self.pz, solution).await
    }

    /// Writes `lines` as the JSON Lines object `key` of the demo bucket.
    pub fn put_lines(&self, key: &str, lines: &[Value]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let bucket = BucketName::parse(BUCKET).unwrap();
        recflow::local::s3::write_object_with(&self.emulator.s3_root(), &bucket, key, |w| {
            w.write_all(text.as_bytes())
        })
        .unwrap();
    }

    /// Runs a batch inference job over `input_key` with `filter`, waits for it and gives the
    /// output lines (or the failure reason).
    pub async fn batch(
        &self,
        name: &str,
        version: &str,
        input_key: &str,
        filter: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let output = format!("s3://{BUCKET}/out/{name}/");
        let job = self
            .pz
            .create_batch_inference_job()
            .job_name(name)
            .solution_version_arn(version)
            .set_filter_arn(filter.map(str::to_string))
            .job_input(
                BatchInferenceJobInput::builder()
                    .s3_data_source(
                        S3DataConfig::builder().path(format!("s3://{BUCKET}/{input_key}")).build().unwrap(),
                    )
                    .build(),
            )
            .job_output(
                BatchInferenceJobOutput::builder()
                    .s3_data_destination(S3DataConfig::builder().path(&output).build().unwrap())
                    .build(),
            )
            .role_arn(ROLE)
            .send()
            .await
            .map_err(|e| format!("{}", aws_sdk_personalize::error::DisplayErrorContext(e)))?
            .batch_inference_job_arn
            .unwrap();
        let describe = || async {
            let j =
                self.pz.describe_batch_inference_job().batch_inference_job_arn(&job).send().await.unwrap();
            j.batch_inference_job.unwrap()
        };
        let status =
            clients::wait_for("batch", 10, 3000, || async { describe().await.status.unwrap() }).await;
        if status != "ACTIVE" {
            return Err(describe().await.failure_reason.unwrap_or(status));
        }
        let file = Path::new(input_key).file_name().unwrap().to_string_lossy().into_owned();
        let bucket = BucketName::parse(BUCKET).unwrap();
        let out = objects::object_path(&self.emulator.s3_root(), &bucket, &format!("out/{name}/{file}.out"));
        let text = std::fs::read_to_string(out).unwrap();
        Ok(text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
    }

    /// Each user's items of the demo interactions with `event` as their EVENT_TYPE.
    pub fn items_with_event(
        &self,
        event: &str,
    ) -> std::collections::HashMap<String, std::collections::HashSet<String>> {
        let bucket = BucketName::parse(BUCKET).unwrap();
        let path = objects::object_path(&self.emulator.s3_root(), &bucket, INTERACTIONS_KEY);
        let mut out: std::collections::HashMap<String, std::collections::HashSet<String>> =
            Default::default();
        let mut reader = csv::Reader::from_path(path).unwrap();
        for record in reader.records() {
            let r = record.unwrap();
            if &r[3] == event {
                out.entry(r[0].to_string()).or_default().insert(r[1].to_string());
            }
        }
        out
    }
}
