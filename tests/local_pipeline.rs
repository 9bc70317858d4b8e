//! The whole nightly path by hand through the embedded emulator, with the three real AWS SDK
//! clients over loopback HTTP: upload the interactions to S3, import, train, batch-infer, read the
//! recommendations back from S3, announce them on EventBridge.

use aws_sdk_personalize::types::{BatchInferenceJobInput, BatchInferenceJobOutput, DataSource, S3DataConfig};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::seed::{SeedOptions, planted_clusters, write_demo_data};
use serde_json::Value;

#[path = "support/clients.rs"]
mod clients;

use clients::ROLE;

async fn wait_for<F, Fut>(what: &str, status: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    clients::wait_for(what, 10, 3000, status).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_train_batch_and_announce_through_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(dir.path());
    config.time_scale = 50.0;
    let emulator = Emulator::start(&config).await.unwrap();

    let s3 = clients::s3(&emulator);
    let personalize = clients::personalize(&emulator);
    let events = clients::events(&emulator);

    // Demo data generated aside, then uploaded through S3 like a user's export would be.
    let opts = SeedOptions { users: 300, items: 120, interactions: 9000, days: 90, clusters: 4, seed: 7 };
    let staging = tempfile::tempdir().unwrap();
    let summary = write_demo_data(staging.path(), "staging", &opts).unwrap();
    s3.create_bucket().bucket("demo").send().await.unwrap();
    for key in [&summary.interactions_key, &summary.users_key] {
        let staged = recflow::local::s3::objects::object_path(
            staging.path(),
            &recflow::local::s3::BucketName::parse("staging").unwrap(),
            key,
        );
        let body = std::fs::read(staged).unwrap();
        s3.put_object().bucket("demo").key(key).body(body.into()).send().await.unwrap();
    }

    let clients::Group { dataset, solution, .. } =
        clients::dataset_group(&personalize, "nightly", "aws-user-personalization").await;

    wait_for("solution", || async {
        let s = personalize.describe_solution().solution_arn(&solution).send().await.unwrap();
        s.solution.unwrap().status.unwrap()
    })
    .await;

    let import = personalize
        .create_dataset_import_job()
        .job_name("nightly-import")
        .dataset_arn(&dataset)
        .data_source(
            DataSource::builder().data_location(format!("s3://demo/{}", summary.interactions_key)).build(),
        )
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .dataset_import_job_arn
        .unwrap();
    // Training while the import still runs is refused with the error real pipelines must wait out.
    let early = personalize.create_solution_version().solution_arn(&solution).send().await.unwrap_err();
    let early = early.into_service_error();
    assert!(early.is_resource_in_use_exception(), "{early:?}");
    assert!(early.meta().message().unwrap_or_default().contains("nightly-import"), "{early:?}");

    let status = wait_for("import", || async {
        let j =
            personalize.describe_dataset_import_job().dataset_import_job_arn(&import).send().await.unwrap();
        j.dataset_import_job.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");

    let version = personalize
        .create_solution_version()
        .solution_arn(&solution)
        .send()
        .await
        .unwrap()
        .solution_version_arn
        .unwrap();
    let status = wait_for("training", || async {
        let v = personalize.describe_solution_version().solution_version_arn(&version).send().await.unwrap();
        v.solution_version.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    let metrics = personalize.get_solution_metrics().solution_version_arn(&version).send().await.unwrap();
    let metrics = metrics.metrics.unwrap();
    for key in [
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_10",
        "precision_at_25",
    ] {
        let v = metrics[key];
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }

    let job = personalize
        .create_batch_inference_job()
        .job_name("nightly-batch")
        .solution_version_arn(&version)
        .job_input(
            BatchInferenceJobInput::builder()
                .s3_data_source(
                    S3DataConfig::builder().path(format!("s3://demo/{}", summary.users_key)).build().unwrap(),
                )
                .build(),
        )
        .job_output(
            BatchInferenceJobOutput::builder()
                .s3_data_destination(S3DataConfig::builder().path("s3://demo/picks/").build().unwrap())
                .build(),
        )
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .batch_inference_job_arn
        .unwrap();
    let status = wait_for("batch inference", || async {
        let j =
            personalize.describe_batch_inference_job().batch_inference_job_arn(&job).send().await.unwrap();
        j.batch_inference_job.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");

    // The recommendations, read back through S3: one line per user, 25 items (the default),
    // mostly from the user's planted taste cluster.
    let listed = s3.list_objects_v2().bucket("demo").prefix("picks/").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["picks/users.jsonl.out"]);
    let body = s3.get_object().bucket("demo").key("picks/users.jsonl.out").send().await.unwrap();
    let text = String::from_utf8(body.body.collect().await.unwrap().to_vec()).unwrap();
    let (user_cluster, item_cluster) = planted_clusters(&opts);
    let (mut in_cluster, mut total) = (0, 0);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), opts.users);
    for line in &lines {
        assert_eq!(line["error"], Value::Null);
        let user = line["input"]["userId"].as_str().unwrap();
        let u: usize = user[1..].parse::<usize>().unwrap() - 1;
        let items = line["output"]["recommendedItems"].as_array().unwrap();
        assert_eq!(items.len(), 25);
        assert_eq!(line["output"]["scores"].as_array().unwrap().len(), 25);
        for item in items {
            let i: usize = item.as_str().unwrap()[1..].parse::<usize>().unwrap() - 1;
            total += 1;
            in_cluster += usize::from(item_cluster[i] == user_cluster[u]);
        }
    }
    let share = in_cluster as f64 / total as f64;
    assert!(share > 2.0 / opts.clusters as f64, "in-cluster share {share:.3} is near chance");

    let announced = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("recflow")
                .detail_type("TodaysPicksReady")
                .detail(format!(r#"{{"picks": "s3://demo/picks/", "batchInferenceJobArn": "{job}"}}"#))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(announced.failed_entry_count(), 0);
    let recorded = std::fs::read_to_string(emulator.events.log_path()).unwrap();
    assert!(recorded.contains("TodaysPicksReady") && recorded.contains(&job));

    emulator.shutdown().await;
}
